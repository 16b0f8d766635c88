"""Equilibrium solver internals: fast Laplacian assembly and Newton from hard starts."""

import networkx as nx
import numpy as np
import pytest

from analog_ep.errors import ConfigError
from analog_ep.graph import load_network
from analog_ep.schema import VT_NOMINAL, normalise_resistive
from analog_ep.models.cost import SquaredCost
from analog_ep.models.resistive import compile_network
from analog_ep.physics.equilibrium import (clamped_voltages, laplacian_blocks, solve_equilibrium,
                                           solve_linear)


def mixed_network(seed: int, trainable: float = 0.5) -> nx.MultiGraph:
    """Random resistors (some trainable, some parallel) among inputs, bias, ground, free nodes."""
    rng = np.random.default_rng(seed)
    G = nx.MultiGraph(family="resistive")
    G.add_node("0", role="ground")
    G.add_node("b", role="bias", voltage=0.4)
    for i in range(3):
        G.add_node(f"x{i}", role="input", voltage=float(i))
    free = [f"h{i}" for i in range(12)]
    for i, h in enumerate(free):
        G.add_node(h, role="output" if i < 2 else "hidden")
    nodes = ["0", "b", "x0", "x1", "x2"] + free
    k = 0
    for i, h in enumerate(free):
        for j in rng.choice(len(nodes), 3, replace=False):
            if nodes[j] != h:
                k += 1
                G.add_edge(h, nodes[j], key=f"R{k}", element="resistor",
                           conductance=float(rng.uniform(1e-4, 1e-2)), trainable=bool(rng.random() < trainable))
    k += 1
    G.add_edge("h0", "x0", key=f"R{k}", element="resistor", conductance=1e-3)  # a parallel pair
    k += 1
    G.add_edge("h0", "x0", key=f"R{k}", element="resistor", conductance=2e-3, trainable=True)
    return normalise_resistive(G)


@pytest.mark.parametrize("seed", range(4))
def test_fast_laplacian_blocks_equal_the_models(seed):
    m = compile_network(mixed_network(seed))
    theta = m.default_theta * np.random.default_rng(seed).uniform(0.5, 2.0, len(m.default_theta))
    Lff, Lfc = laplacian_blocks(m, theta)
    ref_ff, ref_fc = m.laplacian_blocks(theta)
    np.testing.assert_allclose(Lff.toarray(), ref_ff.toarray(), rtol=1e-14, atol=1e-18)
    fc = Lfc if isinstance(Lfc, np.ndarray) else Lfc.toarray()
    np.testing.assert_allclose(fc, ref_fc.toarray(), rtol=1e-14, atol=1e-18)
    u = np.random.default_rng(1).normal(size=(4, 3))
    np.testing.assert_array_equal(clamped_voltages(m, u), m.clamped_voltages(u))
    with pytest.raises(ConfigError, match="parameters"):
        laplacian_blocks(m, theta[:-1])


@pytest.mark.parametrize("parallel", [False, True])
def test_dense_input_blocks_by_gather_or_by_product_equal_the_models(parallel):
    """Layered networks fill L_fc densely: it is gathered from theta, unless an entry sums
    two trainable conductances (parallel resistors), when the sparse product is used."""
    from analog_ep.networks import layered_diode_network
    from analog_ep.physics.equilibrium import _laplacian_maps
    G = layered_diode_network(3, 2, (5,), rng=np.random.default_rng(0))
    if parallel:
        a, b, _ = next((a, b, k) for a, b, k, d in G.edges(keys=True, data=True) if d.get("trainable"))
        G.add_edge(a, b, key="Rpar", element="resistor", conductance=1e-4, trainable=True)
        G = normalise_resistive(G)
    m = compile_network(G)
    maps = _laplacian_maps(m)
    assert maps.fc_dense and (maps.fc_gather is None) == parallel
    theta = m.default_theta * np.random.default_rng(1).uniform(0.5, 2.0, len(m.default_theta))
    Lfc = laplacian_blocks(m, theta)[1]
    np.testing.assert_allclose(Lfc, m.laplacian_blocks(theta)[1].toarray(), rtol=1e-14, atol=1e-18)


@pytest.mark.parametrize("name", ["divider", "mesh_1000"])
def test_linear_solve_satisfies_kirchhoff(name):
    m = compile_network(load_network(name))
    u = np.random.default_rng(2).uniform(-1, 1, (5, len(m.input_names)))
    s = solve_linear(m, None, u)
    g = m.grad(None, u, s)
    assert np.max(np.abs(g) / m.current_scale(None, u, s)) < 1e-9


def test_linear_solve_with_nudge_matches_dense_reference():
    m = compile_network(mixed_network(7))
    cost = SquaredCost(tuple(int(i) for i in m.outputs))
    u = np.random.default_rng(3).normal(size=(3, 3))
    d = np.random.default_rng(4).normal(size=(3, len(m.outputs)))
    beta = 2e-3
    s = solve_equilibrium(m, None, u, cost=cost, targets=d, beta=beta).s
    H = m.hessian(None, u, s)[0] + beta * cost.hessian(m.n_free)
    for b in range(3):
        g = m.grad(None, u[b:b + 1], s[b:b + 1])[0] + beta * cost.grad(s[b:b + 1], d[b:b + 1])[0]
        assert np.max(np.abs(np.linalg.solve(H, g))) < 1e-12  # the Newton step from s is ~0


def diode_ladder(v_in: float, i_s: float) -> nx.MultiGraph:
    """Input -> resistor -> chain of forward diodes between free nodes -> ground: the
    diode-free start puts volts across the first diodes, far above their knee."""
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=v_in)
    G.add_node("0", role="ground")
    chain = ["a", "b", "c", "d"]
    for n in chain:
        G.add_node(n, role="hidden")
    G.nodes["d"]["role"] = "output"
    G.add_edge("in", "a", key="R1", element="resistor", conductance=1.0)
    prev = "a"
    for k, n in enumerate(chain[1:], start=1):
        G.add_edge(prev, n, key=f"D{k}", element="diode", anode=prev, cathode=n, i_s=i_s, vt=VT_NOMINAL)
        G.add_edge(n, "0", key=f"R{k + 1}", element="resistor", conductance=1e-6)
        prev = n
    G.add_edge("a", "0", key="R9", element="resistor", conductance=1e-6)
    return normalise_resistive(G)


@pytest.mark.parametrize("v_in, i_s", [(5.0, 1e-16), (20.0, 1e-14), (-20.0, 1e-12), (3.0, 1e-9)])
def test_newton_converges_from_far_and_balances_currents(v_in, i_s):
    m = compile_network(diode_ladder(v_in, i_s))
    eq = solve_equilibrium(m, None, None)
    assert eq.residual <= 1e-10 and eq.iterations < 60
    V = dict(zip(m.node_names, m.voltages(eq.s, None)[0]))
    # KCL at d: the diode current from c equals the leak to ground
    i_d = i_s * np.expm1((V["c"] - V["d"]) / VT_NOMINAL)
    assert i_d == pytest.approx(1e-6 * V["d"], rel=1e-8, abs=1e-20)


def test_roundoff_limited_node_counts_as_converged():
    """Node h carries only a reverse diode's 1 fA and a resistor's current from a 1 V input:
    it balances only to about eps * g * 1 V, which must count as converged, while the fA
    itself is still resolved (h sits 1e-14 V below the input)."""
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=1.0)
    G.add_node("vb", role="bias", voltage=-2.0)
    G.add_node("h", role="output")
    G.add_node("k", role="hidden")
    G.add_edge("in", "h", key="R1", element="resistor", conductance=1e-1)
    G.add_edge("vb", "k", key="R2", element="resistor", conductance=1e-3)
    G.add_edge("k", "h", key="D1", element="diode", anode="k", cathode="h", i_s=1e-15)
    m = compile_network(normalise_resistive(G))
    eq = solve_equilibrium(m, m.default_theta, None)
    assert eq.residual <= 1e-10
    V = dict(zip(m.node_names, m.voltages(eq.s, None)[0]))
    assert V["h"] == pytest.approx(1.0 - 1e-15 / 1e-1, abs=3e-16)
    assert V["k"] == pytest.approx(-2.0 + 1e-15 / 1e-3, abs=1e-15)


def layered_linear(n_features=20, hidden=40, n_classes=3, differential=False):
    from analog_ep.networks import layered_diode_network
    G = layered_diode_network(n_features, n_classes, (hidden,), rng=np.random.default_rng(5),
                              differential=differential)
    G.remove_edges_from([(a, b, k) for a, b, k, d in G.edges(keys=True, data=True) if d["element"] == "diode"])
    G.remove_nodes_from(["dup", "ddn"])
    return G


@pytest.mark.parametrize("differential", [False, True])
def test_layered_block_elimination_is_exact(differential):
    from analog_ep.physics.equilibrium import _laplacian_maps
    m = compile_network(layered_linear(differential=differential))
    plan = _laplacian_maps(m).schur
    assert plan is not None and len(plan.r_idx) == len(m.outputs)   # hidden nodes eliminated
    rng = np.random.default_rng(6)
    theta = m.default_theta * rng.uniform(0.5, 2.0, len(m.default_theta))
    u = rng.uniform(-1, 1, (4, len(m.input_names)))
    Lff, Lfc = (M.toarray() for M in m.laplacian_blocks(theta))
    b = -(Lfc @ m.clamped_voltages(u).T).T
    np.testing.assert_allclose(solve_linear(m, theta, u), np.linalg.solve(Lff, b.T).T, rtol=1e-12, atol=1e-14)
    cost = SquaredCost(tuple(int(i) for i in m.outputs), differential=differential)
    d = rng.normal(size=(4, len(m.outputs) // (2 if differential else 1)))
    beta = 3e-4
    H = Lff + beta * cost.hessian(m.n_free)
    rhs = b - beta * cost.grad(np.zeros((4, m.n_free)), d)
    np.testing.assert_allclose(solve_linear(m, theta, u, cost=cost, targets=d, beta=beta),
                               np.linalg.solve(H, rhs.T).T, rtol=1e-12, atol=1e-14)
