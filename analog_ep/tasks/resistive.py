"""The resistive task: the data encoding and the trainer's ``Objective`` for networks of
resistors, diodes and sources, on the emulator or a serial board.

**Resistive encoding** (documented defaults):

- Inputs: a network with ``2F`` inputs for ``F`` features receives ``+s x_i`` on input
  ``2i`` and ``-s x_i`` on input ``2i+1`` (in the model's input order; conductances are
  positive, so a signed weight needs both polarities); with ``F`` inputs it receives
  ``s x_i``. ``s`` is the graph attribute ``input_scale`` (V, default 1: features in
  [-1, 1] span the DAC range +-1 V).
- Targets: with one output node per class, the true class's output should read
  ``target_high`` and the others ``target_low`` (graph attributes, V; defaults +-0.1 V);
  with two output nodes per class (``2 n_classes`` outputs, consecutive in output order)
  each pair ``(p, m)`` is read differentially, ``V_p - V_m``, against the same levels.
- Two-class data on a network with a single output: class 1 should read ``target_high``
  and class 0 ``target_low``; the prediction is class 1 when the output reads above the
  middle of the two levels (its sign, with the default symmetric levels). Squared read-out
  only (a softmax needs one output per class).
- Prediction: the argmax of the read-out; the cost is the squared error
  ``C = 1/2 sum_k (r_k - d_k)^2`` (V^2), or with ``readout="softmax"`` the cross-entropy
  of ``softmax(gain * r)`` against one-hot targets (:mod:`analog_ep.models.readout`).
- Parameters start at the graph's conductances (the default networks draw them from the
  run's seed); the ``ep`` rule's nudging strength, unless given, is ``beta_fraction``
  (:data:`~analog_ep.learning.rules.DEFAULT_BETA_FRACTION`) of the output curvature bound at
  each batch (see :class:`analog_ep.learning.rules.EPRule`).
- Temperature: :func:`~analog_ep.substrates.factory.resolve_temperature` of the flag, the
  calibration record, the board profile and, on the emulator for rules that need one,
  :data:`~analog_ep.physics.noise.RESISTIVE_DEFAULT_TEMPERATURE`.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from ..errors import ConfigError
from ..learning.objective import GradientResult
from ..learning.registry import make_rule, rule_options
from ..learning.rules import state_from_readings
from ..models.cost import SquaredCost
from ..models.readout import SoftmaxCrossEntropyCost
from ..models.resistive import compile_network
from ..physics.noise import RESISTIVE_DEFAULT_TEMPERATURE
from ..substrates.factory import open_substrate, require_nudge, require_output_clamp
from .base import Task

FAMILY = "resistive"
#: Unclamped thermal EP: learning from the fluctuations alone, no output clamping.
DEFAULT_RULE = "thermal"

DEFAULT_TARGET = 0.1
"""Default output target levels (+-V) for networks that do not state theirs."""

DEFAULT_GAIN = 40.0
"""Default gain (1/V) of the softmax read-out: a read-out difference of 25 mV is a factor e."""

EVAL_CHUNK = 1000
"""Inputs per equilibrium solve when evaluating a whole split."""


class ResistiveObjective:
    """The trainer's objective for a resistive network on a substrate with a gradient rule.

    ``rule``, ``beta``, ``symmetric``, ``samples``, ``temperature``, ``order``: the rule
    (see :func:`~analog_ep.learning.registry.make_rule`); ``substrate``: ``emulator`` or
    ``serial:PORT``; ``calibration``: a calibration record, whose temperature the thermal rules use when
    ``temperature`` is not given (nor by the substrate's capabilities, e.g. a board profile's
    ``temperature``); ``profile``: the board profile of a serial substrate (file or bundled name,
    see :func:`~analog_ep.substrates.factory.open_substrate`); ``differential``: read outputs in pairs; ``readout``:
    ``squared`` (default) or ``softmax`` (cross-entropy of ``softmax(gain * r)``, see
    :mod:`analog_ep.models.readout`; ``gain`` in 1/V); ``device``, ``program``,
    ``pulse_rounding``, ``device_seed``: devices for the emulator's trainable conductances (see
    :func:`~analog_ep.substrates.factory.open_substrate`); ``sampler``: the emulator's sampler of
    thermal readings (:func:`~analog_ep.substrates.emulated.choose_sampler`);
    ``eta_c``: the clamping fraction of the coupled rule.
    """

    def __init__(self, graph: nx.Graph, *, rule: str = DEFAULT_RULE, beta: float | None = None,
                 symmetric: bool = True, beta_fraction: float | None = None, samples: int | None = None,
                 temperature: float | None = None, order: int | None = None, substrate: str = "emulator",
                 calibration=None, differential: bool = False,
                 readout: str = "squared", gain: float | None = None, profile: str | None = None,
                 richardson: bool = False, rng: np.random.Generator | None = None,
                 device: str | None = None, program: str | None = None, pulse_rounding: str | None = None,
                 device_seed=0, sampler: str = "auto", eta_c: float | None = None):
        self.model = compile_network(graph)
        self.param_names = self.model.param_names
        idx = tuple(int(i) for i in self.model.outputs)
        if differential and len(idx) % 2:
            raise ConfigError(f"differential outputs need an even number of outputs; the network has {len(idx)}")
        if readout == "squared":
            self.cost = SquaredCost(idx, differential=differential)
        elif readout == "softmax":
            self.cost = SoftmaxCrossEntropyCost(idx, differential=differential,
                                                gain=DEFAULT_GAIN if gain is None else float(gain))
        else:
            raise ConfigError(f"unknown read-out {readout!r}; use 'squared' or 'softmax'")
        thermal = "temperature" in rule_options(rule)       # an unknown rule is refused here
        # the substrate shares the compiled model (and its cached layer structure); the
        # emulator's default noise applies only to the rules that learn from it
        self.substrate = open_substrate(substrate, self.model, temperature, rng=rng, calibration=calibration,
                                        profile=profile,
                                        default_temperature=RESISTIVE_DEFAULT_TEMPERATURE if thermal else None,
                                        device=device, program=program, pulse_rounding=pulse_rounding,
                                        device_seed=device_seed, sampler=sampler)
        try:
            self._configure(rule, substrate, beta, beta_fraction, symmetric, samples, order, richardson, eta_c)
        except BaseException:
            self.close()                            # release a serial board's port
            raise

    def _configure(self, rule, substrate, beta, beta_fraction, symmetric, samples, order, richardson,
                   eta_c) -> None:
        """The rule, at the substrate's resolved temperature when the rule needs one."""
        if hasattr(self.substrate, "cost"):
            self.substrate.cost = self.cost         # the board nudges with the training cost
        options = {"beta": beta, "samples": samples, "order": order, "symmetric": None if symmetric else False,
                   "beta_fraction": beta_fraction if beta is None else None, "richardson": richardson or None, "eta_c": eta_c}
        if "temperature" in rule_options(rule):
            T = self.substrate.capabilities.temperature
            if T is None:
                raise ConfigError(f"the {rule} rule needs the noise temperature of {substrate}, which does not "
                                  f"state one: pass --temperature T (W) or --calibration FILE (a record made "
                                  f"by 'analog-ep calibrate')")
            options["temperature"] = T
        self.rule = make_rule(rule, **options)
        if self.rule.needs_nudge:
            require_nudge(self.substrate.capabilities, f"the {self.rule.name} rule")
        if getattr(self.rule, "needs_output_clamp", False):
            require_output_clamp(self.substrate.capabilities, f"the {self.rule.name} rule")

    def __repr__(self) -> str:
        return f"ResistiveObjective({self.model!r}, {self.rule!r}, {self.substrate!r})"

    def close(self) -> None:
        """Release the substrate (a serial board's port); the in-process emulator holds nothing."""
        getattr(self.substrate, "close", lambda: None)()

    def physical_totals(self) -> dict | None:
        """The substrate's running totals of physical cost (pulses, write energy, power,
        settling time: :meth:`~analog_ep.substrates.emulated.EmulatedBoard.physical_totals`);
        None where the substrate does not keep them."""
        totals = getattr(self.substrate, "physical_totals", None)
        return None if totals is None else totals()

    def initial_parameters(self, rng: np.random.Generator) -> np.ndarray:
        """The graph's conductances (S)."""
        return self.model.default_theta

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.model.theta_bounds()

    def gradient(self, theta, inputs, targets, rng) -> GradientResult:
        if hasattr(self.substrate, "rng"):
            self.substrate.rng = rng                # every draw comes from the trainer's stream
        return self.rule.gradient(self.model, self.substrate, self.cost, theta, inputs, targets, rng)

    def _states(self, theta, inputs) -> np.ndarray:
        self.substrate.set_parameters(theta)
        self.substrate.nudge(0.0, None)
        out = []
        for k in range(0, len(inputs), EVAL_CHUNK):
            self.substrate.clamp(inputs[k:k + EVAL_CHUNK])
            out.append(state_from_readings(self.model, self.substrate.capabilities.measured,
                                           self.substrate.equilibrium()))
        return np.concatenate(out)

    def predict(self, theta, inputs) -> np.ndarray:
        """Read-out (B, n_targets) at the free equilibrium (V)."""
        return self.cost.readout(self._states(theta, inputs))

    def loss(self, theta, inputs, targets) -> float:
        return float(np.mean(self.cost.value(self._states(theta, inputs), targets)))

    def evaluate(self, theta, inputs, targets) -> tuple[float, np.ndarray]:
        """Mean loss and read-out from one set of free equilibria."""
        s = self._states(theta, inputs)
        return float(np.mean(self.cost.value(s, targets))), self.cost.readout(s)


def _argmax(readout: np.ndarray) -> np.ndarray:
    return np.argmax(np.atleast_2d(readout), axis=1)


def build(graph: nx.Graph, n_features: int, n_classes: int, options: dict[str, Any]) -> Task:
    """The resistive task (encoding in the module docstring)."""
    model = compile_network(graph)
    n_in, n_out = len(model.inputs), len(model.outputs)
    name = graph.graph.get("name") or graph.graph.get("source", "the network")
    if n_in == 2 * n_features:
        doubled = True
    elif n_in == n_features:
        doubled = False
    else:
        raise ConfigError(f"{name} has {n_in} inputs; the data set has {n_features} features "
                          f"(expected {n_features}, or {2 * n_features} doubled as +x/-x)")
    softmax = options.get("readout", "squared") == "softmax"
    binary = n_classes == 2 and n_out == 1
    if n_out == 2 * n_classes:
        differential = True
    elif n_out == n_classes or binary:
        differential = False
    else:
        raise ConfigError(f"{name} has {n_out} outputs; the data set has {n_classes} classes "
                          f"(expected {n_classes}, or {2 * n_classes} as differential pairs"
                          + (", or 1 read by its sign)" if n_classes == 2 else ")"))
    if binary and softmax:
        raise ConfigError(f"{name} has a single output, read by its sign; the softmax read-out needs one "
                          f"output per class: use the squared read-out")
    scale = float(graph.graph.get("input_scale", 1.0))
    high = float(graph.graph.get("target_high", DEFAULT_TARGET))
    low = float(graph.graph.get("target_low", -DEFAULT_TARGET))
    objective = ResistiveObjective(graph, differential=differential, **options)

    def encode_inputs(x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        if x.shape[1] != n_features:
            raise ConfigError(f"expected {n_features} features, got {x.shape[1]}")
        if not doubled:
            return scale * x
        return scale * np.stack([x, -x], axis=2).reshape(len(x), 2 * n_features)

    def encode_targets(y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        if binary:
            return np.where(y == 1, high, low)[:, None]
        onehot = np.arange(n_classes)[None, :] == y[:, None]
        return onehot.astype(float) if softmax else np.where(onehot, high, low)

    def above_middle(readout: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(readout)[:, 0] > (high + low) / 2).astype(int)

    return Task(objective, encode_inputs, encode_targets, above_middle if binary else _argmax)
