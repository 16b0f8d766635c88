"""The in-process emulator of a resistive board."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..learning.cost import SquaredCost
from ..models.resistive import ResistiveModel, compile_network
from ..physics.equilibrium import solve_equilibrium
from .base import Capabilities


class EmulatedBoard:
    """A resistive network emulated in process, behind the :class:`Substrate` interface.

    At ``temperature = 0`` readings are the exact equilibrium. Parameters are clipped into
    their bounds and, with ``levels``, quantised to that many evenly spaced conductances
    between the bounds, as a digital potentiometer would.
    """

    def __init__(self, model, temperature: float = 0.0, rng: np.random.Generator | None = None,
                 levels: int | None = None, measured: tuple[str, ...] | None = None):
        self.model: ResistiveModel = model if isinstance(model, ResistiveModel) else compile_network(model)
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0 W, got {temperature}")
        self.temperature = float(temperature)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.levels = levels
        names = measured or self.model.node_names
        index = {n: i for i, n in enumerate(self.model.node_names)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ConfigError(f"cannot measure unknown nodes {unknown}")
        self._measured = np.array([index[n] for n in names], dtype=np.intp)
        self.capabilities = Capabilities(measured=tuple(names), nudge=True, batch=True,
                                         temperature=self.temperature, quantised=levels is not None)
        self.cost = SquaredCost(tuple(int(i) for i in self.model.outputs))
        self.theta = self.model.default_theta
        self.inputs = self.model.default_inputs[None, :]
        self.beta = 0.0
        self.targets: np.ndarray | None = None
        self.currents = np.zeros(len(self.model.outputs))
        self._s_warm: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"EmulatedBoard({self.model!r}, temperature={self.temperature:g} W, "
                f"levels={self.levels})")

    def quantise(self, theta: np.ndarray) -> np.ndarray:
        """Clip to the bounds and round to the nearest of ``levels`` conductances."""
        lo, hi = self.model.theta_bounds()
        theta = np.clip(np.asarray(theta, dtype=float), lo, hi)
        if self.levels is not None:
            step = (hi - lo) / (self.levels - 1)
            theta = lo + np.round((theta - lo) / step) * step
        return theta

    def set_parameters(self, theta: np.ndarray) -> np.ndarray:
        self.theta = self.quantise(theta)
        self._s_warm = None
        return self.theta.copy()

    def clamp(self, inputs: np.ndarray) -> None:
        self.inputs = self.model.check_inputs(inputs)
        self._s_warm = None

    def nudge(self, beta: float, targets: np.ndarray | None = None) -> None:
        if beta != 0.0 and targets is None:
            raise ConfigError("nudging needs targets")
        self.beta = float(beta)
        self.targets = None if targets is None else np.atleast_2d(np.asarray(targets, dtype=float))

    def nudge_currents(self, currents: np.ndarray) -> None:
        self.currents = np.asarray(currents, dtype=float)

    def _effective_model(self) -> ResistiveModel:
        if not np.any(self.currents):
            return self.model
        from dataclasses import replace
        injected = self.model.node_current.copy()
        injected[self.model.free[self.model.outputs]] += self.currents
        return replace(self.model, node_current=injected)

    def equilibrium_state(self) -> np.ndarray:
        """Free-node state (B, n_free) at the current settings."""
        eq = solve_equilibrium(self._effective_model(), self.theta, self.inputs, cost=self.cost,
                               targets=self.targets, beta=self.beta, s0=self._s_warm)
        self._s_warm = eq.s
        return eq.s

    def equilibrium(self) -> np.ndarray:
        s = self.equilibrium_state()
        return self.model.voltages(s, self.inputs)[:, self._measured]

    def sample(self, n: int) -> np.ndarray:
        if n < 1:
            raise ConfigError(f"number of samples must be >= 1, got {n}")
        V = self.equilibrium()
        if self.temperature > 0:
            raise NotImplementedError("thermal sampling")
        return np.repeat(V[:, None, :], n, axis=1)
