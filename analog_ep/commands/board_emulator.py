"""``analog-ep board-emulator``: serve the board protocol on a pseudo-terminal.

Prints the stable device path on the first line of stdout (a symlink that survives
simulated disconnects; with ``--tcp``, a ``socket://`` URL), a description of the board on stderr, and serves until
interrupted (Ctrl-C or SIGTERM). Runs with one BLAS thread.
"""

from __future__ import annotations

import argparse
import signal
import sys

import numpy as np
from threadpoolctl import threadpool_limits

from ..board_emulator import BoardEmulator
from ..physics.noise import RESISTIVE_DEFAULT_TEMPERATURE
from .common import add_seed_option, add_temperature_option


def register(sub) -> argparse.ArgumentParser:
    """Add the ``board-emulator`` subcommand to an argparse subparsers object."""
    p = sub.add_parser("board-emulator", help="serve the board protocol on a pseudo-terminal, "
                                              "backed by the emulator",
                       description=__doc__.split("\n\n")[1])
    add_arguments(p)
    p.set_defaults(func=run_board_emulator)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", default="divider",
                   help="network file or bundled example wired on the board (default: divider)")
    add_temperature_option(p, "injected noise temperature in the model's energy units, watts for "
                              "resistive networks (default: the in-process emulator's default; 0: no noise)")
    p.add_argument("--profile", default="emulator",
                   help="board profile file or bundled name (default: emulator)")
    p.add_argument("--fault", default=None, metavar="KIND[:RATE][,KIND[:RATE]...]",
                   help="inject faults: drop, corrupt, delay, disconnect; RATE is the "
                        "probability per reply (default 0.1)")
    p.add_argument("--fault-delay", type=float, default=0.3, metavar="SECONDS",
                   help="how long a delayed reply is held back (default: 0.3 s)")
    p.add_argument("--baud", type=int, default=None,
                   help="pace replies at this baud rate, 8N1 (default: unpaced)")
    add_seed_option(p, "root seed of noise and faults (default: random, printed)", default=None)
    p.add_argument("--link", default=None, metavar="PATH",
                   help="where to put the stable symlink (default: a temporary folder)")
    p.add_argument("--tcp", type=int, default=None, metavar="PORT",
                   help="serve on socket://127.0.0.1:PORT instead of a pty (0: any free port)")
    p.add_argument("--device", default=None, metavar="PRESET|FILE",
                   help="the trainable conductances are devices of this preset or device file, "
                        "fabricated from --seed as 'analog-ep train --device' fabricates them, "
                        "moved by ELEM:PULS (see 'analog-ep device list')")


def run_board_emulator(args) -> int:
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    temperature = RESISTIVE_DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    with threadpool_limits(1):
        emu = BoardEmulator(args.network, temperature=temperature, profile=args.profile,
                            faults=args.fault, baudrate=args.baud, seed=seed,
                            delay_s=args.fault_delay, path=args.link, tcp=args.tcp, device=args.device)
        print(emu.path, flush=True)
        print(f"{emu!r}, seed={seed}", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            emu.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            emu.stop()
    return 0
