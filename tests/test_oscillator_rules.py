"""The shared gradient rules on oscillator networks (single-minimum networks, where a unique
answer exists): EP against finite differences and the implicit function, the T -> 0 limit
of the thermal gradient (quadrature) against low-t, and the training adapter."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from analog_ep.errors import ConfigError
from analog_ep.tasks import build_task
from analog_ep.graph import load_network
from analog_ep.models.periodic_cost import PeriodicCost
from analog_ep.learning.registry import make_rule
from analog_ep.models.oscillator import compile_oscillator
from analog_ep.networks import layered_oscillator_network
from analog_ep.tasks.oscillator import decode_outputs, encode_inputs, encode_targets, make_objective
from analog_ep.physics.torus import solve_torus
from analog_ep.substrates.oscillator import EmulatedOscillators


def network(seed=4):
    """Input x, hidden h0, h1 and output o, chain plus a skip coupling, fields everywhere."""
    rng = np.random.default_rng(seed)
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.5)
    for name in ("h0", "h1", "o"):
        G.add_node(name, role="output" if name == "o" else "hidden", field_trainable=True,
                   a=float(rng.uniform(-0.5, 0.5)), c=float(rng.uniform(-0.5, 0.5)))
    for k, (a, b) in enumerate([("x", "h0"), ("h0", "h1"), ("h1", "o"), ("x", "o"), ("h0", "o")], 1):
        G.add_edge(a, b, name=f"J{k}", coupling=float(rng.uniform(0.3, 1.0)), trainable=True)
    return compile_oscillator(G)


U = np.array([[0.5], [-0.6], [1.2]])
D = np.array([[np.pi / 2], [-np.pi / 2], [np.pi / 2]])


def run(rule, model, T=0.0, **options):
    board = EmulatedOscillators(model, temperature=T, restarts=8)
    cost = PeriodicCost(tuple(int(i) for i in model.outputs))
    return make_rule(rule, **options).gradient(model, board, cost, model.default_theta, U, D,
                                               np.random.default_rng(0))


def test_the_test_network_has_a_single_minimum():
    m = network()
    eq = solve_torus(m, None, U, restarts=40, rng=np.random.default_rng(1))
    assert np.all(eq.n_minima == 1)


def test_ep_matches_finite_differences_and_the_implicit_function():
    m = network()
    exact = run("exact", m).gradient
    # Error budget of central differences, h = 1e-3 |theta| with 0.3 < |theta| < 1:
    # truncation h^2 |d3L/dtheta3| / 6 < 2e-7; and Newton stops anywhere below a relative torque
    # of 1e-10, so the loss of each solve is off by dC < 1e-9 (7e-10 inferred from the 6.7e-6
    # error seen at step 1e-4), which costs dC / 2h < 1.7e-6. Hence atol 2e-6.
    fd = run("fd", m, step=1e-3).gradient
    assert np.allclose(exact, fd, atol=2e-6)
    errors = [np.max(np.abs(run("ep", m, beta=b).gradient - exact)) for b in (0.04, 0.02)]
    assert errors[0] < 1e-3
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.1)       # centred: O(beta^2)
    one_sided = [np.max(np.abs(run("ep", m, beta=b, symmetric=False).gradient - exact)) for b in (0.004, 0.002)]
    assert one_sided[0] / one_sided[1] == pytest.approx(2.0, rel=0.1)  # one-sided: O(beta)


def torus_grid(n, k):
    x = np.linspace(-np.pi, np.pi, k, endpoint=False)
    return np.stack(np.meshgrid(*([x] * n), indexing="ij"), axis=-1).reshape(-1, n)


def thermal_by_quadrature(model, T, k):
    """Batch-mean <C> and d<C>/dtheta = -(1/T) Cov(C, dE/dtheta) by quadrature on the torus
    (the identity itself is checked against finite differences in test_oscillator_thermal)."""
    cost = PeriodicCost(tuple(int(i) for i in model.outputs))
    S = torus_grid(model.n_free, k)
    th = model.default_theta
    Cs, gs = [], []
    for b in range(len(U)):
        F = model.energy(th, U[b:b + 1], S)
        w = np.exp(-(F - F.min()) / T)
        w /= w.sum()
        C = cost.value(S, D[b:b + 1])
        A = model.dE_dtheta(th, U[b:b + 1], S)
        mC = w @ C
        Cs.append(mC)
        gs.append(-(w @ ((C - mC)[:, None] * (A - w @ A))) / T)
    return float(np.mean(Cs)), np.mean(gs, axis=0)


def reduced_network():
    """The network with h1 and its couplings removed: two free oscillators, for a fine grid."""
    rng = np.random.default_rng(6)
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.5)
    for name in ("h0", "o"):
        G.add_node(name, role="output" if name == "o" else "hidden", field_trainable=True,
                   a=float(rng.uniform(-0.5, 0.5)), c=float(rng.uniform(-0.5, 0.5)))
    for k, (a, b) in enumerate([("x", "h0"), ("h0", "o"), ("x", "o")], 1):
        G.add_edge(a, b, name=f"J{k}", coupling=float(rng.uniform(0.3, 1.0)), trainable=True)
    return compile_oscillator(G)


def test_thermal_gradient_tends_to_ep_with_the_low_t_slope():
    """(g_T - g_0)/T, Richardson-extrapolated to T -> 0 from quadrature, equals the O(T)
    coefficient of the deterministic low-t rule; low-t order 0 is the classical gradient."""
    m = reduced_network()
    g0 = run("exact", m).gradient
    assert np.allclose(run("low-t", m, order=0, temperature=0.01).gradient, g0, atol=1e-6)
    T = 0.01
    slope = {}
    for t in (T, T / 2):
        C_t, g_t = thermal_by_quadrature(m, t, k=400)
        slope[t] = (g_t - g0) / t
    richardson = 2 * slope[T / 2] - slope[T]
    low = run("low-t", m, order=1, temperature=T)
    predicted = (low.gradient - g0) / T
    assert np.max(np.abs(richardson - predicted)) < 0.02 * np.max(np.abs(predicted))
    assert np.max(np.abs(slope[T / 2] - predicted)) > np.max(np.abs(richardson - predicted))  # O(T^2) left
    # the mean-cost expansion: (<C>_T - C(s*)) / T -> the low-t loss's slope
    C0 = run("exact", m).loss
    C_T, _ = thermal_by_quadrature(m, T / 2, k=400)
    C_TT, _ = thermal_by_quadrature(m, T, k=400)
    assert 2 * (C_T - C0) / (T / 2) - (C_TT - C0) / T == pytest.approx((low.loss - C0) / T, rel=0.02)


# ----- the training adapter ----------------------------------------------------------------

def test_adapter_encodes_phases_away_from_symmetric_points_and_decodes_nearest_target():
    x = np.array([[-1.0, 1.0], [0.5, -0.25]])
    assert np.allclose(encode_inputs(x), np.pi / 4 * x)
    assert np.allclose(encode_targets(np.array([0, 1]), 2, 1), [[-np.pi / 2], [np.pi / 2]])
    assert np.allclose(encode_targets(np.array([2]), 3), [[-np.pi / 2, -np.pi / 2, np.pi / 2]])
    assert np.array_equal(decode_outputs(np.array([[0.2, 2.5, 1.4], [-3.0, -0.1, -2.0]])), [2, 1])
    assert np.array_equal(decode_outputs(np.array([[0.1], [-0.1], [3.0]])), [1, 0, 1])
    with pytest.raises(ConfigError, match=r"\[-1, 1\]"):
        encode_inputs(np.array([[2.0, 0.0]]))


def test_bundled_examples_build_tasks_with_random_fields():
    for name, F, K, scale in (("oscillator_xor", 2, 2, np.pi / 4), ("oscillator_iris", 4, 3, np.pi / 2)):
        G = load_network(name)
        task = build_task(G, F, K, {"rule": "ep"})
        obj = task.objective
        assert np.allclose(task.encode_inputs(np.ones((1, F))), scale)      # the network's own scale
        theta = obj.initial_parameters(np.random.default_rng(0))
        fields = [i for i, n in enumerate(obj.param_names) if n[:2] in ("a_", "c_")]
        assert fields and np.all(theta[fields] != 0.0)                     # fields start random
        lo, hi = obj.bounds()
        assert np.all((lo <= theta) & (theta <= hi))
        x = np.random.default_rng(1).uniform(-1, 1, (5, F))
        r = obj.gradient(theta, task.encode_inputs(x), task.encode_targets(np.arange(5) % K),
                         np.random.default_rng(2))
        assert r.gradient.shape == theta.shape and np.all(np.isfinite(r.gradient))
        assert task.decode(obj.predict(theta, task.encode_inputs(x))).shape == (5,)


def test_objective_gradients_agree_across_rules():
    G = layered_oscillator_network(2, (3,), 1, rng=np.random.default_rng(3))
    u = encode_inputs(np.array([[1.0, -1.0], [-1.0, -1.0]]))
    d = encode_targets(np.array([1, 0]), 2, 1)
    theta = make_objective(G, init="file").initial_parameters(np.random.default_rng(0))
    exact = make_objective(G, rule="exact").gradient(theta, u, d, np.random.default_rng(0)).gradient
    ep = make_objective(G, rule="ep", beta=1e-3).gradient(theta, u, d, np.random.default_rng(0)).gradient
    assert np.allclose(ep, exact, atol=1e-5)


@pytest.mark.parametrize("options, message", [
    ({"cost": "squared"}, "not periodic"),
    ({"rule": "quantum"}, "unknown rule 'quantum'"),
    ({"substrate": "serial:/dev/ttyUSB0"}, "emulator only"),
    ({"init": "zeros"}, "init must be"),
    ({"nudged_restarts": -1}, "nudged_restarts must be a whole number"),
    ({"nudged_restarts": 2.5}, "nudged_restarts must be a whole number"),
])
def test_adapter_rejects_bad_options(options, message):
    G = layered_oscillator_network(2, (3,), 1, rng=np.random.default_rng(3))
    with pytest.raises(ConfigError, match=message):
        make_objective(G, **options)


def test_input_scale_must_keep_the_extremes_apart():
    G = layered_oscillator_network(2, (3,), 1, rng=np.random.default_rng(3), input_scale=np.pi)
    with pytest.raises(ConfigError, match="input_scale must lie in"):
        make_objective(G)


def test_graph_attributes_set_the_initial_field_range_the_ep_beta_fraction_and_nudged_restarts():
    G = layered_oscillator_network(2, (3,), 1, rng=np.random.default_rng(3))
    obj = make_objective(G, rule="ep")
    fields = [i for i, n in enumerate(obj.param_names) if n[:2] in ("a_", "c_")]
    default = np.abs(obj.initial_parameters(np.random.default_rng(0))[fields])
    assert obj.rule.beta_fraction == 0.2 and default.max() <= 0.5 and obj.substrate.nudged_restarts == 0
    G.graph.update(field_init=1.5, beta_fraction=0.05, nudged_restarts="7")
    obj = make_objective(G, rule="ep")
    wide = np.abs(obj.initial_parameters(np.random.default_rng(0))[fields])
    assert obj.rule.beta_fraction == 0.05 and obj.substrate.nudged_restarts == 7
    assert np.allclose(wide, 3 * default)           # the same draws, scaled to the wider range


def test_ep_with_nudged_restarts_is_the_gradient_of_the_continuous_surrogate_loss():
    """On a multistable network, symmetric EP whose nudged phases are the lowest minima of
    E +- beta C (warm start plus random starts) equals the finite-difference gradient of
    L_beta(W) = (Phi(W, beta) - Phi(W, -beta)) / 2 beta with Phi the lowest nudged energy;
    warm-started nudging alone differs there, because one nudged minimum leaves its basin."""
    m = compile_oscillator(load_network("oscillator_xor"))
    rng = np.random.default_rng(3)
    theta = m.default_theta.copy()
    k = len(m.trainable)
    theta[:k], theta[k:] = rng.uniform(-1.5, 1.5, k), rng.uniform(-0.3, 0.3, len(theta) - k)
    u = encode_inputs(np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]]))
    d = encode_targets(np.array([0, 1, 1, 0]), 2, 1)
    cost, beta, extra = PeriodicCost(tuple(int(i) for i in m.outputs)), 0.3, 7
    assert np.max(solve_torus(m, theta, u, restarts=8).n_minima) > 1

    def surrogate(th):
        free = solve_torus(m, th, u, restarts=8).s
        phi = [solve_torus(m, th, u, cost=cost, targets=d, beta=b, s0=free, extra_starts=extra).energy
               for b in (beta, -beta)]
        return float(np.mean(phi[0] - phi[1]) / (2 * beta))

    h = 1e-5
    fd = np.array([(surrogate(theta + h * e) - surrogate(theta - h * e)) / (2 * h) for e in np.eye(len(theta))])

    def ep(nudged_restarts):
        board = EmulatedOscillators(m, restarts=8, nudged_restarts=nudged_restarts)
        return make_rule("ep", beta=beta).gradient(m, board, cost, theta, u, d, np.random.default_rng(0)).gradient
    assert np.max(np.abs(ep(extra) - fd)) < 1e-7 * np.max(np.abs(fd))
    assert np.max(np.abs(ep(0) - fd)) > 0.1 * np.max(np.abs(fd))


@pytest.mark.slow
def test_training_xor_with_ep_reaches_four_of_four():
    from analog_ep.learning.config import TrainConfig
    from analog_ep.training import train
    r = train(TrainConfig(dataset="xor", network="oscillator_xor", rule="ep", seed=0, lr=0.01,
                          epochs=200, progress=False))
    assert r.final["train_accuracy"] == 1.0


def test_gradient_report_for_the_cli():
    from analog_ep.commands.reports import gradient_report
    G = load_network("oscillator_xor")
    exact = gradient_report(G, {"x0": 0.7, "x1": -0.7}, {"o0": np.pi / 2})
    ep = gradient_report(G, {"x0": 0.7, "x1": -0.7}, {"o0": np.pi / 2}, rule="ep", beta=1e-3)
    assert exact["loss"] == pytest.approx(ep["loss"])
    assert np.allclose(list(exact["gradient"].values()), list(ep["gradient"].values()), atol=1e-5)
    assert exact["n_minima"] == ep["n_minima"] == 1
    # at +-0.785 the free state has two minima: ep reports the free solve's, not its nudged one's
    two = [gradient_report(G, {"x0": 0.785, "x1": -0.785}, {"o0": np.pi / 2}, rule=r)["n_minima"] for r in ("exact", "ep")]
    assert two == [2, 2]
    with pytest.raises(ConfigError, match="--target o9: not an output oscillator"):
        gradient_report(G, {}, {"o9": 0.0})
    with pytest.raises(ConfigError, match="at least one --target"):
        gradient_report(G, {}, {})
