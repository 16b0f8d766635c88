"""Thermal gradient rules against exact references (docs/PHYSICS.md, sections 3 and 4).

Exact enumeration of small spin models, Gaussian closed forms of linear resistive
networks, quadrature of one- and two-node diode networks, finite differences of <C>.
Statistical checks use fixed seeds and a Bonferroni bound over all parameters at once.
"""

import itertools

import networkx as nx
import numpy as np
import pytest
from scipy import stats

from analog_ep.errors import ConfigError
from analog_ep.schema import normalise_resistive
from analog_ep.models.cost import SquaredCost
from analog_ep.learning.registry import RULES, make_rule
from analog_ep.learning.rules import ExactRule
from analog_ep.physics.noise import RESISTIVE_DEFAULT_TEMPERATURE as DEFAULT_TEMPERATURE
from analog_ep.learning.thermal_rules import (LowTemperatureRule,
                                              ThermalCVRule, ThermalExactRule,
                                              ThermalNudgedRule, ThermalRule, exact_gaussian)
from analog_ep.models.resistive import compile_network
from analog_ep.physics.equilibrium import solve_equilibrium
from analog_ep.physics.sampling import sample_gaussian
from analog_ep.substrates.base import Capabilities
from analog_ep.substrates.emulated import EmulatedBoard


def bonferroni_z(P: int, alpha: float = 1e-3) -> float:
    """|z| bound that all P components pass with probability 1 - alpha under the null."""
    return float(stats.norm.isf(alpha / (2 * P)))


# ----- spin models by exact enumeration ------------------------------------------------------
class Ising:
    """``E = -sum_(i<j) W_ij s_i s_j - sum_i b_i s_i - u s_0`` on n spins; theta = (W, b)."""

    def __init__(self, n: int):
        self.n = n
        self.pairs = np.array(list(itertools.combinations(range(n), 2)))
        self.free_names = tuple(f"s{i}" for i in range(n))
        self.param_names = tuple(f"W{i}{j}" for i, j in self.pairs) + tuple(f"b{i}" for i in range(n))
        self.states = np.array(list(itertools.product([-1.0, 1.0], repeat=n)))

    def dE_dtheta(self, theta, u, s):
        s = np.atleast_2d(s)
        return np.concatenate([-s[:, self.pairs[:, 0]] * s[:, self.pairs[:, 1]], -s], axis=1)

    def energy(self, theta, u, s):
        s = np.atleast_2d(s)
        return self.dE_dtheta(theta, u, s) @ theta - np.atleast_2d(u)[:, 0] * s[:, 0]


class SpinBoard:
    """Exact Boltzmann sampling of an Ising model by enumeration, behind the substrate API."""

    def __init__(self, model, cost, T, rng):
        self.model, self.cost, self.rng = model, cost, rng
        self.capabilities = Capabilities(measured=model.free_names, temperature=T)
        self.beta, self.d = 0.0, None

    def set_parameters(self, theta):
        self.theta = np.asarray(theta, float)
        return self.theta

    def clamp(self, u):
        self.u = np.atleast_2d(u)

    def nudge(self, beta, targets=None):
        self.beta, self.d = beta, targets

    def probabilities(self, u, d, beta):
        S = self.model.states
        F = self.model.energy(self.theta, np.repeat(u, len(S), 0), S)
        if beta:
            F = F + beta * self.cost.value(S, np.repeat(d, len(S), 0))
        w = np.exp(-(F - F.min()) / self.capabilities.temperature)
        return w / w.sum()

    def sample(self, n):
        out = []
        for b in range(len(self.u)):
            p = self.probabilities(self.u[b:b + 1], None if self.d is None else self.d[b:b + 1], self.beta)
            out.append(self.model.states[self.rng.choice(len(p), size=n, p=p)])
        return np.array(out)


def spin_setup(T=0.8, seed=0):
    model = Ising(5)
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 0.5, len(model.param_names))
    cost = SquaredCost((4,))
    board = SpinBoard(model, cost, T, rng)
    board.set_parameters(theta)
    return model, cost, board, theta, np.array([[0.7]]), np.array([[0.5]])


def exact_moments(model, board, cost, theta, u, d, beta):
    board.set_parameters(theta)
    p = board.probabilities(u, d, beta)
    S = model.states
    C = cost.value(S, np.repeat(d, len(S), 0))
    A = model.dE_dtheta(theta, u, S)
    return p @ C, p @ A, p @ ((C - p @ C)[:, None] * (A - p @ A))


def test_spin_covariance_equals_nudged_equals_finite_difference():
    model, cost, board, theta, u, d = spin_setup()
    T = board.capabilities.temperature
    _, _, cov = exact_moments(model, board, cost, theta, u, d, 0.0)
    covariance = -cov / T
    h = 1e-5
    fd = np.array([(exact_moments(model, board, cost, theta + h * e, u, d, 0.0)[0]
                    - exact_moments(model, board, cost, theta - h * e, u, d, 0.0)[0]) / (2 * h)
                   for e in np.eye(len(theta))])
    nudged = (exact_moments(model, board, cost, theta, u, d, h)[1]
              - exact_moments(model, board, cost, theta, u, d, -h)[1]) / (2 * h)
    np.testing.assert_allclose(fd, covariance, atol=1e-8)
    np.testing.assert_allclose(nudged, covariance, atol=1e-8)
    assert np.abs(covariance).max() > 1e-2


def test_spin_finite_beta_identity():
    """<A>_beta - <A>_0 = int_0^beta d<C>_b/dtheta db, for a beta far from small."""
    model, cost, board, theta, u, d = spin_setup()
    T = board.capabilities.temperature
    beta = 1.5
    grid = np.linspace(0.0, beta, 401)
    dC = np.array([-exact_moments(model, board, cost, theta, u, d, b)[2] / T for b in grid])
    integral = np.trapezoid(dC, grid, axis=0)
    lhs = exact_moments(model, board, cost, theta, u, d, beta)[1] - exact_moments(model, board, cost, theta, u, d, 0.0)[1]
    np.testing.assert_allclose(integral, lhs, atol=2e-6)
    assert np.abs(lhs).max() > 0.05


def test_thermal_rule_on_spins_is_unbiased_and_shrinks_like_one_over_sqrt_n():
    model, cost, board, theta, u, d = spin_setup(seed=1)
    T = board.capabilities.temperature
    exact = -exact_moments(model, board, cost, theta, u, d, 0.0)[2] / T
    rng = np.random.default_rng(5)
    r = ThermalRule(samples=40000).gradient(model, board, cost, theta, u, d, rng)
    z = (r.gradient - exact) / r.stderr
    assert np.max(np.abs(z)) < bonferroni_z(len(theta))
    # the error's RMS over repeats falls by 4 when N grows 16-fold
    rms = []
    for N in (100, 1600):
        rule = ThermalRule(samples=N)
        errs = [rule.gradient(model, board, cost, theta, u, d, rng).gradient - exact for _ in range(40)]
        rms.append(np.sqrt(np.mean(np.square(errs))))
    assert 3.0 < rms[0] / rms[1] < 5.3


# ----- linear resistive networks: Gaussian closed forms --------------------------------------
def linear_network(diodes: bool = False, seed: int = 0):
    """in1, in2 -> h1..h3 -> o1, o2, every free node leaking to ground; with ``diodes`` each
    hidden node has two antiparallel diodes to a 0.2 V bias."""
    rng = np.random.default_rng(seed)
    G = nx.MultiGraph(family="resistive")
    G.add_node("in1", role="input", voltage=1.0)
    G.add_node("in2", role="input", voltage=-0.5)
    G.add_node("0", role="ground")
    hidden, outputs = ("h1", "h2", "h3"), ("o1", "o2")
    for h in hidden:
        G.add_node(h, role="hidden")
    for o in outputs:
        G.add_node(o, role="output")
    pairs = [(a, b) for a in ("in1", "in2") for b in hidden] + [(a, b) for a in hidden for b in outputs]
    for k, (a, b) in enumerate(pairs, 1):
        G.add_edge(a, b, key=f"R{k}", element="resistor", conductance=rng.uniform(5e-4, 2e-3), trainable=True)
    for k, a in enumerate(hidden + outputs, len(pairs) + 1):
        G.add_edge(a, "0", key=f"R{k}", element="resistor", conductance=1e-3)
    if diodes:
        G.add_node("vb", role="bias", voltage=0.2)
        for i, h in enumerate(hidden):
            G.add_edge(h, "vb", key=f"D{2 * i + 1}", element="diode", anode=h, cathode="vb", i_s=1e-9)
            G.add_edge(h, "vb", key=f"D{2 * i + 2}", element="diode", anode="vb", cathode=h, i_s=1e-9)
    return compile_network(normalise_resistive(G))


U = np.array([[1.0, -0.5], [0.3, 0.8], [-0.6, 0.2]])
D = np.array([[0.2, 0.1], [0.0, 0.3], [-0.1, -0.2]])


def linear_setup(T=1e-6, diodes=False, seed=0):
    m = linear_network(diodes, seed)
    cost = SquaredCost(tuple(int(i) for i in m.outputs))
    board = EmulatedBoard(m, temperature=T, rng=np.random.default_rng(seed))
    return m, cost, board, m.default_theta


def dense_mean_cost(m, theta, u, d, T):
    """<C> of a linear network from a dense inverse Laplacian (independent of the rules):
    1/2 sum_o [(mu_o - d_o)^2 + Sigma_oo]."""
    Lff, Lfc = (x.toarray() for x in m.laplacian_blocks(theta))
    Gi = np.linalg.inv(Lff)
    mu = -(Gi @ (Lfc @ m.clamped_voltages(u).T)).T
    o = m.outputs
    return 0.5 * np.sum((mu[:, o] - d) ** 2 + T * np.diag(Gi)[o], axis=1)


def test_gaussian_mean_cost_and_exact_gradient_match_finite_differences():
    m, cost, board, th = linear_setup()
    T = 1e-6
    C, g = exact_gaussian(m, cost, th, U, D, T)
    np.testing.assert_allclose(C, dense_mean_cost(m, th, U, D, T), rtol=1e-12)
    h = 1e-9
    fd = np.array([(dense_mean_cost(m, th + h * e, U, D, T) - dense_mean_cost(m, th - h * e, U, D, T)) / (2 * h)
                   for e in np.eye(len(th))]).T
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9 * np.abs(fd).max())
    # the closed form of the spec: dC(s*)/dG_e - (T/2) |P H^-1 b_e|^2
    s = solve_equilibrium(m, th, U).s
    Gi = np.linalg.inv(m.laplacian_blocks(th)[0].toarray())
    PGb = (Gi @ m.B_train.toarray().T)[m.outputs]                 # (n_out, P)
    classical = ExactRule().gradient(m, EmulatedBoard(m), cost, th, U[:1], D[:1], None).gradient
    np.testing.assert_allclose(g[0], classical - 0.5 * T * np.sum(PGb**2, axis=0), rtol=1e-9)
    assert np.all(np.sum(PGb**2, axis=0) > 0)                     # differs from classical at T > 0
    # <C> = C(s*) + (T/2) tr(H^-1 d2C) against the mean cost of exact Gaussian samples
    S = sample_gaussian(m, th, U, T, 20000, np.random.default_rng(0))
    Cs = cost.value(S.reshape(-1, m.n_free), np.repeat(D, 20000, 0)).reshape(len(U), -1)
    z = (Cs.mean(1) - C) / (Cs.std(1) / np.sqrt(20000))
    assert np.max(np.abs(z)) < bonferroni_z(len(U))
    assert np.all(C - cost.value(s, D) > 5 * Cs.std(1) / np.sqrt(20000))    # T-term resolved


@pytest.mark.parametrize("rule", [ThermalRule(samples=20000), ThermalCVRule(samples=4000),
                                  ThermalNudgedRule(beta=1e-5, samples=20000)],
                         ids=["thermal", "thermal-cv", "thermal-nudged"])
def test_estimators_are_unbiased_on_a_linear_network(rule):
    m, cost, board, th = linear_setup()
    exact = ThermalExactRule().gradient(m, board, cost, th, U, D, None)
    r = rule.gradient(m, board, cost, th, U, D, np.random.default_rng(11))
    z = (r.gradient - exact.gradient) / r.stderr
    assert np.max(np.abs(z)) < bonferroni_z(len(th))
    assert abs(r.loss - exact.loss) < 0.02 * exact.loss
    assert np.all(r.stderr < 0.5 * np.abs(exact.gradient).max())   # informative, not vacuous


def test_low_t_is_exact_on_linear_networks_at_both_orders():
    m, cost, board, th = linear_setup()
    T = 1e-6
    exact = ThermalExactRule(temperature=T).gradient(m, board, cost, th, U, D, None)
    order1 = LowTemperatureRule(order=1, temperature=T).gradient(m, board, cost, th, U, D, None)
    order0 = LowTemperatureRule(order=0).gradient(m, board, cost, th, U, D, None)
    classical = ExactRule().gradient(m, board, cost, th, U, D, None)
    scale = np.abs(exact.gradient).max()
    np.testing.assert_allclose(order1.gradient, exact.gradient, atol=1e-6 * scale)
    np.testing.assert_allclose(order0.gradient, classical.gradient, atol=1e-6 * scale)
    assert order1.loss == pytest.approx(exact.loss, rel=1e-12)
    # the thermal correction is exactly linear in T on a Gaussian network
    g2 = ThermalExactRule(temperature=2 * T).gradient(m, board, cost, th, U, D, None).gradient
    np.testing.assert_allclose(g2 - exact.gradient, exact.gradient - classical.gradient, atol=1e-9 * scale)
    assert np.abs(exact.gradient - classical.gradient).max() > 1e-3 * scale


def test_a_step_along_the_thermal_rule_lowers_the_mean_cost():
    m, cost, board, th = linear_setup()
    T = 1e-6
    g = ThermalRule(samples=4000).gradient(m, board, cost, th, U, D, np.random.default_rng(3)).gradient
    step = 1e-4 * np.abs(th).max() / np.abs(g).max()
    before = dense_mean_cost(m, th, U, D, T).mean()
    assert dense_mean_cost(m, th - step * g, U, D, T).mean() < before
    assert dense_mean_cost(m, th + step * g, U, D, T).mean() > before


# ----- diode networks: T -> 0 against quadrature -----------------------------------------
def small_diode_network(two_nodes: bool):
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=0.6)
    G.add_node("0", role="ground")
    G.add_node("vb", role="bias", voltage=-0.3)
    G.add_node("o", role="output")
    G.add_edge("in", "o", key="R1", element="resistor", conductance=1e-3, trainable=True)
    G.add_edge("o", "0", key="R2", element="resistor", conductance=2e-3, trainable=True)
    G.add_edge("o", "vb", key="D1", element="diode", anode="o", cathode="vb", i_s=1e-12)
    if two_nodes:
        G.add_node("h", role="hidden")
        G.add_edge("in", "h", key="R3", element="resistor", conductance=1.5e-3, trainable=True)
        G.add_edge("h", "o", key="R4", element="resistor", conductance=1e-3, trainable=True)
        G.add_edge("h", "0", key="R5", element="resistor", conductance=5e-4)
        G.add_edge("vb", "h", key="D2", element="diode", anode="vb", cathode="h", i_s=1e-12)
    return compile_network(normalise_resistive(G))


def quadrature_gradient(m, cost, th, u, d, T, half_width=11.0, points=(4001, 301)):
    """-(1/T) Cov(C, dE/dtheta) by trapezoid quadrature on a grid along the Hessian's
    eigenvectors around the minimum (1 or 2 free nodes)."""
    s0 = solve_equilibrium(m, th, u).s[0]
    w, V = np.linalg.eigh(m.hessian(th, u, s0[None])[0])
    n = m.n_free
    axis = np.linspace(-half_width, half_width, points[n - 1])
    grid = np.stack(np.meshgrid(*([axis] * n), indexing="ij"), -1).reshape(-1, n)
    s = s0 + (grid * np.sqrt(T / w)) @ V.T
    uu = np.repeat(u, len(s), 0)
    E = m.energy(th, uu, s)
    p = np.exp(-(E - E.min()) / T)
    p /= p.sum()
    C = cost.value(s, np.repeat(d, len(s), 0))
    A = m.dE_dtheta(th, uu, s)
    return -(p @ ((C - p @ C)[:, None] * (A - p @ A))) / T


@pytest.mark.parametrize("two_nodes", [False, True], ids=["one-node", "two-node"])
def test_thermal_gradient_tends_to_classical_with_the_low_t_order_1_slope(two_nodes):
    m = small_diode_network(two_nodes)
    cost = SquaredCost(tuple(int(i) for i in m.outputs))
    th, u, d = m.default_theta, np.array([[0.6]]), np.array([[0.1]])
    board = EmulatedBoard(m)
    g0 = ExactRule().gradient(m, board, cost, th, u, d, None).gradient
    T0 = 4e-8
    slope = [(quadrature_gradient(m, cost, th, u, d, T) - g0) / T for T in (T0, T0 / 2, T0 / 4)]
    rich1 = [2 * slope[1] - slope[0], 2 * slope[2] - slope[1]]
    rich2 = (4 * rich1[1] - rich1[0]) / 3
    lowt = (LowTemperatureRule(order=1, temperature=T0).gradient(m, board, cost, th, u, d, None).gradient
            - LowTemperatureRule(order=0).gradient(m, board, cost, th, u, d, None).gradient) / T0
    scale = np.abs(lowt).max()
    np.testing.assert_allclose(rich2, lowt, atol=2e-3 * scale)
    # the check has teeth: the raw finite-T slope still differs from the limit
    assert np.abs(slope[0] - lowt).max() > 10 * np.abs(rich2 - lowt).max()
    # and the diode's third derivative matters: without it the slope is wrong
    no_third = (LowTemperatureRule(order=1, temperature=T0).gradient(WithoutThirdDerivatives(m), board, cost,
                                                                      th, u, d, None).gradient
                - LowTemperatureRule(order=0).gradient(m, board, cost, th, u, d, None).gradient) / T0
    assert np.abs(no_third - lowt).max() > 0.05 * scale


class WithoutThirdDerivatives:
    """The model with its third derivatives set to zero (the Gaussian approximation)."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def third_trace(self, theta, u, s, G):
        return np.zeros(np.shape(s))


def test_third_derivatives_match_finite_differences_of_the_hessian():
    m = linear_network(diodes=True)
    th = m.default_theta
    rng = np.random.default_rng(0)
    s = rng.normal(0, 0.3, (len(U), m.n_free))
    v = rng.normal(size=s.shape)
    Gm = rng.normal(size=(len(U), m.n_free, m.n_free))
    Gm = Gm + np.swapaxes(Gm, 1, 2)
    h = 1e-6
    fd = (m.hessian(th, U, s + h * v) - m.hessian(th, U, s - h * v)) / (2 * h)
    np.testing.assert_allclose(m.third_contract(th, U, s, v), fd, rtol=1e-6, atol=1e-9 * np.abs(fd).max())
    tr = np.stack([np.einsum("bjk,bjk->b", (m.hessian(th, U, s + h * e) - m.hessian(th, U, s - h * e)) / (2 * h), Gm)
                   for e in np.eye(m.n_free)], axis=1)
    np.testing.assert_allclose(m.third_trace(th, U, s, Gm), tr, rtol=1e-6, atol=1e-9 * np.abs(tr).max())


# ----- diode networks: estimators agree; variance reduction ------------------------------
def test_estimators_agree_on_a_diode_network_and_control_variates_cut_the_variance():
    T = 3e-7
    m, cost, board, th = linear_setup(T=T, diodes=True)
    board.sampler = "mala"      # the seeds below were drawn for MALA's chains (Gibbs: test_gibbs.py)
    cv = ThermalCVRule(samples=8000).gradient(m, board, cost, th, U, D, np.random.default_rng(1))
    plain = ThermalRule(samples=8000).gradient(m, board, cost, th, U, D, np.random.default_rng(2))
    z = (plain.gradient - cv.gradient) / np.hypot(plain.stderr, cv.stderr)
    assert np.max(np.abs(z)) < bonferroni_z(len(th))
    assert np.median(plain.stderr / cv.stderr) > 4.0           # > 16x fewer samples
    lowt = LowTemperatureRule(order=1, temperature=T).gradient(m, board, cost, th, U, D, None)
    order0 = LowTemperatureRule(order=0).gradient(m, board, cost, th, U, D, None)
    # at this T the order-1 rule is much closer to the sampled gradient than order 0
    assert np.linalg.norm(lowt.gradient - cv.gradient) < 0.3 * np.linalg.norm(order0.gradient - cv.gradient)


# ----- interface and bad input -------------------------------------------------------------
def test_rules_are_registered_and_built_by_name():
    for name in ("thermal", "thermal-cv", "thermal-nudged", "low-t", "thermal-exact"):
        assert name in RULES
    rule = make_rule("thermal", samples=64, temperature=1e-7, beta=None)
    assert rule.samples == 64 and rule.temperature == 1e-7
    assert make_rule("low-t", order=0).order == 0
    assert 0 < DEFAULT_TEMPERATURE < 1e-5


def test_bad_input_is_refused_with_clear_errors():
    m, cost, board, th = linear_setup(T=0.0)
    with pytest.raises(ConfigError, match="temperature T > 0"):
        ThermalRule().gradient(m, board, cost, th, U, D, None)
    with pytest.raises(ConfigError, match="temperature T > 0"):
        ThermalRule(temperature=-1.0).gradient(m, board, cost, th, U, D, None)
    with pytest.raises(ConfigError, match="at least 2 samples"):
        ThermalRule(samples=1)
    with pytest.raises(ConfigError, match="linear networks"):
        dm, dcost, dboard, dth = linear_setup(T=1e-7, diodes=True)
        ThermalExactRule().gradient(dm, dboard, dcost, dth, U, D, None)
    with pytest.raises(ConfigError, match="order"):
        LowTemperatureRule(order=2)
    with pytest.raises(ConfigError, match="beta"):
        ThermalNudgedRule(beta=0.0)


class PerSampleOnly:
    """The model without its batch-mean kernels: the rules fall back to per-sample terms."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        if name in ("_mean_edge_products", "mean_contract_mixed", "mean_dE_dtheta"):
            raise AttributeError(name)
        return getattr(self.model, name)


@pytest.mark.parametrize("rule", [ThermalRule(samples=64), ThermalCVRule(samples=64),
                                  ThermalNudgedRule(samples=64)], ids=["thermal", "thermal-cv", "thermal-nudged"])
def test_moment_and_per_sample_paths_give_the_same_estimate(rule):
    m, cost, _, th = linear_setup(T=3e-7, diodes=True)
    results = []
    for model in (m, PerSampleOnly(m)):
        board = EmulatedBoard(m, temperature=3e-7, rng=np.random.default_rng(9))
        results.append(rule.gradient(model, board, cost, th, U, D, None))
    fast, slow = results
    np.testing.assert_allclose(fast.gradient, slow.gradient, rtol=1e-9, atol=1e-12 * np.abs(slow.gradient).max())
    assert fast.loss == pytest.approx(slow.loss, rel=1e-12)
    ratio = fast.stderr / slow.stderr                      # two estimates of the same error
    assert 0.3 < np.median(ratio) < 3.0


def test_gradient_cli_thermal_reports_stderr_and_is_reproducible(capsys):
    import json

    from analog_ep.cli import main
    argv = ["gradient", "divider", "--rule", "thermal", "--target", "out=0.3", "--samples", "2000",
            "--format", "json"]
    outs = []
    for seed in ("1", "1", "2"):
        assert main(argv + ["--seed", seed]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] != outs[2]
    rep = json.loads(outs[0])
    assert set(rep["stderr"]) == set(rep["gradient"]) == {"R1", "R2"}
    # divider, G1 = G2 = 1 mS: <C> = 1/2 (0.5 - 0.3)^2 + T / (2 (G1 + G2)); dC/dG1 = 0.2 * 250
    T = DEFAULT_TEMPERATURE
    assert abs(rep["loss"] / (0.02 + T / 4e-3) - 1) < 0.02
    exact = {"R1": 50.0 - 0.5 * T / (2e-3) ** 2, "R2": -50.0 - 0.5 * T / (2e-3) ** 2}
    for name, g in rep["gradient"].items():
        assert abs(g - exact[name]) < bonferroni_z(2) * rep["stderr"][name]


def test_default_temperature_gives_outputs_one_to_three_percent_of_the_dac_range():
    """At DEFAULT_TEMPERATURE the default Iris network's outputs fluctuate by 10-30 mV
    (1-3% of the 1 V DAC half-range), measured from thermal readings of the emulator."""
    from analog_ep.datasets import load_dataset
    from analog_ep.networks import default_network
    ds = load_dataset("iris")
    m = compile_network(default_network("iris", ds.n_features, ds.n_classes, np.random.default_rng(0)))
    x = ds.x_train[:8]
    board = EmulatedBoard(m, temperature=DEFAULT_TEMPERATURE, rng=np.random.default_rng(0))
    board.clamp(np.repeat(x, 2, axis=1) * np.tile([1.0, -1.0], x.shape[1]))
    V = board.sample(400)
    out = [m.node_names.index(n) for n in m.output_names]
    std = np.median(V[:, :, out].std(axis=1))
    assert 0.010 < std < 0.030
