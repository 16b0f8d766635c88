"""Thermal gradient rules: learning from the fluctuations of a network at temperature T.

Objective: the mean cost ``<C>`` under the Boltzmann law ``p(s) ~ exp(-E(s)/T)`` (T in the
model's energy units: watts for resistive networks), averaged over the batch. With
``A = dE/dtheta`` (for a resistor ``1/2 dV_e^2``, V^2) the exact identities are
(PHYSICS.md section 3)::

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
  (PHYSICS.md section 4): order 0 is classical EP; order 1 adds the O(T) correction
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
from ..physics.sampling import check_temperature
from .objective import GradientResult

#: Default noise temperature of the resistive emulator and the thermal rules (W). On the
#: default Iris network (``analog_ep.networks.default_network``, initial conductances) the
#: output nodes fluctuate with a standard deviation of about 20 mV (median over the
#: training inputs, 19-20 mV for seeds 0-2): 2% of the DAC half-range of 1 V, 1% of its
#: 2 V span. That is large against the classical/thermal difference, small against the
#: targets (+-0.125 V), and comparable to the diodes' n V_t = 26 mV, so the distribution
#: is measurably non-Gaussian near the knees.
DEFAULT_TEMPERATURE = 1e-7

#: Default readings per input for the sampling rules.
DEFAULT_SAMPLES = 256


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
    from .rules import state_from_readings      # rules imports this module: import late
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


def per_sample_locals(model, cost, theta, u, d, s):
    """Cost ``C`` (B, N) and ``A = dE/dtheta`` (B, N, P) of samples ``s`` (B, N, n_free)."""
    B, N, nf = s.shape
    flat = s.reshape(B * N, nf)
    uu = np.repeat(np.atleast_2d(u), N, axis=0)
    dd = np.repeat(np.atleast_2d(d), N, axis=0)
    C = cost.value(flat, dd).reshape(B, N)
    A = model.dE_dtheta(theta, uu, flat).reshape(B, N, -1)
    return C, A, flat, uu, dd


def covariance_terms(y: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Per-sample terms whose mean over the samples is the unbiased covariance of ``y``
    (B, N) and ``A`` (B, N, P): ``N/(N-1) (y_i - ybar)(A_i - Abar)``, (B, N, P)."""
    N = y.shape[1]
    return (N / (N - 1.0)) * (y - y.mean(axis=1, keepdims=True))[..., None] * (A - A.mean(axis=1, keepdims=True))


def _mean_and_stderr(terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch-mean estimate (P,) and its standard error from per-sample terms (B, N, P):
    every input contributes an independent mean of N readings."""
    B, N = terms.shape[:2]
    per_input_var = terms.var(axis=1, ddof=1) / N
    return terms.mean(axis=(0, 1)), np.sqrt(per_input_var.sum(axis=0)) / B


class ThermalRule:
    """``thermal``: ``d<C>/dtheta = -(1/T) Cov(C, dE/dtheta)`` from free readings alone."""

    name = "thermal"
    needs_nudge = False

    def __init__(self, samples: int = DEFAULT_SAMPLES, temperature: float | None = None, **_):
        self.samples = _check_samples(samples)
        self.temperature = temperature

    def __repr__(self) -> str:
        return f"{type(self).__name__}(samples={self.samples}, temperature={self.temperature})"

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        T = _temperature(self.temperature, substrate)
        applied = substrate.set_parameters(theta)
        s = read_states(model, substrate, u, self.samples)
        C, A, flat, uu, dd = per_sample_locals(model, cost, applied, u, d, s)
        terms, C_est = self._terms(model, cost, applied, s, C, A, flat, uu, dd, T, substrate)
        g, se = _mean_and_stderr(terms)
        return GradientResult(float(np.mean(C_est)), g, se,
                              {"samples": self.samples, "temperature": T})

    def _terms(self, model, cost, theta, s, C, A, flat, uu, dd, T, substrate):
        return -covariance_terms(C, A) / T, C


class ThermalCVRule(ThermalRule):
    """``thermal-cv``: the covariance rule with Stein control variates from the Hessian at
    the minimum (see the module docstring); unbiased, far fewer samples."""

    name = "thermal-cv"

    def _terms(self, model, cost, theta, s, C, A, flat, uu, dd, T, substrate):
        B, N, nf = s.shape
        s0 = _free_state(model, substrate, substrate.equilibrium())
        u = uu[::N]
        H = model.hessian(theta, u, s0)
        K = cost.hessian(nf)
        G = np.linalg.inv(H)
        g0 = cost.grad(s0, dd[::N])
        x = s - s0[:, None, :]
        w = g0[:, None, :] + 0.5 * x @ K                               # (B, N, n)
        Gw = np.einsum("bij,bnj->bni", G, w)
        gradE = model.grad(theta, uu, flat).reshape(B, N, nf)
        h = np.sum(gradE * Gw, axis=-1) - 0.5 * T * np.einsum("bij,ji->b", G, K)[:, None]
        r = C - h
        stein = model.contract_mixed(Gw.reshape(B * N, nf), uu, flat).reshape(B, N, -1)
        return -covariance_terms(r, A) / T - stein, r


class ThermalNudgedRule:
    """``thermal-nudged``: ``d/dbeta <dE/dtheta>_beta`` from thermal readings of nudged
    networks, centred (``symmetric``) or one-sided."""

    name = "thermal-nudged"
    needs_nudge = True

    def __init__(self, beta: float = 1e-4, symmetric: bool = True, samples: int = DEFAULT_SAMPLES,
                 temperature: float | None = None, **_):
        if not beta > 0:
            raise ConfigError(f"thermal-nudged needs beta > 0 (S), got {beta}")
        self.beta, self.symmetric = float(beta), bool(symmetric)
        self.samples = _check_samples(samples)
        self.temperature = temperature
        if not symmetric:
            warnings.warn("one-sided nudging has an O(beta) bias; prefer symmetric=True", stacklevel=2)

    def __repr__(self) -> str:
        return (f"ThermalNudgedRule(beta={self.beta:g}, symmetric={self.symmetric}, "
                f"samples={self.samples}, temperature={self.temperature})")

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        T = _temperature(self.temperature, substrate)
        applied = substrate.set_parameters(theta)
        lo = -self.beta if self.symmetric else 0.0
        phases = []
        for b in (lo, self.beta):
            s = read_states(model, substrate, u, self.samples, b, d)
            phases.append(per_sample_locals(model, cost, applied, u, d, s)[:2])
        (C_lo, A_lo), (C_hi, A_hi) = phases
        span = self.beta - lo
        B, N = C_lo.shape
        diff = (A_hi.mean(axis=1) - A_lo.mean(axis=1)) / span
        var = (A_hi.var(axis=1, ddof=1) + A_lo.var(axis=1, ddof=1)) / (N * span**2)
        loss = 0.5 * (C_lo.mean() + C_hi.mean()) if self.symmetric else C_lo.mean()
        return GradientResult(float(loss), diff.mean(axis=0), np.sqrt(var.sum(axis=0)) / B,
                              {"samples": 2 * self.samples, "temperature": T, "beta": self.beta})


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


def low_t_locals(model, cost, theta, u, s, beta: float, T: float, order: int) -> np.ndarray:
    """Low-temperature expansion of ``<dE/dtheta>_beta`` around the nudged minimum ``s``
    (B, n_free), (B, P): order 0 ``A(s)``; order 1 adds
    ``(T/2)[tr(G d2A) - grad A^T G (E3 : G)]`` with ``G = (H + beta d2C)^-1``."""
    A = model.dE_dtheta(theta, u, s)
    if order == 0:
        return A
    H = model.hessian(theta, u, s) + beta * cost.hessian(model.n_free)
    G = np.linalg.inv(H)
    t = model.third_trace(theta, u, s, G)
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
    corr = np.einsum("bij,ji->b", G, cost.hessian(model.n_free)) - np.einsum(
        "bi,bij,bj->b", cost.grad(s, d), G, t)
    return C + 0.5 * T * corr


class LowTemperatureRule:
    """``low-t``: deterministic learning from the Hessian (and third derivatives at order 1),
    by symmetric nudging of the zero-temperature equilibrium."""

    name = "low-t"
    needs_nudge = True

    def __init__(self, order: int = 1, temperature: float | None = None, beta: float | None = None, **_):
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
            X.append(low_t_locals(model, cost, applied, u, s, b, T, self.order))
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
    from ..physics.equilibrium import solve_equilibrium
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

    def __init__(self, temperature: float | None = None, **_):
        self.temperature = temperature

    def __repr__(self) -> str:
        return f"ThermalExactRule(temperature={self.temperature})"

    def gradient(self, model, substrate, cost, theta, u, d, rng) -> GradientResult:
        T = _temperature(self.temperature, substrate)
        applied = substrate.set_parameters(theta) if substrate is not None else np.asarray(theta, float)
        C, g = exact_gaussian(model, cost, applied, u, d, T)
        return GradientResult(float(C.mean()), g.mean(axis=0), None, {"temperature": T})


#: The thermal rules by name, merged into ``analog_ep.learning.rules.RULES``.
THERMAL_RULES = {cls.name: cls for cls in (ThermalRule, ThermalCVRule, ThermalNudgedRule,
                                           LowTemperatureRule, ThermalExactRule)}
