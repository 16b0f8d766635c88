"""A training run from its settings: the network (a file, or the data set's default network),
the bundled data set, the family's task, then the training loop of
:mod:`analog_ep.learning.trainer`. Files and randomness are described there.

The rule left unset (``TrainConfig.rule = None``) is the network family's default
(:func:`analog_ep.tasks.default_rule`), the same for the command line and the library.

``train``'s settings by their long option names (dashes as underscores) map to a
:class:`TrainConfig` in one place, :func:`config_from_options`, shared by ``analog-ep
train`` and sweep files. Most names are TrainConfig fields; two are not: ``one_sided``
(``symmetric = not one_sided``) and ``no_progress`` (``progress = not no_progress``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from .devices import device_seed
from .datasets import load_dataset
from .drawing import apply_parameters, draw_network
from .errors import ConfigError, SubstrateDisconnectedError
from .graph import load_network
from .hardware.errors import ProfileError
from .learning.config import TrainConfig, TrainResult, network_settings
from .learning.optimiser import learning_rate
from .learning.trainer import RECONNECTS, fit
from .networks import default_network
from .schema import family
from .tasks import build_task, default_rule
from .tasks.resistive import DEFAULT_RULE


#: ``train``'s settings: name -> (type of a value, default). ``list`` is a list of ints.
TRAIN_OPTIONS: dict[str, tuple[type, object]] = {
    "network": (str, None), "dataset": (str, "iris"), "rule": (str, None), "beta": (float, None), "eta_c": (float, None),
    "one_sided": (bool, False), "substrate": (str, "emulator"), "profile": (str, None),
    "temperature": (float, None), "samples": (int, None), "sampler": (str, "auto"), "order": (int, None),
    "state": (int, None),
    "calibration": (str, None), "readout": (str, "squared"), "gain": (float, None),
    "epochs": (int, None), "batch_size": (int, None), "optimizer": (str, "adam"), "lr": (float, None),
    "lr_schedule": (str, None), "momentum": (float, 0.9), "levels": (int, None), "hidden": (list, None),
    "device": (str, None), "program": (str, None), "pulse_rounding": (str, None),
    "max_train": (int, None), "seed": (int, 0), "out": (str, None), "resume": (bool, False),
    "no_progress": (bool, False), "quiet": (bool, False), "verbose": (bool, False), "overwrite": (bool, False),
}


def rule_for(network: str | None, rule: str | None = None, ngspice: bool = False) -> str:
    """``rule``, else the default rule of the network file or bundled name (``None``: the
    data set's default network, a resistive one); ``ngspice``: the network runs on ngspice."""
    if rule is not None:
        return rule
    return DEFAULT_RULE if network is None else default_rule(load_network(network, validate=False, ngspice=ngspice))


def config_from_options(options: dict) -> TrainConfig:
    """The TrainConfig of ``train``'s settings ``options`` (names of :data:`TRAIN_OPTIONS`;
    names missing take the option's default, other names are ignored). The rule left unset
    is the network family's default; without ``out`` the run writes
    ``runs/NETWORK-DATASET-RULE-sSEED`` (``default`` for the data set's default network).
    ``overwrite`` is the command line's permission to replace an earlier run, not a setting
    of the run itself."""
    o = {name: options.get(name, default) for name, (_, default) in TRAIN_OPTIONS.items()}
    o["rule"] = rule_for(o["network"], o["rule"], o["substrate"] == "ngspice")
    if o["out"] is None:
        stem = Path(o["network"]).stem if o["network"] else "default"
        o["out"] = f"runs/{stem}-{o['dataset']}-{o['rule']}-s{o['seed']}"
    o.pop("overwrite")
    o["symmetric"] = not o.pop("one_sided")
    o["progress"] = not o.pop("no_progress")
    o["hidden"] = tuple(o["hidden"]) if o["hidden"] else None
    return TrainConfig(**o)


def _load_graph(cfg: TrainConfig, n_features: int, n_classes: int):
    if cfg.network is not None:
        if cfg.hidden is not None:
            raise ConfigError("--hidden shapes the default network; it does not apply with --network")
        return load_network(cfg.network, ngspice=cfg.substrate == "ngspice")
    return default_network(cfg.dataset, n_features, n_classes, np.random.default_rng([cfg.seed, 2]), cfg.hidden)


def build(cfg: TrainConfig):
    """Data set, task and the encoded splits of a (resolved) config."""
    data = load_dataset(cfg.dataset)
    G = _load_graph(cfg, data.x_train.shape[1], data.n_classes)
    options = dict(rule=cfg.rule or default_rule(G), beta=cfg.beta, symmetric=cfg.symmetric, samples=cfg.samples, state=cfg.state,
                   temperature=cfg.temperature, calibration=cfg.calibration, order=cfg.order,
                   substrate=cfg.substrate, profile=cfg.profile, beta_fraction=cfg.beta_fraction, eta_c=cfg.eta_c,
                   readout=cfg.readout, gain=cfg.gain, sampler=cfg.sampler, rng=np.random.default_rng([cfg.seed, 3]))
    devices = dict(device=cfg.device, program=cfg.program, pulse_rounding=cfg.pulse_rounding)
    if cfg.device is None and (cfg.program or cfg.pulse_rounding):
        raise ConfigError("--program and --pulse-rounding say how devices are written; give --device PRESET|FILE")
    if family(G) != "resistive":
        if cfg.device is not None:
            raise ConfigError("--device applies to resistive networks")
        if cfg.readout != "squared" or cfg.gain is not None or cfg.eta_c is not None:
            raise ConfigError("--readout, --gain and --eta-c apply to resistive networks")
        if cfg.sampler != "auto":
            raise ConfigError("--sampler chooses the emulator's sampler of resistive networks")
        options = {k: v for k, v in options.items()
                   if k not in ("beta_fraction", "rng", "readout", "gain", "eta_c", "sampler")}
        if cfg.symmetric:
            options.pop("symmetric")
    elif options.pop("state") is not None:
        raise ConfigError("--state (an eigenstate index) applies to quantum networks")
    elif cfg.device is not None:      # the devices' fabrication: its own stream of the run's seed
        options.update(devices, device_seed=device_seed(cfg.seed))
    for attempt in range(RECONNECTS + 1):      # a port lost while opening it is opened again
        try:
            task = build_task(G, data.x_train.shape[1], data.n_classes, options)
            break
        except SubstrateDisconnectedError:
            if attempt == RECONNECTS:
                raise
            time.sleep(0.1 * 2 ** attempt)
        except ProfileError as exc:
            if cfg.network is not None or cfg.substrate == "emulator":
                raise
            raise ProfileError(f"{exc}; or, if the board is wired with another network than the default "
                               f"one for {cfg.dataset}, give it with --network FILE_OR_NAME") from None
    n = len(data.x_train) if cfg.max_train is None else min(cfg.max_train, len(data.x_train))
    splits = {"train": (task.encode_inputs(data.x_train[:n]), task.encode_targets(data.y_train[:n]), data.y_train[:n]),
              "test": (task.encode_inputs(data.x_test), task.encode_targets(data.y_test), data.y_test)}
    return data, G, task, splits


def train(config: TrainConfig) -> TrainResult:
    """Train as ``config`` says; see the module docstring for files and randomness.

    Raises ConfigError for unknown data sets, rules or options, networks that do not fit the
    data, corrupt checkpoints or a resume with a different config. A KeyboardInterrupt, and a
    SubstrateError (a board that stays lost or fails, see
    :data:`~analog_ep.learning.trainer.RECONNECTS`), are re-raised
    after saving a checkpoint (when ``out`` is set), the latter saying how to resume.
    """
    if config.levels is not None and config.levels < 2:
        raise ConfigError(f"levels must be at least 2, got {config.levels}")
    data, G, task, splits = build(config)
    try:
        cfg = dataclasses.replace(config.resolved(network_settings(G.graph)), rule=config.rule or default_rule(G))
        if cfg.epochs < 0 or cfg.batch_size < 1:
            raise ConfigError(f"epochs must be >= 0 and batch size >= 1, got {cfg.epochs}, {cfg.batch_size}")
        if not cfg.lr > 0:
            raise ConfigError(f"the learning rate must be positive, got {cfg.lr}")
        learning_rate(cfg.lr, cfg.lr_schedule, 0, 1)        # an unknown schedule fails here
        describe = {"network": str(G.graph.get("name", "")), "network_source": G.graph.get("source"),
                    "nodes": G.number_of_nodes(), "elements": G.number_of_edges()}
        result = fit(cfg, task, splits, units="S" if family(G) == "resistive" else "model units",
                     describe=describe)
        if result.out:                      # the trained network, as a reader of the run sees it
            trained = G.copy()
            apply_parameters(trained, dict(zip(result.param_names, map(float, result.theta))), "the run")
            draw_network(trained, Path(result.out) / "network.png")
        return result
    finally:
        getattr(task.objective, "close", lambda: None)()     # a serial board's port
