"""Compiled resistive model and equilibrium solver against exact references."""

import networkx as nx
import numpy as np
import pytest

from analog_ep.errors import ConvergenceError, NetworkError
from analog_ep.schema import normalise_resistive, validate_resistive
from analog_ep.models.cost import SquaredCost
from analog_ep.models.resistive import compile_network
from analog_ep.physics.equilibrium import solve_equilibrium


def diode_net():
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=1.0)
    G.add_node("vb", role="bias", voltage=0.3)
    G.add_node("0", role="ground")
    G.add_node("out", role="output")
    G.add_edge("in", "h", key="R1", element="resistor", conductance=1e-3, trainable=True)
    G.add_edge("h", "out", key="R2", element="resistor", conductance=2e-3, trainable=True)
    G.add_edge("out", "0", key="R3", element="resistor", conductance=1e-3)
    G.add_edge("h", "0", key="R4", element="resistor", conductance=1e-4)
    G.add_edge("h", "vb", key="D1", element="diode", anode="h", cathode="vb", i_s=1e-12)
    G.add_edge("h", "vb", key="D2", element="diode", anode="vb", cathode="h", i_s=1e-12)
    return normalise_resistive(G)


U = np.array([[1.0], [0.5], [-1.0], [2.0], [0.0]])


def test_gradient_and_hessian_match_finite_differences():
    m = compile_network(diode_net())
    th = m.default_theta
    rng = np.random.default_rng(0)
    s = rng.normal(0, 0.5, (len(U), m.n_free))
    g, H = m.grad(th, U, s), m.hessian(th, U, s)
    for i in range(m.n_free):
        e = np.zeros_like(s)
        e[:, i] = 1e-6
        fd = (m.energy(th, U, s + e) - m.energy(th, U, s - e)) / 2e-6
        np.testing.assert_allclose(fd, g[:, i], rtol=1e-6, atol=1e-12)
        fdg = (m.grad(th, U, s + e) - m.grad(th, U, s - e)) / 2e-6
        np.testing.assert_allclose(fdg, H[:, :, i], rtol=1e-5, atol=1e-9)


def test_dE_dtheta_matches_finite_differences():
    m = compile_network(diode_net())
    th = m.default_theta
    s = np.random.default_rng(1).normal(0, 0.5, (len(U), m.n_free))
    d = m.dE_dtheta(th, U, s)
    for p in range(len(th)):
        e = np.zeros_like(th)
        e[p] = 1e-7
        fd = (m.energy(th + e, U, s) - m.energy(th - e, U, s)) / 2e-7
        np.testing.assert_allclose(fd, d[:, p], rtol=1e-6)


def test_diode_equilibrium_satisfies_kcl_and_is_batched():
    m = compile_network(diode_net())
    eq = solve_equilibrium(m, m.default_theta, U)
    assert eq.residual <= 1e-10
    one = np.vstack([solve_equilibrium(m, m.default_theta, U[i:i + 1]).s for i in range(len(U))])
    np.testing.assert_allclose(eq.s, one, atol=1e-12)


def test_linear_divider_closed_form_and_nudging():
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=1.0)
    G.add_node("0", role="ground")
    G.add_node("out", role="output")
    G.add_edge("in", "out", key="R1", element="resistor", conductance=2e-3)
    G.add_edge("out", "0", key="R2", element="resistor", conductance=1e-3)
    m = compile_network(normalise_resistive(G))
    u = np.array([[3.0], [-1.5]])
    np.testing.assert_allclose(solve_equilibrium(m, None, u).s[:, 0], u[:, 0] * 2 / 3)
    beta, d = 5e-4, np.array([[0.2], [0.2]])
    s = solve_equilibrium(m, None, u, cost=SquaredCost((0,)), targets=d, beta=beta).s
    # KCL with the nudge current beta (d - V)
    np.testing.assert_allclose(2e-3 * (u - s) - 1e-3 * s + beta * (d - s), 0, atol=1e-15)


@pytest.mark.parametrize("mutate, message", [
    (lambda G: G.nodes["h"].update(role="weird"), "unknown role"),
    (lambda G: G.edges["in", "h", "R1"].update(conductance=-1.0), "conductance must be positive"),
    (lambda G: G.edges["in", "h", "R1"].update(conductance=5.0), "outside its bounds"),
    (lambda G: G.edges["in", "h", "R1"].update(element="capacitor"), "unknown element"),
    (lambda G: G.nodes["vb"].pop("voltage"), "has no 'voltage'"),
    (lambda G: G.remove_edge("h", "0", "R4") or G.remove_edge("in", "h", "R1")
     or G.remove_edge("h", "out", "R2"), "'h' has no resistive path"),
])
def test_validation_names_the_fault(mutate, message):
    G = diode_net()
    mutate(G)
    with pytest.raises(NetworkError, match=message):
        validate_resistive(G)


def test_unreachable_output_is_refused():
    G = diode_net()
    G.remove_edge("h", "out", "R2")
    with pytest.raises(NetworkError, match="output node 'out' cannot be reached"):
        validate_resistive(G)


def test_newton_reports_non_convergence():
    m = compile_network(diode_net())
    with pytest.raises(ConvergenceError, match="residual"):
        solve_equilibrium(m, m.default_theta, U, max_iter=1)
