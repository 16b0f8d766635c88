"""The oscillator task: data encoding and the trainer's ``Objective`` for phase-oscillator networks.

**Encoding (documented defaults; each trap below is a test in tests/test_oscillator.py).**

- Inputs: a feature ``x`` in [-1, 1] becomes the clamped phase
  ``phi = INPUT_OFFSET + s x`` (:func:`encode_inputs`) with ``s`` the graph attribute
  ``input_scale`` (default :data:`INPUT_SCALE` = ``pi/4``: binary features land on
  ``+-pi/4``; the Iris example uses ``pi/2``, which spreads continuous features over
  distinct cosines and sines). Not on ``0``/``pi``: with inputs there and no fields, ``E`` is even under
  ``phi -> -phi``, every minimum sits at ``0`` or ``pi`` and the outputs do not move with
  any coupling (zero gradient).
- Fields start random (:meth:`OscillatorObjective.initial_parameters`): without fields
  ``E(-phi, -u) = E(phi, u)``, so the outputs are odd in the inputs and XOR, whose
  ``(+,+)`` and ``(-,-)`` share a class, is impossible.
- Targets: phases ``+-TARGET_PHASE`` (``pi/2``): one output per class (``+pi/2`` on the
  class's output, ``-pi/2`` elsewhere), or one output for two classes (``-pi/2``, ``+pi/2``)
  (:func:`encode_targets`). The cost is periodic, ``C = sum_o (1 - cos(phi_o - theta_o))``;
  a read-out is decoded to the nearest class target (:func:`decode_outputs`), which for
  these targets is ``argmax_o sin(phi_o)`` (the sign of ``sin(phi_o)`` for one output).
- Initial parameters (``init="random"``): couplings ``U(-J_INIT, J_INIT)``, fields
  ``U(-f, f)`` for both Cartesian components with ``f`` the graph attribute ``field_init``
  (default :data:`FIELD_INIT`); ``init="file"`` keeps the graph's values.

**Rules.** ``ep`` (symmetric nudging with the periodic cost), ``exact`` (implicit
function), ``fd``, ``thermal`` (covariance of MALA samples at ``T``), ``thermal-nudged``
and ``low-t``. ``beta`` and ``T`` are in coupling units; their defaults
(:data:`~analog_ep.learning.rules.DEFAULT_BETA_FRACTION` of the output curvature for ``ep``, :data:`DEFAULT_BETA` otherwise,
:data:`OSCILLATOR_DEFAULT_TEMPERATURE`) may be overridden by the graph attributes ``beta``,
``beta_fraction`` and ``temperature``. Equilibria come from
:func:`analog_ep.physics.torus.solve_torus` (``restarts`` starts, the lowest minimum). The
nudged phases start at the free minimum, and with the graph attribute ``nudged_restarts = k``
(default :data:`NUDGED_RESTARTS` = 0) also from ``k`` uniform random points, keeping the
lowest minimum of ``E + beta C``. Why: these networks are multistable, and the free
read-out is the lowest minimum, so the loss ``C(s*(W))`` jumps wherever two minima swap
order, which no local gradient sees; with the nudged phases at the lowest minimum of
``E +- beta C`` as well, symmetric EP is exactly the gradient of the surrogate
``L_beta(W) = (Phi(W, beta) - Phi(W, -beta)) / 2 beta``, ``Phi(W, beta) = min_s E + beta C``
(envelope theorem), which is continuous in ``W`` and tends to the loss as ``beta -> 0``
(tests/test_oscillator_rules.py checks the identity against finite differences of
``L_beta``). With a single minimum nothing changes. It is a per-network choice: the bundled
Iris network trains better with it (``nudged_restarts = 7``), the XOR network without it
(benchmarks/RESULTS.md).
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..errors import ConfigError
from ..learning.objective import GradientResult
from ..learning.registry import make_rule
from ..learning.rules import DEFAULT_BETA_FRACTION
from ..models.oscillator import OscillatorModel, compile_oscillator
from ..models.periodic_cost import PeriodicCost, class_targets, decode_nearest
from ..networks import FIELD_INIT, INPUT_SCALE, J_INIT
from ..physics.torus import OSCILLATOR_DEFAULT_TEMPERATURE
from ..schema import as_float
from ..substrates.oscillator import EmulatedOscillators
from .base import Task, mapped_options, objective_task

FAMILY = "oscillator"
#: Unclamped thermal EP, as for every classical network.
DEFAULT_RULE = "thermal"
#: The trainer's option names -> this family's.
OPTIONS = {"rule": "rule", "beta": "beta", "symmetric": "symmetric", "temperature": "temperature",
           "samples": "samples", "substrate": "substrate"}

INPUT_OFFSET = 0.0
TARGET_PHASE = np.pi / 2
#: Nudging strength (coupling units) of thermal-nudged and low-t.
DEFAULT_BETA = 0.01
#: Random starts added to the warm start of every nudged solve, unless the graph says otherwise
#: (module docstring).
NUDGED_RESTARTS = 0
#: Readings per input of the sampling rules.
DEFAULT_SAMPLES = 64
RULES = ("ep", "exact", "fd", "thermal", "thermal-nudged", "low-t")
THERMAL = ("thermal", "thermal-nudged")


def encode_inputs(x: np.ndarray, scale: float = INPUT_SCALE, offset: float = INPUT_OFFSET) -> np.ndarray:
    """Features ``x (N, F)`` in [-1, 1] to clamped phases ``offset + scale x`` (rad)."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    if not np.all(np.isfinite(x)):
        raise ConfigError("features contain NaN or infinite values")
    if not np.all(np.abs(x) <= 1.0):
        raise ConfigError("features must lie in [-1, 1] before encoding them as phases")
    return offset + scale * x


def encode_targets(y: np.ndarray, n_classes: int, n_outputs: int | None = None,
                   phase: float = TARGET_PHASE) -> np.ndarray:
    """Integer labels ``y (N,)`` to target phases ``(N, n_outputs)`` (see :func:`class_targets`)."""
    y = np.asarray(y)
    n_outputs = n_classes if n_outputs is None else n_outputs
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or np.any((y < 0) | (y >= n_classes)):
        raise ConfigError(f"labels must be integers in [0, {n_classes})")
    return class_targets(n_classes, n_outputs, phase)[y]


def decode_outputs(readout: np.ndarray, n_classes: int | None = None, phase: float = TARGET_PHASE) -> np.ndarray:
    """Class labels from output phases ``(N, n_outputs)``: the nearest class target."""
    readout = np.atleast_2d(readout)
    n_out = readout.shape[1]
    n_classes = (2 if n_out == 1 else n_out) if n_classes is None else n_classes
    return decode_nearest(readout, class_targets(n_classes, n_out, phase))


class OscillatorObjective:
    """The trainer's ``Objective`` for an oscillator network (docs/ARCHITECTURE.md, "Training").

    ``rule`` one of :data:`RULES`; ``beta`` nudging strength and ``temperature`` ``T``
    (coupling units); ``samples`` readings per input of the thermal rules; ``order`` of
    ``low-t``; ``restarts`` of the equilibrium solver and ``nudged_restarts`` random starts
    added to the warm start of nudged solves (default: graph attribute ``nudged_restarts``,
    else :data:`NUDGED_RESTARTS`); ``init`` ``random`` or ``file``;
    ``cost`` must be ``periodic`` (the only cost that respects the phases' periodicity);
    ``substrate`` must be ``emulator``; ``chains``, ``burn``, ``thin`` set the sampler.
    Inputs and targets passed to the methods are already encoded phases.
    """

    def __init__(self, G: nx.Graph | OscillatorModel, *, rule: str = "ep", beta: float | None = None,
                 symmetric: bool = True, samples: int | None = None, temperature: float | None = None,
                 order: int | None = None, restarts: int = 4, init: str = "random",
                 cost: str = "periodic", substrate: str = "emulator", chains: int = 16, burn: int = 60,
                 thin: int = 2, nudged_restarts: int | None = None):
        graph = {} if isinstance(G, OscillatorModel) else G.graph
        self.model = G if isinstance(G, OscillatorModel) else compile_oscillator(G)
        if cost != "periodic":
            raise ConfigError(f"cost {cost!r} is not periodic in the phases; oscillator networks use the "
                              "periodic cost C = sum_o (1 - cos(phi_o - theta_o))")
        if substrate != "emulator":
            raise ConfigError(f"substrate {substrate!r}: oscillator networks run on the emulator only")
        if rule not in RULES:
            raise ConfigError(f"unknown rule {rule!r} for an oscillator network; use one of {', '.join(RULES)}")
        if init not in ("random", "file"):
            raise ConfigError(f"init must be 'random' or 'file'; got {init!r}")
        self.rule_name, self.init = rule, init
        if nudged_restarts is None:
            nudged_restarts = graph.get("nudged_restarts", NUDGED_RESTARTS)
        nudged_restarts = as_float(nudged_restarts, "nudged_restarts")
        if nudged_restarts < 0 or nudged_restarts != int(nudged_restarts):
            raise ConfigError(f"nudged_restarts must be a whole number >= 0, got {nudged_restarts:g}")
        if beta is None and "beta" in graph:
            beta = float(graph["beta"])
        thermal = rule in THERMAL or rule == "low-t"
        T = (float(graph.get("temperature", OSCILLATOR_DEFAULT_TEMPERATURE)) if temperature is None
             else float(temperature)) if thermal else 0.0
        options = {"beta": beta, "symmetric": None if symmetric else False}
        if rule == "ep" and beta is None:
            # follow the output curvature (a weakly held output needs a gentler nudge)
            options["beta_fraction"] = float(graph.get("beta_fraction", DEFAULT_BETA_FRACTION))
        elif beta is None and rule in ("thermal-nudged", "low-t"):
            options["beta"] = DEFAULT_BETA
        if rule in THERMAL:
            options.update(samples=samples or DEFAULT_SAMPLES, temperature=T)
        if rule == "low-t":
            options.update(order=1 if order is None else order, temperature=T)
        self.rule = make_rule(rule, **options)
        self.cost = PeriodicCost(tuple(int(i) for i in self.model.outputs))
        self.substrate = EmulatedOscillators(self.model, temperature=T if rule in THERMAL else 0.0,
                                             restarts=restarts, chains=chains, burn=burn, thin=thin,
                                             nudged_restarts=int(nudged_restarts))
        self.param_names = self.model.param_names
        self.input_names, self.output_names = self.model.input_names, self.model.output_names
        self.input_scale = float(graph.get("input_scale", INPUT_SCALE))
        self.field_init = float(graph.get("field_init", FIELD_INIT))
        if not 0.0 < abs(self.input_scale) < np.pi:
            raise ConfigError(f"input_scale must lie in (0, pi) rad so that -1 and +1 stay distinct "
                              f"phases; got {self.input_scale}")

    def __repr__(self) -> str:
        return (f"OscillatorObjective({self.model!r}, rule={self.rule!r}, init={self.init!r}, "
                f"input_scale={self.input_scale:.4g}, {self.substrate!r})")

    def encode_inputs(self, x: np.ndarray) -> np.ndarray:
        """Features (N, F) in [-1, 1] to this network's input phases (see :func:`encode_inputs`)."""
        return encode_inputs(x, self.input_scale)

    def initial_parameters(self, rng: np.random.Generator) -> np.ndarray:
        """Documented random defaults (module docstring) or the file's values."""
        if self.init == "file":
            return self.model.default_theta
        k, f = len(self.model.trainable), len(self.model.field_nodes)
        return np.concatenate([rng.uniform(-J_INIT, J_INIT, k),
                               rng.uniform(-self.field_init, self.field_init, 2 * f)])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.model.theta_bounds()

    def gradient(self, theta: np.ndarray, inputs: np.ndarray, targets: np.ndarray,
                 rng: np.random.Generator) -> GradientResult:
        """Mean loss over the batch and its gradient by the chosen rule; ``info`` adds
        ``n_minima_max`` (most distinct free minima the solver found for an input of the batch)
        and, for sampling rules, the sampler's mean ``acceptance``."""
        self.substrate.rng = rng
        r = self.rule.gradient(self.model, self.substrate, self.cost, theta, inputs, targets, rng)
        info = dict(r.info)
        if self.substrate.free_equilibrium is not None:
            info["n_minima_max"] = int(np.max(self.substrate.free_equilibrium.n_minima))
        if self.substrate.last_samples is not None:
            info["acceptance"] = float(np.mean(self.substrate.last_samples.acceptance))
        return GradientResult(r.loss, r.gradient, r.stderr, info)

    def _free_state(self, theta, inputs) -> np.ndarray:
        self.substrate.set_parameters(theta)
        self.substrate.clamp(inputs)
        self.substrate.nudge(0.0, None)
        return self.substrate.equilibrium_state()

    def predict(self, theta: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """Output phases (B, n_outputs) at the free minimum; decode with :func:`decode_outputs`."""
        return self.cost.readout(self._free_state(theta, inputs))

    def loss(self, theta: np.ndarray, inputs: np.ndarray, targets: np.ndarray) -> float:
        """Mean cost at the free minimum (the T = 0 loss)."""
        return float(np.mean(self.cost.value(self._free_state(theta, inputs), targets)))


def make_objective(G: nx.Graph, **options) -> OscillatorObjective:
    """The objective of a ``family = "oscillator"`` graph (options: see :class:`OscillatorObjective`)."""
    return OscillatorObjective(G, **{k: v for k, v in options.items() if v is not None})


def build(graph: nx.Graph, n_features: int, n_classes: int, options: dict) -> Task:
    """The oscillator task (encoding in the module docstring); ``options`` as the trainer names them."""
    objective = make_objective(graph, **mapped_options(graph, options, OPTIONS))
    return objective_task(objective, n_features, n_classes, encode_inputs, encode_targets, decode_outputs)
