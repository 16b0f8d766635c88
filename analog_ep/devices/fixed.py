"""Fabrication spread of a board's fixed parts: resistors within their tolerance, diodes
with spread saturation currents and ideality factors (docs/devices.md)."""

from __future__ import annotations

import numpy as np

from .spec import FixedSpread


def fabricate_fixed(spread: FixedSpread, conductance: np.ndarray, i_s: np.ndarray, n: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fabricated values of fixed resistors and diodes from their nominal ones.

    Resistances are ``R (1 + t u)``, ``u`` uniform on [-1, 1] and ``t`` the tolerance, so
    conductances are ``g / (1 + t u)``; diode saturation currents ``I_s exp(s xi)``
    (log-normal, ``s = diode_i_s_spread``); ideality factors ``n (1 + diode_n_spread xi)``,
    drawn again while not above 0. Returns (conductance S, i_s A, n), each of its input's shape.
    """
    conductance, i_s, n = (np.asarray(a, dtype=float) for a in (conductance, i_s, n))
    g = conductance / (1 + spread.resistor_tolerance * rng.uniform(-1, 1, conductance.shape))
    i_s = i_s * np.exp(spread.diode_i_s_spread * rng.standard_normal(i_s.shape))
    n_out = n * (1 + spread.diode_n_spread * rng.standard_normal(n.shape))
    while np.any(n_out <= 0):
        n_out = np.where(n_out > 0, n_out, n * (1 + spread.diode_n_spread * rng.standard_normal(n.shape)))
    return g, i_s, n_out
