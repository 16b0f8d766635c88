"""Resistive networks (resistors, diodes, voltage and current sources) compiled to arrays.

The state is the vector of free-node potentials ``s`` (volts); inputs, ground and bias
nodes are clamped. The energy is the co-content, a power (watts)::

    E(theta, u, s) = sum_R 1/2 G_e dV_e^2
                   + sum_D I_s [n V_t (exp(dV_d / n V_t) - 1) - dV_d]
                   - sum_i I_i V_i

with ``dV_e = V(a) - V(b)`` across each resistor, ``dV_d = V(anode) - V(cathode)`` across
each diode and ``I_i`` the fixed current injected into free node ``i``. Its gradient with
respect to ``s`` is minus the net current into each free node (Kirchhoff's current law at
``grad = 0``), and every element is monotone, so ``E`` is convex in ``s``: the equilibrium
is unique. Parameters ``theta`` are the conductances (siemens) of the trainable resistors.

All methods take a batch: ``u`` is ``(B, n_inputs)``, ``s`` is ``(B, n_free)``. Costs are
O(B * elements) for values and gradients; dense Hessians are O(B * n_free^2).

Gate-trained MOSFET edges (netlists kept for ngspice, ``*@ trainable-gate``): a level-1
NMOS whose gate is held at ``V_G`` above one of its channel nodes ``b`` by a floating
source is a two-terminal nonlinear resistor between ``a`` and ``b``. With
``F(x) = K/2 max(x - V_TO, 0)^2`` (``K = KP W / L_eff``, A/V^2) its channel current from
``a`` to ``b`` at ``v = V(a) - V(b)`` is ``I(v) = F(V_G) - F(V_G - v)`` (square law,
linear and saturated regions, either sign of ``v``), monotone in ``v``. Its co-content
``E_m = v F(V_G) - P(V_G) + P(V_G - v)`` with ``P(x) = K/6 max(x - V_TO, 0)^3`` is convex,
and ``dE_m/dV_G = v F'(V_G) - F(V_G) + F(V_G - v)`` (W/V = A), see docs/PHYSICS.md. Those
parameters (volts) follow the conductances in ``theta``; the channels themselves are
ngspice's (the model's energy and Hessian hold only the parsed resistors and diodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import re

import networkx as nx
import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from ..schema import CLAMPED_ROLES, normalise_resistive, validate_resistive
from .indexing import FreeNodeIndexing

#: Largest exponent argument evaluated exactly; beyond it the diode current is continued
#: linearly (C1), which only matters for absurd trial points during a line search.
_EXP_MAX = 80.0


def _incidence(a: np.ndarray, b: np.ndarray, n: int) -> sp.csr_matrix:
    """(elements, n) matrix with +1 at column a and -1 at column b of each row."""
    m = len(a)
    rows = np.repeat(np.arange(m), 2)
    cols = np.column_stack([a, b]).ravel()
    vals = np.tile([1.0, -1.0], m)
    return sp.csr_matrix((vals, (rows, cols)), shape=(m, n))


def _exp_lin(x: np.ndarray) -> np.ndarray:
    """exp(x) for x <= _EXP_MAX, continued by its tangent beyond (value and slope continuous)."""
    xc = np.minimum(x, _EXP_MAX)
    e = np.exp(xc)
    return np.where(x > _EXP_MAX, e * (1.0 + (x - xc)), e)


@dataclass(frozen=True, eq=False)
class ResistiveModel(FreeNodeIndexing):
    """Arrays compiled once from a resistive network graph.

    Index conventions: ``node_names`` orders every node; ``free`` indexes hidden and output
    nodes (the state), ``inputs`` the input nodes in ``input_names`` order, ``outputs`` the
    output nodes as positions *within the free state*.
    """

    node_names: tuple[str, ...]
    free: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray
    clamped_fixed: np.ndarray          # node indices of ground and bias nodes
    clamped_fixed_v: np.ndarray        # their voltages (V)
    default_inputs: np.ndarray         # (n_inputs,) DC input voltages (V)
    node_current: np.ndarray           # (n_nodes,) fixed injected currents (A)
    capacitance: np.ndarray            # (n_nodes,) node capacitances (F), NaN where unknown
    resistor_names: tuple[str, ...]
    r_a: np.ndarray
    r_b: np.ndarray
    g_fixed: np.ndarray                # (n_resistors,) conductances as in the graph (S)
    trainable: np.ndarray              # indices into resistors of the parameters
    g_min: np.ndarray                  # (P,) bounds of the parameters (S)
    g_max: np.ndarray
    diode_names: tuple[str, ...]
    d_a: np.ndarray                    # anode node index
    d_c: np.ndarray                    # cathode node index
    d_is: np.ndarray                   # saturation currents (A)
    d_nvt: np.ndarray                  # n * V_t (V)
    name: str = ""
    # a netlist kept for ngspice (netlist.read_spice(ngspice=True)): what only ngspice runs,
    # the deck it runs, and each input's V source with its sign (+1: V(node) = its value)
    spice_only: str = ""
    spice_deck: str = ""
    input_sources: tuple[tuple[str, float], ...] = ()
    # gate-trained MOSFET edges (module docstring): names, gate sources, the channel node
    # ``a`` and the reference node ``b`` (node indices), K (A/V^2), V_TO (V), default V_G
    # and its bounds (V)
    gate_names: tuple[str, ...] = ()
    gate_sources: tuple[str, ...] = ()
    m_a: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    m_b: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    m_k: np.ndarray = field(default_factory=lambda: np.zeros(0))
    m_vto: np.ndarray = field(default_factory=lambda: np.zeros(0))
    vg_default: np.ndarray = field(default_factory=lambda: np.zeros(0))
    vg_min: np.ndarray = field(default_factory=lambda: np.zeros(0))
    vg_max: np.ndarray = field(default_factory=lambda: np.zeros(0))

    # ----- names and sizes -------------------------------------------------------------

    @property
    def param_names(self) -> tuple[str, ...]:
        """Trainable resistors (conductances, S), then gate sources (voltages, V)."""
        return tuple(self.resistor_names[i] for i in self.trainable) + self.gate_sources

    @property
    def is_linear(self) -> bool:
        return len(self.d_a) == 0

    @property
    def default_theta(self) -> np.ndarray:
        return np.concatenate([self.g_fixed[self.trainable], self.vg_default])

    def theta_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate([self.g_min, self.vg_min]), np.concatenate([self.g_max, self.vg_max])

    def __repr__(self) -> str:
        return (f"ResistiveModel({self.name!r}: {self.n_nodes} nodes, {self.n_free} free, "
                f"{len(self.inputs)} inputs, {len(self.outputs)} outputs, "
                f"{len(self.r_a)} resistors ({len(self.trainable)} trainable), {len(self.d_a)} diodes)")

    # ----- precomputed sparse structure ---------------------------------------------------
    @cached_property
    def A_r(self) -> sp.csr_matrix:
        """Resistor incidence (n_resistors, n_nodes)."""
        return _incidence(self.r_a, self.r_b, self.n_nodes)

    @cached_property
    def A_d(self) -> sp.csr_matrix:
        """Diode incidence (n_diodes, n_nodes), +1 at the anode."""
        return _incidence(self.d_a, self.d_c, self.n_nodes)

    @cached_property
    def B_free(self) -> sp.csc_matrix:
        """Resistor incidence restricted to the free nodes (n_resistors, n_free)."""
        return self.A_r[:, self.free].tocsc()

    @cached_property
    def B_train(self) -> sp.csr_matrix:
        """Incidence vectors b_e of the trainable resistors on the free nodes (P, n_free)."""
        return self.A_r[self.trainable][:, self.free].tocsr()

    @cached_property
    def _diode_hess_map(self) -> sp.csr_matrix:
        """Sparse map (n_free*n_free, n_diodes): diode conductances -> flattened Hessian."""
        n = self.n_free
        pa, pc = self.free_pos[self.d_a], self.free_pos[self.d_c]
        rows, cols, vals = [], [], []
        for i, (x, y) in enumerate(zip(pa, pc)):
            for p, q, v in ((x, x, 1.0), (y, y, 1.0), (x, y, -1.0), (y, x, -1.0)):
                if p >= 0 and q >= 0:
                    rows.append(p * n + q)
                    cols.append(i)
                    vals.append(v)
        return sp.csr_matrix((vals, (rows, cols)), shape=(n * n, len(pa)))

    # ----- parameters ---------------------------------------------------------------------
    def conductances(self, theta: np.ndarray | None) -> np.ndarray:
        """Every resistor's conductance (S) with the trainable ones set from ``theta``."""
        g = self.g_fixed.copy()
        if theta is not None:
            theta = np.asarray(theta, dtype=float)
            P = len(self.trainable) + len(self.gate_sources)
            if theta.shape != (P,):
                raise ConfigError(f"expected {P} parameters, got shape {theta.shape}")
            g[self.trainable] = theta[:len(self.trainable)]
        return g

    def gate_voltages(self, theta: np.ndarray) -> np.ndarray:
        """The gate voltages (V) in ``theta`` (after the conductances)."""
        return np.asarray(theta, dtype=float)[len(self.trainable):]

    def dE_dgate(self, theta: np.ndarray, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """``dE_m/dV_G = v F'(V_G) - F(V_G) + F(V_G - v)`` (A) of each gate-trained MOSFET
        edge at ``v = V(a) - V(b)`` (module docstring), (B, n_gates)."""
        V = self.voltages(s, u)
        v = V[:, self.m_a] - V[:, self.m_b]
        vg = self.gate_voltages(theta)
        over = np.maximum(vg - self.m_vto, 0.0)
        over_v = np.maximum(vg - v - self.m_vto, 0.0)
        return self.m_k * (v * over - 0.5 * over**2 + 0.5 * over_v**2)

    def laplacian(self, theta: np.ndarray | None) -> sp.csr_matrix:
        """Weighted Laplacian of the resistors over all nodes (S)."""
        g = self.conductances(theta)
        return (self.A_r.T @ sp.diags(g) @ self.A_r).tocsr()

    def laplacian_blocks(self, theta: np.ndarray | None) -> tuple[sp.csc_matrix, sp.csr_matrix]:
        """(L_ff, L_fc): the reduced Laplacian on the free nodes and the free-clamped block."""
        L = self.laplacian(theta)
        Lf = L[self.free]
        clamped = np.setdiff1d(np.arange(self.n_nodes), self.free)
        return Lf[:, self.free].tocsc(), Lf[:, clamped].tocsr()

    # ----- state <-> voltages ---------------------------------------------------------------
    def voltages(self, s: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Every node voltage (B, n_nodes) from the free state and the inputs."""
        s = np.atleast_2d(s)
        u = self.check_inputs(u)
        B = max(len(s), len(u))
        V = np.empty((B, self.n_nodes))
        V[:, self.free] = s
        V[:, self.inputs] = u
        V[:, self.clamped_fixed] = self.clamped_fixed_v
        return V

    def clamped_voltages(self, u: np.ndarray) -> np.ndarray:
        """Voltages of every clamped node (B, n_clamped) in ascending node order."""
        V = self.voltages(np.zeros((1, self.n_free)), u)
        clamped = np.setdiff1d(np.arange(self.n_nodes), self.free)
        return V[:, clamped]

    # ----- energy and derivatives ---------------------------------------------------------
    def _diode_terms(self, V: np.ndarray):
        """Diode voltages, currents (A) and small-signal conductances (S), each (B, n_diodes)."""
        vd = V[:, self.d_a] - V[:, self.d_c]
        x = vd / self.d_nvt
        e = _exp_lin(x)
        current = self.d_is * (e - 1.0)
        gd = self.d_is / self.d_nvt * np.exp(np.minimum(x, _EXP_MAX))
        return vd, x, current, gd

    def energy(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Co-content E (W), shape (B,)."""
        V = self.voltages(s, u)
        dv = (self.A_r @ V.T).T
        E = 0.5 * (dv**2) @ self.conductances(theta)
        if not self.is_linear:
            vd, x, _, _ = self._diode_terms(V)
            xc = np.minimum(x, _EXP_MAX)
            # integral of the C1 continuation beyond _EXP_MAX
            prim = np.exp(xc) * (1.0 + (x - xc) + 0.5 * (x - xc) ** 2)
            E = E + np.sum(self.d_is * (self.d_nvt * (prim - 1.0) - vd), axis=1)
        return E - V[:, self.free] @ self.node_current[self.free]

    def node_currents_out(self, theta: np.ndarray | None, V: np.ndarray) -> np.ndarray:
        """Net current (A) leaving every node through the elements, (B, n_nodes)."""
        dv = (self.A_r @ V.T).T
        out = (self.A_r.T @ (dv * self.conductances(theta)).T).T
        if not self.is_linear:
            _, _, current, _ = self._diode_terms(V)
            out = out + (self.A_d.T @ current.T).T
        return out

    def grad(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """dE/ds (A): current leaving each free node minus the injected current, (B, n_free)."""
        V = self.voltages(s, u)
        return self.node_currents_out(theta, V)[:, self.free] - self.node_current[self.free]

    def current_scale(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Sum of absolute element currents at each free node (A), (B, n_free): the yardstick
        for a relative Kirchhoff residual."""
        V = self.voltages(s, u)
        absA = abs(self.A_r)
        scale = (absA.T @ np.abs((self.A_r @ V.T).T * self.conductances(theta)).T).T
        if not self.is_linear:
            _, _, current, _ = self._diode_terms(V)
            scale = scale + (abs(self.A_d).T @ np.abs(current).T).T
        return scale[:, self.free] + np.abs(self.node_current[self.free])

    def diode_conductances(self, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Small-signal diode conductances dI/dV (S), (B, n_diodes)."""
        return self._diode_terms(self.voltages(s, u))[3]

    def hessian(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Dense d2E/ds2 (S), (B, n_free, n_free). O(B n_free^2) memory."""
        Lff = self.laplacian_blocks(theta)[0].toarray()
        u = self.check_inputs(u)
        s = np.atleast_2d(s)
        B = max(len(u), len(s))
        if self.is_linear:
            return np.broadcast_to(Lff, (B,) + Lff.shape).copy()
        gd = self.diode_conductances(u, s)
        flat = (self._diode_hess_map @ gd.T).T
        return Lff[None] + flat.reshape(B, self.n_free, self.n_free)

    def hessian_sparse(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> sp.csc_matrix:
        """Sparse d2E/ds2 (S) for a single input and state (1-row batches)."""
        Lff = self.laplacian_blocks(theta)[0]
        if self.is_linear:
            return Lff
        gd = self.diode_conductances(u, s)[0]
        Df = self.A_d[:, self.free]
        return (Lff + Df.T @ sp.diags(gd) @ Df).tocsc()

    def dE_dtheta(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """dE/dG_e = 1/2 dV_e^2 (V^2) for each trainable resistor, then :meth:`dE_dgate` (A)
        for each gate, (B, P)."""
        V = self.voltages(s, u)
        dv = V[:, self.r_a[self.trainable]] - V[:, self.r_b[self.trainable]]
        if len(self.gate_sources):
            return np.concatenate([0.5 * dv**2, self.dE_dgate(theta, u, s)], axis=1)
        return 0.5 * dv**2

    def resistor_power(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Power the resistors dissipate, ``sum_e g_e dV_e^2`` (W), per input (B,) (twice the
        resistors' co-content; the diodes' share is not counted)."""
        V = self.voltages(s, u)
        dv = V[:, self.r_a] - V[:, self.r_b]
        return (dv**2) @ self.conductances(theta)

    def edge_voltages(self, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Voltage across each trainable resistor, V(a) - V(b), (B, P)."""
        V = self.voltages(s, u)
        return V[:, self.r_a[self.trainable]] - V[:, self.r_b[self.trainable]]

    def d2E_ds_dtheta(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """d2E/(ds dG_e) = dV_e b_e (V), shape (B, n_free, P). Dense; prefer
        :meth:`contract_mixed` for large networks."""
        dv = self.edge_voltages(u, s)
        return self.B_train.T.toarray()[None] * dv[:, None, :]

    def contract_mixed(self, lam: np.ndarray, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """lam^T d2E/(ds dtheta) for a batch of vectors ``lam`` (B, n_free) -> (B, P), in
        O(B * P) without forming the mixed derivative."""
        dv = self.edge_voltages(u, s)
        return (self.B_train @ np.atleast_2d(lam).T).T * dv

    # ----- batch means (training hot path) ------------------------------------------------
    @cached_property
    def _moment_index(self):
        """Trainable resistors as (lower, higher) node index pairs, and the row/column sets
        of the cross-moment matrix that holds every ``mean_b X_lo Y_hi``."""
        a, b = self.r_a[self.trainable], self.r_b[self.trainable]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        rows, ri = np.unique(lo, return_inverse=True)
        cols, ci = np.unique(hi, return_inverse=True)
        return lo, hi, rows, cols, ri * len(cols) + ci

    def _mean_edge_products(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``mean_b (X_a - X_b)(Y_a - Y_b)`` for each trainable resistor (P,); X, Y (B, n_nodes).

        Expanded into node moments ``mean X_a Y_a`` and one or two cross-moment products
        ``X[:, rows]^T Y[:, cols]`` (BLAS, O(B |rows| |cols|)) when the resistors fill that
        block densely, as in layered networks; a chunked gather otherwise (O(B P))."""
        lo, hi, rows, cols, flat = self._moment_index
        B = len(X)
        if len(rows) * len(cols) <= 4 * len(lo) + 4096:
            diag = np.einsum("bn,bn->n", X, Y)
            cross = np.take(X[:, rows].T @ Y[:, cols], flat)
            cross2 = cross if X is Y else np.take(Y[:, rows].T @ X[:, cols], flat)
            return (diag[lo] + diag[hi] - cross - cross2) / B
        out = np.zeros(len(lo))
        for k in range(0, B, 256):
            Xc, Yc = X[k:k + 256], Y[k:k + 256]
            out += np.einsum("bp,bp->p", Xc[:, lo] - Xc[:, hi], Yc[:, lo] - Yc[:, hi])
        return out / B

    def mean_dE_dtheta(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Batch mean of :meth:`dE_dtheta`, ``mean_b 1/2 dV_e^2`` (V^2), (P,), without the
        (B, P) array (the gates' terms follow, batch-averaged)."""
        V = self.voltages(s, u)
        out = 0.5 * self._mean_edge_products(V, V)
        if len(self.gate_sources):
            out = np.concatenate([out, self.dE_dgate(theta, u, s).mean(axis=0)])
        return out

    def mean_contract_mixed(self, lam: np.ndarray, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Batch mean of :meth:`contract_mixed`, ``mean_b (lam_a - lam_b) dV_e`` (P,)."""
        V = self.voltages(s, u)
        L = np.zeros_like(V)
        L[:, self.free] = lam
        return self._mean_edge_products(L, V)

    # ----- third derivatives (low-temperature expansion) -----------------------------------
    def _diode_curvature(self, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """d2I/dV2 of each diode (S/V), (B, n_diodes); zero on the linear continuation."""
        _, x, _, _ = self._diode_terms(self.voltages(s, u))
        return np.where(x > _EXP_MAX, 0.0, self.d_is / self.d_nvt**2 * np.exp(np.minimum(x, _EXP_MAX)))

    @cached_property
    def _diode_free(self) -> np.ndarray:
        """Dense diode incidence on the free nodes (n_diodes, n_free)."""
        return self.A_d[:, self.free].toarray()

    def third_trace(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray,
                    G: np.ndarray) -> np.ndarray:
        """``sum_jk E_ijk G_jk`` (B, n_free) for ``G`` (B, n, n) or (n, n). Only diodes have a
        third derivative: ``E_ijk = sum_d I''_d a_di a_dj a_dk`` with ``a_d`` the diode's
        incidence on the free nodes. Units: (S/V) x units of G."""
        u = self.check_inputs(u)
        s = np.atleast_2d(s)
        B = max(len(u), len(s))
        if self.is_linear:
            return np.zeros((B, self.n_free))
        a = self._diode_free
        q = np.einsum("di,...ij,dj->...d", a, G, a)
        return (self._diode_curvature(u, s) * q) @ a

    def third_contract(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray,
                       v: np.ndarray) -> np.ndarray:
        """``sum_k E_ijk v_k`` (B, n_free, n_free) for ``v`` (B, n_free): the change of the
        Hessian along ``v``."""
        u = self.check_inputs(u)
        s = np.atleast_2d(s)
        B = max(len(u), len(s))
        if self.is_linear:
            return np.zeros((B, self.n_free, self.n_free))
        w = self._diode_curvature(u, s) * (np.atleast_2d(v) @ self._diode_free.T)
        return (self._diode_hess_map @ w.T).T.reshape(B, self.n_free, self.n_free)


def compile_network(G: nx.Graph) -> ResistiveModel:
    """Compile a resistive network graph into a :class:`ResistiveModel` (validates first)."""
    G = normalise_resistive(G) if not G.is_multigraph() or "family" not in G.graph else G
    validate_resistive(G)
    names = tuple(sorted(G.nodes, key=_natural_key))
    index = {n: i for i, n in enumerate(names)}
    roles = [G.nodes[n]["role"] for n in names]
    free = np.array([i for i, r in enumerate(roles) if r not in CLAMPED_ROLES], dtype=np.intp)
    in_nodes = (_split(G.graph["input_order"]) if G.graph.get("input_order")
                else [names[i] for i, r in enumerate(roles) if r == "input"])
    inputs = np.array([index[n] for n in in_nodes], dtype=np.intp)
    out_nodes = (_split(G.graph["output_order"]) if G.graph.get("output_order")
                 else [names[i] for i, r in enumerate(roles) if r == "output"])
    free_pos = {names[i]: k for k, i in enumerate(free)}
    outputs = np.array([free_pos[n] for n in out_nodes], dtype=np.intp)
    fixed = np.array([i for i, r in enumerate(roles) if r in ("ground", "bias")], dtype=np.intp)
    fixed_v = np.array([0.0 if roles[i] == "ground" else G.nodes[names[i]]["voltage"] for i in fixed])
    default_u = np.array([G.nodes[names[i]].get("voltage", 0.0) for i in inputs], dtype=float)
    current = np.array([G.nodes[n].get("current", 0.0) for n in names], dtype=float)
    cap = np.array([G.nodes[n].get("capacitance", np.nan) for n in names], dtype=float)

    res = sorted(((d["name"], a, b, d) for a, b, d in G.edges(data=True) if d["element"] == "resistor"),
                 key=lambda t: _natural_key(t[0]))
    dio = sorted(((d["name"], d) for _, _, d in G.edges(data=True) if d["element"] == "diode"),
                 key=lambda t: _natural_key(t[0]))
    train = np.array([k for k, (_, _, _, d) in enumerate(res) if d["trainable"]], dtype=np.intp)
    return ResistiveModel(
        node_names=names, free=free, inputs=inputs, outputs=outputs,
        clamped_fixed=fixed, clamped_fixed_v=fixed_v, default_inputs=default_u,
        node_current=current, capacitance=cap,
        resistor_names=tuple(r[0] for r in res),
        r_a=np.array([index[r[1]] for r in res], dtype=np.intp),
        r_b=np.array([index[r[2]] for r in res], dtype=np.intp),
        g_fixed=np.array([r[3]["conductance"] for r in res], dtype=float),
        trainable=train,
        g_min=np.array([res[k][3]["g_min"] for k in train], dtype=float),
        g_max=np.array([res[k][3]["g_max"] for k in train], dtype=float),
        diode_names=tuple(d[0] for d in dio),
        d_a=np.array([index[d[1]["anode"]] for d in dio], dtype=np.intp),
        d_c=np.array([index[d[1]["cathode"]] for d in dio], dtype=np.intp),
        d_is=np.array([d[1]["i_s"] for d in dio], dtype=float),
        d_nvt=np.array([d[1]["n"] * d[1]["vt"] for d in dio], dtype=float),
        name=str(G.graph.get("name", G.graph.get("source", ""))),
        spice_only=str(G.graph.get("spice_only", "")),
        spice_deck=str(G.graph.get("spice_deck", "")) if G.graph.get("spice_only") else "",
        input_sources=tuple((str(G.nodes[n].get("source", "")), float(G.nodes[n].get("source_sign", 1.0)))
                            for n in in_nodes) if G.graph.get("spice_only") else (),
        **_gate_fields(G.graph.get("gate_edges", ()), index),
    )


def _gate_fields(gates, index: dict[str, int]) -> dict:
    """The model's gate-trained MOSFET arrays from the graph attribute ``gate_edges`` (one
    dict per edge, as :func:`analog_ep.netlist.read_spice` writes them)."""
    gates = list(gates)
    return {"gate_names": tuple(g["name"] for g in gates), "gate_sources": tuple(g["source"] for g in gates),
            "m_a": np.array([index[g["a"]] for g in gates], dtype=np.intp),
            "m_b": np.array([index[g["b"]] for g in gates], dtype=np.intp),
            **{key: np.array([float(g[field]) for g in gates]) for key, field in
               (("m_k", "k"), ("m_vto", "vto"), ("vg_default", "vg"), ("vg_min", "vg_min"), ("vg_max", "vg_max"))}}


def _split(value) -> list[str]:
    return [v for v in str(value).replace(",", " ").split() if v]


def _natural_key(name: str):
    """Sort key that orders R2 before R10 and node 9 before node 10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]
