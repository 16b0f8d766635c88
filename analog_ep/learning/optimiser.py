"""Optimisers on normalised parameters ``w = theta / theta_hi`` (learning rates are
dimensionless fractions of each parameter's range): SGD with momentum
``v <- mu v - lr g_w; w <- w + v`` and Adam (``beta1 = 0.9, beta2 = 0.999, eps = 1e-8``),
the learning-rate schedules, and the projection and quantisation of the applied values."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

LR_SCHEDULES = ("constant", "cosine")


def learning_rate(lr: float, schedule: str, step: int, total: int) -> float:
    """Learning rate of minibatch ``step`` (0-based) of ``total``: ``constant``, or
    ``cosine``, annealed from ``lr`` towards 0 as ``lr (1 + cos(pi step / total)) / 2``."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return 0.5 * lr * (1.0 + np.cos(np.pi * step / max(total, 1)))
    raise ConfigError(f"unknown learning-rate schedule {schedule!r}; use one of {', '.join(LR_SCHEDULES)}")


class Optimizer:
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
