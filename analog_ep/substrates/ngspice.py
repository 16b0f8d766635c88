"""A resistive network run by ngspice in process, behind the :class:`Substrate` interface.

:class:`NgspiceNetwork` writes one SPICE deck for a compiled resistive network and keeps it
loaded in ngspice's shared library (:mod:`analog_ep.spice.shared`); inputs, trainable
conductances and nudges are ``alter``-ed in place and every phase of every input is one
``op``. The deck (nodes ``n<i>`` in the model's node order; a node clamped at 0 V is
ngspice's ground ``0``):

* each input ``k`` a source ``vin<k> n<i> 0 DC u_k``, each bias node a source ``vbias<k>``;
* each resistor ``r<k>`` in ohms (trainable ones altered as ``resistance``);
* each diode ``d<k>`` with its own model ``D(IS=I_s N=n V_t / V_T)``, where ``V_T`` is
  ngspice's thermal voltage at its nominal 27 C (no temperature scaling: ``TNOM = TEMP``),
  so ngspice's junction current is ``I_s (exp(V / n V_t) - 1)``, the emulator's;
* each fixed node current as a current source ``inode<i>`` into the node;
* the nudge: for the squared cost ``C = 1/2 |A s - d|^2`` the force ``-beta dC/ds`` is
  ``-beta A^T A s + beta A^T d``. Each nonzero entry ``(i, j)`` of ``A^T A`` is a VCCS
  ``gnudge<i>_<j> n<i> 0 n<j> 0`` of gain ``beta (A^T A)_ij`` (for the plain squared cost a
  conductance ``beta`` from each output to ground), and each nudged node a current source
  ``inudge<i>`` carrying ``beta (A^T d)_i`` plus the fixed currents of :meth:`nudge_currents`.
  Together: a conductance ``beta`` from the output to a source at its target, in Norton
  form; ``beta = 0`` releases the outputs exactly (zero gain). For the softmax
  cross-entropy of ``p = softmax(gamma r)`` (``r = A s``) the force is
  ``-beta gamma A^T (sum(d) p - d)``, not linear in the state: each node it reaches gets a
  behavioural current source ``bnudge<i>`` of that expression in its node voltages, beta
  and the targets being the voltages of sources ``vnudgebeta`` and ``vnudget<k>``, which
  are altered. A negative beta is a
  negative conductance, refused unless the nudged energy stays convex everywhere,
  ``|beta| < 1 / lambda_max(D L_ff^-1 D^T)`` (the resistors' reduced Laplacian bounds the
  Hessian from below; see :func:`analog_ep.physics.equilibrium.resistor_output_block`;
  ``D^T D`` is the cost's constant Hessian, or for the softmax its majorant
  ``gamma^2 / 2 A^T A``), so ngspice has one operating point to find.

Tolerances (:data:`SPICE_OPTIONS`): ``reltol = 1e-12``, ``vntol = 1e-15`` V and ``abstol
= 1e-18`` A make ngspice's Newton iterate until every node voltage changes by less than
``1e-12 |V| + 1e-15`` V and every diode current by less than ``1e-12 |I| + 1e-18`` A;
``gmin = 1e-30`` S (ngspice's junction shunt, 1e-12 S by default, which the emulator does
not have; a value of 0 would stall ngspice's gmin stepping) leaves currents below 1e-29 A
per volt. One difference remains, SPICE's own: below ``-3 n V_t`` a reverse-biased diode
carries ``-I_s (1 + (3 n V_t / (e V))^3)`` instead of ``-I_s (1 - exp(V / n V_t))``, at most
``0.004 I_s`` apart.

A netlist with parts only ngspice runs (MOSFETs, BJTs, subcircuits, ``.include``,
``.param``, diodes with series resistance: ``netlist.read_spice(path, ngspice=True)``) is
its own deck: the file's lines, after this module's ``.options`` (so the file's own take
precedence), with the nudge elements added on its output nodes; its inputs are altered
through its own V sources and its trainable resistors by their own names. Its model holds
only the parsed part (nodes with roles, resistors, plain diodes), enough for the rules'
``dE/dtheta`` of the trainable resistors and of the gate-trained MOSFET edges
(``*@ trainable-gate``: their gate sources are ``alter``-ed as ``dc``, their ``dE/dV_G`` is
the level-1 closed form of :mod:`analog_ep.models.resistive`); the convexity and Kirchhoff
checks, which need the whole energy, do not apply to it.

Every operating point is checked against the model's Kirchhoff equations: a node whose
residual current exceeds ``1e-6`` of the currents through it (plus ``0.005 I_s`` of its
reverse-biased diodes) raises ConvergenceError, so no non-converged point (say, the result
of ngspice's last-resort transient fallback) is ever returned as a reading. The substrate
is noiseless: :meth:`sample` repeats the equilibrium, and thermal rules are refused by
:func:`~analog_ep.substrates.factory.open_substrate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ConvergenceError
from ..models.cost import SquaredCost
from ..models.readout import SoftmaxCrossEntropyCost
from ..models.resistive import ResistiveModel, compile_network
from ..physics.equilibrium import resistor_output_block
from ..schema import VT_NOMINAL
from ..spice.shared import SpiceCircuit, spice_number
from .base import Capabilities, measured_channels

#: ngspice options of the deck (module docstring: what each bounds).
SPICE_OPTIONS = {"reltol": 1e-12, "vntol": 1e-15, "abstol": 1e-18, "gmin": 1e-30}
#: Kirchhoff residual accepted at a node, relative to the currents through it: ngspice's
#: converged points sit near 1e-12 of them; a non-solution is off by order one.
RESIDUAL_RTOL = 1e-6
#: Largest gap between SPICE's reverse-bias diode current and Shockley's, in units of I_s.
REVERSE_GAP = 0.005


@dataclass(frozen=True)
class SpiceDeck:
    """A deck and the names the substrate drives it by: ``lines`` (title first, ``.end``
    last), the ngspice names of the free nodes (model order), of each input's V source with
    the sign that maps the input voltage to its DC value, and of each trainable resistor.
    ``complete``: the deck holds nothing but the model (its Kirchhoff law can be checked)."""

    lines: tuple[str, ...]
    free_nodes: tuple[str, ...]
    inputs: tuple[tuple[str, float], ...]
    parameters: tuple[str, ...]
    complete: bool


def nudge_plan(cost, n_free: int) -> tuple:
    """How the deck nudges with ``cost``: ``("linear", ((i, j, (A^T A)_ij), ...))`` for a
    quadratic cost (its constant Hessian's nonzero entries), ``("softmax", index,
    differential, gain)`` for the softmax cross-entropy. ConfigError for any other cost."""
    if getattr(cost, "quadratic", False):
        H = cost.hessian(n_free)
        rows, cols = np.nonzero(H)
        return ("linear", tuple((int(i), int(j), float(H[i, j])) for i, j in zip(rows, cols)))
    if isinstance(cost, SoftmaxCrossEntropyCost):
        return ("softmax", tuple(int(i) for i in cost.index), bool(cost.differential), float(cost.gain))
    raise ConfigError(f"the ngspice substrate nudges with the squared cost or the softmax cross-entropy; "
                      f"{type(cost).__name__} is neither: use --substrate emulator")


def _nudged_nodes(model: ResistiveModel, plan) -> list[int]:
    """Free positions that carry a nudge current source: the outputs and the cost's nodes."""
    used = {i for i, _, _ in plan[1]} if plan[0] == "linear" else set(plan[1])
    return sorted(used | {int(o) for o in model.outputs})


def _nudge_lines(model: ResistiveModel, plan, names) -> list[str]:
    node = [names[i] for i in model.free]
    lines = [f"inudge{i} 0 {node[i]} DC 0" for i in _nudged_nodes(model, plan)]
    if plan[0] == "linear":
        return lines + [f"gnudge{i}_{j} {node[i]} 0 {node[j]} 0 0" for i, j, _ in plan[1]]
    _, index, differential, gain = plan
    pairs = [(index[k], index[k + 1]) for k in range(0, len(index), 2)] if differential else [(i, None) for i in index]
    z = [f"{spice_number(gain)}*(V({node[p]})" + (f"-V({node[m]}))" if m is not None else ")") for p, m in pairs]
    lines += ["vnudgebeta nudgebeta_aep 0 DC 0"]
    lines += [f"vnudget{k} nudgetarget_aep{k} 0 DC 0" for k in range(len(pairs))]
    den = "+".join(f"exp({zk})" for zk in z)
    total = "+".join(f"V(nudgetarget_aep{k})" for k in range(len(pairs)))
    for i in sorted(set(index)):
        terms = []
        for k, (p, m) in enumerate(pairs):
            sign = "+" if p == i else "-" if m == i else None
            if sign is not None:
                terms.append(f"{sign}(({total})*exp({z[k]})/({den})-V(nudgetarget_aep{k}))")
        # current into the node: -beta dC/dV = -beta gain sum_k A_ki (sum(d) p_k - d_k)
        lines.append(f"bnudge{i} 0 {node[i]} I=-V(nudgebeta_aep)*{spice_number(gain)}*({''.join(terms)})")
    return lines


def _options_line(options: dict | None) -> str:
    opts = SPICE_OPTIONS if options is None else options
    return ".options " + " ".join(f"{k}={spice_number(v)}" for k, v in opts.items())


def model_deck(model: ResistiveModel, plan=("linear", ()), options: dict | None = None,
               inputs: np.ndarray | None = None) -> SpiceDeck:
    """The SPICE deck of ``model`` (module docstring) with the nudge elements of ``plan``
    (:func:`nudge_plan`; default: the fixed nudge currents only), ``options`` (default
    :data:`SPICE_OPTIONS`) and the input voltages ``inputs`` (n_inputs,) (default: the
    model's). A netlist kept for ngspice (``model.spice_deck``) is its own deck: the
    file's lines after ``options``, so its own ``.options`` take precedence, then the nudge
    elements; inputs and parameters are its own sources and resistors."""
    if model.spice_deck:
        names = [n.lower() for n in model.node_names]
        lines = [f"analog-ep network {model.name}".strip(), _options_line(options)]
        lines += model.spice_deck.splitlines() + _nudge_lines(model, plan, names) + [".end"]
        sources = tuple((name.lower(), sign) for name, sign in model.input_sources)
        if inputs is not None:
            raise ConfigError("inputs of a netlist kept for ngspice are set by alter, not in its deck")
        return SpiceDeck(tuple(lines), tuple(names[i] for i in model.free), sources,
                         tuple(model.resistor_names[k].lower() for k in model.trainable), False)
    names = [f"n{i}" for i in range(model.n_nodes)]
    for i, v in zip(model.clamped_fixed, model.clamped_fixed_v):
        if v == 0.0:
            names[i] = "0"
    deck = [f"analog-ep network {model.name or ''}".strip()]
    deck += [f"vin{k} {names[i]} 0 DC {spice_number(u)}" for k, (i, u) in
             enumerate(zip(model.inputs, model.default_inputs if inputs is None else inputs))]
    deck += [f"vbias{k} {names[i]} 0 DC {spice_number(v)}" for k, (i, v) in
             enumerate(zip(model.clamped_fixed, model.clamped_fixed_v)) if v != 0.0]
    g = model.g_fixed
    deck += [f"r{k} {names[a]} {names[b]} {spice_number(1.0 / g[k])}"
             for k, (a, b) in enumerate(zip(model.r_a, model.r_b))]
    for k, (a, c, i_s, nvt) in enumerate(zip(model.d_a, model.d_c, model.d_is, model.d_nvt)):
        deck += [f"d{k} {names[a]} {names[c]} dmod{k}",
                 f".model dmod{k} D(IS={spice_number(i_s)} N={spice_number(nvt / VT_NOMINAL)})"]
    free = set(int(i) for i in model.free)
    deck += [f"inode{i} 0 {names[i]} DC {spice_number(c)}" for i, c in enumerate(model.node_current)
             if c != 0.0 and i in free]
    deck += _nudge_lines(model, plan, names) + [_options_line(options), ".end"]
    return SpiceDeck(tuple(deck), tuple(names[i] for i in model.free),
                     tuple((f"vin{k}", 1.0) for k in range(len(model.inputs))),
                     tuple(f"r{k}" for k in model.trainable), True)


class NgspiceNetwork:
    """A resistive network solved by ngspice's shared library (see the module docstring).

    Same interface and readings as a noiseless :class:`~analog_ep.substrates.emulated.EmulatedBoard`:
    parameters are clipped into their bounds, ``cost`` (the trainer's, set by the task) is
    the cost the outputs are nudged with (the squared cost or the softmax cross-entropy,
    plain or differential). Batches are run one input after another. ``options`` replaces the deck's
    ``.options`` (default :data:`SPICE_OPTIONS`). Close it (or use it as a context manager)
    to remove its circuit from ngspice.
    """

    def __init__(self, model, measured: tuple[str, ...] | None = None, options: dict | None = None):
        self.model: ResistiveModel = model if isinstance(model, ResistiveModel) else compile_network(model)
        names, self._measured = measured_channels(self.model, measured)
        self.capabilities = Capabilities(measured=tuple(names), nudge=True, batch=True, temperature=None)
        self.cost = SquaredCost(tuple(int(i) for i in self.model.outputs))
        self.theta = self.model.default_theta
        self.inputs = self.model.default_inputs[None, :]
        self.beta = 0.0
        self.targets: np.ndarray | None = None
        self.currents = np.zeros(len(self.model.outputs))
        self.options = dict(SPICE_OPTIONS if options is None else options)
        self._circuit: SpiceCircuit | None = None
        self._bound: tuple[bytes, object, float] | None = None
        self._load(nudge_plan(self.cost, self.model.n_free))

    def __repr__(self) -> str:
        return f"NgspiceNetwork({self.model!r})"

    def __enter__(self) -> "NgspiceNetwork":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove the circuit from ngspice."""
        if self._circuit is not None:
            self._circuit.close()

    def _load(self, plan) -> None:
        """(Re)load the deck with the nudge elements of ``plan``, at the present settings."""
        self.deck = model_deck(self.model, plan, self.options)
        if self._circuit is not None:
            self._circuit.close()
        self._circuit = SpiceCircuit(self.deck.lines)
        self._plan = plan
        self._nudged = _nudged_nodes(self.model, plan)
        self._apply_parameters()

    def _apply_parameters(self) -> None:
        for name, g in zip(self.deck.parameters, self.theta):
            self._circuit.alter(name, "resistance", 1.0 / g)
        for name, vg in zip(self.model.gate_sources, self.model.gate_voltages(self.theta)):
            self._circuit.alter(name.lower(), "dc", vg)

    def set_parameters(self, theta: np.ndarray) -> np.ndarray:
        """Clip the conductances (S) and gate voltages (V) into their bounds, set them;
        return the applied values."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (len(self.model.param_names),):
            raise ConfigError(f"expected {len(self.model.param_names)} parameters, got shape {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ConfigError("parameters contain NaN or infinite values")
        lo, hi = self.model.theta_bounds()
        self.theta = np.clip(theta, lo, hi)
        self._apply_parameters()
        return self.theta.copy()

    def clamp(self, inputs: np.ndarray) -> None:
        self.inputs = self.model.check_inputs(inputs)

    def nudge(self, beta: float, targets: np.ndarray | None = None) -> None:
        """Nudge with strength ``beta`` (S) towards ``targets``; ``beta = 0`` releases. A
        negative beta beyond the convexity bound (module docstring) is a ConfigError; on a
        netlist with ngspice-only devices (no energy to be convex) it is not checked."""
        beta = float(beta)
        if not np.isfinite(beta):
            raise ConfigError(f"nudging strength must be finite, got {beta}")
        if beta != 0.0 and targets is None:
            raise ConfigError("nudging needs targets")
        if beta != 0.0:
            nudge_plan(self.cost, self.model.n_free)            # refuses a cost it cannot nudge with
        if beta < 0.0 and not self.model.spice_only and -beta >= self.convexity_bound():
            raise ConfigError(f"beta = {beta:.3g} S: a negative conductance beyond the output block's smallest "
                              f"curvature {self.convexity_bound():.3g} S makes the nudged network non-convex "
                              f"(no unique operating point); lower |beta|")
        self.beta = beta
        self.targets = None if targets is None else np.atleast_2d(np.asarray(targets, dtype=float))

    def convexity_bound(self) -> float:
        """The largest ``|beta|`` (S) of a negative nudge that keeps the energy convex at
        every state, for the present parameters and cost."""
        key = self.theta.tobytes()
        if self._bound is None or self._bound[0] != key or self._bound[1] is not self.cost:
            n = self.model.n_free
            w, v = np.linalg.eigh(self.cost.hessian(n))
            keep = w > 1e-12 * max(1.0, w.max(initial=0.0))
            D = (v[:, keep] * np.sqrt(w[keep])).T
            lam = np.linalg.eigvalsh(resistor_output_block(self.model, self.theta, D))[-1]
            self._bound = (key, self.cost, float(1.0 / lam))
        return self._bound[2]

    def nudge_currents(self, currents: np.ndarray) -> None:
        """Fixed currents (A) into the outputs, (n_outputs,) or (B, n_outputs)."""
        self.currents = np.asarray(currents, dtype=float)

    def _phase(self) -> str:
        if self.beta != 0.0:
            return f"nudged phase (beta = {self.beta:+.6g} S)"
        return "phase with nudge currents" if np.any(self.currents) else "free phase"

    def equilibrium_state(self) -> np.ndarray:
        """Free-node state (B, n_free) volts at the present settings, one ``op`` per input."""
        model = self.model
        if self.beta != 0.0:
            plan = nudge_plan(self.cost, model.n_free)
            if plan != self._plan:
                self._load(plan)
        circuit, plan = self._circuit, self._plan
        u = self.inputs
        B = len(u)
        fixed = np.zeros((B, model.n_free))
        fixed[:, model.outputs] = np.broadcast_to(self.currents, (B, len(model.outputs)))
        d = None if self.targets is None else np.broadcast_to(self.targets, (B, self.targets.shape[1]))
        injected = fixed
        if plan[0] == "linear":
            for i, j, h in plan[1]:
                circuit.alter(f"gnudge{i}_{j}", "gain", self.beta * h)
            if self.beta != 0.0:        # the Norton current of the targets, beta A^T d
                injected = fixed - self.beta * self.cost.grad(np.zeros((B, model.n_free)), d)
        else:
            circuit.alter("vnudgebeta", "dc", self.beta)
        s = np.empty((B, model.n_free))
        for b in range(B):
            for (source, sign), value in zip(self.deck.inputs, u[b]):
                circuit.alter(source, "dc", sign * value)
            for i in self._nudged:
                circuit.alter(f"inudge{i}", "dc", injected[b, i])
            if plan[0] == "softmax" and d is not None:
                for k, value in enumerate(d[b]):
                    circuit.alter(f"vnudget{k}", "dc", value)
            try:
                s[b] = circuit.operating_point(self.deck.free_nodes)
            except ConvergenceError as exc:
                raise ConvergenceError(f"{self._phase()} at inputs {self._describe(u[b])}: {exc}") from None
        if self.deck.complete:
            self._check_kirchhoff(u, s, fixed, d)
        return s

    def _describe(self, row: np.ndarray) -> str:
        return "(" + ", ".join(f"{n} = {v:.6g} V" for n, v in zip(self.model.input_names, row)) + ")"

    def _check_kirchhoff(self, u: np.ndarray, s: np.ndarray, fixed: np.ndarray,
                         targets: np.ndarray | None) -> None:
        """ConvergenceError unless ngspice's points satisfy the model's current law,
        ``dE/ds + beta dC/ds = fixed`` at every free node."""
        model = self.model
        r = model.grad(self.theta, u, s) - fixed
        scale = model.current_scale(self.theta, u, s) + np.abs(fixed)
        if self.beta != 0.0:
            pull = self.beta * self.cost.grad(s, targets)
            r, scale = r + pull, scale + np.abs(pull)
        floor = 0.0
        if len(model.d_a):
            # SPICE's reverse-bias current differs from Shockley's by at most 0.004 I_s
            pos = model.free_pos
            floor = np.zeros(model.n_free)
            for node in (model.d_a, model.d_c):
                p = pos[node]
                np.add.at(floor, p[p >= 0], REVERSE_GAP * model.d_is[p >= 0])
        bad = np.abs(r) > RESIDUAL_RTOL * scale + floor + self.options.get("abstol", 1e-12)
        if np.any(bad):
            b, i = map(int, np.argwhere(bad)[0])
            raise ConvergenceError(
                f"{self._phase()} at inputs {self._describe(u[b])}: ngspice returned a point that breaks "
                f"Kirchhoff's current law at node {model.free_names[i]} (residual {r[b, i]:.3g} A of "
                f"{scale[b, i]:.3g} A through it): not a converged operating point")

    def equilibrium(self) -> np.ndarray:
        """Readings (B, n_measured) volts: the operating point of every input."""
        s = self.equilibrium_state()
        return self.model.voltages(s, self.inputs)[:, self._measured]

    def sample(self, n: int) -> np.ndarray:
        """``n`` identical readings (the substrate is noiseless), (B, n, n_measured) volts."""
        if n < 1:
            raise ConfigError(f"number of samples must be >= 1, got {n}")
        return np.repeat(self.equilibrium()[:, None, :], n, axis=1)
