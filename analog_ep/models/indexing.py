"""Node bookkeeping shared by the classical models whose state is a subset of the nodes."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..errors import ConfigError


class FreeNodeIndexing:
    """Names and positions for a model with fields ``node_names`` (every node), ``free``
    (node indices of the state), ``inputs`` (node indices of the clamped inputs) and
    ``outputs`` (positions of the outputs *within the free state*)."""

    node_names: tuple[str, ...]
    free: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray
    default_inputs: np.ndarray
    #: What the inputs are, for error messages ("inputs", "input phases").
    input_kind = "inputs"

    @property
    def n_nodes(self) -> int:
        return len(self.node_names)

    @property
    def n_free(self) -> int:
        return len(self.free)

    @property
    def free_names(self) -> tuple[str, ...]:
        return tuple(self.node_names[i] for i in self.free)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.node_names[i] for i in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.node_names[self.free[i]] for i in self.outputs)

    @cached_property
    def free_pos(self) -> np.ndarray:
        """(n_nodes,) position of each node in the free state, -1 for clamped nodes."""
        pos = np.full(self.n_nodes, -1)
        pos[self.free] = np.arange(self.n_free)
        return pos

    def check_inputs(self, u: np.ndarray | None) -> np.ndarray:
        """Inputs as a finite (B, n_inputs) array; ``None`` means the defaults, batch 1."""
        if u is None:
            return self.default_inputs[None, :].copy()
        u = np.asarray(u, dtype=float)
        if u.ndim == 1:
            u = u[None, :]
        if u.ndim != 2 or u.shape[1] != len(self.inputs):
            raise ConfigError(f"expected {self.input_kind} of shape (batch, {len(self.inputs)}) for "
                              f"inputs {', '.join(self.input_names)}; got {u.shape}")
        if not np.all(np.isfinite(u)):
            rows = np.flatnonzero(~np.all(np.isfinite(u), axis=1))
            raise ConfigError(f"{self.input_kind} contain NaN or infinite values "
                              f"(batch rows {rows[:5].tolist()})")
        return u
