"""Network families for training: graph + data set + options -> objective and data encoding.

A :class:`Task` bundles what the trainer needs: an
:class:`~analog_ep.learning.objective.Objective`, the encoding of features into inputs and
of labels into targets, and the decoding of read-outs into labels. :func:`build_task`
dispatches on the graph attribute ``family``. The ``resistive`` adapter lives here; the
``quantum`` and ``oscillator`` adapters are modules (``analog_ep.quantum_family``,
``analog_ep.oscillator_family``) imported only when a graph of their family is trained,
each providing ``make_objective(graph, **options)``, ``encode_inputs(x)``,
``encode_targets(y, n_classes, n_outputs)`` and ``decode_outputs(readout)``.

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
  (0.2) of the output curvature bound at each batch (see :class:`analog_ep.learning.rules.EPRule`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import networkx as nx
import numpy as np

from .errors import ConfigError
from .schema import family as graph_family
from .models.cost import SquaredCost
from .learning.objective import GradientResult, Objective
from .learning.registry import make_rule
from .learning.thermal_rules import THERMAL_RULES
from .physics.noise import RESISTIVE_DEFAULT_TEMPERATURE as DEFAULT_TEMPERATURE

DEFAULT_TARGET = 0.1
"""Default output target levels (+-V) for networks that do not state theirs."""

DEFAULT_GAIN = 40.0
"""Default gain (1/V) of the softmax read-out: a read-out difference of 25 mV is a factor e."""

EVAL_CHUNK = 1000
"""Inputs per equilibrium solve when evaluating a whole split."""


@dataclass(frozen=True, eq=False)
class Task:
    """An objective with its data encoding: ``encode_inputs(x (N, F)) -> (N, n_inputs)``,
    ``encode_targets(y (N,)) -> (N, n_targets)``, ``decode(readout) -> (N,)`` labels."""

    objective: Objective
    encode_inputs: Callable[[np.ndarray], np.ndarray]
    encode_targets: Callable[[np.ndarray], np.ndarray]
    decode: Callable[[np.ndarray], np.ndarray]


class ResistiveObjective:
    """The trainer's objective for a resistive network on a substrate with a gradient rule.

    ``rule``, ``beta``, ``symmetric``, ``samples``, ``temperature``, ``order``: the rule
    (see :func:`~analog_ep.learning.rules.make_rule`); ``substrate``: ``emulator`` or
    ``serial:PORT``; ``calibration``: a calibration record, whose temperature the thermal rules use when
    ``temperature`` is not given (nor by the substrate's capabilities, e.g. a board profile's
    ``temperature``); ``profile``: the board profile of a serial substrate (file or bundled name,
    see :func:`~analog_ep.substrates.factory.open_substrate`); ``differential``: read outputs in pairs; ``readout``:
    ``squared`` (default) or ``softmax`` (cross-entropy of ``softmax(gain * r)``, see
    :mod:`analog_ep.models.readout`; ``gain`` in 1/V).
    """

    def __init__(self, graph: nx.Graph, *, rule: str = "ep", beta: float | None = None,
                 symmetric: bool = True, beta_fraction: float = 0.2, samples: int | None = None,
                 temperature: float | None = None, order: int | None = None, substrate: str = "emulator",
                 calibration: str | None = None, differential: bool = False,
                 readout: str = "squared", gain: float | None = None, profile: str | None = None,
                 rng: np.random.Generator | None = None):
        from .models.resistive import compile_network
        from .substrates.factory import open_substrate
        self.model = compile_network(graph)
        self.param_names = self.model.param_names
        idx = tuple(int(i) for i in self.model.outputs)
        if differential and len(idx) % 2:
            raise ConfigError(f"differential outputs need an even number of outputs; the network has {len(idx)}")
        if readout == "squared":
            self.cost = SquaredCost(idx, differential=differential)
        elif readout == "softmax":
            from .models.readout import SoftmaxCrossEntropyCost
            self.cost = SoftmaxCrossEntropyCost(idx, differential=differential,
                                                gain=DEFAULT_GAIN if gain is None else float(gain))
        else:
            raise ConfigError(f"unknown read-out {readout!r}; use 'squared' or 'softmax'")
        if temperature is None and calibration is not None:
            from .calibration import load_calibration
            temperature = load_calibration(calibration).temperature
        if temperature is None and substrate == "emulator" and rule in THERMAL_RULES:
            temperature = DEFAULT_TEMPERATURE      # the emulator's documented default noise
        # the substrate shares the compiled model (and its cached layer structure)
        self.substrate = open_substrate(substrate, self.model, temperature, rng=rng, calibration=calibration,
                                        profile=profile)
        try:
            self._configure(rule, substrate, temperature, beta, beta_fraction, symmetric, samples, order)
        except BaseException:
            self.close()                            # release a serial board's port
            raise

    def _configure(self, rule, substrate, temperature, beta, beta_fraction, symmetric, samples, order) -> None:
        """The rule, with the temperature the substrate states when none was given."""
        if temperature is None:                     # what the board (profile) states, if anything
            temperature = self.substrate.capabilities.temperature
        if temperature is None and rule in THERMAL_RULES:
            raise ConfigError(f"the {rule} rule needs the noise temperature of {substrate}, which does not "
                              f"state one: pass --temperature T (W) or --calibration FILE (a record made "
                              f"by 'analog-ep calibrate')")
        if hasattr(self.substrate, "cost"):
            self.substrate.cost = self.cost         # the board nudges with the training cost
        if rule == "ep" and beta is None:
            options = dict(beta_fraction=beta_fraction)
        else:
            options = dict(beta=beta)
        self.rule = make_rule(rule, symmetric=symmetric, samples=samples, temperature=temperature,
                              order=order, **options)
        if self.rule.needs_nudge:
            from .substrates.factory import require_nudge
            require_nudge(self.substrate.capabilities, f"the {self.rule.name} rule")

    def __repr__(self) -> str:
        return f"ResistiveObjective({self.model!r}, {self.rule!r}, {self.substrate!r})"

    def close(self) -> None:
        """Release the substrate (a serial board's port); the in-process emulator holds nothing."""
        getattr(self.substrate, "close", lambda: None)()

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
        from .learning.rules import state_from_readings
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


def resistive_task(graph: nx.Graph, n_features: int, n_classes: int, options: dict[str, Any]) -> Task:
    """The resistive adapter (encoding in the module docstring)."""
    from .models.resistive import compile_network
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


def _module_task(module: str, allowed: dict[str, str]) -> Callable:
    """An adapter for a family implemented in ``module`` (imported on first use).
    ``allowed`` maps the trainer's option names to the module's."""

    def build(graph: nx.Graph, n_features: int, n_classes: int, options: dict[str, Any]) -> Task:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            raise ConfigError(f"training {graph_family(graph)} networks needs {module}, which is not "
                              f"installed in this version") from None
        given = {k: v for k, v in options.items() if v is not None}
        extra = sorted(k for k in given if k not in allowed)
        extra = [k for k in extra if not (k == "substrate" and given[k] == "emulator")]
        if extra:
            raise ConfigError(f"option(s) {', '.join(extra)} do not apply to {graph_family(graph)} networks")
        objective = mod.make_objective(graph, **{allowed[k]: v for k, v in given.items() if k in allowed})
        n_in = len(getattr(objective, "input_names", ()) or ()) or None
        if n_in is not None and n_in != n_features:
            raise ConfigError(f"the network has {n_in} inputs; the data set has {n_features} features")
        n_out = len(getattr(objective, "output_names", ()) or ()) or None
        # an objective may carry its network's own input encoding (e.g. a phase scale)
        return Task(objective, getattr(objective, "encode_inputs", mod.encode_inputs),
                    lambda y: mod.encode_targets(y, n_classes, n_out), mod.decode_outputs)

    return build


#: family name -> adapter ``(graph, n_features, n_classes, options) -> Task``.
FAMILIES: dict[str, Callable[..., Task]] = {
    "resistive": resistive_task,
    "quantum": _module_task("analog_ep.quantum_family",
                            {"rule": "rule", "beta": "beta", "symmetric": "symmetric",
                             "temperature": "temperature", "samples": "shots", "state": "state"}),
    "oscillator": _module_task("analog_ep.oscillator_family",
                               {"rule": "rule", "beta": "beta", "symmetric": "symmetric",
                                "temperature": "temperature", "samples": "samples",
                                "substrate": "substrate"}),
}


def build_task(graph: nx.Graph, n_features: int, n_classes: int, options: dict[str, Any]) -> Task:
    """The task for ``graph`` (dispatching on its ``family``) on data of ``n_features``
    features and ``n_classes`` classes; ``options`` as accepted by the family."""
    return FAMILIES[graph_family(graph)](graph, n_features, n_classes, options)
