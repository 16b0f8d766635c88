"""Gradient rules for quantum networks (docs/PHYSICS.md, section 2).

Objective: the expected cost ``L = <C>`` of the network's state for one input, with
``C = 1/2 sum_o (X_o - d_o)^2``; ``dH/dtheta_k`` is ``X_i X_j`` (J), ``X_i`` (b), ``Z_i`` (h).
Every rule returns per-sample values (a :class:`QuantumGradients`) so a trainer can average
them, skip near-degenerate samples and combine standard errors.

Eigenstate ``n`` (the ground state is ``n = 0``):

- ``ep`` (nudged): ``dL/dtheta = d/dbeta <dH/dtheta>_(n, beta) at 0``, estimated from the
  states of ``H + beta C`` followed by continuity (largest overlap with the free state):
  centred ``(<.>_(+beta) - <.>_(-beta)) / 2 beta`` (bias ``O(beta^2)``, the default) or
  one-sided ``(<.>_beta - <.>_0) / beta`` (bias ``O(beta)``). With ``shots`` the
  expectations come from emulated projective measurements (:func:`measure_locals`).
- ``exact``: ``dL/dtheta = 2 Re sum_(m != n) <n|C|m><m|dH/dtheta|n> / (E_n - E_m)
  = 2 <chi| dH/dtheta |n>`` with ``chi = d|n>/dbeta`` solving
  ``(H - E_n) chi = -Q C |n>``, ``Q = 1 - |n><n|``. ``solver="minres"`` solves it with
  MINRES from the Lanczos state alone (no spectrum; 16 qubits and more);
  ``solver="spectral"`` sums over the full dense spectrum.
- ``fd``: centred finite differences of ``L`` in each parameter (two eigensolves per
  parameter), the state followed by continuity.

Gibbs state ``rho = exp(-H/T) / Z`` (``temperature=T``, dense, at most 10 qubits):

- ``ep``: ``d Tr(rho C)/dtheta = d/dbeta Tr(rho_beta dH/dtheta) at 0``, exact for
  non-commuting operators because ``F = -T ln Tr exp(-(H + beta C)/T)`` has
  ``dF/dbeta = <C>`` and ``dF/dtheta = <dH/dtheta>``.
- ``exact``: minus ``1/T`` times the Kubo-Mori (Bogoliubov) correlation,
  ``-(1/T)[int_0^1 Tr(rho^l C rho^(1-l) B) dl - <C><B>]``, from one eigendecomposition:
  ``sum_(m,k) C_mk B_km (p_m - p_k)/(E_m - E_k) + <C><B>/T`` (the ratio tends to
  ``-p_m/T`` on equal levels). The plain symmetrised covariance is wrong unless the
  operators commute.
- ``fd``: finite differences of ``Tr(rho C)``.

A near-degenerate followed level has no gradient: the gap to the nearest level must exceed
``gap_tol`` (default :func:`gap_tolerance`, ``2 beta ||C||``: below it the nudge
``beta C`` can close the gap, Weyl's inequality). Such a sample raises
:class:`~analog_ep.models.quantum.DegenerateLevelError`, or with ``skip_degenerate=True``
is marked invalid (``valid[b] = False``, NaN values).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, minres

from ..errors import ConfigError, ConvergenceError
from ..models.harmonic import HarmonicModel
from ..models.quantum import (QubitModel, DegenerateLevelError, Spectrum, follow_state,
                              level_gap, solve_levels, walsh_hadamard)

RULES = ("ep", "exact", "fd")
#: Default ``gap_tol = GAP_FACTOR * beta * ||C||`` with ``||C|| = sum_o |d_o|``.
GAP_FACTOR = 2.0
#: Smallest gap tolerance, whatever beta (double-precision eigensolvers resolve ~1e-12).
GAP_FLOOR = 1e-9
#: A nudged level must overlap the free one by at least this (squared) to be followed.
MIN_OVERLAP = 0.5
#: Relative residual of the MINRES solve of ``(H - E_n) chi = -Q C |n>``.
MINRES_RTOL = 1e-12
#: One-sided nudging warns above this beta (its bias is O(beta), not O(beta^2)).
ONE_SIDED_WARN_BETA = 0.1
#: Dense batches are cut so that one chunk holds at most this many matrix entries.
_DENSE_CHUNK_ENTRIES = 1 << 23


@dataclass(frozen=True)
class QuantumGradients:
    """Per-sample results of a quantum gradient rule.

    ``loss (B,)``: ``<C>`` of the free state; ``gradient (B, P)``; ``stderr (B, P)`` for
    shot estimates (None when exact); ``gap (B,)``: distance of the followed level to the
    nearest other level (``inf`` for Gibbs states); ``valid (B,)``: False for skipped
    near-degenerate samples (their values are NaN).
    """

    loss: np.ndarray
    gradient: np.ndarray
    stderr: np.ndarray | None
    gap: np.ndarray
    valid: np.ndarray


def gap_tolerance(beta: float, d: np.ndarray) -> np.ndarray:
    """``(B,)`` default smallest allowed gap: ``max(GAP_FLOOR, GAP_FACTOR beta sum_o |d_o|)``.

    The nudge ``beta C`` moves every level by at most ``beta ||C - const|| = beta sum |d_o|``,
    so two levels closer than twice that may cross while nudging.
    """
    return np.maximum(GAP_FLOOR, GAP_FACTOR * abs(beta) * np.sum(np.abs(d), axis=1))


def _check_shots(shots: int | None) -> int | None:
    if shots is None:
        return None
    if isinstance(shots, bool) or not float(shots).is_integer() or shots < 1:
        raise ConfigError(f"shots must be an integer >= 1 (or None for exact expectations); got {shots!r}")
    return int(shots)


def _check_rule_options(rule: str, beta: float, shots, rng) -> tuple[float, int | None]:
    """Validated ``beta`` and ``shots``; shots need the ep rule and a generator."""
    beta, shots = _check_beta(beta), _check_shots(shots)
    if shots is not None and rule != "ep":
        raise ConfigError(f"shots apply to the measured ep rule, not to {rule!r}")
    if shots is not None and rng is None:
        raise ConfigError("a shot-noise estimate needs rng (a numpy Generator)")
    return beta, shots

def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not np.isfinite(beta) or beta <= 0.0:
        raise ConfigError(f"beta must be a positive nudging strength; got {beta}")
    return beta


def _chunks(model: QubitModel, batch: int, method: str) -> list[slice]:
    size = max(1, _DENSE_CHUNK_ENTRIES // model.dim ** 2) if method == "dense" else batch
    return [slice(a, min(a + size, batch)) for a in range(0, batch, size)]


# ------------------------------------------------------------------ measurement emulation
def measure_locals(model: QubitModel, probs_x: np.ndarray, probs_z: np.ndarray | None,
                   shots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shot estimates of ``<dH/dtheta_k>`` and the variance of each estimate.

    ``probs_x (B, dim)``: outcome probabilities of one X-basis setting (every qubit measured
    in the X basis); its ``shots`` outcomes give every ``<X_i X_j>`` and ``<X_i>`` at once.
    ``probs_z (B, dim)``: probabilities of one Z-basis setting (``shots`` more preparations)
    for the ``h`` parameters, or None when no ``h`` is trained. Outcomes are drawn as
    multinomial counts over basis states, so the cost is ``O(B dim P)`` whatever ``shots``.
    Returns ``(mean (B, P), var_of_mean (B, P))`` with the unbiased sample variance over
    ``shots - 1`` (``inf`` for a single shot).
    """
    P = len(model.param_names)
    mean = np.empty((len(probs_x), P))
    var = np.empty((len(probs_x), P))

    def tally(probs: np.ndarray, table: np.ndarray, cols: np.ndarray) -> None:
        p = np.clip(probs, 0.0, None)
        counts = rng.multinomial(shots, p / p.sum(axis=1, keepdims=True)).astype(float)
        m = counts @ table / shots
        m2 = counts @ table ** 2 / shots
        mean[:, cols] = m
        var[:, cols] = (np.maximum(m2 - m ** 2, 0.0) * shots / (shots - 1) / shots
                        if shots > 1 else np.inf)

    tally(probs_x, model._diag_ops, model._diag_params)
    if len(model._flip_params):
        if probs_z is None:
            raise ConfigError("Z-basis probabilities are needed for the trained h fields")
        zvals = model.xs[:, model.param_slot[model._flip_params]]  # Z_i = +-1 on Z-basis states
        tally(probs_z, zvals, model._flip_params)
    return mean, var


def _pure_locals(model: QubitModel, psi: np.ndarray, shots: int | None,
                 rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``<psi|dH/dtheta|psi>`` exactly, or estimated from ``shots`` per basis setting."""
    if shots is None:
        return model.local_terms(psi, psi), None
    probs_z = walsh_hadamard(psi) ** 2 if len(model._flip_params) else None
    return measure_locals(model, psi ** 2, probs_z, shots, rng)


def _combine(locs: list[np.ndarray], vars_: list[np.ndarray | None], betas: tuple[float, float]
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Difference quotient ``(L_a - L_b) / (beta_a - beta_b)`` and its standard error."""
    step = betas[0] - betas[1]
    grad = (locs[0] - locs[1]) / step
    if vars_[0] is None:
        return grad, None
    return grad, np.sqrt(vars_[0] + vars_[1]) / abs(step)


# ------------------------------------------------------------------ eigenstate rules
def _free_state(model, theta, u, state, method, gap_tol, n_levels):
    spec = solve_levels(model, theta, u, n_levels=n_levels, method=method)
    if spec.energies.shape[1] <= state:
        raise ConfigError(f"state {state} does not exist: {model.source} has {model.dim} levels")
    psi = spec.vectors[:, :, state]
    gap = level_gap(spec.energies, state)
    return spec, psi, gap, gap >= gap_tol


def _raise_degenerate(gap: np.ndarray, tol: np.ndarray, valid: np.ndarray, offset: int, state: int):
    s = int(np.flatnonzero(~valid)[0])
    raise DegenerateLevelError(
        f"level {state} of sample {offset + s} is nearly degenerate: gap {gap[s]:.3g} < "
        f"tolerance {tol[s]:.3g}; its gradient is not defined (change the input or the "
        f"parameters, or lower beta)", gap=float(gap[s]), tol=float(tol[s]), sample=offset + s)


def eigenstate_gradients(model: QubitModel, theta: np.ndarray, u: np.ndarray, d: np.ndarray, *,
                         rule: str = "ep", state: int = 0, beta: float = 0.05,
                         symmetric: bool = True, shots: int | None = None,
                         rng: np.random.Generator | None = None, method: str | None = None,
                         solver: str = "auto", fd_step: float = 1e-5,
                         gap_tol: float | None = None, skip_degenerate: bool = False
                         ) -> QuantumGradients:
    """Gradient of ``<n|C|n>`` for each input, by ``rule`` in ``("ep", "exact", "fd")``.

    ``u (B, n_inputs)``, ``d (B, n_outputs)`` in [-1, 1]; ``state`` the eigen-index n;
    ``beta`` the nudging strength (also sets the default gap tolerance); ``shots``
    preparations per phase and basis setting (``ep`` only; None = exact expectations);
    ``method`` the eigensolver (see :meth:`QubitModel.choose_method`); ``solver`` for
    ``exact``: ``"spectral"`` (dense), ``"minres"`` or ``"auto"`` (dense -> spectral).
    Cost: ``ep`` 2 (3 one-sided) eigensolves per input; ``exact`` 1 eigensolve + 1 linear
    solve; ``fd`` ``1 + 2P`` eigensolves.
    """
    if rule not in RULES:
        raise ConfigError(f"unknown rule {rule!r}; use one of {', '.join(RULES)}")
    beta, shots = _check_rule_options(rule, beta, shots, rng)
    if rule == "ep" and not symmetric and beta > ONE_SIDED_WARN_BETA:
        warnings.warn(f"one-sided EP with beta = {beta} has an O(beta) bias; use the centred "
                      f"(symmetric) estimator or a smaller beta", stacklevel=2)
    if int(state) != state or state < 0:
        raise ConfigError(f"state must be an eigen-index >= 0; got {state!r}")
    u = model.check_inputs(u)
    d = model.check_targets(d, len(u))
    theta = np.asarray(theta, dtype=float)
    method = model.choose_method(method)
    if solver == "auto":
        solver = "spectral" if method == "dense" else "minres"
    if solver not in ("spectral", "minres"):
        raise ConfigError(f"unknown solver {solver!r}; use spectral, minres or auto")
    if solver == "spectral" and method != "dense":
        raise ConfigError("the spectral solver needs the full spectrum: use method='dense'")
    tol_all = (gap_tolerance(beta, d) if gap_tol is None else np.full(len(u), float(gap_tol)))
    B, P = len(u), len(model.param_names)
    loss, gap = np.full(B, np.nan), np.full(B, np.nan)
    grad = np.full((B, P), np.nan)
    stderr = np.full((B, P), np.nan) if shots is not None else None
    valid = np.zeros(B, dtype=bool)
    for sl in _chunks(model, B, method):
        uc, dc, tol = u[sl], d[sl], tol_all[sl]
        levels = model.dim if (rule == "exact" and solver == "spectral") else state + 2
        spec, psi, g, ok = _free_state(model, theta, uc, state, method, tol, levels)
        if not skip_degenerate and not ok.all():
            _raise_degenerate(g, tol, ok, sl.start, state)
        cd = model.cost_diagonal(dc)
        loss[sl], gap[sl] = np.einsum("bx,bx->b", psi ** 2, cd), g
        if rule == "ep":
            gr, se, ok = _ep(model, theta, uc, cd, psi, spec.vectors, state, beta, symmetric, shots,
                             rng, method, ok, skip_degenerate, sl.start)
        elif rule == "exact":
            gr, se = _exact(model, theta, uc, cd, spec, psi, state, solver), None
        else:
            gr, se, ok = _fd(model, theta, uc, cd, psi, spec.vectors, state, fd_step, method, ok,
                             skip_degenerate, sl.start)
        grad[sl] = np.where(ok[:, None], gr, np.nan)
        if se is not None:
            stderr[sl] = np.where(ok[:, None], se, np.nan)
        valid[sl] = ok
        loss[sl] = np.where(ok, loss[sl], np.nan)
    return QuantumGradients(loss, grad, stderr, gap, valid)


def _follow(spec: Spectrum, psi: np.ndarray, ok: np.ndarray, skip: bool, offset: int):
    """Follow every still-valid sample; with ``skip``, a crossing marks the sample invalid."""
    try:
        return follow_state(spec, psi, min_overlap=MIN_OVERLAP), ok
    except DegenerateLevelError as exc:
        if not skip:
            raise DegenerateLevelError(str(exc).replace(f"sample {exc.sample}",
                                                        f"sample {offset + exc.sample}"),
                                       exc.gap, exc.tol, offset + exc.sample) from None
    overlaps = np.abs(np.einsum("bx,bxm->bm", psi, spec.vectors)).max(axis=1) ** 2
    ok = ok & (overlaps >= MIN_OVERLAP)
    fixed = Spectrum(spec.energies, np.where(ok[:, None, None], spec.vectors, psi[:, :, None]))
    return follow_state(fixed, psi, min_overlap=0.0), ok


def _ep(model, theta, u, cd, psi, start, state, beta, symmetric, shots, rng, method, ok, skip, offset):
    """Nudged solves started from the free levels (``start``, see :func:`solve_levels`)."""
    betas = (beta, -beta) if symmetric else (beta, 0.0)
    locs, vars_ = [], []
    for bt in betas:
        if bt == 0.0:
            vec = psi
        else:
            spec = solve_levels(model, theta, u, n_levels=state + 2, extra_diagonal=bt * cd,
                                method=method, start=start)
            (_, vec), ok = _follow(spec, psi, ok, skip, offset)
        loc, var = _pure_locals(model, vec, shots, rng)
        locs.append(loc), vars_.append(var)
    grad, se = _combine(locs, vars_, betas)
    return grad, se, ok


def _exact(model, theta, u, cd, spec, psi, state, solver):
    """``2 <chi|dH/dtheta|n>`` with ``chi = -(H - E_n)^+ Q C |n>``."""
    if solver == "spectral":
        V, E = spec.vectors, spec.energies
        coef = np.einsum("bxm,bx->bm", V, cd * psi)          # <m|C|n>
        denom = E[:, state:state + 1] - E                      # E_n - E_m
        denom[:, state] = np.inf
        chi = np.einsum("bxm,bm->bx", V, coef / denom)
        return 2.0 * model.local_terms(chi, psi)
    flip = model.flip_operator(theta)
    diag = model.diagonal(theta, u)
    chi = np.empty_like(psi)
    for s in range(len(u)):
        H = flip + sp.diags(diag[s])
        v, e_n = psi[s], spec.energies[s, state]
        # Deflated operator (H - E_n) + |n><n|: non-singular, equal to H - E_n on range(Q).
        A = LinearOperator(H.shape, matvec=lambda x, H=H, v=v, e=e_n: H @ x - e * x + v * (v @ x),
                           dtype=float)
        rhs = cd[s] * v
        rhs = -(rhs - v * (v @ rhs))
        x, info = minres(A, rhs, rtol=MINRES_RTOL, maxiter=20 * model.dim)
        if info > 0:
            raise ConvergenceError(f"MINRES did not converge for sample {s} of {model.source} "
                                   f"after {info} iterations")
        chi[s] = x - v * (v @ x)
    return 2.0 * model.local_terms(chi, psi)


def _fd(model, theta, u, cd, psi, start, state, step, method, ok, skip, offset):
    """Shifted solves started from the free levels, as EP's nudged ones are."""
    P = len(theta)
    grad = np.empty((len(u), P))
    for k in range(P):
        vals = []
        for sgn in (1.0, -1.0):
            t = theta.copy()
            t[k] += sgn * step
            spec = solve_levels(model, t, u, n_levels=state + 2, method=method, start=start)
            (_, vec), ok = _follow(spec, psi, ok, skip, offset)
            vals.append(np.einsum("bx,bx->b", vec ** 2, cd))
        grad[:, k] = (vals[0] - vals[1]) / (2.0 * step)
    return grad, None, ok


# ------------------------------------------------------------------ Gibbs states
@dataclass(frozen=True)
class GibbsState:
    """``rho = sum_m p_m |v_m><v_m|`` with ``p_m = exp(-(E_m - E_0)/T) / Z``.

    ``energies (B, dim)``, ``vectors (B, dim, dim)``, ``weights (B, dim)``, ``rho (B, dim, dim)``.
    """

    energies: np.ndarray
    vectors: np.ndarray
    weights: np.ndarray
    rho: np.ndarray


def gibbs_state(model: QubitModel, theta: np.ndarray, u: np.ndarray, temperature: float,
                extra_diagonal: np.ndarray | None = None) -> GibbsState:
    """Gibbs state of ``H + diag(extra_diagonal)`` at ``temperature`` from one ``eigh``."""
    spec = solve_levels(model, theta, u, n_levels=model.dim, extra_diagonal=extra_diagonal,
                        method="dense")
    E, V = spec.energies, spec.vectors
    w = np.exp(-(E - E[:, :1]) / temperature)
    w /= w.sum(axis=1, keepdims=True)
    rho = np.einsum("bxm,bm,bym->bxy", V, w, V)
    return GibbsState(E, V, w, rho)


def _kubo_mori_weights(E: np.ndarray, p: np.ndarray, T: float) -> np.ndarray:
    """``(B, dim, dim)`` ``W_mk = (p_m - p_k)/(E_m - E_k)``, ``-p_m/T`` on equal levels.

    Written as ``-(sqrt(p_m p_k)/T) sinh(y)/y`` with ``y = (E_m - E_k)/2T`` where
    ``|y| < 1`` (no cancellation), the plain quotient elsewhere.
    """
    dE = E[:, :, None] - E[:, None, :]
    y = dE / (2.0 * T)
    small = np.abs(y) < 1.0
    tiny = np.abs(y) < 1e-4
    ys = np.where(small & ~tiny, y, 1.0)
    shc = np.where(tiny, 1.0 + y ** 2 / 6.0, np.sinh(ys) / ys)
    near = -np.sqrt(p[:, :, None] * p[:, None, :]) / T * shc
    far = (p[:, :, None] - p[:, None, :]) / np.where(small, 1.0, dE)
    return np.where(small, near, far)


def gibbs_gradients(model: QubitModel, theta: np.ndarray, u: np.ndarray, d: np.ndarray, *,
                    temperature: float, rule: str = "exact", beta: float = 0.05,
                    symmetric: bool = True, shots: int | None = None,
                    rng: np.random.Generator | None = None, fd_step: float = 1e-5
                    ) -> QuantumGradients:
    """Gradient of ``Tr(rho C)`` with ``rho = exp(-H/T)/Z`` for each input (dense only).

    ``rule="exact"``: Kubo-Mori formula from one eigendecomposition per input, ``O(dim^3)``;
    ``"ep"``: nudged states ``rho_(+-beta)`` (with optional ``shots`` per phase and basis);
    ``"fd"``: finite differences. ``temperature`` in the Hamiltonian's units, > 0.
    """
    if rule not in RULES:
        raise ConfigError(f"unknown rule {rule!r}; use one of {', '.join(RULES)}")
    T = float(temperature)
    if not np.isfinite(T) or T <= 0.0:
        raise ConfigError(f"temperature must be > 0 (None selects an eigenstate); got {temperature}")
    beta, shots = _check_rule_options(rule, beta, shots, rng)
    model.choose_method("dense", full_spectrum=True)
    u = model.check_inputs(u)
    d = model.check_targets(d, len(u))
    theta = np.asarray(theta, dtype=float)
    B, P = len(u), len(model.param_names)
    loss, grad = np.empty(B), np.empty((B, P))
    stderr = np.empty((B, P)) if shots is not None else None
    for sl in _chunks(model, B, "dense"):
        uc, cd = u[sl], model.cost_diagonal(d[sl])
        st = gibbs_state(model, theta, uc, T)
        rho_diag = np.einsum("bxx->bx", st.rho)
        loss[sl] = np.einsum("bx,bx->b", rho_diag, cd)
        if rule == "exact":
            V = st.vectors
            Ct = np.einsum("bxm,bx,bxk->bmk", V, cd, V)
            M = np.einsum("bxm,bmk,byk->bxy", V, _kubo_mori_weights(st.energies, st.weights, T) * Ct, V)
            grad[sl] = model.operator_traces(M) + loss[sl][:, None] * model.operator_traces(st.rho) / T
        elif rule == "ep":
            betas = (beta, -beta) if symmetric else (beta, 0.0)
            locs, vars_ = [], []
            for bt in betas:
                sb = st if bt == 0.0 else gibbs_state(model, theta, uc, T, bt * cd)
                if shots is None:
                    locs.append(model.operator_traces(sb.rho)), vars_.append(None)
                    continue
                probs_z = None
                if len(model._flip_params):
                    probs_z = np.einsum("bm,bmx->bx", sb.weights,
                                        walsh_hadamard(np.swapaxes(sb.vectors, 1, 2)) ** 2)
                m, v = measure_locals(model, np.einsum("bxx->bx", sb.rho), probs_z, shots, rng)
                locs.append(m), vars_.append(v)
            grad[sl], se = _combine(locs, vars_, betas)
            if stderr is not None:
                stderr[sl] = se
        else:
            for k in range(P):
                vals = []
                for sgn in (1.0, -1.0):
                    t = theta.copy()
                    t[k] += sgn * fd_step
                    sk = gibbs_state(model, t, uc, T)
                    vals.append(np.einsum("bxx,bx->b", sk.rho, cd))
                grad[sl, k] = (vals[0] - vals[1]) / (2.0 * fd_step)
    return QuantumGradients(loss, grad, stderr, np.full(B, np.inf), np.ones(B, dtype=bool))


def quantum_gradients(model: QubitModel, theta: np.ndarray, u: np.ndarray, d: np.ndarray, *,
                      rule: str = "ep", state: int = 0, beta: float = 0.05,
                      symmetric: bool = True, shots: int | None = None,
                      temperature: float | None = None, rng: np.random.Generator | None = None,
                      method: str | None = None, gap_tol: float | None = None,
                      skip_degenerate: bool = False) -> QuantumGradients:
    """Eigenstate ``state`` (``temperature=None``) or Gibbs state (``temperature=T``) gradients."""
    if temperature is None:
        return eigenstate_gradients(model, theta, u, d, rule=rule, state=state, beta=beta,
                                    symmetric=symmetric, shots=shots, rng=rng, method=method,
                                    gap_tol=gap_tol, skip_degenerate=skip_degenerate)
    return gibbs_gradients(model, theta, u, d, temperature=temperature, rule=rule, beta=beta,
                           symmetric=symmetric, shots=shots, rng=rng)


# ------------------------------------------------------------------ harmonic networks
def harmonic_gradients(model: HarmonicModel, theta: np.ndarray, f: np.ndarray, d: np.ndarray, *,
                       rule: str = "ep", beta: float = 0.05, symmetric: bool = True,
                       fd_step: float = 1e-6) -> QuantumGradients:
    """Gradient of the ground-state ``<C>`` of a harmonic network for each input force.

    ``ep``: ``d/dbeta <dH/dk>_beta`` from the nudged Gaussian ground states;
    ``exact``: closed form ``dL/dk = -(lam . dK mu) + 1/4 Tr(S dK)`` with
    ``lam = K^-1 Pi (mu - d)``, ``S = V (G o V^T Pi V) V^T`` and the Daleckii-Krein
    divided differences ``G_ab = (lam_a^-1/2 - lam_b^-1/2)/(lam_a - lam_b)`` of
    ``K = V diag(lam) V^T``; ``fd``: finite differences. ``f (B, n_inputs)``, ``d (B, n_outputs)``.
    """
    if rule not in RULES:
        raise ConfigError(f"unknown rule {rule!r}; use one of {', '.join(RULES)}")
    beta = _check_beta(beta)
    theta = np.asarray(theta, dtype=float)
    f = np.atleast_2d(np.asarray(f, dtype=float))
    d = model.check_targets(d, len(f))
    mean, cov = model.ground_state(theta, f)
    loss = model.expected_cost(mean, cov, d)
    if rule == "ep":
        betas = (beta, -beta) if symmetric else (beta, 0.0)
        locs = [model.local_terms(*model.ground_state(theta, f, bt, d)) for bt in betas]
        grad, _ = _combine(locs, [None, None], betas)
    elif rule == "exact":
        K = model.stiffness(theta)
        lam_k, V = np.linalg.eigh(K)
        o = model.output_index
        resid = np.zeros_like(mean)
        resid[:, o] = mean[:, o] - d
        lam = np.linalg.solve(K, resid.T).T                      # (B, n), K symmetric
        f_half = lam_k ** -0.5
        diff = lam_k[:, None] - lam_k[None, :]
        same = np.abs(diff) <= 1e-12 * np.abs(lam_k).max()
        G = np.where(same, -0.5 * lam_k[:, None] ** -1.5,
                     (f_half[:, None] - f_half[None, :]) / np.where(same, 1.0, diff))
        VP = V[o, :]
        S = V @ (G * (VP.T @ VP)) @ V.T
        mean_part = np.empty((len(f), len(theta)))
        e, slot = model.param_is_edge, model.param_slot
        i, j = model.edges[slot[e], 0], model.edges[slot[e], 1]
        n = slot[~e]
        mean_part[:, e] = -(lam[:, i] - lam[:, j]) * (mean[:, i] - mean[:, j])
        mean_part[:, ~e] = -lam[:, n] * mean[:, n]
        var_part = np.empty(len(theta))
        var_part[e] = 0.25 * (S[i, i] + S[j, j] - 2 * S[i, j])
        var_part[~e] = 0.25 * S[n, n]
        grad = mean_part + var_part[None, :]
    else:
        grad = np.empty((len(f), len(theta)))
        for k in range(len(theta)):
            vals = []
            for sgn in (1.0, -1.0):
                t = theta.copy()
                t[k] += sgn * fd_step
                vals.append(model.expected_cost(*model.ground_state(t, f), d))
            grad[:, k] = (vals[0] - vals[1]) / (2.0 * fd_step)
    B = len(f)
    return QuantumGradients(loss, grad, None, np.full(B, np.inf), np.ones(B, dtype=bool))


def x_basis_probabilities(model: QubitModel, theta: np.ndarray, u: np.ndarray, *, state: int = 0,
                          temperature: float | None = None, method: str | None = None
                          ) -> np.ndarray:
    """``(B, dim)`` diagonal of the state in the X basis: ``|<x|n>|^2`` or ``<x|rho|x>``.

    Every read-out is linear in it: ``<X_o> = sum_x p(x) x_o`` and ``<C> = sum_x p(x) c(x)``.
    No gap check: a degenerate level gives some state of its eigenspace.
    """
    u = model.check_inputs(u)
    out = np.empty((len(u), model.dim))
    if temperature is not None:
        model.choose_method("dense", full_spectrum=True)
        for sl in _chunks(model, len(u), "dense"):
            out[sl] = np.einsum("bxx->bx", gibbs_state(model, theta, u[sl], float(temperature)).rho)
        return out
    method = model.choose_method(method)
    for sl in _chunks(model, len(u), method):
        spec = solve_levels(model, theta, u[sl], n_levels=state + 2, method=method)
        out[sl] = spec.vectors[:, :, state] ** 2
    return out


__all__ = ["QuantumGradients", "GibbsState", "RULES", "gap_tolerance", "measure_locals",
           "eigenstate_gradients", "gibbs_state", "gibbs_gradients", "quantum_gradients",
           "harmonic_gradients", "x_basis_probabilities"]
