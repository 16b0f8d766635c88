"""Training adapter of the oscillator family: data encoding and the trainer's ``Objective``.

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
(:data:`BETA_FRACTION` of the output curvature for ``ep``, :data:`DEFAULT_BETA` otherwise,
:data:`DEFAULT_TEMPERATURE`) may be overridden by the graph attributes ``beta``,
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

from .errors import ConfigError
from .schema import as_float
from .learning.objective import GradientResult
from .models.periodic_cost import PeriodicCost, class_targets, decode_nearest
from .models.oscillator import J_BOUND, OscillatorModel, compile_oscillator, wrap
from .substrates.oscillator import EmulatedOscillators

INPUT_SCALE = np.pi / 4
INPUT_OFFSET = 0.0
TARGET_PHASE = np.pi / 2
J_INIT = 1.0
FIELD_INIT = 0.5
#: Nudging strength (coupling units) of thermal-nudged and low-t.
DEFAULT_BETA = 0.01
#: The ep rule's nudging strength, as a fraction of the output curvature bound at each
#: batch (:func:`analog_ep.learning.rules.output_curvature`), unless ``beta`` is given.
BETA_FRACTION = 0.2
#: Random starts added to the warm start of every nudged solve, unless the graph says otherwise
#: (module docstring).
NUDGED_RESTARTS = 0
#: Temperature (coupling units) of the thermal rules: phase fluctuations of ~0.1-0.2 rad.
DEFAULT_TEMPERATURE = 0.02
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


def layered_oscillator_network(n_inputs: int, hidden: tuple[int, ...], n_outputs: int, *,
                               rng: np.random.Generator, name: str = "",
                               input_scale: float = INPUT_SCALE) -> nx.Graph:
    """A layered oscillator network: inputs ``x0..``, hidden layers ``h{l}_{j}``, outputs
    ``o0..``; every pair of consecutive layers fully coupled (couplings ``J1, J2, ...`` in
    layer order, drawn ``U(-J_INIT, J_INIT)``), a trainable field on every free oscillator
    (drawn ``U(-FIELD_INIT, FIELD_INIT)``); ``input_scale`` (rad) is stored in the graph."""
    if n_inputs < 1 or n_outputs < 1 or any(h < 1 for h in hidden):
        raise ConfigError(f"bad network shape: {n_inputs} inputs, hidden {hidden}, {n_outputs} outputs")
    G = nx.Graph(family="oscillator", name=name or f"osc-{n_inputs}-{'-'.join(map(str, hidden))}-{n_outputs}",
                 temperature=DEFAULT_TEMPERATURE, input_scale=float(input_scale))
    layers = [[f"x{i}" for i in range(n_inputs)]]
    for node in layers[0]:
        G.add_node(node, role="input", phase=0.0)
    for l, width in enumerate(hidden):
        layers.append([f"h{l}_{j}" for j in range(width)])
    layers.append([f"o{k}" for k in range(n_outputs)])
    for layer, role in zip(layers[1:], ["hidden"] * len(hidden) + ["output"]):
        for node in layer:
            a, c = rng.uniform(-FIELD_INIT, FIELD_INIT, 2)
            G.add_node(node, role=role, a=float(a), c=float(c), field_trainable=True)
    k = 0
    for lower, upper in zip(layers[:-1], layers[1:]):
        for p in lower:
            for q in upper:
                k += 1
                G.add_edge(p, q, name=f"J{k}", coupling=float(rng.uniform(-J_INIT, J_INIT)), trainable=True,
                           j_min=-J_BOUND, j_max=J_BOUND)
    G.graph["output_order"] = " ".join(layers[-1])
    G.graph["input_order"] = " ".join(layers[0])
    return G


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
        from .learning.registry import make_rule
        self.rule_name, self.init = rule, init
        if nudged_restarts is None:
            nudged_restarts = graph.get("nudged_restarts", NUDGED_RESTARTS)
        nudged_restarts = as_float(nudged_restarts, "nudged_restarts")
        if nudged_restarts < 0 or nudged_restarts != int(nudged_restarts):
            raise ConfigError(f"nudged_restarts must be a whole number >= 0, got {nudged_restarts:g}")
        if beta is None and "beta" in graph:
            beta = float(graph["beta"])
        thermal = rule in THERMAL or rule == "low-t"
        T = (float(graph.get("temperature", DEFAULT_TEMPERATURE)) if temperature is None
             else float(temperature)) if thermal else 0.0
        options = {"beta": beta, "symmetric": symmetric}
        if rule == "ep" and beta is None:
            # follow the output curvature (a weakly held output needs a gentler nudge)
            options = {"beta_fraction": float(graph.get("beta_fraction", BETA_FRACTION)), "symmetric": symmetric}
        elif beta is None:
            options["beta"] = DEFAULT_BETA
        if rule in THERMAL:
            options.update(samples=samples or DEFAULT_SAMPLES, temperature=T)
        if rule == "low-t":
            options.update(order=1 if order is None else order, temperature=T)
        if rule in ("exact", "fd", "thermal"):
            options.pop("beta", None)
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


def _input_phases(model: OscillatorModel, inputs: dict) -> np.ndarray:
    """(1, n_inputs) clamped phases: the file's, with the named ones replaced."""
    unknown = sorted(set(inputs) - set(model.input_names))
    if unknown:
        raise ConfigError(f"--input {unknown[0]}: not an input oscillator (inputs: {', '.join(model.input_names)})")
    return model.check_inputs(np.array([[float(inputs.get(n, v)) for n, v in zip(model.input_names,
                                                                                model.default_inputs)]]))


def emulate_report(G: nx.Graph, inputs: dict, *, temperature: float | None = None, samples: int | None = None,
                   restarts: int = 8, seed: int = 0) -> dict:
    """What ``analog-ep emulate`` prints for an oscillator network at the file's parameters.

    At ``T = 0`` (neither ``temperature`` nor ``samples``): ``{"nodes": {name: phase (rad,
    wrapped into [-pi, pi))}, "minimum": {...}}`` for the lowest minimum of ``restarts``
    starts (the documented start, then random ones from ``seed``); ``minimum`` holds its
    ``energy``, ``min_eigenvalue`` (of the Hessian; > 0 at a stable minimum), ``n_minima``
    (distinct minima found), ``gap`` (energy of the next one up, inf if none) and ``visits``
    (starts that ended there). At ``T > 0`` (coupling units; default the graph's
    ``temperature``, else :data:`DEFAULT_TEMPERATURE`) with ``samples`` MALA readings
    (default 1000): ``{"nodes": {name: {"mean", "std"}}}`` (circular mean and circular
    standard deviation ``sqrt(-2 ln R)``, rad), ``"basins"``: the minima the samples were
    quenched to, each with its ``energy``, visit ``fraction`` and output phases, and the
    sampler's ``acceptance`` and ``ess``.
    """
    model = G if isinstance(G, OscillatorModel) else compile_oscillator(G)
    graph = {} if isinstance(G, OscillatorModel) else G.graph
    u = _input_phases(model, inputs)
    if restarts < 1:
        raise ConfigError(f"--restarts must be >= 1, got {restarts}")
    rng = np.random.default_rng(seed)
    if temperature is None and samples is None:
        from .physics.torus import solve_torus
        eq = solve_torus(model, model.default_theta, u, restarts=restarts, rng=rng)
        phases = wrap(model.phases(eq.s, u))[0]
        minimum = {k: (v[0] if isinstance(v, list) else v) for k, v in eq.report().items()}
        return {"nodes": dict(zip(model.node_names, map(float, phases))), "minimum": minimum}
    T = float(graph.get("temperature", DEFAULT_TEMPERATURE)) if temperature is None else float(temperature)
    n = 1000 if samples is None else int(samples)
    if not (np.isfinite(T) and T > 0):
        raise ConfigError(f"--temperature must be a finite number > 0 (coupling units), got {T}")
    if n < 2:
        raise ConfigError(f"--samples must be at least 2, got {n}")
    board = EmulatedOscillators(model, temperature=T, rng=rng, restarts=restarts)
    board.clamp(u)
    P = board.sample(n)[0]                                     # (n, n_nodes) wrapped phases
    z = np.mean(np.exp(1j * P), axis=0)
    std = np.sqrt(np.abs(2.0 * np.log(np.clip(np.abs(z), 1e-300, 1.0))))
    visits = board.basin_visits()
    outputs = [model.node_names.index(name) for name in model.output_names]
    minima = wrap(model.phases(visits.minima[0], np.repeat(u, len(visits.minima[0]), axis=0)))
    basins = [{"energy": float(e), "fraction": float(f), "outputs": dict(zip(model.output_names, map(float, m[outputs])))}
              for e, f, m in zip(visits.energies[0], visits.fractions[0], minima)]
    diag = board.last_samples
    return {"nodes": {name: {"mean": float(np.angle(zk)), "std": float(sk)}
                      for name, zk, sk in zip(model.node_names, z, std)},
            "basins": basins, "quenched": visits.quenched, "samples": n, "temperature": T,
            "acceptance": float(np.mean(diag.acceptance)), "ess": float(np.min(diag.ess))}


def gradient_report(G: nx.Graph, inputs: dict, targets: dict, rule: str = "exact", beta: float = DEFAULT_BETA,
                    temperature: float | None = None, samples: int | None = None,
                    rng: np.random.Generator | None = None) -> dict:
    """Gradient of one input at the file's parameters, for ``analog-ep gradient``.

    ``inputs``: ``{input name: phase (rad)}`` (missing inputs keep the file's ``phase``);
    ``targets``: ``{output name: target phase}``, at least one (the cost covers the named
    outputs). Returns ``{"loss", "gradient": {name: g}}``, plus ``"stderr"`` for sampling
    rules and ``"n_minima"`` (distinct free minima the solver found).
    """
    obj = OscillatorObjective(G, rule=rule, beta=beta, temperature=temperature, samples=samples, init="file")
    model = obj.model
    u = _input_phases(model, inputs)
    unknown = sorted(set(targets) - set(model.output_names))
    if unknown:
        raise ConfigError(f"--target {unknown[0]}: not an output oscillator (outputs: {', '.join(model.output_names)})")
    if not targets:
        raise ConfigError(f"give at least one --target NAME=PHASE (outputs: {', '.join(model.output_names)})")
    order = [n for n in model.output_names if n in targets]
    obj.cost = obj.substrate.cost = PeriodicCost(tuple(int(model.outputs[model.output_names.index(n)])
                                                       for n in order))
    d = np.array([[float(targets[n]) for n in order]])
    r = obj.gradient(model.default_theta, u, d, rng if rng is not None else np.random.default_rng(0))
    out = {"loss": float(r.loss), "gradient": dict(zip(model.param_names, map(float, r.gradient)))}
    if r.stderr is not None:
        out["stderr"] = dict(zip(model.param_names, map(float, r.stderr)))
    if "n_minima_max" in r.info:
        out["n_minima"] = r.info["n_minima_max"]
    return out
