"""Costs on the output nodes of a network.

A cost ``C(s, d)`` depends on the free state ``s`` (B, n_free) only through the output
entries ``s[:, index]`` and on targets ``d`` (B, n_targets). Nudging adds ``beta * C`` to
the energy, so ``beta`` has the units of energy per cost unit (siemens for the squared
cost of voltages, whose unit is V^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class SquaredCost:
    """``C = 1/2 sum_o (s_o - d_o)^2`` (V^2) over the outputs ``index`` (positions in ``s``).

    With ``differential=True`` the outputs are read in pairs ``(p, m)``:
    ``C = 1/2 sum_k (s_p - s_m - d_k)^2`` with ``index = (p0, m0, p1, m1, ...)``.
    """

    index: tuple[int, ...]
    differential: bool = False

    quadratic = True

    @property
    def n_targets(self) -> int:
        return len(self.index) // 2 if self.differential else len(self.index)

    def readout(self, s: np.ndarray) -> np.ndarray:
        """Output values the cost compares with the targets (B, n_targets)."""
        o = np.atleast_2d(s)[:, list(self.index)]
        return o[:, 0::2] - o[:, 1::2] if self.differential else o

    def _check(self, d: np.ndarray, batch: int) -> np.ndarray:
        d = np.atleast_2d(np.asarray(d, dtype=float))
        if d.shape[1] != self.n_targets or d.shape[0] not in (1, batch):
            raise ConfigError(f"targets must have shape (batch, {self.n_targets}); got {d.shape}")
        return d

    def value(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        s = np.atleast_2d(s)
        r = self.readout(s) - self._check(d, len(s))
        return 0.5 * np.sum(r**2, axis=1)

    def grad(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """dC/ds, (B, n_free)."""
        s = np.atleast_2d(s)
        r = self.readout(s) - self._check(d, len(s))
        g = np.zeros_like(s, dtype=float)
        idx = np.asarray(self.index)
        if self.differential:
            g[:, idx[0::2]] += r
            g[:, idx[1::2]] -= r
        else:
            g[:, idx] += r
        return g

    def hess_block(self) -> np.ndarray:
        """Constant d2C/ds2 restricted to ``index`` (k, k), k = len(index)."""
        k = len(self.index)
        if not self.differential:
            return np.eye(k)
        h = np.zeros((k, k))
        for j in range(0, k, 2):
            h[j:j + 2, j:j + 2] = [[1.0, -1.0], [-1.0, 1.0]]
        return h

    def hessian(self, n_free: int) -> np.ndarray:
        """Constant d2C/ds2 on the whole state (n_free, n_free)."""
        H = np.zeros((n_free, n_free))
        idx = np.asarray(self.index)
        H[np.ix_(idx, idx)] = self.hess_block()
        return H
