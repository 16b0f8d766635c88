"""What ``analog-ep emulate`` and ``analog-ep gradient`` report for each network family:
the quantities of one input at the network file's parameters, as dictionaries the
commands print as a table or JSON."""

from __future__ import annotations

import contextlib

import networkx as nx
import numpy as np

from ..errors import ConfigError
from .common import device_options
from ..learning.quantum_rules import harmonic_gradients, quantum_gradients
from ..models.cost import SquaredCost
from ..models.oscillator import OscillatorModel, compile_oscillator, wrap
from ..models.periodic_cost import PeriodicCost
from ..physics.torus import OSCILLATOR_DEFAULT_TEMPERATURE, solve_torus
from ..substrates.oscillator import EmulatedOscillators
from ..tasks.oscillator import OscillatorObjective
from ..tasks.quantum import HarmonicObjective
from ..tasks.quantum import make_objective as make_quantum_objective
from ..tasks.resistive import ResistiveObjective


# ----- resistive networks ----------------------------------------------------------------------

def resistive_report(G, inputs: dict[str, float], targets: dict[str, float], args) -> dict:
    """``{"loss", "gradient": {name: dL/dG}, "settings": {...}}`` (V^2 and V^2/S) of a
    resistive network; ``settings`` says how the gradient was obtained (rule, beta as used
    in S, the output curvature, samples, temperature, seed, substrate)."""
    obj = ResistiveObjective(G, rule=args.rule or "exact", beta=args.beta, symmetric=not args.one_sided,
                             samples=args.samples, temperature=args.temperature, order=args.order,
                             substrate=args.substrate, calibration=args.calibration, profile=args.profile,
                             richardson=args.richardson, eta_c=args.eta_c, sampler=args.sampler,
                             rng=np.random.default_rng([args.seed, 3]), **device_options(args))
    with contextlib.closing(obj):               # a serial board's port
        report = _report(obj, inputs, targets, args.seed)
    report["settings"] = {"rule": args.rule or "exact", "symmetric": not args.one_sided,
                          "richardson": args.richardson, **report.pop("settings", {}),
                          "samples": args.samples, "temperature": getattr(obj.rule, "temperature", args.temperature),
                          "seed": args.seed, "substrate": args.substrate, "sampler": args.sampler,
                          "device": args.device}
    return report


def _report(obj, inputs: dict[str, float], targets: dict[str, float], seed: int) -> dict:
    model = obj.model
    names = list(model.input_names)
    unknown = [n for n in inputs if n not in names]
    if unknown:
        raise ConfigError(f"--input {unknown[0]}: not an input node (inputs: {', '.join(names) or 'none'})")
    outputs = list(model.output_names)
    bad = [n for n in targets if n not in outputs]
    if bad:
        raise ConfigError(f"--target {bad[0]}: not an output node (outputs: {', '.join(outputs)})")
    if not targets:
        raise ConfigError(f"give at least one --target NAME=V (outputs: {', '.join(outputs)})")
    u = np.array([[inputs.get(n, v) for n, v in zip(names, model.default_inputs)]])
    order = [n for n in outputs if n in targets]
    obj.cost = SquaredCost(tuple(int(model.outputs[outputs.index(n)]) for n in order))
    if hasattr(obj.substrate, "cost"):
        obj.substrate.cost = obj.cost
    d = np.array([[targets[n] for n in order]])
    r = obj.gradient(model.default_theta, u, d, np.random.default_rng([seed, 1]))
    out = {"loss": float(r.loss), "gradient": dict(zip(model.param_names, map(float, r.gradient)))}
    if r.stderr is not None:
        out["stderr"] = dict(zip(model.param_names, map(float, r.stderr)))
    if "bias_estimate" in r.info:
        out["bias_estimate"] = dict(zip(model.param_names, map(float, r.info["bias_estimate"])))
    # beta as used (S) and the output curvature it was chosen against, for a nudged rule
    out["settings"] = {k: float(r.info[k]) for k in ("beta", "curvature") if k in r.info}
    return out


# ----- oscillator networks ---------------------------------------------------------------------

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
    ``temperature``, else :data:`OSCILLATOR_DEFAULT_TEMPERATURE`) with ``samples`` MALA readings
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
        eq = solve_torus(model, model.default_theta, u, restarts=restarts, rng=rng)
        phases = wrap(model.phases(eq.s, u))[0]
        minimum = {k: (v[0] if isinstance(v, list) else v) for k, v in eq.report().items()}
        return {"nodes": dict(zip(model.node_names, map(float, phases))), "minimum": minimum}
    T = float(graph.get("temperature", OSCILLATOR_DEFAULT_TEMPERATURE)) if temperature is None else float(temperature)
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


def gradient_report(G: nx.Graph, inputs: dict, targets: dict, rule: str = "exact", beta: float | None = None,
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


# ----- quantum networks ------------------------------------------------------------------------

def quantum_gradient_report(G: nx.Graph, inputs: dict, targets: dict, rule: str = "ep",
                            beta: float = 0.05, state: int = 0, shots: int | None = None,
                            temperature: float | None = None,
                            rng: np.random.Generator | None = None) -> dict:
    """Gradient of one input at the file's parameters, for ``analog-ep gradient``.

    ``inputs``: ``{input name: field (or force)}`` (missing inputs take the file's ``u``/``f``);
    ``targets``: ``{output name: d}``; the cost covers the named outputs (every output of a
    harmonic network). Returns ``{"loss": L, "gradient":
    {name: g}}``, plus ``"stderr": {name: se}`` with finite shots, and ``"gap"`` (eigenstates).
    Raises ConfigError for unknown names, missing targets or a degenerate level
    (:class:`~analog_ep.models.quantum.DegenerateLevelError` names the gap).
    """
    if str(G.graph.get("model", "qubit")).lower() == "harmonic":
        if shots is not None or temperature is not None or state != 0:
            raise ConfigError("a harmonic network is in its ground state with exact expectations: "
                              "--shots, --temperature and --state do not apply")
        obj = HarmonicObjective(G, rule=rule, beta=beta, init="file")
    else:
        obj = make_quantum_objective(G, rule=rule, beta=beta, state=state, shots=shots,
                             temperature=temperature, init="file")
    model = obj.model
    unknown = sorted(set(inputs) - set(model.input_names))
    if unknown:
        raise ConfigError(f"unknown input(s) {unknown}; inputs are {list(model.input_names)}")
    unknown = sorted(set(targets) - set(model.output_names))
    if unknown:
        raise ConfigError(f"unknown output(s) {unknown}; outputs are {list(model.output_names)}")
    if not targets:
        raise ConfigError(f"give at least one target (outputs: {', '.join(model.output_names)})")
    missing = [o for o in model.output_names if o not in targets]
    if missing and isinstance(obj, HarmonicObjective):
        raise ConfigError(f"missing target(s) for output(s) {missing}")
    u = np.array([[float(inputs.get(n, u0)) for n, u0 in zip(model.input_names, model.default_inputs)]])
    # A qubit without a target gets d = 0: its term 1/2 (X_o - 0)^2 = 1/2 is a constant
    # (X_o^2 = 1), so the cost covers the named outputs only; the constant is removed below.
    d = np.array([[float(targets.get(o, 0.0)) for o in model.output_names]])
    theta = model.default_theta
    if isinstance(obj, HarmonicObjective):
        r = harmonic_gradients(model, theta, u, d, rule=rule, beta=beta)
    else:
        r = quantum_gradients(model, theta, u, d, rng=rng if rng is not None else np.random.default_rng(),
                              **obj.options)
    out = {"loss": float(r.loss[0]) - 0.5 * len(missing),
           "gradient": {name: float(g) for name, g in zip(model.param_names, r.gradient[0])}}
    if r.stderr is not None:
        out["stderr"] = {name: float(s) for name, s in zip(model.param_names, r.stderr[0])}
    if np.isfinite(r.gap[0]):
        out["gap"] = float(r.gap[0])
    return out
