"""Training controller: data, minibatches, optimiser, constraints, metrics, checkpoints.

``train(config) -> TrainResult`` is a pure function of the :class:`TrainConfig` and its
seed. Randomness: the default network's initial conductances come from
``default_rng([seed, 2])``; epoch ``e`` shuffles with ``default_rng([seed, 0, e])`` and hands
``default_rng([seed, 1, e])`` to the gradient rule (and through it to the substrate), so a
run resumed from a checkpoint (which stores that generator's state) continues exactly as an
uninterrupted one.

Optimisers act on the normalised parameters ``w = theta / theta_hi`` (``theta_hi`` the
upper bound of each parameter, e.g. ``g_max``), so learning rates are dimensionless
fractions of the range: SGD with momentum ``v <- mu v - lr g_w; w <- w + v`` and Adam
(``beta1 = 0.9, beta2 = 0.999, eps = 1e-8``), with ``g_w = theta_hi * d loss / d theta``.
After each step ``theta`` is projected into ``[lo, hi]`` and, with ``levels = N``, the
parameters applied to the substrate (and reported) are rounded to the nearest of ``N``
evenly spaced values in ``[lo, hi]`` (a digital potentiometer); the optimiser keeps the
unrounded values so that small steps accumulate.

Files in ``out``: ``checkpoint.npz`` after every epoch (written to a temporary file, then
renamed; also on Ctrl-C and when a board is lost or fails, mid-epoch: a lost port is first
reopened, up to :data:`RECONNECTS` times per minibatch, and the minibatch repeated),
``metrics.json`` (``{"final": {...}, "epochs": [...],
"seed": s, "config": {...}}``), ``metrics.csv`` (one row per epoch), ``params.json``
(``{"seed", "units", "parameters": {name: value}}``) and ``curves.png`` when matplotlib is
installed.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AnalogEPError, ConfigError
from ..hardware.errors import BoardDisconnectedError, BoardError, ProfileError

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

#: Reconnections of a lost board tried per minibatch (each one up to the driver's own tries
#: with backoff) before the run saves a checkpoint and stops.
RECONNECTS = 3

#: Config fields that may differ between a checkpoint and the run that resumes it.
RESUMABLE_CHANGES = ("epochs", "resume", "out", "progress")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (None means the network's recommendation, see
    :data:`NETWORK_SETTINGS`, else the data set's default, see :data:`DEFAULTS`).

    ``network``: file or bundled name, None for :func:`analog_ep.networks.default_network`;
    ``hidden``: hidden widths of the default network; ``readout``: ``squared`` or ``softmax``
    (resistive networks, with ``gain`` in 1/V); ``rule`` and its options (``beta`` in
    S, or ``beta_fraction`` of the output curvature; ``symmetric``; ``samples``,
    ``temperature``, ``calibration``, ``order`` for the thermal rules; for quantum networks
    ``samples`` is the shot count per phase and ``state`` the eigen-index); ``substrate``:
    ``emulator`` or ``serial:PORT``; ``optimizer``: ``adam`` or ``sgd``; ``lr`` in
    normalised units (module docstring) and ``lr_schedule`` (``constant`` or ``cosine``, see
    :func:`learning_rate`); ``levels``: quantisation; ``max_train``: use only
    the first examples of the training split (quick checks); ``eval_train``: evaluate the
    whole training split after each epoch (else report the running minibatch means).
    """

    dataset: str = "iris"
    network: str | None = None
    hidden: tuple[int, ...] | None = None
    rule: str = "ep"
    readout: str = "squared"
    gain: float | None = None
    beta: float | None = None
    beta_fraction: float = 0.2
    symmetric: bool = True
    samples: int | None = None
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
    seed: int = 0
    max_train: int | None = None
    eval_train: bool = True
    out: str | None = None
    resume: bool = False
    progress: bool = True

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
    from ..errors import NetworkError
    from ..schema import as_float
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


# ----- optimisers ------------------------------------------------------------------------------

LR_SCHEDULES = ("constant", "cosine")


def learning_rate(lr: float, schedule: str, step: int, total: int) -> float:
    """Learning rate of minibatch ``step`` (0-based) of ``total``: ``constant``, or
    ``cosine``, annealed from ``lr`` towards 0 as ``lr (1 + cos(pi step / total)) / 2``."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return 0.5 * lr * (1.0 + np.cos(np.pi * step / max(total, 1)))
    raise ConfigError(f"unknown learning-rate schedule {schedule!r}; use one of {', '.join(LR_SCHEDULES)}")


class _Optimizer:
    """SGD with momentum or Adam on normalised parameters; state is a dict of arrays."""

    def __init__(self, kind: str, momentum: float, P: int):
        if kind not in ("sgd", "adam"):
            raise ConfigError(f"unknown optimizer {kind!r}; use 'sgd' or 'adam'")
        self.kind, self.momentum = kind, float(momentum)
        self.state = {"m": np.zeros(P), "v": np.zeros(P), "t": np.zeros(1)}

    def step(self, w: np.ndarray, g: np.ndarray, lr: float) -> tuple[np.ndarray, dict]:
        """New normalised parameters and optimiser state (the current ones are not changed)."""
        st = self.state
        if self.kind == "sgd":
            m = self.momentum * st["m"] - lr * g
            return w + m, {"m": m, "v": st["v"], "t": st["t"] + 1}
        t = st["t"] + 1
        m = 0.9 * st["m"] + 0.1 * g
        v = 0.999 * st["v"] + 0.001 * g * g
        mhat = m / (1 - 0.9 ** t[0])
        vhat = v / (1 - 0.999 ** t[0])
        return w - lr * mhat / (np.sqrt(vhat) + 1e-8), {"m": m, "v": v, "t": t}


def quantise(theta: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: int | None) -> np.ndarray:
    """Project into ``[lo, hi]`` and, with ``levels``, round to the nearest of that many
    evenly spaced values."""
    theta = np.clip(theta, lo, hi)
    if levels is None:
        return theta
    step = (hi - lo) / (levels - 1)
    return lo + np.round((theta - lo) / np.where(step > 0, step, 1.0)) * step


# ----- checkpoints -----------------------------------------------------------------------------

def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_checkpoint(path: Path, *, config: dict, epoch: int, batch: int, w: np.ndarray, opt: dict,
                    rng_state: dict, running: dict, epochs: list[dict]) -> None:
    """Everything a resumed run needs, written to ``path`` atomically (write, then rename)."""
    meta = json.dumps({"config": config, "epoch": epoch, "batch": batch, "rng_state": rng_state,
                       "running": running, "epochs": epochs})

    def write(fh):
        np.savez(fh, w=w, meta=np.array(meta), **{f"opt_{k}": v for k, v in opt.items()})
    _write_atomic(path, write)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint; ConfigError naming the file when it is missing or corrupt."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {"w": z["w"], "opt": {k[4:]: z[k] for k in z.files if k.startswith("opt_")}}
            data.update(json.loads(str(z["meta"])))
        for key in ("config", "epoch", "batch", "rng_state", "running", "epochs"):
            data[key]
    except FileNotFoundError:
        raise ConfigError(f"{path}: no checkpoint to resume from") from None
    except Exception as exc:  # zip, npy and json errors all mean a damaged file
        raise ConfigError(f"{path}: corrupt checkpoint ({type(exc).__name__}: {exc})") from None
    return data


# ----- the run ---------------------------------------------------------------------------------

def _load_graph(cfg: TrainConfig, n_features: int, n_classes: int):
    from ..graph import load_network
    from ..networks import default_network
    if cfg.network is not None:
        if cfg.hidden is not None:
            raise ConfigError("--hidden shapes the default network; it does not apply with --network")
        return load_network(cfg.network)
    return default_network(cfg.dataset, n_features, n_classes, np.random.default_rng([cfg.seed, 2]), cfg.hidden)


def build(cfg: TrainConfig):
    """Data set, task and the encoded splits of a (resolved) config."""
    from ..datasets import load_dataset
    from ..families import build_task
    data = load_dataset(cfg.dataset)
    G = _load_graph(cfg, data.x_train.shape[1], data.n_classes)
    options = dict(rule=cfg.rule, beta=cfg.beta, symmetric=cfg.symmetric, samples=cfg.samples, state=cfg.state,
                   temperature=cfg.temperature, calibration=cfg.calibration, order=cfg.order,
                   substrate=cfg.substrate, profile=cfg.profile, beta_fraction=cfg.beta_fraction,
                   readout=cfg.readout, gain=cfg.gain, rng=np.random.default_rng([cfg.seed, 3]))
    from ..schema import family
    if family(G) != "resistive":
        if cfg.readout != "squared" or cfg.gain is not None:
            raise ConfigError("--readout and --gain apply to resistive networks")
        options = {k: v for k, v in options.items() if k not in ("beta_fraction", "rng", "readout", "gain")}
        if cfg.symmetric:
            options.pop("symmetric")
    elif options.pop("state") is not None:
        raise ConfigError("--state (an eigenstate index) applies to quantum networks")
    for attempt in range(RECONNECTS + 1):      # a port lost while opening it is opened again
        try:
            task = build_task(G, data.x_train.shape[1], data.n_classes, options)
            break
        except BoardDisconnectedError:
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


def _evaluate(task, theta, split) -> tuple[float, float]:
    u, d, y = split
    obj = task.objective
    if hasattr(obj, "evaluate"):
        loss, readout = obj.evaluate(theta, u, d)
    else:
        loss, readout = obj.loss(theta, u, d), obj.predict(theta, u)
    return float(loss), float(np.mean(task.decode(readout) == y))


def train(config: TrainConfig) -> TrainResult:
    """Train as ``config`` says; see the module docstring for files and randomness.

    Raises ConfigError for unknown data sets, rules or options, networks that do not fit the
    data, corrupt checkpoints or a resume with a different config. A KeyboardInterrupt, and a
    BoardError (a board that stays lost or fails, see :data:`RECONNECTS`), are re-raised
    after saving a checkpoint (when ``out`` is set), the latter saying how to resume.
    """
    if config.levels is not None and config.levels < 2:
        raise ConfigError(f"levels must be at least 2, got {config.levels}")
    data, G, task, splits = build(config)
    try:
        cfg = config.resolved(network_settings(G.graph))
        if cfg.epochs < 0 or cfg.batch_size < 1:
            raise ConfigError(f"epochs must be >= 0 and batch size >= 1, got {cfg.epochs}, {cfg.batch_size}")
        if not cfg.lr > 0:
            raise ConfigError(f"the learning rate must be positive, got {cfg.lr}")
        learning_rate(cfg.lr, cfg.lr_schedule, 0, 1)        # an unknown schedule fails here
        return _train(cfg, G, task, splits)
    finally:
        getattr(task.objective, "close", lambda: None)()     # a serial board's port


def _train(cfg: TrainConfig, G, task, splits) -> TrainResult:
    obj = task.objective
    lo, hi = (np.asarray(b, dtype=float) for b in obj.bounds())
    scale = np.where(np.isfinite(hi) & (hi > 0), np.abs(hi), 1.0)
    w = np.clip(np.asarray(obj.initial_parameters(np.random.default_rng([cfg.seed, 4])), float), lo, hi) / scale
    opt = _Optimizer(cfg.optimizer, cfg.momentum, len(w))
    out = Path(cfg.out) if cfg.out else None
    ckpt = out / "checkpoint.npz" if out else None
    start_epoch, start_batch, history = 0, 0, []
    running = _fresh_running()
    rng_state = None
    cfg_dict = cfg.to_dict()
    if cfg.resume:
        if ckpt is None:
            raise ConfigError("--resume needs --out DIR holding the checkpoint")
        state = load_checkpoint(ckpt)
        mine = {k: v for k, v in cfg_dict.items() if k not in RESUMABLE_CHANGES}
        theirs = {"lr_schedule": "constant",      # checkpoints from before schedules existed
                  **{k: v for k, v in state["config"].items() if k not in RESUMABLE_CHANGES}}
        # a setting missing from an older checkpoint counts as None
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if diff:
            raise ConfigError(f"{ckpt}: the checkpoint was made with different settings ({', '.join(diff)})")
        if cfg.lr_schedule != "constant" and cfg.epochs != state["config"]["epochs"]:
            raise ConfigError(f"{ckpt}: the {cfg.lr_schedule} learning-rate schedule spans the run's "
                              f"{state['config']['epochs']} epochs; resume with the same --epochs")
        if len(state["w"]) != len(w):
            raise ConfigError(f"{ckpt}: corrupt checkpoint ({len(state['w'])} parameters, the network has {len(w)})")
        w = state["w"]
        opt.state = {k: np.array(v, dtype=float) for k, v in state["opt"].items()}
        start_epoch, start_batch = state["epoch"], state["batch"]
        history, running, rng_state = state["epochs"], state["running"], state["rng_state"]
    if out:
        out.mkdir(parents=True, exist_ok=True)
    u_tr, d_tr, y_tr = splits["train"]
    N = len(u_tr)
    n_batches = -(-N // cfg.batch_size)

    def applied(w_):
        return quantise(w_ * scale, lo, hi, cfg.levels)

    def checkpoint(epoch, batch, rng_snapshot):
        if ckpt is not None:
            save_checkpoint(ckpt, config=cfg_dict, epoch=epoch, batch=batch, w=w, opt=opt.state,
                            rng_state=rng_snapshot, running=running, epochs=history)

    bar = None
    if cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.epochs * n_batches, initial=start_epoch * n_batches + start_batch,
                   unit="batch", desc=f"{cfg.dataset} {cfg.rule}", leave=False)
    # (epoch, next batch, rule generator state before that batch): where a resumed run starts
    position = (start_epoch, start_batch, rng_state)
    try:
        for epoch in range(start_epoch, cfg.epochs):
            order = np.random.default_rng([cfg.seed, 0, epoch]).permutation(N)
            rng = np.random.default_rng([cfg.seed, 1, epoch])
            first = 0
            if epoch == start_epoch and start_batch:
                first = start_batch
                rng.bit_generator.state = rng_state
            else:
                running = _fresh_running()
            position = (epoch, first, rng.bit_generator.state)
            for k in range(first, n_batches):
                tick, tick_cpu = time.perf_counter(), time.process_time()
                idx = order[k * cfg.batch_size:(k + 1) * cfg.batch_size]


                def step():
                    rng.bit_generator.state = position[2]   # a repeated minibatch draws the same
                    return obj.gradient(applied(w), u_tr[idx], d_tr[idx], rng)
                r = _reconnecting(obj, step)
                if not np.all(np.isfinite(r.gradient)):
                    raise AnalogEPError(f"non-finite gradient at epoch {epoch + 1}, batch {k + 1}")
                lr = learning_rate(cfg.lr, cfg.lr_schedule, epoch * n_batches + k, cfg.epochs * n_batches)
                w_new, opt_new = opt.step(w, r.gradient * scale, lr)
                w_new = np.clip(w_new, lo / scale, hi / scale)
                run_new = _accumulate(running, r, task, y_tr[idx], time.perf_counter() - tick,
                                      time.process_time() - tick_cpu)
                w, opt.state, running, position = w_new, opt_new, run_new, (epoch, k + 1, rng.bit_generator.state)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{running['loss'] / running['n']:.4g}")
            tick = time.perf_counter()
            row = _reconnecting(obj, lambda: _epoch_row(cfg, task, applied(w), splits, running, epoch))
            row["eval_seconds"] = time.perf_counter() - tick
            history.append(row)
            running = _fresh_running()
            position = (epoch + 1, 0, None)
            checkpoint(epoch + 1, 0, None)
            if bar is not None:
                acc = row["train_accuracy"]
                bar.write(f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4g} acc "
                          f"{acc if acc is not None else float('nan'):.3f}, test loss {row['test_loss']:.4g} "
                          f"acc {row['test_accuracy']:.3f} ({row['seconds']:.1f} s)")
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        checkpoint(*position)
        where = f"epoch {position[0] + 1}, batch {position[1] + 1}"
        raise KeyboardInterrupt(f"interrupted at {where}" + (f"; checkpoint saved in {ckpt}" if ckpt else "")) from None
    except BoardError as exc:
        if bar is not None:
            bar.close()
        checkpoint(*position)
        where = f"epoch {position[0] + 1}, batch {position[1] + 1}"
        hint = (f"; checkpoint saved in {ckpt}: run the same command with --resume to continue" if ckpt
                else "; give --out DIR to keep a checkpoint")
        kind = BoardDisconnectedError if isinstance(exc, BoardDisconnectedError) else BoardError
        raise kind(f"stopped at {where}: {exc}{hint}") from exc
    if bar is not None:
        bar.close()
    theta = applied(w)
    if history:
        last = history[-1]
        final = {k: last[k] for k in ("test_accuracy", "train_accuracy", "test_loss", "train_loss")}
    else:
        test_loss, test_acc = _evaluate(task, theta, splits["test"])
        train_loss, train_acc = _evaluate(task, theta, splits["train"])
        final = {"test_accuracy": test_acc, "train_accuracy": train_acc, "test_loss": test_loss,
                 "train_loss": train_loss}
    final["epochs"] = len(history)
    final["seconds_per_epoch"] = float(np.mean([h["seconds"] for h in history])) if history else 0.0
    final["cpu_seconds_per_epoch"] = float(np.mean([h["cpu_seconds"] for h in history])) if history else 0.0
    result = TrainResult(theta=theta, param_names=tuple(obj.param_names), epochs=history, final=final,
                         seed=cfg.seed, out=str(out) if out else None, config=cfg_dict)
    if out:
        write_results(out, result, units="S" if _is_resistive(G) else "model units")
    return result


def _reconnecting(obj, call):
    """``call()``; when its board's port is lost, reopen it (``substrate.reconnect()``) and
    call again, at most :data:`RECONNECTS` times."""
    for attempt in range(RECONNECTS + 1):
        try:
            return call()
        except BoardDisconnectedError:
            reconnect = getattr(getattr(obj, "substrate", None), "reconnect", None)
            if reconnect is None or attempt == RECONNECTS:
                raise
            reconnect()


def _fresh_running() -> dict:
    return {"loss": 0.0, "correct": 0, "n": 0, "n_read": 0, "seconds": 0.0, "cpu_seconds": 0.0}


def _accumulate(running: dict, r, task, y, seconds: float, cpu_seconds: float) -> dict:
    """Running minibatch sums of the loss, correct read-outs (rules that report one), wall
    and processor time."""
    running = dict(running)
    running["loss"] += r.loss * len(y)
    running["n"] += len(y)
    if "readout" in r.info:
        running["correct"] += int(np.sum(task.decode(r.info["readout"]) == y))
        running["n_read"] += len(y)
    running["seconds"] += seconds
    running["cpu_seconds"] += cpu_seconds
    return running


def _epoch_row(cfg: TrainConfig, task, theta, splits, running: dict, epoch: int) -> dict:
    row = {"epoch": epoch + 1, "seed": cfg.seed,
           "running_loss": running["loss"] / max(running["n"], 1),
           "running_accuracy": running["correct"] / running["n_read"] if running["n_read"] else None}
    if cfg.eval_train:
        row["train_loss"], row["train_accuracy"] = _evaluate(task, theta, splits["train"])
    else:
        row["train_loss"], row["train_accuracy"] = row["running_loss"], row["running_accuracy"]
    row["test_loss"], row["test_accuracy"] = _evaluate(task, theta, splits["test"])
    row["seconds"], row["cpu_seconds"] = running["seconds"], running["cpu_seconds"]
    return row


def _is_resistive(G) -> bool:
    from ..schema import family
    return family(G) == "resistive"


CSV_COLUMNS = ("epoch", "seed", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
               "running_loss", "running_accuracy", "seconds", "cpu_seconds", "eval_seconds")


def write_results(out: Path, result: TrainResult, units: str = "S") -> None:
    """metrics.json, metrics.csv, params.json and (with matplotlib) curves.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = {"final": result.final, "epochs": result.epochs, "seed": result.seed, "config": result.config}
    _write_atomic(out / "metrics.json", lambda fh: fh.write(json.dumps(metrics, indent=1).encode()))
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in result.epochs:
            writer.writerow(row)
    params = {"seed": result.seed, "units": units,
              "parameters": {n: float(v) for n, v in zip(result.param_names, result.theta)}}
    _write_atomic(out / "params.json", lambda fh: fh.write(json.dumps(params, indent=1).encode()))
    plot_curves(out / "curves.png", result.epochs)


def plot_curves(path: Path, epochs: list[dict]) -> bool:
    """Loss and accuracy per epoch; returns False (and writes nothing) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if not epochs:
        return False
    x = [e["epoch"] for e in epochs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, label in (("train_loss", "train"), ("test_loss", "test")):
        a.plot(x, [e[key] for e in epochs], marker="o", label=label)
    a.set_xlabel("epoch"), a.set_ylabel("loss (V$^2$)"), a.set_yscale("log"), a.legend()
    for key, label in (("train_accuracy", "train"), ("test_accuracy", "test")):
        b.plot(x, [e[key] if e[key] is not None else np.nan for e in epochs], marker="o", label=label)
    b.set_xlabel("epoch"), b.set_ylabel("accuracy"), b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
