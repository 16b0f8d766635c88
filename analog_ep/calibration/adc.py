"""ADC gain and offset: the per-channel correction ``V_true = gain * V_read + offset``, fitted
by least squares from known voltages, with errors and residuals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ConfigError


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
