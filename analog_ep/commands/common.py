"""Options and parsing shared by several subcommands."""

from __future__ import annotations

import argparse
import json
import math

from ..errors import ConfigError
from ..devices import device_seed


def parse_assignments(items: list[str] | None, flag: str) -> dict[str, float]:
    """``["a=1.5", "b=-2"]`` -> ``{"a": 1.5, "b": -2.0}``; bad items raise ConfigError."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{flag} expects NAME=VALUE, got {item!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"{flag} {name}: {value!r} is not a number") from None
    return out


def add_network_argument(parser: argparse.ArgumentParser, required: bool = True) -> None:
    help_ = "network file (.graphml, .json, .cir) or the name of a bundled example"
    if required:
        parser.add_argument("network", help=help_)
    else:
        parser.add_argument("--network", default=None, help=help_)


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="output format (default: table)")


def print_json(data) -> None:
    print(json.dumps(data, indent=1))


# ----- option types and the options several commands share ------------------------------------

def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: expected an integer >= 1")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: expected an integer >= 0")
    return value


def temperature(text: str) -> float:
    """An argparse type: a noise temperature, a finite number >= 0 in the model's energy
    units (0: no injected noise; the thermal rules refuse 0 themselves)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text}: expected a finite number >= 0 (W for resistive "
                                         f"networks, coupling units for oscillators)")
    return value


def add_temperature_option(p, help_: str) -> None:
    """``--temperature T`` (model energy units; None when not given)."""
    p.add_argument("--temperature", type=temperature, default=None, metavar="T", help=help_)


def add_seed_option(p, help_: str = "root seed (default: 0)", default: int | None = 0) -> None:
    """``--seed S``: the root seed every random stream of the command is spawned from."""
    p.add_argument("--seed", type=int, default=default, help=help_)


def add_sampler_option(p) -> None:
    """``--sampler NAME[:chains=N,burn_in=N,thin=N]``: how the emulator draws thermal readings
    of a resistive network (checked where the emulator is built, naming the bad part)."""
    p.add_argument("--sampler", default="auto", metavar="NAME[:SETTINGS]",
                   help="emulator's sampler of thermal readings (resistive networks): exact gaussian "
                        "(linear networks), mala, block gibbs, or auto (default: gaussian for linear "
                        "networks, gibbs when the free nodes need at most 8 colours, mala otherwise); "
                        "mala and gibbs take chain settings, e.g. mala:thin=4,burn_in=50 or "
                        "gibbs:chains=64")


def add_samples_option(p, help_: str, default: int | None = None, shots: bool = False) -> None:
    """``--samples N`` (readings per input; with ``shots``, also spelt ``--shots`` for
    quantum networks)."""
    flags = ("--samples", "--shots") if shots else ("--samples",)
    p.add_argument(*flags, dest="samples", type=positive_int, default=default, metavar="N", help=help_)


def add_device_options(p, what: str) -> None:
    """``--device PRESET|FILE``, ``--program`` and ``--pulse-rounding``: the in-process
    emulator's trainable conductances as devices (``what`` says what the command does with
    them); fabricated from the command's ``--seed``."""
    p.add_argument("--device", default=None, metavar="PRESET|FILE",
                   help="the emulator's trainable conductances are devices of this preset or device "
                        f"file, fabricated from --seed (see 'analog-ep device list'); {what}")
    p.add_argument("--program", choices=("pulses", "verify"), default=None,
                   help="how --device targets are written: one open-loop pulse train (default) or "
                        "program-and-verify (read back, pulse again, within a pulse budget)")
    p.add_argument("--pulse-rounding", choices=("deterministic", "stochastic", "sign"), default=None,
                   help="open-loop pulse counts round((target - g)/dg): to nearest (default), "
                        "stochastically, or only their sign (one pulse)")


def device_options(args) -> dict:
    """The substrate keywords of :func:`add_device_options` (none without ``--device``; the
    fabrication seed is the one ``train`` uses for the same ``--seed``)."""
    if args.device is None:
        if args.program or args.pulse_rounding:
            raise ConfigError("--program and --pulse-rounding say how devices are written; give --device PRESET|FILE")
        return {}
    return dict(device=args.device, program=args.program, pulse_rounding=args.pulse_rounding,
                device_seed=device_seed(args.seed))
