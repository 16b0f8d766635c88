"""Block-Gibbs sampling of resistive networks: exact draws from ``p(s) ~ exp(-F(s)/T)``
one colour of free nodes at a time (formulas and why each draw is exact: docs/sampling.md).

``F = E + beta C`` is the (nudged) co-content in watts, ``T`` watts. Free nodes joined by no
element (and by no term of the cost) are conditionally independent given the others, so
the free nodes are coloured once per network (greedy colouring of the free-node graph,
built from the sparse incidence of resistors and diodes) and a sweep updates every node of
one colour at once, colour after colour. The conditional of free node ``i`` is

    F_i(v) = a_i v^2 / 2 - b_i v + sum_{diodes d at i} phi_d(sigma_d (v - c_d))

with ``a_i`` the conductance at ``i`` (plus ``beta d2C_ii``), ``b_i`` the current the
neighbours and sources drive into it, ``phi`` the diode co-content (convex), ``sigma_d =
+1`` at the anode and ``-1`` at the cathode, ``c_d`` the voltage of the diode's other end.
Nodes without diodes are drawn from their Gaussian conditional ``N(b_i/a_i, T/a_i)``; nodes
with diodes (log-concave conditionals) by rejection from the upper hull of three tangents
of ``-F_i/T`` (at the mode found by safeguarded Newton and at two points either side),
exact whatever the accuracy of the mode and of the points. Everything is vectorised over
the nodes of a colour, the inputs and the chains; memory and time per sweep are linear in
the number of elements.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, ConvergenceError
from ..models.resistive import _EXP_MAX, ResistiveModel
from .equilibrium import factorize_spd
from .sampling import (MCMCDiagnostics, MCMCSettings, chain_ess, chain_start, check_diagnostics,
                       correlated_noise)

#: Most colours for which the emulator's ``sampler="auto"`` picks block Gibbs.
MAX_COLOURS = 8

#: Default chain settings of the Gibbs sampler: 8 chains per input, 10 burn-in sweeps, every
#: sweep kept. (32 chains spread a sweep's fixed cost better on long runs, but the burn-in of
#: 4x the chains dominates the few samples per input of training; benchmarks/RESULTS.md.)
GIBBS_SETTINGS = MCMCSettings(chains=8, burn_in=10, thin=1)

#: Rejection rounds after which a conditional draw gives up (each round accepts at least
#: about a quarter of what is left; see docs/sampling.md).
MAX_ROUNDS = 200
#: Newton iterations of the conditional modes, until a step is below half the conditional's
#: width (then one more step): the mode only tightens the envelope, the draw is exact at
#: any accuracy.
MAX_NEWTON = 60
MODE_TOL = 0.5
#: Deepest log-density (below the mode's) at which a hull tangent is taken.
TANGENT_DEPTH = 40.0


# ----- colouring (once per network structure) ------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Block:
    """One colour: free positions ``pos`` and node indices ``nodes`` (ascending); ``lin`` /
    ``dio`` the local indices of its nodes without / with diodes; the diode slots of the
    ``dio`` nodes, grouped by node (``ptr`` into the slots, len(dio) + 1): diode index,
    sign (+1 at the anode) and the node index of the diode's other end."""

    pos: np.ndarray
    nodes: np.ndarray
    lin: np.ndarray
    dio: np.ndarray
    ptr: np.ndarray
    slot_diode: np.ndarray
    slot_sign: np.ndarray
    slot_other: np.ndarray


@dataclass(frozen=True, eq=False)
class Colouring:
    """Free nodes partitioned into colours, no two nodes of a colour joined by an element
    (or by the cost when it couples outputs): ``colour`` (n_free,) and the blocks."""

    colour: np.ndarray
    blocks: tuple[_Block, ...]

    @property
    def n_colours(self) -> int:
        return len(self.blocks)


def _cost_hessian_sparse(cost, n_free: int) -> sp.csr_matrix:
    """``d2C/ds2`` of a quadratic cost as a sparse (n_free, n_free) matrix."""
    idx = np.asarray(cost.index, dtype=np.intp)
    hb = cost.hess_block()
    r, c = np.nonzero(hb)
    return sp.csr_matrix((hb[r, c], (idx[r], idx[c])), shape=(n_free, n_free))


def free_node_graph(model: ResistiveModel, cost=None) -> sp.csr_matrix:
    """Adjacency pattern (n_free, n_free) of the free nodes: joined by a resistor or a diode
    (from the sparse incidence), or by the Hessian of ``cost`` when given."""
    inc = abs(sp.vstack([model.A_r, model.A_d]).tocsr()[:, model.free])
    adj = (inc.T @ inc).tocsr()
    if cost is not None:
        adj = adj + abs(_cost_hessian_sparse(cost, model.n_free))
    adj = sp.csr_matrix((np.ones(adj.nnz), adj.indices, adj.indptr), shape=adj.shape)
    adj.setdiag(0)
    adj.eliminate_zeros()
    return adj


def _blocks(model: ResistiveModel, colour: np.ndarray) -> tuple[_Block, ...]:
    ends = [(model.d_a, model.d_c, 1.0), (model.d_c, model.d_a, -1.0)]
    out = []
    for k in range(int(colour.max()) + 1 if len(colour) else 0):
        pos = np.flatnonzero(colour == k)
        local = np.full(model.n_nodes, -1)
        local[model.free[pos]] = np.arange(len(pos))
        owner, diode, sign, other = [], [], [], []
        for here, there, sgn in ends:
            at = np.flatnonzero(local[here] >= 0)
            owner.append(local[here[at]])
            diode.append(at)
            sign.append(np.full(len(at), sgn))
            other.append(there[at])
        owner, diode, sign, other = (np.concatenate(x) for x in (owner, diode, sign, other))
        order = np.argsort(owner, kind="stable")
        owner, diode, sign, other = owner[order], diode[order], sign[order], other[order]
        deg = np.bincount(owner, minlength=len(pos))
        dio = np.flatnonzero(deg > 0)
        out.append(_Block(pos=pos, nodes=model.free[pos], lin=np.flatnonzero(deg == 0), dio=dio,
                          ptr=np.concatenate([[0], np.cumsum(deg[dio])]), slot_diode=diode,
                          slot_sign=sign, slot_other=other))
    return tuple(out)


_COLOURINGS: "weakref.WeakKeyDictionary[ResistiveModel, dict]" = weakref.WeakKeyDictionary()


def colour_free_nodes(model: ResistiveModel, cost=None) -> Colouring:
    """Greedy colouring of the free-node graph (:func:`free_node_graph`), the fewer colours
    of the largest-first and breadth-first orders (the latter gives two colours on any
    bipartite graph: grids, layered networks). Cached per network and cost structure."""
    key = None if cost is None else (tuple(int(i) for i in cost.index), bool(getattr(cost, "differential", False)))
    cache = _COLOURINGS.setdefault(model, {})
    if key in cache:
        return cache[key]
    G = nx.from_scipy_sparse_array(free_node_graph(model, cost))
    best = None
    for strategy in ("largest_first", "connected_sequential_bfs"):
        c = nx.greedy_color(G, strategy=strategy)
        if best is None or max(c.values(), default=-1) < max(best.values(), default=-1):
            best = c
    colour = np.array([best[i] for i in range(model.n_free)], dtype=np.intp)
    cache[key] = Colouring(colour, _blocks(model, colour))
    return cache[key]


# ----- one-dimensional conditionals ----------------------------------------------------------
def _diode_terms(vd: np.ndarray, i_s: np.ndarray, nvt: np.ndarray, value_only: bool = False):
    """Co-content (W), current (A) and conductance (S) of diodes at voltages ``vd`` (the
    last two None with ``value_only``): the model's Shockley law, continued beyond
    ``_EXP_MAX`` as the model continues it."""
    x = vd / nvt
    if x.max(initial=0.0) <= _EXP_MAX:
        e = np.exp(x)
        phi = i_s * (nvt * (e - 1.0) - vd)
        return (phi, None, None) if value_only else (phi, i_s * (e - 1.0), i_s / nvt * e)
    xc = np.minimum(x, _EXP_MAX)
    e = np.exp(xc)
    dx = x - xc
    phi = i_s * (nvt * (e * (1.0 + dx + 0.5 * dx * dx) - 1.0) - vd)
    return phi, i_s * (e * (1.0 + dx) - 1.0), i_s / nvt * e


@dataclass(frozen=True, eq=False)
class _Conditionals:
    """``n`` independent conditionals ``F(v) = a v^2/2 - b v + sum_slots phi(sign (v - c))``;
    the slots of item ``j`` are ``ptr[j]:ptr[j+1]``, at least one each (``deg`` their
    number when it is the same for every item: sums are then reshapes)."""

    a: np.ndarray
    b: np.ndarray
    ptr: np.ndarray
    sign: np.ndarray
    c: np.ndarray
    i_s: np.ndarray
    nvt: np.ndarray
    deg: int | None = None

    @property
    def n(self) -> int:
        return len(self.a)

    def _sum(self, terms: np.ndarray) -> np.ndarray:
        if self.deg is not None and self.deg <= 4:      # strided adds beat a reduction over a short axis
            return sum(terms[j::self.deg] for j in range(1, self.deg)) + terms[0::self.deg]
        if self.deg is not None:
            return terms.reshape((self.n, self.deg) + terms.shape[1:]).sum(axis=1)
        return np.add.reduceat(terms, self.ptr[:-1], axis=0)

    def evaluate(self, v: np.ndarray, value_only: bool = False):
        """Diode co-content sum, ``F'`` and ``F''`` at ``v``, (n,) or (n, k) points per item
        (``value_only``: the sum alone)."""
        col = (slice(None),) + (None,) * (v.ndim - 1)
        x = np.repeat(v, self.deg, axis=0) if self.deg is not None else np.repeat(v, np.diff(self.ptr), axis=0)
        s = self.sign[col]
        phi, cur, cond = _diode_terms(s * (x - self.c[col]), self.i_s[col], self.nvt[col], value_only)
        if value_only:
            return self._sum(phi)
        a = self.a[col]
        return self._sum(phi), a * v - self.b[col] + self._sum(s * cur), a + self._sum(cond)

    def rise(self, x: np.ndarray, m: np.ndarray, Fd: np.ndarray, Fdm: np.ndarray) -> np.ndarray:
        """``F(m + x) - F(m)`` from the diode co-content sums ``Fd`` at ``m + x`` and ``Fdm`` at m."""
        col = (slice(None),) + (None,) * (x.ndim - 1)
        return x * (0.5 * self.a[col] * (x + 2.0 * m[col]) - self.b[col]) + Fd - Fdm[col]

    def subset(self, idx: np.ndarray) -> "_Conditionals":
        if len(idx) == self.n:
            return self
        counts = np.diff(self.ptr)[idx]
        ptr = np.concatenate([[0], np.cumsum(counts)])
        slots = np.repeat(self.ptr[idx] - ptr[:-1], counts) + np.arange(ptr[-1])
        return _Conditionals(self.a[idx], self.b[idx], ptr, self.sign[slots], self.c[slots],
                             self.i_s[slots], self.nvt[slots], self.deg)


def _bracket(cond: _Conditionals, v: np.ndarray, T: float) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` with ``F'(lo) <= 0 <= F'(hi)`` around each mode: from ``v``, probes
    downhill at a width (at least n V_t), doubling the distance until ``F'`` changes sign.
    Newton then works inside a bracket and bisects when it leaves it or stalls; without
    one, a start deep in a diode's forward region would creep back by n V_t a step."""
    _, g, h = cond.evaluate(v)
    down = -np.sign(g)
    d = np.maximum(np.sqrt(T / h), float(cond.nvt.min(initial=np.inf)))
    far = v.copy()
    todo = np.flatnonzero(g != 0)
    for _ in range(MAX_NEWTON):
        if not len(todo):
            break
        far[todo] = v[todo] + down[todo] * d[todo]
        _, gf, _ = cond.subset(todo).evaluate(far[todo])
        todo = todo[np.sign(gf) == np.sign(g[todo])]
        d[todo] *= 2.0
    else:
        raise ConvergenceError(f"no bracket of the conditional modes of {len(todo)} node(s) within "
                               f"2^{MAX_NEWTON} widths")
    return np.minimum(v, far), np.maximum(v, far)


def _modes(cond: _Conditionals, v: np.ndarray, T: float):
    """Safeguarded Newton on ``F'`` (increasing) from ``v``: a bracket from the signs of
    ``F'`` seen so far, bisection when a step leaves it; the set iterated on shrinks once
    most items have converged. Returns the last points where the derivatives were
    evaluated (their Newton steps below ``MODE_TOL`` widths), the diode co-content there,
    ``F'`` and ``F''``."""
    v = v.copy()
    n = cond.n
    lo, hi = _bracket(cond, v, T)
    last = np.full(n, np.inf)                 # the previous step's length
    nvt = float(cond.nvt.min(initial=np.inf))
    Fd, g, H = np.empty(n), np.empty(n), np.empty(n)
    active = np.arange(n)
    sub = cond
    for _ in range(MAX_NEWTON):
        va = v[active]
        fa, ga, ha = sub.evaluate(va)
        Fd[active], g[active], H[active] = fa, ga, ha
        la = lo[active] = np.where(ga < 0, va, lo[active])
        hb = hi[active] = np.where(ga > 0, va, hi[active])
        step = -ga / ha
        # a step within half a width, and within n V_t: over a longer one a diode's
        # curvature can grow e-fold, and the width with it shrink, so a point of low
        # curvature (a diode in reverse) would pass for the mode of a steep conditional
        done = (np.abs(step) <= MODE_TOL * np.sqrt(T / ha)) & (np.abs(step) <= nvt)
        if done.all():
            return v, Fd, g, H
        new = va + step
        # bisect when Newton leaves the bracket or does not halve the step (as rtsafe does):
        # past a diode's knee its steps are ~n V_t long, so an overshoot deep into forward
        # bias would otherwise take one step per n V_t to come back
        slow = np.isfinite(la) & np.isfinite(hb) & (np.abs(step) > 0.5 * last[active])
        bisect = (new <= la) | (new >= hb) | slow
        new = np.where(bisect, 0.5 * (la + hb), new)
        last[active] = np.abs(new - va)
        v[active] = np.where(done, va, new)
        if done.mean() > 0.5:
            keep = np.flatnonzero(~done)
            active = active[keep]
            sub = sub.subset(keep)
    raise ConvergenceError(f"the conditional modes of {len(active)} node(s) did not converge in "
                           f"{MAX_NEWTON} Newton iterations")


def _log_mean_exp_slope(t: np.ndarray) -> np.ndarray:
    """``log(expm1(t) / t)`` (0 at t = 0), stable for large |t|."""
    at = np.abs(t)
    small = at < 1e-12
    safe = np.where(small, 1.0, at)
    base = np.where(small, 0.0, np.log(-np.expm1(-safe) / safe))
    return np.where(t > 0, at + base, base)


#: Proposals per conditional in each rejection round after the first.
CANDIDATES = 4


def _sample_conditionals(cond: _Conditionals, v0: np.ndarray, T: float, rng: np.random.Generator):
    """One exact draw from each log-concave ``exp(-F_j/T)``, Newton started from ``v0``;
    returns the draws (n,), the modes (to start the next sweep's Newton from) and the
    number of proposals made."""
    v, _, g0, H0 = _modes(cond, v0, T)
    # one more Newton step, then the tangents at m and at m -+ sqrt(2) sigma (sigma the
    # Laplace width: where a Gaussian has fallen by e; docs/sampling.md), all three from one
    # evaluation; a point whose slope does not yet point towards the mode moves out,
    # doubling its distance. The draw is exact for any m, but the envelope is only tight
    # when m is within a width of the mode *at m*: Newton judged from a point of low
    # curvature (a diode in reverse, at high T) can stop far from a steep mode, which left
    # the hull far above the law and rejection accepting nothing. So m is checked with
    # the curvature at m, and Newton resumes from m where it is not there yet.
    m = v - g0 / H0
    for _ in range(MAX_NEWTON):
        _, gm, Hm = cond.evaluate(m)
        far = np.flatnonzero(np.abs(gm) > MODE_TOL * np.sqrt(T * Hm))
        if not len(far):
            break
        vf, _, gf, Hf = _modes(cond.subset(far), m[far], T)
        m[far] = vf - gf / Hf
    dx = np.sqrt(2.0 * T / Hm)
    Fd, g, _ = cond.evaluate(m[:, None] + np.stack([np.zeros_like(dx), -dx, dx], axis=1))
    Fdm, gm = Fd[:, 0], g[:, 0]
    X, Fd, g = np.stack([-dx, dx], axis=1), Fd[:, 1:], g[:, 1:]
    for _ in range(MAX_NEWTON):
        bad = np.flatnonzero((g[:, 0] >= 0) | (g[:, 1] <= 0))
        if not len(bad):
            break
        X[bad] *= np.where(np.stack([g[bad, 0] >= 0, g[bad, 1] <= 0], axis=1), 2.0, 1.0)
        Fd[bad], g[bad], _ = cond.subset(bad).evaluate(m[bad, None] + X[bad])
    h = -cond.rise(X, m, Fd, Fdm) / T
    # a tangent point deep in a diode's forward region (the log-density there far below
    # the mode's, e.g. 1e30 at high T) loses its intercept to cancellation, h + s (z - x)
    # of numbers that large: the hull's weights come out as noise and rejection never
    # accepts. Such points move halfway in, as long as their slopes still face the mode.
    frozen = np.zeros(len(X), dtype=bool)
    for _ in range(MAX_NEWTON):
        deep = np.flatnonzero(np.any(h < -TANGENT_DEPTH, axis=1) & ~frozen)
        if not len(deep):
            break
        Xn = np.where(h[deep] < -TANGENT_DEPTH, 0.5 * X[deep], X[deep])
        Fdn, gn, _ = cond.subset(deep).evaluate(m[deep, None] + Xn)
        faces = (gn[:, 0] < 0) & (gn[:, 1] > 0)
        frozen[deep[~faces]] = True
        take = deep[faces]
        X[take], Fd[take], g[take] = Xn[faces], Fdn[faces], gn[faces]
        h[take] = -cond.subset(take).rise(X[take], m[take], Fd[take], Fdm[take]) / T
    xl, xr, hl, hr, sl, sr = X[:, 0], X[:, 1], h[:, 0], h[:, 1], -g[:, 0] / T, -g[:, 1] / T
    sm = -gm / T
    if not (np.all(sl > sm) and np.all(sm > sr) and np.all(sl > 0) and np.all(sr < 0)):
        raise ConvergenceError("a conditional's tangent slopes do not bracket its mode (a "
                               "non-convex conditional energy: check the network's elements)")
    # the hull min(t_l, t_m, t_r) of the tangents t_p(x) = h_p + s_p (x - x_p), x = v - m
    z1 = (sl * xl - hl) / (sl - sm)
    z2 = (sr * xr - hr) / (sr - sm)
    mid = 0.5 * (z1 + z2)
    z1, z2 = np.where(z1 > z2, mid, z1), np.where(z1 > z2, mid, z2)
    w = z2 - z1
    t = sm * w
    with np.errstate(divide="ignore"):
        logw = np.stack([hl + sl * (z1 - xl) - np.log(sl),
                         sm * z1 + np.log(w) + _log_mean_exp_slope(t),
                         hr + sr * (z2 - xr) - np.log(-sr)], axis=1)
    logw -= logw.max(axis=1, keepdims=True)
    cum = np.cumsum(np.exp(logw), axis=1)
    cum = cum[:, :2] / cum[:, 2:]
    # the envelope of every conditional still waiting for its draw, one column per quantity
    env = [cum[:, 0], cum[:, 1], z1, z2, w, t, sl, sr, sm, hl, hr, xl, xr, m, Fdm]
    out = np.empty(cond.n)
    pending = np.arange(cond.n)
    sub = cond
    proposals = 0
    for rnd in range(MAX_ROUNDS):
        k, R = len(pending), 1 if rnd == 0 else CANDIDATES
        c0, c1, z1p, z2p, wp, tp, slp, srp, smp, hlp, hrp, xlp, xrp, mp, Fdp = (e[:, None] for e in env)
        U, E, V = rng.random((k, R)), rng.standard_exponential((k, R)), rng.random((k, R))
        # middle piece: inverse CDF of exp(s_m x) on [z1, z2], measured from the end the
        # density falls towards (no overflow of expm1)
        tt = -np.abs(tp)
        frac = np.where(tt > -1e-12, V, np.log1p(V * np.expm1(tt)) / np.where(tt == 0, -1.0, tt))
        x_mid = np.where(tp > 0, z2p - wp * frac, z1p + wp * frac)
        left, right = U < c0, U >= c1
        x = np.where(left, z1p - E / slp, np.where(right, z2p - E / srp, x_mid))
        hull = np.where(left, hlp + slp * (x - xlp), np.where(right, hrp + srp * (x - xrp), smp * x))
        mp, Fdp = mp[:, 0], Fdp[:, 0]
        Fd = sub.evaluate(mp[:, None] + x, value_only=True)
        ok = -rng.standard_exponential((k, R)) < -sub.rise(x, mp, Fd, Fdp) / T - hull
        if R == 1:
            got, xg = ok[:, 0], x[:, 0]
            proposals += k
        else:
            first = np.argmax(ok, axis=1)
            got = ok[np.arange(k), first]
            xg = x[np.arange(k), first]
            proposals += int(np.sum(np.where(got, first + 1, R)))
        out[pending[got]] = xg[got] + mp[got]
        keep = np.flatnonzero(~got)
        if not len(keep):
            return out, m, proposals
        pending, env = pending[keep], [e[keep] for e in env]
        sub = sub.subset(keep)
    raise ConvergenceError(f"rejection sampling of {len(pending)} conditional(s) accepted nothing in "
                           f"{MAX_ROUNDS} rounds")


# ----- the sampler ---------------------------------------------------------------------------
def sample_gibbs(model: ResistiveModel, theta: np.ndarray, u: np.ndarray, temperature: float, n: int,
                 rng: np.random.Generator, *, cost=None, targets=None, beta: float = 0.0,
                 settings: MCMCSettings = GIBBS_SETTINGS, s_min: np.ndarray | None = None,
                 colouring: Colouring | None = None,
                 check: bool = True) -> tuple[np.ndarray, MCMCDiagnostics]:
    """Boltzmann samples ``exp(-(E + beta C)/T)`` by block Gibbs; (B, n, n_free) volts.

    ``K = min(n, settings.chains)`` chains per input start from the Laplace approximation
    ``N(s*, T H^-1)`` at the minimum ``s*`` (``s_min`` (B, n_free) when already known),
    run ``settings.burn_in`` sweeps, then keep one state every ``settings.thin`` sweeps. A
    sweep draws every colour of ``colouring`` (default :func:`colour_free_nodes`, with the
    cost's couplings when nudged) exactly from its conditional. ``cost`` must be quadratic.
    Diagnostics as :func:`~analog_ep.physics.sampling.sample_mala`'s (acceptance is 1: every
    update is an exact conditional draw; ``detail`` gives the colours and the fraction of
    the rejection sampler's proposals accepted); with ``check`` poor ESS warns.
    """
    if not isinstance(model, ResistiveModel):
        raise ConfigError("block Gibbs sampling needs a resistive network")
    nudged = cost is not None and beta != 0.0
    if nudged and not getattr(cost, "quadratic", False):
        raise ConfigError("block Gibbs sampling needs a quadratic cost when nudged")
    T, u, s_min = chain_start(model, theta, u, temperature, n, s_min, cost, targets, beta)
    B, nf = s_min.shape
    if colouring is None:
        colouring = colour_free_nodes(model, cost if nudged else None)
    K = min(n, settings.chains)
    m = -(-n // K)
    M = B * K

    # F = 1/2 V^T A V - r^T s over all nodes V = (s, clamped): A = L + beta d2C (on the free
    # nodes), r = I - beta grad C(0); the conditional's b_i = r_i - (A V)_i + A_ii V_i
    A = model.laplacian(theta)
    r = np.broadcast_to(model.node_current[model.free], (B, nf)).copy()
    Hc = None
    if nudged:
        d = np.broadcast_to(np.atleast_2d(targets), (B, cost.n_targets))
        Hc = beta * _cost_hessian_sparse(cost, nf)
        S = sp.csr_matrix((np.ones(nf), (model.free, np.arange(nf))), shape=(model.n_nodes, nf))
        A = A + S @ Hc @ S.T
        r -= beta * cost.grad(np.zeros((B, nf)), d)
    A = A.tocsr()
    diag = A.diagonal()
    r_full = np.repeat(r.T, K, axis=1)                          # (n_free, M)

    Z = np.repeat(model.voltages(s_min, u).T, K, axis=1)        # (n_nodes, M)
    for b in range(B):                                          # Laplace start
        H = model.hessian_sparse(theta, u[b:b + 1], s_min[b:b + 1])
        if Hc is not None:
            H = H + Hc
        x = correlated_noise(factorize_spd(H.tocsc()), rng.standard_normal((K, nf)))
        Z[model.free, b * K:(b + 1) * K] += np.sqrt(T) * x.T

    plans = []
    for blk in colouring.blocks:
        deg = np.diff(blk.ptr)
        counts = np.repeat(deg, M)
        ptr = np.concatenate([[0], np.cumsum(counts)])
        # slot of every (node, chain, diode) triple, node-major: the node's slots for chain j
        local = np.arange(ptr[-1]) - np.repeat(ptr[:-1], counts)
        item = np.repeat(np.arange(len(counts)), counts)
        slot = blk.ptr[item // M] + local
        other = blk.slot_other[slot] * M + item % M               # into Z.ravel()
        dio = blk.slot_diode[slot]
        plans.append(dict(blk=blk, rows=A[blk.nodes], a=diag[blk.nodes], r=r_full[blk.pos], ptr=ptr,
                          sign=blk.slot_sign[slot], other=other, i_s=model.d_is[dio], nvt=model.d_nvt[dio],
                          a_items=np.repeat(diag[blk.nodes][blk.dio], M), modes=None,
                          deg=int(deg[0]) if len(deg) and np.all(deg == deg[0]) else None))

    def energies(Z):
        """``F`` of every chain's state (M,), up to a constant per input: the statistic whose
        ESS the diagnostics add to the coordinates'."""
        vd = Z[model.d_a] - Z[model.d_c]
        phi = _diode_terms(vd, model.d_is[:, None], model.d_nvt[:, None], True)[0].sum(axis=0)
        return 0.5 * np.einsum("nm,nm->m", Z, A @ Z) - np.einsum("fm,fm->m", r_full, Z[model.free]) + phi

    kept = np.empty((B, K, m, nf))
    kept_U = np.empty((B, K, m))
    sweeps = settings.burn_in + m * settings.thin
    accepted = proposals = 0.0
    for sweep in range(sweeps):
        for p in plans:
            blk, a = p["blk"], p["a"]
            Zb = Z[blk.nodes]
            bb = p["r"] - p["rows"] @ Z + a[:, None] * Zb
            if len(blk.lin):
                al = a[blk.lin][:, None]
                Z[blk.nodes[blk.lin]] = bb[blk.lin] / al + np.sqrt(T / al) * rng.standard_normal((len(blk.lin), M))
            if len(blk.dio):
                cond = _Conditionals(p["a_items"], bb[blk.dio].ravel(), p["ptr"], p["sign"],
                                     np.take(Z, p["other"]), p["i_s"], p["nvt"], p["deg"])
                start = Zb[blk.dio].ravel() if p["modes"] is None else p["modes"]
                v, p["modes"], made = _sample_conditionals(cond, start, T, rng)
                Z[blk.nodes[blk.dio]] = v.reshape(len(blk.dio), M)
                accepted += cond.n
                proposals += made
        if sweep >= settings.burn_in:
            k, rest = divmod(sweep - settings.burn_in, settings.thin)
            if rest == settings.thin - 1:
                kept[:, :, k] = Z[model.free].T.reshape(B, K, nf)
                kept_U[:, :, k] = energies(Z).reshape(B, K)

    ess, pooled = chain_ess(kept, kept_U, n)
    envelope = accepted / proposals if proposals else 1.0
    diag_ = MCMCDiagnostics(np.ones(B), ess, np.full(B, np.nan), n, K, pooled, sampler="Gibbs",
                            detail=f"{colouring.n_colours} colours, envelope acceptance {envelope:.3f}")
    if check:
        check_diagnostics(diag_, settings)
    return np.swapaxes(kept, 1, 2).reshape(B, K * m, nf)[:, :n], diag_

