"""``analog-ep device list|show|response``: the bundled device presets, one preset's
parameters and pulse-response picture, and one device's conductance after each pulse of
an up train then a down train (see :mod:`analog_ep.devices`, docs/devices.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..devices import DeviceSpec, device_presets, fabricate, load_device, up_down_train, without_noise
from ..errors import ConfigError
from .common import add_format_argument, add_seed_option, non_negative_int, positive_int, print_json


def register(sub) -> None:
    p = sub.add_parser("device", help="device presets: parameters, pulse responses",
                       description="Programmable conductances that move by pulses: list the "
                       "bundled presets, show one (parameters, number of states and a picture "
                       "of its pulse response), or print one device's response to pulse trains.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    a = actions.add_parser("list", help="the bundled device presets")
    add_format_argument(a)
    a.set_defaults(func=run_list)

    a = actions.add_parser("show", help="a preset's parameters and a picture of its pulse response",
                           description="Print a device's parameters and number of states, and "
                           "plot the conductance of several devices of one fabrication against "
                           "pulse number, for an up train then a down train.")
    a.add_argument("device", metavar="PRESET", help="bundled preset name or device file (.toml)")
    a.add_argument("--out", default="device.png", help="picture to write (default: device.png)")
    a.add_argument("--devices", type=positive_int, default=8, metavar="K",
                   help="devices of the fabrication to plot (default: 8)")
    a.add_argument("--pulses", type=positive_int, default=None, metavar="N",
                   help="length of each train (default: 3 x the number of states, at most 5000)")
    add_seed_option(a, "fabrication seed (default: 0)")
    add_format_argument(a)
    a.set_defaults(func=run_show)

    a = actions.add_parser("response", help="one device's conductance after each pulse of an up "
                           "then a down train",
                           description="Fabricate one device and print its conductance (S) "
                           "before the trains and after each pulse: --up pulses up, then --down "
                           "pulses down (up + down + 1 values).")
    a.add_argument("device", metavar="PRESET", help="bundled preset name or device file (.toml)")
    a.add_argument("--up", type=non_negative_int, default=0, metavar="N", help="up pulses (default: 0)")
    a.add_argument("--down", type=non_negative_int, default=0, metavar="M", help="down pulses (default: 0)")
    a.add_argument("--no-noise", action="store_true",
                   help="switch off the cycle-to-cycle, update and read noise (the device's "
                   "fabrication is unchanged)")
    add_seed_option(a, "fabrication seed (default: 0)")
    add_format_argument(a)
    a.set_defaults(func=run_response)


def summary(spec: DeviceSpec) -> dict:
    """A preset's parameters as plain data, with its number of states."""
    data = dataclasses.asdict(spec)
    data["references"] = list(spec.references)
    data["states"] = spec.states
    return data


def run_list(args) -> int:
    rows = [{"name": n, "family": (s := load_device(n)).family, "states": s.states,
             "description": s.description} for n in device_presets()]
    if args.format == "json":
        print_json(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['family']:<14} {r['states']:>6} states  {r['description']}")
    return 0


def _print_table(data: dict, indent: str = "") -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            if value:
                print(f"{indent}{key}:")
                _print_table(value, indent + "  ")
        elif isinstance(value, list):
            print(f"{indent}{key}:" + ("" if value else " none"))
            for item in value:
                print(f"{indent}  - {item}")
        else:
            print(f"{indent}{key}: {value:.6g}" if isinstance(value, float) else f"{indent}{key}: {value}")


def plot_response(trace: np.ndarray, spec: DeviceSpec, up: int, path: Path) -> None:
    """Conductance (uS) of each device (columns of ``trace``) against pulse number, the up
    train shaded apart from the down train."""
    import matplotlib  # loaded only when a figure is drawn
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    pulses = np.arange(len(trace))
    ax.axvspan(0, up, color="0.93", lw=0)
    ax.plot(pulses, trace * 1e6, lw=0.8)
    ax.set_xlim(0, len(trace) - 1)
    ax.set_xlabel(f"pulse number (up to {up}, then down)")
    ax.set_ylabel("conductance (uS)")
    ax.set_title(f"{spec.name}: {spec.family}, {trace.shape[1]} devices", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_show(args) -> int:
    spec = load_device(args.device)
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; name a picture file (e.g. {out / 'device.png'})")
    n = args.pulses if args.pulses is not None else min(3 * spec.states, 5000)
    trace = up_down_train(fabricate(spec, args.devices, args.seed), n, n)
    try:
        plot_response(trace, spec, n, out)
    except (OSError, ValueError) as exc:  # unwritable path, unknown picture format
        raise ConfigError(f"cannot write {out}: {exc}") from None
    data = summary(spec)
    if args.format == "json":
        print_json({**data, "picture": str(out)})
    else:
        _print_table(data)
        print(f"wrote {out}")
    return 0


def run_response(args) -> int:
    spec = load_device(args.device)
    if args.no_noise:
        spec = without_noise(spec)
    g = up_down_train(fabricate(spec, 1, args.seed), args.up, args.down)[:, 0]
    if args.format == "json":
        print_json({"g": g.tolist()})
    else:
        for i, value in enumerate(g):
            print(f"{i:>6}  {value:.9g} S")
    return 0
