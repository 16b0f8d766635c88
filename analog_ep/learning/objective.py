"""What a gradient rule returns to the trainer, and what the trainer optimises (see
docs/ARCHITECTURE.md, "Training")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class Objective(Protocol):
    """What the trainer optimises: a network, a substrate and a gradient rule bound together.

    ``inputs`` (B, n_inputs) and ``targets`` (B, n_targets) are already encoded (volts,
    fields or phases; see the family adapters in :mod:`analog_ep.tasks`). ``theta`` is
    ``(P,)`` in the order of ``param_names`` and in the model's units (siemens for
    resistive networks); ``bounds`` are the box the trainer projects onto.
    """

    param_names: tuple[str, ...]

    def initial_parameters(self, rng: np.random.Generator) -> np.ndarray:
        """Starting parameters (P,)."""

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (P,), (P,)."""

    def gradient(self, theta: np.ndarray, inputs: np.ndarray, targets: np.ndarray,
                 rng: np.random.Generator) -> GradientResult:
        """Mean loss over the batch and ``d loss / d theta`` (P,)."""

    def predict(self, theta: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """Read-out (B, n_outputs) compared with the targets; the class is its argmax."""

    def loss(self, theta: np.ndarray, inputs: np.ndarray, targets: np.ndarray) -> float:
        """Mean loss over the batch."""
