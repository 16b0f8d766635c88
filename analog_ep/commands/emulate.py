"""``analog-ep emulate NETWORK``: node voltages at equilibrium, or their thermal statistics.

With ``--samples N`` (or ``--temperature T``) the board is emulated at ``T`` watts (default
:data:`~analog_ep.learning.thermal_rules.DEFAULT_TEMPERATURE`) and ``N`` readings (default
1000) give every node's mean and standard deviation and the sample covariance of the free
nodes; ``--seed`` fixes the noise. JSON: ``{"nodes": {name: {"mean", "std"}},
"covariance": {"nodes": [...], "matrix": [[...]]}, "samples": N, "temperature": T}``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..graph import family, load_network
from ..models.resistive import ResistiveModel, compile_network
from ..substrates.emulated import EmulatedBoard, max_samples
from .common import add_format_argument, add_network_argument, parse_assignments, print_json


def register(sub) -> None:
    p = sub.add_parser("emulate", help="compute every node voltage of a resistive network")
    add_network_argument(p)
    p.add_argument("--input", action="append", metavar="NODE=VOLTS",
                   help="override an input's voltage (repeatable)")
    p.add_argument("--temperature", type=float, default=None,
                   help="noise temperature in W (default with --samples: the emulator's default)")
    p.add_argument("--samples", type=int, default=None,
                   help="thermal readings to summarise (default with --temperature: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the thermal noise (default: 0)")
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


def run(args) -> int:
    G = load_network(args.network)
    if family(G) != "resistive":
        raise ConfigError(f"emulate handles resistive networks; {args.network} is {family(G)}")
    model = compile_network(G)
    u = input_vector(model, parse_assignments(args.input, "--input"))
    if args.samples is not None or args.temperature is not None:
        return thermal(model, u, args)
    board = EmulatedBoard(model)
    board.clamp(u)
    volts = board.equilibrium()[0]
    nodes = dict(zip(model.node_names, map(float, volts)))
    if args.format == "json":
        print_json({"nodes": nodes})
    else:
        width = max(len(n) for n in nodes)
        for name, v in nodes.items():
            print(f"{name:<{width}}  {v: .9g} V")
    return 0


def thermal(model: ResistiveModel, u, args) -> int:
    """Summarise ``--samples`` thermal readings at ``--temperature`` (see the module doc)."""
    from ..learning.thermal_rules import DEFAULT_TEMPERATURE
    T = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    n = 1000 if args.samples is None else args.samples
    if not (np.isfinite(T) and T > 0):
        raise ConfigError(f"--temperature must be a finite number > 0 W, got {T}")
    if n < 2:
        raise ConfigError(f"--samples must be at least 2 for a covariance, got {n}")
    most = max_samples(len(u), model.n_nodes)
    if n > most:
        raise ConfigError(f"--samples {n}: at most {most} readings of the {model.n_nodes} nodes of "
                          f"{args.network} fit the emulator's memory limit")
    board = EmulatedBoard(model, temperature=T, rng=np.random.default_rng(args.seed))
    board.clamp(u)
    V = board.sample(n)[0]                                     # (n, n_nodes)
    mean, std = V.mean(axis=0), V.std(axis=0, ddof=1)
    cov = np.atleast_2d(np.cov(V[:, model.free], rowvar=False))
    if args.format == "json":
        print_json({"nodes": {name: {"mean": float(m), "std": float(s)}
                              for name, m, s in zip(model.node_names, mean, std)},
                    "covariance": {"nodes": list(model.free_names), "matrix": cov.tolist()},
                    "samples": n, "temperature": T})
        return 0
    width = max(len(name) for name in model.node_names)
    print(f"{n} readings at T = {T:g} W")
    for name, m, s in zip(model.node_names, mean, std):
        print(f"{name:<{width}}  {m: .9g} V  +- {s:.3g} V")
    return 0
