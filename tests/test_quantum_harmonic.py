"""Quantum harmonic networks: Gaussian ground state, closed form, EP at hundreds of modes."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

from analog_ep.errors import ConfigError, NetworkError
from analog_ep.learning.quantum_rules import harmonic_gradients
from analog_ep.models.harmonic import compile_harmonic
from analog_ep.tasks.quantum import HarmonicObjective


def chain(n: int, seed: int, n_in: int = 2, n_out: int = 2, extra: float = 0.0) -> nx.Graph:
    rng = np.random.default_rng(seed)
    G = nx.path_graph([f"m{i}" for i in range(n)])
    if extra:
        for i in range(n):
            j = int(rng.integers(n))
            if abs(i - j) > 1:
                G.add_edge(f"m{i}", f"m{j}")
    G.graph.update(family="quantum", model="harmonic")
    for i, v in enumerate(G.nodes):
        G.nodes[v].update(role="input" if i < n_in else ("output" if i >= n - n_out else "hidden"),
                          k=rng.uniform(0.3, 1.5))
    for a, b in G.edges:
        G.edges[a, b]["k"] = rng.uniform(0.5, 2.0)
    return G


def test_ground_state_moments_match_a_grid_schroedinger_solution():
    """Two coupled modes on a position grid: <x> = K^-1 f and Cov = K^(-1/2)/2."""
    G = chain(2, seed=0, n_in=1, n_out=1)
    model = compile_harmonic(G)
    theta, f = model.default_theta, np.array([[0.4]])
    mean, cov = model.ground_state(theta, f)
    K = model.stiffness(theta)
    n, L = 90, 7.0
    x = np.linspace(-L / 2, L / 2, n)
    h = x[1] - x[0]
    lap = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1]) / h ** 2
    kin = -0.5 * (sp.kron(lap, sp.eye(n)) + sp.kron(sp.eye(n), lap))
    X1, X2 = np.meshgrid(x, x, indexing="ij")
    pos = np.stack([X1.ravel(), X2.ravel()], 1)
    pot = 0.5 * np.einsum("pi,ij,pj->p", pos, K, pos) - pos[:, 0] * f[0, 0]
    _, vec = eigsh(kin + sp.diags(pot), k=1, which="SA")
    p = vec[:, 0] ** 2 / np.sum(vec[:, 0] ** 2)
    m = p @ pos
    c = (pos - m).T @ ((pos - m) * p[:, None])
    assert np.allclose(m, mean[0], atol=2e-3)
    assert np.allclose(c, cov, atol=2e-3)


def test_expected_cost_closed_form():
    model = compile_harmonic(chain(6, seed=1))
    theta = model.default_theta
    f, d = np.array([[0.5, -0.2]]), np.array([[0.1, 0.3]])
    mean, cov = model.ground_state(theta, f)
    K = model.stiffness(theta)
    lam, V = np.linalg.eigh(K)
    k_inv_half = (V / np.sqrt(lam)) @ V.T
    mu = np.linalg.solve(K, model.forces(f)[0])
    o = model.output_index
    closed = 0.5 * np.sum((mu[o] - d[0]) ** 2) + 0.25 * np.sum(np.diag(k_inv_half)[o])
    assert model.expected_cost(mean, cov, d)[0] == pytest.approx(closed, rel=1e-12)


def test_ep_exact_and_fd_agree_on_a_network_of_hundreds_of_modes():
    model = compile_harmonic(chain(200, seed=2, n_in=3, n_out=2, extra=0.3))
    rng = np.random.default_rng(0)
    f, d = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    theta = model.default_theta
    ex = harmonic_gradients(model, theta, f, d, rule="exact")
    ep = harmonic_gradients(model, theta, f, d, rule="ep", beta=1e-4)
    assert np.max(np.abs(ex.gradient - ep.gradient)) < 1e-8 * max(1.0, np.abs(ex.gradient).max())
    # finite differences on a sample of parameters (each costs two eigendecompositions)
    small = compile_harmonic(chain(12, seed=3, extra=0.5))
    t = small.default_theta
    f2, d2 = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    fd = harmonic_gradients(small, t, f2, d2, rule="fd")
    ex2 = harmonic_gradients(small, t, f2, d2, rule="exact")
    assert np.max(np.abs(fd.gradient - ex2.gradient)) < 1e-7


def test_ep_learns_a_linear_map():
    """Regression: students fit the outputs of a teacher network (a positive linear map)."""
    teacher_G = chain(8, seed=4, n_in=2, n_out=2, extra=0.5)
    teacher = compile_harmonic(teacher_G)
    rng = np.random.default_rng(1)
    f = 5.0 * rng.normal(size=(64, 2))
    d, _ = teacher.ground_state(teacher.default_theta, f)
    d = d[:, teacher.output_index]
    obj = HarmonicObjective(teacher_G, rule="ep", beta=0.01)
    theta = obj.initial_parameters(rng)
    lo, hi = obj.bounds()
    mse = lambda th: np.mean((obj.predict(th, f) - d) ** 2)
    start = mse(theta)
    loss0 = obj.loss(theta, f, d)
    for _ in range(300):
        theta = np.clip(theta - 0.2 * obj.gradient(theta, f, d, rng).gradient, lo, hi)
    # <C> also holds the zero-point spread 1/4 (K^-1/2)_oo, a floor the fit cannot remove
    assert mse(theta) < 0.1 * start and obj.loss(theta, f, d) < loss0 - 0.05


@pytest.mark.parametrize("edit, message", [
    (lambda G: G.nodes["m0"].update(k=0.0), "must be > 0"),
    (lambda G: G.edges["m0", "m1"].update(k=-1.0), "must be > 0"),
    (lambda G: G.edges["m0", "m1"].update(k="1+2j"), "not Hermitian"),
    (lambda G: G.nodes["m1"].update(role="bias"), "unknown role"),
    (lambda G: G.graph.pop("model"), "model = 'harmonic'"),
])
def test_bad_harmonic_files(edit, message):
    G = chain(4, seed=0)
    edit(G)
    with pytest.raises(NetworkError, match=message):
        compile_harmonic(G)


def test_bad_harmonic_inputs():
    model = compile_harmonic(chain(4, seed=0))
    with pytest.raises(ConfigError, match="forces"):
        model.ground_state(model.default_theta, np.ones((1, 3)))
    with pytest.raises(ConfigError, match="> 0"):
        model.stiffness(-model.default_theta)
