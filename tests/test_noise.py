"""Physical noise: Lyapunov covariances against closed forms, exact OU time series against
the Lyapunov solution, Johnson noise against k_B T C^-1, the ADC model."""

import re

import networkx as nx
import numpy as np
import pytest
from scipy import stats

from analog_ep.errors import ConfigError
from analog_ep.schema import normalise_resistive
from analog_ep.models.resistive import compile_network
from analog_ep.physics.equilibrium import solve_equilibrium
from analog_ep.physics.sampling import energy_function
from analog_ep.physics.noise import (K_BOLTZMANN, NoiseModel, adc, node_capacitances,
                                     noise_intensity, ou_step, simulate_langevin, simulate_linear,
                                     stationary_covariance)
from analog_ep.substrates.emulated import EmulatedBoard


def network(diode: bool = False):
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=0.5)
    G.add_node("0", role="ground")
    G.add_node("a", role="hidden", capacitance=2e-9)
    G.add_node("b", role="output", capacitance=0.5e-9)
    G.add_node("c", role="output")                      # falls back to the default capacitance
    for key, x, y, g in (("R1", "in", "a", 1e-3), ("R2", "a", "b", 2e-3), ("R3", "b", "c", 1e-3),
                         ("R4", "c", "0", 3e-3), ("R5", "a", "0", 5e-4)):
        G.add_edge(x, y, key=key, element="resistor", conductance=g, trainable=True)
    if diode:
        G.add_node("vb", role="bias", voltage=-0.1)
        G.add_edge("a", "vb", key="D1", element="diode", anode="a", cathode="vb", i_s=1e-12)
    return compile_network(normalise_resistive(G))


def test_stationary_covariance_closed_forms():
    m = network()
    th = m.default_theta
    noise = NoiseModel(capacitance=1e-9)
    cap = node_capacitances(m, noise)
    np.testing.assert_array_equal(cap, [2e-9, 0.5e-9, 1e-9])
    H = m.laplacian_blocks(th)[0].toarray()
    T = 1e-7
    injected = stationary_covariance(H, cap, noise_intensity(m, th, T, noise))
    np.testing.assert_allclose(injected, T * np.linalg.inv(H), rtol=1e-9)
    johnson = NoiseModel(injected=False, johnson_temperature=300.0)
    S = stationary_covariance(H, cap, noise_intensity(m, th, T, johnson))
    np.testing.assert_allclose(S, K_BOLTZMANN * 300.0 * np.diag(1 / cap), rtol=1e-8, atol=1e-9 * S.max())
    # Johnson noise alone says nothing about the conductances
    S2 = stationary_covariance(2 * H, cap, noise_intensity(m, 2 * th, T, johnson))
    np.testing.assert_allclose(S2, S, rtol=1e-8, atol=1e-9 * S.max())


def test_exact_ou_time_series_has_the_lyapunov_covariance_and_lag_correlation():
    m = network()
    th = m.default_theta
    noise = NoiseModel(capacitance=1e-9, johnson_temperature=3000.0)     # a noise mix
    cap = node_capacitances(m, noise)
    H = m.laplacian_blocks(th)[0].toarray()
    T = 1e-7
    D = noise_intensity(m, th, T, noise)
    S = stationary_covariance(H, cap, D)
    tau = np.max(cap / np.linalg.eigvalsh(H).min())
    step = ou_step(H, cap, D, 0.3 * tau)               # strongly correlated readings
    N, B = 4000, 64                                     # 64 independent series
    X = simulate_linear(step, np.zeros((B, 3)), N, np.random.default_rng(0))
    Lw = np.linalg.cholesky(S)
    W = np.linalg.solve(Lw, X.reshape(-1, 3).T).T.reshape(B, N, 3)
    # independent series -> per-series covariance estimates are independent
    C0 = np.einsum("bni,bnj->bij", W, W) / N
    C1 = np.einsum("bni,bnj->bij", W[:, 1:], W[:, :-1]) / (N - 1)
    lag = np.linalg.solve(Lw, step.phi @ S) @ np.linalg.inv(Lw).T  # whitened Phi S
    for est, ref in ((C0, np.eye(3)), (C1, lag)):
        z = (est.mean(0) - ref) / (est.std(0, ddof=1) / np.sqrt(B))
        assert np.max(np.abs(z)) < stats.norm.isf(1e-3 / 18)
    assert np.abs(lag).max() > 0.3                      # readings are autocorrelated


def test_board_time_series_and_noise_mixes():
    m = network()
    T = 1e-7
    rng = np.random.default_rng(1)
    free = [m.node_names.index(n) for n in m.free_names]
    H = m.laplacian_blocks(m.default_theta)[0].toarray()
    for noise, ref in ((NoiseModel(sample_interval=1e-6), T * np.linalg.inv(H)),
                       (NoiseModel(injected=False, johnson_temperature=1e4),
                        K_BOLTZMANN * 1e4 * np.diag(1 / node_capacitances(m, NoiseModel())))):
        board = EmulatedBoard(m, temperature=T, rng=rng, noise=noise)
        board.clamp(np.array([[0.5], [0.2]]))
        V = board.sample(3000)[:, :, free]
        s0 = solve_equilibrium(m, m.default_theta, np.array([[0.5], [0.2]])).s
        C = np.einsum("bni,bnj->ij", V - s0[:, None], V - s0[:, None]) / (2 * 3000)
        # correlated readings: a loose but informative bound on the covariance
        np.testing.assert_allclose(np.diag(C), np.diag(ref), rtol=0.15)


@pytest.mark.slow
def test_diode_time_series_is_close_to_boltzmann():
    m = network(diode=True)
    T = 1e-7
    board = EmulatedBoard(m, temperature=T, rng=np.random.default_rng(2),
                          noise=NoiseModel(sample_interval=5e-7, substep=0.05))
    board.clamp(np.array([[0.5]] * 64))
    V = board.sample(200)
    exact = EmulatedBoard(m, temperature=T, rng=np.random.default_rng(3))
    exact.clamp(np.array([[0.5]]))
    R = exact.sample(20000)
    free = [m.node_names.index(n) for n in m.free_names]
    v_ts, v_ex = V[..., free].reshape(-1, 3).var(0), R[0][:, free].var(0)
    # Euler-Maruyama with 5% sub-steps: variances within a few per cent of Boltzmann
    np.testing.assert_allclose(v_ts, v_ex, rtol=0.12)


def test_adc_noise_and_quantisation():
    rng = np.random.default_rng(4)
    V = np.full((2, 20000, 3), 0.1234)
    noisy = adc(V, NoiseModel(adc_noise=0.01), rng)
    assert abs(noisy.std() / 0.01 - 1) < 0.02
    q = adc(V + np.linspace(-2, 2, 3), NoiseModel(adc_bits=8), rng)
    lsb = 2.0 / 255
    np.testing.assert_allclose((q + 1) / lsb, np.round((q + 1) / lsb), atol=1e-9)
    assert q.min() >= -1 and q.max() <= 1
    board = EmulatedBoard(network(), rng=rng, noise=NoiseModel(adc_noise=1e-3, adc_bits=12))
    assert board.sample(5).std(axis=1).max() > 0       # ADC noise shows even at T = 0


def test_bad_noise_settings_are_refused():
    for kw, what in (({"capacitance": 0.0}, "capacitance"), ({"sample_interval": -1.0}, "interval"),
                     ({"johnson_temperature": -3.0}, "Johnson"), ({"adc_noise": -1.0}, "ADC noise"),
                     ({"adc_bits": 0}, "bits"), ({"adc_range": (1.0, -1.0)}, "range")):
        with pytest.raises(ConfigError, match=what):
            NoiseModel(**kw)


def test_bad_values_are_refused_not_nan():
    nan, inf = float("nan"), float("inf")
    for kw, what in (({"capacitance": nan}, "capacitance"), ({"capacitance": -1e-9}, "capacitance"),
                     ({"sample_interval": nan}, "interval"), ({"sample_interval": inf}, "interval"),
                     ({"johnson_temperature": nan}, "Johnson"), ({"adc_noise": nan}, "ADC noise"),
                     ({"adc_bits": 2.5}, "bits"), ({"adc_bits": 40}, "bits"),
                     ({"adc_range": (nan, 1.0)}, "range"), ({"substep": nan}, "substep")):
        with pytest.raises(ConfigError, match=what):
            NoiseModel(**kw)
    m = network()
    m.capacitance[m.node_names.index("b")] = -1e-9
    with pytest.raises(ConfigError, match=r"\['b'\]"):
        node_capacitances(m, NoiseModel())
    for T in (nan, inf, -inf, -1e-7):
        with pytest.raises(ConfigError, match="temperature"):
            EmulatedBoard(network(), temperature=T)


def test_board_without_a_noise_source_refuses_to_sample():
    board = EmulatedBoard(network(), temperature=1e-7, noise=NoiseModel(injected=False))
    board.clamp(np.array([[1.0]]))
    with pytest.raises(ConfigError, match="no noise source"):
        board.sample(10)
    board.temperature = 0.0                 # noiseless readings are asked for explicitly
    assert np.ptp(board.sample(3), axis=1).max() == 0


def diode_dynamics(u: np.ndarray, T: float):
    """Diode network, its minima, Hessians, capacitances, injected-noise intensity and force."""
    m = network(diode=True)
    s0 = solve_equilibrium(m, m.default_theta, u).s
    H = m.hessian(m.default_theta, u, s0)
    noise = NoiseModel()
    cap = node_capacitances(m, noise)
    D = noise_intensity(m, m.default_theta, T, noise)

    energies = {}

    def force(s):
        k = len(s) // len(u)
        if k not in energies:
            energies[k] = energy_function(m, m.default_theta, np.repeat(u, k, axis=0))
        return -energies[k](s, False)[1]
    return m, s0, H, cap, D, force


def test_independent_langevin_readings_are_boltzmann_and_uncorrelated():
    """Independent-readings mode of a diode network (one short chain per reading, from the
    linearised stationary law): with injected noise 2 T C it samples exp(-E/T), checked
    against exact MALA readings, and consecutive readings are uncorrelated."""
    T, n = 1e-7, 4000
    u = np.array([[0.5], [0.3]])
    m, s0, H, cap, D, force = diode_dynamics(u, T)
    x = simulate_langevin(force, s0, cap, D, H, n, None, np.random.default_rng(5))
    assert x.shape == (2, n, 3)
    exact = EmulatedBoard(m, temperature=T, rng=np.random.default_rng(6))
    exact.clamp(u)
    free = [m.node_names.index(k) for k in m.free_names]
    ref = exact.sample(5 * n)[..., free].var(axis=1)
    # standard errors ~3% (variance of 4000 readings against correlated MALA), Euler bias ~2.5%
    np.testing.assert_allclose(x.var(axis=1), ref, rtol=0.12)
    z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    lag1 = np.mean(z[:, 1:] * z[:, :-1], axis=1)
    assert np.all(np.abs(lag1) < 4 / np.sqrt(n))


def test_too_long_time_series_names_an_interval_that_works():
    u = np.array([[0.5]])
    _, s0, H, cap, D, force = diode_dynamics(u, 1e-7)
    rng = np.random.default_rng(7)
    with pytest.raises(ConfigError, match="--sample-interval") as err:
        simulate_langevin(force, s0, cap, D, H, 50, 1e-2, rng, max_substeps=3000)
    fits = float(re.search(r"at most (\S+) s", str(err.value)).group(1))
    assert np.all(np.isfinite(simulate_langevin(force, s0, cap, D, H, 50, fits, rng, max_substeps=3000)))


@pytest.mark.parametrize("network_name", ["divider", "xor_diode", "iris_diode", "mesh_1000"])
@pytest.mark.parametrize("extra, message", [
    (["--temperature", "0", "--samples", "10"], "--temperature"),
    (["--temperature", "-1", "--samples", "10"], "--temperature"),
    (["--temperature", "nan", "--samples", "10"], "--temperature"),
    (["--temperature", "inf", "--samples", "10"], "--temperature"),
    (["--samples", "1"], "at least 2"),
    (["--samples", "1000000000"], "at most"),
])
def test_emulate_cli_refuses_bad_thermal_options(network_name, extra, message, capsys):
    from analog_ep.cli import main
    assert main(["emulate", network_name, *extra, "--format", "json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err and "Traceback" not in err


def test_board_refuses_a_sample_too_large_for_memory():
    board = EmulatedBoard(network(), temperature=1e-7)
    with pytest.raises(ConfigError, match="at most"):
        board.sample(10 ** 9)
