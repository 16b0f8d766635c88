"""Equilibria and thermal samples of oscillator networks, whose state lives on a torus.

**Equilibrium** (:func:`solve_torus`) minimises ``F = E + beta C`` over the free phases.
``F`` is periodic and has several local minima, so the solver

1. starts from a documented point: every free oscillator aligned with the drive of its
   clamped neighbours and its own field, ``phi_i = arg(sum_(clamped j) J_ij e^(i phi_j) +
   a_i + i c_i)`` (0 where that drive vanishes), plus ``restarts - 1`` uniform random
   starts; a given ``s0`` (the free equilibrium, for a nudged solve) replaces them all;
2. runs a batched modified Newton method from every start: the step solves with
   ``|H|`` (the Hessian's eigenvalues replaced by their absolute values, floored), so it
   descends away from saddles, capped at ``pi/2`` per phase, with a backtracking (Armijo)
   line search on ``F``; it stops when every torque is below ``tol`` times the largest
   torque the oscillator can feel (:meth:`OscillatorModel.node_scale`);
3. keeps the points whose Hessian is positive definite (smallest eigenvalue above
   ``eig_tol`` times the node scale): a converged saddle is kicked along its negative
   curvature and Newton resumes; a point that stays a saddle or degenerate is an error,
   because EP needs a stable minimum;
4. reports the distinct minima found (up to ``2 pi`` wraps), returns the lowest, and
   says how many minima were found, the energy gap to the next one and the smallest
   Hessian eigenvalue of the chosen one.

A group of free oscillators with no non-zero coupling to a clamped oscillator and no
field has a zero mode (the group rotates freely): an error naming the group.

**Sampling** (:func:`sample_torus`) draws from ``p(s) ~ exp(-F(s)/T)`` on the torus with
many vectorised chains of the Metropolis-adjusted Langevin algorithm (MALA, exact) or the
unadjusted Langevin algorithm, preconditioned by ``T H^-1`` at the minimum. ``F`` is
2 pi-periodic, so a proposal made in the unwrapped coordinates and accepted with the
unwrapped Metropolis-Hastings ratio leaves the wrapped Boltzmann distribution invariant;
angles are wrapped into ``[-pi, pi)`` after every step. :func:`basin_visits` quenches
samples to the minima they belong to and counts how often each basin is visited: the
thermal ``<C>`` averages over every visited basin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ConvergenceError
from ..models.periodic_cost import require_periodic
from ..models.oscillator import OscillatorModel, wrap
from .sampling import effective_sample_size

#: Default temperature of oscillator networks (coupling units): phase fluctuations of
#: about 0.1-0.2 rad on the bundled networks; a graph attribute ``temperature`` overrides it.
OSCILLATOR_DEFAULT_TEMPERATURE = 0.02

#: Seed of the random restarts when the caller passes no generator (keeps solves pure).
RESTART_SEED = 20240607
#: Wrapped distance (rad) below which two minima are the same.
SAME_MINIMUM = 1e-6
#: Largest Newton step per phase (rad).
MAX_STEP = np.pi / 2


@dataclass(frozen=True)
class TorusEquilibrium:
    """A minimum of ``F = E + beta C`` for each input of a batch.

    s: (B, n_free) phases in ``[-pi, pi)``; energy: (B,) ``F`` there; min_eigenvalue:
    (B,) smallest eigenvalue of the Hessian of ``F``; n_minima: (B,) distinct minima found
    among the starts; gap: (B,) ``F`` of the next-lowest minimum found minus ``F`` here
    (inf when only one was found); visits: (B,) starts that ended in the chosen minimum;
    starts: starts per input; iterations: Newton iterations; residual: largest relative
    torque at the returned points.
    """

    s: np.ndarray
    energy: np.ndarray
    min_eigenvalue: np.ndarray
    n_minima: np.ndarray
    gap: np.ndarray
    visits: np.ndarray
    starts: int
    iterations: int
    residual: float

    def report(self) -> dict:
        """Plain summary (JSON-friendly) of the basins found."""
        return {"starts": self.starts, "n_minima": self.n_minima.tolist(),
                "energy": self.energy.tolist(), "gap": self.gap.tolist(),
                "visits": self.visits.tolist(), "min_eigenvalue": self.min_eigenvalue.tolist(),
                "iterations": self.iterations, "residual": self.residual}


def _objective(model, theta, u, s, cost, targets, beta):
    F = model.energy(theta, u, s)
    g = model.grad(theta, u, s)
    if cost is not None and beta != 0.0:
        F = F + beta * cost.value(s, targets)
        g = g + beta * cost.grad(s, targets)
    return F, g


def _hessian(model, theta, u, s, cost, targets, beta):
    H = model.hessian(theta, u, s)
    if cost is not None and beta != 0.0:
        H = H + beta * cost.hessian_at(s, targets)
    return H


def _rows(x, idx):
    """Rows ``idx`` of a batch array that may have a single broadcast row."""
    if x is None:
        return None
    x = np.atleast_2d(x)
    return x if len(x) == 1 else x[idx]


def _check(model, cost, beta):
    if not isinstance(model, OscillatorModel):
        raise ConfigError(f"the torus solver needs an OscillatorModel, got {type(model).__name__}")
    if beta != 0.0:
        if cost is None:
            raise ConfigError("nudging (beta != 0) needs a cost")
        require_periodic(cost)
    if not np.isfinite(beta):
        raise ConfigError(f"beta must be finite, got {beta}")


def check_zero_modes(model: OscillatorModel, theta) -> None:
    """Raise ConvergenceError naming every group of free oscillators with a zero mode."""
    groups = model.zero_mode_groups(theta)
    if groups:
        parts = ["{" + ", ".join(g) + "}" for g in groups]
        raise ConvergenceError("free oscillators " + "; ".join(parts) + " have no non-zero coupling to a "
                               "clamped oscillator and no field: the group rotates freely (a zero "
                               "mode of the Hessian), so no minimum is stable")


def documented_start(model: OscillatorModel, theta, u: np.ndarray) -> np.ndarray:
    """Each free phase aligned with its clamped neighbours' pull and its field, (B, n_free):
    ``arg(sum_(clamped j) J_ij e^(i phi_j) + a_i + i c_i)``, 0 where that sum vanishes."""
    u = model.check_inputs(u)
    P = model.phases(np.zeros((1, model.n_free)), u)
    J = model.couplings(theta)
    a, c = model.fields(theta)
    z = np.broadcast_to(a + 1j * c, (len(P), model.n_free)).astype(complex)
    pos = model.free_pos
    for end, other in ((model.e_a, model.e_b), (model.e_b, model.e_a)):
        sel = (pos[end] >= 0) & (pos[other] < 0)
        contrib = J[sel] * np.exp(1j * P[:, other[sel]])
        np.add.at(z, (slice(None), pos[end[sel]]), contrib)
    return np.where(np.abs(z) > 1e-12, np.angle(z), 0.0)


def _newton(model, theta, u, s, cost, targets, beta, tol, eig_tol, max_iter, max_kicks=5):
    """Batched modified Newton from the rows of ``s``; returns s, F, lam_min, iterations,
    relative residual per row. Rows are independent; ``u``/``targets`` have one row or
    one per row of ``s``."""
    s = np.array(s, dtype=float)
    R, n = s.shape
    scale = model.node_scale(theta)
    if cost is not None and beta != 0.0:
        scale = scale.copy()
        scale[list(cost.index)] += abs(beta)
    scale = np.maximum(scale, 1e-300)
    floor = eig_tol * float(np.max(scale))
    F, g = _objective(model, theta, u, s, cost, targets, beta)
    lam_min = np.full(R, np.nan)
    kicks = np.zeros(R, dtype=int)
    done = np.zeros(R, dtype=bool)
    res = np.max(np.abs(g) / scale, axis=1)
    it = 0
    for it in range(max_iter + 1):
        idx = np.flatnonzero(~done)
        if idx.size == 0:
            break
        H = _hessian(model, theta, _rows(u, idx), s[idx], cost, _rows(targets, idx), beta)
        lam, V = np.linalg.eigh(H)
        lam_min[idx] = lam[:, 0]
        conv = res[idx] <= tol
        stable = lam[:, 0] > floor
        fin = conv & (stable | (kicks[idx] >= max_kicks))
        done[idx[fin]] = True
        saddle = conv & ~fin
        if saddle.any():
            rows = idx[saddle]
            kicks[rows] += 1
            s[rows] = s[rows] + 0.1 * V[saddle, :, 0]
            F[rows], g[rows] = _objective(model, theta, _rows(u, rows), s[rows], cost,
                                          _rows(targets, rows), beta)
            res[rows] = np.max(np.abs(g[rows]) / scale, axis=1)
        move = ~conv
        if it == max_iter or not move.any():
            continue
        rows = idx[move]
        lam_m, V_m = np.maximum(np.abs(lam[move]), floor), V[move]
        step = -np.einsum("rij,rj->ri", V_m, np.einsum("rji,rj->ri", V_m, g[rows]) / lam_m)
        big = np.max(np.abs(step), axis=1)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(big, 1e-300))[:, None]
        s_new, F_new, g_new = _line_search(model, theta, u, s[rows], F[rows], g[rows], step,
                                           rows, cost, targets, beta)
        s[rows], F[rows], g[rows] = s_new, F_new, g_new
        res[rows] = np.max(np.abs(g_new) / scale, axis=1)
    return wrap(s), F, lam_min, it, res, done


def _line_search(model, theta, u, s, F, g, step, rows, cost, targets, beta):
    """Backtracking Armijo search along ``step``; accepts a step that leaves F unchanged to
    round-off (there the residual, not F, measures progress)."""
    t = np.ones(len(s))
    slope = np.sum(g * step, axis=1)
    todo = np.ones(len(s), dtype=bool)
    s_new, F_new, g_new = s.copy(), F.copy(), g.copy()
    for _ in range(50):
        k = np.flatnonzero(todo)
        if k.size == 0:
            break
        trial = s[k] + t[k, None] * step[k]
        Ft, gt = _objective(model, theta, _rows(u, rows[k]), trial, cost, _rows(targets, rows[k]), beta)
        ok = (Ft <= F[k] + 1e-4 * t[k] * slope[k]) | (np.abs(Ft - F[k]) <= 1e-13 * (1.0 + np.abs(F[k])))
        acc = k[ok]
        s_new[acc], F_new[acc], g_new[acc] = trial[ok], Ft[ok], gt[ok]
        todo[acc] = False
        t[k[~ok]] *= 0.5
    return s_new, F_new, g_new


def _distinct(S: np.ndarray, F: np.ndarray, ok: np.ndarray):
    """Per input, distinct minima among R candidates. S (R, B, n), F (R, B), ok (R, B).
    Returns order (R, B) candidates sorted by F (non-minima last), is_new (R, B) marking the
    first occurrence of each distinct minimum in that order."""
    Fm = np.where(ok, F, np.inf)
    order = np.argsort(Fm, axis=0, kind="stable")
    Ss = np.take_along_axis(S, order[:, :, None], axis=0)
    oks = np.take_along_axis(ok, order, axis=0)
    R = len(S)
    is_new = np.zeros_like(oks)
    for r in range(R):
        if r == 0:
            is_new[0] = oks[0]
            continue
        d = np.max(np.abs(wrap(Ss[:r] - Ss[r][None])), axis=2)           # (r, B)
        seen = np.any((d < SAME_MINIMUM) & is_new[:r], axis=0)
        is_new[r] = oks[r] & ~seen
    return order, is_new, Ss


def solve_torus(model: OscillatorModel, theta, u, *, cost=None, targets=None, beta: float = 0.0,
                s0: np.ndarray | None = None, restarts: int = 4, rng: np.random.Generator | None = None,
                tol: float = 1e-10, eig_tol: float = 1e-8, max_iter: int = 200,
                extra_starts: int = 0) -> TorusEquilibrium:
    """Minimise ``F = E(theta, u, s) + beta C(s, targets)`` over the free phases.

    ``u`` is (B, n_inputs) phases (rad), ``targets`` (B, n_outputs) phases. Without ``s0``
    the solver runs from the documented start and ``restarts - 1`` uniform random starts
    drawn from ``rng`` (default: a generator seeded with :data:`RESTART_SEED`) and returns
    the lowest minimum found; with ``s0`` (B, n_free) it runs from ``s0`` alone (a nudged
    solve warm-started at the free equilibrium stays in its basin), or from ``s0`` and
    ``extra_starts`` uniform random starts, again returning the lowest minimum. Raises
    ConvergenceError if a start does not converge in ``max_iter`` iterations, if no start
    reaches a stable minimum (saddle or degenerate point), or if a group of free
    oscillators has a zero mode. Cost O(restarts * B * iterations * n_free^3).
    """
    _check(model, cost, beta)
    theta = model.check_theta(theta)
    u = model.check_inputs(u)
    check_zero_modes(model, theta)
    n = model.n_free
    if s0 is not None:
        s0 = np.asarray(s0, dtype=float)
        if not np.all(np.isfinite(s0)):
            raise ConfigError("the starting phases s0 contain NaN or infinite values")
    B = max(len(u), 1 if s0 is None else len(np.atleast_2d(s0)),
            1 if targets is None else len(np.atleast_2d(targets)))
    u = np.broadcast_to(u, (B, u.shape[1]))
    if targets is not None:
        targets = np.broadcast_to(np.atleast_2d(np.asarray(targets, dtype=float)), (B, cost.n_targets))
    if s0 is not None:
        starts = np.broadcast_to(np.atleast_2d(s0), (B, n))[None]
        if extra_starts:
            rng = rng if rng is not None else np.random.default_rng(RESTART_SEED)
            starts = np.concatenate([starts, rng.uniform(-np.pi, np.pi, size=(extra_starts, B, n))], axis=0)
    else:
        if restarts < 1:
            raise ConfigError(f"restarts must be >= 1, got {restarts}")
        rng = rng if rng is not None else np.random.default_rng(RESTART_SEED)
        first = documented_start(model, theta, u)
        rand = rng.uniform(-np.pi, np.pi, size=(restarts - 1, B, n))
        starts = np.concatenate([first[None], rand], axis=0)
    R = len(starts)
    S, F, lam, iters, res, done = _newton(
        model, theta, np.tile(u, (R, 1)), starts.reshape(R * B, n), cost,
        None if targets is None else np.tile(targets, (R, 1)), beta, tol, eig_tol, max_iter)
    if not done.all():
        bad = int(np.flatnonzero(~done)[0])
        raise ConvergenceError(f"equilibrium did not converge in {max_iter} Newton iterations for "
                               f"input {bad % B} (start {bad // B}): relative torque {res[bad]:.3e} > {tol:.1e}")
    floor = eig_tol * float(np.max(model.node_scale(theta)))
    S, F, lam = S.reshape(R, B, n), F.reshape(R, B), lam.reshape(R, B)
    ok = lam > floor
    if not ok.any(axis=0).all():
        b = int(np.flatnonzero(~ok.any(axis=0))[0])
        kind = "a saddle" if np.min(lam[:, b]) < -floor else "a degenerate stationary point"
        raise ConvergenceError(f"input {b}: every start ended at {kind} of the energy (smallest Hessian "
                               f"eigenvalue {np.max(lam[:, b]):.3e}); EP needs a stable minimum")
    order, is_new, Ss = _distinct(S, F, ok)
    Fs = np.take_along_axis(np.where(ok, F, np.inf), order, axis=0)
    lams = np.take_along_axis(lam, order, axis=0)
    n_min = is_new.sum(axis=0)
    Fnew = np.where(is_new, Fs, np.inf)
    second = np.sort(Fnew, axis=0)[1] if R > 1 else np.full(B, np.inf)
    d0 = np.max(np.abs(wrap(Ss - Ss[0][None])), axis=2)
    visits = np.sum((d0 < SAME_MINIMUM) & np.take_along_axis(ok, order, axis=0), axis=0)
    return TorusEquilibrium(s=Ss[0], energy=Fs[0], min_eigenvalue=lams[0], n_minima=n_min,
                            gap=second - Fs[0], visits=visits, starts=R, iterations=int(iters),
                            residual=float(np.max(res)))


# ----- sampling ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TorusSamples:
    """Samples of ``exp(-F/T)`` on the torus for each input of a batch.

    samples: (B, N, n_free) phases in ``[-pi, pi)``, draws of the chains interleaved
    (sample ``t * chains + k`` is draw ``t`` of chain ``k``); acceptance: (B,) mean
    Metropolis acceptance (1 for unadjusted Langevin); step: (B,) final step size (in units
    of the preconditioner ``T H^-1``); rhat: (B,) split-R-hat of ``F`` across chains (near 1
    when the chains mix); ess: (B,) effective sample size of ``F``.
    """

    samples: np.ndarray
    acceptance: np.ndarray
    step: np.ndarray
    rhat: np.ndarray
    ess: np.ndarray

    def report(self) -> dict:
        return {"acceptance": self.acceptance.tolist(), "step": self.step.tolist(),
                "rhat": self.rhat.tolist(), "ess": self.ess.tolist()}


def _preconditioner(H: np.ndarray, temperature: float):
    """Per input: M = T H^-1 (or T/lambda_max if H is not positive definite), its Cholesky
    factor L and its inverse P, each (B, n, n)."""
    lam, V = np.linalg.eigh(H)
    top = np.maximum(lam[:, -1:], 1e-12)
    lam = np.where(lam > 1e-6 * top, lam, top)          # floor non-positive directions
    M = np.einsum("bij,bj,bkj->bik", V, temperature / lam, V)
    P = np.einsum("bij,bj,bkj->bik", V, lam / temperature, V)
    return M, np.linalg.cholesky(M), P


def sample_torus(model: OscillatorModel, theta, u, *, temperature: float, n_samples: int,
                 rng: np.random.Generator, cost=None, targets=None, beta: float = 0.0,
                 chains: int = 16, burn: int = 200, thin: int = 2, method: str = "mala",
                 start: str = "minimum", s0: np.ndarray | None = None, step: float | None = None,
                 target_accept: float = 0.574, restarts: int = 4) -> TorusSamples:
    """Draw ``n_samples`` phases per input from ``p(s) ~ exp(-(E + beta C)/T)``.

    ``temperature`` T > 0 (coupling units). ``chains`` independent chains per input start
    at the minimum ``s0`` (default: :func:`solve_torus`) plus a Gaussian draw of covariance
    ``T H^-1`` (``start="minimum"``), or uniformly on the torus (``start="uniform"``, to
    explore every basin). The first ``burn`` iterations adapt the step size towards the
    acceptance ``target_accept`` (MALA) and are discarded; then every ``thin``-th state is
    kept. MALA proposal, with ``U = F/T`` and ``M = T H^-1`` (H at the minimum):
    ``y = x - (h/2) M grad U(x) + sqrt(h) L xi``, ``L L^T = M``; ``method="langevin"`` accepts
    every proposal (bias O(h); ``step`` then defaults to 0.05). Cost O(B * chains *
    (burn + thin * N / chains) * (edges + n_free^2)).
    """
    _check(model, cost, beta)
    if not temperature > 0 or not np.isfinite(temperature):
        raise ConfigError(f"temperature must be a positive number (coupling units), got {temperature}")
    if n_samples < 1 or chains < 1 or burn < 0 or thin < 1:
        raise ConfigError(f"need n_samples >= 1, chains >= 1, burn >= 0, thin >= 1; got "
                          f"{n_samples}, {chains}, {burn}, {thin}")
    if method not in ("mala", "langevin"):
        raise ConfigError(f"unknown sampler {method!r}; expected 'mala' or 'langevin'")
    if start not in ("minimum", "uniform"):
        raise ConfigError(f"unknown chain start {start!r}; expected 'minimum' or 'uniform'")
    theta = model.check_theta(theta)
    u = model.check_inputs(u)
    if s0 is None:
        s0 = solve_torus(model, theta, u, cost=cost, targets=targets, beta=beta, restarts=restarts).s
    s0 = np.atleast_2d(np.asarray(s0, dtype=float))
    B, n, K = max(len(u), len(s0)), model.n_free, chains
    u = np.broadcast_to(u, (B, u.shape[1]))
    s0 = np.broadcast_to(s0, (B, n))
    if targets is not None:
        targets = np.broadcast_to(np.atleast_2d(np.asarray(targets, dtype=float)), (B, cost.n_targets))
    T = float(temperature)
    M, L, P = _preconditioner(_hessian(model, theta, u, s0, cost, targets, beta), T)
    u_rep = np.repeat(u, K, axis=0)
    t_rep = None if targets is None else np.repeat(targets, K, axis=0)

    def U_and_grad(x):
        F, g = _objective(model, theta, u_rep, x.reshape(B * K, n), cost, t_rep, beta)
        return F.reshape(B, K) / T, g.reshape(B, K, n) / T, F.reshape(B, K)

    if start == "minimum":
        x = s0[:, None, :] + np.einsum("bij,bkj->bki", L, rng.standard_normal((B, K, n)))
    else:
        x = rng.uniform(-np.pi, np.pi, size=(B, K, n))
    x = wrap(x)
    h = np.full(B, step if step is not None else (0.05 if method == "langevin" else 1.0 / max(n, 1) ** (1 / 3)))
    Ux, gx, Fx = U_and_grad(x)
    D = -(-n_samples // K)
    kept = np.empty((B, D, K, n))
    trace = np.empty((B, K, D))
    acc_sum, acc_n = np.zeros(B), 0
    total = burn + D * thin
    for it in range(total):
        drift_x = x - 0.5 * h[:, None, None] * np.einsum("bkj,bij->bki", gx, M)
        y = drift_x + np.sqrt(h)[:, None, None] * np.einsum("bij,bkj->bki", L, rng.standard_normal((B, K, n)))
        Uy, gy, Fy = U_and_grad(y)
        if method == "mala":
            drift_y = y - 0.5 * h[:, None, None] * np.einsum("bkj,bij->bki", gy, M)
            r_f, r_b = y - drift_x, x - drift_y
            log_qf = -np.einsum("bki,bij,bkj->bk", r_f, P, r_f) / (2 * h[:, None])
            log_qb = -np.einsum("bki,bij,bkj->bk", r_b, P, r_b) / (2 * h[:, None])
            log_a = np.minimum(0.0, Ux - Uy + log_qb - log_qf)
            accept = np.log(rng.uniform(size=(B, K))) < log_a
            a_rate = np.exp(log_a).mean(axis=1)
        else:
            accept = np.ones((B, K), dtype=bool)
            a_rate = np.ones(B)
        x = np.where(accept[..., None], wrap(y), x)
        Ux, gx, Fx = (np.where(accept, Uy, Ux), np.where(accept[..., None], gy, gx), np.where(accept, Fy, Fx))
        if it < burn:
            if method == "mala" and step is None:
                h = h * np.exp((a_rate - target_accept) / np.sqrt(it + 1.0))
        else:
            acc_sum += accept.mean(axis=1)
            acc_n += 1
            j = it - burn
            if (j + 1) % thin == 0:
                kept[:, j // thin] = x
                trace[:, :, j // thin] = Fx
    samples = kept.reshape(B, D * K, n)[:, :n_samples]
    return TorusSamples(samples=samples, acceptance=acc_sum / max(acc_n, 1), step=h,
                        rhat=_split_rhat(trace),
                        ess=effective_sample_size(trace[..., None])[:, 0] * n_samples / (K * D))


def _split_rhat(trace: np.ndarray) -> np.ndarray:
    """Split-R-hat (Gelman et al.) of a trace (B, K, D) over chains and halves -> (B,)."""
    B, K, D = trace.shape
    if D < 4:
        return np.full(B, np.nan)
    h = D // 2
    x = np.concatenate([trace[:, :, :h], trace[:, :, h:2 * h]], axis=1)
    m = x.mean(axis=2)
    W = x.var(axis=2, ddof=1).mean(axis=1)
    Bv = h * m.var(axis=1, ddof=1)
    var = (h - 1) / h * W + Bv / h
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(W > 0, np.sqrt(var / W), 1.0)


@dataclass(frozen=True)
class BasinVisits:
    """The minima thermal samples belong to, per input: minima[b] (k_b, n_free) phases,
    energies[b] (k_b,) ``F`` there (ascending), fractions[b] (k_b,) the share (or weight) of
    the quenched samples that fell into each, quenched: samples quenched per input."""

    minima: list
    energies: list
    fractions: list
    quenched: int

    def report(self) -> dict:
        return {"n_basins": [len(e) for e in self.energies],
                "energies": [e.tolist() for e in self.energies],
                "fractions": [f.tolist() for f in self.fractions], "quenched": self.quenched}


def basin_visits(model: OscillatorModel, theta, u, samples: np.ndarray, *, cost=None, targets=None,
                 beta: float = 0.0, max_quench: int = 256, weights: np.ndarray | None = None,
                 tol: float = 1e-9, eig_tol: float = 1e-8) -> BasinVisits:
    """Quench samples (B, N, n_free) to the minima they descend to (modified Newton with
    line search from each sample, so ``F`` only decreases) and count the visits of each.

    At most ``max_quench`` samples per input, evenly spaced, are quenched. ``weights``
    (B, N) weigh the points instead of counting them (e.g. Boltzmann weights of a
    quadrature grid, for an exact reference). Points that end at a saddle or degenerate
    point are not counted.
    """
    _check(model, cost, beta)
    theta = model.check_theta(theta)
    u = model.check_inputs(u)
    samples = np.asarray(samples, dtype=float)
    if samples.ndim == 2:
        samples = samples[None]
    B, N, n = samples.shape
    pick = np.unique(np.linspace(0, N - 1, min(N, max_quench)).round().astype(int))
    Q = len(pick)
    w = np.ones((B, Q)) if weights is None else np.broadcast_to(np.asarray(weights, dtype=float), (B, N))[:, pick]
    w = (w / w.sum(axis=1, keepdims=True)).T                                   # (Q, B)
    x = samples[:, pick].transpose(1, 0, 2).reshape(Q * B, n)
    u = np.broadcast_to(u, (B, u.shape[1]))
    tq = None if targets is None else np.tile(np.broadcast_to(np.atleast_2d(targets), (B, cost.n_targets)), (Q, 1))
    S, F, lam, _, _, done = _newton(model, theta, np.tile(u, (Q, 1)), x, cost, tq, beta, tol, eig_tol, 200)
    floor = eig_tol * float(np.max(model.node_scale(theta)))
    S, F = S.reshape(Q, B, n), F.reshape(Q, B)
    ok = (lam > floor).reshape(Q, B) & done.reshape(Q, B)
    order, is_new, Ss = _distinct(S, F, ok)
    oks = np.take_along_axis(ok, order, axis=0)
    Fs = np.take_along_axis(F, order, axis=0)
    ws = np.take_along_axis(w, order, axis=0)
    minima, energies, fractions = [], [], []
    for b in range(B):
        reps = Ss[is_new[:, b], b]
        d = np.max(np.abs(wrap(Ss[:, b][:, None, :] - reps[None])), axis=2)     # (Q, k)
        member = (d < 1e-4) & oks[:, b, None]
        minima.append(reps)
        energies.append(Fs[is_new[:, b], b])
        fractions.append(ws[:, b] @ member)
    return BasinVisits(minima=minima, energies=energies, fractions=fractions, quenched=Q)
