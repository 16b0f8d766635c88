"""Thermal samplers against exact references: factor identities, Gaussian moments,
quadrature of small diode networks, ESS of known autocorrelations."""

import re
import warnings

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from analog_ep.errors import ConfigError, ConvergenceError
from analog_ep.graph import load_network
from analog_ep.schema import normalise_resistive
from analog_ep.models.resistive import compile_network
from analog_ep.physics.equilibrium import DENSE_LIMIT, factorize_spd, solve_equilibrium
from analog_ep.physics import sampling
from analog_ep.physics.sampling import (MCMCDiagnostics, MCMCSettings, SamplerWarning,
                                        check_diagnostics, correlated_noise,
                                        effective_sample_size, pooled_lag1_ess_fraction,
                                        SLOW_MIXING_ADVICE, sample_gaussian, sample_mala)
from analog_ep.substrates.emulated import EmulatedBoard, parse_sampler


@pytest.fixture(autouse=True)
def fresh_warnings():
    """Each test sees the sampler's first warning of every kind."""
    sampling._WARNED.clear()


def grid_laplacian(k: int, leak: float = 1e-2) -> sp.csc_matrix:
    T = sp.diags([2 * np.ones(k), -np.ones(k - 1), -np.ones(k - 1)], [0, -1, 1])
    return (sp.kron(sp.eye(k), T) + sp.kron(T, sp.eye(k)) + leak * sp.eye(k * k)).tocsc()


@pytest.mark.parametrize("k", [5, 21])          # 25 nodes dense, 441 nodes sparse LDL^T
def test_correlated_noise_has_inverse_covariance_exactly(k):
    A = grid_laplacian(k)
    f = factorize_spd(A)
    assert (f.sparse is not None) == (k * k > DENSE_LIMIT)
    X = correlated_noise(f, np.eye(k * k))       # rows: the map applied to unit vectors
    np.testing.assert_allclose(X.T @ X, np.linalg.inv(A.toarray()), rtol=1e-8, atol=1e-10)


def three_node_linear():
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=1.0)
    G.add_node("0", role="ground")
    G.add_node("h", role="hidden")
    G.add_node("o1", role="output")
    G.add_node("o2", role="output")
    for key, a, b, g in (("R1", "in", "h", 1e-3), ("R2", "h", "o1", 2e-3), ("R3", "h", "o2", 5e-4),
                         ("R4", "o1", "0", 1e-3), ("R5", "o2", "0", 2e-3), ("R6", "o1", "o2", 3e-4)):
        G.add_edge(a, b, key=key, element="resistor", conductance=g, trainable=True)
    return compile_network(normalise_resistive(G))


def test_gaussian_samples_have_the_boltzmann_mean_and_covariance():
    m = three_node_linear()
    th = m.default_theta
    u = np.array([[1.0], [-0.4]])
    T, N = 2e-7, 20000
    S = sample_gaussian(m, th, u, T, N, np.random.default_rng(0))
    assert S.shape == (2, N, 3)
    s0 = solve_equilibrium(m, th, u).s
    Sigma = T * np.linalg.inv(m.hessian(th, u[:1], s0[:1])[0])
    # mean: Hotelling-type chi-square of the whitened mean error, per input
    L = np.linalg.cholesky(Sigma)
    for b in range(2):
        z = np.linalg.solve(L, (S[b].mean(0) - s0[b])) * np.sqrt(N)
        assert stats.chi2.sf(z @ z, 3) > 1e-3
    # covariance: whitened sample covariance is the identity within sampling error
    W = np.linalg.solve(L, (S[0] - s0[0]).T)
    C = np.cov(W)
    se = np.sqrt((1 + np.eye(3)) / N)            # sd of sample covariance entries of N(0, I)
    assert np.max(np.abs(C - np.eye(3)) / se) < stats.norm.isf(1e-3 / 12)


def one_node_diode(i_s=1e-12, bias=0.05):
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=0.6)
    G.add_node("0", role="ground")
    G.add_node("vb", role="bias", voltage=bias)
    G.add_node("o", role="output")
    G.add_edge("in", "o", key="R1", element="resistor", conductance=1e-3, trainable=True)
    G.add_edge("o", "0", key="R2", element="resistor", conductance=2e-3, trainable=True)
    G.add_edge("o", "vb", key="D1", element="diode", anode="o", cathode="vb", i_s=i_s)
    return compile_network(normalise_resistive(G))


def quadrature_moments(m, th, u, T, half_width=12.0, n=20001):
    s0 = solve_equilibrium(m, th, u).s[0, 0]
    sd = np.sqrt(T / m.hessian(th, u, [[s0]])[0, 0, 0])
    x = s0 + np.linspace(-half_width, half_width, n) * sd
    E = m.energy(th, np.repeat(u, n, axis=0), x[:, None])
    w = np.exp(-(E - E.min()) / T)
    w /= w.sum()
    mean = w @ x
    return mean, w @ (x - mean) ** 2


@pytest.mark.parametrize("settings", [MCMCSettings(), MCMCSettings(scheme="euler"),
                                      MCMCSettings(scheme="euler", preconditioned=False)],
                         ids=["cn", "mala", "plain"])
def test_mala_matches_quadrature_on_a_strongly_nonlinear_diode_node(settings):
    m = one_node_diode(bias=-0.3)
    th, u = m.default_theta, np.array([[0.6]])
    T = 3e-6          # sd ~ 22 mV against the diode's 26 mV: skewed, not Gaussian
    mean, var = quadrature_moments(m, th, u, T)
    N = 8000
    S, diag = sample_mala(m, th, u, T, N, np.random.default_rng(1), settings=settings)
    x = S[0, :, 0]
    se_mean = np.sqrt(var / diag.ess[0])
    assert abs(x.mean() - mean) < 4 * se_mean
    # variance: sd of a sample variance ~ var * sqrt(2 / ESS) (slightly more for skewed laws)
    assert abs(x.var() - var) < 5 * var * np.sqrt(2.5 / diag.ess[0])
    s0 = solve_equilibrium(m, th, u).s[0, 0]
    assert abs(mean - s0) > 5 * se_mean        # the test can tell the mean from the minimum
    assert 0.3 < diag.acceptance[0] <= 1.0


def test_effective_sample_size_of_ar1_chains():
    rng = np.random.default_rng(2)
    K, m, rho = 16, 2000, 0.6
    x = np.empty((K, m))
    x[:, 0] = rng.standard_normal(K)
    for t in range(1, m):
        x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * rng.standard_normal(K)
    iid = rng.standard_normal((K, m, 1))
    ess = effective_sample_size(np.stack([x[..., None], iid]))[:, 0]
    expected = K * m * (1 - rho) / (1 + rho)
    assert abs(ess[0] / expected - 1) < 0.15
    assert abs(ess[1] / (K * m) - 1) < 0.15


def test_pooled_lag1_ess_of_short_ar1_chains():
    """Chains of 6 draws: the pooled lag-1 estimate recovers an AR(1) coefficient 0.8 (SE ~0.02
    from 2880 pairs; bound 3 SE) and gives about all draws for independent ones."""
    rng = np.random.default_rng(11)
    rho, B, K, m = 0.8, 3, 192, 6
    x = np.empty((B, K, m, 1))
    x[:, :, 0] = rng.standard_normal((B, K, 1))
    for t in range(1, m):
        x[:, :, t] = rho * x[:, :, t - 1] + np.sqrt(1 - rho ** 2) * rng.standard_normal((B, K, 1))
    x = x * np.array([1.0, 5.0, 0.1])[:, None, None, None] + np.arange(B)[:, None, None, None]
    f = pooled_lag1_ess_fraction(np.concatenate([x, rng.standard_normal((B, K, m, 1))], axis=-1))
    assert abs((1 - f) / (1 + f) - rho) < 0.06
    assert pooled_lag1_ess_fraction(rng.standard_normal((B, K, m, 2))) > 0.85


def test_short_runs_judge_mixing_and_warn_with_numbers():
    """32 samples in 8 chains (4 draws each): plain unpreconditioned Langevin on a linear
    network mixes slowly and warns with its ESS; the default sampler, exact on a Gaussian
    target, draws independent states and stays quiet."""
    m = three_node_linear()
    u = np.array([[1.0], [0.3]])
    plain = MCMCSettings(scheme="euler", preconditioned=False, thin=1)
    with pytest.warns(SamplerWarning, match=r"ESS \d+ < 0.25 x 32 samples.*pooled lag-1"):
        _, diag = sample_mala(m, m.default_theta, u, 1e-7, 32, np.random.default_rng(12), settings=plain)
    assert diag.pooled
    with warnings.catch_warnings():                 # the same problem again: no repeat
        warnings.simplefilter("error", SamplerWarning)
        sample_mala(m, m.default_theta, u, 1e-7, 32, np.random.default_rng(14), settings=plain)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplerWarning)
        _, diag = sample_mala(m, m.default_theta, u, 1e-7, 32, np.random.default_rng(13))
    assert diag.pooled and diag.ess.min() > 0.5 * 32


def test_diagnostics_raise_on_stuck_chains_and_warn_on_small_ess():
    stuck = MCMCDiagnostics(np.array([0.5, 0.0]), np.array([100.0, 100.0]), np.ones(2), 100, 8)
    with pytest.raises(ConvergenceError, match=r"inputs \[1\]"):
        check_diagnostics(stuck, MCMCSettings())
    poor = MCMCDiagnostics(np.array([0.5]), np.array([3.0]), np.ones(1), 100, 2)
    with pytest.warns(SamplerWarning, match="ESS 3"):
        check_diagnostics(poor, MCMCSettings())
    tiny_steps = MCMCDiagnostics(np.array([0.999]), np.array([90.0]), np.ones(1), 100, 2)
    with pytest.warns(SamplerWarning, match="acceptance"):
        check_diagnostics(tiny_steps, MCMCSettings(scheme="euler"))


def test_bad_temperature_and_sample_counts_are_refused():
    m = three_node_linear()
    for T in (0.0, -1e-7, None, float("nan")):
        with pytest.raises(ConfigError, match="temperature"):
            sample_gaussian(m, m.default_theta, None, T, 10, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="linear network"):
        sample_gaussian(one_node_diode(), None, None, 1e-7, 10, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="samples"):
        sample_mala(one_node_diode(), None, None, 1e-7, 0, np.random.default_rng(0))


def test_board_samples_are_batched_readings_of_every_node():
    m = three_node_linear()
    board = EmulatedBoard(m, temperature=1e-7, rng=np.random.default_rng(3))
    board.clamp(np.array([[1.0], [0.5], [-1.0]]))
    V = board.sample(50)
    assert V.shape == (3, 50, m.n_nodes)
    k = m.node_names.index("in")
    np.testing.assert_array_equal(V[:, :, k], np.repeat([[1.0], [0.5], [-1.0]], 50, axis=1))
    assert np.all(V[:, :, m.free].std(axis=1) > 0)
    cold = EmulatedBoard(m, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(cold.sample(4)[0], np.repeat(cold.equilibrium(), 4, axis=0))


def test_board_samples_the_nudged_law_of_a_diode_network():
    m = one_node_diode(i_s=1e-14, bias=0.3)
    board = EmulatedBoard(m, temperature=1e-8, rng=np.random.default_rng(4))
    board.clamp(np.array([[0.6]]))
    board.nudge(5e-4, np.array([[0.0]]))
    x = board.sample(4000)[0, :, m.node_names.index("o")]
    diag = board.last_diagnostics
    # the nudge is a conductance beta to a 0 V source: Gaussian mean and variance known
    # while the diode is off (0.2 V below its 0.3 V bias at 1e-14 A)
    g = 1e-3 + 2e-3 + 5e-4
    assert abs(x.mean() - 0.6e-3 / g) < 4 * np.sqrt(1e-8 / g / diag.ess[0])
    assert abs(x.var() / (1e-8 / g) - 1) < 4 * np.sqrt(2 / diag.ess[0])


def test_emulate_cli_reports_thermal_statistics(capsys):
    import json

    from analog_ep.cli import main
    from analog_ep.physics.noise import RESISTIVE_DEFAULT_TEMPERATURE as DEFAULT_TEMPERATURE
    outputs = []
    for seed in (3, 3, 4):
        assert main(["emulate", "divider", "--samples", "4000", "--format", "json", "--seed", str(seed)]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] != outputs[2]
    rep = json.loads(outputs[0])
    assert rep["samples"] == 4000 and rep["temperature"] == DEFAULT_TEMPERATURE
    assert rep["covariance"]["nodes"] == ["out"]
    var = DEFAULT_TEMPERATURE / 2e-3                  # T / (G1 + G2) on the divider's output
    assert abs(rep["covariance"]["matrix"][0][0] / var - 1) < 4 * np.sqrt(2 / 4000)
    assert abs(rep["nodes"]["out"]["mean"] - 0.5) < 4 * np.sqrt(var / 4000)
    assert rep["nodes"]["in"] == {"mean": 1.0, "std": 0.0}
    assert main(["emulate", "divider", "--samples", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert main(["emulate", "divider", "--temperature", "-1"]) == 2


@pytest.mark.parametrize("spec, name, settings", [
    ("mala", "mala", {}), ("mala:thin=4,burn_in=50", "mala", {"thin": 4, "burn_in": 50}),
    ("gibbs:chains=64", "gibbs", {"chains": 64}), ("auto: burn-in=7", "auto", {"burn_in": 7})])
def test_a_sampler_spec_names_the_sampler_and_its_chain_settings(spec, name, settings):
    assert parse_sampler(spec) == (name, settings)


@pytest.mark.parametrize("spec, fragment", [
    ("langevin", "unknown sampler 'langevin'"), ("mala:thin=0", "thin must be an integer >= 1, got 0"),
    ("mala:steps=3", "'steps=3' is not one of chains=N, burn_in=N, thin=N"),
    ("mala:thin=x", "thin must be an integer >= 1, got 'x'"), ("gaussian:thin=2", "no chain settings")])
def test_a_bad_sampler_spec_is_refused_naming_the_part(spec, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        parse_sampler(spec)


def test_the_chain_settings_of_a_spec_reach_the_chains():
    """4 chains of 30 kept draws, thinned by 3, instead of the default 8 chains."""
    board = EmulatedBoard(load_network("xor_diode"), temperature=1e-7, rng=np.random.default_rng(0),
                          sampler="mala:chains=4,thin=3,burn_in=5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        board.sample(120)
    assert board.last_diagnostics.chains == 4 and board.last_diagnostics.samples == 120
    assert board._settings(MCMCSettings()) == MCMCSettings(chains=4, thin=3, burn_in=5)


def test_the_slow_mixing_warning_names_a_spec_that_exists():
    """The warning's advice, 'mala:thin=4,burn_in=50', is itself a valid sampler spec."""
    advice = re.search(r"'(mala:[^']+)'", SLOW_MIXING_ADVICE).group(1)
    assert parse_sampler(advice) == ("mala", {"thin": 4, "burn_in": 50})
