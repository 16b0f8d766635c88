"""Coupled phase-oscillator networks (XY energy) compiled to arrays.

A graph with ``G.graph["family"] == "oscillator"`` describes phases ``phi`` (radians) on
its nodes and the energy (in coupling units; the temperature ``T`` is in the same units)

    E(theta, u, s) = - sum_edges J_e cos(phi_a - phi_b) - sum_free (a_i cos phi_i + c_i sin phi_i)

The node fields are written in Cartesian form ``(a_i, c_i)``: the polar form
``h cos(phi - psi)`` is singular at ``h = 0``, where a field is often started or trained to.
The state ``s`` is the vector of free phases (hidden and output nodes); input and bias
nodes are clamped to phases (inputs: ``u``, bias nodes: their ``phase`` attribute).
Parameters ``theta`` are the trainable couplings ``J_e`` followed by the trainable fields
``a_i`` and then ``c_i``.

Graph schema (``nx.Graph``; node names and edge names are strings):

- node ``role``: ``input``, ``output``, ``hidden`` (default) or ``bias``; ``phase`` (rad):
  default phase of an input, fixed phase of a bias node (free nodes carry none: an output
  or hidden node with a ``phase`` is an error, it would be a clamped output);
  ``a``, ``c`` (default 0): the field on a free node; ``field_trainable`` (default false);
  ``field_bound`` (default 2): ``|a|, |c| <= field_bound`` when trained.
- edge ``coupling`` (``J``, default 0), ``trainable`` (default false), ``j_min``, ``j_max``
  (defaults -2, 2), ``name`` (default ``J<a>_<b>``).
- graph ``input_order`` / ``output_order`` (optional, space- or comma-separated names).

Writing ``Delta_e = phi_a - phi_b = b_e . phi`` (``b_e`` the incidence vector on the free
nodes), the derivatives used by the gradient rules are

    dE/ds          = sum_e J_e sin(Delta_e) b_e + a sin(phi) - c cos(phi)
    d2E/ds2        = sum_e J_e cos(Delta_e) b_e b_e^T + diag(a cos phi + c sin phi)
    d3E/ds3        = sum_e -J_e sin(Delta_e) b_e(x)b_e(x)b_e + diag3(-a sin phi + c cos phi)
    dE/dJ_e = -cos Delta_e,   dE/da_i = -cos phi_i,   dE/dc_i = -sin phi_i

All methods are batched over a leading axis ``B``: ``u`` (B, n_inputs), ``s`` (B, n_free);
values and gradients cost O(B * (edges + nodes)), dense Hessians O(B * n_free^2).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..errors import ConfigError, NetworkError
from ..schema import as_bool, as_float
from .indexing import FreeNodeIndexing

ROLES = ("input", "output", "hidden", "bias")
CLAMPED_ROLES = ("input", "bias")
#: Default bounds of trainable couplings and fields (coupling units). The trainer steps in
#: fractions of the upper bound, so this is also the scale of its learning rate.
J_BOUND = 2.0
FIELD_BOUND = 2.0


def wrap(phi: np.ndarray) -> np.ndarray:
    """Angles wrapped into ``[-pi, pi)``."""
    return (np.asarray(phi) + np.pi) % (2.0 * np.pi) - np.pi


@dataclass(frozen=True, eq=False)
class OscillatorModel(FreeNodeIndexing):
    """Arrays compiled once from an oscillator network graph.

    ``free`` indexes the free nodes (the state), ``inputs`` the input nodes in
    ``input_names`` order, ``outputs`` the output nodes as positions *within the free
    state*; ``field_nodes`` are the positions in the free state of the trainable fields.
    """

    node_names: tuple[str, ...]
    free: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray
    bias: np.ndarray                   # node indices of bias nodes
    bias_phase: np.ndarray             # their fixed phases (rad)
    default_inputs: np.ndarray         # (n_inputs,) default input phases (rad)
    edge_names: tuple[str, ...]
    e_a: np.ndarray
    e_b: np.ndarray
    j_fixed: np.ndarray                # (n_edges,) couplings as in the graph
    trainable: np.ndarray              # indices into edges of the trainable couplings
    j_min: np.ndarray
    j_max: np.ndarray
    a_fixed: np.ndarray                # (n_free,) fields as in the graph
    c_fixed: np.ndarray
    field_nodes: np.ndarray            # positions in the free state of trainable fields
    field_bound: np.ndarray            # (n_field,) |a|, |c| bounds
    name: str = ""

    family = "oscillator"
    input_kind = "input phases"

    # ----- names and sizes -------------------------------------------------------------

    @property
    def n_params(self) -> int:
        return len(self.trainable) + 2 * len(self.field_nodes)

    @property
    def param_names(self) -> tuple[str, ...]:
        fields = [self.node_names[self.free[i]] for i in self.field_nodes]
        return (tuple(self.edge_names[i] for i in self.trainable)
                + tuple(f"a_{n}" for n in fields) + tuple(f"c_{n}" for n in fields))

    @property
    def default_theta(self) -> np.ndarray:
        return np.concatenate([self.j_fixed[self.trainable], self.a_fixed[self.field_nodes],
                               self.c_fixed[self.field_nodes]])

    def theta_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of ``theta`` (coupling units), each (P,)."""
        lo = np.concatenate([self.j_min, -self.field_bound, -self.field_bound])
        hi = np.concatenate([self.j_max, self.field_bound, self.field_bound])
        return lo, hi

    def __repr__(self) -> str:
        return (f"OscillatorModel({self.name!r}: {self.n_nodes} oscillators, {self.n_free} free, "
                f"{len(self.inputs)} inputs, {len(self.outputs)} outputs, {len(self.e_a)} couplings "
                f"({len(self.trainable)} trainable), {len(self.field_nodes)} trainable fields)")

    # ----- precomputed structure -------------------------------------------------------
    @cached_property
    def _pa(self) -> np.ndarray:
        """Free positions of the edges' first ends; clamped ends point at a padding slot n_free."""
        p = self.free_pos[self.e_a]
        return np.where(p < 0, self.n_free, p)

    @cached_property
    def _pb(self) -> np.ndarray:
        p = self.free_pos[self.e_b]
        return np.where(p < 0, self.n_free, p)

    @cached_property
    def incidence_free(self) -> sp.csr_matrix:
        """Incidence of the couplings on the free nodes (n_edges, n_free): rows ``b_e``."""
        m, n = len(self.e_a), self.n_free
        rows = np.concatenate([np.arange(m), np.arange(m)])
        cols = np.concatenate([self._pa, self._pb])
        vals = np.concatenate([np.ones(m), -np.ones(m)])
        keep = cols < n
        return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(m, n))

    @cached_property
    def _incidence_T(self) -> sp.csr_matrix:
        """Transpose of :attr:`incidence_free` (n_free, n_edges), for scattering edge terms."""
        return self.incidence_free.T.tocsr()

    @cached_property
    def _hess_map(self) -> sp.csr_matrix:
        """Sparse map (n_free^2, n_edges): edge weights w_e -> flattened sum_e w_e b_e b_e^T."""
        n, m = self.n_free, len(self.e_a)
        pa, pb = self._pa, self._pb
        rows, cols, vals = [], [], []
        for p, q, v in ((pa, pa, 1.0), (pb, pb, 1.0), (pa, pb, -1.0), (pb, pa, -1.0)):
            keep = (p < n) & (q < n)
            rows.append(p[keep] * n + q[keep])
            cols.append(np.flatnonzero(keep))
            vals.append(np.full(int(keep.sum()), v))
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n * n, m))

    # ----- parameters ----------------------------------------------------------------------
    def check_theta(self, theta: np.ndarray | None) -> np.ndarray:
        """``theta`` as a finite (P,) array; None means the graph's values."""
        if theta is None:
            return self.default_theta
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.n_params,):
            raise ConfigError(f"expected {self.n_params} parameters ({', '.join(self.param_names)}), "
                              f"got shape {theta.shape}")
        if not np.all(np.isfinite(theta)):
            bad = [self.param_names[i] for i in np.flatnonzero(~np.isfinite(theta))]
            raise ConfigError(f"parameters {', '.join(bad)} are NaN or infinite")
        return theta

    def couplings(self, theta: np.ndarray | None) -> np.ndarray:
        """Every coupling ``J_e`` (n_edges,) with the trainable ones set from ``theta``."""
        theta = self.check_theta(theta)
        J = self.j_fixed.copy()
        J[self.trainable] = theta[:len(self.trainable)]
        return J

    def fields(self, theta: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Fields ``(a, c)`` on the free nodes, each (n_free,)."""
        theta = self.check_theta(theta)
        k, f = len(self.trainable), len(self.field_nodes)
        a, c = self.a_fixed.copy(), self.c_fixed.copy()
        a[self.field_nodes] = theta[k:k + f]
        c[self.field_nodes] = theta[k + f:]
        return a, c

    # ----- state <-> phases ------------------------------------------------------------------
    def check_state(self, s: np.ndarray) -> np.ndarray:
        """Free phases as a finite (B, n_free) array."""
        s = np.atleast_2d(np.asarray(s, dtype=float))
        if s.shape[-1] != self.n_free:
            raise ConfigError(f"expected free phases of shape (batch, {self.n_free}) for "
                              f"{', '.join(self.free_names)}; got {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ConfigError("free phases contain NaN or infinite values")
        return s

    def phases(self, s: np.ndarray, u: np.ndarray | None) -> np.ndarray:
        """Every node's phase (B, n_nodes) from the free state and the input phases."""
        s = self.check_state(s)
        u = self.check_inputs(u)
        B = max(len(s), len(u))
        P = np.empty((B, self.n_nodes))
        P[:, self.free] = s
        P[:, self.inputs] = u
        P[:, self.bias] = self.bias_phase
        return P

    def _terms(self, theta, u, s):
        """Edge phase differences (B, m), couplings (m,), free phases (B, n), fields (a, c)."""
        P = self.phases(s, u)
        delta = P[:, self.e_a] - P[:, self.e_b]
        a, c = self.fields(theta)
        return delta, self.couplings(theta), P[:, self.free], a, c

    def _assemble(self, w_edges: np.ndarray, diag: np.ndarray) -> np.ndarray:
        """``sum_e w_e b_e b_e^T + diag(diag)`` for batches w (B, m), diag (B, n) -> (B, n, n)."""
        B, n = diag.shape
        flat = (self._hess_map @ w_edges.T).T.reshape(B, n, n)
        flat[:, np.arange(n), np.arange(n)] += diag
        return flat

    def _edge_quad(self, G: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
        """``b_e^T G b_e`` for the edges with free positions pa, pb (padding slot n_free for
        clamped ends), G (B, n, n) -> (B, len(pa))."""
        B, n = len(G), self.n_free
        Gp = np.zeros((B, n + 1, n + 1))
        Gp[:, :n, :n] = G
        return Gp[:, pa, pa] + Gp[:, pb, pb] - Gp[:, pa, pb] - Gp[:, pb, pa]

    def _edge_dot(self, v: np.ndarray) -> np.ndarray:
        """``b_e . v`` for every edge, v (B, n) -> (B, m)."""
        vp = np.concatenate([v, np.zeros((len(v), 1))], axis=1)
        return vp[:, self._pa] - vp[:, self._pb]

    # ----- energy and derivatives -------------------------------------------------------------
    def energy(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """E (coupling units), shape (B,)."""
        delta, J, phi, a, c = self._terms(theta, u, s)
        return -np.cos(delta) @ J - np.cos(phi) @ a - np.sin(phi) @ c

    def grad(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """dE/ds (torques with the sign flipped), (B, n_free)."""
        delta, J, phi, a, c = self._terms(theta, u, s)
        return (self._incidence_T @ (J * np.sin(delta)).T).T + a * np.sin(phi) - c * np.cos(phi)

    def node_scale(self, theta: np.ndarray | None) -> np.ndarray:
        """Largest torque each free node can feel, ``sum_e |J_e| |b_e| + |h_i|`` (n_free,):
        the yardstick of a relative stationarity residual."""
        J = self.couplings(theta)
        a, c = self.fields(theta)
        return abs(self.incidence_free).T @ np.abs(J) + np.hypot(a, c)

    def hessian(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Dense d2E/ds2, (B, n_free, n_free)."""
        delta, J, phi, a, c = self._terms(theta, u, s)
        return self._assemble(J * np.cos(delta), a * np.cos(phi) + c * np.sin(phi))

    def _third(self, theta, u, s):
        """Third-derivative coefficients: per edge -J sin(Delta) (B, m), per node (B, n)."""
        delta, J, phi, a, c = self._terms(theta, u, s)
        return -J * np.sin(delta), -a * np.sin(phi) + c * np.cos(phi)

    def third_trace(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray,
                    G: np.ndarray) -> np.ndarray:
        """``sum_jk E_ijk G_jk`` for a batch of matrices G (B, n, n) -> (B, n_free)."""
        f3, g3 = self._third(theta, u, s)
        G = np.broadcast_to(np.asarray(G, dtype=float), (len(f3), self.n_free, self.n_free))
        q = self._edge_quad(G, self._pa, self._pb)
        return (self._incidence_T @ (f3 * q).T).T + g3 * np.diagonal(G, axis1=1, axis2=2)

    def third_contract(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray,
                       v: np.ndarray) -> np.ndarray:
        """``sum_k E_ijk v_k`` for a batch of vectors v (B, n) -> (B, n_free, n_free)."""
        f3, g3 = self._third(theta, u, s)
        v = np.broadcast_to(np.atleast_2d(np.asarray(v, dtype=float)), g3.shape)
        return self._assemble(f3 * self._edge_dot(v), g3 * v)

    def dE_dtheta(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """dE/dtheta: ``-cos Delta_e`` per trainable coupling, ``-cos phi_i``, ``-sin phi_i``
        per trainable field, (B, P)."""
        P = self.phases(s, u)
        t = self.trainable
        phi = P[:, self.free[self.field_nodes]]
        return np.concatenate([-np.cos(P[:, self.e_a[t]] - P[:, self.e_b[t]]),
                               -np.cos(phi), -np.sin(phi)], axis=1)

    def contract_mixed(self, lam: np.ndarray, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """``lam^T d2E/(ds dtheta)`` for a batch of vectors lam (B, n_free) -> (B, P):
        ``sin(Delta_e) b_e.lam`` per coupling, ``sin(phi_i) lam_i``, ``-cos(phi_i) lam_i``
        per field. The mixed derivative does not depend on theta."""
        P = self.phases(s, u)
        lam = np.atleast_2d(np.asarray(lam, dtype=float))
        t = self.trainable
        bl = self._edge_dot(np.broadcast_to(lam, (len(P), self.n_free)))[:, t]
        phi = P[:, self.free[self.field_nodes]]
        lf = lam[:, self.field_nodes]
        return np.concatenate([np.sin(P[:, self.e_a[t]] - P[:, self.e_b[t]]) * bl,
                               np.sin(phi) * lf, -np.cos(phi) * lf], axis=1)

    def d2E_ds_dtheta(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Dense d2E/(ds dtheta), (B, n_free, P)."""
        n = self.n_free
        eye = np.eye(n)
        s = self.check_state(s)
        B = max(len(s), len(self.check_inputs(u)))
        cols = [self.contract_mixed(np.broadcast_to(eye[i], (B, n)), u, s) for i in range(n)]
        return np.stack(cols, axis=1)

    def mixed_hessian_trace(self, theta: np.ndarray | None, u: np.ndarray, s: np.ndarray,
                            G: np.ndarray) -> np.ndarray:
        """``tr(G d2/ds2 dE/dtheta_p)`` for each parameter, G (B, n, n) -> (B, P):
        ``cos(Delta_e) b_e^T G b_e`` per coupling, ``G_ii cos phi_i``, ``G_ii sin phi_i``."""
        P = self.phases(s, u)
        B, n = len(P), self.n_free
        G = np.broadcast_to(np.asarray(G, dtype=float), (B, n, n))
        t = self.trainable
        q = self._edge_quad(G, self._pa[t], self._pb[t])
        phi = P[:, self.free[self.field_nodes]]
        gd = np.diagonal(G, axis1=1, axis2=2)[:, self.field_nodes]
        return np.concatenate([np.cos(P[:, self.e_a[t]] - P[:, self.e_b[t]]) * q,
                               gd * np.cos(phi), gd * np.sin(phi)], axis=1)

    # ----- structure ----------------------------------------------------------------------
    def zero_mode_groups(self, theta: np.ndarray | None, tol: float = 1e-12) -> list[tuple[str, ...]]:
        """Groups of free oscillators with a zero mode: connected through non-zero couplings,
        with no non-zero coupling to a clamped node and no non-zero field. Rotating such a
        group as a whole leaves E unchanged, so no minimum is stable."""
        J = self.couplings(theta)
        a, c = self.fields(theta)
        n = self.n_free
        on = np.abs(J) > tol
        pa, pb = self._pa[on], self._pb[on]
        inner = (pa < n) & (pb < n)
        adj = sp.csr_matrix((np.ones(int(inner.sum())), (pa[inner], pb[inner])), shape=(n, n))
        k, label = connected_components(adj, directed=False)
        anchored = np.zeros(k, dtype=bool)
        anchored[label[np.hypot(a, c) > tol]] = True
        edge_anchor = np.concatenate([pa[~inner & (pa < n)], pb[~inner & (pb < n)]])
        anchored[label[edge_anchor]] = True
        names = self.free_names
        return [tuple(names[i] for i in np.flatnonzero(label == g)) for g in np.flatnonzero(~anchored)]


# ----- graphs -> model ----------------------------------------------------------------------

def _split(value) -> list[str]:
    return [v for v in str(value).replace(",", " ").split() if v]


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def validate_oscillator(G: nx.Graph) -> None:
    """Check an oscillator network; raise NetworkError naming the node or edge at fault.

    Rules: known roles; input and bias phases finite (bias nodes need one); free (output,
    hidden) nodes carry no fixed phase (a clamped output cannot be trained or read out);
    finite couplings and fields inside their bounds; no self-couplings or parallel
    couplings; at least one output; no isolated free oscillator (no coupling at all);
    every output coupled, through free oscillators, to some input; no group of free
    oscillators without any coupling to a clamped node and without any field (a zero mode).
    """
    if str(G.graph.get("family", "")).lower() != "oscillator":
        raise NetworkError(f"graph family is {G.graph.get('family', 'resistive')!r}, not 'oscillator'")
    if G.is_multigraph():
        seen = set()
        for a, b in G.edges():
            pair = frozenset((a, b))
            if pair in seen:
                raise NetworkError(f"oscillators {a!r} and {b!r} are coupled twice; merge the couplings")
            seen.add(pair)
    roles = {}
    for node, d in G.nodes(data=True):
        role = str(d.get("role", "hidden")).lower()
        if role not in ROLES:
            raise NetworkError(f"oscillator {node!r}: unknown role {role!r}; expected one of {', '.join(ROLES)}")
        roles[node] = role
        if role in CLAMPED_ROLES:
            if role == "bias" and "phase" not in d:
                raise NetworkError(f"bias oscillator {node!r} has no 'phase'")
            if "phase" in d and not math.isfinite(as_float(d["phase"], f"oscillator {node!r} phase")):
                raise NetworkError(f"oscillator {node!r}: phase must be finite, got {d['phase']}")
            for k in ("a", "c"):
                if k in d and as_float(d[k], f"oscillator {node!r} field {k!r}") != 0.0:
                    raise NetworkError(f"clamped oscillator {node!r} has a field {k!r}; a field on a "
                                       "clamped phase is a constant and has no effect")
        else:
            if "phase" in d:
                raise NetworkError(f"{role} oscillator {node!r} has a fixed 'phase': "
                                   f"{'an output must be free' if role == 'output' else 'free oscillators are not clamped'}"
                                   "; only input and bias oscillators have phases")
            bound = as_float(d.get("field_bound", FIELD_BOUND), f"oscillator {node!r} field_bound")
            for k in ("a", "c"):
                v = as_float(d.get(k, 0.0), f"oscillator {node!r} field {k!r}")
                if not math.isfinite(v):
                    raise NetworkError(f"oscillator {node!r}: field {k!r} must be finite, got {v}")
                if as_bool(d.get("field_trainable", False)) and abs(v) > bound:
                    raise NetworkError(f"oscillator {node!r}: field {k}={v} outside its bound +-{bound}")
    names = set()
    for a, b, d in G.edges(data=True):
        name = str(d.get("name", f"J{a}_{b}"))
        if name in names:
            raise NetworkError(f"duplicate coupling name {name!r}")
        names.add(name)
        if a == b:
            raise NetworkError(f"coupling {name} connects oscillator {a!r} to itself")
        J = as_float(d.get("coupling", 0.0), f"coupling {name} value")
        if not math.isfinite(J):
            raise NetworkError(f"coupling {name}: value must be finite, got {J}")
        lo = as_float(d.get("j_min", -J_BOUND), f"coupling {name} j_min")
        hi = as_float(d.get("j_max", J_BOUND), f"coupling {name} j_max")
        if not lo <= hi:
            raise NetworkError(f"coupling {name}: bounds must satisfy j_min <= j_max, got {lo}, {hi}")
        if as_bool(d.get("trainable", False)) and not lo <= J <= hi:
            raise NetworkError(f"coupling {name}: value {J} outside its bounds [{lo}, {hi}]")
    outputs = [n for n, r in roles.items() if r == "output"]
    if not outputs:
        raise NetworkError("the network has no output oscillator")
    for node, role in roles.items():
        if role not in CLAMPED_ROLES and G.degree(node) == 0:
            raise NetworkError(f"free oscillator {node!r} is isolated: it has no coupling")
    free_graph = G.subgraph([n for n, r in roles.items() if r not in CLAMPED_ROLES])
    inputs = [n for n, r in roles.items() if r == "input"]
    for node in outputs:
        comp = nx.node_connected_component(free_graph.to_undirected(as_view=True), node)
        if not any(G.has_edge(c, i) for c in comp for i in inputs):
            raise NetworkError(f"output oscillator {node!r} is not coupled to any input")
    order = G.graph.get("output_order")
    for name in _split(order) if order else []:
        if name not in roles:
            raise NetworkError(f"output_order names unknown oscillator {name!r}")
        if roles[name] in CLAMPED_ROLES:
            raise NetworkError(f"output {name!r} is clamped (role {roles[name]!r}); outputs must be free")


def compile_oscillator(G: nx.Graph) -> OscillatorModel:
    """Compile an oscillator network graph into an :class:`OscillatorModel` (validates
    first; raises NetworkError naming a group of free oscillators with a zero mode)."""
    validate_oscillator(G)
    names = tuple(sorted((str(n) for n in G.nodes), key=_natural_key))
    data = {str(n): d for n, d in G.nodes(data=True)}
    index = {n: i for i, n in enumerate(names)}
    roles = [str(data[n].get("role", "hidden")).lower() for n in names]
    free = np.array([i for i, r in enumerate(roles) if r not in CLAMPED_ROLES], dtype=np.intp)
    free_pos = {names[i]: k for k, i in enumerate(free)}
    in_nodes = (_split(G.graph["input_order"]) if G.graph.get("input_order")
                else [names[i] for i, r in enumerate(roles) if r == "input"])
    for n in in_nodes:
        if n not in index or roles[index[n]] != "input":
            raise NetworkError(f"input_order names {n!r}, which is not an input oscillator")
    out_nodes = (_split(G.graph["output_order"]) if G.graph.get("output_order")
                 else [names[i] for i, r in enumerate(roles) if r == "output"])
    bias = np.array([i for i, r in enumerate(roles) if r == "bias"], dtype=np.intp)

    def node_float(n, key, default):
        return as_float(data[n].get(key, default), f"oscillator {n!r} {key}")

    edges = []
    for a, b, d in G.edges(data=True):
        a, b = str(a), str(b)
        edges.append((str(d.get("name", f"J{a}_{b}")), a, b, d))
    edges.sort(key=lambda t: _natural_key(t[0]))
    train = np.array([k for k, e in enumerate(edges) if as_bool(e[3].get("trainable", False))], dtype=np.intp)
    fnodes = [n for n in (names[i] for i in free) if as_bool(data[n].get("field_trainable", False))]
    model = OscillatorModel(
        node_names=names, free=free,
        inputs=np.array([index[n] for n in in_nodes], dtype=np.intp),
        outputs=np.array([free_pos[n] for n in out_nodes], dtype=np.intp),
        bias=bias, bias_phase=np.array([node_float(names[i], "phase", 0.0) for i in bias]),
        default_inputs=np.array([node_float(n, "phase", 0.0) for n in in_nodes]),
        edge_names=tuple(e[0] for e in edges),
        e_a=np.array([index[e[1]] for e in edges], dtype=np.intp),
        e_b=np.array([index[e[2]] for e in edges], dtype=np.intp),
        j_fixed=np.array([as_float(e[3].get("coupling", 0.0), f"coupling {e[0]}") for e in edges]),
        trainable=train,
        j_min=np.array([as_float(edges[k][3].get("j_min", -J_BOUND), "j_min") for k in train]),
        j_max=np.array([as_float(edges[k][3].get("j_max", J_BOUND), "j_max") for k in train]),
        a_fixed=np.array([node_float(names[i], "a", 0.0) for i in free]),
        c_fixed=np.array([node_float(names[i], "c", 0.0) for i in free]),
        field_nodes=np.array([free_pos[n] for n in fnodes], dtype=np.intp),
        field_bound=np.array([node_float(n, "field_bound", FIELD_BOUND) for n in fnodes]),
        name=str(G.graph.get("name", G.graph.get("source", ""))),
    )
    _check_structural_zero_modes(model)
    names_p = model.param_names
    if len(set(names_p)) != len(names_p):
        raise NetworkError("parameter names collide (a coupling is named like a field a_<node>/c_<node>)")
    return model


def _check_structural_zero_modes(model: OscillatorModel) -> None:
    """A group with no coupling to a clamped node and no field, whatever the values of the
    trainable couplings and fields (probed with every parameter set to 1)."""
    groups = model.zero_mode_groups(np.ones(model.n_params))
    if groups:
        raise NetworkError(_zero_mode_message(groups))


def _zero_mode_message(groups) -> str:
    parts = ["{" + ", ".join(g) + "}" for g in groups]
    return ("free oscillators " + "; ".join(parts) + " form a group with no coupling to a clamped "
            "oscillator and no field: rotating the group costs no energy (a zero mode), so no "
            "equilibrium is stable")
