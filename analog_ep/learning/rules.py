"""Gradient rules: estimators of ``d loss / d theta`` behind one interface.

Every rule has ``name``, ``needs_nudge`` and ``gradient(model, substrate, cost, theta, u, d,
rng) -> GradientResult`` (docs/ARCHITECTURE.md, "Gradient rules"). The loss is the batch
mean of the cost at the free equilibrium, ``L = mean_b C(s*_0(theta, u_b), d_b)``; the
gradient is ``dL/dtheta`` (descend along minus it), in loss units per parameter unit
(V^2/S for conductances and the squared cost).

* ``exact``: the implicit-function gradient at the free equilibrium ``s*``,
  ``dL/dtheta = -lam^T d2E/(ds dtheta)`` with ``H lam = grad_s C`` and ``H = d2E/ds2``
  (one linear solve per input: what backpropagation through the equilibrium gives).
* ``ep``: equilibrium propagation. Nudging adds ``beta C`` to the energy (for the squared
  cost a conductance ``beta`` from each output to a source at its target: the current
  ``beta (d_o - V_o)``). Symmetric (default)::

      dL/dtheta ~ [dE/dtheta(s*_+beta) - dE/dtheta(s*_-beta)] / (2 beta)     bias O(beta^2)

  one-sided ``[dE/dtheta(s*_beta) - dE/dtheta(s*_0)] / beta``, bias O(beta).
* ``coupled``: coupled learning. The free state, then the outputs held (clamped, as by
  voltage sources) at ``V_o + eta_c (d_o - V_o)``, the rest relaxing::

      g = [dE/dtheta(s*_clamped) - dE/dtheta(s*_free)] / eta_c          bias O(eta_c)

  To first order in ``eta_c``, ``g = -e^T [(H^-1)_oo]^-1 ds_o/dtheta`` with ``e = d - V_o``:
  the gradient of the squared output error weighted by the inverse output block of ``H^-1``
  (positive definite, held fixed), whose minimum is the squared cost's; for one output it is
  the loss gradient times a conductance (docs/PHYSICS.md, "Coupled learning"). Its units are
  the loss gradient's times siemens.
* ``fd``: central finite differences of ``L`` (2 P free solves), the test reference.

Rules get equilibria from the substrate (``set_parameters``, ``clamp``, ``nudge``,
``equilibrium``) and compute ``C`` and ``dE/dtheta`` on the host from the readings
(:func:`state_from_readings`); ``exact`` and ``fd`` need only free equilibria. Every rule,
thermal ones included, is built by name through :mod:`analog_ep.learning.registry`.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ..errors import ConfigError, ConvergenceError
from ..models.cost import SquaredCost
from ..models.resistive import ResistiveModel
from ..physics.equilibrium import resistor_output_block
from ..physics.layered import solve_hessian
from .objective import GradientResult

#: Nudging strength of the ``ep`` rule (and of thermal-nudged EP) when none is given, as a
#: fraction of the output curvature bound at each batch's free state (:func:`output_curvature`):
#: small enough for a bias of a few per cent (O(beta^2) for symmetric nudging), large enough
#: to stand above the readings' noise.
DEFAULT_BETA_FRACTION = 0.2

#: One-sided EP warns when beta exceeds this fraction of the output curvature bound.
ONE_SIDED_WARN_FRACTION = 0.05


def state_from_readings(model, measured: tuple[str, ...], V: np.ndarray) -> np.ndarray:
    """Free state (B, n_free) from readings ``V`` (B, n_measured) of the nodes ``measured``.

    Every free node must be measured: ``dE/dtheta`` needs the voltage at both ends of
    every trained element. Raises ConfigError naming the missing nodes.
    """
    V = np.atleast_2d(np.asarray(V, dtype=float))
    return V[:, _free_columns(tuple(model.free_names), tuple(measured))]


@functools.lru_cache(maxsize=16)
def _free_columns(free_names: tuple[str, ...], measured: tuple[str, ...]) -> np.ndarray:
    where = {n: i for i, n in enumerate(measured)}
    missing = [n for n in free_names if n not in where]
    if missing:
        shown = ", ".join(missing[:8]) + (f", ... ({len(missing)} in all)" if len(missing) > 8 else "")
        raise ConfigError(f"the rule needs readings of every free node; the substrate does not measure {shown}")
    return np.array([where[n] for n in free_names], dtype=np.intp)


def _read_state(model, substrate, beta: float = 0.0, targets=None) -> np.ndarray:
    substrate.nudge(beta, targets if beta != 0.0 else None)
    return state_from_readings(model, substrate.capabilities.measured, substrate.equilibrium())


def mean_dE_dtheta(model, theta, u, s) -> np.ndarray:
    """Batch mean of ``dE/dtheta`` (P,): the model's own fast mean when it has one."""
    fast = getattr(model, "mean_dE_dtheta", None)
    return fast(theta, u, s) if fast is not None else model.dE_dtheta(theta, u, s).mean(axis=0)


def mean_contract_mixed(model, lam, u, s) -> np.ndarray:
    """Batch mean of ``lam^T d2E/(ds dtheta)`` (P,)."""
    fast = getattr(model, "mean_contract_mixed", None)
    return fast(lam, u, s) if fast is not None else model.contract_mixed(lam, u, s).mean(axis=0)


def hessian_solve(model, theta, u, s, rhs, cost=None, beta: float = 0.0) -> np.ndarray:
    """``(d2E/ds2 + beta d2C)^-1 rhs`` at states ``s`` (B, n); ``rhs`` (B, n, k) -> (B, n, k).

    Resistive networks use the layered block elimination when they are layered; other
    models a batched dense solve of ``model.hessian``."""
    if isinstance(model, ResistiveModel):
        return solve_hessian(model, theta, u, s, rhs, cost=cost, beta=beta)
    H = model.hessian(theta, u, s)
    if cost is not None and beta != 0.0:
        H = H + beta * cost.hessian(H.shape[-1])
    try:
        return np.linalg.solve(H, rhs)
    except np.linalg.LinAlgError as exc:
        raise ConvergenceError("singular Hessian at the equilibrium") from exc


def output_curvature(model, cost, theta, u, s) -> float:
    """The largest ``|beta|`` for which ``E - |beta| C`` stays convex at the states ``s``
    (at every state for resistive networks, from the resistors' Laplacian).

    With ``d2C = D^T D`` (``D`` reads the cost's outputs), ``H - beta D^T D`` is positive
    definite iff ``beta < 1 / lambda_max(D H^-1 D^T)``: the smallest curvature of the
    energy restricted to the output directions (the Schur complement of the output
    block), in siemens for the squared cost. Returns its minimum over the batch.
    """
    n = len(model.free_names)
    # A state-dependent cost Hessian (periodic cost) is bounded by a constant PSD matrix K,
    # -K <= d2C <= K: H - |beta| K positive definite still makes E + beta C convex.
    Hc = cost.curvature_bound(n) if hasattr(cost, "curvature_bound") else cost.hessian(n)
    w, v = np.linalg.eigh(Hc)
    keep = w > 1e-12 * max(1.0, w.max(initial=0.0))
    D = (v[:, keep] * np.sqrt(w[keep])).T                      # (k, n)
    if getattr(model, "d_a", None) is not None and (len(model.d_a) or len(model.gate_sources)):
        # Resistive networks: the diodes' (and gate-trained MOSFET edges') co-content is convex, so the resistors' reduced
        # Laplacian bounds the Hessian from below at every state; bounding beta with it keeps
        # E - |beta| C convex everywhere, not only near the free equilibrium (a nudged
        # state may leave the region where the diodes conduct).
        M = resistor_output_block(model, theta, D)[None]
    else:
        B = len(s)
        Z = hessian_solve(model, theta, u, s, np.broadcast_to(D.T, (B,) + D.T.shape))
        M = D @ Z                                              # (B, k, k)
    lam = np.linalg.eigvalsh(0.5 * (M + np.swapaxes(M, 1, 2)))[:, -1]
    return float(1.0 / np.max(lam))


class ExactRule:
    """``exact``: implicit-function gradient at the free equilibrium (one linear solve)."""

    name = "exact"
    needs_nudge = False

    def __repr__(self) -> str:
        return "ExactRule()"

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        if getattr(model, "spice_only", ""):
            raise ConfigError(f"the exact rule needs the network's Hessian, and part of this network is "
                              f"ngspice's alone ({model.spice_only}): use --rule ep or fd")
        theta = substrate.set_parameters(theta)
        substrate.clamp(u)
        s = _read_state(model, substrate)
        gC = cost.grad(s, d)
        lam = hessian_solve(model, theta, u, s, gC[:, :, None])[:, :, 0]
        grad = -mean_contract_mixed(model, lam, u, s)
        return GradientResult(float(np.mean(cost.value(s, d))), grad, None,
                              {"readout": cost.readout(s)})


class EPRule:
    """``ep``: nudged equilibrium propagation, symmetric (``+-beta``) by default.

    ``beta`` (S for the squared cost) is either fixed, or, with ``beta_fraction`` instead,
    that fraction of :func:`output_curvature` at each batch's free state (it follows the
    network as its conductances change). Each call checks ``|beta|`` against that bound:
    beyond it ``E - beta C`` is not convex and the ``-beta`` phase has no unique minimum, so
    the symmetric rule (or a negative beta) raises ConfigError. A one-sided rule with
    ``beta`` above :data:`ONE_SIDED_WARN_FRACTION` of the bound warns (its bias is first
    order in beta and one-sided EP is unstable at scale).
    """

    name = "ep"
    needs_nudge = True

    def __init__(self, beta: float | None = None, symmetric: bool = True,
                 beta_fraction: float = DEFAULT_BETA_FRACTION, richardson: bool = False):
        if beta is not None and (not np.isfinite(beta) or beta == 0.0):
            raise ConfigError(f"the ep rule needs a finite non-zero nudging strength beta, got {beta}")
        if beta is None and (beta_fraction is None or not 0.0 < beta_fraction < 1.0):
            raise ConfigError("the ep rule needs beta (S) or beta_fraction in (0, 1) of the output curvature")
        self.beta = None if beta is None else float(beta)
        self.beta_fraction = None if beta is not None else float(beta_fraction)
        self.symmetric = bool(symmetric)
        if richardson and not self.symmetric:
            raise ConfigError("Richardson extrapolation (--richardson) needs symmetric EP (drop --one-sided)")
        self.richardson = bool(richardson)
        self._warned = False

    def __repr__(self) -> str:
        b = f"beta={self.beta:g}" if self.beta is not None else f"beta_fraction={self.beta_fraction:g}"
        return f"EPRule({b}, symmetric={self.symmetric})"

    def _choose_beta(self, model, cost, theta, u, s) -> tuple[float, float]:
        bound = output_curvature(model, cost, theta, u, s)
        b = self.beta if self.beta is not None else self.beta_fraction * bound
        if (self.symmetric or b < 0) and abs(b) >= bound:
            raise ConfigError(f"|beta| = {abs(b):.3g} is not below the smallest curvature {bound:.3g} of the "
                              f"output block: the energy at -beta is not convex; lower --beta")
        if not self.symmetric and abs(b) > ONE_SIDED_WARN_FRACTION * bound and not self._warned:
            warnings.warn(f"one-sided EP with beta = {abs(b):.3g}, {abs(b) / bound:.2f} of the output "
                          f"curvature {bound:.3g}: its bias is O(beta); prefer the symmetric rule", stacklevel=3)
            self._warned = True
        return b, bound

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        theta = substrate.set_parameters(theta)
        substrate.clamp(u)
        s0 = _read_state(model, substrate)
        b, bound = self._choose_beta(model, cost, theta, u, s0)
        info = {"beta": b, "curvature": bound, "readout": cost.readout(s0)}
        try:
            sp = _read_state(model, substrate, b, d)
            if self.symmetric:
                sm = _read_state(model, substrate, -b, d)
                grad = (mean_dE_dtheta(model, theta, u, sp) - mean_dE_dtheta(model, theta, u, sm)) / (2 * b)
                if self.richardson:  # g(b) = g + c b^2 + O(b^4): (4 g(b/2) - g(b)) / 3 cancels c b^2
                    hp, hm = _read_state(model, substrate, b / 2, d), _read_state(model, substrate, -b / 2, d)
                    half = (mean_dE_dtheta(model, theta, u, hp) - mean_dE_dtheta(model, theta, u, hm)) / b
                    info["bias_estimate"] = np.abs(grad - half)   # = (3/4) |c| b^2 + O(b^4)
                    grad = (4 * half - grad) / 3
            else:
                grad = (mean_dE_dtheta(model, theta, u, sp) - mean_dE_dtheta(model, theta, u, s0)) / b
        except ConvergenceError as exc:
            raise ConvergenceError(f"nudged phase at beta = {b:g} failed ({exc}); lower --beta") from exc
        finally:
            substrate.nudge(0.0, None)
        return GradientResult(float(np.mean(cost.value(s0, d))), grad, None, info)


#: Clamping fraction of the ``coupled`` rule when none is given: the held outputs move a
#: tenth of the way from the free outputs to the targets (bias O(eta_c), about 10%).
DEFAULT_ETA_C = 0.1


class CoupledRule:
    """``coupled``: coupled learning (module doc). ``eta_c`` in (0, 1] is the fraction of the
    way from the free outputs to the targets at which the outputs are held (1: held at the
    targets). Needs a substrate that can hold its outputs (``capabilities.clamp_outputs``)
    and the squared cost (the clamp sets output voltages). A differential pair ``(p, m)``
    with error ``e = d - (V_p - V_m)`` is held at ``(V_p + eta_c e/2, V_m - eta_c e/2)``:
    its difference moves the same fraction of the way, its common mode stays."""

    name = "coupled"
    needs_nudge = False
    needs_output_clamp = True

    def __init__(self, eta_c: float = DEFAULT_ETA_C):
        if not (np.isfinite(eta_c) and 0.0 < eta_c <= 1.0):
            raise ConfigError(f"the coupled rule's clamping fraction eta_c must be in (0, 1], got {eta_c}")
        self.eta_c = float(eta_c)

    def __repr__(self) -> str:
        return f"CoupledRule(eta_c={self.eta_c:g})"

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        if not getattr(substrate.capabilities, "clamp_outputs", False):
            raise ConfigError("the coupled rule holds the outputs at fixed voltages, and this substrate cannot "
                              "clamp its outputs; use ep, which nudges them with currents")
        if not isinstance(cost, SquaredCost):
            raise ConfigError("the coupled rule holds output voltages, so it needs the squared cost (not softmax)")
        theta = substrate.set_parameters(theta)
        substrate.clamp(u)
        s0 = _read_state(model, substrate)
        idx = list(cost.index)
        # w: single-ended, e = d - V_o; a differential pair (p, m) moves by (e/2, -e/2)
        w = -cost.grad(s0, d)[:, idx] / (2.0 if cost.differential else 1.0)
        held = np.full((len(s0), len(model.outputs)), np.nan)
        held[:, [list(model.outputs).index(i) for i in idx]] = s0[:, idx] + self.eta_c * w
        substrate.clamp_outputs(held)
        try:
            sc = _read_state(model, substrate)
        finally:
            substrate.clamp_outputs(None)
        grad = (mean_dE_dtheta(model, theta, u, sc) - mean_dE_dtheta(model, theta, u, s0)) / self.eta_c
        return GradientResult(float(np.mean(cost.value(s0, d))), grad, None,
                              {"eta_c": self.eta_c, "readout": cost.readout(s0)})


class FiniteDifferenceRule:
    """``fd``: central differences of the loss, ``h_p = step * max(|theta_p|, hi_p * 1e-3)``
    (2 P free equilibria; a test reference, not a training rule)."""

    name = "fd"
    needs_nudge = False

    def __init__(self, step: float = 1e-5):
        self.step = float(step)

    def __repr__(self) -> str:
        return f"FiniteDifferenceRule(step={self.step:g})"

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        theta = np.asarray(theta, dtype=float)
        hi = model.theta_bounds()[1]

        def loss(t):
            substrate.set_parameters(t)
            substrate.clamp(u)
            return float(np.mean(cost.value(_read_state(model, substrate), d)))

        L0 = loss(theta)
        h = self.step * np.maximum(np.abs(theta), 1e-3 * np.abs(hi))
        grad = np.empty_like(theta)
        for p in range(len(theta)):
            e = np.zeros_like(theta)
            e[p] = h[p]
            grad[p] = (loss(theta + e) - loss(theta - e)) / (2 * h[p])
        substrate.set_parameters(theta)
        return GradientResult(L0, grad, None, {"step": self.step})


#: The rules of this module by name (the registry of every rule is :mod:`analog_ep.learning.registry`).
CLASSICAL_RULES = {cls.name: cls for cls in (ExactRule, EPRule, CoupledRule, FiniteDifferenceRule)}
