"""``analog-ep train``: train a network on a bundled data set (see
:mod:`analog_ep.learning.trainer`); ``--network`` dispatches on the graph's family."""

from __future__ import annotations

import os
from pathlib import Path

from ..datasets import DATASETS
from ..errors import ConfigError
from ..learning.config import TrainConfig
from ..learning.optimiser import LR_SCHEDULES
from ..learning.results import physical_summary
from ..tasks.resistive import DEFAULT_RULE
from ..training import config_from_options, train
from .common import (add_device_options, add_sampler_option, add_samples_option, add_seed_option,
                     add_temperature_option, positive_int, print_json)


def add_rule_options(p) -> None:
    """Options shared by ``train`` and ``gradient``: the rule, its nudging and the substrate."""
    p.add_argument("--rule", default=None, help=f"gradient rule (default for train: {DEFAULT_RULE}, "
                   "ep on quantum networks; for gradient: exact): exact, ep, coupled, fd, or a thermal rule")
    p.add_argument("--beta", type=float, default=None,
                   help="nudging strength (S for resistive networks); default: a fraction of the "
                        "output curvature, re-evaluated at each batch")
    p.add_argument("--eta-c", type=float, default=None,
                   help="coupled rule: hold the outputs this fraction of the way from their free values "
                        "to the targets, in (0, 1] (default: 0.1)")
    p.add_argument("--one-sided", action="store_true", help="one-sided nudging (default: symmetric +-beta)")
    p.add_argument("--substrate", default="emulator", metavar="emulator|ngspice|serial:PORT",
                   help="where the physics runs: the built-in emulator (default), ngspice's shared "
                        "library (noiseless operating points), or a board on a serial port")
    p.add_argument("--profile", default=None, metavar="FILE_OR_NAME",
                   help="board profile of a serial substrate (default: the calibration record's, "
                        "else the bundled emulator template)")
    add_temperature_option(p, "noise temperature (model energy units: W for resistive networks; default: "
                              "the calibration record's, else the board profile's, else the emulator's default "
                              "for the thermal rules)")
    add_samples_option(p, "readings per input for the sampling rules; for quantum networks, measurement "
                          "shots per phase (default: exact expectations)", shots=True)
    add_sampler_option(p)
    p.add_argument("--order", type=int, choices=(0, 1), default=None,
                   help="low-t rule: 0 for the classical limit, 1 (default) for the O(T) correction")
    p.add_argument("--state", type=int, default=None, metavar="n",
                   help="quantum networks: train/read eigenstate n (default: 0, the ground state)")
    p.add_argument("--calibration", default=None, metavar="FILE",
                   help="calibration record (noise temperature, ADC gain and offset)")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a network on a bundled data set",
                       description="Train a network with a gradient rule on a bundled data set. With no "
                                   "arguments: the default diode network on Iris.")
    p.add_argument("--network", default=None,
                   help="network file or bundled example (default: a layered diode network for the data)")
    p.add_argument("--dataset", default="iris", choices=DATASETS, help="bundled data set (default: iris)")
    add_rule_options(p)
    p.add_argument("--readout", choices=("squared", "softmax"), default="squared",
                   help="cost on the output read-out: squared error against target voltages "
                        "(default) or softmax cross-entropy")
    p.add_argument("--gain", type=float, default=None, help="softmax read-out gain, 1/V (default: 40)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the network's, else per data set)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="minibatch size (default: the network's, else per data set)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate, in fractions of each parameter's upper bound "
                        "(default: the network's, else per data set)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None,
                   help="constant, or cosine annealing to 0 over the run (default: the network's, else constant)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    p.add_argument("--levels", type=int, default=None, help="quantise parameters to N levels")
    add_device_options(p, "pulses per epoch go into metrics.json")
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="hidden widths of the default network")
    p.add_argument("--max-train", type=positive_int, default=None, help="use only the first N training examples")
    add_seed_option(p)
    p.add_argument("--out", default=None, help="output directory (default: runs/NETWORK-DATASET-RULE-sSEED)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (the per-epoch lines stay; there is no bar when stderr is not a terminal)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    p.add_argument("--verbose", action="store_true", help="also print the loss of every minibatch")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="final report format (default: table)")
    p.set_defaults(func=run)


def config_from_args(args) -> TrainConfig:
    cfg = config_from_options(vars(args))
    check_out_dir(Path(cfg.out), resume=args.resume, overwrite=args.overwrite)
    return cfg


def check_out_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an output directory that cannot hold the run, or that holds an earlier run
    the user did not ask to resume or replace (a forgotten ``--resume`` would lose it)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    existing = out if out.is_dir() else next((p for p in out.parents if p.exists()), Path("."))
    if not existing.is_dir():
        raise ConfigError(f"--out {out}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: {existing} is not writable")
    if not resume and not overwrite and any((out / f).exists() for f in ("checkpoint.npz", "metrics.json")):
        raise ConfigError(f"--out {out} holds an earlier run; add --resume to continue it or "
                          "--overwrite to replace it")


def run(args) -> int:
    cfg = config_from_args(args)
    result = train(cfg)
    f = result.final
    if args.format == "json":
        print_json({"final": f, "out": result.out, "seed": result.seed})
        return 0
    print(f"test accuracy {f['test_accuracy']:.4f}  (train accuracy {f['train_accuracy']:.4f}, "
          f"test loss {f['test_loss']:.4g}, {f['epochs']} epochs, {f['seconds_per_epoch']:.2f} s/epoch); "
          f"results in {result.out}")
    physical = physical_summary(f)
    if physical:
        print(f"physical cost: {physical}")
    for picture in ("curves.png", "network.png"):
        if (Path(result.out) / picture).is_file():
            print(f"wrote {Path(result.out) / picture}")
    return 0
