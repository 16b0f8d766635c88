"""The periodic cost of oscillator outputs and the decoding of output phases to classes.

A phase is only defined modulo 2 pi, so a cost on phases must be periodic:

    C(s, d) = sum_o (1 - cos(phi_o - theta_o))          (dimensionless, 0 <= C <= 2 n_o)

with ``phi_o = s[:, index]`` the output phases and ``theta_o = d`` the target phases
(radians). Its derivatives are ``dC/dphi_o = sin(phi_o - theta_o)``,
``d2C/dphi_o^2 = cos(phi_o - theta_o)`` and ``d3C/dphi_o^3 = -sin(phi_o - theta_o)``; they
depend on the state, so the cost is not quadratic (``quadratic = False``): use
:meth:`PeriodicCost.hessian_at` and :meth:`PeriodicCost.third_diag`.

Class targets: class ``k`` is the phase vector ``targets[k]`` (e.g. ``+pi/2`` on one output
and ``-pi/2`` on the others); a read-out is decoded to the class whose target is nearest in
cost, ``argmax_k sum_o cos(phi_o - targets[k, o])``. With one-hot targets ``+-pi/2`` this is
``argmax_o sin(phi_o)``; with one output and targets ``(-pi/2, +pi/2)`` the sign of
``sin(phi_o)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class PeriodicCost:
    """``C = sum_o (1 - cos(s_o - d_o))`` over the outputs ``index`` (positions in ``s``)."""

    index: tuple[int, ...]

    quadratic = False
    periodic = True

    @property
    def n_targets(self) -> int:
        return len(self.index)

    def readout(self, s: np.ndarray) -> np.ndarray:
        """Output phases wrapped into ``[-pi, pi)``, (B, n_outputs)."""
        o = np.atleast_2d(s)[:, list(self.index)]
        return (o + np.pi) % (2.0 * np.pi) - np.pi

    def _diff(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        s = np.atleast_2d(s)
        d = np.atleast_2d(np.asarray(d, dtype=float))
        if d.ndim != 2 or d.shape[1] != self.n_targets or d.shape[0] not in (1, len(s)):
            raise ConfigError(f"target phases must have shape (batch, {self.n_targets}); got {d.shape}")
        if not np.all(np.isfinite(d)):
            raise ConfigError("target phases contain NaN or infinite values")
        return s[:, list(self.index)] - d

    def value(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """C, (B,)."""
        return np.sum(1.0 - np.cos(self._diff(s, d)), axis=1)

    def grad(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """dC/ds, (B, n_free)."""
        s = np.atleast_2d(s)
        g = np.zeros(s.shape)
        g[:, list(self.index)] = np.sin(self._diff(s, d))
        return g

    def hess_diag(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Diagonal of d2C/ds2, (B, n_free) (the Hessian is diagonal)."""
        s = np.atleast_2d(s)
        h = np.zeros(s.shape)
        h[:, list(self.index)] = np.cos(self._diff(s, d))
        return h

    def hessian_at(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """d2C/ds2 at the state, (B, n_free, n_free)."""
        h = self.hess_diag(s, d)
        out = np.zeros(h.shape + (h.shape[1],))
        idx = np.arange(h.shape[1])
        out[:, idx, idx] = h
        return out

    def third_diag(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """``d3C/ds_i^3`` (the only non-zero third derivatives), (B, n_free)."""
        s = np.atleast_2d(s)
        t = np.zeros(s.shape)
        t[:, list(self.index)] = -np.sin(self._diff(s, d))
        return t

    def curvature_bound(self, n_free: int) -> np.ndarray:
        """Constant PSD ``K`` (n_free, n_free) with ``-K <= d2C/ds2 <= K`` at every state: the
        identity on the outputs (``|cos| <= 1``). ``H - |beta| K`` positive definite makes
        ``E + beta C`` convex near the state for either sign of ``beta``."""
        K = np.zeros((n_free, n_free))
        idx = list(self.index)
        K[idx, idx] = 1.0
        return K

    def hessian(self, n_free: int) -> np.ndarray:
        """Not available: the periodic cost's Hessian depends on the state."""
        raise ConfigError("the periodic cost has no constant Hessian; use hessian_at(s, d)")


def class_targets(n_classes: int, n_outputs: int, phase: float = np.pi / 2) -> np.ndarray:
    """Target phases of each class, (n_classes, n_outputs).

    One output per class (``n_outputs == n_classes``): ``+phase`` on the class's output and
    ``-phase`` on the others. Two classes on one output: ``(-phase, +phase)``.
    """
    if n_outputs == n_classes:
        t = np.full((n_classes, n_outputs), -phase)
        t[np.arange(n_classes), np.arange(n_classes)] = phase
        return t
    if n_classes == 2 and n_outputs == 1:
        return np.array([[-phase], [phase]])
    raise ConfigError(f"cannot encode {n_classes} classes on {n_outputs} output oscillators; use one "
                      "output per class, or one output for two classes")


def decode_nearest(phases: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Class of each read-out: the target nearest in cost, ``argmax_k sum_o cos(phi_o -
    targets[k, o])``; phases (B, n_outputs), targets (n_classes, n_outputs) -> (B,) int."""
    phases = np.atleast_2d(phases)
    score = np.cos(phases[:, None, :] - targets[None, :, :]).sum(axis=2)
    return np.argmax(score, axis=1)


def require_periodic(cost) -> None:
    """Raise ConfigError unless ``cost`` is periodic in the phases (a squared cost on
    phases jumps at +-pi and ranks 359 degrees far from 1 degree)."""
    if not getattr(cost, "periodic", False):
        raise ConfigError(f"{type(cost).__name__} is not periodic in the phases; oscillator networks "
                          "need the periodic cost C = sum_o (1 - cos(phi_o - theta_o))")
