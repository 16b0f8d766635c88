"""The quantum family's training adapter: encoding, Objective, gradient report, bundled files."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from analog_ep.errors import ConfigError, ConvergenceError, NetworkError
from analog_ep.graph import load_network
from analog_ep.learning.objective import GradientResult
from analog_ep.models.quantum import compile_quantum
from analog_ep.tasks.quantum import (HarmonicObjective, QuantumObjective, decode_outputs,
                                      encode_inputs, encode_targets, make_objective)
from analog_ep.commands.reports import quantum_gradient_report


def small_graph() -> nx.Graph:
    G = nx.Graph(family="quantum")
    G.add_node("x1", role="input", b=0.2, h=1.1)
    G.add_node("x2", role="input", b=-0.1, h=1.2)
    G.add_node("a", role="hidden", b=0.3, h=1.0)
    G.add_node("y", role="output", b=-0.2, h=1.3, trainable=False)
    for e, J in ((("x1", "a"), 0.4), (("x2", "a"), -0.3), (("a", "y"), 0.5), (("x1", "y"), 0.2)):
        G.add_edge(*e, J=J)
    G.edges["x1", "y"]["trainable"] = False
    return G


def test_encoding_never_gives_zero_fields_and_targets_are_pm1():
    x = np.array([[-1.0, 0.0], [0.0, 0.0], [0.3, 1.0]])
    u = encode_inputs(x)
    assert np.all(np.abs(u) >= 0.1) and np.all(np.diff(encode_inputs(np.linspace(-1, 1, 9)[:, None]).ravel()) > 0)
    nz = np.array([[-1.0, 0.5], [0.3, 1.0]])
    assert np.allclose(encode_inputs(-nz), -encode_inputs(nz))          # odd away from 0
    d = encode_targets(np.array([0, 2, 1]), 3)
    assert np.array_equal(d, [[1, -1, -1], [-1, -1, 1], [-1, 1, -1]])
    assert np.array_equal(decode_outputs(d), [0, 2, 1])
    assert np.array_equal(encode_targets(np.array([0, 1]), 2, 1), [[-1], [1]])
    assert np.array_equal(decode_outputs(np.array([[-0.3], [0.2]])), [0, 1])
    with pytest.raises(ConfigError, match="never zero"):
        encode_inputs(x, u_min=0.0)
    with pytest.raises(ConfigError, match=r"\[-1, 1\]"):
        encode_inputs(np.array([[1.5]]))
    with pytest.raises(ConfigError, match="output"):
        encode_targets(np.array([0, 1, 2]), 3, n_outputs=2)


def test_parameter_names_and_trainable_flags():
    model = compile_quantum(small_graph())
    assert model.param_names == ("J[x1,a]", "J[x2,a]", "J[a,y]", "b[x1]", "b[x2]", "b[a]",
                                 "h[x1]", "h[x2]", "h[a]")


def test_objective_gradient_matches_finite_differences_of_its_loss():
    obj = QuantumObjective(small_graph(), rule="ep", beta=1e-4)
    rng = np.random.default_rng(0)
    theta = obj.initial_parameters(rng)
    kind = obj.model.param_kind
    assert np.all(np.abs(theta[kind == 1]) >= 0.1) and np.all(theta[kind == 2] > np.abs(theta[kind == 0]).max())
    u = encode_inputs(np.array([[1.0, -1.0], [-0.5, 0.5], [0.2, 0.9]]))
    d = encode_targets(np.array([1, 0, 1]), 2, 1)
    r = obj.gradient(theta, u, d, rng)
    assert isinstance(r, GradientResult) and r.stderr is None and r.info["skipped"] == 0
    assert r.loss == pytest.approx(obj.loss(theta, u, d), abs=1e-12)
    fd = np.empty_like(theta)
    for k in range(len(theta)):
        e = np.zeros_like(theta)
        e[k] = 1e-5
        fd[k] = (obj.loss(theta + e, u, d) - obj.loss(theta - e, u, d)) / 2e-5
    assert np.max(np.abs(r.gradient - fd)) < 1e-7
    assert obj.predict(theta, u).shape == (3, 1)
    lo, hi = obj.bounds()
    assert lo.shape == hi.shape == theta.shape and np.all(lo < hi)


def test_objective_with_shots_gives_a_standard_error_and_gibbs_states_work():
    rng = np.random.default_rng(1)
    u = encode_inputs(np.array([[1.0, -1.0], [-1.0, 1.0]]))
    d = np.array([[1.0], [-1.0]])
    exact = QuantumObjective(small_graph(), rule="exact", init="file")
    theta = exact.initial_parameters(rng)
    g = exact.gradient(theta, u, d, rng).gradient
    noisy = QuantumObjective(small_graph(), rule="ep", beta=0.05, shots=50_000)
    r = noisy.gradient(theta, u, d, rng)
    assert r.stderr is not None and np.all(r.stderr > 0)
    assert np.max(np.abs((r.gradient - g) / r.stderr)) < 4.5
    hot = QuantumObjective(small_graph(), rule="exact", temperature=0.02)
    assert np.allclose(hot.gradient(theta, u, d, rng).gradient, g, atol=1e-6)
    assert np.allclose(hot.predict(theta, u), exact.predict(theta, u), atol=1e-6)


def test_near_degenerate_samples_are_skipped_counted_then_stop_training():
    G = nx.Graph(family="quantum")
    G.add_node("x", role="input", b=0.0, h=0.0)
    G.add_node("y", role="output", b=0.5, h=0.3)
    G.add_edge("x", "y", J=0.0, trainable=False)
    obj = QuantumObjective(G, init="file", max_skip_fraction=0.25)
    theta = obj.initial_parameters(np.random.default_rng())
    rng = np.random.default_rng(0)
    d = np.ones((2, 1))
    good = np.array([[1.0], [0.8]])
    bad = np.array([[1.0], [0.0]])             # u = 0 with b = h = 0: x is degenerate
    r = obj.gradient(theta, bad, d, rng)
    assert r.info["skipped"] == 1 and np.isfinite(r.loss)
    obj.gradient(theta, good, d, rng)
    obj.gradient(theta, good, d, rng)
    with pytest.raises(ConvergenceError, match="too many near-degenerate samples skipped: 3 of 10"):
        obj.gradient(theta, np.zeros((4, 1)) + np.array([[0.0], [0.0], [1.0], [1.0]]),
                     np.ones((4, 1)), rng)


def test_gradient_report_for_the_cli():
    G = small_graph()
    rep = quantum_gradient_report(G, {"x1": 0.7, "x2": -0.4}, {"y": 1.0}, rule="exact")
    assert set(rep) >= {"loss", "gradient", "gap"} and "stderr" not in rep
    assert list(rep["gradient"]) == list(compile_quantum(G).param_names)
    ep = quantum_gradient_report(G, {"x1": 0.7, "x2": -0.4}, {"y": 1.0}, rule="ep", beta=1e-4)
    assert all(abs(ep["gradient"][k] - rep["gradient"][k]) < 1e-7 for k in rep["gradient"])
    shots = quantum_gradient_report(G, {"x1": 0.7, "x2": -0.4}, {"y": 1.0}, rule="ep", shots=1000,
                                    rng=np.random.default_rng(0))
    assert set(shots["stderr"]) == set(rep["gradient"])
    with pytest.raises(ConfigError, match="unknown input"):
        quantum_gradient_report(G, {"z": 1.0}, {"y": 1.0})
    with pytest.raises(ConfigError, match="at least one target"):
        quantum_gradient_report(G, {"x1": 1.0}, {})
    # an output without a target is left out of the cost
    G2 = small_graph()
    G2.add_node("z", role="output", b=0.1, h=1.0)
    G2.add_edge("a", "z", J=0.3)
    part = quantum_gradient_report(G2, {"x1": 0.7, "x2": -0.4}, {"y": 1.0}, rule="exact")
    obj = QuantumObjective(G2, rule="exact", init="file")
    u = np.array([[0.7, -0.4]])
    p = obj._probabilities(obj.model.default_theta, u)[0]
    assert part["loss"] == pytest.approx(1.0 - p @ obj.model.xs[:, 3], abs=1e-12)
    with pytest.raises(ConfigError, match="outside"):
        quantum_gradient_report(G, {"x1": 1.0}, {"y": 2.0})
    with pytest.raises(ConfigError, match="shots"):
        quantum_gradient_report(G, {"x1": 1.0}, {"y": 1.0}, shots=0)


@pytest.mark.parametrize("name", ["quantum_xor", "quantum_iris", "quantum_harmonic"])
def test_bundled_quantum_networks_load_and_give_gradients(name):
    G = load_network(name)
    obj = make_objective(G, rule="exact", init="file")
    inputs = {n: 0.5 for n in obj.input_names}
    targets = {n: (1.0 if i == 0 else -1.0) for i, n in enumerate(obj.output_names)}
    rep = quantum_gradient_report(G, inputs, targets, rule="exact")
    assert np.isfinite(rep["loss"]) and len(rep["gradient"]) == len(obj.param_names)
    if name == "quantum_harmonic":
        assert isinstance(obj, HarmonicObjective)
    else:
        assert obj.model.n_qubits <= 12


def test_family_errors():
    G = small_graph()
    G.graph["model"] = "fermion"
    with pytest.raises(NetworkError, match="unknown quantum model"):
        make_objective(G)
    with pytest.raises(ConfigError, match="rule"):
        QuantumObjective(small_graph(), rule="magic")
    with pytest.raises(ConfigError, match="shots apply"):
        QuantumObjective(small_graph(), rule="exact", shots=100)
