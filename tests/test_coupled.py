"""Coupled learning (docs/PHYSICS.md, "Coupled learning"): the held outputs on the emulated
board, the first-order form ``g = -e^T [(H^-1)_oo]^-1 ds_o/dtheta`` against finite
differences of the outputs, the O(eta_c) error, the single-output parallelism with EP, and
training through the command line."""

import dataclasses
import json

import networkx as nx
import numpy as np
import pytest

from analog_ep.errors import ConfigError
from analog_ep.graph import load_network
from analog_ep.learning.registry import make_rule
from analog_ep.models.cost import SquaredCost
from analog_ep.models.resistive import compile_network
from analog_ep.networks import layered_diode_network
from analog_ep.physics.equilibrium import solve_equilibrium
from analog_ep.schema import normalise_resistive
from analog_ep.substrates.emulated import EmulatedBoard
from cli_helpers import run_module


def linear_net():
    """Two inputs, two hidden nodes, two outputs, every resistor trainable."""
    G = nx.MultiGraph(family="resistive")
    for n, role, v in (("a", "input", 0.8), ("b", "input", -0.3), ("0", "ground", None)):
        G.add_node(n, role=role, **({} if v is None else {"voltage": v}))
    G.add_node("o1", role="output")
    G.add_node("o2", role="output")
    edges = (("a", "h1", 1e-3), ("b", "h1", 2e-3), ("a", "h2", 5e-4), ("b", "h2", 1.5e-3), ("h1", "o1", 1e-3),
             ("h2", "o1", 7e-4), ("h1", "o2", 4e-4), ("h2", "o2", 1.2e-3), ("o1", "0", 1e-3), ("o2", "0", 8e-4),
             ("h1", "0", 3e-4))
    for k, (a, b, g) in enumerate(edges):
        G.add_edge(a, b, key=f"R{k}", element="resistor", conductance=g, trainable=True, g_min=1e-6, g_max=1e-2)
    return compile_network(normalise_resistive(G))


def diode_net(seed=0):
    return compile_network(layered_diode_network(3, 2, (4,), rng=np.random.default_rng(seed), differential=False))


def problem(m, B, seed=1):
    rng = np.random.default_rng(seed)
    n_in = len(m.inputs)
    x = rng.uniform(-1, 1, (B, (n_in + 1) // 2))
    u = np.stack([x, -x], 2).reshape(B, -1)[:, :n_in]     # the diode networks' doubled inputs
    d = rng.uniform(-0.1, 0.1, (B, len(m.outputs)))
    board = EmulatedBoard(m)
    cost = SquaredCost(tuple(int(i) for i in m.outputs))
    board.cost = cost
    return board, cost, u, d


def first_order(m, cost, theta, u, d, h=1e-6):
    """Batch mean of ``-e^T A ds_o/dtheta``, ``A = [(H^-1)_oo]^-1``, with ``ds_o/dtheta``
    by central differences of the free outputs (step h relative; error O(h^2) ~ 1e-12)."""
    idx = list(cost.index)
    s = solve_equilibrium(m, theta, u).s
    H = m.hessian(theta, u, s)
    J = np.empty((len(u), len(idx), len(theta)))
    for p in range(len(theta)):
        t = theta.copy()
        t[p] += h * theta[p]
        up = solve_equilibrium(m, t, u, rtol=1e-13).s[:, idx]
        t[p] -= 2 * h * theta[p]
        dn = solve_equilibrium(m, t, u, rtol=1e-13).s[:, idx]
        J[:, :, p] = (up - dn) / (2 * h * theta[p])
    A = np.linalg.inv(np.linalg.inv(H)[:, idx][:, :, idx])
    e = d - s[:, idx]
    return -np.einsum("bi,bij,bjp->p", e, A, J) / len(u), A


def coupled(m, board, cost, u, d, eta_c):
    return make_rule("coupled", eta_c=eta_c).gradient(m, board, cost, m.default_theta, u, d, None).gradient


def rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def test_held_outputs_read_their_volts_and_the_rest_relaxes():
    m = linear_net()
    board, cost, u, d = problem(m, 3)
    board.clamp(u)
    held = np.array([[0.05, np.nan]] * 3)
    board.clamp_outputs(held)
    s = board.equilibrium_state()
    np.testing.assert_array_equal(s[:, m.outputs[0]], 0.05)
    # every node but the held one is stationary: the energy gradient vanishes there
    g = m.grad(m.default_theta, u, s)
    rest = np.setdiff1d(np.arange(m.n_free), [m.outputs[0]])
    assert np.max(np.abs(g[:, rest])) < 1e-12 * np.max(np.abs(m.node_currents_out(m.default_theta, m.voltages(s, u))))
    board.clamp_outputs(None)
    np.testing.assert_allclose(board.equilibrium_state(), solve_equilibrium(m, m.default_theta, u).s, atol=1e-14)
    with pytest.raises(ConfigError, match="the same outputs in every row"):
        board.clamp_outputs([[0.1, np.nan], [np.nan, 0.1]])


@pytest.mark.parametrize("net, ratio_tol", [(linear_net, 1e-6), (diode_net, 0.05)])
def test_first_order_form_and_the_one_sided_error(net, ratio_tol):
    m = net()
    board, cost, u, d = problem(m, 4)
    g1, _ = first_order(m, cost, m.default_theta, u, d)
    err = [rel(coupled(m, board, cost, u, d, eta), g1) for eta in (0.08, 0.04, 0.02)]
    assert err[-1] < 0.02
    # one-sided: the error is c eta_c + O(eta_c^2), exactly linear for a linear network
    # (the state moves linearly, dE/dG = dV^2/2 is quadratic); the reference's own error
    # (central differences, 1e-10 relative) is far below these errors (1e-3 and up)
    np.testing.assert_allclose(np.array(err[:-1]) / np.array(err[1:]), 2.0, rtol=ratio_tol)


def test_single_output_is_parallel_to_ep_with_factor_a():
    m = compile_network(load_network("xor_diode"))
    board = EmulatedBoard(m)
    cost = SquaredCost(tuple(int(i) for i in m.outputs))
    board.cost = cost
    u, d = m.default_inputs[None, :], np.array([[0.3]])
    ex = make_rule("exact").gradient(m, board, cost, m.default_theta, u, d, None).gradient
    _, A = first_order(m, cost, m.default_theta, u, d)
    # Richardson on the one-sided estimate, 2 g(eta/2) - g(eta): error O(eta^2), ~1e-5 here
    g = 2 * coupled(m, board, cost, u, d, 0.01) - coupled(m, board, cost, u, d, 0.02)
    assert A.shape == (1, 1, 1) and A[0, 0, 0] > 0
    # (the input b = 0 leaves R3, R4 without current: both gradients are 0 up to round-off)
    np.testing.assert_allclose(g, A[0, 0, 0] * ex, rtol=1e-3, atol=1e-9 * np.abs(A[0, 0, 0] * ex).max())
    # descending it lowers the squared cost
    loss = lambda t: float(cost.value(solve_equilibrium(m, t, u).s, d)[0])     # noqa: E731
    step = 1e-3 * m.default_theta.max() * g / np.abs(g).max()
    assert loss(m.default_theta - step) < loss(m.default_theta)


def test_linear_network_batch_mean_is_ep_weighted_by_one_matrix():
    m = linear_net()
    board, cost, u, d = problem(m, 5)
    _, A = first_order(m, cost, m.default_theta, u, d)
    np.testing.assert_allclose(A, A[:1].repeat(5, 0), rtol=1e-10)     # H does not depend on the state
    g = 2 * coupled(m, board, cost, u, d, 0.01) - coupled(m, board, cost, u, d, 0.02)   # exact: linear error
    # EP of the cost weighted by A: the exact rule on each output's error, recombined
    s = solve_equilibrium(m, m.default_theta, u).s
    e = d - s[:, list(cost.index)]
    weighted = s[:, list(cost.index)] + e @ A[0]       # targets whose error is A e
    ep_w = make_rule("exact").gradient(m, board, cost, m.default_theta, u, weighted, None).gradient
    np.testing.assert_allclose(g, ep_w, rtol=1e-8)


def test_differential_pairs_move_their_difference():
    m = compile_network(layered_diode_network(3, 2, (4,), rng=np.random.default_rng(0), differential=True))
    board = EmulatedBoard(m)
    cost = SquaredCost(tuple(int(i) for i in m.outputs), differential=True)
    board.cost = cost
    u = np.array([[0.5, -0.5, -0.2, 0.2, 0.9, -0.9]])
    d = np.array([[0.1, -0.1]])
    g = coupled(m, board, cost, u, d, 0.02)
    # first order with the pair direction (e/2, -e/2): the cost of that point's A-distance
    s = solve_equilibrium(m, m.default_theta, u).s
    w = -cost.grad(s, d)[:, list(cost.index)] / 2
    g1, _ = first_order(m, SquaredCost(cost.index), m.default_theta, u, s[:, list(cost.index)] + w)
    assert rel(g, g1) < 0.03


def test_coupled_rule_is_refused_where_it_cannot_clamp():
    m = linear_net()
    board, cost, u, d = problem(m, 2)
    board.capabilities = dataclasses.replace(board.capabilities, clamp_outputs=False)
    with pytest.raises(ConfigError, match="cannot clamp its outputs"):
        coupled(m, board, cost, u, d, 0.1)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="eta_c must be in"):
            make_rule("coupled", eta_c=bad)


def test_train_coupled_on_xor(tmp_path):
    done = run_module("train", "--dataset", "xor", "--rule", "coupled", "--eta-c", "0.2", "--epochs", "60",
                      "--quiet", "--format", "json", "--out", tmp_path / "xor")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["final"]["test_accuracy"] == 1.0
    metrics = json.loads((tmp_path / "xor" / "metrics.json").read_text())
    assert metrics["config"]["rule"] == "coupled" and metrics["config"]["eta_c"] == 0.2
