"""Noise-temperature estimators (docs/PHYSICS.md, section 7): equipartition (``Cov = T (H^-1)_MM``,
maximum likelihood over every node pair) and fluctuation-dissipation (``Cov = T R`` with
``R = dV/dI`` from injected currents, in the integral form that holds for diode
networks), each with an analytic standard error."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.linalg as sla

from ..errors import ConfigError
from .statistics import mean_and_stderr


@dataclass(frozen=True)
class TemperatureEstimate:
    """One estimate of ``T`` (model energy units) with its standard error, per-node values
    (``nodes``), the number of readings and of effective (independent) readings."""

    method: str
    value: float
    stderr: float
    nodes: tuple[str, ...]
    per_node: np.ndarray
    per_node_stderr: np.ndarray
    n_samples: int
    n_effective: float
    info: dict = field(default_factory=dict)

    def to_dict(self, units: str) -> dict:
        return {"value": self.value, "stderr": self.stderr, "units": units,
                "n_samples": self.n_samples, "n_effective": self.n_effective,
                "per_node": {n: {"value": float(v), "stderr": float(s)}
                             for n, v, s in zip(self.nodes, self.per_node, self.per_node_stderr)},
                **{k: v for k, v in self.info.items() if not isinstance(v, np.ndarray)}}


def _check_samples(samples: np.ndarray, m: int, what: str) -> np.ndarray:
    X = np.asarray(samples, dtype=float)
    if X.ndim != 2 or X.shape[1] != m:
        raise ConfigError(f"{what}: samples must have shape (readings, {m}); got {X.shape}")
    if len(X) < m + 2:
        raise ConfigError(f"{what}: {len(X)} readings cannot give a covariance of {m} nodes; "
                          f"need at least {m + 2}")
    if not np.all(np.isfinite(X)):
        raise ConfigError(f"{what}: readings contain NaN or infinite values")
    return X


def node_names(nodes: Sequence[str] | None, m: int) -> tuple[str, ...]:
    return tuple(nodes) if nodes is not None else tuple(f"node {i}" for i in range(m))


def precision_matrix(G: np.ndarray, nodes: tuple[str, ...]) -> np.ndarray:
    """Inverse of a symmetric positive-definite covariance shape, with a clear error."""
    G = np.asarray(G, dtype=float)
    m = len(nodes)
    if G.shape != (m, m) or not np.allclose(G, G.T, rtol=1e-8, atol=0):
        raise ConfigError(f"covariance shape must be a symmetric ({m}, {m}) matrix; got {G.shape}")
    try:
        cf = sla.cho_factor(G)
    except np.linalg.LinAlgError:
        raise ConfigError("covariance shape H^-1 is not positive definite: is every measured "
                          f"node among {', '.join(nodes)} connected to a clamped node?") from None
    return sla.cho_solve(cf, np.eye(m))


def equipartition_temperature(samples: np.ndarray, covariance_shape: np.ndarray,
                              nodes: Sequence[str] | None = None) -> TemperatureEstimate:
    """Maximum-likelihood ``T`` of ``Cov = T G`` from free readings.

    ``samples`` (N, m) volts of the measured free nodes; ``covariance_shape`` ``G`` (m, m) is
    ``(H^-1)`` restricted to those nodes (V^2 per unit of energy). For Gaussian readings the
    log-likelihood ``-(N/2)[log det(T G) + tr((T G)^-1 S)]`` is maximal at
    ``T = tr(G^-1 S) / m``; with the unbiased ``S`` this estimate is unbiased, and for
    independent readings its variance is ``2 T^2 / (m (N - 1))``. The reported standard error
    uses the empirical variance of the per-reading terms ``x_t^T G^-1 x_t / m`` and their
    autocorrelation time. O(N m^2).
    """
    names = node_names(nodes, np.shape(covariance_shape)[0])
    X = _check_samples(samples, len(names), "equipartition")
    P = precision_matrix(covariance_shape, names)
    N = len(X)
    Xc = X - X.mean(axis=0)
    q_node = Xc * (Xc @ P)                                    # (N, m): x_ti (P x_t)_i
    scale = N / (N - 1)
    mean, se, tau = mean_and_stderr(np.column_stack([q_node.mean(axis=1), q_node]))
    return TemperatureEstimate(
        "equipartition", float(mean[0] * scale), float(se[0] * scale), names,
        mean[1:] * scale, se[1:] * scale, N, float(N / tau[0]), {"tau": float(tau[0])})


def fdt_temperature(plus: np.ndarray, minus: np.ndarray, currents: np.ndarray,
                    outputs: Sequence[int], nodes: Sequence[str] | None = None,
                    free: np.ndarray | None = None) -> TemperatureEstimate:
    """``T`` from the fluctuation-dissipation relation ``Cov(V_i, V_j) = T dV_i/dI_j``.

    ``plus`` and ``minus`` (k, N, m): readings of the m measured free nodes with a current
    ``+currents[j]`` or ``-currents[j]`` (A) injected into output ``j`` alone; ``outputs`` (k,)
    the column of each output among the m nodes; ``free`` (N0, m): readings without current.

    Under any Boltzmann law ``d<V_i>/dI_j = Cov_I(V_i, V_j) / T`` at every current, so
    ``<V_i>(+delta) - <V_i>(-delta) = (1/T) integral Cov_I(V_i, V_j) dI`` exactly. With
    ``R_ij = (mean+ - mean-)_i / (2 delta_j)`` (ohms) and the averaged covariance ``C_ij``
    over the interval (Simpson ``(C+ + 4 C0 + C-)/6`` with ``free``, bias O(delta^4); else
    the trapezoid ``(C+ + C-)/2``, O(delta^2)), ``T = <C, R> / <R, R>`` over all pairs
    (i, j); per output ``T_j = C_jj / R_jj``. Each run's covariance is centred on its own
    mean, so ``R`` and ``C`` are independent. For a linear network every ``C`` is the same.

    Standard error by linearisation, ``dT = (<dC, R> - T <dR, R>) / <R, R>``: the first term
    is a weighted sum of run means of per-reading products, the second a sum of independent
    run means; both use autocorrelation times. No model of the network is used.
    """
    plus = np.asarray(plus, dtype=float)
    minus = np.asarray(minus, dtype=float)
    delta = np.asarray(currents, dtype=float)
    out = np.asarray(outputs, dtype=np.intp)
    if plus.ndim != 3 or plus.shape != minus.shape or plus.shape[0] != len(out) or delta.shape != out.shape:
        raise ConfigError(f"fdt: plus/minus readings must have shape (outputs, readings, nodes) with "
                          f"one current per output; got {plus.shape}, {minus.shape}, {delta.shape}")
    k, N, m = plus.shape
    names = node_names(nodes, m)
    if np.any(delta <= 0) or not np.all(np.isfinite(delta)):
        raise ConfigError("fdt: nudge currents must be positive amperes")
    runs = np.concatenate([plus, minus])                     # (2k, N, m)
    for r in runs:
        _check_samples(r, m, "fdt")
    means = runs.mean(axis=1)                                 # (2k, m)
    R = ((means[:k] - means[k:]) / (2 * delta[:, None])).T    # (m, k)
    Xc = (runs - means[:, None, :]) * math.sqrt(N / (N - 1))  # unbiased products
    own = np.concatenate([np.eye(k), np.eye(k)])              # run r carries current j = r mod k
    if free is not None:
        F = _check_samples(free, m, "fdt")
        F = (F - F.mean(axis=0)) * math.sqrt(len(F) / (len(F) - 1))
    end_weight = 0.5 if free is None else 1.0 / 6.0

    def ratio(W: np.ndarray):
        """T, stderr for the pair weights W (m, k)."""
        RW = R * W
        den = float(np.sum(RW * R))
        q = np.sum(Xc * ((Xc[:, :, out] * own[:, None, :]) @ RW.T), axis=2).T
        q_mean, q_se, tau = mean_and_stderr(q)               # per run
        num = end_weight * float(q_mean.sum())
        var_num = end_weight**2 * float(np.sum(q_se**2))
        if free is not None:
            q0_mean, q0_se, _ = mean_and_stderr(np.sum(F * (F[:, out] @ RW.T), axis=1)[:, None])
            num += 4.0 / 6.0 * float(q0_mean[0])
            var_num += (4.0 / 6.0) ** 2 * float(q0_se[0] ** 2)
        T = num / den
        # variance of <dR, RW>: run means projected on their output's column of RW
        z = np.sum(runs * (own @ RW.T)[:, None, :], axis=2).T
        _, z_se, _ = mean_and_stderr(z)
        var_r = float(np.sum(z_se**2 / (4 * np.concatenate([delta, delta]) ** 2)))
        return T, math.sqrt(var_num + T**2 * var_r) / den, float(np.mean(tau))

    T, se, tau = ratio(np.ones((m, k)))
    per = []
    for j in range(k):
        W = np.zeros((m, k))
        W[out[j], j] = 1.0
        per.append(ratio(W))
    return TemperatureEstimate(
        "fdt", T, se, tuple(names[i] for i in out), np.array([p[0] for p in per]),
        np.array([p[1] for p in per]), 2 * k * N, float(2 * k * N / tau),
        {"tau": tau, "nudge_currents": {names[i]: float(d) for i, d in zip(out, delta)},
         "rule": "trapezoid" if free is None else "simpson", "response": R})


def samples_needed(precision: float, nodes: int, tau: float = 1.0) -> int:
    """Readings for a relative standard error ``precision`` of the equipartition ``T`` on
    ``nodes`` Gaussian nodes: ``sqrt(2 tau / (m (N - 1))) <= precision``."""
    return int(math.ceil(2.0 * tau / (nodes * precision**2))) + 1
