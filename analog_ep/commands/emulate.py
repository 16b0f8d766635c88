"""``analog-ep emulate NETWORK``: node voltages (or oscillator phases) at equilibrium, or
their thermal statistics.

With ``--samples N`` (or ``--temperature T``) the board is emulated at ``T`` watts (default
:data:`~analog_ep.physics.noise.RESISTIVE_DEFAULT_TEMPERATURE`) and ``N`` readings (default
1000) give every node's mean and standard deviation and the sample covariance of the free
nodes; ``--seed`` fixes the noise. JSON: ``{"nodes": {name: {"mean", "std"}},
"covariance": {"nodes": [...], "matrix": [[...]]}, "samples": N, "temperature": T}``.
With ``--device PRESET|FILE`` the trainable conductances are devices fabricated from
``--seed`` (as ``train`` fabricates them) and programmed to the file's conductances; the
readings are the fabricated network's, and the JSON adds ``"parameters"`` (the conductances
reached, S) and ``"pulses"``.
Oscillator networks report phases in rad, the minimum found (energy, smallest Hessian
eigenvalue, distinct minima, gap) or, at ``T > 0`` (coupling units), circular statistics and
the basins the samples visit: see :func:`analog_ep.commands.reports.emulate_report`.
``--substrate ngspice`` computes a resistive network's equilibrium as an operating point of
ngspice's shared library instead (no thermal statistics; ``docs/ngspice.md``), netlists with
parts only ngspice runs included.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConfigError
from ..hardware.profile import load_profile
from ..graph import load_network
from ..schema import family
from ..models.resistive import ResistiveModel, compile_network
from ..physics.noise import RESISTIVE_DEFAULT_TEMPERATURE
from ..substrates.emulated import max_samples
from ..substrates.factory import open_substrate
from ..substrates.ngspice import NgspiceNetwork
from .common import (add_device_options, add_format_argument, add_network_argument, add_sampler_option,
                     add_samples_option, add_seed_option, device_options,
                     add_temperature_option, parse_assignments, print_json)
from .reports import emulate_report


def register(sub) -> None:
    p = sub.add_parser("emulate", help="every node voltage of a resistive network, or phase of an oscillator network")
    add_network_argument(p)
    p.add_argument("--input", action="append", metavar="NODE=VALUE",
                   help="override an input's voltage (V) or phase (rad) (repeatable)")
    add_temperature_option(p, "noise temperature in W, or coupling units for oscillators "
                              "(default with --samples: the emulator's default)")
    add_samples_option(p, "thermal readings to summarise (default with --temperature: 1000)")
    add_sampler_option(p)
    add_seed_option(p, "seed of the thermal noise and random starts (default: 0)")
    p.add_argument("--substrate", choices=("emulator", "ngspice"), default="emulator",
                   help="resistive networks: solve with the built-in emulator (default) or with "
                        "ngspice's shared library (equilibrium only)")
    add_device_options(p, "the network file's conductances are programmed onto them and the "
                          "readings are those of the fabricated network")
    p.add_argument("--restarts", type=int, default=8,
                   help="oscillators: equilibrium starts, the documented one then random (default: 8)")
    add_format_argument(p)
    p.set_defaults(func=run)


def input_vector(model: ResistiveModel, assignments: dict[str, float]):
    """Default inputs with the named ones replaced; unknown names raise ConfigError."""
    u = model.default_inputs.copy()
    names = list(model.input_names)
    for name, value in assignments.items():
        if name not in names:
            raise ConfigError(f"--input {name}: not an input node (inputs: {', '.join(names) or 'none'})")
        u[names.index(name)] = value
    return u[None, :]


def open_board(model: ResistiveModel, args, temperature: float | None = None, rng=None):
    """The in-process emulator of ``model``; with ``--device``, its fabricated devices are
    programmed to the network file's conductances."""
    devices = device_options(args)
    board = open_substrate("emulator", model, temperature, rng=rng, sampler=args.sampler, **devices)
    if devices:
        board.set_parameters(model.default_theta)
    return board


def device_report(board) -> dict:
    """The conductances (S) the devices reached and the pulses it took; empty without devices."""
    if getattr(board, "devices", None) is None:
        return {}
    return {"parameters": dict(zip(board.model.param_names, map(float, board.theta))), "pulses": board.pulses}


def run(args) -> int:
    G = load_network(args.network, ngspice=args.substrate == "ngspice")
    if family(G) != "resistive" and args.substrate != "emulator":
        raise ConfigError(f"--substrate {args.substrate} runs resistive networks; {args.network} is {family(G)}")
    if family(G) != "resistive" and args.device is not None:
        raise ConfigError(f"--device applies to resistive networks; {args.network} is {family(G)}")
    if family(G) == "oscillator":
        return oscillators(G, args)
    if family(G) != "resistive":
        raise ConfigError(f"emulate handles resistive and oscillator networks; {args.network} is {family(G)}")
    model = compile_network(G)
    u = input_vector(model, parse_assignments(args.input, "--input"))
    warn_out_of_range(model, u, "input", "its DAC range", lambda p: p.inputs)
    thermal_run = args.samples is not None or args.temperature is not None
    if args.substrate == "ngspice":
        if thermal_run:
            raise ConfigError("--substrate ngspice computes the noiseless operating point; "
                              "--samples and --temperature need --substrate emulator")
        with NgspiceNetwork(model) as board:
            board.clamp(u)
            volts = board.equilibrium()[0]
    elif thermal_run:
        return thermal(model, u, args)
    else:
        board = open_board(model, args)
        board.clamp(u)
        volts = board.equilibrium()[0]
    nodes = dict(zip(model.node_names, map(float, volts)))
    warn_out_of_range(model, volts, "node voltage", "the ADC range", lambda p: p.measured, model.node_names)
    if args.format == "json":
        print_json({"nodes": nodes, **device_report(board)})
    else:
        width = max(len(n) for n in nodes)
        for name, v in nodes.items():
            print(f"{name:<{width}}  {v: .9g} V")
    return 0


def warn_out_of_range(model, values, what, where, channels, names=None) -> None:
    """Warn (one line) when ``values`` (V) leave the range of the emulator board profile's
    channels: a physical board would clip or refuse them."""
    ch = channels(load_profile("emulator"))
    names = list(model.input_names) if names is None else list(names)
    values = np.asarray(values, dtype=float).ravel()
    bad = [i for i, v in enumerate(values) if not ch.lo <= v <= ch.hi]
    if bad:
        i = bad[0]
        warnings.warn(f"{what} {names[i]} = {values[i]:.6g} V is outside {where} "
                      f"[{ch.lo:g}, {ch.hi:.6g}] V of the emulator board profile"
                      + (f" ({len(bad)} in all)" if len(bad) > 1 else ""), stacklevel=2)


def thermal(model: ResistiveModel, u, args) -> int:
    """Summarise ``--samples`` thermal readings at ``--temperature`` (see the module doc)."""
    T = RESISTIVE_DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    n = 1000 if args.samples is None else args.samples
    if not (np.isfinite(T) and T > 0):
        raise ConfigError(f"--temperature must be a finite number > 0 W, got {T}")
    if n < 2:
        raise ConfigError(f"--samples must be at least 2 for a covariance, got {n}")
    most = max_samples(len(u), model.n_nodes)
    if n > most:
        raise ConfigError(f"--samples {n}: at most {most} readings of the {model.n_nodes} nodes of "
                          f"{args.network} fit the emulator's memory limit")
    board = open_board(model, args, T, np.random.default_rng(args.seed))
    board.clamp(u)
    V = board.sample(n)[0]                                     # (n, n_nodes)
    mean, std = V.mean(axis=0), V.std(axis=0, ddof=1)
    cov = np.atleast_2d(np.cov(V[:, model.free], rowvar=False))
    if args.format == "json":
        print_json({"nodes": {name: {"mean": float(m), "std": float(s)}
                              for name, m, s in zip(model.node_names, mean, std)},
                    "covariance": {"nodes": list(model.free_names), "matrix": cov.tolist()},
                    "samples": n, "temperature": T, **device_report(board)})
        return 0
    width = max(len(name) for name in model.node_names)
    print(f"{n} readings at T = {T:g} W")
    for name, m, s in zip(model.node_names, mean, std):
        print(f"{name:<{width}}  {m: .9g} V  +- {s:.3g} V")
    return 0


def oscillators(G, args) -> int:
    """Phases at the lowest minimum found, or thermal statistics and basin visits."""
    if args.sampler != "auto":
        raise ConfigError("--sampler chooses the sampler of resistive networks; oscillator readings "
                          "come from the torus sampler")
    r = emulate_report(G, parse_assignments(args.input, "--input"), temperature=args.temperature,
                       samples=args.samples, restarts=args.restarts, seed=args.seed)
    if args.format == "json":
        print_json(r)
        return 0
    width = max(len(n) for n in r["nodes"])
    if "minimum" in r:
        m = r["minimum"]
        for name, phase in r["nodes"].items():
            print(f"{name:<{width}}  {phase: .9g} rad")
        print(f"lowest of {m['n_minima']} distinct minima from {m['starts']} starts: energy {m['energy']:.9g}, "
              f"smallest Hessian eigenvalue {m['min_eigenvalue']:.4g}, gap to the next {m['gap']:.4g}")
        return 0
    print(f"{r['samples']} readings at T = {r['temperature']:g} (coupling units); acceptance "
          f"{r['acceptance']:.2f}, smallest effective sample size {r['ess']:.0f}")
    for name, st in r["nodes"].items():
        print(f"{name:<{width}}  {st['mean']: .9g} rad  +- {st['std']:.3g} rad (circular)")
    print(f"basins visited ({r['quenched']} samples quenched):")
    for b in r["basins"]:
        outs = ", ".join(f"{k} {v:.4g}" for k, v in b["outputs"].items())
        print(f"  energy {b['energy']:.9g}: {100 * b['fraction']:.1f}% of samples; outputs {outs} rad")
    return 0
