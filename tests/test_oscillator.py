"""Oscillator networks: model derivatives, periodic cost, torus equilibria, substrate, the
encoding traps and bad input."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from analog_ep.errors import ConfigError, ConvergenceError, NetworkError
from analog_ep.graph import load_network, save_network
from analog_ep.models.cost import SquaredCost
from analog_ep.models.periodic_cost import PeriodicCost, class_targets, decode_nearest
from analog_ep.models.oscillator import compile_oscillator, wrap
from analog_ep.physics.torus import documented_start, solve_torus
from analog_ep.substrates.oscillator import EmulatedOscillators

EPS = 1e-6


def random_network(rng, fields=True, bias=True):
    """2 inputs, 3 hidden, 1 output, a bias oscillator; every coupling and field trainable."""
    G = nx.Graph(family="oscillator", name="random")
    G.add_node("x1", role="input", phase=0.3)
    G.add_node("x2", role="input", phase=-0.7)
    if bias:
        G.add_node("b", role="bias", phase=1.0)
    for h in ("h1", "h2", "h3", "o"):
        kw = dict(field_trainable=True, a=rng.uniform(-1, 1), c=rng.uniform(-1, 1)) if fields else {}
        G.add_node(h, role="output" if h == "o" else "hidden", **kw)
    pairs = [("x1", "h1"), ("x2", "h1"), ("x1", "h2"), ("x2", "h3"), ("h1", "h2"), ("h2", "h3"),
             ("h1", "o"), ("h3", "o"), ("h2", "o")] + ([("b", "h2")] if bias else [])
    for k, (a, b) in enumerate(pairs, 1):
        G.add_edge(a, b, name=f"J{k}", coupling=rng.uniform(-1.5, 1.5), trainable=True)
    return G


def fd(f, x, eps=EPS):
    """Centred finite differences of f (returning (B, ...)) along each unit vector of x's
    last axis; result stacked on a new last axis."""
    cols = []
    for e in np.eye(x.shape[-1]):
        cols.append((f(x + eps * e) - f(x - eps * e)) / (2 * eps))
    return np.stack(cols, axis=-1)


@pytest.fixture
def net():
    rng = np.random.default_rng(1)
    m = compile_oscillator(random_network(rng))
    u = rng.uniform(-1, 1, (3, 2))
    s = rng.uniform(-3, 3, (3, m.n_free))
    return m, m.default_theta, u, s, rng


# ----- model ------------------------------------------------------------------------------

def test_state_derivatives_match_finite_differences(net):
    m, th, u, s, rng = net
    assert np.allclose(m.grad(th, u, s), fd(lambda x: m.energy(th, u, x), s), atol=1e-8)
    assert np.allclose(m.hessian(th, u, s), fd(lambda x: m.grad(th, u, x), s), atol=1e-8)
    T3 = fd(lambda x: m.hessian(th, u, x), s)                      # [b, i, j, k]
    G = rng.normal(size=(3, m.n_free, m.n_free))                  # not symmetric on purpose
    v = rng.normal(size=(3, m.n_free))
    assert np.allclose(m.third_trace(th, u, s, G), np.einsum("bijk,bjk->bi", T3, G), atol=1e-8)
    assert np.allclose(m.third_contract(th, u, s, v), np.einsum("bijk,bk->bij", T3, v), atol=1e-8)


def test_parameter_derivatives_match_finite_differences(net):
    m, th, u, s, rng = net
    assert np.allclose(m.dE_dtheta(th, u, s), fd(lambda t: m.energy(t, u, s), th), atol=1e-8)
    mixed = fd(lambda t: m.grad(t, u, s), th)                      # [b, i, p]
    lam = rng.normal(size=(3, m.n_free))
    assert np.allclose(m.contract_mixed(lam, u, s), np.einsum("bi,bip->bp", lam, mixed), atol=1e-8)
    assert np.allclose(m.d2E_ds_dtheta(th, u, s), mixed, atol=1e-8)
    G = rng.normal(size=(3, m.n_free, m.n_free))
    mh = fd(lambda t: m.hessian(t, u, s), th)                      # [b, i, j, p]
    assert np.allclose(m.mixed_hessian_trace(th, u, s, G), np.einsum("bijp,bij->bp", mh, G), atol=1e-8)


def test_energy_is_periodic_and_names_follow_the_schema(net):
    m, th, u, s, _ = net
    shift = 2 * np.pi * np.array([1, -2, 3, 0])
    assert np.allclose(m.energy(th, u, s + shift), m.energy(th, u, s))
    assert np.allclose(m.energy(th, u + 2 * np.pi, s), m.energy(th, u, s))
    assert m.param_names[:3] == ("J1", "J2", "J3")
    assert m.param_names[-4:] == ("c_h1", "c_h2", "c_h3", "c_o")
    assert m.output_names == ("o",) and m.input_names == ("x1", "x2")


def test_energy_closed_form_single_oscillator():
    """One oscillator coupled to an input at psi with J and in a field (a, c):
    E = -J cos(phi - psi) - a cos phi - c sin phi."""
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.4)
    G.add_node("o", role="output", a=0.3, c=-0.8)
    G.add_edge("x", "o", coupling=1.7)
    m = compile_oscillator(G)
    phi = np.linspace(-3, 3, 7)[:, None]
    E = m.energy(None, np.array([[0.4]]), phi)
    assert np.allclose(E, -1.7 * np.cos(phi[:, 0] - 0.4) - 0.3 * np.cos(phi[:, 0]) + 0.8 * np.sin(phi[:, 0]))


def test_graph_files_round_trip(tmp_path, net):
    m, th, u, s, rng = net
    G = random_network(np.random.default_rng(1))
    for suffix in (".json", ".graphml"):
        path = tmp_path / f"net{suffix}"
        save_network(G, path)
        m2 = compile_oscillator(load_network(path))
        assert m2.param_names == m.param_names
        assert np.allclose(m2.energy(th, u, s), m.energy(th, u, s))


# ----- periodic cost ------------------------------------------------------------------------

def test_periodic_cost_derivatives_and_periodicity():
    rng = np.random.default_rng(2)
    cost = PeriodicCost((1, 3))
    s = rng.uniform(-3, 3, (4, 5))
    d = rng.uniform(-3, 3, (4, 2))
    assert np.allclose(cost.value(s, d), np.sum(1 - np.cos(s[:, [1, 3]] - d), axis=1))
    assert np.allclose(cost.grad(s, d), fd(lambda x: cost.value(x, d), s), atol=1e-8)
    assert np.allclose(cost.hessian_at(s, d), fd(lambda x: cost.grad(x, d), s), atol=1e-8)
    third = fd(lambda x: cost.hess_diag(x, d), s)
    assert np.allclose(cost.third_diag(s, d), np.diagonal(third, axis1=1, axis2=2), atol=1e-8)
    assert np.allclose(cost.value(s + 2 * np.pi, d), cost.value(s, d))
    assert np.all(np.abs(cost.readout(s + 6 * np.pi) - wrap(s[:, [1, 3]])) < 1e-12)
    with pytest.raises(ConfigError, match="periodic cost has no constant Hessian"):
        cost.hessian(5)


def test_class_targets_and_nearest_decoding():
    t = class_targets(3, 3)
    assert np.allclose(t, [[np.pi / 2, -np.pi / 2, -np.pi / 2], [-np.pi / 2, np.pi / 2, -np.pi / 2],
                           [-np.pi / 2, -np.pi / 2, np.pi / 2]])
    phases = np.random.default_rng(3).uniform(-np.pi, np.pi, (50, 3))
    assert np.array_equal(decode_nearest(phases, t), np.argmax(np.sin(phases), axis=1))
    one = class_targets(2, 1)
    assert np.array_equal(decode_nearest(np.array([[0.3], [-0.2], [2.9]]), one), [1, 0, 1])
    with pytest.raises(ConfigError, match="cannot encode 3 classes on 2"):
        class_targets(3, 2)


# ----- equilibrium on the torus ----------------------------------------------------------

def ring(n=5, j_in=0.3):
    """A ring of n free oscillators (J = 1) anchored to an input at phase 0 through node r0:
    its minima are the twisted states phi_k = 2 pi w k / n with cos(2 pi w / n) > 0, of
    energy -n cos(2 pi w / n) - j_in."""
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.0)
    for k in range(n):
        G.add_node(f"r{k}", role="output" if k == 2 else "hidden")
        G.add_edge(f"r{k}", f"r{(k + 1) % n}", name=f"J{k}", coupling=1.0, trainable=True)
    G.add_edge("x", "r0", name="Jin", coupling=j_in)
    return G


def test_solver_finds_a_stable_minimum(net):
    m, th, u, _, _ = net
    eq = solve_torus(m, th, u)
    assert np.max(np.abs(m.grad(th, u, eq.s))) < 1e-8
    assert np.all(eq.min_eigenvalue > 0)
    assert np.allclose(eq.min_eigenvalue, np.linalg.eigvalsh(m.hessian(th, u, eq.s))[:, 0])
    assert np.all((eq.s >= -np.pi) & (eq.s < np.pi))


def test_restarts_find_every_twisted_minimum_and_return_the_lowest():
    m = compile_oscillator(ring())
    eq = solve_torus(m, None, None, restarts=40, rng=np.random.default_rng(0))
    assert eq.n_minima[0] == 3                                   # windings 0, +1, -1
    assert eq.energy[0] == pytest.approx(-5 - 0.3, abs=1e-10)
    assert eq.gap[0] == pytest.approx(5 - 5 * np.cos(2 * np.pi / 5), abs=1e-9)
    assert np.max(np.abs(wrap(eq.s))) < 1e-8                      # all aligned with the input at 0
    assert 1 <= eq.visits[0] <= 40


def test_nudged_solve_stays_in_the_basin_of_its_warm_start():
    m = compile_oscillator(ring())
    twist = wrap(2 * np.pi * np.arange(5) / 5)[None, :]
    free = solve_torus(m, None, None, s0=twist)
    assert np.max(np.abs(wrap(free.s - twist))) < 1e-8
    cost = PeriodicCost(tuple(int(i) for i in m.outputs))
    nudged = solve_torus(m, None, None, cost=cost, targets=[[0.0]], beta=0.01, s0=free.s)
    assert 1e-4 < np.max(np.abs(wrap(nudged.s - twist))) < 0.1
    winding = np.sum(wrap(np.roll(nudged.s, -1, axis=1) - nudged.s)) / (2 * np.pi)
    assert winding == pytest.approx(1.0, abs=1e-9)          # still the twisted state
    assert nudged.min_eigenvalue[0] > 0


def test_documented_start_aligns_with_clamped_neighbours():
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.5)
    G.add_node("y", role="input", phase=-1.0)
    G.add_node("h", role="hidden", a=0.0, c=0.0)
    G.add_node("o", role="output", a=0.0, c=2.0)
    G.add_edge("x", "h", coupling=1.0)
    G.add_edge("y", "h", coupling=-1.0)
    G.add_edge("h", "o", coupling=1.0)
    m = compile_oscillator(G)
    z = np.exp(0.5j) - np.exp(-1.0j)
    assert np.allclose(documented_start(m, None, None), [[np.angle(z), np.pi / 2]])


def test_a_start_on_a_saddle_is_kicked_off_to_the_minimum():
    """Started exactly at the maximum (zero torque, negative curvature), Newton leaves along
    the negative-curvature direction and reports the stable minimum."""
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.3)
    G.add_node("o", role="output")
    G.add_edge("x", "o", coupling=1.0)
    eq = solve_torus(compile_oscillator(G), None, None, s0=[[0.3 - np.pi]])
    assert eq.s[0, 0] == pytest.approx(0.3, abs=1e-9) and eq.min_eigenvalue[0] == pytest.approx(1.0)


def test_degenerate_stationary_point_is_an_error():
    """Pulled equally towards 0 and pi, the oscillator feels no energy at all."""
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.0)
    G.add_node("y", role="input", phase=np.pi)
    G.add_node("o", role="output")
    G.add_edge("x", "o", coupling=1.0)
    G.add_edge("y", "o", coupling=1.0)
    with pytest.raises(ConvergenceError, match="degenerate stationary point"):
        solve_torus(compile_oscillator(G), None, None)


def test_zero_mode_group_is_named():
    G = ring()
    m = compile_oscillator(G)
    theta = m.default_theta.copy()
    theta[[0, 3]] = 0.0           # cut the ring between r0|r1 and r3|r4: {r1, r2, r3} floats
    with pytest.raises(ConvergenceError, match=r"\{r1, r2, r3\}.*zero mode"):
        solve_torus(m, theta, None)
    G.add_node("z1")
    G.add_node("z2")
    G.add_edge("z1", "z2", coupling=1.0)
    with pytest.raises(NetworkError, match=r"\{z1, z2\}.*zero mode"):
        compile_oscillator(G)


# ----- substrate --------------------------------------------------------------------------

def test_emulated_oscillators_read_phases_and_nudge_from_the_free_state(net):
    m, th, u, _, _ = net
    board = EmulatedOscillators(m, measured=("o", "x1", "h2"))
    board.set_parameters(th)
    board.clamp(u)
    V = board.equilibrium()
    eq = solve_torus(m, th, u)
    assert np.allclose(V[:, 0], eq.s[:, m.free_names.index("o")])
    assert np.allclose(V[:, 1], wrap(u[:, 0]))
    board.nudge(0.1, np.full((3, 1), np.pi / 2))
    Vn = board.equilibrium()
    s_n = solve_torus(m, th, u, cost=board.cost, targets=np.full((3, 1), np.pi / 2), beta=0.1, s0=eq.s).s
    assert np.allclose(Vn[:, 0], s_n[:, m.free_names.index("o")])
    assert np.allclose(board.sample(4), Vn[:, None, :])
    with pytest.raises(ConfigError, match="constant torque"):
        board.nudge_currents(np.zeros(1))


# ----- encoding traps (the reasons behind the documented encoding) ------------------------

def test_inputs_at_symmetric_points_freeze_the_outputs():
    """Inputs at 0 / pi and no fields: E is even under phi -> -phi, every minimum sits at
    0 or pi, and there the output does not move with any coupling (dphi/dJ = 0)."""
    rng = np.random.default_rng(5)
    m = compile_oscillator(random_network(rng, fields=False, bias=False))
    th = m.default_theta
    u = np.array([[0.0, 0.0], [0.0, np.pi], [np.pi, 0.0], [np.pi, np.pi]])
    eq = solve_torus(m, th, u, restarts=8)
    assert np.all(np.minimum(np.abs(eq.s), np.abs(np.abs(eq.s) - np.pi)) < 1e-8)
    lam = rng.normal(size=(4, m.n_free))
    assert np.allclose(m.contract_mixed(lam, u, eq.s), 0.0, atol=1e-8)


def test_without_fields_outputs_are_odd_in_the_inputs_so_xor_is_impossible():
    """E(-phi, -u) = E(phi, u) without fields, so phi_o(-u) = -phi_o(u): the XOR points
    (+,+) and (-,-) of the same class have cost C(++) + C(--) = 2 whatever the couplings,
    the cost of outputs at chance."""
    cost = PeriodicCost((3,))
    for seed in range(4):
        rng = np.random.default_rng(10 + seed)
        m = compile_oscillator(random_network(rng, fields=False, bias=False))
        th = m.default_theta
        u = np.pi / 4 * np.array([[1.0, 1.0], [-1.0, -1.0]])
        low = solve_torus(m, th, u, restarts=30)
        assert low.energy[0] == pytest.approx(low.energy[1], abs=1e-9)   # mirrored ground states
        mirrored = solve_torus(m, th, u[1:], s0=-low.s[:1])
        assert np.allclose(wrap(mirrored.s[0] + low.s[0]), 0.0, atol=1e-8)
        s = np.concatenate([low.s[:1], mirrored.s])
        assert cost.value(s, [[-np.pi / 2]]).sum() == pytest.approx(2.0, abs=1e-9)


# ----- bad input ------------------------------------------------------------------------

def _base():
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.5)
    G.add_node("o", role="output")
    G.add_edge("x", "o", coupling=1.0)
    return G


@pytest.mark.parametrize("edit, message", [
    (lambda G: G.add_node("lonely"), "free oscillator 'lonely' is isolated"),
    (lambda G: G.nodes["x"].update(phase=float("nan")), "oscillator 'x' phase is NaN"),
    (lambda G: G.nodes["o"].update(phase=0.0), "output oscillator 'o' has a fixed 'phase'"),
    (lambda G: G.graph.update(output_order="x"), "output 'x' is clamped"),
    (lambda G: G.nodes["o"].update(role="ground"), "unknown role 'ground'"),
    (lambda G: G.edges["x", "o"].update(coupling="strong"), "coupling Jx_o value must be a number"),
    (lambda G: G.nodes["x"].update(a=1.0), "clamped oscillator 'x' has a field"),
])
def test_bad_graphs_are_rejected_with_the_culprit_named(edit, message):
    G = _base()
    edit(G)
    with pytest.raises(NetworkError, match=message):
        compile_oscillator(G)


def test_bad_inputs_and_non_periodic_cost_are_rejected(net):
    m, th, u, _, _ = net
    with pytest.raises(ConfigError, match="NaN"):
        solve_torus(m, th, np.array([[0.1, np.nan]]))
    with pytest.raises(ConfigError, match="expected input phases of shape"):
        solve_torus(m, th, np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="not periodic"):
        solve_torus(m, th, u, cost=SquaredCost((3,)), targets=np.zeros((3, 1)), beta=0.1)
    with pytest.raises(ConfigError, match="expected 18 parameters"):
        solve_torus(m, th[:3], u)
    with pytest.raises(ConfigError, match="target phases"):
        PeriodicCost((3,)).value(np.zeros((2, 4)), np.zeros((2, 2)))
