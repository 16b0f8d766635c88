"""The ``analog-ep`` command. Each subcommand lives in ``analog_ep.commands.<name>`` and
registers itself with ``register(subparsers)`` (the static list :data:`COMMAND_MODULES`); errors the user can fix are printed as one
line and exit with status 2."""

from __future__ import annotations

import argparse
import os
import sys

from .commands import board_emulator, calibrate, emulate, gradient, info, netlist, sweep, train
from .errors import AnalogEPError

#: Modules that each add one or more subcommands (``register(subparsers)``), in help order.
COMMAND_MODULES = (emulate, info, netlist, calibrate, train, gradient, sweep, board_emulator)


class UsageError(Exception):
    """A command line argparse cannot parse; ``prog`` names the (sub)command."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``analog-ep CMD: error: ...``), like
    every other error the command prints, instead of the usage text and an exit."""

    def error(self, message: str):
        # "argument --x: 5: expected ..." reads "--x 5: expected ..."
        if message.startswith("argument "):
            message = message[len("argument "):].replace(": ", " ", 1)
        raise UsageError(self.prog, message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="analog-ep",
        description="Emulate, train and drive physical networks that compute by relaxing to equilibrium.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"{exc.prog}: error: {exc} (see {exc.prog} --help)", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except AnalogEPError as exc:
        print(f"analog-ep {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``analog-ep ... | head``): stop quietly, like other tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"analog-ep {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
