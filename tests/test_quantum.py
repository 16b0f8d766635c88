"""Qubit networks: the model's traps and every gradient rule against exact references."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from analog_ep.errors import ConfigError, NetworkError
from analog_ep.learning import quantum_rules as qr
from analog_ep.models.quantum import (DegenerateLevelError, Spectrum, compile_quantum,
                                      solve_levels, walsh_hadamard)


def random_graph(n: int, seed: int, n_in: int = 2, n_out: int = 1, p: float = 0.7,
                 h_scale: float = 1.0) -> nx.Graph:
    rng = np.random.default_rng(seed)
    G = nx.Graph(family="quantum")
    for i in range(n):
        role = "input" if i < n_in else ("output" if i >= n - n_out else "hidden")
        G.add_node(f"q{i}", role=role, b=rng.uniform(-0.5, 0.5), h=h_scale * rng.uniform(0.8, 1.2))
    for i, j in itertools.combinations(range(n), 2):
        if rng.random() < p:
            G.add_edge(f"q{i}", f"q{j}", J=rng.uniform(-0.6, 0.6))
    return G


def dense_ops(model):
    """Dense X_i, Z_i matrices in the model's X basis, and H for one input."""
    dim, idx = model.dim, np.arange(model.dim)
    X = [np.diag(model.xs[:, i]) for i in range(model.n_qubits)]
    Z = []
    for i in range(model.n_qubits):
        z = np.zeros((dim, dim))
        z[idx, idx ^ (1 << i)] = 1.0
        Z.append(z)
    return X, Z


def hamiltonian(model, theta, u):
    X, Z = dense_ops(model)
    J, b, h = model.split(theta)
    H = sum(J[e] * X[i] @ X[j] for e, (i, j) in enumerate(model.edges))
    H = H + sum(b[i] * X[i] + h[i] * Z[i] for i in range(model.n_qubits))
    return H + sum(u[k] * X[i] for k, i in enumerate(model.input_index))


@pytest.fixture(scope="module")
def net5():
    model = compile_quantum(random_graph(5, seed=1))
    rng = np.random.default_rng(7)
    u = rng.uniform(0.3, 1.0, (3, 2))
    d = rng.choice([-1.0, 1.0], (3, 1))
    return model, model.default_theta, u, d


# ---------------------------------------------------------------- the model and its traps
def test_sparse_hamiltonian_matches_pauli_sum(net5):
    model, theta, u, _ = net5
    H = np.diag(model.diagonal(theta, u[:1])[0]) + model.flip_operator(theta).toarray()
    assert np.allclose(H, hamiltonian(model, theta, u[0]), atol=1e-14)
    # Z_i in the X basis: Z_i^2 = 1 and Z_i X_i = -X_i Z_i
    X, Z = dense_ops(model)
    assert np.allclose(Z[2] @ Z[2], np.eye(model.dim))
    assert np.allclose(Z[2] @ X[2], -X[2] @ Z[2])
    assert np.allclose(Z[2] @ X[1], X[1] @ Z[2])


def test_parity_anticommutes_with_x_commutes_with_xx_and_z(net5):
    model = net5[0]
    X, Z = dense_ops(model)
    P = np.linalg.multi_dot(Z)
    for i, j in itertools.combinations(range(model.n_qubits), 2):
        assert np.allclose(P @ X[i] @ X[j], X[i] @ X[j] @ P)
    for i in range(model.n_qubits):
        assert np.allclose(P @ X[i], -X[i] @ P)
        assert np.allclose(P @ Z[i], Z[i] @ P)


def test_without_x_fields_outputs_and_gradients_vanish():
    G = random_graph(5, seed=3)
    for v in G.nodes:
        G.nodes[v]["b"] = 0.0
    model = compile_quantum(G)
    u = np.zeros((1, 2))
    for n in (0, 1, 3):
        r = qr.eigenstate_gradients(model, model.default_theta, u, np.ones((1, 1)), rule="exact",
                                    state=n)
        p = qr.x_basis_probabilities(model, model.default_theta, u, state=n)
        assert abs(p[0] @ model.xs[:, model.output_index[0]]) < 1e-10
        # <X_o> = 0 for every J and h, so their gradients vanish; only the parity-odd
        # b fields have a gradient (the susceptibility), hence b must start non-zero
        even = model.param_kind != 1
        assert np.max(np.abs(r.gradient[0, even])) < 1e-9
    # b = 0 but u != 0: <X_o>(-u) = -<X_o>(u), so XOR cannot be represented
    uu = np.array([[0.7, -0.4]])
    pp = qr.x_basis_probabilities(model, model.default_theta, np.vstack([uu, -uu]))
    xo = pp @ model.xs[:, model.output_index[0]]
    assert abs(xo[0]) > 1e-3 and xo[0] == pytest.approx(-xo[1], abs=1e-10)


def test_strong_coupling_splits_parity_sectors_by_a_tiny_gap():
    """A ferromagnetic chain with |J| >> |h|: the two lowest levels nearly touch."""
    gaps = []
    for n in (3, 5, 7):
        G = nx.path_graph([f"q{i}" for i in range(n)])
        G.graph["family"] = "quantum"
        nx.set_edge_attributes(G, -1.0, "J")
        nx.set_node_attributes(G, 0.2, "h")
        G.nodes["q0"]["role"], G.nodes[f"q{n - 1}"]["role"] = "input", "output"
        model = compile_quantum(G)
        spec = solve_levels(model, model.default_theta, np.zeros((1, 1)), n_levels=2, method="dense")
        gaps.append(spec.energies[0, 1] - spec.energies[0, 0])
    assert gaps[0] > 10 * gaps[1] > 100 * gaps[2]
    with pytest.raises(DegenerateLevelError, match="gap"):
        qr.eigenstate_gradients(model, model.default_theta, np.zeros((1, 1)), np.ones((1, 1)),
                                rule="exact")


def test_pauli_cost_reduction_and_nudge_as_output_field(net5):
    model, theta, u, _ = net5
    X, _ = dense_ops(model)
    d = np.array([[0.3]])
    o = model.output_index[0]
    C = 0.5 * (X[o] - d[0, 0] * np.eye(model.dim)) @ (X[o] - d[0, 0] * np.eye(model.dim))
    assert np.allclose(np.diag(model.cost_diagonal(d)[0]), C)
    assert np.allclose(C, 0.5 * (1 + d[0, 0] ** 2) * np.eye(model.dim) - d[0, 0] * X[o])
    # H + beta C = H with b_o -> b_o - beta d_o, plus a constant
    beta = 0.1
    t2 = theta.copy()
    t2[model.param_names.index(f"b[{model.node_names[o]}]")] -= beta * d[0, 0]
    diff = hamiltonian(model, theta, u[0]) + beta * C - hamiltonian(model, t2, u[0])
    assert np.allclose(diff, diff[0, 0] * np.eye(model.dim))


def test_walsh_hadamard_gives_z_basis_expectations(net5):
    model, theta, u, _ = net5
    psi = solve_levels(model, theta, u[:1], n_levels=2, method="dense").vectors[0, :, 0]
    pz = walsh_hadamard(psi) ** 2
    _, Z = dense_ops(model)
    for i in range(model.n_qubits):
        assert pz @ model.xs[:, i] == pytest.approx(psi @ Z[i] @ psi, abs=1e-12)


# ---------------------------------------------------------------- gradient rules
@pytest.mark.parametrize("state", [0, 2])
def test_ep_exact_minres_and_fd_agree(net5, state):
    model, theta, u, d = net5
    ref = qr.eigenstate_gradients(model, theta, u, d, rule="fd", state=state, method="dense")
    assert np.max(np.abs(ref.gradient)) > 1e-2
    for kw in (dict(rule="exact", method="dense"),
               dict(rule="exact", method="lanczos"),          # MINRES, no spectrum
               dict(rule="ep", beta=1e-4, method="dense"),
               dict(rule="ep", beta=1e-4, method="lanczos")):
        r = qr.eigenstate_gradients(model, theta, u, d, state=state, **kw)
        assert np.max(np.abs(r.gradient - ref.gradient)) < 1e-7, kw
        assert np.allclose(r.loss, ref.loss, atol=1e-12)


def test_centred_bias_is_second_order_one_sided_first_order(net5):
    model, theta, u, d = net5
    exact = qr.eigenstate_gradients(model, theta, u, d, rule="exact").gradient
    err = {}
    for sym in (True, False):
        err[sym] = [np.max(np.abs(qr.eigenstate_gradients(model, theta, u, d, rule="ep", beta=b,
                                                          symmetric=sym).gradient - exact))
                    for b in (0.04, 0.02)]
    assert err[True][0] / err[True][1] == pytest.approx(4.0, rel=0.1)
    with pytest.warns(UserWarning, match="one-sided"):
        qr.eigenstate_gradients(model, theta, u, d, rule="ep", beta=0.3, symmetric=False)
    assert err[False][0] / err[False][1] == pytest.approx(2.0, rel=0.1)


def test_hellmann_feynman(net5):
    model, theta, u, d = net5
    n, step = 1, 1e-5
    spec = solve_levels(model, theta, u, n_levels=model.dim, method="dense")
    psi = spec.vectors[:, :, n]
    locals_ = model.local_terms(psi, psi)
    for k in range(len(theta)):
        tp, tm = theta.copy(), theta.copy()
        tp[k] += step
        tm[k] -= step
        ep = solve_levels(model, tp, u, n_levels=model.dim, method="dense").energies[:, n]
        em = solve_levels(model, tm, u, n_levels=model.dim, method="dense").energies[:, n]
        assert np.allclose((ep - em) / (2 * step), locals_[:, k], atol=1e-8)
    cd = model.cost_diagonal(d)
    eb = solve_levels(model, theta, u, n_levels=model.dim, extra_diagonal=step * cd,
                      method="dense").energies[:, n]
    em = solve_levels(model, theta, u, n_levels=model.dim, extra_diagonal=-step * cd,
                      method="dense").energies[:, n]
    assert np.allclose((eb - em) / (2 * step), np.sum(psi ** 2 * cd, axis=1), atol=1e-8)


def test_gradient_is_invariant_under_eigenvector_phases(net5):
    model, theta, u, d = net5
    spec = solve_levels(model, theta, u, n_levels=model.dim, method="dense")
    n = 1
    cd = model.cost_diagonal(d)
    signs = np.random.default_rng(0).choice([-1.0, 1.0], spec.vectors.shape[::2])[:, None, :]
    flipped = Spectrum(spec.energies, spec.vectors * signs)
    g0 = qr._exact(model, theta, u, cd, spec, spec.vectors[:, :, n], n, "spectral")
    g1 = qr._exact(model, theta, u, cd, flipped, flipped.vectors[:, :, n], n, "spectral")
    g2 = qr._exact(model, theta, u, cd, flipped, flipped.vectors[:, :, n], n, "minres")
    assert np.allclose(g0, g1, atol=1e-12) and np.allclose(g0, g2, atol=1e-8)


def test_degeneracy_guard_names_the_gap_and_training_can_skip():
    G = nx.Graph(family="quantum")
    G.add_node("a", role="input", b=0.2, h=0.0)   # u = -0.2 makes x_a free: a degenerate level
    G.add_node("o", role="output", b=0.5, h=0.05)
    model = compile_quantum(G)
    theta, u, d = model.default_theta, np.array([[0.5], [-0.2]]), np.ones((2, 1))
    with pytest.raises(DegenerateLevelError) as info:
        qr.eigenstate_gradients(model, theta, u, d, rule="ep")
    assert info.value.sample == 1 and info.value.gap < info.value.tol and "gap" in str(info.value)
    r = qr.eigenstate_gradients(model, theta, u, d, rule="ep", skip_degenerate=True)
    assert list(r.valid) == [True, False] and np.all(np.isnan(r.gradient[1]))


def test_state_is_followed_by_overlap_not_by_index():
    """Two uncoupled qubits: nudging the output's X field reorders levels 1 and 2.

    Sorted index 1 jumps to the other product state; overlap-following keeps the branch,
    so the nudged estimate still equals the exact derivative.
    """
    G = nx.Graph(family="quantum")
    G.add_node("a", role="input", b=0.0, h=0.50)     # splitting 1.0
    G.add_node("o", role="output", b=0.15, h=0.49)   # splitting 1.025, 0.98 once nudged
    model = compile_quantum(G)
    theta, u, d = model.default_theta, np.array([[0.0]]), np.array([[1.0]])
    beta = 0.15
    cd = model.cost_diagonal(d)
    levels = [solve_levels(model, theta, u, n_levels=4, method="dense", extra_diagonal=b * cd)
              for b in (0.0, beta, -beta)]
    assert abs(levels[0].vectors[0, :, 1] @ levels[1].vectors[0, :, 1]) < 0.1  # order changed
    exact = qr.eigenstate_gradients(model, theta, u, d, rule="exact", state=1, gap_tol=0.0)
    ep = qr.eigenstate_gradients(model, theta, u, d, rule="ep", state=1, beta=beta, gap_tol=0.0)
    by_index = [model.local_terms(s.vectors[:, :, 1], s.vectors[:, :, 1]) for s in levels[1:]]
    by_index = (by_index[0] - by_index[1]) / (2 * beta)
    assert np.max(np.abs(exact.gradient)) > 0.1
    assert np.max(np.abs(ep.gradient - exact.gradient)) < 3 * beta ** 2   # O(beta^2) bias
    assert np.max(np.abs(by_index - exact.gradient)) > 1.0


# ---------------------------------------------------------------- shot noise
def test_one_x_setting_gives_every_pair_and_shot_estimator_is_unbiased(net5):
    model, theta, u, d = net5
    psi = solve_levels(model, theta, u[:1], n_levels=2, method="dense").vectors[:, :, 0]
    exact = model.local_terms(psi, psi)[0]
    rng = np.random.default_rng(11)
    reps, shots = 400, 200
    runs = [qr.measure_locals(model, psi ** 2, walsh_hadamard(psi) ** 2, shots, rng)
            for _ in range(reps)]
    est = np.array([m[0] for m, _ in runs])
    var = np.array([v[0] for _, v in runs])
    se_of_mean = np.sqrt((1.0 - exact ** 2) / shots / reps)   # +-1 outcomes
    z = (est.mean(axis=0) - exact) / se_of_mean
    assert np.max(np.abs(z)) < 4.0          # every <X_i X_j>, <X_i>, <Z_i> (15 of them)
    # the reported variance of the mean is unbiased for (1 - <O>^2) / shots
    assert np.allclose(var.mean(axis=0), (1.0 - exact ** 2) / shots, rtol=0.1, atol=1e-6)


def test_shot_gradient_error_falls_like_inverse_sqrt_shots(net5):
    model, theta, u, d = net5
    exact = qr.eigenstate_gradients(model, theta, u[:1], d[:1], rule="exact").gradient[0]
    rng = np.random.default_rng(5)
    rms, zs = [], []
    for shots in (1_000, 16_000):
        errs = []
        for _ in range(60):
            r = qr.eigenstate_gradients(model, theta, u[:1], d[:1], rule="ep", beta=0.05,
                                        shots=shots, rng=rng)
            errs.append(r.gradient[0] - exact)
            with np.errstate(divide="ignore", invalid="ignore"):   # stderr 0 on sure outcomes
                zs.append((r.gradient[0] - exact) / r.stderr[0])
        rms.append(np.sqrt(np.mean(np.square(errs))))
    assert rms[0] / rms[1] == pytest.approx(4.0, rel=0.25)
    # the reported stderr is honest where outcomes fluctuate (bias ~ beta^2 is negligible)
    psi = solve_levels(model, theta, u[:1], n_levels=2, method="dense").vectors[:, :, 0]
    noisy = 1.0 - model.local_terms(psi, psi)[0] ** 2 > 0.05
    assert np.std(np.array(zs)[:, noisy]) == pytest.approx(1.0, abs=0.15)


# ---------------------------------------------------------------- Gibbs states
def kubo_mori_gradient(rho_eigs, V, C, B, T, nodes=40):
    """-(1/T)[int_0^1 Tr(rho^l C rho^(1-l) B) dl - <C><B>] by Gauss-Legendre quadrature."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    lam, w = 0.5 * (x + 1), 0.5 * w
    total = 0.0
    for l_, wl in zip(lam, w):
        ra = (V * rho_eigs ** l_) @ V.T
        rb = (V * rho_eigs ** (1 - l_)) @ V.T
        total += wl * np.trace(ra @ C @ rb @ B)
    rho = (V * rho_eigs) @ V.T
    return -(total - np.trace(rho @ C) * np.trace(rho @ B)) / T


def test_gibbs_rules_agree_with_fd_and_the_kubo_mori_integral(net5):
    model, theta, u, d = net5
    T = 0.4
    fd = qr.gibbs_gradients(model, theta, u, d, temperature=T, rule="fd")
    km = qr.gibbs_gradients(model, theta, u, d, temperature=T, rule="exact")
    ep = qr.gibbs_gradients(model, theta, u, d, temperature=T, rule="ep", beta=1e-4)
    assert np.max(np.abs(km.gradient - fd.gradient)) < 1e-7
    assert np.max(np.abs(ep.gradient - fd.gradient)) < 1e-7
    # against the integral form, and the symmetrised covariance is wrong
    X, Z = dense_ops(model)
    H = hamiltonian(model, theta, u[0])
    E, V = np.linalg.eigh(H)
    p = np.exp(-(E - E[0]) / T)
    p /= p.sum()
    C = np.diag(model.cost_diagonal(d[:1])[0])
    rho = (V * p) @ V.T
    k = model.param_names.index("J[q0,q4]") if "J[q0,q4]" in model.param_names else 0
    i, j = model.edges[model.param_slot[k]]
    B = X[i] @ X[j]
    assert kubo_mori_gradient(p, V, C, B, T) == pytest.approx(km.gradient[0, k], abs=1e-9)
    sym_cov = -(0.5 * np.trace(rho @ (C @ B + B @ C)) - np.trace(rho @ C) * np.trace(rho @ B)) / T
    assert abs(sym_cov - km.gradient[0, k]) > 1e-2


def test_symmetrised_covariance_is_exact_when_everything_commutes():
    G = random_graph(4, seed=2, h_scale=0.0)     # h = 0: every operator diagonal
    model = compile_quantum(G)
    theta = model.default_theta
    keep = [i for i, p in enumerate(model.param_names) if not p.startswith("h")]
    u, d, T = np.array([[0.3, -0.6]]), np.array([[1.0]]), 0.7
    km = qr.gibbs_gradients(model, theta, u, d, temperature=T, rule="exact").gradient[0]
    st = qr.gibbs_state(model, theta, u, T)
    p = np.einsum("bxx->bx", st.rho)[0]
    c = model.cost_diagonal(d)[0]
    ops = model._diag_ops
    cov = -(p @ (c[:, None] * ops) - (p @ c) * (p @ ops)) / T
    assert np.allclose(km[keep], cov, atol=1e-12)


def test_gibbs_gradient_tends_to_ground_state_gradient(net5):
    model, theta, u, d = net5
    g0 = qr.eigenstate_gradients(model, theta, u, d, rule="exact").gradient
    diffs = [np.max(np.abs(qr.gibbs_gradients(model, theta, u, d, temperature=T).gradient - g0))
             for T in (0.5, 0.2, 0.1)]
    assert diffs[0] > diffs[1] > diffs[2] and diffs[2] < 1e-4


def test_gibbs_shot_estimate_is_consistent(net5):
    model, theta, u, d = net5
    exact = qr.gibbs_gradients(model, theta, u[:1], d[:1], temperature=0.5).gradient[0]
    r = qr.gibbs_gradients(model, theta, u[:1], d[:1], temperature=0.5, rule="ep", beta=0.05,
                           shots=200_000, rng=np.random.default_rng(3))
    assert np.max(np.abs((r.gradient[0] - exact) / r.stderr[0])) < 4.5


# ---------------------------------------------------------------- larger networks
def test_minres_exact_gradient_at_12_qubits_matches_ep():
    model = compile_quantum(random_graph(12, seed=4, n_in=3, n_out=2, p=0.25))
    rng = np.random.default_rng(1)
    u, d = rng.uniform(0.3, 1.0, (1, 3)), np.array([[1.0, -1.0]])
    ex = qr.eigenstate_gradients(model, model.default_theta, u, d, rule="exact")
    ep = qr.eigenstate_gradients(model, model.default_theta, u, d, rule="ep", beta=1e-3)
    assert model.choose_method(None) == "lanczos"
    assert np.max(np.abs(ex.gradient - ep.gradient)) < 1e-5


@pytest.mark.slow
def test_minres_exact_gradient_runs_at_16_qubits():
    model = compile_quantum(random_graph(16, seed=6, n_in=4, n_out=2, p=0.15))
    u, d = np.full((1, 4), 0.6), np.array([[1.0, -1.0]])
    ex = qr.eigenstate_gradients(model, model.default_theta, u, d, rule="exact")
    ep = qr.eigenstate_gradients(model, model.default_theta, u, d, rule="ep", beta=1e-3)
    assert np.max(np.abs(ex.gradient - ep.gradient)) < 1e-5


# ---------------------------------------------------------------- bad input
def test_too_many_qubits_for_the_method_says_how_many_and_why():
    big = compile_quantum(random_graph(13, seed=0, p=0.1))
    with pytest.raises(ConfigError, match="13 qubits.*at most 12"):
        big.choose_method("dense")
    with pytest.raises(ConfigError, match="Gibbs.*at most 10"):
        qr.gibbs_gradients(big, big.default_theta, np.ones((1, 2)), np.ones((1, 1)), temperature=1.0)
    huge = compile_quantum(random_graph(21, seed=0, p=0.05))
    with pytest.raises(ConfigError, match="21 qubits.*at most 20"):
        huge.choose_method("lanczos")


@pytest.mark.parametrize("edit, message", [
    (lambda G: G.graph.pop("family"), "no 'family'"),
    (lambda G: G.graph.update(family="resistive"), "not 'quantum'"),
    (lambda G: G.edges["q0", "q1"].update(J="0.5+0.1j"), "not Hermitian"),
    (lambda G: G.edges["q0", "q1"].update(operator="ZZ"), "unknown operator 'ZZ'"),
    (lambda G: G.edges["q0", "q1"].update(operator="S+"), "not Hermitian"),
    (lambda G: G.nodes["q2"].update(role="ground"), "unknown role"),
    (lambda G: G.nodes["q2"].update(h="strong"), "not a number"),
])
def test_bad_files_give_clear_errors(edit, message):
    G = random_graph(4, seed=0, p=1.0)
    G.graph["source"] = "net.json"
    edit(G)
    with pytest.raises(NetworkError, match=message) as info:
        compile_quantum(G)
    assert "net.json" in str(info.value)


def test_bad_targets_shots_and_beta(net5):
    model, theta, u, d = net5
    with pytest.raises(ConfigError, match="outside"):
        qr.eigenstate_gradients(model, theta, u, 1.5 * np.ones_like(d))
    for shots in (0, -3, 2.5):
        with pytest.raises(ConfigError, match="shots"):
            qr.eigenstate_gradients(model, theta, u, d, shots=shots, rng=np.random.default_rng())
    with pytest.raises(ConfigError, match="beta"):
        qr.eigenstate_gradients(model, theta, u, d, beta=0.0)
    with pytest.raises(ConfigError, match="shape"):
        qr.eigenstate_gradients(model, theta, u[:, :1], d)
