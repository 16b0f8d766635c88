"""Thermal gradient rules: learning from the fluctuations of a network at temperature T.

Objective: the mean cost ``<C>`` under the Boltzmann law ``p(s) ~ exp(-E(s)/T)`` (T in the
model's energy units: watts for resistive networks), averaged over the batch. With
``A = dE/dtheta`` (for a resistor ``1/2 dV_e^2``, V^2) the exact identities are
(docs/PHYSICS.md, section 3)::

    d<C>/dtheta = -(1/T) Cov_0(C, A)                   (covariance, unclamped)
                = d/dbeta <A>_beta at beta = 0         (nudged, F = E + beta C)

Rules (the interface of ``analog_ep.learning.rules``; each returns a GradientResult whose
``loss`` is the estimate of ``<C>`` and ``stderr`` the standard error of each component):

* ``thermal``: free-phase readings only; the unbiased sample covariance of ``C`` and ``A``
  computed from the measured node voltages. Model-free: it runs on a board. Relative error
  ``sqrt((1 + rho^-2)/N)`` with ``rho = corr(C, A)``.
* ``thermal-cv``: the same covariance with Stein control variates built from the Hessian
  ``H`` at the minimum (the host knows the conductances and diode parameters it set). For
  any vector field ``phi``, ``E_p[div phi - grad E . phi / T] = 0`` and
  ``E_p[A (div phi - grad E . phi / T)] = -E_p[grad A . phi]`` exactly under Boltzmann.
  With ``phi = -T G w``, ``G = H^-1``, ``w = grad C(s*) + 1/2 d2C (s - s*)`` the control
  variate is ``h = grad E(s)^T G w(s) - (T/2) tr(G d2C)`` and::

      d<C>/dtheta = -(1/T) Cov(C - h, A) - < grad A^T G w >

  an unbiased estimator (any fixed ``s*`` and ``G``). For a Gaussian network ``C - h`` is
  constant, so only the small second term fluctuates.
* ``thermal-nudged``: ``d/dbeta <A>_beta`` from readings at ``+-beta`` (symmetric, bias
  O(beta^2), noise ~ sqrt(T/N)/beta) or at ``0, beta`` (one-sided, O(beta)).
* ``low-t``: deterministic, from the nudged minima, Hessians and third derivatives
  (docs/PHYSICS.md, section 4): order 0 is classical EP; order 1 adds the O(T) correction
  ``<A>_beta ~ A(s_beta) + (T/2)[tr(G_beta d2A) - grad A^T G_beta (E3 : G_beta)]``.
* ``thermal-exact``: the Gaussian closed form for linear networks,
  ``<C> = C(s*) + (T/2) tr(G d2C)`` and
  ``d<C>/dtheta = dC(s*)/dtheta - (T/2) tr(G d2C G d2A)`` (for a resistor
  ``dC(s*)/dG_e - (T/2)|P G b_e|^2``), the reference for every sampler-based estimator.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConfigError
from ..physics.equilibrium import solve_equilibrium
from ..physics.sampling import check_temperature, energy_function
from .objective import GradientResult
from .rules import DEFAULT_BETA_FRACTION, output_curvature, state_from_readings

#: Default readings per input for the sampling rules (``analog-ep train`` on Iris with the
#: plain covariance rule reaches 0.96 test accuracy with it in about 1.5 minutes).
DEFAULT_SAMPLES = 128


def _check_samples(n: int) -> int:
    n = int(n)
    if n < 2:
        raise ConfigError(f"a covariance needs at least 2 samples per input, got {n}")
    return n


def _temperature(value: float | None, substrate) -> float:
    """The rule's temperature, else the substrate's; must be > 0."""
    T = value if value is not None else getattr(getattr(substrate, "capabilities", None), "temperature", None)
    return check_temperature(T, "a thermal rule")


def _free_state(model, substrate, V: np.ndarray) -> np.ndarray:
    """Free-node voltages from readings ``V`` (..., n_measured) -> (..., n_free)."""
    shape = V.shape[:-1]
    s = state_from_readings(model, substrate.capabilities.measured, V.reshape(-1, V.shape[-1]))
    return s.reshape(shape + (s.shape[-1],))


def read_states(model, substrate, u: np.ndarray, n: int, beta: float = 0.0,
                targets: np.ndarray | None = None) -> np.ndarray:
    """Clamp ``u``, nudge with ``beta`` and read ``n`` thermal samples of the free state,
    (B, n, n_free) volts."""
    substrate.clamp(u)
    substrate.nudge(beta, targets if beta != 0.0 else None)
    V = substrate.sample(n)
    substrate.nudge(0.0, None)
    return _free_state(model, substrate, V)


#: Largest (inputs x samples x parameters) block of per-sample terms formed at once.
CHUNK_ELEMENTS = 2_000_000


def _input_chunks(B: int, N: int, P: int):
    """Slices of inputs whose per-sample (n, N, P) arrays stay below CHUNK_ELEMENTS."""
    step = max(1, CHUNK_ELEMENTS // max(1, N * P))
    return (slice(k, min(B, k + step)) for k in range(0, B, step))


def _rows(u: np.ndarray, sl: slice, N: int) -> np.ndarray:
    """Inputs of the samples of the inputs ``sl``, each repeated N times."""
    u = np.atleast_2d(u)
    return u if len(u) == 1 else np.repeat(u[sl], N, axis=0)


def sample_costs(cost, d, s: np.ndarray) -> np.ndarray:
    """Cost of every sample, (B, N), for samples ``s`` (B, N, n_free)."""
    B, N, nf = s.shape
    return cost.value(s.reshape(B * N, nf), np.repeat(np.atleast_2d(d), N, axis=0)).reshape(B, N)


def covariance_terms(y: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Per-sample terms whose mean over the samples is the unbiased covariance of ``y``
    (B, N) and ``A`` (B, N, P): ``N/(N-1) (y_i - ybar)(A_i - Abar)``, (B, N, P)."""
    N = y.shape[1]
    return (N / (N - 1.0)) * (y - y.mean(axis=1, keepdims=True))[..., None] * (A - A.mean(axis=1, keepdims=True))


#: Sample groups whose spread gives the standard error on the fast (moment) path.
GROUPS = 8


def _has_edge_moments(model) -> bool:
    """Resistive models expose batch-mean kernels over the trained edges."""
    return hasattr(model, "_mean_edge_products") and hasattr(model, "mean_contract_mixed")


def _group_slices(N: int):
    G = min(GROUPS, N)
    edges = np.linspace(0, N, G + 1).astype(int)
    return [slice(edges[g], edges[g + 1]) for g in range(G)]


def _sum_and_stderr(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The sum of group contributions and its standard error from their spread."""
    parts = np.array(parts)
    G = len(parts)
    return parts.sum(axis=0), (G * parts).std(axis=0, ddof=1) / np.sqrt(G)


def covariance_gradient(model, theta, u, s: np.ndarray, y: np.ndarray, T: float,
                        lam: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``mean_b mean_i [-(1/T) N/(N-1) (y_i - ybar)(A_i - Abar) - lam_i^T d2E/(ds dtheta)]``
    over inputs ``b`` and samples ``i`` (``A = dE/dtheta`` at the samples ``s`` (B, N, n)),
    and its standard error. Returns (P,), (P,).

    Resistive networks (``A_e = 1/2 dV_e^2``): with per-input centred voltages
    ``d_i = dV_i - mean dV``, ``sum_i w_i (A_i - Abar) = sum_i w_i (mean dV d_i + d_i^2/2)``
    for weights summing to zero, evaluated group by group of samples through node moment
    matrices (BLAS, O(B N n_nodes^2)); the standard error comes from the spread of the
    groups' contributions. Other models: per-sample terms in chunks of inputs, the
    standard error from their variance.
    """
    if not _has_edge_moments(model):
        return _covariance_gradient_chunked(model, theta, u, s, y, T, lam)
    B, N, nf = s.shape
    u = np.atleast_2d(u)
    uu = np.repeat(u, N, axis=0) if len(u) > 1 else u
    V = model.voltages(s.reshape(B * N, nf), uu).reshape(B, N, -1)
    s_bar = s.mean(axis=1)
    Vc = V - V.mean(axis=1, keepdims=True)                        # zero on clamped nodes
    w = -(y - y.mean(axis=1, keepdims=True)) / (T * (N - 1))      # (B, N), sums to 0 per input
    parts = []
    for g in _group_slices(N):
        Vg, wg = Vc[:, g], w[:, g]
        rows = Vg.shape[0] * Vg.shape[1]
        X, Y = (wg[..., None] * Vg).reshape(rows, -1), Vg.reshape(rows, -1)
        quad = 0.5 * rows * model._mean_edge_products(X, Y)
        Lam = np.einsum("bn,bnf->bf", wg, Vg[..., model.free])
        part = (quad + B * model.mean_contract_mixed(Lam, u, s_bar)) / B
        if lam is not None:
            ug = np.repeat(u, Vg.shape[1], axis=0) if len(u) > 1 else u
            part -= rows / (B * N) * model.mean_contract_mixed(
                lam[:, g].reshape(rows, nf), ug, s[:, g].reshape(rows, nf))
        parts.append(part)
    return _sum_and_stderr(parts)


def _covariance_gradient_chunked(model, theta, u, s, y, T, lam):
    """:func:`covariance_gradient` from per-sample terms, O(CHUNK_ELEMENTS) memory."""
    B, N, nf = s.shape
    P = len(model.param_names)
    total, var = np.zeros(P), np.zeros(P)
    for sl in _input_chunks(B, N, P):
        b = len(range(B)[sl])
        uu, flat = _rows(u, sl, N), s[sl].reshape(b * N, nf)
        terms = -covariance_terms(y[sl], model.dE_dtheta(theta, uu, flat).reshape(b, N, P)) / T
        if lam is not None:
            terms -= model.contract_mixed(lam[sl].reshape(b * N, nf), uu, flat).reshape(b, N, P)
        total += terms.sum(axis=(0, 1))
        var += terms.var(axis=1, ddof=1).sum(axis=0) / N
    return total / (B * N), np.sqrt(var) / B


def nudged_gradient(model, theta, u, s_lo: np.ndarray, s_hi: np.ndarray,
                    span: float) -> tuple[np.ndarray, np.ndarray]:
    """``mean_b (<dE/dtheta>_hi - <dE/dtheta>_lo) / span`` from samples (B, N, n) of the two
    nudged phases, and its standard error. Returns (P,), (P,)."""
    B, N, nf = s_lo.shape
    u = np.atleast_2d(u)
    if _has_edge_moments(model):
        parts = []
        for g in _group_slices(N):
            n = g.stop - g.start
            ug = np.repeat(u, n, axis=0) if len(u) > 1 else u
            hi, lo = (model.mean_dE_dtheta(theta, ug, x[:, g].reshape(B * n, nf)) for x in (s_hi, s_lo))
            parts.append((hi - lo) * n / (N * span))
        return _sum_and_stderr(parts)
    P = len(model.param_names)
    diff, var = np.zeros(P), np.zeros(P)
    for sl in _input_chunks(B, N, P):
        b = len(range(B)[sl])
        uu = _rows(u, sl, N)
        for sign, x in ((1.0, s_hi), (-1.0, s_lo)):
            A = model.dE_dtheta(theta, uu, x[sl].reshape(b * N, nf)).reshape(b, N, P)
            diff += sign * A.mean(axis=1).sum(axis=0)
            var += A.var(axis=1, ddof=1).sum(axis=0)
    return diff / (B * span), np.sqrt(var / N) / (B * span)


class ThermalRule:
    """``thermal``: ``d<C>/dtheta = -(1/T) Cov(C, dE/dtheta)`` from free readings alone."""

    name = "thermal"
    needs_nudge = False

    def __init__(self, samples: int = DEFAULT_SAMPLES, temperature: float | None = None):
        self.samples = _check_samples(samples)
        self.temperature = temperature

    def __repr__(self) -> str:
        return f"{type(self).__name__}(samples={self.samples}, temperature={self.temperature})"

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        T = _temperature(self.temperature, substrate)
        applied = substrate.set_parameters(theta)
        s = read_states(model, substrate, u, self.samples)
        y, lam = self._cost_and_multipliers(model, cost, applied, u, d, s, T, substrate)
        g, se = covariance_gradient(model, applied, u, s, y, T, lam)
        return GradientResult(float(np.mean(y)), g, se, {"samples": self.samples, "temperature": T})

    def _cost_and_multipliers(self, model, cost, theta, u, d, s, T, substrate):
        """The per-sample value whose covariance with dE/dtheta is taken (its mean estimates
        <C>) and the multipliers of the mixed-derivative term (None: no such term)."""
        return sample_costs(cost, d, s), None


class ThermalCVRule(ThermalRule):
    """``thermal-cv``: the covariance rule with Stein control variates from the Hessian at
    the minimum (see the module docstring); unbiased, far fewer samples."""

    name = "thermal-cv"

    def _cost_and_multipliers(self, model, cost, theta, u, d, s, T, substrate):
        B, N, nf = s.shape
        u = np.atleast_2d(u)
        s0 = _free_state(model, substrate, substrate.equilibrium())
        K = cost.hessian(nf)
        G = np.linalg.inv(model.hessian(theta, u, s0))
        w = cost.grad(s0, d)[:, None, :] + 0.5 * (s - s0[:, None, :]) @ K        # (B, N, n)
        Gw = w @ G                                                                 # G symmetric
        gradE = energy_function(model, theta, np.repeat(u, N, axis=0) if len(u) > 1 else u)(
            s.reshape(B * N, nf), with_energy=False)[1].reshape(B, N, nf)
        h = np.sum(gradE * Gw, axis=-1) - 0.5 * T * np.einsum("bij,ji->b", G, K)[:, None]
        return sample_costs(cost, d, s) - h, Gw


class ThermalNudgedRule:
    """``thermal-nudged``: ``d/dbeta <dE/dtheta>_beta`` from thermal readings of nudged
    networks, centred (``symmetric``) or one-sided. ``beta`` (S), unless given, is
    ``beta_fraction`` of the output curvature bound at the free equilibrium (the largest
    ``beta`` keeping ``E - beta C`` convex; see ``rules.output_curvature``)."""

    name = "thermal-nudged"
    needs_nudge = True

    def __init__(self, beta: float | None = None, symmetric: bool = True, samples: int = DEFAULT_SAMPLES,
                 temperature: float | None = None, beta_fraction: float = DEFAULT_BETA_FRACTION):
        if beta is not None and not beta > 0:
            raise ConfigError(f"thermal-nudged needs beta > 0 (S), got {beta}")
        if not 0 < beta_fraction < 1:
            raise ConfigError(f"beta_fraction must lie in (0, 1), got {beta_fraction}")
        self.beta, self.symmetric, self.beta_fraction = beta, bool(symmetric), float(beta_fraction)
        self.samples = _check_samples(samples)
        self.temperature = temperature
        if not symmetric:
            warnings.warn("one-sided nudging has an O(beta) bias; prefer symmetric=True", stacklevel=2)

    def __repr__(self) -> str:
        beta = f"{self.beta:g}" if self.beta is not None else f"{self.beta_fraction:g} x curvature"
        return (f"ThermalNudgedRule(beta={beta}, symmetric={self.symmetric}, "
                f"samples={self.samples}, temperature={self.temperature})")

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        T = _temperature(self.temperature, substrate)
        applied = substrate.set_parameters(theta)
        beta = self.beta
        if beta is None:
            substrate.clamp(u)
            substrate.nudge(0.0, None)
            s0 = _free_state(model, substrate, substrate.equilibrium())
            beta = self.beta_fraction * output_curvature(model, cost, applied, u, s0)
        lo = -beta if self.symmetric else 0.0
        states, costs = [], []
        for b in (lo, beta):
            states.append(read_states(model, substrate, u, self.samples, b, d))
            costs.append(sample_costs(cost, d, states[-1]).mean())
        g, se = nudged_gradient(model, applied, u, states[0], states[1], beta - lo)
        loss = 0.5 * (costs[0] + costs[1]) if self.symmetric else costs[0]
        return GradientResult(float(loss), g, se, {"samples": 2 * self.samples, "temperature": T, "beta": beta})


def trace_second_locals(model, theta, u, s, R: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """``tr(R R^T d2A_p/ds2)`` for every parameter, (B, P), given roots ``R`` (B, n, k).

    Second differences of ``A = dE/dtheta`` along the columns ``c_k`` of ``R``:
    ``sum_k c_k^T d2A c_k``. Exact for resistive networks (``A`` is quadratic in ``s``),
    O(step^2) otherwise; ``step`` is in state units (volts, radians).
    """
    s = np.atleast_2d(s)
    B, n = s.shape
    k = R.shape[-1]
    norm = np.linalg.norm(R, axis=1)                                         # (B, k)
    dirs = np.swapaxes(R, 1, 2) / np.where(norm > 0, norm, 1.0)[..., None]   # (B, k, n)
    u = np.atleast_2d(u)
    uu = np.repeat(u, k, axis=0) if len(u) == B and B > 1 else u
    plus = model.dE_dtheta(theta, uu, (s[:, None, :] + step * dirs).reshape(B * k, n)).reshape(B, k, -1)
    minus = model.dE_dtheta(theta, uu, (s[:, None, :] - step * dirs).reshape(B * k, n)).reshape(B, k, -1)
    mid = model.dE_dtheta(theta, u, s)
    q = (plus + minus - 2.0 * mid[:, None, :]) / step**2
    return np.einsum("bk,bkp->bp", norm**2, q)


def _cost_root(cost, n: int) -> np.ndarray:
    """``D^T`` (n, k) with ``D^T D = d2C`` (constant for quadratic costs)."""
    w, V = np.linalg.eigh(cost.hessian(n))
    keep = w > 1e-12 * max(1.0, w.max(initial=0.0))
    return V[:, keep] * np.sqrt(w[keep])


def cost_curvature(cost, s, d, n: int):
    """``d2C`` at the states ``s`` ((n, n) constant, or (B, n, n) for a state-dependent cost
    such as the periodic one) and the diagonal third derivatives ``d3C/ds_i^3`` (0, or
    (B, n); costs that act on each output separately have no others)."""
    if getattr(cost, "quadratic", True):
        return cost.hessian(n), 0.0
    return cost.hessian_at(s, d), cost.third_diag(s, d)


def low_t_locals(model, cost, theta, u, s, beta: float, T: float, order: int, d=None) -> np.ndarray:
    """Low-temperature expansion of ``<dE/dtheta>_beta`` around the nudged minimum ``s``
    (B, n_free), (B, P): order 0 ``A(s)``; order 1 adds
    ``(T/2)[tr(G d2A) - grad A^T G (F3 : G)]`` with ``G = (H + beta d2C)^-1`` and
    ``F3 = E3 + beta C3`` (targets ``d`` needed when the cost's curvature depends on s)."""
    A = model.dE_dtheta(theta, u, s)
    if order == 0:
        return A
    K, K3 = cost_curvature(cost, s, d, model.n_free)
    H = model.hessian(theta, u, s) + beta * K
    G = np.linalg.inv(H)
    t = model.third_trace(theta, u, s, G) + beta * K3 * np.diagonal(G, axis1=1, axis2=2)
    lam = np.einsum("bij,bj->bi", G, t)
    R = np.linalg.cholesky(G)
    return A + 0.5 * T * (trace_second_locals(model, theta, u, s, R) - model.contract_mixed(lam, u, s))


def low_t_mean_cost(model, cost, theta, u, d, s, T: float, order: int) -> np.ndarray:
    """``<C> ~ C(s*) + (T/2)[tr(G d2C) - grad C^T G (E3 : G)]`` per input (B,)."""
    C = cost.value(s, d)
    if order == 0:
        return C
    G = np.linalg.inv(model.hessian(theta, u, s))
    t = model.third_trace(theta, u, s, G)
    K = np.broadcast_to(cost_curvature(cost, s, d, model.n_free)[0], G.shape)
    corr = np.einsum("bij,bji->b", G, K) - np.einsum(
        "bi,bij,bj->b", cost.grad(s, d), G, t)
    return C + 0.5 * T * corr


class LowTemperatureRule:
    """``low-t``: deterministic learning from the Hessian (and third derivatives at order 1),
    by symmetric nudging of the zero-temperature equilibrium."""

    name = "low-t"
    needs_nudge = True

    def __init__(self, order: int = 1, temperature: float | None = None, beta: float | None = None):
        if order not in (0, 1):
            raise ConfigError(f"low-t order must be 0 or 1, got {order}")
        self.order, self.temperature = int(order), temperature
        self.beta = beta

    def __repr__(self) -> str:
        return f"LowTemperatureRule(order={self.order}, temperature={self.temperature}, beta={self.beta})"

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        T = _temperature(self.temperature, substrate) if self.order else 0.0
        applied = substrate.set_parameters(theta)
        u = np.atleast_2d(u)
        substrate.clamp(u)
        substrate.nudge(0.0, None)
        s0 = _free_state(model, substrate, substrate.equilibrium())
        # A deterministic centred difference: beta small against the Hessian's scale.
        beta = self.beta if self.beta is not None else 1e-4 * float(np.mean(np.diagonal(
            model.hessian(applied, u, s0), axis1=1, axis2=2)))
        X = []
        for b in (beta, -beta):
            substrate.nudge(b, d)
            s = _free_state(model, substrate, substrate.equilibrium())
            X.append(low_t_locals(model, cost, applied, u, s, b, T, self.order, d))
        substrate.nudge(0.0, None)
        g = ((X[0] - X[1]) / (2.0 * beta)).mean(axis=0)
        loss = low_t_mean_cost(model, cost, applied, u, d, s0, T, self.order).mean()
        return GradientResult(float(loss), g, None, {"order": self.order, "temperature": T, "beta": beta})


def exact_gaussian(model, cost, theta, u, d, T: float):
    """Exact ``<C>`` per input (B,) and ``d<C>/dtheta`` per input (B, P) of a linear network
    at temperature ``T`` (Gaussian closed form; see the module docstring)."""
    if not model.is_linear:
        raise ConfigError("thermal-exact is the Gaussian closed form for linear networks; "
                          f"this network has diodes ({', '.join(model.diode_names)})")
    u = model.check_inputs(u)
    s = solve_equilibrium(model, theta, u).s
    B, n = s.shape
    H = model.hessian(theta, u[:1], s[:1])[0]
    G = np.linalg.inv(H)
    mean_cost = cost.value(s, d) + 0.5 * T * np.trace(G @ cost.hessian(n))
    classical = -model.contract_mixed(cost.grad(s, d) @ G, u, s)
    GD = G @ _cost_root(cost, n)                    # root of G d2C G
    GD = np.broadcast_to(GD, (B,) + GD.shape)
    return mean_cost, classical - 0.5 * T * trace_second_locals(model, theta, u, s, GD)


class ThermalExactRule:
    """``thermal-exact``: the exact gradient of ``<C>`` for linear networks (model only)."""

    name = "thermal-exact"
    needs_nudge = False

    def __init__(self, temperature: float | None = None):
        self.temperature = temperature

    def __repr__(self) -> str:
        return f"ThermalExactRule(temperature={self.temperature})"

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        T = _temperature(self.temperature, substrate)
        applied = substrate.set_parameters(theta) if substrate is not None else np.asarray(theta, float)
        C, g = exact_gaussian(model, cost, applied, u, d, T)
        return GradientResult(float(C.mean()), g.mean(axis=0), None, {"temperature": T})


#: The thermal rules by name (built through :mod:`analog_ep.learning.registry`).
THERMAL_RULES = {cls.name: cls for cls in (ThermalRule, ThermalCVRule, ThermalNudgedRule,
                                           LowTemperatureRule, ThermalExactRule)}
