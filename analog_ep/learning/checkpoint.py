"""Checkpoints of a training run: everything a resumed run needs, written atomically
(to a temporary file, then renamed), and the check that a run may resume from one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError

#: Config fields that may differ between a checkpoint and the run that resumes it.
RESUMABLE_CHANGES = ("epochs", "resume", "out", "progress", "quiet", "verbose")


def write_atomic(path: Path, write) -> None:
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
    write_atomic(path, write)


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


def resume_state(path: Path, config: dict, lr_schedule: str, epochs: int, n_params: int) -> dict:
    """The checkpoint at ``path``, if a run with settings ``config`` may resume from it:
    ConfigError naming the settings that differ (only :data:`RESUMABLE_CHANGES` may), a
    schedule whose span changed, or a parameter count that does not fit. A run on a board
    records the board's identity (``board``) instead of its port, so a board that came back
    on another port resumes and another board is refused, naming both."""
    state = load_checkpoint(path)
    mine = {k: v for k, v in config.items() if k not in RESUMABLE_CHANGES}
    theirs = {"lr_schedule": "constant",      # checkpoints from before schedules existed
              **{k: v for k, v in state["config"].items() if k not in RESUMABLE_CHANGES}}
    # a setting missing from an older checkpoint counts as None
    if mine.get("board") != theirs.get("board") and mine.get("board") and theirs.get("board"):
        raise ConfigError(f"{path}: the checkpoint was made on board {theirs['board']}; this is board "
                          f"{mine['board']}")
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if diff:
        raise ConfigError(f"{path}: the checkpoint was made with different settings ({', '.join(diff)})")
    if lr_schedule != "constant" and epochs != state["config"]["epochs"]:
        raise ConfigError(f"{path}: the {lr_schedule} learning-rate schedule spans the run's "
                          f"{state['config']['epochs']} epochs; resume with the same --epochs")
    if len(state["w"]) != n_params:
        raise ConfigError(f"{path}: corrupt checkpoint ({len(state['w'])} parameters, the network has {n_params})")
    return state
