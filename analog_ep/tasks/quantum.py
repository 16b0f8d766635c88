"""The quantum task: data encoding and the trainer's ``Objective`` for qubit and harmonic networks.

**Encoding (documented defaults).**

- Inputs: a feature ``x`` in [-1, 1] becomes the X field
  ``u = sign(x) (U_MIN + (U_MAX - U_MIN) |x|)`` on its input qubit (``sign(0) = +1``;
  :func:`encode_inputs`): increasing in ``x``, odd, and ``|u| >= U_MIN > 0``, so ``u`` is
  never zero on any input qubit (with ``b = u = 0`` the J and h gradients vanish,
  docs/PHYSICS.md, section 2.2). ``U_MAX`` (2.5) well above the initial ``h`` polarises the input
  qubits, so the inputs reach the outputs with a useful gain.
- Targets: ``+-1`` one-vs-rest (:func:`encode_targets`): output qubit ``o`` should read
  ``<X_o> = +1`` for its class and ``-1`` otherwise; a single output qubit with two
  classes reads ``+1`` for class 1. Because ``X_o^2 = 1`` the cost
  ``<C> = const - sum_o d_o <X_o>`` is linear in the read-out, so the class is decoded by
  argmax of ``<X_o>`` (the sign for one output; :func:`decode_outputs`).
- Margin objective (graph attribute ``margin = m`` in (0, 1], or the ``margin`` option;
  both bundled networks use ``m = 0.3``): training minimises the hinge
  ``sum_o max(0, m - d_o <X_o>)`` instead of ``<C>``. Each batch first reads ``<X_o>`` of
  the free state (exact, or from ``shots`` simulated X-basis measurements) and sets
  ``d_o = 0`` where ``d_o <X_o> >= m``; with ``d_o = 0`` the term ``1/2 (X_o - 0)^2`` is a
  constant, so the EP (or exact) gradient of that batch is the exact gradient of the hinge.
  Outputs already right with the margin stop pulling the couplings towards the saturated,
  classical regime (``<X_o> = +-1``, vanishing gradients) where plain ``<C>`` training stalls.
- Per-network encoding: graph attributes ``u_min``, ``u_max`` override :data:`U_MIN`,
  :data:`U_MAX` (``quantum_xor`` uses ``u_max = 4``); the objective's
  :meth:`QuantumObjective.encode_inputs` applies them.
- Initial parameters (:meth:`QuantumObjective.initial_parameters`, ``init="random"``):
  ``J ~ U(-J_INIT, J_INIT)``, ``b = +-U(B_INIT_MIN, B_INIT_MAX)`` (never zero),
  ``h ~ U(H_INIT_MIN, H_INIT_MAX)`` so that ``|h| > |J|`` (no exponentially small
  parity gap at the start). ``init="file"`` starts from the file's values.

**Degenerate samples.** During training a sample whose followed level is closer than the
gap tolerance to another (default ``2 beta ||C||``, see
:func:`analog_ep.learning.quantum_rules.gap_tolerance`) is skipped and counted; the
objective stops with :class:`~analog_ep.errors.ConvergenceError` when more than
``max_skip_fraction`` of the samples seen so far (and at least ``MIN_SKIPS_TO_STOP``) were
skipped.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..errors import ConfigError, ConvergenceError, NetworkError
from ..learning.objective import GradientResult
from ..learning.quantum_rules import (RULES, harmonic_gradients, quantum_gradients,
                                      x_basis_probabilities)
from ..models.harmonic import K_MIN, HarmonicModel, compile_harmonic
from ..models.quantum import QubitModel, compile_quantum
from .base import Task, mapped_options, objective_task

FAMILY = "quantum"
#: Nudged EP: an eigenstate has no thermal samples to learn from.
DEFAULT_RULE = "ep"
#: The trainer's option names -> this family's (``samples`` are measurement shots).
OPTIONS = {"rule": "rule", "beta": "beta", "symmetric": "symmetric", "temperature": "temperature",
           "samples": "shots", "state": "state"}

U_MIN = 0.1
U_MAX = 2.5
J_INIT = 0.5
B_INIT_MIN, B_INIT_MAX = 0.1, 0.5
H_INIT_MIN, H_INIT_MAX = 1.0, 1.5
#: Training keeps ``|J|, |b| <= FIELD_BOUND`` and ``H_MIN <= h <= H_MAX``: with
#: ``H_MIN >= FIELD_BOUND`` the Z fields keep outweighing the couplings, so the parity
#: sectors never split by an exponentially small gap and the read-out stays away from
#: the flat, saturated classical regime (``<X_o> = +-1``, vanishing gradients).
FIELD_BOUND = 1.0
H_MIN, H_MAX = 1.0, 3.0
#: Largest spring or on-site constant of a harmonic network while training.
K_MAX = 100.0
MIN_SKIPS_TO_STOP = 3


def encode_inputs(x: np.ndarray, u_min: float = U_MIN, u_max: float = U_MAX) -> np.ndarray:
    """Features ``x (N, F)`` in [-1, 1] to input fields ``u = sign(x) (u_min + (u_max - u_min)|x|)``.

    ``sign(0) = +1``; ``0 < u_min <= u_max`` is required, so no ``u`` is ever zero. Fields
    in the Hamiltonian's units.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    if not 0.0 < u_min <= u_max:
        raise ConfigError(f"input encoding needs 0 < u_min <= u_max so that u is never zero; "
                          f"got u_min {u_min}, u_max {u_max}")
    if not np.all(np.abs(x) <= 1.0):
        raise ConfigError("features must lie in [-1, 1] before encoding them as fields")
    return np.where(x >= 0, 1.0, -1.0) * (u_min + (u_max - u_min) * np.abs(x))


def encode_targets(y: np.ndarray, n_classes: int, n_outputs: int | None = None,
                   negative: float = -1.0) -> np.ndarray:
    """Integer labels ``y (N,)`` to targets ``(N, n_outputs)`` in [-1, 1].

    One-vs-rest (``n_outputs = n_classes``, the default): ``+1`` on the label's qubit,
    ``negative`` (default ``-1``) elsewhere. ``negative = -1/(n_classes - 1)`` balances the
    targets (``sum_o d_o = 0``), so a read-out that ignores the input gains nothing from
    the linear cost. With ``n_outputs = 1`` and two classes: ``+1`` for class 1, ``-1`` for 0.
    """
    if not -1.0 <= negative < 1.0:
        raise ConfigError(f"negative target must lie in [-1, 1); got {negative}")
    y = np.asarray(y)
    n_outputs = n_classes if n_outputs is None else n_outputs
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or np.any((y < 0) | (y >= n_classes)):
        raise ConfigError(f"labels must be integers in [0, {n_classes})")
    if n_outputs == 1 and n_classes == 2:
        return (2.0 * y - 1.0)[:, None]
    if n_outputs != n_classes:
        raise ConfigError(f"{n_classes} classes need {n_classes} output qubits (one-vs-rest) or "
                          f"one output for two classes; the network has {n_outputs}")
    return np.where(np.arange(n_classes)[None, :] == y[:, None], 1.0, negative)


def decode_outputs(readout: np.ndarray) -> np.ndarray:
    """Class labels from ``<X_o> (N, n_outputs)``: argmax, or the sign for a single output."""
    readout = np.atleast_2d(readout)
    if readout.shape[1] == 1:
        return (readout[:, 0] > 0).astype(int)
    return np.argmax(readout, axis=1)


def _check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ConfigError(f"unknown rule {rule!r} for a quantum network; use one of {', '.join(RULES)}")
    return rule


class QuantumObjective:
    """The trainer's ``Objective`` for a qubit network (docs/ARCHITECTURE.md, "Training").

    ``rule``: ``ep`` (nudged; centred unless ``symmetric=False``), ``exact`` or ``fd``;
    ``beta``: nudging strength; ``state``: eigen-index n; ``shots``: preparations per phase
    and basis setting for ``ep`` (None = exact expectations); ``temperature``: None for the
    eigenstate, a float for the Gibbs state ``exp(-H/T)/Z``; ``method``: eigensolver
    (``auto``, ``dense``, ``lanczos``); ``init``: ``random`` or ``file``; ``margin``,
    ``u_min``, ``u_max``: the margin objective and the input encoding (module docstring;
    default: the graph's attributes, else the plain ``<C>`` and :data:`U_MIN`,
    :data:`U_MAX`). Inputs and targets
    passed to the methods are already encoded: ``u (B, n_inputs)``, ``d (B, n_outputs)``.
    """

    def __init__(self, G: nx.Graph | QubitModel, *, rule: str = "ep", beta: float = 0.05,
                 symmetric: bool = True, state: int = 0, shots: int | None = None,
                 temperature: float | None = None, method: str | None = None,
                 init: str = "random", gap_tol: float | None = None,
                 max_skip_fraction: float = 0.2, margin: float | None = None,
                 u_min: float | None = None, u_max: float | None = None):
        self.model = G if isinstance(G, QubitModel) else compile_quantum(G)
        attrs = {} if isinstance(G, QubitModel) else G.graph
        margin = attrs.get("margin") if margin is None else margin
        self.margin = None if margin is None else float(margin)
        if self.margin is not None and not 0.0 < self.margin <= 1.0:
            raise ConfigError(f"{self.model.source}: margin must lie in (0, 1]; got {self.margin}")
        self.u_min = float(attrs.get("u_min", U_MIN) if u_min is None else u_min)
        self.u_max = float(attrs.get("u_max", U_MAX) if u_max is None else u_max)
        encode_inputs(np.zeros((1, 1)), self.u_min, self.u_max)  # validates the encoding
        self.rule = _check_rule(rule)
        if init not in ("random", "file"):
            raise ConfigError(f"init must be 'random' or 'file'; got {init!r}")
        self.options = dict(rule=rule, state=int(state), beta=float(beta), symmetric=bool(symmetric),
                            shots=shots, temperature=temperature, method=method, gap_tol=gap_tol)
        self.init, self.max_skip_fraction = init, float(max_skip_fraction)
        self.param_names = self.model.param_names
        self.input_names, self.output_names = self.model.input_names, self.model.output_names
        self.samples_seen = 0
        self.samples_skipped = 0
        # Validate the options once, on the file's own parameters, before any training.
        if shots is not None and rule != "ep":
            raise ConfigError(f"shots apply to the measured ep rule, not to {rule!r}")
        if temperature is None:
            self.model.choose_method(method)
        else:
            self.model.choose_method(method or "dense", full_spectrum=True)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"QuantumObjective({self.model!r}, {opts}, init={self.init!r})"

    def encode_inputs(self, x: np.ndarray) -> np.ndarray:
        """:func:`encode_inputs` with this network's ``u_min``, ``u_max``."""
        return encode_inputs(x, self.u_min, self.u_max)

    def margin_targets(self, theta: np.ndarray, inputs: np.ndarray, targets: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
        """Targets of the margin objective: ``d_o`` set to 0 where ``d_o <X_o> >= margin``.

        A target 0 makes the output's cost term ``1/2 (X_o - 0)^2 = 1/2`` a constant, so the
        nudged gradient of the batch is the exact gradient of the hinge objective
        ``sum_o max(0, margin - d_o <X_o>)`` (up to that constant), which stops pushing outputs
        already on the right side with the margin. ``<X_o>`` is exact, or with ``shots`` the
        mean of ``shots`` simulated X-basis measurements of the free state.
        """
        d = self.model.check_targets(targets, len(inputs))
        x = self.predict(theta, inputs)
        shots = self.options["shots"]
        if shots is not None:
            p_plus = np.clip((1.0 + x) / 2.0, 0.0, 1.0)
            x = 2.0 * rng.binomial(shots, p_plus) / shots - 1.0
        return np.where(d * x >= self.margin, 0.0, d)

    def _hinge(self, loss: np.ndarray, d: np.ndarray) -> np.ndarray:
        """``sum_o max(0, margin - d_o <X_o>)`` from ``<C>`` with the margin targets ``d``."""
        active = d != 0
        return loss - 0.5 * np.sum(np.where(active, 1.0 + d ** 2, 1.0), axis=1) + self.margin * active.sum(axis=1)

    def initial_parameters(self, rng: np.random.Generator) -> np.ndarray:
        """Documented random defaults (module docstring) or the file's values."""
        if self.init == "file":
            return self.model.default_theta
        kind = self.model.param_kind
        theta = np.empty(len(kind))
        theta[kind == 0] = rng.uniform(-J_INIT, J_INIT, np.sum(kind == 0))
        nb = np.sum(kind == 1)
        theta[kind == 1] = rng.choice([-1.0, 1.0], nb) * rng.uniform(B_INIT_MIN, B_INIT_MAX, nb)
        theta[kind == 2] = rng.uniform(H_INIT_MIN, H_INIT_MAX, np.sum(kind == 2))
        return theta

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``|J|, |b| <= FIELD_BOUND``, ``H_MIN <= h <= H_MAX`` (see the constants)."""
        is_h = self.model.param_kind == 2
        return (np.where(is_h, H_MIN, -FIELD_BOUND), np.where(is_h, H_MAX, FIELD_BOUND))

    def gradient(self, theta: np.ndarray, inputs: np.ndarray, targets: np.ndarray,
                 rng: np.random.Generator) -> GradientResult:
        """Mean ``<C>`` (the hinge with a margin) and its gradient over the batch's
        non-degenerate samples.

        ``stderr`` (shots only) is the standard error of the batch mean. ``info``: ``skipped``
        (this batch), ``skipped_total``, ``seen_total``, ``min_gap``.
        """
        if self.margin is not None:
            targets = self.margin_targets(theta, inputs, targets, rng)
        r = quantum_gradients(self.model, theta, inputs, targets, rng=rng, skip_degenerate=True,
                              **self.options)
        if self.margin is not None:
            r.loss[:] = self._hinge(r.loss, targets)
        ok = r.valid
        self.samples_seen += len(ok)
        self.samples_skipped += int(np.sum(~ok))
        if (self.samples_skipped >= MIN_SKIPS_TO_STOP
                and self.samples_skipped > self.max_skip_fraction * self.samples_seen):
            raise ConvergenceError(
                f"too many near-degenerate samples skipped: {self.samples_skipped} of "
                f"{self.samples_seen} (limit {self.max_skip_fraction:.0%}); smallest gap "
                f"{np.nanmin(r.gap):.3g}. The followed level of {self.model.source} crosses "
                f"another: lower beta, choose another state, or keep |h| larger than |J|")
        info = {"skipped": int(np.sum(~ok)), "skipped_total": self.samples_skipped,
                "seen_total": self.samples_seen, "min_gap": float(np.nanmin(r.gap))}
        n = int(ok.sum())
        if n == 0:  # every sample of this batch skipped: no step, but keep counting
            zero = np.zeros(len(self.param_names))
            return GradientResult(float("nan"), zero, None if r.stderr is None else zero, info)
        stderr = None if r.stderr is None else np.sqrt(np.sum(r.stderr[ok] ** 2, axis=0)) / n
        return GradientResult(float(np.mean(r.loss[ok])), r.gradient[ok].mean(axis=0), stderr, info)

    def _probabilities(self, theta: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        o = self.options
        return x_basis_probabilities(self.model, theta, inputs, state=o["state"],
                                     temperature=o["temperature"], method=o["method"])

    def predict(self, theta: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """``(B, n_outputs)`` exact read-out ``<X_o>`` of the state (no shot noise)."""
        return self._probabilities(theta, inputs) @ self.model.xs[:, self.model.output_index]

    def loss(self, theta: np.ndarray, inputs: np.ndarray, targets: np.ndarray) -> float:
        """Mean exact ``<C>`` over the batch (with a margin: the hinge of the module docstring)."""
        p = self._probabilities(theta, inputs)
        d = self.model.check_targets(targets, len(p))
        if self.margin is not None:
            x = p @ self.model.xs[:, self.model.output_index]
            return float(np.mean(np.sum(np.maximum(0.0, self.margin - d * x), axis=1)))
        return float(np.mean(np.einsum("bx,bx->b", p, self.model.cost_diagonal(d))))


class HarmonicObjective:
    """The trainer's ``Objective`` for a quantum harmonic network (regression).

    ``rule``: ``ep``, ``exact`` or ``fd``; ``beta`` nudging strength. Inputs are forces
    ``f (B, n_inputs)`` and targets positions ``d (B, n_outputs)``; ``predict`` returns
    ``<x_o>``. Initial parameters: the file's values (``init="file"``) or
    ``U(0.5, 1.5)`` for every constant (``init="random"``).
    """

    def __init__(self, G: nx.Graph | HarmonicModel, *, rule: str = "ep", beta: float = 0.05,
                 symmetric: bool = True, init: str = "random"):
        self.model = G if isinstance(G, HarmonicModel) else compile_harmonic(G)
        self.rule, self.beta, self.symmetric = _check_rule(rule), float(beta), bool(symmetric)
        if init not in ("random", "file"):
            raise ConfigError(f"init must be 'random' or 'file'; got {init!r}")
        self.init = init
        self.param_names = self.model.param_names
        self.input_names, self.output_names = self.model.input_names, self.model.output_names

    def __repr__(self) -> str:
        return (f"HarmonicObjective({self.model!r}, rule={self.rule!r}, beta={self.beta}, "
                f"symmetric={self.symmetric}, init={self.init!r})")

    def initial_parameters(self, rng: np.random.Generator) -> np.ndarray:
        if self.init == "file":
            return self.model.default_theta
        return rng.uniform(0.5, 1.5, len(self.param_names))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        P = len(self.param_names)
        return np.full(P, K_MIN), np.full(P, K_MAX)

    def gradient(self, theta, inputs, targets, rng) -> GradientResult:
        r = harmonic_gradients(self.model, theta, inputs, targets, rule=self.rule, beta=self.beta,
                               symmetric=self.symmetric)
        return GradientResult(float(np.mean(r.loss)), r.gradient.mean(axis=0))

    def predict(self, theta, inputs) -> np.ndarray:
        mean, _ = self.model.ground_state(theta, inputs)
        return mean[:, self.model.output_index]

    def loss(self, theta, inputs, targets) -> float:
        mean, cov = self.model.ground_state(theta, inputs)
        return float(np.mean(self.model.expected_cost(mean, cov, self.model.check_targets(targets, len(mean)))))


def make_objective(G: nx.Graph, **options) -> QuantumObjective | HarmonicObjective:
    """The objective of a ``family = "quantum"`` graph: qubit (default) or ``model = "harmonic"``."""
    kind = str(G.graph.get("model", "qubit")).lower()
    if kind == "harmonic":
        allowed = {"rule", "beta", "symmetric", "init"}
        extra = {k for k, v in options.items() if v is not None and k not in allowed}
        if extra:
            raise ConfigError(f"option(s) {', '.join(sorted(extra))} do not apply to a harmonic network")
        return HarmonicObjective(G, **{k: v for k, v in options.items() if k in allowed})
    if kind != "qubit":
        raise NetworkError(f"{G.graph.get('source', '<graph>')}: unknown quantum model {kind!r}; "
                           f"use 'qubit' or 'harmonic'")
    return QuantumObjective(G, **options)


def build(graph: nx.Graph, n_features: int, n_classes: int, options: dict) -> Task:
    """The quantum task (encoding in the module docstring); ``options`` as the trainer names them."""
    objective = make_objective(graph, **mapped_options(graph, options, OPTIONS))
    return objective_task(objective, n_features, n_classes, encode_inputs, encode_targets, decode_outputs)
