"""Calibration of a substrate: ADC gain and offset, noise temperature, calibration records.

Thermal EP divides by the noise temperature ``T`` (``dL/dW = -(1/T) Cov(C, dE/dW)``), in
the model's energy units: watts for resistive networks, whose energy is the co-content.
This module measures ``T`` with a standard error and says whether the fluctuations are
Boltzmann in ``E`` at all.

Two independent estimators, both over every measured free node:

- **equipartition** (needs the conductances): free samples ``x_t`` (N, m) of the measured
  free nodes ``M`` should be Gaussian with ``Cov = T G``, ``G = (H^-1)_MM`` (V^2/W) from the
  Hessian ``H`` of the known conductances. The maximum-likelihood estimate over all node
  pairs is ``T = tr(G^-1 S) / m`` with ``S`` the unbiased sample covariance; per node,
  ``T_i = (S G^-1)_ii`` (these average to ``T`` and each has expectation ``T``, so a node with
  extra noise stands out).
- **fluctuation-dissipation** (model-free): with small currents ``+-delta_j`` (A) injected
  at output ``j`` the means move by ``R_ij delta_j`` (``R = dV/dI``, ohms) and
  ``Cov(V_i, V_j) = T R_ij``. ``T = <C, R> / <R, R>`` over every measured node ``i`` and
  output ``j``, with ``R`` from centred differences of sample means and ``C`` the covariance
  averaged over the current interval by Simpson's rule (each run centred on its own mean,
  so ``R`` and ``C`` are independent). In this integral form it holds for any Boltzmann
  law, diode networks included, up to O(delta^4).

Standard errors are analytic: each estimate is a mean of a per-reading series, whose
variance is ``var(q) tau / N`` with ``tau`` the integrated autocorrelation time of that
series (Sokal's automatic window), so time-series readings count ``N / tau`` effective
samples.

Boltzmann consistency: the measured covariance is decomposed by maximum likelihood as
``Sigma_s = a G_s + b C^-1 + c I`` jointly over several conductance settings ``s``. Injected
noise of intensity ``2 T C_i`` gives ``a = T`` and nothing else; Johnson noise alone gives
``k_B T_phys C^-1`` (no conductance information, thermal EP cannot work); ADC noise gives
``c I``. The share of variance explained by ``a G`` (``boltzmann_fraction``) is the headline
statistic, backed by a likelihood-ratio test of the shape ``T G`` within each setting, a
chi-square test of equal ``T`` across settings and, with both methods, their z-score.

Records are JSON (schema ``analog-ep/calibration`` version 1) with the headline
``"temperature": {"value", "stderr", "units"}``; :func:`load_calibration` validates them and
refuses stale or mismatched ones.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.linalg as sla
from scipy import stats

from .errors import ConfigError

#: Boltzmann constant (J/K), for Johnson-noise temperatures.
K_B = 1.380649e-23
SCHEMA = "analog-ep/calibration"
SCHEMA_VERSION = 1
#: Units of T per network family.
TEMPERATURE_UNITS = {"resistive": "W", "oscillator": "coupling units", "quantum": "Hamiltonian units"}
METHODS = ("equipartition", "fdt", "both")
#: A deviation from Boltzmann statistics matters when it is significant at this level ...
SIGNIFICANCE = 1e-3
#: ... and larger than this relative size.
TOLERANCE = 0.05
#: fdt nudges move each output's mean by this many reading standard deviations: larger ones
#: bias T on nonlinear (diode) networks through the O(delta^4) term of the covariance
#: integral (+2% at 3 sigma on xor_diode), smaller ones through the noise in the response
#: (-1.5% at 1 sigma); 2 sigma keeps both below 0.5% at a few thousand readings.
NUDGE_SIGMAS = 2.0


# ----------------------------------------------------------------------------------------
# Statistics of correlated series
# ----------------------------------------------------------------------------------------

def integrated_autocorrelation_time(x: np.ndarray, window: float = 5.0) -> np.ndarray:
    """Integrated autocorrelation time ``tau = 1 + 2 sum_{t=1}^{M} rho(t)`` of each column of
    ``x`` (N,) or (N, k), with Sokal's automatic window (smallest ``M >= window * tau(M)``).

    ``tau`` is clipped below at 1 (independent readings), so ``N / tau`` is a conservative
    effective sample size. Cost O(k N log N) by FFT. Returns a float or (k,) array.
    """
    x = np.asarray(x, dtype=float)
    one = x.ndim == 1
    x = x[:, None] if one else x
    n, k = x.shape
    if n < 4:
        tau = np.ones(k)
        return float(tau[0]) if one else tau
    xc = x - x.mean(axis=0)
    nfft = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(xc, nfft, axis=0)
    acov = np.fft.irfft(f * np.conj(f), nfft, axis=0)[:n]
    var = acov[0]
    rho = acov[1:] / np.where(var > 0, var, 1.0)
    taus = 1.0 + 2.0 * np.cumsum(rho, axis=0)              # tau(M), M = 1 .. n-1
    lag = np.arange(1, n)[:, None]
    ok = lag >= window * taus
    idx = np.where(ok.any(axis=0), ok.argmax(axis=0), n - 2)
    tau = np.where(var > 0, np.maximum(taus[idx, np.arange(k)], 1.0), 1.0)
    return float(tau[0]) if one else tau


def _mean_and_stderr(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of each column of ``q`` (N, k), its standard error ``sqrt(var tau / N)`` and tau."""
    tau = integrated_autocorrelation_time(q)
    n = len(q)
    return q.mean(axis=0), np.sqrt(q.var(axis=0, ddof=1) * tau / n), tau


def combine_estimates(values: Sequence[float], stderrs: Sequence[float]) -> tuple[float, float, float, int, float]:
    """Inverse-variance weighted mean of independent estimates and the chi-square test of
    their agreement: ``(mean, stderr, chi2, dof, p_value)``; with one estimate chi2 = 0,
    dof = 0 and p = 1."""
    v = np.asarray(values, dtype=float)
    s = np.asarray(stderrs, dtype=float)
    w = 1.0 / np.maximum(s, 1e-300) ** 2
    mean = float(np.sum(w * v) / np.sum(w))
    se = float(1.0 / math.sqrt(np.sum(w)))
    chi2 = float(np.sum(w * (v - mean) ** 2))
    dof = len(v) - 1
    p = float(stats.chi2.sf(chi2, dof)) if dof > 0 else 1.0
    return mean, se, chi2, dof, p


# ----------------------------------------------------------------------------------------
# ADC / DAC gain and offset
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelCalibration:
    """Per-channel correction ``V_true = gain * V_read + offset`` (the map the serial driver
    applies to every reading; see :mod:`analog_ep.hardware.profile`), with standard errors
    and the rms residual of the straight-line fit it came from (volts)."""

    names: tuple[str, ...]
    gain: np.ndarray
    offset: np.ndarray
    gain_stderr: np.ndarray
    offset_stderr: np.ndarray
    residual_rms: np.ndarray
    n_points: int

    def apply(self, readings: np.ndarray) -> np.ndarray:
        """Corrected volts; ``readings`` has the channels on its last axis."""
        return np.asarray(readings, dtype=float) * self.gain + self.offset

    def to_dict(self) -> dict:
        return {name: {"gain": float(g), "gain_stderr": float(gs), "offset": float(o),
                       "offset_stderr": float(os_), "residual_rms": float(r)}
                for name, g, gs, o, os_, r in zip(self.names, self.gain, self.gain_stderr,
                                                  self.offset, self.offset_stderr, self.residual_rms)}


def fit_gain_offset(known: np.ndarray, readings: np.ndarray,
                    names: Sequence[str] | None = None) -> ChannelCalibration:
    """Least-squares straight line per channel from known voltages to readings.

    ``known`` (K,) or (K, k) volts applied (a loopback DAC or a reference), ``readings``
    (K, k) or (K, N, k) volts read. Fits ``read = a * known + b`` by ordinary least squares
    (the noise is in the readings), then inverts it to the correction ``gain = 1/a``,
    ``offset = -b/a`` with delta-method standard errors from the residual variance.
    Vectorised over channels; O(K N k).
    """
    y = np.asarray(readings, dtype=float)
    if y.ndim == 2:
        y = y[:, None, :]
    if y.ndim != 3:
        raise ConfigError(f"readings must have shape (points, channels) or (points, samples, channels); got {np.shape(readings)}")
    K, N, k = y.shape
    x = np.asarray(known, dtype=float)
    x = np.broadcast_to(x[:, None] if x.ndim == 1 else x, (K, k))
    names = tuple(names) if names is not None else tuple(f"channel {i}" for i in range(k))
    if len(names) != k:
        raise ConfigError(f"{len(names)} channel names for {k} channels")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ConfigError("gain/offset fit: known voltages or readings contain NaN or infinity")
    distinct = np.array([len(np.unique(x[:, j])) for j in range(k)])
    if K * N < 3 or np.any(distinct < 2):
        bad = names[int(np.argmin(distinct))]
        raise ConfigError(f"gain/offset fit needs at least two distinct known voltages per channel "
                          f"and three readings; channel {bad} has {int(distinct.min())} and {K * N}")
    X = np.repeat(x, N, axis=0)                 # (K N, k)
    Y = y.reshape(K * N, k)
    xm, ym = X.mean(axis=0), Y.mean(axis=0)
    sxx = np.sum((X - xm) ** 2, axis=0)
    a = np.sum((X - xm) * (Y - ym), axis=0) / sxx
    b = ym - a * xm
    resid = Y - (a * X + b)
    s2 = np.sum(resid**2, axis=0) / max(K * N - 2, 1)
    var_a, var_b, cov_ab = s2 / sxx, s2 * (1.0 / (K * N) + xm**2 / sxx), -xm * s2 / sxx
    if np.any(np.abs(a) < 1e-12):
        raise ConfigError(f"channel {names[int(np.argmin(np.abs(a)))]} does not respond to the known voltages")
    gain, offset = 1.0 / a, -b / a
    # Jacobians of (1/a, -b/a) with respect to (a, b)
    ga, oa, ob = -1.0 / a**2, b / a**2, -1.0 / a
    gain_se = np.sqrt(ga**2 * var_a)
    offset_se = np.sqrt(oa**2 * var_a + ob**2 * var_b + 2 * oa * ob * cov_ab)
    return ChannelCalibration(names, gain, offset, gain_se, offset_se,
                              np.sqrt(np.mean(resid**2, axis=0)), K)


# ----------------------------------------------------------------------------------------
# Temperature estimators
# ----------------------------------------------------------------------------------------

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


def _nodes(nodes: Sequence[str] | None, m: int) -> tuple[str, ...]:
    return tuple(nodes) if nodes is not None else tuple(f"node {i}" for i in range(m))


def _precision(G: np.ndarray, nodes: tuple[str, ...]) -> np.ndarray:
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
    names = _nodes(nodes, np.shape(covariance_shape)[0])
    X = _check_samples(samples, len(names), "equipartition")
    P = _precision(covariance_shape, names)
    N = len(X)
    Xc = X - X.mean(axis=0)
    q_node = Xc * (Xc @ P)                                    # (N, m): x_ti (P x_t)_i
    scale = N / (N - 1)
    mean, se, tau = _mean_and_stderr(np.column_stack([q_node.mean(axis=1), q_node]))
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
    names = _nodes(nodes, m)
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
        q_mean, q_se, tau = _mean_and_stderr(q)               # per run
        num = end_weight * float(q_mean.sum())
        var_num = end_weight**2 * float(np.sum(q_se**2))
        if free is not None:
            q0_mean, q0_se, _ = _mean_and_stderr(np.sum(F * (F[:, out] @ RW.T), axis=1)[:, None])
            num += 4.0 / 6.0 * float(q0_mean[0])
            var_num += (4.0 / 6.0) ** 2 * float(q0_se[0] ** 2)
        T = num / den
        # variance of <dR, RW>: run means projected on their output's column of RW
        z = np.sum(runs * (own @ RW.T)[:, None, :], axis=2).T
        _, z_se, _ = _mean_and_stderr(z)
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


# ----------------------------------------------------------------------------------------
# Boltzmann consistency
# ----------------------------------------------------------------------------------------

def shape_test(samples: np.ndarray, covariance_shape: np.ndarray, tau: float = 1.0) -> tuple[float, int, float]:
    """Likelihood-ratio test that ``Cov = T G`` for some T (sphericity of the readings
    whitened by ``G^-1/2``): ``(statistic, dof, p_value)``, Bartlett-corrected and computed
    with ``(N - 1) / tau`` effective degrees of freedom. Needs m >= 2 nodes (else dof = 0)."""
    X = np.asarray(samples, dtype=float)
    m = X.shape[1]
    if m < 2:
        return 0.0, 0, 1.0
    L = np.linalg.cholesky(_precision(covariance_shape, _nodes(None, m)))
    Z = (X - X.mean(axis=0)) @ L
    W = Z.T @ Z / (len(X) - 1)
    n = (len(X) - 1) / tau
    sign, logdet = np.linalg.slogdet(W)
    stat = n * (m * math.log(np.trace(W) / m) - logdet) if sign > 0 else math.inf
    stat *= max(1.0 - (2 * m * m + m + 2) / (6.0 * m * n), 0.0)
    dof = m * (m + 1) // 2 - 1
    return float(stat), dof, float(stats.chi2.sf(stat, dof))


def decompose_noise(covariances: Sequence[np.ndarray], shapes: Sequence[np.ndarray],
                    n_effective: Sequence[float], capacitance: np.ndarray | None = None,
                    iterations: int = 50) -> dict:
    """Maximum-likelihood split of the measured covariance into Boltzmann and uncorrelated
    noise, jointly over settings ``s``:

        Sigma_s = a G_s + b diag(1/C) + c I      (a, b, c >= 0)

    ``covariances`` are the sample covariances ``S_s`` (m, m) with ``n_effective`` readings,
    ``shapes`` the ``G_s = (H_s^-1)_MM``; ``capacitance`` (m,) farads (the ``C^-1`` term is
    used only when known and not proportional to I). Fisher scoring with an active set for
    the sign constraints. Returns ``{"coefficients", "fractions", "boltzmann_stderr"}``:
    each fraction is that term's share of ``sum_s tr(Sigma_s)``, with the standard error of
    the Boltzmann share; all None when the terms cannot be told apart (one node at one
    setting).
    """
    m = covariances[0].shape[0]
    comps = {"boltzmann": [np.asarray(G, float) for G in shapes]}
    if capacitance is not None and np.all(np.isfinite(capacitance)) and np.all(np.asarray(capacitance) > 0):
        inv_c = 1.0 / np.asarray(capacitance, float)
        if np.ptp(inv_c) > 1e-6 * inv_c.mean():
            comps["johnson"] = [np.diag(inv_c)] * len(shapes)
    comps["uncorrelated"] = [np.eye(m)] * len(shapes)
    names = list(comps)
    S = [np.asarray(s, float) for s in covariances]
    w = np.asarray(n_effective, float) / 2.0

    def fisher(active, theta):
        Sig = [sum(theta[i] * comps[names[i]][s] for i in active) for s in range(len(S))]
        inv = [np.linalg.inv(x) for x in Sig]
        A = [[inv[s] @ comps[names[i]][s] for i in active] for s in range(len(S))]
        F = np.array([[sum(w[s] * np.sum(A[s][p] * A[s][q].T) for s in range(len(S)))
                       for q in range(len(active))] for p in range(len(active))])
        g = np.array([sum(w[s] * np.sum(A[s][p] * (inv[s] @ S[s]).T) for s in range(len(S)))
                      for p in range(len(active))])
        return F, g

    # start from least squares on the entries, then Fisher scoring (the GLS iteration)
    design = np.array([np.concatenate([comps[n][s].ravel() for s in range(len(S))]) for n in names]).T
    target = np.concatenate([x.ravel() for x in S])
    if np.linalg.matrix_rank(design / np.abs(design).max(axis=0), tol=1e-9) < len(names):
        return {"coefficients": None, "fractions": None, "boltzmann_stderr": None}
    floor = 1e-3 * np.abs(target).max() / np.abs(design).max(axis=0)
    theta = np.maximum(np.linalg.lstsq(design, target, rcond=None)[0], floor)
    active = list(range(len(names)))
    for _ in range(iterations):
        F, g = fisher(active, theta)
        new = np.linalg.solve(F, g)
        if np.any(new < 0):
            drop = active.pop(int(np.argmin(new)))
            theta[drop] = 0.0
            continue
        step = np.max(np.abs(new - theta[active]) / new)
        theta[active] = new
        if step < 1e-10:
            break
    unit = np.array([sum(np.trace(comps[n][s]) for s in range(len(S))) for n in names])
    total = float(theta @ unit)
    # standard error of the Boltzmann share by the delta method, from the Fisher information
    # of every term at the estimate (one-sided at a boundary, but the right scale)
    grad = -theta[0] * unit[0] * unit / total**2
    grad[0] += unit[0] / total
    F, _ = fisher(list(range(len(names))), theta)
    se = float(np.sqrt(max(grad @ np.linalg.lstsq(F, grad, rcond=None)[0], 0.0)))
    return {"coefficients": {n: float(theta[i]) for i, n in enumerate(names)},
            "fractions": {n: float(theta[i] * unit[i] / total) for i, n in enumerate(names)},
            "boltzmann_stderr": se}


@dataclass(frozen=True)
class Consistency:
    """Boltzmann-consistency statistic and verdict.

    ``statistic`` is the Boltzmann fraction (share of the measured variance explained by
    ``T H^-1``; None when undetermined); ``tests`` maps each test (``shape``, ``settings``,
    ``methods``) to its statistic, dof, p-value and relative effect size; ``verdict`` is one
    of ``boltzmann``, ``biased``, ``uncorrelated``, ``undetermined``; ``message`` says it in
    plain language; ``johnson_kelvin`` is the physical temperature the uncorrelated variance
    would have as Johnson noise of the node capacitances; ``stderr`` that of the statistic.
    """

    statistic: float | None
    fractions: dict | None
    coefficients: dict | None
    tests: dict
    verdict: str
    message: str
    johnson_kelvin: float | None = None
    stderr: float | None = None

    def to_dict(self) -> dict:
        return {"statistic": self.statistic, "name": "boltzmann_fraction", "stderr": self.stderr,
                "fractions": self.fractions, "coefficients": self.coefficients,
                "tests": self.tests, "johnson_kelvin": self.johnson_kelvin,
                "verdict": self.verdict, "message": self.message}


def judge(decomposition: dict, tests: dict, T: float, units: str,
          capacitance: np.ndarray | None = None, adc_step: float | None = None,
          tolerance: float = TOLERANCE) -> Consistency:
    """Turn the noise decomposition (:func:`decompose_noise`) and the tests into a verdict.

    With ``f`` the Boltzmann share and ``se`` its standard error: ``uncorrelated`` when
    ``f + 3 se < 1/2``; ``biased`` when ``1 - f`` exceeds both ``tolerance`` and ``3 se``, or a
    test fails at ``SIGNIFICANCE`` with a relative effect above ``tolerance``;
    ``undetermined`` when nothing could test the shape or ``se > tolerance``; else
    ``boltzmann``. ``tests`` maps names to ``{"statistic", "dof", "p_value", "effect"}``.
    """
    fractions, coefficients = decomposition["fractions"], decomposition["coefficients"]
    fB = None if fractions is None else fractions["boltzmann"]
    se = decomposition.get("boltzmann_stderr") or 0.0
    failing = [name for name, t in tests.items()
               if t["p_value"] < SIGNIFICANCE and t.get("effect", math.inf) > tolerance]
    johnson_k = None
    unc = None
    if coefficients is not None:
        unc = coefficients.get("uncorrelated", 0.0)
        if capacitance is not None and np.all(np.isfinite(capacitance)):
            var_diag = coefficients.get("johnson", 0.0) / np.asarray(capacitance) + unc
            johnson_k = float(np.mean(var_diag * np.asarray(capacitance)) / K_B)
    what, remedy = _uncorrelated_source(unc, johnson_k, adc_step)
    excess = fB is not None and 1 - fB > max(tolerance, 3 * se)
    if fB is not None and fB + 3 * se < 0.5:
        verdict = "uncorrelated"
        msg = (f"Only {100 * fB:.0f}% of the measured variance follows the conductances (T H^-1); "
               f"the rest is uncorrelated between nodes and independent of the conductances, "
               f"{what}. Such noise carries no information about the conductances, so thermal EP "
               f"will not work on this board: {remedy}.")
    elif excess or failing:
        verdict = "biased"
        parts = []
        if excess:
            parts.append(f"{100 * (1 - fB):.0f}% (+-{100 * se:.0f}%) of the measured variance is "
                         f"uncorrelated noise ({what}) on top of T H^-1")
        parts += [_FAIL_TEXT[name].format(**tests[name]) for name in failing]
        msg = ("Fluctuations are not Boltzmann in the co-content: " + "; ".join(parts) +
               f". T = {T:.4g} {units} is biased and thermal EP will not work reliably "
               f"(its gradients will be biased by as much): {remedy}.")
    elif fB is None and not tests:
        verdict = "undetermined"
        msg = ("One measured node at one conductance setting cannot tell Boltzmann noise from "
               "uncorrelated (Johnson or ADC) noise: calibrate at two settings (--settings 2) or "
               "measure more nodes before trusting T for thermal EP.")
    elif se > tolerance:
        verdict = "undetermined"
        msg = (f"The share of the variance that follows T H^-1 is uncertain ({100 * fB:.0f}% "
               f"+- {100 * se:.0f}%): take more readings (--samples) or settings before trusting "
               f"T = {T:.4g} {units} for thermal EP.")
    else:
        verdict = "boltzmann"
        checks = ", ".join(f"{name} p={t['p_value']:.2g}" for name, t in tests.items()) or "no test"
        share = "" if fB is None else f"{100 * fB:.1f}% (+-{100 * se:.1f}%) of the variance follows T H^-1; "
        msg = (f"Fluctuations are Boltzmann in the co-content: {share}{checks}. Thermal EP can "
               f"use T = {T:.4g} {units}.")
    return Consistency(fB, fractions, coefficients, tests, verdict, msg, johnson_k, se)


_FAIL_TEXT = {
    "shape": "the covariance is not shaped like H^-1 (p={p_value:.2g})",
    "settings": "T changes with the conductances by {effect:.0%} (p={p_value:.2g})",
    "methods": "equipartition and fluctuation-dissipation disagree by {effect:.0%} (p={p_value:.2g})",
}


def _uncorrelated_source(unc: float | None, johnson_k: float | None,
                         adc_step: float | None) -> tuple[str, str]:
    """What the uncorrelated noise looks like, and what to do about it."""
    inject = "inject node current noise of intensity 2 T C_i (Boltzmann in the co-content)"
    if johnson_k is not None and 30.0 <= johnson_k <= 3000.0:
        return (f"shaped like k_B T C^-1 with T = {johnson_k:.0f} K, i.e. Johnson noise of the "
                "resistors alone", inject)
    average = "average more conversions per reading or use a quieter ADC"
    if adc_step and unc is not None and unc < 4 * adc_step**2:
        return "about the size of one ADC step, i.e. ADC noise or quantisation", average
    if johnson_k is not None:
        return (f"{'too large' if johnson_k > 3000 else 'too small'} for Johnson noise at a "
                f"physical temperature ({johnson_k:.3g} K for the node capacitances), i.e. ADC or "
                "channel noise", average)
    return "like ADC noise or Johnson noise (k_B T C^-1)", f"{average}, or {inject}"


def quantisation_report(variances: np.ndarray, step: float | None, precision: np.ndarray,
                        T: float) -> dict | None:
    """How ADC quantisation biases ``T``. A step ``D`` adds ``D^2/12`` to every variance
    (Sheppard), so equipartition overestimates ``T`` by ``D^2 tr(G^-1) / (12 m)``; below about
    half a step of noise the readings stick to a code and even that correction fails.
    ``variances`` (m,) V^2 per node, ``precision`` ``G^-1`` (m, m). Returns None without a step."""
    if not step:
        return None
    sigma = np.sqrt(np.asarray(variances, float))
    ratio = float(sigma.min() / step)
    bias = float(step**2 * np.trace(precision) / (12 * len(sigma)) / T) if T > 0 else math.inf
    warn = None
    if ratio < 4.0:
        warn = (f"noise is only {ratio:.2g} ADC steps ({step:.3g} V) at its smallest: quantisation "
                f"biases T by about {bias:+.1%}" +
                ("" if ratio >= 0.5 else ", and below half a step the bias is not even predictable")
                + "; average more or use a finer ADC range")
    return {"adc_step": step, "min_sigma_over_step": ratio, "relative_bias": bias, "warning": warn}


# ----------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CalibrationRecord:
    """A calibration record (see the module docstring for the JSON schema). ``data`` is the
    validated JSON object; the headline is ``temperature``, ``stderr`` and ``units``."""

    data: dict
    source: str = "<record>"

    @property
    def temperature(self) -> float:
        return float(self.data["temperature"]["value"])

    @property
    def stderr(self) -> float:
        return float(self.data["temperature"]["stderr"])

    @property
    def units(self) -> str:
        return self.data["temperature"]["units"]

    @property
    def board_id(self) -> str:
        return self.data["board"]["id"]

    @property
    def profile(self) -> str | None:
        return self.data["profile"]

    @property
    def profile_file(self) -> str | None:
        """The profile the board was calibrated with, as a bundled name or a file path."""
        return self.data.get("profile_file")

    @property
    def verdict(self) -> str:
        return self.data["consistency"]["verdict"]

    def __repr__(self) -> str:
        return (f"CalibrationRecord({self.source}: T = {self.temperature:.4g} +- {self.stderr:.2g} "
                f"{self.units}, board {self.board_id!r}, verdict {self.verdict})")

    def to_json(self) -> str:
        return json.dumps(self.data, indent=1, default=_json_default) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = "<record>") -> "CalibrationRecord":
        validate_record(data, source)
        return cls(data, source)


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} to a calibration record")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate_record(data: Any, source: str = "<record>") -> None:
    """Raise ConfigError naming the file and the field if ``data`` is not a version-1 record."""
    def fail(field_, why):
        raise ConfigError(f"{source}: invalid calibration record: {field_} {why}")

    if not isinstance(data, dict):
        fail("the file", "must hold a JSON object")
    if data.get("schema") != SCHEMA:
        fail("'schema'", f"must be {SCHEMA!r}")
    if data.get("version") != SCHEMA_VERSION:
        fail("'version'", f"must be {SCHEMA_VERSION} (this package reads version {SCHEMA_VERSION})")
    t = data.get("temperature")
    if not isinstance(t, dict):
        fail("'temperature'", 'must be {"value": T, "stderr": se, "units": ...}')
    if not _number(t.get("value")) or t["value"] <= 0:
        fail("'temperature.value'", "must be a positive number")
    if not _number(t.get("stderr")) or t["stderr"] < 0:
        fail("'temperature.stderr'", "must be a number >= 0")
    if not isinstance(t.get("units"), str) or not t["units"]:
        fail("'temperature.units'", "must be a non-empty string")
    board = data.get("board")
    if not isinstance(board, dict) or not isinstance(board.get("id"), str) or not isinstance(board.get("idn"), str):
        fail("'board'", 'must be {"idn": "*IDN? reply", "id": "maker,model,serial"}')
    for key in ("profile", "profile_file"):
        if data.get(key) is not None and not isinstance(data[key], str):
            fail(f"'{key}'", "must be a string or null")
    if data.get("method") not in METHODS:
        fail("'method'", f"must be one of {', '.join(METHODS)}")
    for key in ("created", "expires"):
        value = data.get(key)
        if key == "expires" and value is None:
            continue
        try:
            _parse_time(value)
        except (TypeError, ValueError):
            fail(f"'{key}'", "must be an ISO 8601 time with a time zone" + (" or null" if key == "expires" else ""))
    per = data.get("per_node")
    if not isinstance(per, dict) or not all(isinstance(v, dict) and _number(v.get("value")) and _number(v.get("stderr"))
                                            for v in per.values()):
        fail("'per_node'", 'must map node names to {"value": ..., "stderr": ...}')
    cons = data.get("consistency")
    if not isinstance(cons, dict) or not isinstance(cons.get("verdict"), str) or not isinstance(cons.get("message"), str):
        fail("'consistency'", "must hold a 'verdict' and a 'message'")
    if "adc" in data and data["adc"] is not None and not isinstance(data["adc"], dict):
        fail("'adc'", "must be an object or null")
    if not isinstance(data.get("command"), str):
        fail("'command'", "must be the command line that produced the record")


def _parse_time(value: str) -> _dt.datetime:
    if not isinstance(value, str):
        raise TypeError(value)
    t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(value)
    return t


def board_identity(idn: str) -> str:
    """The board identity in an ``*IDN?`` reply: its first three fields (maker, model, serial
    number); the firmware version may change without recalibration."""
    return ",".join(f.strip() for f in str(idn).split(",")[:3])


def calibration_path(name_or_path: str | Path) -> Path:
    """A record's path: an existing file, or the name of a record shipped with the package
    (``emulator-default``, with or without ``.json``), found wherever the package is installed.
    A name that is neither raises ConfigError listing the shipped records."""
    path = Path(name_or_path)
    if path.exists() or path.parent != Path("."):
        return path
    from importlib import resources
    folder = resources.files("analog_ep.resources") / "calibration"
    bundled = folder / (path.name if path.suffix == ".json" else f"{path.name}.json")
    if bundled.is_file():
        return Path(str(bundled))
    names = sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".json"))
    raise ConfigError(f"{name_or_path}: no such calibration record (shipped: {', '.join(names)})")


def load_calibration(path: str | Path, board_id: str | None = None, profile: str | None = None,
                     units: str | None = None, now: _dt.datetime | None = None) -> CalibrationRecord:
    """Read and validate a calibration record (a file, or a shipped record's name, see
    :func:`calibration_path`); refuse it when it does not apply.

    ``board_id`` is the ``*IDN?`` reply (or its first three fields) of the board in use and
    ``profile`` its profile name: a record made on another board or with another profile is
    refused, as is one past its ``expires`` time or in other ``units``. Errors are
    ConfigError naming the file and what to do.
    """
    path = calibration_path(path)
    src = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{src}: cannot read calibration record ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{src}: invalid calibration record: not JSON ({exc.msg} at line {exc.lineno})") from None
    rec = CalibrationRecord.from_dict(data, src)
    redo = "; recalibrate with `analog-ep calibrate`"
    if board_id is not None and board_identity(board_id) != rec.board_id:
        raise ConfigError(f"{src}: calibration record is for board {rec.board_id!r}, not "
                          f"{board_identity(board_id)!r}{redo}")
    if profile is not None and rec.profile != profile:
        raise ConfigError(f"{src}: calibration record was made with profile {rec.profile!r}, not "
                          f"{profile!r}{redo}")
    if units is not None and rec.units != units:
        raise ConfigError(f"{src}: calibration record gives T in {rec.units}, this network needs {units}")
    if data.get("expires") is not None:
        now = now or _dt.datetime.now(_dt.timezone.utc)
        if now > _parse_time(data["expires"]):
            raise ConfigError(f"{src}: calibration record expired on {data['expires']} (stale){redo}")
    return rec


# ----------------------------------------------------------------------------------------
# Driving a substrate
# ----------------------------------------------------------------------------------------

#: Fewest readings per run: the autocorrelation time and the covariance need this many.
MIN_SAMPLES = 100
#: Identity of the in-process emulator (any network: its noise is set, not drifting).
EMULATOR_IDN = "ANALOG-EP,EMULATOR,in-process,1"


def substrate_identity(substrate) -> tuple[str, str | None]:
    """``(idn, profile)`` of a substrate: a serial board's ``*IDN?`` reply and profile name,
    or :data:`EMULATOR_IDN` and None for the in-process emulator. Pass them to
    :func:`load_calibration` to refuse a record made on another board."""
    client = getattr(substrate, "client", None)
    if client is not None and getattr(client, "identity", None):
        prof = getattr(substrate, "profile", None)
        return ",".join(client.identity), getattr(prof, "name", None)
    return EMULATOR_IDN, None


def calibration_for(path: str | Path, substrate, units: str | None = "W") -> CalibrationRecord:
    """The record at ``path`` checked against the substrate in use: refused (ConfigError)
    when made on another board, with another profile, in other ``units`` or when stale;
    a warning when its verdict says the noise is not Boltzmann. Trainers call this to set
    ``T = record.temperature``."""
    idn, profile = substrate_identity(substrate)
    rec = load_calibration(path, board_id=idn, profile=profile, units=units)
    if rec.verdict != "boltzmann":
        warnings.warn(f"{path}: {rec.data['consistency']['message']}", stacklevel=2)
    return rec


def _profile_file(substrate) -> str | None:
    """A serial board's profile as a bundled name or file path (None in process)."""
    prof = getattr(substrate, "profile", None)
    if getattr(substrate, "client", None) is None or prof is None:
        return None
    from .hardware.profile import profile_reference
    return profile_reference(prof)


def _adc_step(substrate) -> float | None:
    """One ADC step (V) of a substrate, from its profile or its noise model; None if exact."""
    prof = getattr(substrate, "profile", None)
    if prof is not None and getattr(prof, "measured", None) is not None:
        ch = prof.measured
        return (ch.hi - ch.lo) / ch.full_scale
    noise = getattr(substrate, "noise", None)
    if noise is not None and noise.adc_bits is not None:
        lo, hi = noise.adc_range
        return (hi - lo) / (2 ** noise.adc_bits - 1)
    return None


def _capacitance(substrate, model, nodes: Sequence[str]) -> np.ndarray | None:
    """Node capacitances (F) of the measured free nodes, or None when unknown."""
    noise = getattr(substrate, "noise", None)
    free = list(model.free_names)
    idx = [free.index(n) for n in nodes]
    if noise is not None:
        from .physics.noise import node_capacitances
        return node_capacitances(model, noise)[idx]
    prof = getattr(substrate, "profile", None)
    table = getattr(prof, "capacitance", None) or {}
    c = np.array([table.get(n, model.capacitance[model.free[i]]) for n, i in zip(nodes, idx)], float)
    return c if np.all(np.isfinite(c) & (c > 0)) else None


def _applied_currents(substrate, currents: np.ndarray) -> np.ndarray:
    """The currents a board with quantised nudge sources actually applies."""
    prof = getattr(substrate, "profile", None)
    if prof is not None and getattr(prof, "nudge", None) is not None:
        return prof.nudge_currents(prof.nudge_codes(currents))
    return currents


def _max_current(substrate) -> float:
    prof = getattr(substrate, "profile", None)
    return prof.nudge.hi if prof is not None and getattr(prof, "nudge", None) is not None else math.inf


def _settings(model, theta: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` conductance settings: ``theta``, then every trainable conductance scaled by
    2, 1/2, 4, 1/4, ... (clipped into the bounds; scales the clipping makes useless skipped)."""
    out = [theta]
    if len(theta) == 0 or count < 2:
        return out
    lo, hi = model.theta_bounds()
    for k in range(1, 8):
        for f in (2.0**k, 0.5**k):
            cand = np.clip(theta * f, lo, hi)
            if all(np.max(np.abs(cand / o - 1)) > 0.1 for o in out):
                out.append(cand)
            if len(out) == count:
                return out
    return out


@dataclass(frozen=True)
class _Setting:
    theta: np.ndarray
    free: np.ndarray            # (N, m) readings of the measured free nodes
    shape: np.ndarray           # G = (H^-1)_MM
    estimates: dict


def _shape_of(model, theta: np.ndarray, u: np.ndarray, cols: np.ndarray) -> np.ndarray:
    from .physics.equilibrium import solve_equilibrium
    s = solve_equilibrium(model, theta, u).s
    Hinv = np.linalg.inv(model.hessian(theta, u, s)[0])
    return Hinv[np.ix_(cols, cols)]


def _pilot_currents(substrate, free: np.ndarray, out: np.ndarray, read_cols: np.ndarray,
                    nudge_sigmas: float, names: Sequence[str]) -> np.ndarray:
    """Nudge currents (A) that move each output's mean by ``nudge_sigmas`` reading standard
    deviations: probe each output with a growing current until its response is five
    standard errors clear, then scale (``R_jj = shift / current``); model-free."""
    i_max = _max_current(substrate)
    n_pilot = max(MIN_SAMPLES, len(free) // 10)
    sigma = free[:, out].std(axis=0, ddof=1)
    base = free[:, out].mean(axis=0)
    n_out = len(out)
    deltas = np.empty(n_out)
    for j in range(n_out):
        probe = min(1e-6, i_max / 100)
        while True:
            cur = np.zeros(n_out)
            cur[j] = probe
            probe = float(_applied_currents(substrate, cur)[j])
            substrate.nudge_currents(cur)
            shift = substrate.sample(n_pilot)[0][:, read_cols[out[j]]].mean() - base[j]
            se = sigma[j] * math.sqrt(1.0 / n_pilot + 1.0 / len(free))
            if abs(shift) > 5 * se:
                break
            if probe >= i_max:
                raise ConfigError(f"fdt: no response at output {names[out[j]]} up to the largest "
                                  f"nudge current {i_max:g} A; check the nudge source")
            probe = min(probe * 10, i_max)
        if shift <= 0:
            raise ConfigError(f"fdt: output {names[out[j]]} moved by {shift:.3g} V for {probe:.3g} A "
                              "injected; a passive network must move up (check the current's sign)")
        deltas[j] = min(nudge_sigmas * sigma[j] * probe / shift, i_max)
    substrate.nudge_currents(np.zeros(n_out))
    return deltas


def _fdt_runs(substrate, deltas: np.ndarray, n: int, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Readings with ``+-deltas[j]`` at output ``j`` alone: (k, n, m) each, and the currents applied."""
    k = len(deltas)
    applied = np.empty(k)
    runs = {}
    for sign in (1.0, -1.0):
        for j in range(k):
            cur = np.zeros(k)
            cur[j] = sign * deltas[j]
            cur = _applied_currents(substrate, cur)
            applied[j] = abs(cur[j])
            substrate.nudge_currents(cur)
            runs[sign, j] = substrate.sample(n)[0][:, cols]
    substrate.nudge_currents(np.zeros(k))
    return (np.stack([runs[1.0, j] for j in range(k)]), np.stack([runs[-1.0, j] for j in range(k)]), applied)


def adc_loopback(substrate, model, *, points: int = 7, samples: int = 200,
                 theta: np.ndarray | None = None, span: tuple[float, float] | None = None) -> ChannelCalibration:
    """Gain and offset of every measured channel from known voltages.

    Sweeps all inputs together over ``points`` voltages in ``span`` (V; default +-1 V, or
    the DAC range when narrower), takes the mean of ``samples`` readings at each, and fits
    the readings against the voltages the network must show there (inputs as clamped, free
    nodes from the equilibrium of the known conductances, ground and bias as fixed) with
    :func:`fit_gain_offset`. Channels whose true voltage does not move with the inputs
    (ground, bias) get only an offset, with gain 1. Run it on a board opened without an
    ADC calibration: the fit is relative to the readings it is given.
    """
    from .physics.equilibrium import solve_equilibrium
    if points < 3:
        raise ConfigError(f"ADC loopback needs at least 3 points, got {points}")
    if len(model.input_names) == 0:
        raise ConfigError("ADC loopback sweeps the inputs, and this network has none")
    lo, hi = span or (-1.0, 1.0)
    prof = getattr(substrate, "profile", None)
    if span is None and prof is not None:
        lo, hi = max(lo, prof.inputs.lo), min(hi, prof.inputs.hi)
    measured = list(substrate.capabilities.measured)
    index = np.array([model.node_names.index(n) for n in measured], dtype=np.intp)
    applied = substrate.set_parameters(model.default_theta if theta is None else theta)
    if substrate.capabilities.nudge:
        substrate.nudge_currents(np.zeros(len(model.output_names)))
    levels = np.linspace(lo, hi, points)
    known, read = [], []
    for v in levels:
        u = np.full((1, len(model.input_names)), v)
        substrate.clamp(u)
        read.append(substrate.sample(samples)[0].mean(axis=0))
        s = solve_equilibrium(model, applied, u).s
        known.append(model.voltages(s, u)[0, index])
    known, read = np.array(known), np.array(read)
    moving = np.ptp(known, axis=0) > 1e-3 * (hi - lo)
    cal = fit_gain_offset(known[:, moving], read[:, moving], [n for n, m in zip(measured, moving) if m])
    fixed = ~moving
    off = (known[:, fixed] - read[:, fixed]).mean(axis=0)
    res = known[:, fixed] - read[:, fixed] - off
    order = np.argsort(np.concatenate([np.flatnonzero(moving), np.flatnonzero(fixed)]))
    cat = lambda a, b: np.concatenate([a, b])[order]
    rms = np.sqrt(np.mean(res**2, axis=0))
    return ChannelCalibration(tuple(measured), cat(cal.gain, np.ones(fixed.sum())), cat(cal.offset, off),
                              cat(cal.gain_stderr, np.zeros(fixed.sum())),
                              cat(cal.offset_stderr, rms / math.sqrt(points)),
                              cat(cal.residual_rms, rms), points)


class _Corrected:
    """A substrate whose readings pass through a channel calibration."""

    def __init__(self, inner, adc: ChannelCalibration):
        order = [adc.names.index(n) for n in inner.capabilities.measured]
        self._inner, self._gain, self._offset = inner, adc.gain[order], adc.offset[order]

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def sample(self, n: int) -> np.ndarray:
        return self._inner.sample(n) * self._gain + self._offset


def check_samples(samples: int, nodes: int, precision: float | None) -> None:
    """Refuse too few readings for a covariance or for the requested relative precision,
    saying how many are needed."""
    if samples < max(MIN_SAMPLES, nodes + 2):
        raise ConfigError(f"--samples {samples} is too few: calibration needs at least "
                          f"{max(MIN_SAMPLES, nodes + 2)} readings per run")
    if precision is not None:
        if not 0 < precision < 1:
            raise ConfigError(f"--precision must be a relative error in (0, 1), got {precision}")
        need = samples_needed(precision, nodes)
        if samples < need:
            best = math.sqrt(2.0 / (nodes * (samples - 1)))
            raise ConfigError(f"--samples {samples} gives at best a {best:.1%} relative standard error "
                              f"on T from {nodes} node(s); {precision:.1%} needs at least {need} "
                              "readings (more if readings are correlated in time)")


def calibrate(substrate, model, *, method: str = "both", samples: int = 4000, settings: int = 2,
              theta: np.ndarray | None = None, inputs: np.ndarray | None = None,
              nudge_sigmas: float = NUDGE_SIGMAS, precision: float | None = None,
              tolerance: float = TOLERANCE, command: str = "", seed: int | None = None,
              valid_days: float | None = None, family: str = "resistive",
              adc: ChannelCalibration | None = None, adc_points: int = 0,
              progress=None) -> CalibrationRecord:
    """Measure the noise temperature of ``substrate`` (a resistive network ``model`` wired on
    it) and judge whether its noise is Boltzmann; returns the record.

    At each of ``settings`` conductance settings (``theta``, then scaled; see
    :func:`_settings`) takes ``samples`` free readings at the ``inputs`` (default: the
    network's), estimates ``T`` by equipartition and/or, with nudge sources, by
    fluctuation-dissipation (2 runs of ``samples`` per output, currents chosen by a pilot to
    move each output by ``nudge_sigmas`` standard deviations, plus a free run of its own
    when both methods run, so that their estimates are independent). ``T`` is the inverse-variance
    mean of every estimate; per-node values come from the first setting. ``precision``: the
    relative standard error required (checked before and after measuring). ``progress(msg)``
    is called before each run. ``adc``: a channel calibration to apply to the readings, or
    with ``adc_points`` > 0 one measured first by :func:`adc_loopback`; either is written
    into the record's ``adc`` table (node -> gain, offset) that the serial driver applies
    to every reading when opened with the record. Cost:
    ``settings * (2 + 2 k) * samples`` readings with both methods.
    """
    if method not in METHODS:
        raise ConfigError(f"--method {method}: expected one of {', '.join(METHODS)}")
    if int(settings) != settings or settings < 1:
        raise ConfigError(f"--settings {settings}: needs at least 1 conductance setting (2 or more "
                          "test that T does not change with the conductances)")
    if not (math.isfinite(nudge_sigmas) and nudge_sigmas > 0):
        raise ConfigError(f"--nudge-sigmas {nudge_sigmas}: must be > 0 reading standard deviations")
    if not 0 < tolerance < 1:
        raise ConfigError(f"--tolerance {tolerance}: must be a relative deviation in (0, 1)")
    if valid_days is not None and not (math.isfinite(valid_days) and valid_days > 0):
        raise ConfigError(f"--valid-days {valid_days}: must be a number of days > 0")
    caps = substrate.capabilities
    use_eq, use_fdt = method in ("equipartition", "both"), method in ("fdt", "both")
    idn, profile = substrate_identity(substrate)
    if use_fdt and not caps.nudge:
        raise ConfigError(f"--method {method}: fluctuation-dissipation injects currents at the outputs, "
                          f"but board {board_identity(idn)} has no nudge current sources; "
                          "use --method equipartition")
    measured = list(caps.measured)
    nodes = [n for n in model.free_names if n in measured]
    if not nodes:
        raise ConfigError(f"the substrate measures none of the free nodes {', '.join(model.free_names)}")
    m = len(nodes)
    read_cols = np.array([measured.index(n) for n in nodes], dtype=np.intp)
    free_cols = np.array([list(model.free_names).index(n) for n in nodes], dtype=np.intp)
    out = []
    if use_fdt:
        missing = [n for n in model.output_names if n not in nodes]
        if missing:
            raise ConfigError(f"--method {method}: the substrate does not measure output(s) {', '.join(missing)}")
        out = np.array([nodes.index(n) for n in model.output_names], dtype=np.intp)
    check_samples(samples, m, precision)
    units = TEMPERATURE_UNITS.get(family, "energy units")
    say = progress or (lambda msg: None)
    if adc_points:
        say(f"ADC loopback: {adc_points} input levels")
        adc = adc_loopback(substrate, model, points=adc_points, theta=theta)
    if adc is not None:
        substrate = _Corrected(substrate, adc)
    u = model.check_inputs(inputs)
    if len(u) != 1:
        raise ConfigError(f"calibration clamps one input vector at a time; got a batch of {len(u)}")
    thetas = _settings(model, model.default_theta if theta is None else np.asarray(theta, float), settings)

    runs: list[_Setting] = []
    for s, th in enumerate(thetas):
        applied = substrate.set_parameters(th)
        substrate.clamp(u)
        if caps.nudge:
            substrate.nudge_currents(np.zeros(len(model.output_names)))
        say(f"setting {s + 1}/{len(thetas)}: {samples} free readings")
        free = substrate.sample(samples)[0][:, read_cols]
        if not np.all(np.ptp(free, axis=0) > 0):
            still = [n for n, v in zip(nodes, np.ptp(free, axis=0)) if v == 0]
            raise ConfigError(f"readings of node(s) {', '.join(still)} do not fluctuate: the board is "
                              "at T = 0 or its noise is below one ADC step; nothing to calibrate")
        shape = _shape_of(model, applied, u, free_cols)
        est = {}
        if use_eq:
            est["equipartition"] = equipartition_temperature(free, shape, nodes)
        if use_fdt:
            say(f"setting {s + 1}/{len(thetas)}: pilot and {2 * len(out)} nudged runs")
            deltas = _pilot_currents(substrate, free, out, read_cols, nudge_sigmas, nodes)
            plus, minus, applied_i = _fdt_runs(substrate, deltas, samples, read_cols)
            # with both methods, a run of its own keeps the two estimates independent
            centre = substrate.sample(samples)[0][:, read_cols] if use_eq else free
            est["fdt"] = fdt_temperature(plus, minus, applied_i, out, nodes, free=centre)
        runs.append(_Setting(applied, free, shape, est))
    substrate.set_parameters(thetas[0])

    every = [(name, s, e) for s, r in enumerate(runs) for name, e in r.estimates.items()]
    T, se, _, _, _ = combine_estimates([e.value for _, _, e in every], [e.stderr for _, _, e in every])
    if precision is not None and se > precision * T:
        tau = max(e.info["tau"] for _, _, e in every)
        need = int(math.ceil(samples * (se / (precision * T)) ** 2))
        raise ConfigError(f"T = {T:.4g} +- {se:.2g} {units} misses the requested {precision:.1%} "
                          f"(readings are correlated over {tau:.3g} samples); rerun with --samples {need}")

    # consistency
    taus = [max(e.info["tau"] for e in r.estimates.values()) for r in runs]
    decomposition = decompose_noise([np.cov(r.free.T).reshape(m, m) for r in runs], [r.shape for r in runs],
                                    [len(r.free) / t for r, t in zip(runs, taus)],
                                    _capacitance(substrate, model, nodes))
    fractions = decomposition["fractions"]
    tests = {}
    if m >= 2:
        shape_stats = [shape_test(r.free, r.shape, t) for r, t in zip(runs, taus)]
        stat, dof = sum(x[0] for x in shape_stats), sum(x[1] for x in shape_stats)
        tests["shape"] = {"statistic": stat, "dof": dof, "p_value": float(stats.chi2.sf(stat, dof)),
                          "effect": math.inf if fractions is None else 1.0 - fractions["boltzmann"]}
    main = "equipartition" if use_eq else "fdt"
    if len(runs) > 1:
        vals = [r.estimates[main].value for r in runs]
        mean, _, chi2, dof, p = combine_estimates(vals, [r.estimates[main].stderr for r in runs])
        tests["settings"] = {"statistic": chi2, "dof": dof, "p_value": p,
                             "effect": float(np.max(np.abs(np.array(vals) / mean - 1))),
                             "values": vals}
    if use_eq and use_fdt:
        eq = combine_estimates(*zip(*[(r.estimates["equipartition"].value, r.estimates["equipartition"].stderr) for r in runs]))
        fd = combine_estimates(*zip(*[(r.estimates["fdt"].value, r.estimates["fdt"].stderr) for r in runs]))
        z = (eq[0] - fd[0]) / math.hypot(eq[1], fd[1])
        tests["methods"] = {"statistic": z, "dof": 1, "p_value": float(2 * stats.norm.sf(abs(z))),
                            "effect": abs(eq[0] / fd[0] - 1)}
    step = _adc_step(substrate)
    cons = judge(decomposition, tests, T, units,
                 _capacitance(substrate, model, nodes), step, tolerance)
    first = runs[0]
    quant = quantisation_report(np.var(first.free, axis=0, ddof=1), step,
                                _precision(first.shape, tuple(nodes)), T)
    warnings = [w for w in [quant and quant["warning"]] if w]
    if cons.verdict != "boltzmann":
        warnings.append(cons.message)
    head = first.estimates[main]
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    if valid_days is None and idn != EMULATOR_IDN:
        valid_days = 30.0
    data = {
        "schema": SCHEMA, "version": SCHEMA_VERSION,
        "board": {"idn": idn, "id": board_identity(idn)},
        "profile": profile,
        "profile_file": _profile_file(substrate),
        "created": now.isoformat(),
        "expires": None if valid_days is None else (now + _dt.timedelta(days=valid_days)).isoformat(),
        "method": method,
        "temperature": {"value": T, "stderr": se, "units": units},
        "per_node": {n: {"value": float(v), "stderr": float(e)}
                     for n, v, e in zip(head.nodes, head.per_node, head.per_node_stderr)},
        "methods": {name: [r.estimates[name].to_dict(units) for r in runs] for name in first.estimates},
        "settings": [{"theta": dict(zip(model.param_names, map(float, r.theta)))} for r in runs],
        "inputs": dict(zip(model.input_names, map(float, u[0]))),
        "network": model.name,
        "samples": samples,
        "adc": {} if adc is None else adc.to_dict(),
        "quantisation": quant,
        "consistency": cons.to_dict(),
        "warnings": warnings,
        "seed": seed,
        "command": command,
    }
    return CalibrationRecord.from_dict(json.loads(json.dumps(data, default=_json_default)), "<new record>")
