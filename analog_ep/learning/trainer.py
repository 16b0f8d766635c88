"""The training loop: minibatches, the optimiser step, constraints, metrics and checkpoints,
on a ready :class:`~analog_ep.tasks.base.Task` (an objective with its data encoding). It
knows nothing of networks, data files or boards: substrate failures reach it as the
substrate-level errors of :mod:`analog_ep.errors`. :func:`analog_ep.training.train` builds the
task from a :class:`TrainConfig` and calls :func:`fit`.

``analog_ep.training.train(config) -> TrainResult`` is a pure function of the :class:`TrainConfig` and its
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
renamed; also on Ctrl-C and when a board is lost or fails, mid-epoch: a lost port that
reaches the loop is first reopened, up to :data:`RECONNECTS` times per minibatch, and the
minibatch repeated; a board that replays replies by tag recovers inside the command, so
nothing reaches the loop and nothing is repeated),
``metrics.json`` (``{"final": {...}, "epochs": [...],
"seed": s, "config": {...}}``; when the objective keeps running totals of its physical
cost (``physical_totals()``, see :func:`per_period`), each epoch's values, evaluation
included, and in ``final`` their means (:func:`epoch_means`): on the emulator
``pulses_per_epoch``, ``pulses_per_device_per_epoch`` and ``write_energy_J_per_epoch`` with
devices, ``power_W`` and ``settling_time_s`` always),
``metrics.csv`` (one row per epoch), ``params.json``
(``{"seed", "units", "parameters": {name: value}}``) and ``curves.png`` when matplotlib is
installed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import AnalogEPError, ConfigError, SubstrateDisconnectedError, SubstrateError
from .checkpoint import resume_state, save_checkpoint
from .config import TrainConfig, TrainResult
from .optimiser import Optimizer, learning_rate, quantise
from .results import write_results

#: Reconnections of a lost board tried per minibatch (each one up to the driver's own tries
#: with backoff) before the run saves a checkpoint and stops.
RECONNECTS = 3


def _evaluate(task, theta, split) -> tuple[float, float]:
    u, d, y = split
    obj = task.objective
    if hasattr(obj, "evaluate"):
        loss, readout = obj.evaluate(theta, u, d)
    else:
        loss, readout = obj.loss(theta, u, d), obj.predict(theta, u)
    return float(loss), float(np.mean(task.decode(readout) == y))


def fit(cfg: TrainConfig, task, splits: dict, units: str = "model units",
        describe: dict | None = None) -> TrainResult:
    obj = task.objective
    lo, hi = (np.asarray(b, dtype=float) for b in obj.bounds())
    scale = np.where(np.isfinite(hi) & (hi > 0), np.abs(hi), 1.0)
    w = np.clip(np.asarray(obj.initial_parameters(np.random.default_rng([cfg.seed, 4])), float), lo, hi) / scale
    opt = Optimizer(cfg.optimizer, cfg.momentum, len(w))
    out = Path(cfg.out) if cfg.out else None
    ckpt = out / "checkpoint.npz" if out else None
    start_epoch, start_batch, history = 0, 0, []
    running = _fresh_running()
    rng_state = None
    cfg_dict = cfg.to_dict()
    board = getattr(getattr(obj, "substrate", None), "identity", None)
    if isinstance(board, str):      # a board is known by its identity, not by its port
        cfg_dict["substrate"], cfg_dict["board"] = cfg.substrate.partition(":")[0], board
    if cfg.resume:
        if ckpt is None:
            raise ConfigError("--resume needs --out DIR holding the checkpoint")
        state = resume_state(ckpt, cfg_dict, cfg.lr_schedule, cfg.epochs, len(w))
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
    say = (lambda msg: None) if cfg.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if start_epoch >= cfg.epochs and cfg.resume:
        say(f"{ckpt} already holds {start_epoch} epochs (--epochs {cfg.epochs}): nothing to train, "
            f"reporting its result; give --epochs above {start_epoch} to continue")
    elif start_epoch or start_batch:
        say(f"resuming from {ckpt} at epoch {start_epoch + 1}, batch {start_batch + 1} of {cfg.epochs} epochs")
    if cfg.progress and not cfg.quiet and sys.stderr.isatty():  # no carriage returns in a log file
        bar = tqdm(total=cfg.epochs * n_batches, initial=start_epoch * n_batches + start_batch,
                   unit="batch", desc=f"{cfg.dataset} {cfg.rule}", leave=False)
    # (epoch, next batch, rule generator state before that batch): where a resumed run starts
    position = (start_epoch, start_batch, rng_state)
    totals = getattr(obj, "physical_totals", lambda: None)
    totals_before = totals()
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
                if cfg.verbose:
                    (bar.write if bar is not None else say)(
                        f"epoch {epoch + 1} batch {k + 1}/{n_batches}: loss {float(r.loss):.4g}")
            tick = time.perf_counter()
            row = _reconnecting(obj, lambda: _epoch_row(cfg, task, applied(w), splits, running, epoch))
            row["eval_seconds"] = time.perf_counter() - tick
            if totals_before is not None:    # physical cost of this epoch, its evaluation included
                now = totals()
                row.update(per_period(totals_before, now))
                totals_before = now
            history.append(row)
            running = _fresh_running()
            position = (epoch + 1, 0, None)
            checkpoint(epoch + 1, 0, None)
            acc = row["train_accuracy"]
            (bar.write if bar is not None else say)(
                f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4g} acc "
                f"{acc if acc is not None else float('nan'):.3f}, test loss {row['test_loss']:.4g} "
                f"acc {row['test_accuracy']:.3f} ({row['seconds']:.1f} s)")
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        checkpoint(*position)
        where = f"epoch {position[0] + 1}, batch {position[1] + 1}"
        raise KeyboardInterrupt(f"interrupted at {where}" + (f"; checkpoint saved in {ckpt}" if ckpt else "")) from None
    except SubstrateError as exc:
        if bar is not None:
            bar.close()
        checkpoint(*position)
        where = f"epoch {position[0] + 1}, batch {position[1] + 1}"
        hint = (f"; checkpoint saved in {ckpt}: run the same command with --resume to continue" if ckpt
                else "; give --out DIR to keep a checkpoint")
        kind = SubstrateDisconnectedError if isinstance(exc, SubstrateDisconnectedError) else SubstrateError
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
    if totals_before is not None:
        final.update(epoch_means(totals_before, history))
    # the settings as given (defaults filled in) and what they resolved to, so the run can be repeated
    resolved = {**(describe or {}), "parameters": len(obj.param_names), "train_examples": N,
                "test_examples": len(splits["test"][0]), "batches_per_epoch": n_batches,
                "gradient_rule": repr(getattr(obj, "rule", cfg.rule)),
                "rule_temperature": getattr(getattr(obj, "rule", None), "temperature", None)}
    result = TrainResult(theta=theta, param_names=tuple(obj.param_names), epochs=history, final=final,
                         seed=cfg.seed, out=str(out) if out else None, config={**cfg_dict, "resolved": resolved})
    if out:
        write_results(out, result, units=units)
    return result


def per_period(before: dict, now: dict) -> dict:
    """One period's values from two readings of an objective's running totals ``name ->
    (sum, count)``: the change of the sum over the change of the count (a mean per count;
    None when nothing was counted), or, for a count of None, the change of the sum."""
    out = {}
    for name, (total, count) in now.items():
        t0, c0 = before.get(name, (0.0, None if count is None else 0))
        if count is None:
            out[name] = total - t0
        else:
            out[name] = (total - t0) / (count - c0) if count > c0 else None
    return out


def epoch_means(totals: dict, history: list[dict]) -> dict:
    """The final report of the running totals: each total's mean per epoch
    (``NAME_per_epoch``) and each mean's mean over the epochs (``NAME``)."""
    out = {}
    for name, (_, count) in totals.items():
        values = [h[name] for h in history if h.get(name) is not None]
        key = f"{name}_per_epoch" if count is None else name
        out[key] = float(np.mean(values)) if values else (0.0 if count is None else None)
    return out


def _reconnecting(obj, call):
    """``call()``; when its board's port is lost, reopen it (``substrate.reconnect()``) and
    call again, at most :data:`RECONNECTS` times."""
    for attempt in range(RECONNECTS + 1):
        try:
            return call()
        except SubstrateDisconnectedError:
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
