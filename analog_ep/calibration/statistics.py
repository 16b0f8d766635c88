"""Statistics shared by the calibration estimators: integrated autocorrelation times
(Sokal's automatic window), means with autocorrelation-aware standard errors, and the
inverse-variance combination of estimates."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import special



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


def mean_and_stderr(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    p = float(special.chdtrc(dof, chi2)) if dof > 0 else 1.0
    return mean, se, chi2, dof, p
