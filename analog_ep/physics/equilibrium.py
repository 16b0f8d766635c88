"""Zero-temperature equilibria of resistive networks: minimise ``F = E + beta * C``.

* Linear networks with a quadratic cost: ``F`` is quadratic, so the equilibrium is one
  solve with the (nudged) reduced Laplacian ``H = L_ff + beta * d2C``; its factorisation is
  computed once per parameter setting and reused for every input of the batch (all inputs
  are right-hand sides of one solve). The blocks ``L_ff`` and ``L_fc`` are assembled from
  sparsity maps precomputed per model; when an independent set of free nodes (the hidden
  layer of a layered network) leaves a small remainder, ``H`` is solved exactly by block
  elimination onto it instead of a factorisation of the whole matrix.
* Diode networks: damped Newton with a backtracking (Armijo) line search on the convex
  ``F``, batched and warm-started, to a relative Kirchhoff residual ``<= rtol``: the net
  current into each free node divided by the sum of the absolute element currents there
  (residuals at the round-off level of that sum count as zero). Newton starts from the
  linear network with each diode replaced by a conductance, so no diode starts far above
  its knee; steps are Jacobi-scaled, and doubled while ``F`` keeps falling faster than its
  quadratic model predicts.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ConfigError, ConvergenceError
from ..models.resistive import ResistiveModel
from .layered import layered_structure, solve_layered
from .result import Equilibrium

#: Free-node count above which sparse factorisations are used instead of dense Cholesky.
DENSE_LIMIT = 400


@dataclass(frozen=True, eq=False)
class SPDFactor:
    """Factorisation of a symmetric positive definite matrix, reusable for many solves.

    Dense Cholesky up to :data:`DENSE_LIMIT` unknowns; above it a sparse LU with a
    symmetric fill-reducing ordering (``MMD_AT_PLUS_A``) and no pivoting, which for an SPD
    matrix is an ``L D L^T`` factorisation.
    """

    n: int
    dense: tuple | None = None
    sparse: object | None = None

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solve ``A x = rhs`` for ``rhs`` of shape (n,) or (n, k)."""
        if self.dense is not None:
            return sla.cho_solve(self.dense, rhs, check_finite=False)
        return self.sparse.solve(np.asarray(rhs, dtype=float))


def factorize_spd(A) -> SPDFactor:
    """Factorise a symmetric positive definite matrix (dense array or scipy sparse)."""
    n = A.shape[0]
    if n <= DENSE_LIMIT:
        dense = A.toarray() if sp.issparse(A) else np.asarray(A)
        try:
            return SPDFactor(n, dense=sla.cho_factor(dense, lower=True, check_finite=False))
        except np.linalg.LinAlgError as exc:
            raise ConvergenceError("the Hessian is not positive definite "
                                   "(an unstable or singular network)") from exc
    lu = spla.splu(sp.csc_matrix(A), permc_spec="MMD_AT_PLUS_A",
                   diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return SPDFactor(n, sparse=lu)


def _cost_hessian(model: ResistiveModel, cost, beta: float) -> sp.csr_matrix | None:
    if cost is None or beta == 0.0:
        return None
    return sp.csr_matrix(beta * cost.hessian(model.n_free))


@dataclass(frozen=True, eq=False)
class _LaplacianMaps:
    """Fixed sparsity of the reduced Laplacian blocks of a model, so that assembling them
    for new parameters is two sparse products ``map @ theta`` instead of forming
    ``A^T diag(g) A`` and slicing it.

    The data of a block is ``const + map @ theta`` (the fixed resistors' share plus the
    trainable ones'). ``ff_*``: ``L_ff`` in CSR arrays (also its CSC arrays: it is
    symmetric); ``fc_*``: ``L_fc`` (free rows, clamped columns in ascending node order) in
    CSR arrays, filled into a dense array at ``fc_flat`` when it is dense enough for BLAS to
    win (layered networks); ``in_cols`` / ``fixed_cols`` place the inputs and the
    ground/bias nodes among the clamped columns.
    """

    ff_const: np.ndarray
    ff_map: sp.csr_matrix
    ff_indices: np.ndarray
    ff_indptr: np.ndarray
    fc_const: np.ndarray
    fc_map: sp.csr_matrix
    fc_indices: np.ndarray
    fc_indptr: np.ndarray
    fc_dense: bool
    fc_flat: np.ndarray
    n_clamped: int
    in_cols: np.ndarray
    fixed_cols: np.ndarray
    schur: "_SchurPlan | None" = None
    fc_gather: np.ndarray | None = None
    fc_const_dense: np.ndarray | None = None

    def blocks(self, theta: np.ndarray, n_free: int):
        """``(L_ff, L_fc)`` for parameters ``theta``: CSC sparse, and CSR sparse or dense."""
        Lff = sp.csc_matrix((self.ff_const + self.ff_map @ theta, self.ff_indices, self.ff_indptr),
                            shape=(n_free, n_free))
        if self.fc_gather is not None:
            # one gather instead of a sparse product and a scatter (see _dense_gather)
            Lfc = self.fc_const_dense - np.append(theta, 0.0)[self.fc_gather]
            return Lff, Lfc.reshape(n_free, self.n_clamped)
        data = self.fc_const + self.fc_map @ theta
        if self.fc_dense:
            Lfc = np.zeros(n_free * self.n_clamped)
            Lfc[self.fc_flat] = data
            return Lff, Lfc.reshape(n_free, self.n_clamped)
        return Lff, sp.csr_matrix((data, self.fc_indices, self.fc_indptr), shape=(n_free, self.n_clamped))


@dataclass(frozen=True, eq=False)
class _SchurPlan:
    """Block elimination of ``H = [[D, C], [C^T, A]]`` where ``D`` is diagonal: the free
    nodes ``d_idx`` form an independent set of the resistor graph (no resistor joins two
    of them; outputs are never among them, so a cost on the outputs stays in ``A``), the
    rest ``r_idx`` is small. Positions ``*_pos`` index the data of ``L_ff`` (CSR order) and
    ``*_flat`` the dense row-major blocks ``C`` (n_d, n_r) and ``A`` (n_r, n_r).

    Then ``S = A - C^T D^-1 C`` (n_r, n_r, dense Cholesky), ``x_r = S^-1 (b_r - C^T D^-1
    b_d)`` and ``x_d = D^-1 (b_d - C x_r)``: exact, and in a layered network
    (inputs - hidden - outputs) it costs ``O(B n_hidden n_out)`` instead of a factorisation
    of the whole reduced Laplacian.
    """

    d_idx: np.ndarray
    r_idx: np.ndarray
    d_pos: np.ndarray
    c_pos: np.ndarray
    c_flat: np.ndarray
    a_pos: np.ndarray
    a_flat: np.ndarray

    def solve(self, data: np.ndarray, Hc: np.ndarray | None, rhs: np.ndarray) -> np.ndarray:
        """``H^-1 rhs`` for ``L_ff`` data ``data``, dense cost Hessian ``Hc`` (n_free,
        n_free) or None, and ``rhs`` (B, n_free); returns (B, n_free)."""
        nd, nr = len(self.d_idx), len(self.r_idx)
        d = data[self.d_pos]
        C = np.zeros(nd * nr)
        C[self.c_flat] = data[self.c_pos]
        C = C.reshape(nd, nr)
        A = np.zeros(nr * nr)
        A[self.a_flat] = data[self.a_pos]
        A = A.reshape(nr, nr)
        if Hc is not None:
            A = A + Hc[np.ix_(self.r_idx, self.r_idx)]
        S = A - C.T @ (C / d[:, None])
        try:
            chol = sla.cho_factor(S, lower=True, check_finite=False)
        except np.linalg.LinAlgError as exc:
            raise ConvergenceError("the Hessian is not positive definite "
                                   "(an unstable or singular network)") from exc
        bd, br = rhs[:, self.d_idx] / d, rhs[:, self.r_idx]
        xr = sla.cho_solve(chol, (br - bd @ C).T, check_finite=False).T
        out = np.empty_like(rhs)
        out[:, self.r_idx] = xr
        out[:, self.d_idx] = bd - (xr @ C.T) / d
        return out


def _independent_set(indptr: np.ndarray, indices: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """A maximal independent set of the graph of a symmetric CSR pattern among the
    ``eligible`` nodes, low degree first (Luby's rounds, vectorised). Bool mask."""
    n = len(indptr) - 1
    rows = np.repeat(np.arange(n), np.diff(indptr))
    off = rows != indices
    r, c = rows[off], indices[off]
    deg = np.bincount(r, minlength=n)
    # fewest neighbours first; fixed pseudo-random tie-breaks keep the rounds O(log n)
    key = deg + np.random.default_rng(0).uniform(0.0, 0.5, n)
    state = np.where(eligible, 0, -1)              # 0 undecided, 1 chosen, -1 excluded
    starts = np.concatenate([[0], np.cumsum(deg)[:-1]])
    while np.any(state == 0):
        undecided = state == 0
        nkey = np.where(undecided[c], key[c], np.inf)
        low = np.minimum.reduceat(nkey, starts) if len(nkey) else np.zeros(n)
        low = np.where(deg > 0, low, np.inf)
        pick = undecided & (key < low)
        state[pick] = 1
        blocked = np.zeros(n, dtype=bool)
        blocked[r[pick[c]]] = True
        state[blocked & (state == 0)] = -1
    return state == 1


def _schur_plan(model: ResistiveModel, indices: np.ndarray, indptr: np.ndarray) -> _SchurPlan | None:
    """The elimination plan when an independent set leaves at most a quarter of the free
    nodes (and at most 400) in the dense Schur complement; None otherwise."""
    n = model.n_free
    if n < 32:
        return None
    eligible = np.ones(n, dtype=bool)
    eligible[model.outputs] = False
    in_d = _independent_set(indptr, indices, eligible)
    d_idx, r_idx = np.flatnonzero(in_d), np.flatnonzero(~in_d)
    if len(r_idx) > min(n // 4, DENSE_LIMIT):
        return None
    local = np.empty(n, dtype=np.intp)
    local[d_idx] = np.arange(len(d_idx))
    local[r_idx] = np.arange(len(r_idx))
    rows = np.repeat(np.arange(n), np.diff(indptr))
    k = np.arange(len(indices))
    dd = in_d[rows] & in_d[indices]
    dr = in_d[rows] & ~in_d[indices]
    rr = ~in_d[rows] & ~in_d[indices]
    d_pos = np.empty(len(d_idx), dtype=np.intp)
    d_pos[local[rows[dd]]] = k[dd]
    return _SchurPlan(d_idx=d_idx, r_idx=r_idx, d_pos=d_pos,
                      c_pos=k[dr], c_flat=local[rows[dr]] * len(r_idx) + local[indices[dr]],
                      a_pos=k[rr], a_flat=local[rows[rr]] * len(r_idx) + local[indices[rr]])


_MAPS: "weakref.WeakKeyDictionary[ResistiveModel, _LaplacianMaps]" = weakref.WeakKeyDictionary()


def _block_map(rows, cols, vals, res, n_rows, n_cols, n_res):
    """CSR arrays of the block whose entry (rows, cols) sums ``vals * g[res]``:
    (map from g to the data, indices, indptr)."""
    keys, entry = np.unique(rows * n_cols + cols, return_inverse=True)
    emap = sp.csr_matrix((vals, (entry, res)), shape=(len(keys), n_res))
    indptr = np.searchsorted(keys // n_cols, np.arange(n_rows + 1))
    return emap, (keys % n_cols).astype(np.int32), indptr.astype(np.int32)


def _dense_gather(fc_map: sp.csr_matrix, flat: np.ndarray, size: int) -> np.ndarray | None:
    """Per position of the dense ``L_fc`` (row-major), the one trainable conductance it holds
    as ``-g`` (an index into ``theta``), or ``len(theta)`` for none: then ``L_fc`` is
    ``const - append(theta, 0)[gather]``. None when some entry sums several trainable
    conductances (parallel resistors) or takes another coefficient."""
    if np.any(np.diff(fc_map.indptr) > 1) or np.any(fc_map.data != -1.0):
        return None
    gather = np.full(size, fc_map.shape[1], dtype=np.intp)
    has = np.diff(fc_map.indptr) == 1
    gather[flat[has]] = fc_map.indices
    return gather


def _laplacian_maps(model: ResistiveModel) -> _LaplacianMaps:
    maps = _MAPS.get(model)
    if maps is not None:
        return maps
    n_f = model.n_free
    pos = model.free_pos
    clamped = np.setdiff1d(np.arange(model.n_nodes), model.free)
    cpos = np.full(model.n_nodes, -1)
    cpos[clamped] = np.arange(len(clamped))
    m = len(model.r_a)
    a, b = model.r_a, model.r_b
    # every resistor adds +g at (a, a) and (b, b), -g at (a, b) and (b, a)
    rows = np.concatenate([a, b, a, b])
    cols = np.concatenate([a, b, b, a])
    vals = np.concatenate([np.ones(2 * m), -np.ones(2 * m)])
    res = np.tile(np.arange(m), 4)
    ff = (pos[rows] >= 0) & (pos[cols] >= 0)
    fc = (pos[rows] >= 0) & (cpos[cols] >= 0)
    ff_map, ff_ind, ff_ptr = _block_map(pos[rows[ff]], pos[cols[ff]], vals[ff], res[ff], n_f, n_f, m)
    fc_map, fc_ind, fc_ptr = _block_map(pos[rows[fc]], cpos[cols[fc]], vals[fc], res[fc], n_f,
                                        len(clamped), m)
    g_const = model.g_fixed.copy()
    g_const[model.trainable] = 0.0
    fc_dense = fc_map.shape[0] > 0.2 * n_f * max(len(clamped), 1)
    fc_flat = np.repeat(np.arange(n_f), np.diff(fc_ptr)) * len(clamped) + fc_ind
    fc_trained = fc_map[:, model.trainable].tocsr()
    gather = _dense_gather(fc_trained, fc_flat, n_f * len(clamped)) if fc_dense else None
    fc_const = fc_map @ g_const
    const_dense = None
    if gather is not None:
        const_dense = np.zeros(n_f * len(clamped))
        const_dense[fc_flat] = fc_const
    maps = _LaplacianMaps(
        ff_const=ff_map @ g_const, ff_map=ff_map[:, model.trainable].tocsr(), ff_indices=ff_ind,
        ff_indptr=ff_ptr, fc_const=fc_const, fc_map=fc_trained,
        fc_indices=fc_ind, fc_indptr=fc_ptr, fc_dense=fc_dense, fc_flat=fc_flat,
        n_clamped=len(clamped), in_cols=cpos[model.inputs], fixed_cols=cpos[model.clamped_fixed],
        schur=_schur_plan(model, ff_ind, ff_ptr), fc_gather=gather, fc_const_dense=const_dense)
    _MAPS[model] = maps
    return maps


def laplacian_blocks(model: ResistiveModel, theta):
    """``(L_ff, L_fc)`` of the resistors (S): ``L_ff`` CSC sparse, ``L_fc`` (free rows,
    clamped columns in ascending node order) CSR sparse or, when dense enough, an array.
    Same values as ``model.laplacian_blocks`` from precomputed sparsity maps."""
    theta = model.default_theta if theta is None else np.asarray(theta, dtype=float)
    if theta.shape != (len(model.trainable),):
        model.conductances(theta)  # raises the shape error
        theta = theta[:len(model.trainable)]   # the conductances before any gate voltages
    return _laplacian_maps(model).blocks(theta, model.n_free)


def resistor_output_block(model: ResistiveModel, theta, D: np.ndarray) -> np.ndarray:
    """``D L_ff^-1 D^T`` (k, k), 1/S, for read-out rows ``D`` (k, n_free) and the resistors'
    reduced Laplacian ``L_ff``. Diodes only add convex terms to the energy, so ``L_ff``
    bounds its Hessian from below at every state: ``E - b C`` with ``d2C = D^T D`` is convex
    everywhere when ``b < 1 / lambda_max`` of this block. Free nodes no resistor touches
    (reached only by gate-trained MOSFET edges, whose co-content is convex too) add nothing
    to the resistors' energy and are left out; a cost that reads one of them has no such
    bound (ConfigError)."""
    Lff = laplacian_blocks(model, theta)[0]
    keep = np.flatnonzero(Lff.diagonal() > 0)
    if len(keep) < Lff.shape[0]:
        if np.any(np.delete(D, keep, axis=1)):
            raise ConfigError("the cost reads a node no resistor touches, so the resistors give no bound on "
                              "the output curvature: give the nudging strength (--beta)")
        Lff, D = Lff[keep][:, keep].tocsc(), D[:, keep]
    return D @ factorize_spd(Lff).solve(D.T)


def clamped_voltages(model: ResistiveModel, u: np.ndarray) -> np.ndarray:
    """Voltages of the clamped nodes (B, n_clamped), ascending node order, from inputs u."""
    maps = _laplacian_maps(model)
    Vc = np.empty((len(u), maps.n_clamped))
    Vc[:, maps.in_cols] = u
    Vc[:, maps.fixed_cols] = model.clamped_fixed_v
    return Vc


def linear_factor(model: ResistiveModel, theta, cost=None, beta: float = 0.0) -> SPDFactor:
    """Factor of ``L_ff + beta d2C`` for a linear network (cache it per parameter setting)."""
    H = laplacian_blocks(model, theta)[0]
    Hc = _cost_hessian(model, cost, beta)
    if Hc is not None:
        H = H + Hc
    return factorize_spd(H)


def solve_linear(model: ResistiveModel, theta, u, *, cost=None, targets=None, beta: float = 0.0,
                 factor: SPDFactor | None = None) -> np.ndarray:
    """Equilibrium of a linear network: ``s = H^-1 (I_f - L_fc V_c + beta d2C d)``.

    The quadratic cost's gradient is ``d2C s - d2C d'`` where ``d2C d'`` is the cost's
    gradient at ``s = 0`` with the sign flipped. Returns (B, n_free) volts.
    """
    u = model.check_inputs(u)
    Lff, Lfc = laplacian_blocks(model, theta)
    Vc = clamped_voltages(model, u)
    plan = _laplacian_maps(model).schur
    # (B, n_free) in C order: its transpose is the column-major block of right-hand sides
    # that the triangular solves take without a copy
    rhs = model.node_current[model.free] - (Vc @ Lfc.T if isinstance(Lfc, np.ndarray) else (Lfc @ Vc.T).T)
    if cost is not None and beta != 0.0:
        d = np.atleast_2d(targets)
        rhs = rhs - beta * cost.grad(np.zeros((len(d), model.n_free)), d)
    if factor is None:
        Hc = None if cost is None or beta == 0.0 else beta * np.asarray(cost.hessian(model.n_free))
        if plan is not None and (Hc is None or not np.any(np.delete(Hc, plan.r_idx, axis=0))):
            return plan.solve(Lff.data, Hc, rhs)
        factor = factorize_spd(Lff if Hc is None else Lff + sp.csr_matrix(Hc))
    return factor.solve(rhs.T).T


def solve_equilibrium(model: ResistiveModel, theta, u, *, cost=None, targets=None,
                      beta: float = 0.0, s0: np.ndarray | None = None, rtol: float = 1e-10,
                      max_iter: int = 200, factor: SPDFactor | None = None) -> Equilibrium:
    """Minimise ``E(theta, u, s) + beta C(s, targets)`` over the free state ``s``.

    ``u`` is (B, n_inputs) volts, ``targets`` (B, n_targets). ``s0`` warm-starts Newton
    (diode networks). ``beta`` may be negative as long as ``F`` stays convex; a loss of
    convexity shows up as a failed factorisation (ConvergenceError).
    """
    u = model.check_inputs(u)
    quadratic_cost = cost is None or beta == 0.0 or getattr(cost, "quadratic", False)
    if model.is_linear and quadratic_cost:
        s = solve_linear(model, theta, u, cost=cost, targets=targets, beta=beta, factor=factor)
        return Equilibrium(s, 0, 0.0)
    if not model.is_linear:
        st = layered_structure(model)
        if st is not None:
            eq = solve_layered(model, st, theta, u, cost=cost, targets=targets, beta=beta,
                               s0=s0, rtol=rtol, max_iter=max_iter)
            if eq is not None:
                return eq
    return _newton(model, theta, u, cost, targets, beta, s0, rtol, max_iter)


def _diode_start(model: ResistiveModel, theta, u) -> np.ndarray:
    """Newton's starting point: the linear network in which every diode is replaced by the
    conductance ``I_typ / (n V_t)`` it has when it carries the network's current scale
    ``I_typ = max|V_clamped| * max G`` (S). Each diode then starts within a few ``n V_t``
    of conduction, never far above its knee, where Newton would crawl down the exponential
    (and with it a removed diode can sit volts past the knee). (B, n_free) volts."""
    g = model.conductances(theta)
    Vc = model.clamped_voltages(u)
    i_typ = max(float(np.max(np.abs(Vc))), 1e-3) * float(np.max(g))
    A = sp.vstack([model.A_r, model.A_d]).tocsr()
    L = (A.T @ sp.diags(np.concatenate([g, i_typ / model.d_nvt])) @ A).tocsr()
    clamped = np.setdiff1d(np.arange(model.n_nodes), model.free)
    Lf = L[model.free]
    rhs = model.node_current[model.free][None, :] - (Lf[:, clamped] @ Vc.T).T
    return factorize_spd(Lf[:, model.free].tocsc()).solve(rhs.T).T


def _objective(model, theta, u, s, cost, targets, beta):
    F = model.energy(theta, u, s)
    g = model.grad(theta, u, s)
    if cost is not None and beta != 0.0:
        F = F + beta * cost.value(s, targets)
        g = g + beta * cost.grad(s, targets)
    return F, g


def _newton(model, theta, u, cost, targets, beta, s0, rtol, max_iter) -> Equilibrium:
    B = len(u)
    if s0 is None:
        s = _diode_start(model, theta, u)
    else:
        s = np.array(np.broadcast_to(s0, (B, model.n_free)), dtype=float)
    H_cost = None if cost is None or beta == 0.0 else beta * cost.hessian(model.n_free)
    sparse = model.n_free > DENSE_LIMIT
    F, g = _objective(model, theta, u, s, cost, targets, beta)
    abs_laplacian = abs(model.A_r).T @ sp.diags(model.conductances(theta)) @ abs(model.A_r)
    residual = np.inf
    for it in range(max_iter + 1):
        scale = model.current_scale(theta, u, s) + (0.0 if H_cost is None else np.abs(beta * cost.grad(s, targets)))
        scale = scale + _roundoff_floor(model, abs_laplacian, u, s) / rtol
        res_b = np.max(np.abs(g) / (scale + 1e-300), axis=1)
        residual = float(np.max(res_b))
        if residual <= rtol:
            return Equilibrium(s, it, residual)
        if it == max_iter:
            break
        active = res_b > rtol
        step = np.zeros_like(s)
        idx = np.flatnonzero(active)
        if sparse:
            for b in idx:
                H = model.hessian_sparse(theta, u[b:b + 1] if len(u) > 1 else u, s[b:b + 1])
                if H_cost is not None:
                    H = H + sp.csr_matrix(H_cost)
                # symmetric diagonal (Jacobi) scaling: a diode far above its knee puts a
                # huge conductance on the diagonal, which scaling takes out of the condition
                d = 1.0 / np.sqrt(H.diagonal())
                D = sp.diags(d)
                step[b] = -d * factorize_spd((D @ H @ D).tocsc()).solve(d * g[b])
        else:
            H = model.hessian(theta, u[idx] if len(u) > 1 else u, s[idx])
            if H_cost is not None:
                H = H + H_cost
            d = 1.0 / np.sqrt(np.einsum("bii->bi", H))
            try:
                step[idx] = -d * np.linalg.solve(H * d[:, :, None] * d[:, None, :],
                                                 (d * g[idx])[..., None])[..., 0]
            except np.linalg.LinAlgError as exc:
                raise ConvergenceError("singular Hessian during Newton iterations") from exc
        s, F, g = _line_search(model, theta, u, s, F, g, step, active, cost, targets, beta)
    raise ConvergenceError(f"equilibrium did not converge in {max_iter} Newton iterations: "
                           f"relative residual {residual:.3e} > {rtol:.1e}")


def _roundoff_floor(model: ResistiveModel, abs_laplacian, u, s) -> np.ndarray:
    """Round-off level of the Kirchhoff sums, (B, n_free) amperes: each element current
    ``g (V_a - V_b)`` is known to about ``eps g (|V_a| + |V_b|)`` because the voltages are.
    A node whose currents are all tiny (a reverse-biased diode behind a resistor) cannot
    balance better than this, whatever the solver does; residuals below it count as zero."""
    V = model.voltages(s, u)
    absV = np.abs(V)
    floor = (abs_laplacian @ absV.T).T
    if not model.is_linear:
        gd = model.diode_conductances(u, s)
        floor = floor + (abs(model.A_d).T @ (gd * (absV[:, model.d_a] + absV[:, model.d_c])).T).T
    return 8.0 * np.finfo(float).eps * floor[:, model.free]


def _line_search(model, theta, u, s, F, g, step, active, cost, targets, beta):
    """Backtracking Armijo search along ``step`` for the rows in ``active``.

    Far above a diode's knee a Newton step lowers its voltage by only about ``n V_t`` (the
    exponential is steeper than its quadratic model), so where a full step decreased ``F``
    clearly more than the quadratic model predicted, the step is doubled while ``F`` keeps
    decreasing (at most 6 times): a convex ``F`` only gets lower, and tens of iterations
    from a far start become a few.
    """
    t = np.where(active, 1.0, 0.0)
    slope = np.sum(g * step, axis=1)
    todo = active.copy()
    s_new, F_new, g_new = s.copy(), F.copy(), g.copy()

    def trial_at(idx):
        trial = s[idx] + t[idx, None] * step[idx]
        ui = u[idx] if len(u) > 1 else u
        di = targets if targets is None or np.ndim(targets) < 2 or len(targets) == 1 else np.asarray(targets)[idx]
        return (trial,) + _objective(model, theta, ui, trial, cost, di, beta)

    for _ in range(60):
        idx = np.flatnonzero(todo)
        if idx.size == 0:
            break
        trial, Ft, gt = trial_at(idx)
        # Accept on sufficient decrease; also when F stagnates at round-off, where the
        # residual, not F, tells convergence.
        ok = np.isfinite(Ft) & ((Ft <= F[idx] + 1e-4 * t[idx] * slope[idx])
                                | (np.abs(Ft - F[idx]) <= 1e-14 * np.abs(F[idx])))
        acc = idx[ok]
        s_new[acc], F_new[acc], g_new[acc] = trial[ok], Ft[ok], gt[ok]
        todo[acc] = False
        t[idx[~ok]] *= 0.5
    # the quadratic model predicts a decrease of -slope/2 for the full Newton step
    grow = active & (t == 1.0) & (F - F_new > -0.6 * slope)
    for _ in range(6):
        idx = np.flatnonzero(grow)
        if idx.size == 0:
            break
        t[idx] *= 2.0
        trial, Ft, gt = trial_at(idx)
        ok = np.isfinite(Ft) & (Ft < F_new[idx])
        acc = idx[ok]
        s_new[acc], F_new[acc], g_new[acc] = trial[ok], Ft[ok], gt[ok]
        grow[idx[~ok]] = False
    return s_new, F_new, g_new
