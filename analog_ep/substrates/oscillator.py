"""The in-process emulator of an oscillator network (phases instead of volts)."""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..errors import ConfigError
from ..models.periodic_cost import PeriodicCost
from ..models.oscillator import OscillatorModel, compile_oscillator, wrap
from ..physics.torus import (BasinVisits, TorusEquilibrium, TorusSamples, basin_visits, sample_torus,
                             solve_torus)
from .base import Capabilities


class EmulatedOscillators:
    """An oscillator network emulated in process, behind the :class:`Substrate` interface.

    Readings are phases (rad, wrapped into ``[-pi, pi)``) of the ``measured`` oscillators;
    ``clamp`` takes input phases, ``nudge(beta, targets)`` adds ``beta C`` with the periodic
    cost ``C = sum_o (1 - cos(phi_o - theta_o))`` (``beta`` in coupling units). At
    ``temperature = 0`` readings are the minimum of :func:`~analog_ep.physics.torus.solve_torus`
    (``restarts`` starts; the lowest minimum); a nudged equilibrium is warm-started from the
    free one of the same parameters and inputs, so it stays in the free state's basin, unless
    ``nudged_restarts`` random starts are added (then it is the lowest minimum of
    ``E + beta C`` found from all of them; see :mod:`analog_ep.tasks.oscillator`). At
    ``T > 0`` ``equilibrium()`` is still the minimum and ``sample(n)`` draws MALA samples
    (:func:`~analog_ep.physics.torus.sample_torus`). Parameters are clipped into their bounds.
    The last solve's basin report and the last sampler's diagnostics are kept in
    ``last_equilibrium`` (the free one's also in ``free_equilibrium``) and ``last_samples``;
    :meth:`basin_visits` says which basins the
    last samples visited.
    """

    def __init__(self, model: OscillatorModel | nx.Graph, temperature: float = 0.0,
                 rng: np.random.Generator | None = None, measured: tuple[str, ...] | None = None,
                 restarts: int = 4, chains: int = 16, burn: int = 200, thin: int = 2,
                 nudged_restarts: int = 0):
        self.model = model if isinstance(model, OscillatorModel) else compile_oscillator(model)
        if not temperature >= 0 or not np.isfinite(temperature):
            raise ConfigError(f"temperature must be >= 0 (coupling units), got {temperature}")
        self.temperature = float(temperature)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.restarts, self.chains, self.burn, self.thin = restarts, chains, burn, thin
        self.nudged_restarts = nudged_restarts
        names = tuple(measured) if measured is not None else self.model.node_names
        index = {n: i for i, n in enumerate(self.model.node_names)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ConfigError(f"cannot measure unknown oscillators {unknown}")
        self._measured = np.array([index[n] for n in names], dtype=np.intp)
        self.capabilities = Capabilities(measured=names, nudge=True, batch=True,
                                         temperature=self.temperature, quantised=False)
        self.cost = PeriodicCost(tuple(int(i) for i in self.model.outputs))
        self.theta = self.model.default_theta
        self.inputs = self.model.default_inputs[None, :]
        self.beta = 0.0
        self.targets: np.ndarray | None = None
        self._s_free: np.ndarray | None = None
        self.last_equilibrium: TorusEquilibrium | None = None
        self.free_equilibrium: TorusEquilibrium | None = None
        self.last_samples: TorusSamples | None = None

    def __repr__(self) -> str:
        return (f"EmulatedOscillators({self.model!r}, temperature={self.temperature:g}, "
                f"restarts={self.restarts}, chains={self.chains}, burn={self.burn}, thin={self.thin})")

    def set_parameters(self, theta: np.ndarray) -> np.ndarray:
        lo, hi = self.model.theta_bounds()
        self.theta = np.clip(self.model.check_theta(theta), lo, hi)
        self._s_free = None
        return self.theta.copy()

    def clamp(self, inputs: np.ndarray) -> None:
        self.inputs = self.model.check_inputs(inputs)
        self._s_free = None

    def nudge(self, beta: float, targets: np.ndarray | None = None) -> None:
        if not np.isfinite(beta):
            raise ConfigError(f"beta must be finite, got {beta}")
        if beta != 0.0 and targets is None:
            raise ConfigError("nudging needs target phases")
        self.beta = float(beta)
        self.targets = None if targets is None else np.atleast_2d(np.asarray(targets, dtype=float))

    def nudge_currents(self, currents: np.ndarray) -> None:
        raise ConfigError("an oscillator network has no current sources: a constant torque is not a "
                          "potential on the circle; nudge with the periodic cost instead")

    def free_state(self) -> np.ndarray:
        """Free minimum (B, n_free) at the current parameters and inputs (cached)."""
        if self._s_free is None:
            eq = solve_torus(self.model, self.theta, self.inputs, restarts=self.restarts)
            self._s_free, self.last_equilibrium, self.free_equilibrium = eq.s, eq, eq
        return self._s_free

    def equilibrium_state(self) -> np.ndarray:
        """Free phases (B, n_free) at the current settings; nudged solves start at the free one."""
        s_free = self.free_state()
        if self.beta == 0.0:
            return s_free
        eq = solve_torus(self.model, self.theta, self.inputs, cost=self.cost, targets=self.targets,
                         beta=self.beta, s0=s_free, extra_starts=self.nudged_restarts)
        self.last_equilibrium = eq
        return eq.s

    def _read(self, s: np.ndarray) -> np.ndarray:
        return wrap(self.model.phases(s, self.inputs)[..., self._measured])

    def equilibrium(self) -> np.ndarray:
        return self._read(self.equilibrium_state())

    def sample(self, n: int) -> np.ndarray:
        if n < 1:
            raise ConfigError(f"number of samples must be >= 1, got {n}")
        s = self.equilibrium_state()
        if self.temperature == 0.0:
            return np.repeat(self._read(s)[:, None, :], n, axis=1)
        res = sample_torus(self.model, self.theta, self.inputs, temperature=self.temperature,
                           n_samples=n, rng=self.rng, cost=self.cost, targets=self.targets,
                           beta=self.beta, s0=s, chains=self.chains, burn=self.burn, thin=self.thin)
        self.last_samples = res
        B = len(res.samples)
        P = self.model.phases(res.samples.reshape(B * n, -1), np.repeat(self.inputs, n, axis=0)
                              if len(self.inputs) > 1 else self.inputs)
        return wrap(P[:, self._measured]).reshape(B, n, len(self._measured))

    def basin_visits(self, max_quench: int = 64) -> BasinVisits:
        """Basins visited by the last :meth:`sample` call (quenching at most ``max_quench``
        samples per input): the thermal ``<C>`` averages over all of them."""
        if self.last_samples is None:
            raise ConfigError("no thermal samples yet: call sample(n) at a temperature T > 0 first")
        return basin_visits(self.model, self.theta, self.inputs, self.last_samples.samples, cost=self.cost,
                            targets=self.targets, beta=self.beta, max_quench=max_quench)
