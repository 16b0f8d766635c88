"""Thermal equilibrium samples of resistive networks: Boltzmann ``p(s) ~ exp(-F(s)/T)``.

``F = E + beta C`` is the (nudged) co-content in watts and ``T`` the noise temperature in
watts (the energy units of the model). Two samplers:

* **Exact Gaussian** (linear networks, quadratic cost): ``F`` is quadratic with Hessian
  ``H = L_ff + beta d2C``, so ``s = s* + sqrt(T) x`` with ``x ~ N(0, H^-1)`` drawn through
  the factor of ``H`` (:func:`correlated_noise`). One factorisation serves every input of a
  batch and every sample: cost O(n^3 + B N n^2) dense, O(nnz(factor) B N) sparse.
* **MALA** (diode networks): vectorised Metropolis-adjusted Langevin chains, several per
  input, preconditioned by the Hessian at the minimum (:func:`sample_mala`). Chains start
  from the Laplace (Gaussian) approximation ``N(s*, T H^-1)``, adapt their step during
  burn-in towards a target acceptance, then run with a fixed step (detailed balance holds
  exactly) and are thinned. Diagnostics: acceptance rate and the multi-chain effective
  sample size of every coordinate and of the energy; failures raise or warn with the
  numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..errors import ConfigError, ConvergenceError
from ..models.resistive import ResistiveModel
from .equilibrium import DENSE_LIMIT, SPDFactor, linear_factor, solve_equilibrium, solve_linear


class SamplerWarning(UserWarning):
    """A sampler's diagnostics (acceptance, effective sample size) look unhealthy."""


def check_temperature(temperature: float | None, what: str = "thermal sampling") -> float:
    """``T`` as a float; ``None``, ``T <= 0`` or NaN raise :class:`ConfigError`."""
    if temperature is None or not np.isfinite(temperature) or temperature <= 0:
        raise ConfigError(f"{what} needs a temperature T > 0 (W); got {temperature}")
    return float(temperature)


# ----- exact Gaussian sampling ---------------------------------------------------------------
def correlated_noise(factor: SPDFactor, z: np.ndarray) -> np.ndarray:
    """Map white noise ``z`` (k, n) to ``x`` (k, n) with covariance ``A^-1``, A the factored matrix.

    Dense Cholesky ``A = L L^T``: ``x = L^-T z`` (one triangular solve). Sparse symmetric
    ``LDL^T`` (``splu`` with ``perm_r == perm_c`` and no pivoting: ``A = P L D L^T P^T``
    with ``U = D L^T``): ``x = A^-1 P L D^{1/2} z``, whose covariance is
    ``A^-1 (P L D L^T P^T) A^-1 = A^-1``; SuperLU's compiled solve is faster than a single
    sparse triangular solve from Python. Cost O(n^2 k) dense, O(nnz(L) k) sparse.
    """
    z = np.atleast_2d(z)
    if factor.dense is not None:
        c, lower = factor.dense
        return sla.solve_triangular(c, z.T, lower=lower, trans="T" if lower else "N",
                                    check_finite=False).T
    lu = factor.sparse
    if not np.array_equal(lu.perm_r, lu.perm_c):
        raise ConvergenceError("the sparse factor is not symmetric (row and column orderings "
                               "differ), so it is not an LDL^T factor")
    d = lu.U.diagonal()
    if np.any(d <= 0):
        raise ConvergenceError("the Hessian is not positive definite (negative pivot in LDL^T)")
    n = factor.n
    P = sp.csc_matrix((np.ones(n), (np.arange(n), lu.perm_c)), shape=(n, n))
    w = P @ (lu.L @ (np.sqrt(d)[:, None] * z.T))
    return factor.solve(np.asarray(w)).T


def sample_gaussian(model: ResistiveModel, theta: np.ndarray, u: np.ndarray, temperature: float,
                    n: int, rng: np.random.Generator, *, cost=None, targets=None,
                    beta: float = 0.0, factor: SPDFactor | None = None) -> np.ndarray:
    """Exact Boltzmann samples of a linear network: ``s ~ N(s*_beta, T H_beta^-1)``.

    ``u`` (B, n_inputs) volts, ``T`` watts; returns (B, n, n_free) volts. ``factor`` may be
    a cached factor of ``H_beta = L_ff + beta d2C`` (:func:`linear_factor`).
    """
    if not model.is_linear:
        raise ConfigError(f"exact Gaussian sampling needs a linear network; {model.name or 'this network'} "
                          f"has diodes {', '.join(model.diode_names)}")
    T = check_temperature(temperature)
    if factor is None:
        factor = linear_factor(model, theta, cost, beta)
    u = model.check_inputs(u)
    s0 = solve_linear(model, theta, u, cost=cost, targets=targets, beta=beta, factor=factor)
    B = len(s0)
    x = correlated_noise(factor, rng.standard_normal((B * n, model.n_free))).reshape(B, n, model.n_free)
    x *= np.sqrt(T)
    x += s0[:, None, :]
    return x


# ----- energy in the hot loop -----------------------------------------------------------------
def energy_function(model, theta, u: np.ndarray):
    """``f(s) -> (E, dE/ds)`` for states ``s`` (M, n_free) whose inputs are the rows of ``u``
    (M, n_inputs), energies up to a constant per input (enough for Metropolis ratios);
    ``f(s, with_energy=False)`` skips ``E`` (returns None for it).

    Resistive networks: the resistors' co-content is the quadratic form
    ``1/2 s^T L_ff s + s^T L_fc V_c`` (dense ``L_ff`` up to :data:`DENSE_LIMIT` free
    nodes), O(M n_free^2) instead of O(M n_resistors) element by element; diodes and
    current sources are evaluated by the model with its resistors removed. Other models:
    their own ``energy`` and ``grad``.
    """
    if not isinstance(model, ResistiveModel):
        return lambda s, with_energy=True: (model.energy(theta, u, s) if with_energy else None,
                                            model.grad(theta, u, s))
    Lff, Lfc = model.laplacian_blocks(theta)
    Lff = Lff.toarray() if model.n_free <= DENSE_LIMIT else Lff.tocsr()
    b = np.asarray(Lfc @ model.clamped_voltages(u).T).T                  # (M, n_free)
    none = np.zeros(0, dtype=np.intp)
    rest = replace(model, r_a=none, r_b=none, g_fixed=np.zeros(0), trainable=none,
                   g_min=np.zeros(0), g_max=np.zeros(0), resistor_names=())
    nonlinear = not model.is_linear or np.any(model.node_current)

    def f(s, with_energy: bool = True):
        Ls = s @ Lff if isinstance(Lff, np.ndarray) else np.asarray(Lff @ s.T).T
        g = Ls + b
        E = np.einsum("mi,mi->m", s, 0.5 * Ls + b) if with_energy else None
        if nonlinear:
            g = g + rest.grad(None, u, s)
            if with_energy:
                E = E + rest.energy(None, u, s)
        return E, g
    return f


# ----- MALA ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class MCMCSettings:
    """Settings of the Langevin chains.

    ``chains``: chains per input (at most the number of samples asked for); ``burn_in``:
    steps discarded while the step size adapts; ``thin``: steps between kept states;
    ``target_acceptance``: the adaptation's goal (default 0.9 for ``cn``, whose long steps
    make tail states sticky when the target is skewed, 0.574 for ``euler``); ``scheme``: ``"cn"`` (Crank-Nicolson
    Langevin, exact on the Laplace Gaussian) or ``"euler"`` (classic MALA);
    ``preconditioned``: use the Hessian at the minimum (else an isotropic step: with
    ``scheme="euler"`` the plain Langevin baseline); ``min_ess_fraction``: warn when the
    effective sample size falls below this fraction of the samples returned.
    """

    chains: int = 8
    burn_in: int = 20
    thin: int = 2
    target_acceptance: float | None = None
    scheme: str = "cn"
    preconditioned: bool = True
    min_ess_fraction: float = 0.25

    def __post_init__(self):
        if self.chains < 1 or self.burn_in < 1 or self.thin < 1:
            raise ConfigError(f"invalid MCMC settings {self}: chains, burn-in and thinning must be >= 1")
        if self.target_acceptance is not None and not 0.0 < self.target_acceptance < 1.0:
            raise ConfigError(f"target acceptance must lie in (0, 1), got {self.target_acceptance}")
        if self.scheme not in ("cn", "euler"):
            raise ConfigError(f"MCMC scheme must be 'cn' or 'euler', got {self.scheme!r}")

    @property
    def target(self) -> float:
        """Acceptance rate the step adaptation aims at."""
        if self.target_acceptance is not None:
            return self.target_acceptance
        return 0.9 if self.scheme == "cn" else 0.574


@dataclass(frozen=True)
class MCMCDiagnostics:
    """Per input (B,): mean acceptance after burn-in, effective sample size (minimum over the
    free coordinates and the energy) and the final step size ``h`` (dimensionless; NaN for
    samplers without one). ``sampler`` names the chain (``MALA``, ``Gibbs``) in messages;
    ``detail`` is what else the summary says about it (for Gibbs: colours, envelope acceptance).

    ``pooled``: the chains were too short (fewer than :data:`MIN_DRAWS_PER_CHAIN` kept draws)
    for the multi-chain ESS, so ``ess`` is the AR(1) value ``n (1 - rho) / (1 + rho)`` from
    the lag-1 autocorrelation ``rho`` of the kept draws pooled over every chain and input
    (each input centred and scaled by its own mean and variance): the same for all inputs,
    and an upper bound when the autocorrelation decays more slowly than geometrically."""

    acceptance: np.ndarray
    ess: np.ndarray
    step: np.ndarray
    samples: int
    chains: int
    pooled: bool = False
    sampler: str = "MALA"
    detail: str = ""

    def summary(self) -> str:
        how = ", pooled lag-1 estimate" if self.pooled else ""
        tail = f", {self.detail}" if self.detail else f", step {np.median(self.step):.3g}"
        return (f"acceptance {self.acceptance.min():.3f}-{self.acceptance.max():.3f}, "
                f"ESS {self.ess.min():.0f}-{self.ess.max():.0f} of {self.samples} samples "
                f"({self.chains} chains per input{how}){tail}")


#: Kept draws per chain below which the ESS comes from the pooled lag-1 autocorrelation.
MIN_DRAWS_PER_CHAIN = 20


def pooled_lag1_ess_fraction(draws: np.ndarray) -> float:
    """ESS per draw ``(1 - rho) / (1 + rho)`` (AR(1)) of the worst statistic, ``rho`` its lag-1
    autocorrelation pooled over inputs and chains: ``draws`` (B, K, m >= 2, S), each input
    centred and scaled over its ``K m`` draws."""
    x = draws - draws.mean(axis=(1, 2), keepdims=True)
    var = np.mean(x * x, axis=(1, 2), keepdims=True)
    x = x / np.where(var > 0, np.sqrt(var), 1.0)
    rho = np.mean(x[:, :, 1:] * x[:, :, :-1], axis=(0, 1, 2))            # (S,)
    rho = np.clip(rho, -0.99, 0.999)
    return float(np.min((1.0 - rho) / (1.0 + rho)))


def effective_sample_size(draws: np.ndarray) -> np.ndarray:
    """Multi-chain effective sample size of each statistic.

    ``draws`` (..., K chains, m draws, S statistics) -> (..., S). Uses the chain-averaged
    autocovariance and the between-chain variance (``var+``, as in split-R-hat), summed up
    to Geyer's initial positive sequence: ``ESS = K m / (1 + 2 sum_t rho_t)``.
    """
    K, m = draws.shape[-3], draws.shape[-2]
    x = draws - draws.mean(axis=-2, keepdims=True)
    nfft = 1 << int(np.ceil(np.log2(2 * m)))
    f = np.fft.rfft(x, n=nfft, axis=-2)
    acov = np.fft.irfft(f * np.conj(f), n=nfft, axis=-2)[..., :m, :] / m   # (..., K, m, S)
    acov = acov.mean(axis=-3)                                               # (..., m, S)
    W = acov[..., 0, :] * m / max(m - 1, 1)
    B_over_m = draws.mean(axis=-2).var(axis=-2, ddof=1) if K > 1 else np.zeros_like(W)
    var_plus = W * (m - 1) / m + B_over_m
    safe = np.where(var_plus > 0, var_plus, 1.0)
    rho = 1.0 - (W[..., None, :] - acov) / safe[..., None, :]
    rho[..., 0, :] = 1.0
    # Geyer: sum adjacent pairs while they stay positive.
    npair = m // 2
    pairs = rho[..., :2 * npair:2, :] + rho[..., 1:2 * npair:2, :]          # (..., npair, S)
    positive = np.cumprod(pairs > 0, axis=-2)
    tau = -1.0 + 2.0 * np.sum(pairs * positive, axis=-2) if npair else np.ones_like(W)
    tau = np.maximum(tau, 1.0 / np.log10(max(K * m, 10)))
    ess = K * m / tau
    return np.where(var_plus > 0, ess, K * m)


def _precision_and_root(H: np.ndarray, T: float, preconditioned: bool):
    """Preconditioner ``M`` (the proposal covariance per unit step) as its inverse ``M^-1``
    and a square root ``R`` (``M = R R^T``), each (B, n, n).

    Preconditioned: ``M = T H^-1`` (the Laplace covariance). Plain: ``M = (T / h_max) I``
    with ``h_max`` the largest Hessian eigenvalue, the stable isotropic Langevin step.
    """
    B, n, _ = H.shape
    if preconditioned:
        try:
            Lc = np.linalg.cholesky(H)
        except np.linalg.LinAlgError as exc:
            raise ConvergenceError("the Hessian at the minimum is not positive definite") from exc
        Linv = np.linalg.inv(Lc)
        R = np.sqrt(T) * np.swapaxes(Linv, -1, -2)          # L^-T sqrt(T)
        return H / T, R
    lam = np.linalg.eigvalsh(H)[:, -1]
    eye = np.broadcast_to(np.eye(n), (B, n, n))
    return eye * (lam / T)[:, None, None], eye * np.sqrt(T / lam)[:, None, None]


def chain_start(model, theta, u, temperature, n, s_min, cost, targets, beta):
    """What every chain sampler of a resistive network begins with: the checked temperature,
    the inputs (one row per minimum) and the minima ``s_min (B, n_free)`` of ``F = E + beta C``
    (solved when not given)."""
    T = check_temperature(temperature)
    if n < 1:
        raise ConfigError(f"number of samples must be >= 1, got {n}")
    u = model.check_inputs(u)
    if s_min is None:
        s_min = solve_equilibrium(model, theta, u, cost=cost, targets=targets, beta=beta).s
    if len(u) == 1 and len(s_min) > 1:
        u = np.repeat(u, len(s_min), axis=0)
    return T, u, s_min


def sample_mala(model, theta: np.ndarray, u: np.ndarray, temperature: float, n: int,
                rng: np.random.Generator, *, cost=None, targets=None, beta: float = 0.0,
                settings: MCMCSettings = MCMCSettings(), s_min: np.ndarray | None = None,
                check: bool = True) -> tuple[np.ndarray, MCMCDiagnostics]:
    """Boltzmann samples ``exp(-(E + beta C)/T)`` by vectorised MALA; (B, n, n_free) volts.

    Gaussian proposal with preconditioner ``M`` (``T H^-1``: the Laplace covariance at the
    minimum ``s*``) and step ``h``::

        s' = s - b M grad F(s)/T + c M^{1/2} z,   z ~ N(0, I)

    accepted with probability ``min(1, exp(-(F(s') - F(s))/T) q(s|s') / q(s'|s))``.
    ``scheme="euler"``: ``b = h/2``, ``c = sqrt(h)`` (classic MALA). ``scheme="cn"``
    (Crank-Nicolson on the Gaussian part, "pCN-Langevin"): ``b = 2h/(2+h)``,
    ``c = sqrt(8h)/(2+h)``, so ``s' - s* = a (s - s*) - b M grad Phi + c M^{1/2} z`` with
    ``a^2 + c^2 = 1`` and ``Phi`` the non-Gaussian remainder of ``F/T``: on an exactly
    Gaussian target every proposal is accepted, and ``h = 2`` draws independent states;
    ``h`` is capped at 2 there.
    ``K = min(n, settings.chains)`` chains per input run together as one batch of ``B K``
    states; each input adapts its own ``h`` during burn-in (Robbins-Monro on ``log h``, and
    a tenfold cut when fewer than 1% of the proposals would be accepted three steps running).
    ``s_min`` (B, n_free) is the minimum of ``F`` when already known. Works for any
    energy model with ``energy``, ``grad``, ``hessian`` (resistive or oscillator).
    With ``check``, a sampler whose chains never move raises :class:`ConvergenceError` and
    poor acceptance or ESS warns (:class:`SamplerWarning`).
    """
    T, u, s_min = chain_start(model, theta, u, temperature, n, s_min, cost, targets, beta)
    B, nf = s_min.shape
    nudged = cost is not None and beta != 0.0
    d = None if not nudged else np.broadcast_to(np.atleast_2d(targets), (B, cost.n_targets))
    H = model.hessian(theta, u, s_min)
    if nudged:
        H = H + beta * cost.hessian(nf)
    P, R = _precision_and_root(H, T, settings.preconditioned)

    K = min(n, settings.chains)
    m = -(-n // K)
    dd = None if d is None else np.repeat(d, K, axis=0)
    energy = energy_function(model, theta, np.repeat(u, K, axis=0))

    def potential(s):
        flat = s.reshape(B * K, nf)
        F, g = energy(flat)
        if nudged:
            F = F + beta * cost.value(flat, dd)
            g = g + beta * cost.grad(flat, dd)
        return F.reshape(B, K) / T, g.reshape(B, K, nf) / T

    def apply(Mat, x):                                   # (B, n, n) @ (B, K, n), batched BLAS
        return x @ np.swapaxes(Mat, -1, -2)

    def drift(s, gU):                                     # M grad U with M = R R^T
        return apply(R, apply(np.swapaxes(R, -1, -2), gU))

    s = s_min[:, None, :] + apply(R, rng.standard_normal((B, K, nf)))
    U, gU = potential(s)
    Mg = drift(s, gU)
    cn = settings.scheme == "cn"
    log_h_max = np.log(2.0 if cn else 3.9)
    log_h = np.full(B, log_h_max if cn and settings.preconditioned else np.log(0.5))
    steps = settings.burn_in + m * settings.thin
    kept = np.empty((B, K, m, nf))
    kept_U = np.empty((B, K, m))
    accepted = np.zeros(B)
    stuck_steps = np.zeros(B, dtype=int)
    for it in range(steps):
        h = np.exp(log_h)[:, None, None]
        b, c = (2.0 * h / (2.0 + h), np.sqrt(8.0 * h) / (2.0 + h)) if cn else (0.5 * h, np.sqrt(h))
        z = rng.standard_normal((B, K, nf))
        prop = s - b * Mg + c * apply(R, z)
        U2, gU2 = potential(prop)
        Mg2 = drift(prop, gU2)
        back = s - prop + b * Mg2
        log_q_back = -np.sum((back @ P) * back, axis=-1) / (2.0 * c[..., 0] ** 2)
        log_q_fwd = -0.5 * np.sum(z * z, axis=-1)
        log_a = -(U2 - U) + log_q_back - log_q_fwd
        log_a = np.where(np.isfinite(log_a), log_a, -np.inf)
        acc = np.log(rng.random((B, K))) < log_a
        s = np.where(acc[..., None], prop, s)
        U = np.where(acc, U2, U)
        Mg = np.where(acc[..., None], Mg2, Mg)
        if it < settings.burn_in:
            rate = np.mean(np.minimum(1.0, np.exp(np.minimum(log_a, 0.0))), axis=1)
            # Robbins-Monro on log h; a step that (almost) nothing survives three times in a
            # row shrinks tenfold (one bad start, e.g. a Laplace draw deep in a diode's
            # exponential, must not cripple the step)
            stuck_steps = np.where(rate < 0.01, stuck_steps + 1, 0)
            shrink = np.where(stuck_steps >= 3, np.log(10.0), 0.0)
            log_h = np.clip(log_h + (rate - settings.target) / np.sqrt(it + 1.0) - shrink,
                            np.log(1e-6), log_h_max)
        else:
            accepted += acc.mean(axis=1)
            k, r = divmod(it - settings.burn_in, settings.thin)
            if r == settings.thin - 1:
                kept[:, :, k] = s
                kept_U[:, :, k] = U
    acceptance = accepted / (m * settings.thin)
    ess, pooled = chain_ess(kept, kept_U, n)
    diag = MCMCDiagnostics(acceptance, ess, np.exp(log_h), n, K, pooled)
    if check:
        check_diagnostics(diag, settings)
    samples = np.swapaxes(kept, 1, 2).reshape(B, K * m, nf)[:, :n]
    return samples, diag


def chain_ess(kept: np.ndarray, kept_U: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    """ESS per input (B,) of ``n`` samples kept as ``kept`` (B, K chains, m, n_free) with
    energies ``kept_U`` (B, K, m): the minimum over the free coordinates and the energy,
    multi-chain (:func:`effective_sample_size`) or, for chains shorter than
    :data:`MIN_DRAWS_PER_CHAIN`, the pooled lag-1 estimate (then ``pooled`` is True)."""
    B, K, m, _ = kept.shape
    stats = np.concatenate([kept, kept_U[..., None]], axis=-1)
    pooled = m < MIN_DRAWS_PER_CHAIN
    if not pooled:
        return effective_sample_size(stats).min(axis=-1) * n / (K * m), False
    if m >= 2:
        return np.full(B, n * min(1.0, pooled_lag1_ess_fraction(stats))), True
    return np.full(B, float(n)), True            # one draw per chain: independent chains


def check_diagnostics(diag: MCMCDiagnostics, settings: MCMCSettings) -> None:
    """Raise if some input's chains never moved; warn on extreme acceptance or small ESS.

    Acceptance near 1 is a symptom only for classic MALA (steps too small); the
    Crank-Nicolson scheme accepts nearly everything on a near-Gaussian target by design.
    Short chains are judged by the pooled lag-1 estimate (see :class:`MCMCDiagnostics`)."""
    stuck = np.flatnonzero(diag.acceptance == 0.0)
    if stuck.size:
        raise ConvergenceError(f"{diag.sampler} chains never moved for inputs {stuck.tolist()} "
                               f"(acceptance 0, step {diag.step[stuck].min():.2e}); "
                               "the temperature may be far too low, or so high that the thermal swing "
                               "drives diodes deep into forward bias (lower T), or the network stiff")
    problems, kinds = [], []
    low = diag.acceptance < 0.05
    high = diag.acceptance > 0.995 if settings.scheme == "euler" else np.zeros_like(low)
    if low.any() or high.any():
        kinds.append("acceptance")
        problems.append(f"acceptance {diag.acceptance.min():.3f}-{diag.acceptance.max():.3f} "
                        "outside [0.05, 0.995]")
    if np.any(diag.ess < settings.min_ess_fraction * diag.samples):
        kinds.append("ess")
        problems.append(f"ESS {diag.ess.min():.0f} < {settings.min_ess_fraction:g} x "
                        f"{diag.samples} samples ({SLOW_MIXING_ADVICE})")
    key = (tuple(kinds), diag.samples, diag.chains, settings)
    if problems and key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(f"{diag.sampler} diagnostics: " + "; ".join(problems) + f" [{diag.summary()}]; later "
                      "runs with the same problem and settings warn no more (see the diagnostics "
                      "each sampler returns)", SamplerWarning, stacklevel=3)


#: What the slow-mixing warning advises: a sampler spec (``--sampler``) that exists.
SLOW_MIXING_ADVICE = ("the chain mixes slowly and the stated standard errors allow for it; longer "
                      "chains raise it: a sampler spec such as 'mala:thin=4,burn_in=50' "
                      "(EmulatedBoard(sampler=...), --sampler), or MCMCSettings(thin=, burn_in=)")

#: Problems already warned about, per (kinds, samples, chains, settings): a training run
#: repeats the same sampling thousands of times and must not repeat the warning.
_WARNED: set = set()

