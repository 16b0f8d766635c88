"""What a gradient rule returns to the trainer (see docs/ARCHITECTURE.md, "Training")."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GradientResult:
    """One gradient evaluation on a batch.

    loss: mean objective over the batch; gradient: ``(P,)`` in the order of
    ``param_names``; stderr: ``(P,)`` standard error of a stochastic estimate, or None
    when the gradient is exact; info: rule-specific diagnostics (counts, gaps, ...).
    """

    loss: float
    gradient: np.ndarray
    stderr: np.ndarray | None = None
    info: dict = field(default_factory=dict)
