"""``train``'s settings by their long option names (dashes as underscores), and the one
mapping from them to a :class:`~analog_ep.learning.trainer.TrainConfig`, shared by
``analog-ep train`` and sweep files.

Most names are TrainConfig fields; three are not: ``one_sided`` (``symmetric = not
one_sided``), ``no_progress`` (``progress = not no_progress``) and the rule, which when unset
defaults by the network's family (:data:`DEFAULT_RULES`)."""

from __future__ import annotations

from ..graph import load_network
from ..schema import family
from .trainer import TrainConfig

#: The rule used when none is given, by network family: unclamped thermal EP for classical
#: networks; nudged EP for qubit networks (an eigenstate has no thermal samples).
DEFAULT_RULES = {"resistive": "thermal", "oscillator": "thermal", "quantum": "ep"}
DEFAULT_RULE = DEFAULT_RULES["resistive"]

#: ``train``'s settings: name -> (type of a value, default). ``list`` is a list of ints.
TRAIN_OPTIONS: dict[str, tuple[type, object]] = {
    "network": (str, None), "dataset": (str, "iris"), "rule": (str, None), "beta": (float, None),
    "one_sided": (bool, False), "substrate": (str, "emulator"), "profile": (str, None),
    "temperature": (float, None), "samples": (int, None), "order": (int, None), "state": (int, None),
    "calibration": (str, None), "readout": (str, "squared"), "gain": (float, None),
    "epochs": (int, None), "batch_size": (int, None), "optimizer": (str, "adam"), "lr": (float, None),
    "lr_schedule": (str, None), "momentum": (float, 0.9), "levels": (int, None), "hidden": (list, None),
    "max_train": (int, None), "seed": (int, 0), "out": (str, None), "resume": (bool, False),
    "no_progress": (bool, False),
}


def default_rule(network: str | None) -> str:
    """The default rule for a network file or bundled name (``None``: the default network)."""
    if network is None:
        return DEFAULT_RULE
    return DEFAULT_RULES[family(load_network(network, validate=False))]


def config_from_options(options: dict) -> TrainConfig:
    """The TrainConfig of ``train``'s settings ``options`` (names of :data:`TRAIN_OPTIONS`;
    names missing take the option's default, other names are ignored). Without ``out``
    the run writes ``runs/DATASET-RULE-sSEED``."""
    o = {name: options.get(name, default) for name, (_, default) in TRAIN_OPTIONS.items()}
    if o["rule"] is None:
        o["rule"] = default_rule(o["network"])
    if o["out"] is None:
        o["out"] = f"runs/{o['dataset']}-{o['rule']}-s{o['seed']}"
    o["symmetric"] = not o.pop("one_sided")
    o["progress"] = not o.pop("no_progress")
    o["hidden"] = tuple(o["hidden"]) if o["hidden"] else None
    return TrainConfig(**o)
