"""A cross-entropy-style read-out on top of output voltages (an alternative to the squared
error of :class:`analog_ep.models.cost.SquaredCost`, which stays the default).

The read-out ``r`` (B, K) is the output voltages, or the differences ``V_p - V_m`` of
differential pairs; with a gain ``gamma`` (1/V) the class probabilities are
``p = softmax(gamma r)`` and, for one-hot (or any probability) targets ``d``,

    C = -sum_k d_k log p_k                       (nats)
    dC/dr = gamma (p - d)
    d2C/dr2 = gamma^2 (diag p - p p^T)  <=  gamma^2 / 2 * I

The cost is not quadratic: nudging with it (``E + beta C``) injects the state-dependent
currents ``-beta dC/dV``. ``hessian`` returns the constant majorant ``gamma^2/2 D^T D``
(``D`` reads ``r`` from the state), which the Newton solvers use as a fixed curvature (each
step then still decreases ``F``, and the exact ``F`` and gradient decide convergence) and
the ``ep`` rule uses for its convexity bound (conservative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .cost import SquaredCost


@dataclass(frozen=True)
class SoftmaxCrossEntropyCost:
    """Softmax cross-entropy of ``gamma * r`` against target distributions ``d`` (B, K);
    ``index`` and ``differential`` select the read-out as in :class:`SquaredCost`."""

    index: tuple[int, ...]
    differential: bool = False
    gain: float = 20.0

    quadratic = False

    def __post_init__(self):
        if not self.gain > 0:
            raise ConfigError(f"the read-out gain must be positive, got {self.gain} 1/V")

    @property
    def _reader(self) -> SquaredCost:
        return SquaredCost(self.index, self.differential)

    @property
    def n_targets(self) -> int:
        return self._reader.n_targets

    def readout(self, s: np.ndarray) -> np.ndarray:
        return self._reader.readout(s)

    def _probabilities(self, s: np.ndarray, d: np.ndarray):
        s = np.atleast_2d(s)
        z = self.gain * self.readout(s)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        d = self._reader._check(d, len(s))
        return logp, d

    def value(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """C (B,), nats."""
        logp, d = self._probabilities(s, d)
        return -np.sum(d * logp, axis=1)

    def grad(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """dC/ds (B, n_free), 1/V."""
        logp, d = self._probabilities(s, d)
        # d/dr of -sum_k d_k log softmax_k = gamma (sum(d) p - d)
        dr = self.gain * (np.sum(d, axis=1, keepdims=True) * np.exp(logp) - d)
        s = np.atleast_2d(s)
        g = np.zeros_like(s, dtype=float)
        idx = np.asarray(self.index)
        if self.differential:
            g[:, idx[0::2]] += dr
            g[:, idx[1::2]] -= dr
        else:
            g[:, idx] += dr
        return g

    def hessian(self, n_free: int) -> np.ndarray:
        """The constant majorant ``gamma^2/2 D^T D`` of d2C/ds2 (n_free, n_free)."""
        return 0.5 * self.gain**2 * self._reader.hessian(n_free)
