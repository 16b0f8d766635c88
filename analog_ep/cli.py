"""The ``analog-ep`` command. Each subcommand lives in ``analog_ep.commands.<name>`` and
registers itself with ``register(subparsers)`` (the static list :data:`COMMAND_MODULES`); errors the user can fix are printed as one
line and exit with status 2."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import warnings

from .version import __version__
from .commands import board_emulator, calibrate, device, draw, emulate, gradient, info, netlist, sweep, train
from .errors import AnalogEPError

#: Modules that each add one or more subcommands (``register(subparsers)``), in help order.
COMMAND_MODULES = (emulate, info, netlist, calibrate, train, gradient, sweep, board_emulator, draw, device)


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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


#: A negative number in exponent form, which argparse would take for an option (``-1e-7``).
_NEGATIVE_EXPONENT = re.compile(r"-(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def join_negative_values(argv: list[str]) -> list[str]:
    """``--temperature -1e-7`` -> ``--temperature=-1e-7``, so the option's own check sees the
    value (argparse reads ``-1e-7`` as an unknown option, and says so instead)."""
    out: list[str] = []
    for token in argv:
        if (_NEGATIVE_EXPONENT.fullmatch(token) and out and out[-1].startswith("--")
                and "=" not in out[-1]):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def resume_hint(argv: list[str]) -> str:
    """The command that continues an interrupted ``train`` run."""
    words = [a for a in argv if a not in ("--resume", "--overwrite")]
    return "analog-ep " + " ".join(shlex.quote(a) for a in words + ["--resume"])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"{exc.prog}: error: {exc} (see {exc.prog} --help)", file=sys.stderr)
        return 2

    def one_line(message, category, *_ignored) -> None:  # a warning is one line naming the command
        print(f"analog-ep {args.command}: warning: {message}", file=sys.stderr)

    warnings.showwarning = one_line
    try:
        return int(args.func(args) or 0)
    except AnalogEPError as exc:
        print(f"analog-ep {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``analog-ep ... | head``): stop quietly, like other tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as exc:
        detail = str(exc) or "interrupted"  # the trainer says where it stopped
        if "checkpoint saved" in detail:
            detail += f"; to continue: {resume_hint(argv)}"
        print(f"analog-ep {args.command}: {detail}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
