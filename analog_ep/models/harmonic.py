"""Quantum harmonic networks: coupled oscillators in their Gaussian ground state.

A graph with ``family = "quantum"`` and ``model = "harmonic"`` describes (hbar = m = 1)

    H = 1/2 sum_i p_i^2 + 1/2 x^T K x - f . x,   K = sum_edges k_e b_e b_e^T + diag(k_i),

with ``b_e = e_i - e_j``: springs ``k_e > 0`` (edge attribute ``k``) and on-site terms
``k_i > 0`` (node attribute ``k``), so ``K`` is positive definite. Inputs are forces ``f``
on the input modes (node attribute ``f`` is the default), the cost operator is
``C = 1/2 sum_o (x_o - d_o)^2``. Node roles are ``input``, ``output``, ``hidden``; every
``k`` is trainable unless ``trainable`` is false. Parameters are named ``k[i,j]`` (springs,
graph edge order) then ``k[i]`` (on-site, node order).

The ground state is Gaussian with ``<x> = K^-1 f`` and ``Cov(x) = K^(-1/2) / 2``, hence

    <C> = 1/2 sum_o (<x_o> - d_o)^2 + 1/4 (K^(-1/2))_oo          exactly,

and nudging ``H + beta C`` only changes ``K -> K + beta Pi`` and ``f -> f + beta Pi d``
(``Pi`` selects the outputs), so one ``eigh`` of an ``n x n`` matrix serves a whole batch
and EP runs on hundreds of modes. The outputs are linear in the inputs: the task is
regression of a linear map, not classification.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from ..errors import ConfigError, NetworkError
from .quantum import ROLES, _scalar, _trainable

#: Smallest spring or on-site constant a parameter may take (keeps K positive definite).
K_MIN = 1e-3


@dataclass(frozen=True)
class HarmonicModel:
    """Compiled harmonic network. ``theta (P,)`` spring constants; ``f (B, n_inputs)``
    forces; ``d (B, n_outputs)`` target positions."""

    node_names: tuple[str, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    param_names: tuple[str, ...]
    input_index: np.ndarray
    output_index: np.ndarray
    edges: np.ndarray          # (E, 2)
    k_edge0: np.ndarray        # (E,)
    k_node0: np.ndarray        # (n,)
    default_inputs: np.ndarray
    param_is_edge: np.ndarray  # (P,) bool
    param_slot: np.ndarray     # (P,)
    source: str = "<graph>"

    @property
    def n_modes(self) -> int:
        return len(self.node_names)

    @property
    def default_theta(self) -> np.ndarray:
        """Spring constants as written in the file, ``(P,)``."""
        e, slot = self.param_is_edge, self.param_slot
        theta = np.empty(len(self.param_names))
        theta[e], theta[~e] = self.k_edge0[slot[e]], self.k_node0[slot[~e]]
        return theta

    def __repr__(self) -> str:
        return (f"HarmonicModel({self.source}: {self.n_modes} modes, {len(self.edges)} springs, "
                f"{len(self.param_names)} parameters)")

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full ``(k_edge (E,), k_node (n,))`` with trainable entries from ``theta``."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (len(self.param_names),):
            raise ConfigError(f"theta has shape {theta.shape}; {self.source} has "
                              f"{len(self.param_names)} parameters")
        ke, kn = self.k_edge0.copy(), self.k_node0.copy()
        ke[self.param_slot[self.param_is_edge]] = theta[self.param_is_edge]
        kn[self.param_slot[~self.param_is_edge]] = theta[~self.param_is_edge]
        return ke, kn

    def stiffness(self, theta: np.ndarray) -> np.ndarray:
        """``(n, n)`` ``K = sum_e k_e b_e b_e^T + diag(k_i)``."""
        ke, kn = self.split(theta)
        if np.any(ke <= 0) or np.any(kn <= 0):
            raise ConfigError(f"every spring and on-site constant of {self.source} must be > 0 "
                              f"(K positive definite)")
        K = np.diag(kn)
        i, j = self.edges[:, 0], self.edges[:, 1]
        np.add.at(K, (i, i), ke)
        np.add.at(K, (j, j), ke)
        np.add.at(K, (i, j), -ke)
        np.add.at(K, (j, i), -ke)
        return K

    def forces(self, f: np.ndarray) -> np.ndarray:
        """``(B, n)`` force on every mode from input forces ``f (B, n_inputs)``."""
        f = np.atleast_2d(np.asarray(f, dtype=float))
        if f.shape[1] != len(self.input_names) or not np.all(np.isfinite(f)):
            raise ConfigError(f"inputs must be finite forces of shape (B, {len(self.input_names)}) "
                              f"for {list(self.input_names)} of {self.source}; got {f.shape}")
        out = np.zeros((len(f), self.n_modes))
        out[:, self.input_index] = f
        return out

    def ground_state(self, theta: np.ndarray, f: np.ndarray, beta: float = 0.0,
                     d: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(B, n)`` and covariance ``(n, n)`` of x in the ground state of ``H + beta C``.

        ``K_beta = K + beta Pi``, ``<x> = K_beta^-1 (f + beta Pi d)``,
        ``Cov = K_beta^(-1/2) / 2``; one ``eigh``, ``O(n^3 + B n^2)``.
        """
        K = self.stiffness(theta)
        force = self.forces(f)
        o = self.output_index
        if beta != 0.0:
            K[o, o] += beta
            force[:, o] += beta * d
        lam, V = np.linalg.eigh(K)
        mean = ((force @ V) / lam) @ V.T
        cov = 0.5 * (V / np.sqrt(lam)) @ V.T
        return mean, cov

    def local_terms(self, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
        """``(B, P)`` ``<dH/dk>``: ``1/2 <(x_i - x_j)^2>`` (springs), ``1/2 <x_i^2>`` (on-site)."""
        slot = self.param_slot
        out = np.empty((len(mean), len(self.param_names)))
        e = self.param_is_edge
        i, j = self.edges[slot[e], 0], self.edges[slot[e], 1]
        out[:, e] = 0.5 * ((mean[:, i] - mean[:, j]) ** 2 + cov[i, i] + cov[j, j] - 2 * cov[i, j])
        n = slot[~e]
        out[:, ~e] = 0.5 * (mean[:, n] ** 2 + cov[n, n])
        return out

    def expected_cost(self, mean: np.ndarray, cov: np.ndarray, d: np.ndarray) -> np.ndarray:
        """``(B,)`` ``<C> = 1/2 sum_o (<x_o> - d_o)^2 + 1/2 sum_o Cov_oo``."""
        o = self.output_index
        return 0.5 * np.sum((mean[:, o] - d) ** 2, axis=1) + 0.5 * np.trace(cov[np.ix_(o, o)])

    def check_targets(self, d: np.ndarray, batch: int) -> np.ndarray:
        d = np.atleast_2d(np.asarray(d, dtype=float))
        if d.shape != (batch, len(self.output_names)) or not np.all(np.isfinite(d)):
            raise ConfigError(f"targets must be finite with shape ({batch}, {len(self.output_names)}) "
                              f"for outputs {list(self.output_names)} of {self.source}; got {d.shape}")
        return d


def compile_harmonic(G: nx.Graph) -> HarmonicModel:
    """Validate a harmonic-network graph (``model = "harmonic"``) and compile it.

    Raises :class:`NetworkError` naming the node or edge at fault (unknown role,
    non-positive or complex ``k``, no input or output, self-loops, repeated springs).
    """
    source = str(G.graph.get("source", "<graph>"))
    if str(G.graph.get("family", "")).lower() != "quantum" or \
            str(G.graph.get("model", "")).lower() != "harmonic":
        raise NetworkError(f"{source}: a harmonic network needs family = 'quantum' and "
                           f"model = 'harmonic'")
    if G.is_directed():
        G = G.to_undirected(as_view=True)
    names = tuple(str(v) for v in G.nodes)
    index = {v: i for i, v in enumerate(G.nodes)}
    roles, kn, f0, ntrain = [], [], [], []
    for v, attrs in G.nodes(data=True):
        where = f"{source}: node {v!r}"
        role = str(attrs.get("role", "hidden")).lower()
        if role not in ROLES:
            raise NetworkError(f"{where}: unknown role {role!r}; a mode is one of {', '.join(ROLES)}")
        k = _scalar(attrs.get("k", 1.0), "k", where)
        if k <= 0:
            raise NetworkError(f"{where}: on-site constant k = {k} must be > 0 (K positive definite)")
        roles.append(role), kn.append(k), f0.append(_scalar(attrs.get("f", 0.0), "f", where))
        ntrain.append(_trainable(attrs.get("trainable", True)))
    roles_arr = np.array(roles)
    if not np.any(roles_arr == "input") or not np.any(roles_arr == "output"):
        raise NetworkError(f"{source}: a harmonic network needs at least one input and one output mode")
    edges, ke, etrain, seen = [], [], [], set()
    for a, c, attrs in G.edges(data=True):
        where = f"{source}: edge ({a!r}, {c!r})"
        if a == c or frozenset((a, c)) in seen:
            raise NetworkError(f"{where}: a spring joins two different modes, once")
        seen.add(frozenset((a, c)))
        k = _scalar(attrs.get("k", 1.0), "k", where)
        if k <= 0:
            raise NetworkError(f"{where}: spring constant k = {k} must be > 0")
        edges.append((index[a], index[c])), ke.append(k)
        etrain.append(_trainable(attrs.get("trainable", True)))
    edges_arr = np.array(edges, dtype=int).reshape(-1, 2)
    pnames, is_edge, slots = [], [], []
    for e, (i, j) in enumerate(edges_arr):
        if etrain[e]:
            pnames.append(f"k[{names[i]},{names[j]}]"), is_edge.append(True), slots.append(e)
    for i in range(len(names)):
        if ntrain[i]:
            pnames.append(f"k[{names[i]}]"), is_edge.append(False), slots.append(i)
    inputs, outputs = np.flatnonzero(roles_arr == "input"), np.flatnonzero(roles_arr == "output")
    return HarmonicModel(
        node_names=names, input_names=tuple(names[i] for i in inputs),
        output_names=tuple(names[i] for i in outputs), param_names=tuple(pnames),
        input_index=inputs, output_index=outputs, edges=edges_arr,
        k_edge0=np.array(ke, dtype=float), k_node0=np.array(kn, dtype=float),
        default_inputs=np.array(f0)[inputs], param_is_edge=np.array(is_edge, dtype=bool),
        param_slot=np.array(slots, dtype=int), source=source)


__all__ = ["HarmonicModel", "compile_harmonic", "K_MIN"]
