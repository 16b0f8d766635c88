"""Qubit networks: transverse-field Ising Hamiltonians compiled from graphs.

A graph with ``G.graph["family"] == "quantum"`` describes

    H(theta, u) = sum_edges J_ij X_i X_j + sum_i b_i X_i + sum_i h_i Z_i + sum_(i in inputs) u_i X_i

and the cost operator ``C(d) = 1/2 sum_(o in outputs) (X_o - d_o)^2``. Energies are in the
Hamiltonian's own units (hbar = 1). Node attributes: ``role`` (``input``, ``output``,
``hidden``; default ``hidden``), ``b``, ``h`` (fields, default 0), ``u`` (default input
field of an input node, default 0), ``trainable`` (default true: the node's ``b`` and ``h``
are trained), ``trainable_b`` / ``trainable_h`` (override ``trainable`` for one field). Edge attributes: ``J`` (default 0), ``trainable`` (default true), ``operator``
(only ``"XX"``). Parameters are named ``J[i,j]``, ``b[i]``, ``h[i]`` by node name, in the
order: trainable couplings (graph edge order), trainable ``b`` (node order), trainable ``h``.

**Basis.** Everything is computed in the product eigenbasis of the ``X_i``: basis index
``k`` has ``x_i = +1`` when bit ``i`` of ``k`` is 0 and ``x_i = -1`` when it is 1. There
``X_i X_j``, ``X_i`` and ``C`` are diagonal and ``Z_i`` flips bit ``i``, so ``H`` is a real
symmetric sparse matrix with ``1 + (number of non-zero h)`` entries per row, and an
X-basis measurement samples ``|psi_k|^2`` directly.

**Traps of the model** (docs/PHYSICS.md, section 2.2). ``P = prod_i Z_i`` (flip every bit)
anticommutes with every ``X_i`` and commutes with ``X_i X_j`` and ``Z_i``. With
``b = u = 0`` every non-degenerate eigenstate has ``<X_o> = 0`` for every J and h, so every
J and h gradient vanishes (only the parity-odd b fields feel a linear response);
with ``b = 0``, ``<X_o>(-u) = -<X_o>(u)``; when ``|J|`` outweighs ``|h|`` the two parity
sectors are split by an exponentially small gap. Hence the documented training defaults
in :mod:`analog_ep.tasks.quantum`: inputs encoded with ``u`` never zero on every input
qubit, ``b`` started non-zero and ``|h| > |J|`` at the start.

Eigenstates come from a dense ``eigh`` (all levels, up to :data:`DENSE_MAX_QUBITS`) or from
Lanczos (``eigsh``, the lowest ``n + 2`` levels, up to :data:`LANCZOS_MAX_QUBITS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, eigsh

from ..errors import ConfigError, ConvergenceError, NetworkError

#: Largest network for dense diagonalisation (a 2^12 x 2^12 matrix is 128 MiB, eigh ~10 s).
DENSE_MAX_QUBITS = 12
#: Largest network for Lanczos: a state of 2^20 doubles is 8 MiB and the sparse H ~1 GiB.
LANCZOS_MAX_QUBITS = 20
#: ``method="auto"`` uses dense diagonalisation up to this many qubits, Lanczos above.
AUTO_DENSE_QUBITS = 8
#: Gibbs states need every level: one dense eigendecomposition per sample.
GIBBS_MAX_QUBITS = 10
#: Eigensolver tolerance of Lanczos (relative to the eigenvalue).
LANCZOS_TOL = 1e-12
ROLES = ("input", "output", "hidden")
KNOWN_OPERATORS = ("XX",)
NON_HERMITIAN_OPERATORS = ("X+", "X-", "S+", "S-", "SIGMA+", "SIGMA-", "SP", "SM", "A", "ADAG")


class DegenerateLevelError(ConvergenceError):
    """The followed eigenstate is (nearly) degenerate: its gradient is not defined.

    ``gap`` is the distance to the nearest other level and ``tol`` the tolerance it
    fell below; ``sample`` the index of the input in its batch (or None).
    """

    def __init__(self, message: str, gap: float, tol: float, sample: int | None = None):
        super().__init__(message)
        self.gap, self.tol, self.sample = gap, tol, sample


@dataclass(frozen=True)
class QubitModel:
    """Compiled qubit network: index arrays and fixed values, no networkx inside.

    ``theta`` has shape ``(P,)`` (order ``param_names``); ``u`` ``(B, n_inputs)`` fields on
    the input qubits (order ``input_names``); ``d`` ``(B, n_outputs)`` targets in [-1, 1].
    """

    node_names: tuple[str, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    param_names: tuple[str, ...]
    input_index: np.ndarray      # (n_inputs,) qubit index of each input
    output_index: np.ndarray     # (n_outputs,)
    edges: np.ndarray            # (E, 2) qubit indices of the couplings
    J0: np.ndarray               # (E,) couplings from the file
    b0: np.ndarray               # (n,) X fields from the file
    h0: np.ndarray               # (n,) Z fields from the file
    default_inputs: np.ndarray   # (n_inputs,) input fields from the file
    param_kind: np.ndarray       # (P,) 0 = J, 1 = b, 2 = h
    param_slot: np.ndarray       # (P,) edge index (J) or qubit index (b, h)
    source: str = "<graph>"

    @property
    def n_qubits(self) -> int:
        return len(self.node_names)

    @property
    def dim(self) -> int:
        return 1 << self.n_qubits

    @property
    def default_theta(self) -> np.ndarray:
        """Parameters as written in the file, ``(P,)``."""
        full = (self.J0, self.b0, self.h0)
        return np.array([full[k][s] for k, s in zip(self.param_kind, self.param_slot)], dtype=float)

    def __repr__(self) -> str:
        return (f"QubitModel({self.source}: {self.n_qubits} qubits, {len(self.edges)} couplings, "
                f"{len(self.param_names)} parameters, inputs {list(self.input_names)}, "
                f"outputs {list(self.output_names)})")

    # ------------------------------------------------------------------ basis tables
    @cached_property
    def xs(self) -> np.ndarray:
        """``(dim, n)`` eigenvalue ``x_i = +-1`` of ``X_i`` on every basis state."""
        k = np.arange(self.dim)[:, None]
        bits = (k >> np.arange(self.n_qubits)[None, :]) & 1
        return 1.0 - 2.0 * bits

    @cached_property
    def _diag_ops(self) -> np.ndarray:
        """``(dim, P_diag)`` diagonal of ``dH/dtheta_k`` for the J and b parameters."""
        xs, cols = self.xs, []
        for kind, slot in zip(self.param_kind, self.param_slot):
            if kind == 0:
                i, j = self.edges[slot]
                cols.append(xs[:, i] * xs[:, j])
            elif kind == 1:
                cols.append(xs[:, slot])
        return np.stack(cols, axis=1) if cols else np.zeros((self.dim, 0))

    @cached_property
    def _diag_params(self) -> np.ndarray:
        return np.flatnonzero(self.param_kind != 2)

    @cached_property
    def _flip_params(self) -> np.ndarray:
        return np.flatnonzero(self.param_kind == 2)

    @cached_property
    def _flip_index(self) -> np.ndarray:
        """``(P_h, dim)``: basis index with the trained h's qubit flipped (``Z_i`` in this basis)."""
        qubits = self.param_slot[self._flip_params]
        return np.arange(self.dim)[None, :] ^ (1 << qubits)[:, None]

    @cached_property
    def _coupling_table(self) -> np.ndarray:
        """``(dim, E)``: ``x_i x_j`` of every coupling."""
        return self.xs[:, self.edges[:, 0]] * self.xs[:, self.edges[:, 1]]

    # ------------------------------------------------------------------ parameters
    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Full ``(J (E,), b (n,), h (n,))`` with the trainable entries taken from ``theta``."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (len(self.param_names),):
            raise ConfigError(f"theta has shape {theta.shape}; {self.source} has "
                              f"{len(self.param_names)} parameters")
        J, b, h = self.J0.copy(), self.b0.copy(), self.h0.copy()
        for kind, arr in enumerate((J, b, h)):
            sel = self.param_kind == kind
            arr[self.param_slot[sel]] = theta[sel]
        return J, b, h

    def check_inputs(self, u: np.ndarray) -> np.ndarray:
        """``u`` as a finite ``(B, n_inputs)`` array."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        if u.shape[1] != len(self.input_names) or not np.all(np.isfinite(u)):
            raise ConfigError(f"inputs must be finite with shape (B, {len(self.input_names)}) for "
                              f"inputs {list(self.input_names)} of {self.source}; got {u.shape}")
        return u

    def check_targets(self, d: np.ndarray, batch: int) -> np.ndarray:
        """``d`` as a ``(B, n_outputs)`` array with every entry in [-1, 1]."""
        d = np.atleast_2d(np.asarray(d, dtype=float))
        if d.shape != (batch, len(self.output_names)):
            raise ConfigError(f"targets must have shape ({batch}, {len(self.output_names)}) for "
                              f"outputs {list(self.output_names)} of {self.source}; got {d.shape}")
        if not np.all(np.abs(d) <= 1.0):
            bad = d[~(np.abs(d) <= 1.0)][0]
            raise ConfigError(f"target {bad!r} is outside [-1, 1]: <X_o> of a qubit lies in [-1, 1]")
        return d

    # ------------------------------------------------------------------ operators
    def diagonal(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``(B, dim)`` diagonal of ``H`` in the X basis: ``sum J x_i x_j + sum (b + u) x_i``."""
        J, b, _ = self.split(theta)
        fields = np.broadcast_to(b, (u.shape[0], self.n_qubits)).copy()
        fields[:, self.input_index] += u
        return fields @ self.xs.T + (self._coupling_table @ J)[None, :]

    def cost_diagonal(self, d: np.ndarray) -> np.ndarray:
        """``(B, dim)`` diagonal of ``C = 1/2 sum_o (X_o - d_o)^2``.

        Pauli reduction: ``C = 1/2 sum_o (1 + d_o^2) - sum_o d_o X_o`` because ``X_o^2 = 1``.
        """
        const = 0.5 * np.sum(1.0 + d ** 2, axis=1, keepdims=True)
        return const - d @ self.xs[:, self.output_index].T

    def flip_operator(self, theta: np.ndarray) -> sp.csr_matrix:
        """Sparse ``sum_i h_i Z_i`` in the X basis (``Z_i`` flips bit ``i``)."""
        _, _, h = self.split(theta)
        qubits = np.flatnonzero(h)
        rows = np.tile(np.arange(self.dim), len(qubits))
        cols = (np.arange(self.dim)[None, :] ^ (1 << qubits)[:, None]).ravel()
        data = np.repeat(h[qubits], self.dim)
        return sp.csr_matrix((data, (rows, cols)), shape=(self.dim, self.dim))

    def local_terms(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``(..., P)`` matrix elements ``<a| dH/dtheta_k |b>`` of real vectors ``a, b (..., dim)``.

        ``dH/dJ_ij = X_i X_j``, ``dH/db_i = X_i``, ``dH/dh_i = Z_i``; with ``a = b = psi``
        these are the local quantities EP measures. Cost ``O(dim P)``.
        """
        out = np.empty(a.shape[:-1] + (len(self.param_names),))
        out[..., self._diag_params] = (a * b) @ self._diag_ops
        if len(self._flip_params):
            out[..., self._flip_params] = np.einsum("...x,...px->...p", a, b[..., self._flip_index])
        return out

    def operator_traces(self, M: np.ndarray) -> np.ndarray:
        """``(B, P)`` traces ``Tr(M dH/dtheta_k)`` of symmetric matrices ``M (B, dim, dim)``."""
        out = np.empty(M.shape[:1] + (len(self.param_names),))
        out[:, self._diag_params] = np.einsum("bxx->bx", M) @ self._diag_ops
        if len(self._flip_params):
            rows = np.arange(self.dim)[None, :]
            out[:, self._flip_params] = M[:, rows, self._flip_index].sum(axis=-1)
        return out

    def choose_method(self, method: str | None, *, full_spectrum: bool = False) -> str:
        """``"dense"`` or ``"lanczos"`` for ``method`` in (None/"auto", "dense", "lanczos").

        Raises :class:`ConfigError` saying how many qubits the method allows and why.
        """
        n = self.n_qubits
        method = "auto" if method is None else str(method).lower()
        if method not in ("auto", "dense", "lanczos"):
            raise ConfigError(f"unknown eigensolver method {method!r}; use auto, dense or lanczos")
        if full_spectrum:
            if method == "lanczos":
                raise ConfigError("Gibbs states need every level; use the dense method")
            if n > GIBBS_MAX_QUBITS:
                raise ConfigError(
                    f"{self.source} has {n} qubits: a Gibbs state needs every level, one dense "
                    f"eigendecomposition of a {1 << n}x{1 << n} matrix per sample "
                    f"(O(8^n) time); at most {GIBBS_MAX_QUBITS} qubits")
            return "dense"
        if method == "auto":
            method = "dense" if n <= AUTO_DENSE_QUBITS else "lanczos"
        if method == "dense" and n > DENSE_MAX_QUBITS:
            raise ConfigError(
                f"{self.source} has {n} qubits: dense diagonalisation of a {1 << n}x{1 << n} "
                f"matrix needs {8 * 4 ** n / 2 ** 30:.1f} GiB and O(8^n) time; at most "
                f"{DENSE_MAX_QUBITS} qubits (use method='lanczos')")
        if n > LANCZOS_MAX_QUBITS:
            raise ConfigError(
                f"{self.source} has {n} qubits: a state vector has 2^{n} entries and the sparse "
                f"Hamiltonian about {(n + 1) * 12 * 2 ** n / 2 ** 30:.0f} GiB; at most "
                f"{LANCZOS_MAX_QUBITS} qubits")
        return method


@dataclass(frozen=True)
class Spectrum:
    """Lowest levels of a batch of Hamiltonians: ``energies (B, k)`` ascending and
    ``vectors (B, dim, k)`` (real, orthonormal columns) in the X basis. ``k`` is the number of
    levels asked for (every level for the spectral sums and Gibbs states)."""

    energies: np.ndarray
    vectors: np.ndarray
    #: Lanczos only: Hamiltonian-vector products of each input's solve, ``(B,)``.
    matvecs: np.ndarray | None = None


class _CountingOperator(LinearOperator):
    """``H`` as a LinearOperator that counts its products (a few microseconds each, against
    the tens of microseconds of a product at 12 qubits and more)."""

    def __init__(self, H):
        super().__init__(float, H.shape)
        self.matrix, self.count = H, 0

    def _matvec(self, x):
        self.count += 1
        return self.matrix @ x


def solve_levels(model: QubitModel, theta: np.ndarray, u: np.ndarray, *, n_levels: int,
                 extra_diagonal: np.ndarray | None = None, method: str = "dense",
                 start: np.ndarray | None = None) -> Spectrum:
    """Eigenpairs of ``H(theta, u_b) + diag(extra_diagonal_b)`` for each input ``b``.

    ``u``: ``(B, n_inputs)``; ``extra_diagonal``: ``(B, dim)`` (e.g. ``beta * C``) or None;
    ``method``: ``"dense"`` (``eigh``, ``O(B dim^3)``; every level when ``n_levels >= dim``,
    else the ``n_levels`` lowest) or ``"lanczos"``
    (``eigsh`` for the ``n_levels`` lowest, tolerance :data:`LANCZOS_TOL`, a fixed start
    vector so results are reproducible).

    ``start`` (``(B, dim, k)``, Lanczos only): eigenvectors of a nearby Hamiltonian (the free
    one, for a nudged or shifted solve) to start from. Lanczos begins at their sum: the
    Krylov space of a sum of ``k`` eigenvectors holds those ``k`` vectors exactly after ``k``
    steps, so for a small perturbation it holds good approximations of the perturbed ones
    and ARPACK converges in fewer products (about 40% fewer at 12 qubits, ``beta = 1e-3``).
    """
    diag = model.diagonal(theta, u)
    if extra_diagonal is not None:
        diag = diag + extra_diagonal
    flip = model.flip_operator(theta)
    if method == "dense":
        H = np.broadcast_to(flip.toarray(), (len(u), model.dim, model.dim)).copy()
        idx = np.arange(model.dim)
        H[:, idx, idx] += diag
        if n_levels >= model.dim:
            energies, vectors = np.linalg.eigh(H)
            return Spectrum(energies, vectors)
        pairs = [scipy.linalg.eigh(h, subset_by_index=[0, n_levels - 1]) for h in H]
        return Spectrum(np.stack([w for w, _ in pairs]), np.stack([v for _, v in pairs]))
    k = min(n_levels, model.dim - 1)
    v0 = np.random.default_rng(0).standard_normal(model.dim)
    energies = np.empty((len(u), k))
    vectors = np.empty((len(u), model.dim, k))
    matvecs = np.zeros(len(u), dtype=np.int64)
    for s in range(len(u)):
        H = _CountingOperator(flip + sp.diags(diag[s]))
        v_start = v0 if start is None else start[s].sum(axis=1)
        try:
            w, v = eigsh(H, k=k, which="SA", tol=LANCZOS_TOL, v0=v_start)
        except Exception as exc:  # ARPACK reports non-convergence through its own types
            raise ConvergenceError(f"Lanczos did not converge on {model.source}, sample {s}: {exc}") from exc
        order = np.argsort(w)
        energies[s], vectors[s], matvecs[s] = w[order], v[:, order], H.count
    return Spectrum(energies, vectors, matvecs)


def level_gap(energies: np.ndarray, n: int) -> np.ndarray:
    """``(B,)`` distance from level ``n`` to the nearest other computed level."""
    e = energies
    gaps = [np.full(e.shape[0], np.inf)]
    if n > 0:
        gaps.append(e[:, n] - e[:, n - 1])
    if n + 1 < e.shape[1]:
        gaps.append(e[:, n + 1] - e[:, n])
    return np.min(gaps, axis=0)


def follow_state(spectrum: Spectrum, reference: np.ndarray, *, min_overlap: float = 0.5
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The level of ``spectrum`` continuing ``reference (B, dim)``: largest ``|<v_m|ref>|``.

    Returns ``(energy (B,), vector (B, dim))`` with the vector's sign matched to the
    reference. Raises :class:`DegenerateLevelError` when the best overlap squared is below
    ``min_overlap`` (the nudge mixed levels: a crossing, or a gap too small for ``beta``).
    """
    overlaps = np.einsum("bx,bxm->bm", reference, spectrum.vectors)
    best = np.argmax(np.abs(overlaps), axis=1)
    rows = np.arange(len(best))
    weight = overlaps[rows, best] ** 2
    if np.any(weight < min_overlap):
        s = int(np.argmin(weight))
        raise DegenerateLevelError(
            f"the nudged state of sample {s} overlaps the free state only by "
            f"|<n(beta)|n>|^2 = {weight[s]:.3g}: a level crossing; lower beta",
            gap=0.0, tol=min_overlap, sample=s)
    vec = spectrum.vectors[rows, :, best] * np.sign(overlaps[rows, best])[:, None]
    return spectrum.energies[rows, best], vec


def walsh_hadamard(v: np.ndarray) -> np.ndarray:
    """Normalised ``H^{(x)n}`` along the last axis ``(..., 2^n)``: X-basis amplitudes to Z-basis.

    ``O(n 2^n)`` per vector (n butterfly stages).
    """
    out = np.array(v, dtype=float, copy=True)
    dim = out.shape[-1]
    lead = out.shape[:-1]
    half = 1
    while half < dim:
        out = out.reshape(lead + (dim // (2 * half), 2, half))
        a, b = out[..., 0, :], out[..., 1, :]
        out = np.stack((a + b, a - b), axis=-2).reshape(lead + (dim,))
        half *= 2
    return out / np.sqrt(dim)


# ---------------------------------------------------------------------- compilation
def _scalar(value: Any, what: str, where: str) -> float:
    """A real number from a file attribute; complex values mean a non-Hermitian H."""
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            value = float(text)
        except ValueError:
            try:
                value = complex(text.replace("i", "j"))
            except ValueError:
                raise NetworkError(f"{where}: {what} = {value!r} is not a number") from None
    if isinstance(value, complex):
        if value.imag != 0.0:
            raise NetworkError(f"{where}: {what} = {value} is complex: the term is not Hermitian "
                               f"(H must be Hermitian; use a real {what})")
        value = value.real
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise NetworkError(f"{where}: {what} = {value!r} is not a number") from None
    if not np.isfinite(out):
        raise NetworkError(f"{where}: {what} = {out} is not finite")
    return out


def _trainable(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _check_operator(attrs: dict, where: str) -> None:
    op = str(attrs.get("operator", "XX")).strip().upper()
    if op in NON_HERMITIAN_OPERATORS:
        raise NetworkError(f"{where}: operator {op!r} is not Hermitian; a coupling must be "
                           f"one of {', '.join(KNOWN_OPERATORS)}")
    if op not in KNOWN_OPERATORS:
        raise NetworkError(f"{where}: unknown operator {op!r}; supported: {', '.join(KNOWN_OPERATORS)}")


def compile_quantum(G: nx.Graph) -> QubitModel:
    """Validate a qubit-network graph and compile it to a :class:`QubitModel`.

    Raises :class:`NetworkError` naming the file, node or edge at fault: missing or wrong
    ``family``, unknown role, no input or no output, self-loops, repeated couplings, complex
    (non-Hermitian) values, unknown operators.
    """
    source = str(G.graph.get("source", "<graph>"))
    fam = G.graph.get("family")
    if fam is None:
        raise NetworkError(f"{source}: the graph has no 'family' attribute; a qubit network "
                           f"needs family = 'quantum'")
    if str(fam).lower() != "quantum":
        raise NetworkError(f"{source}: family is {fam!r}, not 'quantum'")
    if str(G.graph.get("model", "qubit")).lower() != "qubit":
        raise NetworkError(f"{source}: model is {G.graph.get('model')!r}; compile_quantum reads "
                           f"qubit networks (use compile_harmonic for model = 'harmonic')")
    if G.is_directed():
        G = G.to_undirected(as_view=True)
    names = tuple(str(v) for v in G.nodes)
    if not names:
        raise NetworkError(f"{source}: the network has no qubits")
    index = {v: i for i, v in enumerate(G.nodes)}
    roles, b0, h0, u0, node_trainable = [], [], [], [], []
    for v, attrs in G.nodes(data=True):
        where = f"{source}: node {v!r}"
        role = str(attrs.get("role", "hidden")).lower()
        if role not in ROLES:
            raise NetworkError(f"{where}: unknown role {role!r}; a qubit is one of {', '.join(ROLES)}")
        roles.append(role)
        b0.append(_scalar(attrs.get("b", 0.0), "b", where))
        h0.append(_scalar(attrs.get("h", 0.0), "h", where))
        u0.append(_scalar(attrs.get("u", 0.0), "u", where))
        default = _trainable(attrs.get("trainable", True))
        node_trainable.append((_trainable(attrs.get("trainable_b", default)),
                               _trainable(attrs.get("trainable_h", default))))
    roles_arr = np.array(roles)
    if not np.any(roles_arr == "input") or not np.any(roles_arr == "output"):
        raise NetworkError(f"{source}: a qubit network needs at least one input and one output qubit")
    edges, J0, edge_trainable, seen = [], [], [], set()
    multi = G.is_multigraph()
    for e in (G.edges(keys=True, data=True) if multi else G.edges(data=True)):
        a, c, attrs = e[0], e[1], e[-1]
        where = f"{source}: edge ({a!r}, {c!r})"
        if a == c:
            raise NetworkError(f"{where}: a coupling joins two different qubits")
        if frozenset((a, c)) in seen:
            raise NetworkError(f"{where}: repeated coupling; merge it into one J")
        seen.add(frozenset((a, c)))
        _check_operator(attrs, where)
        edges.append((index[a], index[c]))
        J0.append(_scalar(attrs.get("J", 0.0), "J", where))
        edge_trainable.append(_trainable(attrs.get("trainable", True)))
    edges_arr = np.array(edges, dtype=int).reshape(-1, 2)
    pnames, kinds, slots = [], [], []
    for e, (i, j) in enumerate(edges_arr):
        if edge_trainable[e]:
            pnames.append(f"J[{names[i]},{names[j]}]"), kinds.append(0), slots.append(e)
    for kind, label in ((1, "b"), (2, "h")):
        for i in range(len(names)):
            if node_trainable[i][kind - 1]:
                pnames.append(f"{label}[{names[i]}]"), kinds.append(kind), slots.append(i)
    inputs = np.flatnonzero(roles_arr == "input")
    outputs = np.flatnonzero(roles_arr == "output")
    return QubitModel(
        node_names=names,
        input_names=tuple(names[i] for i in inputs),
        output_names=tuple(names[i] for i in outputs),
        param_names=tuple(pnames),
        input_index=inputs, output_index=outputs, edges=edges_arr,
        J0=np.array(J0, dtype=float), b0=np.array(b0), h0=np.array(h0),
        default_inputs=np.array(u0)[inputs],
        param_kind=np.array(kinds, dtype=int), param_slot=np.array(slots, dtype=int),
        source=source,
    )


__all__ = ["QubitModel", "Spectrum", "DegenerateLevelError", "compile_quantum", "solve_levels",
           "level_gap", "follow_state", "walsh_hadamard"]
