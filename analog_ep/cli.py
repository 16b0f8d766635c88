"""The ``analog-ep`` command. Each subcommand lives in ``analog_ep.commands.<name>`` and
registers itself with ``register(subparsers)``; errors the user can fix are printed as one
line and exit with status 2."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import AnalogEPError

#: Modules that each add one or more subcommands.
COMMAND_MODULES = (
    "analog_ep.commands.emulate",
    "analog_ep.commands.info",
    "analog_ep.commands.netlist",
    "analog_ep.commands.calibrate",
    "analog_ep.commands.train",
    "analog_ep.commands.gradient",
    "analog_ep.commands.sweep",
    "analog_ep.commands.board_emulator",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analog-ep",
        description="Emulate, train and drive physical networks that compute by relaxing to equilibrium.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AnalogEPError as exc:
        print(f"analog-ep {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``analog-ep ... | head``): stop quietly, like other tools.
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"analog-ep {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
