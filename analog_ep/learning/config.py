"""Settings of a training run (:class:`TrainConfig`), its result (:class:`TrainResult`), and
the defaults that fill unset settings: the network file's recommendations, then the data
set's."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, NetworkError
from ..schema import as_float

#: Per data set defaults: epochs, batch size, learning rate (Adam, normalised units).
DEFAULTS: dict[str, dict] = {
    "xor": {"epochs": 100, "batch_size": 4, "lr": 0.02, "lr_schedule": "constant"},
    "iris": {"epochs": 40, "batch_size": 10, "lr": 0.01, "lr_schedule": "constant"},
    "digits": {"epochs": 10, "batch_size": 20, "lr": 0.01, "lr_schedule": "constant"},
    "mnist5k": {"epochs": 6, "batch_size": 20, "lr": 0.01, "lr_schedule": "constant"},
}

#: Graph attributes through which a network file recommends its training settings, and the
#: settings they stand for; they fill settings left unset before the data set's defaults do.
NETWORK_SETTINGS = {"train_epochs": "epochs", "train_batch_size": "batch_size", "train_lr": "lr",
                    "train_lr_schedule": "lr_schedule"}


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (None means the network's recommendation, see
    :data:`NETWORK_SETTINGS`, else the data set's default, see :data:`DEFAULTS`).

    ``rule``: None for the network family's default (:func:`analog_ep.tasks.default_rule`);
    ``network``: file or bundled name, None for :func:`analog_ep.networks.default_network`;
    ``hidden``: hidden widths of the default network; ``readout``: ``squared`` or ``softmax``
    (resistive networks, with ``gain`` in 1/V); ``rule`` and its options (``beta`` in
    S, or ``beta_fraction`` of the output curvature; ``symmetric``; ``eta_c``, the clamping
    fraction of the coupled rule; ``samples``,
    ``temperature``, ``calibration``, ``order`` for the thermal rules, ``sampler`` the emulator's
    sampler of their readings (``auto``, ``gaussian``, ``mala``, ``gibbs``); for quantum networks
    ``samples`` is the shot count per phase and ``state`` the eigen-index); ``substrate``:
    ``emulator`` or ``serial:PORT``; ``optimizer``: ``adam`` or ``sgd``; ``lr`` in
    normalised units (module docstring) and ``lr_schedule`` (``constant`` or ``cosine``, see
    :func:`learning_rate`); ``levels``: quantisation; ``device``: a device preset or file
    whose devices hold the emulator's trainable conductances, written by ``program``
    (``pulses``, the default, or ``verify``) with open-loop counts rounded as
    ``pulse_rounding`` says (``deterministic``, the default, ``stochastic`` or ``sign``);
    ``max_train``: use only
    the first examples of the training split (quick checks); ``eval_train``: evaluate the
    whole training split after each epoch (else report the running minibatch means).
    """

    dataset: str = "iris"
    network: str | None = None
    hidden: tuple[int, ...] | None = None
    rule: str | None = None
    readout: str = "squared"
    gain: float | None = None
    beta: float | None = None
    beta_fraction: float | None = None
    eta_c: float | None = None
    symmetric: bool = True
    samples: int | None = None
    sampler: str = "auto"
    state: int | None = None
    temperature: float | None = None
    calibration: str | None = None
    order: int | None = None
    substrate: str = "emulator"
    profile: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str = "adam"
    lr: float | None = None
    lr_schedule: str | None = None
    momentum: float = 0.9
    levels: int | None = None
    device: str | None = None
    program: str | None = None
    pulse_rounding: str | None = None
    seed: int = 0
    max_train: int | None = None
    eval_train: bool = True
    out: str | None = None
    resume: bool = False
    progress: bool = True
    quiet: bool = False
    verbose: bool = False

    def resolved(self, network: dict | None = None) -> "TrainConfig":
        """The config with unset settings filled in: first from the ``network``'s
        recommendations (:func:`network_settings`), then from the data set's defaults."""
        d = {**DEFAULTS.get(self.dataset, DEFAULTS["iris"]), **(network or {})}
        return dataclasses.replace(self, **{k: v for k, v in d.items() if getattr(self, k) is None})

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["hidden"] = list(self.hidden) if self.hidden is not None else None
        return out


@dataclass(frozen=True)
class TrainResult:
    """Trained parameters (``theta`` (P,), as applied: projected and quantised), their
    names, per-epoch metrics and the final ones (``test_accuracy``, ``train_accuracy``,
    ``test_loss``, ...)."""

    theta: np.ndarray
    param_names: tuple[str, ...]
    epochs: list[dict]
    final: dict
    seed: int
    out: str | None = None
    config: dict = field(default_factory=dict)


def network_settings(graph: dict) -> dict:
    """The training settings a network file recommends (graph attributes
    :data:`NETWORK_SETTINGS`), e.g. ``train_lr = 0.01``; ConfigError on a malformed value."""
    out = {}
    for attr, key in NETWORK_SETTINGS.items():
        if attr not in graph:
            continue
        value = graph[attr]
        try:
            if key == "lr_schedule":
                out[key] = str(value)
            elif key == "lr":
                out[key] = as_float(value, f"graph attribute {attr}")
            else:
                number = as_float(value, f"graph attribute {attr}")
                if number != int(number):
                    raise NetworkError(f"graph attribute {attr} must be a whole number, got {value!r}")
                out[key] = int(number)
        except NetworkError as exc:
            raise ConfigError(str(exc)) from None
    return out
