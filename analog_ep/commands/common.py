"""Options and parsing shared by several subcommands."""

from __future__ import annotations

import argparse
import json

from ..errors import ConfigError


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
