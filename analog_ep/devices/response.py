"""Nominal step sizes of the response families, vectorised over devices.

With ``x = (g - g_min)/(g_max - g_min)`` the position of each device in its own range
(``g_min``, ``g_max``, ``dg`` = its ``dg_min`` and ``alpha`` its asymmetry, all drawn at
fabrication), the magnitudes of one up and one down pulse's change (S) are:

- ideal: ``dg`` both ways.
- constant step: ``up = dg (1 + alpha)``, ``down = dg (1 - alpha)``.
- linear step (reference ``r`` in (0, 1), ``g_r = g_min + r (g_max - g_min)``):
  ``up = dg (1 + alpha) (1 - gamma_up (x - r)/(1 - r))``,
  ``down = dg (1 - alpha) (1 - gamma_down (r - x)/r)``: the step is ``dg`` at ``g_r`` and
  shrinks by the fraction ``gamma`` at the bound it moves towards.
- soft bounds: ``up = dg (1 + alpha) (1 - x)``, ``down = dg (1 - alpha) x``.
- exp step (reference ``r`` in [0, 1]): ``z = 2 a (x - r) + b``,
  ``up = dg (1 + alpha) max(1 - A_up exp(gamma_up z), 0)``,
  ``down = dg (1 - alpha) max(1 - A_down exp(-gamma_down z), 0)``.

Negative magnitudes (a linear step with ``gamma > 1`` past its bound) are taken as 0. A
pulse then adds the step (with its write noise) and clips to ``[g_min, g_max]``; a counter
has no step size, only taps (:mod:`analog_ep.devices.array`).
"""

from __future__ import annotations

import numpy as np


def step_sizes(family: str, shape: dict, g: np.ndarray, g_min: np.ndarray, g_max: np.ndarray,
               dg: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(up, down) >= 0 step magnitudes (S) of devices at conductances ``g`` (see module)."""
    x = (g - g_min) / (g_max - g_min)
    up, down = dg * (1 + alpha), dg * (1 - alpha)
    if family == "ideal":
        return dg * np.ones_like(x), dg * np.ones_like(x)
    if family == "constant-step":
        return up, down
    if family == "soft-bounds":
        return up * (1 - x), down * x
    r = shape["reference"]
    if family == "linear-step":
        return (np.maximum(up * (1 - shape["gamma_up"] * (x - r) / (1 - r)), 0.0),
                np.maximum(down * (1 - shape["gamma_down"] * (r - x) / r), 0.0))
    if family == "exp-step":
        z = 2 * shape["a"] * (x - r) + shape["b"]
        return (up * np.maximum(1 - shape["A_up"] * np.exp(shape["gamma_up"] * z), 0.0),
                down * np.maximum(1 - shape["A_down"] * np.exp(-shape["gamma_down"] * z), 0.0))
    raise ValueError(f"no step sizes for family {family!r}")
