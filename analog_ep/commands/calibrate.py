"""``analog-ep calibrate``: measure a board's noise temperature and write a calibration record."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import numpy as np

from ..calibration import METHODS, NUDGE_SIGMAS, TOLERANCE, calibrate
from ..errors import ConfigError
from ..graph import load_network
from ..schema import family
from ..models.resistive import compile_network
from ..physics.noise import RESISTIVE_DEFAULT_TEMPERATURE, NoiseModel
from ..substrates.factory import open_substrate
from .common import (add_device_options, add_sampler_option, add_samples_option, add_seed_option,
                     add_temperature_option, device_options, print_json)

#: Network calibrated when --network is not given.
DEFAULT_NETWORK = "divider"


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="measure the noise temperature T (and whether the noise is Boltzmann)",
        description="Measure the noise temperature T that thermal EP divides by, with a standard "
                    "error, by equipartition (Cov = T H^-1, needs the conductances) and/or "
                    "fluctuation-dissipation (Cov = T dV/dI from small nudge currents, model-free), "
                    "and judge whether the noise is Boltzmann enough for thermal EP. Writes a JSON "
                    "record that train and gradient read with --calibration.")
    p.add_argument("--network", default=DEFAULT_NETWORK,
                   help=f"network wired on the board: a file or a bundled name (default: {DEFAULT_NETWORK})")
    p.add_argument("--substrate", default="emulator",
                   help="'emulator' (in process) or 'serial:PORT' (a board; default: emulator)")
    p.add_argument("--profile", default=None, help="board profile of a serial board (default: emulator)")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="estimator(s) of T (default: both, or equipartition on a board without nudge sources)")
    add_samples_option(p, "readings per run (default: 4000)", default=4000)
    add_sampler_option(p)
    p.add_argument("--settings", type=int, default=2,
                   help="conductance settings to compare (default: 2; T must not change with them)")
    p.add_argument("--precision", type=float, default=None,
                   help="required relative standard error of T, e.g. 0.01; refuses too few samples")
    p.add_argument("--adc-points", type=int, default=0,
                   help="first fit every ADC channel's gain and offset from this many input levels "
                        "(loopback against the known network; default: 0, skip)")
    p.add_argument("--nudge-sigmas", type=float, default=NUDGE_SIGMAS,
                   help=f"fdt: move each output by this many reading standard deviations (default: {NUDGE_SIGMAS:g})")
    p.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help=f"largest relative deviation from Boltzmann still called Boltzmann (default: {TOLERANCE})")
    p.add_argument("--valid-days", type=float, default=None,
                   help="days before the record goes stale (default: 30 for boards, never for the emulator)")
    p.add_argument("--out", default=None, help="write the record here (e.g. calibration/NAME.json)")
    p.add_argument("--plot", default=None,
                   help="plot file (default: the record's name with .png)")
    add_seed_option(p, "root seed of the emulator's noise and of its devices' fabrication (default: 0)")
    g = p.add_argument_group("emulator noise (in-process emulator only)")
    add_temperature_option(g, "injected noise temperature T in W (default: the emulator's default); "
                              "for a serial board, the value the board states")
    g.add_argument("--no-injected", action="store_true", help="switch the injected (Boltzmann) noise off")
    g.add_argument("--johnson", type=float, default=None, metavar="KELVIN",
                   help="add Johnson noise of the resistors at this temperature")
    g.add_argument("--adc-noise", type=float, default=0.0, metavar="VOLTS", help="ADC noise (V rms)")
    g.add_argument("--adc-bits", type=int, default=None, help="ADC resolution over --adc-range")
    g.add_argument("--adc-range", type=float, nargs=2, default=(-1.0, 1.0), metavar=("LO", "HI"))
    g.add_argument("--sample-interval", type=float, default=None, metavar="SECONDS",
                   help="readings form a time series this far apart (default: independent readings)")
    add_device_options(g, "the network file's conductances (and each setting's) are programmed onto them")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.set_defaults(func=run)


def _command_line(args) -> str:
    """The command that reproduces this run (every option that matters, explicitly)."""
    parts = ["analog-ep", "calibrate", "--network", args.network, "--substrate", args.substrate,
             "--method", args.method, "--samples", str(args.samples), "--settings", str(args.settings),
             "--seed", str(args.seed)]
    optional = [("--profile", args.profile), ("--temperature", args.temperature),
                ("--precision", args.precision), ("--johnson", args.johnson),
                ("--adc-bits", args.adc_bits), ("--sample-interval", args.sample_interval),
                ("--valid-days", args.valid_days), ("--out", args.out), ("--device", args.device),
                ("--program", args.program), ("--pulse-rounding", args.pulse_rounding),
                ("--sampler", None if args.sampler == "auto" else args.sampler)]
    if args.nudge_sigmas != NUDGE_SIGMAS:
        optional.append(("--nudge-sigmas", args.nudge_sigmas))
    if args.tolerance != TOLERANCE:
        optional.append(("--tolerance", args.tolerance))
    if args.adc_noise:
        optional.append(("--adc-noise", args.adc_noise))
    if args.adc_points:
        optional.append(("--adc-points", args.adc_points))
    for flag, value in optional:
        if value is not None:
            parts += [flag, str(value)]
    if args.adc_bits is not None:
        parts += ["--adc-range", *map(str, args.adc_range)]
    if args.no_injected:
        parts.append("--no-injected")
    return " ".join(shlex.quote(p) for p in parts)


def open_board(args, graph, model):
    """The substrate the options describe; the emulator gets the requested noise model."""
    emulator = args.substrate == "emulator"
    noise_flags = (args.no_injected or args.johnson is not None or args.adc_noise or
                   args.adc_bits is not None or args.sample_interval is not None)
    if noise_flags and not emulator:
        raise ConfigError("the emulator noise options apply to --substrate emulator only")
    if args.profile is not None and emulator:
        raise ConfigError("--profile applies to --substrate serial:PORT only (the in-process emulator has no profile)")
    if emulator and args.no_injected and args.johnson is None and not args.adc_noise:
        raise ConfigError("--no-injected leaves the emulator without noise; add --johnson KELVIN or "
                          "--adc-noise VOLTS to see what other noise looks like")
    rng = np.random.default_rng(args.seed)
    board = open_substrate(args.substrate, model if emulator else graph, temperature=args.temperature, rng=rng,
                           profile=args.profile, default_temperature=RESISTIVE_DEFAULT_TEMPERATURE,
                           sampler=args.sampler, **device_options(args))
    if emulator:
        board.noise = NoiseModel(injected=not args.no_injected, johnson_temperature=args.johnson,
                                 adc_noise=args.adc_noise, adc_bits=args.adc_bits,
                                 adc_range=tuple(args.adc_range), sample_interval=args.sample_interval)
    return board


def check_out(path: str | None) -> None:
    """Refuse an --out that cannot be written before measuring anything."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"--out {path}: is a folder; give the record's file name, e.g. {p / 'board.json'}")
    folder = next((q for q in p.absolute().parents if q.exists()), None)
    if folder is None or not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ConfigError(f"--out {path}: cannot create a file there")


def run(args) -> int:
    check_out(args.out)
    graph = load_network(args.network)
    if family(graph) != "resistive":
        raise ConfigError(f"calibrate handles resistive networks; {args.network} is {family(graph)}")
    model = compile_network(graph)
    board = open_board(args, graph, model)
    quiet = args.format == "json"
    if args.method is None:
        args.method = "both" if board.capabilities.nudge else "equipartition"
        if not quiet and args.method == "equipartition":
            print("  the board has no nudge current sources: equipartition only", file=sys.stderr)
    try:
        record = calibrate(board, model, method=args.method, samples=args.samples, settings=args.settings,
                           precision=args.precision, nudge_sigmas=args.nudge_sigmas,
                           tolerance=args.tolerance, command=_command_line(args), seed=args.seed,
                           valid_days=args.valid_days, adc_points=args.adc_points,
                           progress=None if quiet else lambda msg: print(f"  {msg}", file=sys.stderr))
    finally:
        close = getattr(board, "close", None)
        if close is not None:
            close()
    if args.out:
        try:
            record.save(args.out)
        except OSError as exc:
            raise ConfigError(f"--out {args.out}: cannot write the record ({exc.strerror or exc})") from None
    plot = args.plot or (str(Path(args.out).with_suffix(".png")) if args.out else None)
    plotted = plot_record(record, plot) if plot else False
    if plotted and (quiet or not args.out):  # with --out, the summary line names the plot
        print(f"wrote {plot}", file=sys.stderr if quiet else sys.stdout)
    if quiet:
        print_json(record.data)
        return 0
    d = record.data
    t = d["temperature"]
    print(f"T = {t['value']:.6g} +- {t['stderr']:.2g} {t['units']}  ({d['method']}, board {d['board']['id']})")
    for name, runs in d["methods"].items():
        vals = ", ".join(f"{r['value']:.5g} +- {r['stderr']:.2g}" for r in runs)
        print(f"  {name:<14} {vals}  (per setting)")
    print("  per node: " + ", ".join(f"{n} {v['value']:.4g}" for n, v in d["per_node"].items()))
    print(f"verdict: {d['consistency']['verdict']}: {d['consistency']['message']}")
    q = d.get("quantisation")
    if q and q["warning"]:
        print(f"warning: {q['warning']}")
    if args.out:
        print(f"record written to {args.out}" + (f", plot to {plot}" if plotted else ""))
    return 0


def plot_record(record, path: str) -> bool:
    """Per-node estimates with error bars for each method and setting, the headline T as a
    band, and the shares of the measured variance."""
    # imported here: pyplot costs about 0.3 s of start-up that most commands never need
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    d = record.data
    T, se, units = d["temperature"]["value"], d["temperature"]["stderr"], d["temperature"]["units"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 1]})
    x0 = 0
    ticks, labels = [], []
    for name, runs in d["methods"].items():
        for s, r in enumerate(runs):
            nodes = list(r["per_node"])
            xs = np.arange(len(nodes)) + x0
            ax.errorbar(xs, [r["per_node"][n]["value"] for n in nodes],
                        yerr=[3 * r["per_node"][n]["stderr"] for n in nodes], fmt="o", capsize=3,
                        label=f"{name}, setting {s + 1}")
            ticks += list(xs)
            labels += nodes
            x0 += len(nodes) + 1
    ax.axhspan(T - 3 * se, T + 3 * se, color="0.85", label="T +- 3 s.e.")
    ax.axhline(T, color="k", lw=1)
    ax.set_xticks(ticks, labels, rotation=45, fontsize=8)
    ax.set_ylabel(f"T ({units})")
    ax.set_title(f"T = {T:.4g} +- {se:.2g} {units}; per-node estimates (error bars 3 s.e.)")
    ax.legend(fontsize=7)
    fr = d["consistency"].get("fractions") or {}
    bx.bar(list(fr), list(fr.values()), color=["tab:green", "tab:orange", "tab:red"][:len(fr)])
    bx.set_ylim(0, 1)
    bx.set_title(f"variance shares: {d['consistency']['verdict']}", fontsize=9)
    fig.tight_layout()
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--plot {path}: cannot write the plot ({getattr(exc, 'strerror', None) or exc})") from None
    finally:
        plt.close(fig)
    return True
