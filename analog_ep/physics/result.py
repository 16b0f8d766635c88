"""The result of an equilibrium solve, shared by the general and the layered solvers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Equilibrium:
    """Result of an equilibrium solve: free state ``s`` (B, n_free) in volts, the Newton
    iterations used (0 for a direct linear solve) and the final relative residual."""

    s: np.ndarray
    iterations: int
    residual: float
