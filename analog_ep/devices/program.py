"""Programming device arrays to target conductances, by pulses (docs/devices.md).

- **Open loop** (``method = "pulses"``): one pulse train of ``c`` pulses per device, from
  the continuous count ``c* = (target - g)/dg_local`` (``dg_local`` the device's nominal
  step at ``g`` towards the target; for a counter ``c*`` is the difference of real tap
  positions, exact) rounded ``deterministic`` (to nearest), ``stochastic`` (up with
  probability the fractional part, so ``E[c] = c*``) or ``sign`` (one pulse towards the
  target when ``|c*| >= 1/2``).
- **Program and verify** (``method = "verify"``): read back (with read noise), pulse the
  devices whose real count ``|c*|`` from the read value exceeds ``tolerance`` (in local
  steps: taps for a counter) by the rounded count (at least one pulse), and repeat until
  every device is within tolerance or has used its ``budget`` of pulses.

The controller knows each device's range and step scale (as after a calibration of the
array): targets are first clipped to each device's ``[g_min, g_max]``, and no train is
longer than the device's number of states. An ideal device is set
exactly, with no pulses, by either method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DeviceError
from .array import DeviceArray
from .response import step_sizes

METHODS = ("pulses", "verify")
ROUNDINGS = ("deterministic", "stochastic", "sign")


@dataclass(frozen=True)
class Programming:
    """How targets are written (see the module): ``method``, ``rounding`` of open-loop
    counts, and for ``verify`` the ``tolerance`` (in local steps) and the ``budget`` (most
    pulses per device per programming)."""

    method: str = "pulses"
    rounding: str = "deterministic"
    tolerance: float = 1.0
    budget: int = 100

    def __post_init__(self):
        if self.method not in METHODS:
            raise DeviceError(f"programming method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.rounding not in ROUNDINGS:
            raise DeviceError(f"pulse rounding {self.rounding!r}: expected one of {', '.join(ROUNDINGS)}")
        if not self.tolerance > 0 or int(self.budget) < 1:
            raise DeviceError(f"verify tolerance must be > 0 and budget >= 1, got {self.tolerance}, {self.budget}")


def continuous_counts(array: DeviceArray, target: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``c*``: the real number of pulses from ``g`` to ``target`` (S) of each device."""
    if array.spec.family == "counter":
        return array.counter_tap(target) - array.counter_tap(g)
    diff = target - g
    up, down = step_sizes(array.spec.family, array.spec.shape, g, array.g_min, array.g_max, array.dg, array.alpha)
    step = np.where(diff > 0, up, down)
    return np.divide(diff, step, out=np.zeros_like(diff), where=step > 0)


def round_counts(c: np.ndarray, rounding: str, rng: np.random.Generator, most: int) -> np.ndarray:
    """Integer pulse counts from real ones (see the module), at most ``most`` either way."""
    c = np.clip(c, -most, most)
    if rounding == "deterministic":
        return np.rint(c).astype(np.int64)
    if rounding == "stochastic":
        low = np.floor(c)
        return (low + (rng.random(c.shape) < c - low)).astype(np.int64)
    return (np.sign(c) * (np.abs(c) >= 0.5)).astype(np.int64)


def program(array: DeviceArray, target, settings: Programming = Programming()) -> np.ndarray:
    """Move every device towards ``target`` (S, one per device) as ``settings`` say; return
    the conductances reached."""
    target = np.broadcast_to(np.asarray(target, dtype=float), (array.n,))
    if array.spec.family == "ideal":
        return array.set_exactly(target)
    spec = array.spec
    target = np.clip(target, array.g_min, array.g_max)
    if settings.method == "pulses":
        return array.pulse(round_counts(continuous_counts(array, target, array.conductance),
                                        settings.rounding, array.rng, spec.states))
    used = np.zeros(array.n, dtype=np.int64)
    while True:
        g = array.read()
        c_real = continuous_counts(array, target, g)
        far = (np.abs(c_real) > settings.tolerance) & ~array.stuck & (used < settings.budget)
        if not far.any():
            return array.conductance
        c = round_counts(c_real, "deterministic", array.rng, spec.states)
        c = np.where(c == 0, np.sign(target - g).astype(np.int64), c)   # at least one pulse
        c = np.clip(c, -(settings.budget - used), settings.budget - used) * far
        used += np.abs(c)
        array.pulse(c)
