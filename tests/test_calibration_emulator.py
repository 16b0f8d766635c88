"""Calibration end to end on the emulated board: recovery of a known injected T by both
methods, the Johnson-only and ADC-noise cases flagged, the same numbers over the pty board
emulator as in process, the CLI, and what a miscalibrated T does to thermal EP."""

import dataclasses
import json

import networkx as nx
import numpy as np
import pytest

from analog_ep.calibration import EMULATOR_IDN, calibrate, load_calibration, substrate_identity
from analog_ep.errors import ConfigError
from analog_ep.schema import normalise_resistive
from analog_ep.models.resistive import compile_network
from analog_ep.physics.noise import NoiseModel
from analog_ep.substrates.emulated import EmulatedBoard


def ladder():
    """Three free nodes (a, b, out), four trainable resistors, one output."""
    G = nx.MultiGraph(family="resistive", name="ladder")
    G.add_node("in", role="input", voltage=1.0)
    G.add_node("0", role="ground")
    G.add_node("out", role="output")
    for key, a, b, g, train in (("R1", "in", "a", 1e-3, True), ("R2", "a", "b", 2e-3, True),
                                ("R3", "b", "out", 1.5e-3, True), ("R4", "a", "0", 5e-4, False),
                                ("R5", "b", "0", 7e-4, False), ("R6", "out", "0", 1e-3, True)):
        G.add_edge(a, b, key=key, element="resistor", conductance=g, trainable=train)
    return normalise_resistive(G)


MODEL = compile_network(ladder())


def board(T, seed=0, **noise):
    return EmulatedBoard(MODEL, temperature=T, rng=np.random.default_rng(seed),
                         noise=NoiseModel(**noise) if noise else None)


@pytest.mark.parametrize("T", [1e-9, 1e-8, 1e-7])
def test_both_methods_recover_injected_T_over_two_decades(T):
    rec = calibrate(board(T, seed=int(-np.log10(T))), MODEL, samples=3000)
    for name, runs in rec.data["methods"].items():
        for r in runs:
            assert abs(r["value"] - T) < 3 * r["stderr"], (name, r["value"], r["stderr"])
            assert r["stderr"] < 0.05 * T
    assert abs(rec.temperature - T) < 3 * rec.stderr
    assert rec.verdict == "boltzmann", rec.data["consistency"]["message"]
    assert rec.data["consistency"]["statistic"] > 0.95
    assert rec.data["board"]["idn"] == EMULATOR_IDN and rec.data["expires"] is None


def test_time_series_readings_count_effective_samples():
    """Readings 0.2 relaxation times apart are correlated: T is still recovered within 3
    standard errors, and the error is computed from far fewer effective samples."""
    rec = calibrate(board(1e-8, seed=3, sample_interval=2e-7), MODEL, samples=3000)
    for runs in rec.data["methods"].values():
        for r in runs:
            assert abs(r["value"] - 1e-8) < 3 * r["stderr"]
            assert r["n_effective"] < 0.8 * r["n_samples"]
    assert rec.verdict == "boltzmann"


def test_johnson_noise_alone_is_flagged():
    """Covariance k_B T C^-1: Boltzmann in the stored energy, no conductance information."""
    rec = calibrate(board(0.0, seed=4, injected=False, johnson_temperature=300.0), MODEL, samples=3000)
    cons = rec.data["consistency"]
    assert cons["verdict"] == "uncorrelated"
    assert cons["statistic"] < 0.05
    assert cons["johnson_kelvin"] == pytest.approx(300, rel=0.1)
    assert "Johnson" in cons["message"] and "thermal EP will not work" in cons["message"]
    assert cons["tests"]["settings"]["p_value"] < 1e-6      # its "T" follows the conductances
    assert cons["message"] in rec.data["warnings"]


def test_adc_noise_is_flagged():
    rec = calibrate(board(1e-8, seed=5, adc_noise=1.5e-3), MODEL, samples=3000)
    cons = rec.data["consistency"]
    assert cons["verdict"] in ("uncorrelated", "biased")
    assert "thermal EP will not work" in cons["message"] and "ADC" in cons["message"]
    assert 0.2 < cons["fractions"]["uncorrelated"] < 0.8
    assert cons["coefficients"]["uncorrelated"] == pytest.approx(1.5e-3**2, rel=0.15)


def test_one_node_johnson_noise_is_caught_by_changing_the_conductances():
    """With one free node every covariance has the same shape; only the dependence on the
    conductances (T would scale with G) gives Johnson noise away."""
    from analog_ep.graph import load_network
    model = compile_network(load_network("divider"))
    b = EmulatedBoard(model, temperature=0.0, rng=np.random.default_rng(6),
                      noise=NoiseModel(injected=False, johnson_temperature=300.0))
    rec = calibrate(b, model, samples=2000)
    assert rec.verdict == "uncorrelated"
    assert rec.data["consistency"]["tests"]["settings"]["effect"] > 0.5
    single = calibrate(b, model, samples=2000, settings=1, method="equipartition")
    assert single.verdict == "undetermined"


def test_quantisation_is_reported():
    rec = calibrate(board(1e-8, seed=7, adc_bits=8, adc_range=(-1.0, 1.0)), MODEL, samples=2000)
    q = rec.data["quantisation"]
    assert q["adc_step"] == pytest.approx(2 / 255)
    assert q["min_sigma_over_step"] < 1 and "ADC step" in q["warning"]
    assert q["warning"] in rec.data["warnings"]


def test_fdt_needs_nudge_sources():
    b = board(1e-8)
    b.capabilities = dataclasses.replace(b.capabilities, nudge=False)
    with pytest.raises(ConfigError, match="has no nudge current sources; use --method equipartition"):
        calibrate(b, MODEL, method="fdt")
    rec = calibrate(b, MODEL, method="equipartition", samples=500)
    assert list(rec.data["methods"]) == ["equipartition"]


def test_bad_requests():
    with pytest.raises(ConfigError, match="needs at least 1668 readings"):
        calibrate(board(1e-8), MODEL, samples=500, precision=0.02)
    with pytest.raises(ConfigError, match="do not fluctuate"):
        calibrate(board(0.0), MODEL, samples=200)
    with pytest.raises(ConfigError, match="--method guess"):
        calibrate(board(1e-8), MODEL, method="guess")
    b = EmulatedBoard(MODEL, temperature=1e-8, measured=("in", "a", "b"))
    with pytest.raises(ConfigError, match="does not measure output"):
        calibrate(b, MODEL, method="fdt")


def test_precision_is_checked_after_measuring_correlated_readings():
    """Correlated readings carry less information than their number: the request is
    refused after the run, with the number of readings that would do."""
    b = board(1e-8, seed=8, sample_interval=5e-8)
    with pytest.raises(ConfigError, match=r"rerun with --samples \d+"):
        calibrate(b, MODEL, samples=1400, precision=0.03, method="equipartition", settings=1)


class _ProfileBoard:
    """The in-process board seen through a profile's DACs, ADCs, element levels and nudge
    sources, exactly as the board emulator's hardware layer converts them."""

    def __init__(self, inner, profile):
        self.inner, self.profile, self.capabilities = inner, profile, inner.capabilities

    def set_parameters(self, theta):
        return self.inner.set_parameters(self.profile.element_values(self.profile.element_codes(theta)))

    def clamp(self, inputs):
        self.inner.clamp(self.profile.dac_volts(self.profile.dac_codes(inputs)))

    def nudge_currents(self, currents):
        self.inner.nudge_currents(self.profile.nudge_currents(self.profile.nudge_codes(currents)))

    def sample(self, n):
        return self.profile.adc_volts(self.profile.adc_codes(self.inner.sample(n)))


@pytest.mark.slow
def test_the_same_numbers_over_the_pty_as_in_process(tmp_path):
    from analog_ep.board_emulator import BoardEmulator
    from analog_ep.hardware.profile import load_profile
    from analog_ep.substrates.serial import SerialBoard

    T, seed = 1e-7, 11
    prof = load_profile("emulator").bind(MODEL.param_names, MODEL.input_names, MODEL.output_names,
                                         MODEL.free_names)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    local = _ProfileBoard(EmulatedBoard(MODEL, temperature=T, rng=rng, measured=prof.measured.names), prof)
    here = calibrate(local, MODEL, samples=1500)
    with BoardEmulator(MODEL, temperature=T, seed=seed) as emu, SerialBoard(emu.path, MODEL) as sb:
        there = calibrate(sb, MODEL, samples=1500)
        idn, profile = substrate_identity(sb)
    assert there.temperature == pytest.approx(here.temperature, rel=1e-9)
    assert there.stderr == pytest.approx(here.stderr, rel=1e-9)
    for name in here.data["methods"]:
        for a, b in zip(here.data["methods"][name], there.data["methods"][name]):
            assert a["value"] == pytest.approx(b["value"], rel=1e-9)
    assert abs(there.temperature - T) < 3 * there.stderr
    assert there.verdict == "boltzmann"
    assert idn.startswith("ANALOG-EP,BOARD-EMULATOR") and profile == "emulator"
    assert there.data["board"]["idn"] == idn and there.data["expires"] is not None
    path = there.save(tmp_path / "board.json")
    assert load_calibration(path, board_id=idn, profile="emulator").temperature == there.temperature
    with pytest.raises(ConfigError, match="is for board"):
        load_calibration(path, board_id=EMULATOR_IDN)


def test_cli_writes_a_record_and_a_plot(tmp_path, capsys):
    from analog_ep.cli import main
    net = tmp_path / "ladder.json"
    from analog_ep.graph import save_network
    save_network(ladder(), net)
    out = tmp_path / "calibration" / "ladder.json"
    assert main(["calibrate", "--network", str(net), "--temperature", "1e-8", "--samples", "1500",
                 "--out", str(out), "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "T = " in text and "verdict: boltzmann" in text
    rec = load_calibration(out, board_id=EMULATOR_IDN)
    assert abs(rec.temperature - 1e-8) < 3 * rec.stderr
    assert rec.data["command"].startswith("analog-ep calibrate --network")
    pytest.importorskip("matplotlib")
    assert out.with_suffix(".png").stat().st_size > 1000
    # the recorded command reproduces the record
    import shlex
    argv = shlex.split(rec.data["command"])[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "again.json")
    assert main(argv) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["temperature"] == rec.data["temperature"]


def test_cli_json_output_johnson_verdict_and_too_few_samples(capsys):
    from analog_ep.cli import main
    assert main(["calibrate", "--no-injected", "--johnson", "300", "--samples", "1000",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["consistency"]["verdict"] == "uncorrelated"
    assert main(["calibrate", "--samples", "10"]) == 2
    assert "at least 100 readings" in capsys.readouterr().err


def test_miscalibrated_T_scales_the_thermal_gradient():
    """The unclamped thermal rule divides Cov(C, dE/dW) by the T it is given: with T_used
    instead of T_true the gradient is (T_true / T_used) times the true one, same direction.
    Exact on the same readings; against the Gaussian closed form within 3 standard errors."""
    pytest.importorskip("analog_ep.learning.thermal_rules")
    from analog_ep.learning.registry import make_rule
    T = 1e-7
    u, d = np.array([[1.0]]), np.array([[0.1]])
    theta = MODEL.default_theta
    exact = make_rule("thermal-exact", temperature=T).gradient(MODEL, None, board(T).cost, theta, u, d, None)
    grads = {}
    for ratio in (0.5, 1.0, 3.0):
        b = board(T, seed=9)
        res = make_rule("thermal", samples=40000, temperature=T / ratio).gradient(
            MODEL, b, b.cost, theta, u, d, np.random.default_rng(0))
        grads[ratio] = res
        assert np.all(np.abs(res.gradient - ratio * exact.gradient) < 3 * res.stderr + 1e-12)
    for ratio in (0.5, 3.0):
        np.testing.assert_allclose(grads[ratio].gradient, ratio * grads[1.0].gradient, rtol=1e-10)
    assert np.max(np.abs(exact.gradient) / grads[1.0].stderr) > 10     # the test resolves the gradient


class _MiscalibratedADC:
    """An emulated board whose ADC channels read ``gain * V + offset``."""

    def __init__(self, inner, gain, offset):
        self.inner, self.gain, self.offset = inner, gain, offset
        self.capabilities = inner.capabilities

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def sample(self, n):
        return self.inner.sample(n) * self.gain + self.offset


def test_adc_loopback_recovers_gains_and_offsets_and_unbiases_T(tmp_path):
    from analog_ep.calibration import adc_loopback
    from analog_ep.substrates.serial import load_adc_calibration
    names = MODEL.node_names                                   # 0, a, b, in, out
    gain = np.array([1.0, 0.9, 0.92, 1.02, 0.88])
    offset = np.array([0.003, -0.01, 0.02, 0.0, 0.005])
    T = 1e-8
    cal = adc_loopback(_MiscalibratedADC(board(T, seed=12), gain, offset), MODEL, points=9, samples=400)
    assert cal.names == names
    # clamped nodes read without noise: exact up to rounding
    assert np.all(np.abs(cal.gain - 1 / gain) <= 3 * cal.gain_stderr + 1e-12)
    assert np.all(np.abs(cal.offset + offset / gain) <= 3 * cal.offset_stderr + 1e-12)
    assert np.all(cal.gain_stderr[[1, 2, 4]] > 1e-6)           # free nodes: thermal noise
    assert cal.gain[0] == 1.0                                   # ground only gets an offset
    raw = calibrate(_MiscalibratedADC(board(T, seed=13), gain, offset), MODEL, samples=3000,
                    method="equipartition")
    fixed = calibrate(_MiscalibratedADC(board(T, seed=13), gain, offset), MODEL, samples=3000,
                      method="equipartition", adc_points=9)
    assert abs(fixed.temperature - T) < 3 * fixed.stderr
    assert abs(raw.temperature - T) > 5 * raw.stderr            # an uncalibrated gain biases T
    path = fixed.save(tmp_path / "adc.json")
    table = load_adc_calibration(path)
    assert table["a"] == pytest.approx((1 / 0.9, 0.01 / 0.9), rel=2e-2)


def test_the_shipped_emulator_record_matches_the_default_temperature():
    """calibration/emulator-default.json is valid, never stale, made on the in-process
    emulator, and agrees with the emulator's default T (else regenerate it with the command
    it records)."""
    from importlib import resources
    from analog_ep.physics.noise import RESISTIVE_DEFAULT_TEMPERATURE as DEFAULT_TEMPERATURE
    path = resources.files("analog_ep.resources") / "calibration" / "emulator-default.json"
    rec = load_calibration(str(path), board_id=EMULATOR_IDN, units="W")
    assert rec.data["expires"] is None and rec.verdict == "boltzmann"
    assert abs(rec.temperature - DEFAULT_TEMPERATURE) < 3 * rec.stderr, rec.data["command"]
    assert rec.stderr < 0.01 * rec.temperature
    assert rec.data["command"].startswith("analog-ep calibrate ")


def test_calibration_for_checks_the_substrate_in_use(tmp_path):
    from analog_ep.calibration import calibration_for
    path = calibrate(board(1e-8), MODEL, samples=500).save(tmp_path / "emu.json")
    assert calibration_for(path, board(1e-8)).temperature == pytest.approx(1e-8, rel=0.1)
    with pytest.raises(ConfigError, match="gives T in W, this network needs rad"):
        calibration_for(path, board(1e-8), units="rad")
    johnson = calibrate(board(0.0, seed=2, injected=False, johnson_temperature=300.0), MODEL, samples=500)
    with pytest.warns(UserWarning, match="thermal EP will not work"):
        calibration_for(johnson.save(tmp_path / "johnson.json"), board(1e-8))


@pytest.mark.slow
def test_fdt_recovers_T_on_a_diode_network():
    """Fluctuation-dissipation in its integral form holds for any Boltzmann law: on a diode
    network sampled by MALA it recovers the injected T (equipartition is only first order in
    T there, and the readings are autocorrelated Markov-chain samples)."""
    from analog_ep.graph import load_network
    model = compile_network(load_network("xor_diode"))
    T = 1e-7
    b = EmulatedBoard(model, temperature=T, rng=np.random.default_rng(14))
    rec = calibrate(b, model, samples=2000, method="fdt")
    for r in rec.data["methods"]["fdt"]:
        assert abs(r["value"] - T) < 3 * r["stderr"], r
        assert r["stderr"] < 0.05 * T
