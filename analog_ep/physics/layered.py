"""Exact equilibria of layered diode networks, the hot path of training.

A resistive network is *layered* when its free nodes split into layers ``1..L`` such that

* every resistor between two free nodes joins consecutive layers (no resistor inside a
  layer, no skip connection between free layers; resistors to clamped nodes are free),
* every diode joins a free node to a clamped node (input, bias or ground).

Then the Hessian of ``F = E + beta C`` is block tridiagonal, ``H = [[A_1, -W_1], [-W_1^T,
A_2, -W_2], ...]``, with diagonal blocks ``A_l = diag(G_l + g_d) (+ beta d2C_l)`` (``G_l``
the total conductance at each node, ``g_d`` the small-signal diode conductances, S) and the
conductance matrices ``W_l`` (n_l, n_{l+1}) between layers, shared by the whole batch.
Given its neighbours, each layer is a set of independent one-dimensional convex problems
(one Kirchhoff equation per node), which a safeguarded Newton-bisection solves exactly.

:func:`solve_layered` runs one such block-coordinate sweep from a cold start (none from a
warm start), then batched damped Newton whose linear systems are solved by block
elimination (block Thomas): the Schur complements ``S_{l+1} = A_{l+1} - W_l^T S_l^{-1} W_l``
cost ``O(B n_l n_{l+1}^2)``; the first layer's block stays diagonal. A 784x2-100-10x2
network with a batch of 50 costs a few hundred microseconds per Newton iteration instead of
the ``O(B n_free^3)`` of a dense solve. Convergence is the same relative Kirchhoff residual
as :func:`analog_ep.physics.equilibrium.solve_equilibrium`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import ConvergenceError
from ..models.resistive import _EXP_MAX, ResistiveModel
from .result import Equilibrium

_STRUCTURES: "weakref.WeakKeyDictionary[ResistiveModel, LayeredStructure | None]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class LayeredStructure:
    """Index arrays of a layered resistive network, in *layer order* of the free nodes.

    ``perm`` lists free-state positions layer after layer (``x = s[:, perm]``) and
    ``bounds`` the slice limits of each layer in that order. Free-free resistors are
    ``ff_res`` (resistor index) joining ``ff_i`` (layer ``ff_layer``) to ``ff_j`` (next
    layer), both local positions; free-clamped resistors are ``fc_res`` from free position
    ``fc_free`` (layer order) to clamped column ``fc_col`` of ``clamped``; diodes join layer
    position ``d_free`` to clamped node ``d_node`` with ``d_sign = +1`` when the free node is
    the anode.
    """

    perm: np.ndarray
    inv: np.ndarray
    bounds: tuple[int, ...]
    ff_res: np.ndarray
    ff_layer: np.ndarray
    ff_i: np.ndarray
    ff_j: np.ndarray
    fc_res: np.ndarray
    fc_free: np.ndarray
    fc_col: np.ndarray
    clamped: np.ndarray
    d_free: np.ndarray
    d_node: np.ndarray
    d_sign: np.ndarray
    d_is: np.ndarray
    d_nvt: np.ndarray
    d_dense: np.ndarray                # (n_diodes, n_free): d_sign at d_free
    d_abs: np.ndarray                  # |d_dense|
    cache: dict = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return len(self.bounds) - 1

    def layer(self, l: int) -> slice:
        return slice(self.bounds[l], self.bounds[l + 1])

    def sizes(self) -> list[int]:
        return [self.bounds[l + 1] - self.bounds[l] for l in range(self.n_layers)]

    def __repr__(self) -> str:
        return f"LayeredStructure(layers={self.sizes()}, diodes={len(self.d_free)})"

    # ----- per-parameter arrays ----------------------------------------------------------
    def params(self, model: ResistiveModel, theta) -> "_Params":
        """Dense blocks at ``theta`` (``None``: the graph's conductances); the last one is
        cached (three phases share it)."""
        theta = model.default_theta if theta is None else np.asarray(theta, dtype=float)
        last = self.cache.get("params")
        if last is not None and last.theta.shape == theta.shape and np.array_equal(last.theta, theta):
            return last
        g = model.conductances(theta)
        sizes = self.sizes()
        W = [np.zeros((sizes[l], sizes[l + 1])) for l in range(self.n_layers - 1)]
        for l in range(self.n_layers - 1):
            sel = self.ff_layer == l
            np.add.at(W[l], (self.ff_i[sel], self.ff_j[sel]), g[self.ff_res[sel]])
        n = self.bounds[-1]
        K = np.zeros((n, len(self.clamped)))
        np.add.at(K, (self.fc_free, self.fc_col), g[self.fc_res])
        D0 = K.sum(axis=1)
        for l in range(self.n_layers - 1):
            D0[self.layer(l)] += W[l].sum(axis=1)
            D0[self.layer(l + 1)] += W[l].sum(axis=0)
        # Q_l[i, j*n + k] = W[i, j] W[i, k]: the Schur complement of a diagonal block is
        # (1/a) @ Q_l, one matrix product for the whole batch.
        Q = [(Wl[:, :, None] * Wl[:, None, :]).reshape(len(Wl), -1) for Wl in W]
        p = _Params(theta=theta.copy(), W=W, K=K, D0=D0, Q=Q)
        self.cache["params"] = p
        return p


    def drive(self, model: ResistiveModel, p: "_Params", u) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Current driven into each free node by the clamped nodes and fixed sources (B, n),
        its rounding scale ``sum |g V_c| + |I|`` (B, n), and each diode's clamped-end
        voltage (B, n_diodes). The last one is cached (the phases of a step share it)."""
        u = model.check_inputs(u)
        last = self.cache.get("drive")
        if last is not None and last[0] is p and last[1].shape == u.shape and np.array_equal(last[1], u):
            return last[2]
        V = model.voltages(np.zeros((1, model.n_free)), u)
        Vc = V[:, self.clamped]
        I_f = model.node_current[model.free][self.perm]
        out = (Vc @ p.K.T + I_f, np.abs(Vc) @ p.K.T + np.abs(I_f), V[:, self.d_node])
        self.cache["drive"] = (p, u.copy(), out)
        return out


@dataclass(frozen=True, eq=False)
class _Params:
    theta: np.ndarray
    W: list
    K: np.ndarray
    D0: np.ndarray
    Q: list


def layered_structure(model: ResistiveModel) -> LayeredStructure | None:
    """The layer decomposition of ``model``, or None when it is not layered (see module
    docstring). Layers are breadth-first distances from the inputs through free nodes.
    Cached per model."""
    try:
        return _STRUCTURES[model]
    except KeyError:
        pass
    st = _build(model)
    _STRUCTURES[model] = st
    return st


def _build(model: ResistiveModel) -> LayeredStructure | None:
    n, pos = model.n_free, model.free_pos
    if n == 0 or len(model.inputs) == 0:
        return None
    if len(model.d_a) and np.any((pos[model.d_a] >= 0) == (pos[model.d_c] >= 0)):
        return None                           # a diode between two free or two clamped nodes
    pa, pb = pos[model.r_a], pos[model.r_b]
    ff = (pa >= 0) & (pb >= 0)
    adj = sp.csr_matrix((np.ones(2 * ff.sum()), (np.r_[pa[ff], pb[ff]], np.r_[pb[ff], pa[ff]])),
                        shape=(n, n))
    is_input = np.zeros(model.n_nodes, bool)
    is_input[model.inputs] = True
    first = np.unique(np.r_[pa[is_input[model.r_b] & (pa >= 0)], pb[is_input[model.r_a] & (pb >= 0)]])
    level = np.full(n, -1)
    level[first] = 0
    frontier, k = first, 0
    while frontier.size:
        k += 1
        nxt = np.unique(adj[frontier].indices)
        nxt = nxt[level[nxt] < 0]
        level[nxt] = k
        frontier = nxt
    if np.any(level < 0) or np.any(np.abs(level[pa[ff]] - level[pb[ff]]) != 1):
        return None
    perm = np.argsort(level, kind="stable")
    inv = np.empty(n, dtype=np.intp)
    inv[perm] = np.arange(n)
    counts = np.bincount(level)
    bounds = tuple(int(b) for b in np.r_[0, np.cumsum(counts)])
    local = inv - np.asarray(bounds)[level]
    # orient free-free resistors from the lower layer to the upper one
    ia, ib = pa[ff], pb[ff]
    swap = level[ia] > level[ib]
    lo, hi = np.where(swap, ib, ia), np.where(swap, ia, ib)
    fcm = (pa >= 0) ^ (pb >= 0)
    fc_free_model = np.where(pa[fcm] >= 0, pa[fcm], pb[fcm])
    fc_node = np.where(pa[fcm] >= 0, model.r_b[fcm], model.r_a[fcm])
    clamped, fc_col = np.unique(fc_node, return_inverse=True)
    if len(model.d_a):
        a_free = pos[model.d_a] >= 0
        d_free = inv[np.where(a_free, pos[model.d_a], pos[model.d_c])]
        d_node = np.where(a_free, model.d_c, model.d_a)
        d_sign = np.where(a_free, 1.0, -1.0)
    else:
        d_free = d_node = np.zeros(0, dtype=np.intp)
        d_sign = np.zeros(0)
    nd = len(d_free)
    d_dense = np.zeros((nd, n))
    d_dense[np.arange(nd), d_free] = d_sign
    return LayeredStructure(
        perm=perm, inv=inv, bounds=bounds,
        ff_res=np.flatnonzero(ff), ff_layer=level[lo], ff_i=local[lo], ff_j=local[hi],
        fc_res=np.flatnonzero(fcm), fc_free=inv[fc_free_model], fc_col=fc_col, clamped=clamped,
        d_free=d_free, d_node=d_node, d_sign=d_sign, d_is=model.d_is.copy(), d_nvt=model.d_nvt.copy(),
        d_dense=d_dense, d_abs=np.abs(d_dense))


# ----- the nudged energy in layer order ------------------------------------------------------

class _Problem:
    """``F = E + beta C`` of one batch in layer order: values, gradients, diagonal curvature.

    ``c`` (B, n) is the current driven into each free node by the clamped nodes and the
    fixed sources, ``vq`` (B, n_diodes) the clamped end of each diode (V).
    """

    def __init__(self, model, st: LayeredStructure, theta, u, cost, targets, beta):
        self.model, self.st = model, st
        self.p = st.params(model, theta)
        self.c, self.c_abs, self.vq = st.drive(model, self.p, u)
        self.B = len(self.c)
        self.cost, self.targets = cost, targets
        self.beta = 0.0 if cost is None else float(beta)
        self.hc: list[np.ndarray | None] = [None] * st.n_layers
        if self.beta != 0.0:
            Hc = cost.hessian(model.n_free)[np.ix_(st.perm, st.perm)]
            for l in range(st.n_layers):
                sl = st.layer(l)
                block = Hc[sl, sl]
                outside = Hc[sl].copy()
                outside[:, sl] = 0.0
                if np.any(outside):
                    raise _NotLayered
                self.hc[l] = self.beta * block if np.any(block) else None

    def diodes(self, x, energy: bool = True):
        """Out-currents (B, n), small-signal conductances per node (B, n) and, with
        ``energy``, the co-content (B,) of the diodes (continued linearly in current beyond
        an exponent of ``_EXP_MAX``, as in the compiled model)."""
        st = self.st
        if len(st.d_free) == 0:
            z = np.zeros_like(x)
            return z, z, np.zeros(len(x))
        vd = st.d_sign * (x[:, st.d_free] - self.vq)
        arg = vd / st.d_nvt
        xc = np.minimum(arg, _EXP_MAX)
        e = np.exp(xc)
        over = arg - xc
        out = (st.d_is * (e * (1.0 + over) - 1.0)) @ st.d_dense
        gsum = (st.d_is / st.d_nvt * e) @ st.d_abs
        co = None
        if energy:
            co = np.sum(st.d_is * (st.d_nvt * (e * (1.0 + over + 0.5 * over * over) - 1.0) - vd), axis=1)
        return out, gsum, co

    def coupling(self, x):
        """(W x)-terms: current into each node from its neighbouring layers, (B, n)."""
        st, y = self.st, np.zeros_like(x)
        for l, Wl in enumerate(self.p.W):
            a, b = st.layer(l), st.layer(l + 1)
            y[:, a] += x[:, b] @ Wl.T
            y[:, b] += x[:, a] @ Wl
        return y

    def abs_coupling(self, x):
        st, y, ax = self.st, np.zeros_like(x), np.abs(x)
        for l, Wl in enumerate(self.p.W):
            a, b = st.layer(l), st.layer(l + 1)
            y[:, a] += ax[:, b] @ Wl.T
            y[:, b] += ax[:, a] @ Wl
        return y

    def model_state(self, x):
        return x[:, self.st.inv]

    def evaluate(self, x, idx=None):
        """F (B,), dF/dx (B, n) and the current scale (B, n) for rows ``idx``."""
        sub = self if idx is None else self.rows(idx)
        out, _, co = sub.diodes(x)
        wx = sub.coupling(x)
        D0 = sub.p.D0
        g = D0 * x - sub.c - wx + out
        F = 0.5 * np.sum(D0 * x * x, axis=1) - 0.5 * np.sum(x * wx, axis=1) - np.sum(sub.c * x, axis=1) + co
        scale = D0 * np.abs(x) + sub.c_abs + sub.abs_coupling(x) + np.abs(out)
        if sub.beta != 0.0:
            s = sub.model_state(x)
            F = F + sub.beta * sub.cost.value(s, sub.targets)
            gc = sub.beta * sub.cost.grad(s, sub.targets)[:, sub.st.perm]
            g = g + gc
            scale = scale + np.abs(gc)
        return F, g, scale

    def rows(self, idx) -> "_Problem":
        sub = object.__new__(_Problem)
        sub.__dict__.update(self.__dict__)
        sub.c, sub.c_abs, sub.vq, sub.B = self.c[idx], self.c_abs[idx], self.vq[idx], len(idx)
        if self.targets is not None and np.ndim(self.targets) == 2 and len(self.targets) == self.B:
            sub.targets = np.asarray(self.targets)[idx]
        return sub


class _NotLayered(Exception):
    """The cost couples nodes of different layers: fall back to the general solver."""


# ----- block elimination -----------------------------------------------------------------------

def _apply_T(W: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``W^T t`` for each batch row: W (m, n), t (B, m, k) -> (B, n, k)."""
    return np.swapaxes(np.tensordot(t, W, axes=([1], [0])), 1, 2)


def _apply(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``W x`` for each batch row: W (m, n), x (B, n, k) -> (B, m, k)."""
    return np.swapaxes(np.tensordot(x, W, axes=([1], [1])), 1, 2)


def _block_solve(st: LayeredStructure, p: _Params, hdiag, hc, rhs):
    """Solve ``H x = rhs`` for the block-tridiagonal ``H`` (block Thomas).

    ``hdiag`` (B, n) is the diagonal part of each diagonal block, ``hc[l]`` an optional
    dense (n_l, n_l) addition (the nudge's cost curvature), ``rhs`` (B, n, k). Forward:
    ``S_l = A_l - W_{l-1}^T S_{l-1}^-1 W_{l-1}``, ``t_l = S_l^-1 (rhs_l + W_{l-1}^T t_{l-1})``;
    backward: ``x_l = t_l + S_l^-1 W_l x_{l+1}``. Raises ConvergenceError when a block
    with a nudge term is not positive definite (``E + beta C`` not convex).
    """
    L = st.n_layers
    blocks, ts = [], []
    for l in range(L):
        sl = st.layer(l)
        a = hdiag[:, sl]
        r = rhs[:, sl, :]
        schur = None
        if l > 0:
            kind, prev = blocks[l - 1]
            Wp = p.W[l - 1]
            r = r + _apply_T(Wp, ts[l - 1])
            if kind == "diag":
                nl = Wp.shape[1]
                schur = ((1.0 / prev) @ p.Q[l - 1]).reshape(-1, nl, nl)
            else:
                schur = Wp.T @ (prev @ Wp)
        if schur is None and hc[l] is None:
            blocks.append(("diag", a))
            ts.append(r / a[:, :, None])
            continue
        M = np.zeros((len(a),) + (a.shape[1],) * 2) if schur is None else -schur
        idx = np.arange(a.shape[1])
        M[:, idx, idx] += a
        if hc[l] is not None:
            M = M + hc[l]
            try:
                np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                raise ConvergenceError("the nudged Hessian is not positive definite: the energy is "
                                       "not convex at this beta") from None
        if l == L - 1:
            blocks.append(("none", None))
            ts.append(np.linalg.solve(M, r))
        else:
            Minv = np.linalg.inv(M)
            blocks.append(("dense", Minv))
            ts.append(Minv @ r)
    x = [None] * L
    x[L - 1] = ts[L - 1]
    for l in range(L - 2, -1, -1):
        kind, blk = blocks[l]
        y = _apply(p.W[l], x[l + 1])
        x[l] = ts[l] + (y / blk[:, :, None] if kind == "diag" else blk @ y)
    return np.concatenate(x, axis=1)


# ----- layer sweeps ------------------------------------------------------------------------------

def _sweep(prob: _Problem, x, n_sweeps: int, tol: float = 1e-6, max_iter: int = 60):
    """Block-coordinate sweeps: each layer in turn solved exactly given its neighbours.

    Node ``i`` of the layer solves ``a_i v - r_i + sum_d s_d I_d(s_d (v - V_q)) = 0``,
    increasing in ``v``; the root lies between ``v_lin = r_i / a_i`` and the diodes' clamped
    voltages, a bracket the safeguarded Newton-bisection (``rtsafe``) never leaves.
    """
    st = prob.st
    for _ in range(n_sweeps):
        for l in range(st.n_layers):
            sl = st.layer(l)
            a = prob.p.D0[sl] + (0.0 if prob.hc[l] is None else np.diag(prob.hc[l]))
            _, g, _ = prob.evaluate(x)
            r = a * x[:, sl] - g[:, sl]            # everything but the node's own terms
            out0, _, _ = prob.diodes(x, energy=False)
            r = r + out0[:, sl]
            v_lin = r / a
            if len(st.d_free) == 0 or not np.any((st.d_free >= sl.start) & (st.d_free < sl.stop)):
                x[:, sl] = v_lin
                continue
            lo = np.minimum(v_lin, prob.vq.min(axis=1, keepdims=True))
            hi = np.maximum(v_lin, prob.vq.max(axis=1, keepdims=True))
            v = v_lin.copy()
            dx_old = hi - lo
            trial = x.copy()
            for _ in range(max_iter):
                trial[:, sl] = v
                out, gd, _ = prob.diodes(trial, energy=False)
                f = a * v - r + out[:, sl]
                df = a + gd[:, sl]
                done = np.abs(f) <= tol * (np.abs(a * v) + np.abs(r) + np.abs(out[:, sl]))
                if np.all(done):
                    break
                lo = np.where(f < 0, v, lo)
                hi = np.where(f > 0, v, hi)
                newton = v - f / df
                bisect = (newton <= lo) | (newton >= hi) | (np.abs(2 * f) > np.abs(dx_old * df))
                v_new = np.where(bisect, 0.5 * (lo + hi), newton)
                dx_old = np.abs(v_new - v)
                v = np.where(done, v, v_new)
            x[:, sl] = v
    return x


def solve_layered(model: ResistiveModel, st: LayeredStructure, theta, u, *, cost=None, targets=None,
                  beta: float = 0.0, s0=None, rtol: float = 1e-10, max_iter: int = 200):
    """Minimise ``E + beta C`` of a layered network; returns an ``Equilibrium``.

    ``u`` (B, n_inputs) V, ``targets`` (B, n_targets), ``s0`` (B, n_free) warm start (no
    sweeps then). Raises ConvergenceError after ``max_iter`` Newton steps or when the nudged
    energy is not convex. Returns None when the cost couples different layers.
    """
    try:
        prob = _Problem(model, st, theta, u, cost, targets, beta)
    except _NotLayered:
        return None
    B, n = prob.B, model.n_free
    if s0 is None:
        x = _sweep(prob, np.zeros((B, n)), 1)
    else:
        x = np.array(np.broadcast_to(s0, (B, n)), dtype=float)[:, st.perm]
    F, g, scale = prob.evaluate(x)
    residual = np.inf
    for it in range(max_iter + 1):
        res_b = np.max(np.abs(g) / (scale + 1e-300), axis=1)
        residual = float(np.max(res_b))
        if residual <= rtol:
            return Equilibrium(prob.model_state(x), it, residual)
        if it == max_iter:
            break
        idx = np.flatnonzero(res_b > rtol)
        sub = prob.rows(idx) if len(idx) < B else prob
        _, gsum, _ = sub.diodes(x[idx], energy=False)
        step = -_block_solve(st, prob.p, prob.p.D0 + gsum, prob.hc, g[idx][:, :, None])[:, :, 0]
        x, F, g, scale = _line_search(prob, idx, x, F, g, scale, step)
    raise ConvergenceError(f"layered equilibrium did not converge in {max_iter} Newton iterations: "
                           f"relative residual {residual:.3e} > {rtol:.1e}")


def _line_search(prob, idx, x, F, g, scale, step):
    """Backtracking search on the rows ``idx`` along ``step`` (rows of ``idx``)."""
    t = np.ones(len(idx))
    slope = np.sum(g[idx] * step, axis=1)
    todo = np.arange(len(idx))
    x, F, g, scale = x.copy(), F.copy(), g.copy(), scale.copy()
    for _ in range(60):
        if todo.size == 0:
            break
        rows = idx[todo]
        trial = x[rows] + t[todo, None] * step[todo]
        Ft, gt, st = prob.evaluate(trial, rows)
        # Armijo decrease of F; near the minimum F's change drowns in its rounding, and a
        # halved relative residual accepts the step instead.
        res_old = np.max(np.abs(g[rows]) / (scale[rows] + 1e-300), axis=1)
        res_new = np.max(np.abs(gt) / (st + 1e-300), axis=1)
        ok = np.isfinite(Ft) & ((Ft <= F[rows] + 1e-4 * t[todo] * slope[todo]) | (res_new <= 0.5 * res_old))
        acc = rows[ok]
        x[acc], F[acc], g[acc], scale[acc] = trial[ok], Ft[ok], gt[ok], st[ok]
        t[todo[~ok]] *= 0.5
        todo = todo[~ok]
    return x, F, g, scale


def solve_hessian(model: ResistiveModel, theta, u, s, rhs, *, cost=None, beta: float = 0.0) -> np.ndarray:
    """``(d2E/ds2 + beta d2C)^-1 rhs`` at the state ``s`` (B, n_free); ``rhs`` (B, n_free, k).

    Block elimination for layered networks, batched dense solves otherwise. Returns
    (B, n_free, k) in model order.
    """
    st = layered_structure(model)
    rhs = np.asarray(rhs, dtype=float)
    if st is not None:
        try:
            prob = _Problem(model, st, theta, u, cost, None, beta)
        except _NotLayered:
            prob = None
        if prob is not None:
            x = np.asarray(s, dtype=float)[:, st.perm]
            _, gsum, _ = prob.diodes(x, energy=False)
            out = _block_solve(st, prob.p, prob.p.D0 + gsum, prob.hc, rhs[:, st.perm, :])
            return out[:, st.inv, :]
    H = model.hessian(theta, u, s)
    if cost is not None and beta != 0.0:
        H = H + beta * cost.hessian(model.n_free)
    try:
        return np.linalg.solve(H, rhs)
    except np.linalg.LinAlgError as exc:
        raise ConvergenceError("singular Hessian at the equilibrium") from exc
