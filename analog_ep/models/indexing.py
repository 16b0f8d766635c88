"""Node bookkeeping shared by the classical models whose state is a subset of the nodes."""

from __future__ import annotations

from functools import cached_property

import numpy as np


class FreeNodeIndexing:
    """Names and positions for a model with fields ``node_names`` (every node), ``free``
    (node indices of the state), ``inputs`` (node indices of the clamped inputs) and
    ``outputs`` (positions of the outputs *within the free state*)."""

    node_names: tuple[str, ...]
    free: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray

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
