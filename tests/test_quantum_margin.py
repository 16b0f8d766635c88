"""The margin (hinge) objective of the quantum training adapter, against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from analog_ep.errors import ConfigError
from analog_ep.graph import load_network
from analog_ep.tasks.quantum import QuantumObjective, encode_inputs, encode_targets


def _setup(margin: float, rule: str = "exact"):
    G = load_network("quantum_iris")
    obj = QuantumObjective(G, rule=rule, beta=1e-3, margin=margin)
    theta = obj.initial_parameters(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (6, 4))
    d = encode_targets(np.arange(6) % 3, 3)
    return obj, theta, obj.encode_inputs(x), d


@pytest.mark.parametrize("rule", ["exact", "ep"])
def test_margin_gradient_matches_finite_differences_of_the_hinge(rule):
    obj, theta, u, d = _setup(0.3, rule)
    r = obj.gradient(theta, u, d, np.random.default_rng(2))
    # some outputs satisfied, some not, so the masking is exercised both ways
    zeroed = obj.margin_targets(theta, u, d, np.random.default_rng(2)) == 0
    assert 0 < zeroed.sum() < zeroed.size
    assert r.loss == pytest.approx(obj.loss(theta, u, d), abs=1e-10)
    eps = 1e-6
    fd = np.array([(obj.loss(theta + eps * e, u, d) - obj.loss(theta - eps * e, u, d)) / (2 * eps)
                   for e in np.eye(len(theta))])
    tol = 1e-6 if rule == "exact" else 1e-4  # ep: O(beta^2) bias with beta = 1e-3
    np.testing.assert_allclose(r.gradient, fd, atol=tol)


def test_margin_one_stops_nothing_short_of_saturation_and_bad_margins_are_refused():
    obj, theta, u, d = _setup(1.0)
    np.testing.assert_array_equal(obj.margin_targets(theta, u, d, np.random.default_rng(0)), d)
    with pytest.raises(ConfigError, match="margin"):
        QuantumObjective(load_network("quantum_iris"), margin=0.0)
    with pytest.raises(ConfigError, match="u_min"):
        QuantumObjective(load_network("quantum_iris"), u_min=2.0, u_max=1.0)


def test_bundled_encoding_is_read_from_the_file():
    obj = QuantumObjective(load_network("quantum_xor"))
    x = np.array([[1.0, -0.5]])
    np.testing.assert_allclose(obj.encode_inputs(x), encode_inputs(x, obj.u_min, 4.0))
    assert obj.margin == 0.3
