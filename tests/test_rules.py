"""Gradient rules and the layered solver against exact references: finite differences of the
loss, the implicit-function gradient, envelope identities, the general Newton solver."""

import warnings

import networkx as nx
import numpy as np
import pytest

from analog_ep.errors import ConfigError, ConvergenceError
from analog_ep.schema import normalise_resistive
from analog_ep.models.cost import SquaredCost
from analog_ep.learning.registry import RULES, make_rule
from analog_ep.learning.rules import mean_dE_dtheta, output_curvature, state_from_readings
from analog_ep.models.resistive import compile_network
from analog_ep.networks import layered_diode_network
from analog_ep.physics.equilibrium import _newton, solve_equilibrium
from analog_ep.physics.layered import layered_structure, solve_hessian, solve_layered
from analog_ep.substrates.emulated import EmulatedBoard


def setup(hidden=(4,), differential=True, seed=0, B=5):
    rng = np.random.default_rng(seed)
    G = layered_diode_network(3, 2, hidden, rng=rng, differential=differential)
    m = compile_network(G)
    board = EmulatedBoard(m)
    cost = SquaredCost(tuple(int(i) for i in m.outputs), differential=differential)
    board.cost = cost
    x = rng.uniform(-1, 1, (B, 3))
    u = np.stack([x, -x], 2).reshape(B, 6)
    d = rng.uniform(-0.1, 0.1, (B, 2))
    return m, board, cost, u, d


def rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def skip_net():
    """A diode network that is not layered (a resistor skips a layer)."""
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=0.7)
    G.add_node("vb", role="bias", voltage=0.1)
    G.add_node("0", role="ground")
    G.add_node("out", role="output")
    for key, a, b, g in (("R1", "in", "h", 1e-3), ("R2", "h", "k", 2e-3), ("R3", "k", "out", 1e-3),
                         ("R4", "h", "out", 5e-4), ("R5", "out", "0", 1e-3)):
        G.add_edge(a, b, key=key, element="resistor", conductance=g, trainable=True, g_min=1e-6, g_max=1e-2)
    G.add_edge("k", "vb", key="D1", element="diode", anode="k", cathode="vb", i_s=1e-12)
    G.add_edge("vb", "k", key="D2", element="diode", anode="vb", cathode="k", i_s=1e-12)
    return normalise_resistive(G)


@pytest.mark.parametrize("hidden", [(4,), (3, 4)])
def test_exact_matches_finite_differences(hidden):
    m, board, cost, u, d = setup(hidden)
    rng = np.random.default_rng(1)
    th = m.default_theta
    ex = make_rule("exact").gradient(m, board, cost, th, u, d, rng)
    fd = make_rule("fd").gradient(m, board, cost, th, u, d, rng)
    assert ex.loss == pytest.approx(fd.loss, rel=1e-12)
    assert rel(ex.gradient, fd.gradient) < 1e-6


def test_exact_on_a_network_that_is_not_layered():
    G = skip_net()
    m = compile_network(G)
    assert layered_structure(m) is None
    board = EmulatedBoard(m)
    cost = board.cost
    u, d = np.array([[0.7], [-0.4]]), np.array([[0.2], [-0.1]])
    rng = np.random.default_rng(0)
    ex = make_rule("exact").gradient(m, board, cost, m.default_theta, u, d, rng)
    fd = make_rule("fd").gradient(m, board, cost, m.default_theta, u, d, rng)
    assert rel(ex.gradient, fd.gradient) < 1e-6
    ep = make_rule("ep", beta=1e-6).gradient(m, board, cost, m.default_theta, u, d, rng)
    assert rel(ep.gradient, ex.gradient) < 1e-4


def test_symmetric_ep_error_is_second_order_and_one_sided_first_order():
    m, board, cost, u, d = setup()
    rng = np.random.default_rng(0)
    th = m.default_theta
    ex = make_rule("exact").gradient(m, board, cost, th, u, d, rng).gradient
    board.set_parameters(th)
    board.clamp(u)
    bound = output_curvature(m, cost, th, u, board.equilibrium_state())
    sym, one = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in (0.2 * bound, 0.1 * bound, 0.05 * bound):
            sym.append(rel(make_rule("ep", beta=b).gradient(m, board, cost, th, u, d, rng).gradient, ex))
            one.append(rel(make_rule("ep", beta=b, symmetric=False).gradient(m, board, cost, th, u, d, rng).gradient, ex))
    for k in range(2):
        assert 3.5 < sym[k] / sym[k + 1] < 4.5
        assert 1.7 < one[k] / one[k + 1] < 2.3
    assert sym[-1] < 0.005


def test_ep_loss_is_the_free_cost_and_relative_beta_is_reported():
    m, board, cost, u, d = setup()
    rng = np.random.default_rng(0)
    r = make_rule("ep", beta_fraction=0.1).gradient(m, board, cost, m.default_theta, u, d, rng)
    ex = make_rule("exact").gradient(m, board, cost, m.default_theta, u, d, rng)
    assert r.loss == pytest.approx(ex.loss, rel=1e-12)
    assert r.info["beta"] == pytest.approx(0.1 * r.info["curvature"])
    assert r.info["readout"].shape == (len(u), 2)


def test_envelope_identities():
    """Phi(beta, theta) = E + beta C at s*_beta: dPhi/dbeta = C(s*_beta), dPhi/dtheta = dE/dtheta(s*_beta)."""
    m, board, cost, u, d = setup(B=1)
    th = m.default_theta
    beta = 2e-5

    def phi(b, t):
        s = solve_equilibrium(m, t, u, cost=cost, targets=d, beta=b).s
        return float(m.energy(t, u, s)[0] + b * cost.value(s, d)[0]), s

    _, s = phi(beta, th)
    hb = 1e-7
    dphi_db = (phi(beta + hb, th)[0] - phi(beta - hb, th)[0]) / (2 * hb)
    assert dphi_db == pytest.approx(cost.value(s, d)[0], rel=1e-6)
    dE = m.dE_dtheta(th, u, s)[0]
    for p in (0, 7, len(th) - 1):
        e = np.zeros_like(th)
        e[p] = 1e-4 * th[p]
        fd = (phi(beta, th + e)[0] - phi(beta, th - e)[0]) / (2 * e[p])
        assert fd == pytest.approx(dE[p], rel=1e-6)


def test_beta_beyond_the_output_curvature_is_refused_and_one_sided_large_beta_warns():
    m, board, cost, u, d = setup()
    rng = np.random.default_rng(0)
    th = m.default_theta
    board.set_parameters(th)
    board.clamp(u)
    bound = output_curvature(m, cost, th, u, board.equilibrium_state())
    with pytest.raises(ConfigError, match="curvature"):
        make_rule("ep", beta=1.05 * bound).gradient(m, board, cost, th, u, d, rng)
    with pytest.raises(ConfigError, match="curvature"):
        make_rule("ep", beta=-1.05 * bound, symmetric=False).gradient(m, board, cost, th, u, d, rng)
    with pytest.warns(UserWarning, match="one-sided"):
        make_rule("ep", beta=0.5 * bound, symmetric=False).gradient(m, board, cost, th, u, d, rng)
    # exactly where the bound says, the resistors' part of E - beta C stops being convex;
    # the diodes only add curvature, so at the equilibrium it is still convex
    Lff = m.laplacian_blocks(th)[0].toarray()
    Hc = cost.hessian(m.n_free) * bound
    assert np.min(np.linalg.eigvalsh(Lff - Hc)) == pytest.approx(0.0, abs=1e-9 * bound)
    s = board.equilibrium_state()
    assert np.min(np.linalg.eigvalsh(m.hessian(th, u, s) - Hc[None])) >= -1e-9 * bound


def test_output_curvature_matches_the_dense_schur_complement():
    m, board, cost, u, d = setup()
    th = m.default_theta
    s = solve_equilibrium(m, th, u).s
    Lff = m.laplacian_blocks(th)[0].toarray()      # the diodes' convex part is left out
    idx = list(m.outputs)
    D = np.zeros((2, m.n_free))
    D[0, idx[0]], D[0, idx[1]], D[1, idx[2]], D[1, idx[3]] = 1, -1, 1, -1
    lam = np.max(np.linalg.eigvalsh(D @ np.linalg.inv(Lff) @ D.T))
    assert output_curvature(m, cost, th, u, s) == pytest.approx(1 / lam, rel=1e-9)


def test_bad_options_and_names():
    with pytest.raises(ConfigError, match="unknown rule"):
        make_rule("backprop")
    with pytest.raises(ConfigError, match="beta_fraction"):
        make_rule("ep", beta_fraction=1.5)
    with pytest.raises(ConfigError, match="the ep rule takes no option samples"):
        make_rule("ep", samples=32)
    with pytest.raises(ConfigError, match="the thermal rule takes no option symmetric"):
        make_rule("thermal", symmetric=False)
    with pytest.raises(ConfigError, match="beta"):
        make_rule("ep", beta=0.0)
    assert {"exact", "ep", "fd"} <= set(RULES)


def test_state_from_readings_orders_and_checks_nodes():
    m, board, cost, u, d = setup()
    V = board.equilibrium()
    names = board.capabilities.measured
    s = state_from_readings(m, names, V)
    np.testing.assert_array_equal(s, board.equilibrium_state())
    perm = np.random.default_rng(0).permutation(len(names))
    s2 = state_from_readings(m, tuple(names[i] for i in perm), V[:, perm])
    np.testing.assert_array_equal(s, s2)
    missing = tuple(n for n in names if n != m.free_names[0])
    with pytest.raises(ConfigError, match=m.free_names[0]):
        state_from_readings(m, missing, V[:, [names.index(n) for n in missing]])


# ----- the layered solver ------------------------------------------------------------------------

@pytest.mark.parametrize("hidden,differential", [((4,), True), ((5, 3), False), ((3, 4, 2), True)])
def test_layered_solver_matches_general_newton(hidden, differential):
    m, board, cost, u, d = setup(hidden, differential, B=6)
    st = layered_structure(m)
    assert st is not None and st.n_layers == len(hidden) + 1
    th = m.default_theta
    for beta in (0.0, 3e-5, -3e-5):
        ref = _newton(m, th, u, cost, d, beta, None, 1e-12, 200)
        got = solve_layered(m, st, th, u, cost=cost, targets=d, beta=beta, rtol=1e-12)
        np.testing.assert_allclose(got.s, ref.s, atol=1e-10)
        warm = solve_layered(m, st, th, u, cost=cost, targets=d, beta=beta, s0=got.s + 0.01, rtol=1e-12)
        np.testing.assert_allclose(warm.s, ref.s, atol=1e-10)
    rhs = np.random.default_rng(0).normal(size=(len(u), m.n_free, 3))
    s = ref.s
    H = m.hessian(th, u, s) + (-3e-5) * cost.hessian(m.n_free)
    x = solve_hessian(m, th, u, s, rhs, cost=cost, beta=-3e-5)
    np.testing.assert_allclose(H @ x, rhs, atol=1e-9 * np.max(np.abs(rhs)))


def test_layered_solver_reports_a_nonconvex_nudge():
    m, board, cost, u, d = setup()
    st = layered_structure(m)
    th = m.default_theta
    bound = output_curvature(m, cost, th, u, solve_equilibrium(m, th, u).s)
    with pytest.raises(ConvergenceError, match="convex"):
        solve_layered(m, st, th, u, cost=cost, targets=d, beta=-3 * bound)


def test_batch_means_match_per_example_arrays():
    m, board, cost, u, d = setup((3, 4))
    rng = np.random.default_rng(2)
    s, lam = rng.normal(size=(2, len(u), m.n_free))
    th = m.default_theta
    np.testing.assert_allclose(mean_dE_dtheta(m, th, u, s), m.dE_dtheta(th, u, s).mean(0), atol=1e-14)
    np.testing.assert_allclose(m.mean_contract_mixed(lam, u, s), m.contract_mixed(lam, u, s).mean(0), atol=1e-14)
    # a chain: its trained resistors do not fill a dense block, so the gather branch runs
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=1.0)
    G.add_node("0", role="ground")
    nodes = ["in"] + [f"n{k}" for k in range(120)] + ["0"]
    for k in range(len(nodes) - 1):
        G.add_edge(nodes[k], nodes[k + 1], key=f"R{k}", element="resistor", conductance=1e-3, trainable=True)
    G.nodes["n119"]["role"] = "output"
    mk = compile_network(normalise_resistive(G))
    lo, hi, rows, cols, _ = mk._moment_index
    assert len(rows) * len(cols) > 4 * len(lo) + 4096
    uu, ss = np.array([[0.3], [-0.2]]), rng.normal(size=(2, mk.n_free))
    np.testing.assert_allclose(mk.mean_dE_dtheta(None, uu, ss), mk.dE_dtheta(None, uu, ss).mean(0), atol=1e-14)


def test_softmax_readout_cost_and_its_gradients():
    from analog_ep.models.readout import SoftmaxCrossEntropyCost
    m, board, _, u, _ = setup()
    cost = SoftmaxCrossEntropyCost(tuple(int(i) for i in m.outputs), differential=True, gain=40.0)
    board.cost = cost
    d = np.eye(2)[[0, 1, 1, 0, 1]]
    rng = np.random.default_rng(3)
    s = rng.normal(0, 0.05, (len(u), m.n_free))
    g = cost.grad(s, d)
    for i in list(m.outputs) + [0]:
        e = np.zeros_like(s)
        e[:, i] = 1e-6
        np.testing.assert_allclose((cost.value(s + e, d) - cost.value(s - e, d)) / 2e-6, g[:, i], atol=1e-6)
    # the constant curvature bound majorises the true Hessian along the read-out
    H = np.array([[(cost.grad(s + 1e-6 * np.eye(m.n_free)[j], d) - cost.grad(s - 1e-6 * np.eye(m.n_free)[j], d))[0] / 2e-6
                   for j in range(m.n_free)]])[0]
    assert np.min(np.linalg.eigvalsh(cost.hessian(m.n_free) - 0.5 * (H + H.T))) > -1e-6
    th = m.default_theta
    ex = make_rule("exact").gradient(m, board, cost, th, u, d, rng)
    fd = make_rule("fd").gradient(m, board, cost, th, u, d, rng)
    ep = make_rule("ep", beta_fraction=0.02).gradient(m, board, cost, th, u, d, rng)
    assert rel(ex.gradient, fd.gradient) < 1e-5
    assert rel(ep.gradient, ex.gradient) < 0.01
