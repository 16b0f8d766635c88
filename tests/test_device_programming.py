"""Programming devices by pulses (open loop, stochastic rounding, sign only, program and
verify), devices on the emulated board, and training with them."""

import json
import math

import numpy as np
import pytest

from analog_ep.devices import Programming, device_from_dict, fabricate, load_device, program
from analog_ep.errors import ConfigError, DeviceError
from analog_ep.graph import load_network
from analog_ep.substrates.emulated import EmulatedBoard
from analog_ep.training import config_from_options, train
from cli_helpers import assert_one_line_error, run_cli

G_MIN, G_MAX, DG = 1e-5, 1e-4, 1e-7


def constant(**extra):
    return device_from_dict({"family": "constant-step", "g_min": G_MIN, "g_max": G_MAX, "dg_min": DG,
                             "initial": 0.5, **extra}, "test.toml")


def test_open_loop_pulses_round_to_the_nearest_step():
    alpha = 0.2
    a = fabricate(constant(asymmetry=alpha), 200, seed=1)
    g0 = a.conductance.copy()
    target = np.random.default_rng(0).uniform(G_MIN, G_MAX, a.n)
    g = program(a, target)
    step = np.where(target > g0, DG * (1 + alpha), DG * (1 - alpha))
    n = np.rint((target - g0) / step)
    np.testing.assert_allclose(g, np.clip(g0 + n * step, G_MIN, G_MAX), rtol=1e-12)
    assert np.all(np.abs(g - target) <= step / 2 * (1 + 1e-9))
    assert a.pulses == int(np.abs(n).sum())


def test_stochastic_rounding_is_unbiased_and_sign_moves_one_step():
    n = 20000
    a = fabricate(constant(), n, seed=2)
    g0 = a.conductance.copy()
    target = g0 + 3.3 * DG                            # 3.3 steps: 3 with p 0.7, 4 with p 0.3
    counts = np.rint((program(a, target, Programming(rounding="stochastic")) - g0) / DG)
    assert set(np.unique(counts)) == {3.0, 4.0}
    # the mean of a count that is 3 + Bernoulli(0.3): standard error sqrt(0.21/n); 4 of them
    assert abs(counts.mean() - 3.3) < 4 * math.sqrt(0.21 / n)
    b = fabricate(constant(), 3, seed=2)
    h0 = b.conductance.copy()
    g = program(b, h0 + np.array([5.0, -7.0, 0.3]) * DG, Programming(rounding="sign"))
    np.testing.assert_allclose((g - h0) / DG, [1.0, -1.0, 0.0], atol=1e-6)


def test_program_and_verify_reaches_what_open_loop_misses():
    noisy = constant(write_noise=0.5, write_noise_kind="multiplicative")
    target = np.random.default_rng(3).uniform(2 * G_MIN, 0.9 * G_MAX, 500)
    open_loop = program(fabricate(noisy, 500, seed=4), target)
    a = fabricate(noisy, 500, seed=4)
    verified = program(a, target, Programming(method="verify", tolerance=1.0, budget=2000))
    assert np.all(np.abs(verified - target) <= DG * (1 + 1e-9))      # within one nominal step
    assert np.mean(np.abs(open_loop - target) > DG) > 0.5             # open loop: half of them out
    b = fabricate(noisy, 500, seed=4)
    short = program(b, target, Programming(method="verify", budget=5))
    assert b.pulses <= 5 * 500 and np.any(np.abs(short - target) > DG)


def test_counters_are_programmed_to_the_nearest_tap():
    a = fabricate(load_device("x9c103"), 100, seed=5)
    want = np.random.default_rng(6).integers(0, 100, a.n)
    target = 1 / (1040.0 + a.r_total * (1 - want / 99))
    program(a, target)
    np.testing.assert_array_equal(a.tap, want)


def test_ideal_devices_are_set_exactly_and_stuck_devices_stay():
    a = fabricate(load_device("ideal"), 50, seed=7, scale=1e-3)
    target = np.random.default_rng(1).uniform(1e-6, 1e-3, 50)
    np.testing.assert_array_equal(program(a, target, Programming(method="verify")), target)
    assert a.pulses == 0
    s = device_from_dict({"family": "ideal", "g_min": 1e-6, "g_max": 1e-3, "faults": {"stuck": 0.5}}, "t")
    b = fabricate(s, 200, seed=8)
    g0 = b.conductance.copy()
    g = program(b, np.full(200, 5e-4))
    np.testing.assert_array_equal(g[b.stuck], g0[b.stuck])
    np.testing.assert_array_equal(g[~b.stuck], 5e-4)


def test_bad_programming_settings_are_refused():
    with pytest.raises(DeviceError, match="pulses, verify"):
        Programming(method="burn")
    with pytest.raises(DeviceError, match="deterministic, stochastic, sign"):
        Programming(rounding="up")


# ----- the emulated board -------------------------------------------------------------------------

def test_board_programs_its_devices_and_pulses_them():
    G = load_network("xor_diode")
    board = EmulatedBoard(G, device=load_device("reram-softbounds"), device_seed=3)
    lo, hi = board.model.theta_bounds()
    # devices stand for the parameters in units where the preset's g_max is the upper bound
    np.testing.assert_allclose(board.devices.scale, hi / 1e-4)
    reached = board.set_parameters(0.5 * hi)
    np.testing.assert_array_equal(reached, board.devices.conductance)
    assert board.pulses > 0
    before = board.pulses
    after = board.pulse(np.array([3, -3, 0, 1]))
    assert board.pulses == before + 7
    np.testing.assert_array_equal(after, board.theta)
    assert np.all(after[:2] != reached[:2]) and after[2] == reached[2]
    with pytest.raises(ConfigError, match="no devices"):
        EmulatedBoard(G).pulse(np.array([1, 0, 0, 0]))


def test_fixed_parts_are_drawn_from_the_device_file(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text('family = "ideal"\ng_min = 1e-10\ng_max = 1.0\n'
                    '[fixed]\nresistor_tolerance = 0.05\ndiode_i_s_spread = 0.2\ndiode_n_spread = 0.01\n')
    G = load_network("xor_diode")
    nominal = EmulatedBoard(G).model
    m = EmulatedBoard(G, device=load_device(path), device_seed=1).model
    fixed = np.setdiff1d(np.arange(len(m.g_fixed)), m.trainable)
    assert np.all(np.abs(nominal.g_fixed[fixed] / m.g_fixed[fixed] - 1) <= 0.05)
    assert not np.array_equal(m.g_fixed[fixed], nominal.g_fixed[fixed])
    assert not np.array_equal(m.d_is, nominal.d_is) and not np.array_equal(m.d_nvt, nominal.d_nvt)


# ----- training ------------------------------------------------------------------------------------

RUN = dict(dataset="iris", rule="ep", epochs=2, max_train=30, quiet=True, seed=4)


def test_the_ideal_device_trains_exactly_as_without_devices(tmp_path):
    plain = train(config_from_options({**RUN, "out": str(tmp_path / "a")}))
    ideal = train(config_from_options({**RUN, "out": str(tmp_path / "b"), "device": "ideal"}))
    np.testing.assert_array_equal(plain.theta, ideal.theta)
    for key in ("test_accuracy", "train_accuracy", "test_loss", "train_loss"):
        assert plain.final[key] == ideal.final[key]
    assert ideal.final["pulses_per_epoch"] == 0 and "pulses_per_epoch" not in plain.final


def test_train_writes_pulses_per_epoch(capsys, tmp_path):
    out = tmp_path / "run"
    status, _, err = run_cli(capsys, "train", "--rule", "ep", "--epochs", "2", "--max-train", "20",
                             "--device", "x9c103", "--program", "verify", "--out", str(out), "--quiet")
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    pulses = [e["pulses"] for e in metrics["epochs"]]
    assert len(pulses) == 2 and all(isinstance(p, int) and p > 0 for p in pulses)
    assert metrics["final"]["pulses_per_epoch"] == np.mean(pulses)
    assert metrics["config"]["device"] == "x9c103" and metrics["config"]["program"] == "verify"


def test_train_refuses_device_settings_that_do_not_apply(capsys, tmp_path):
    status, _, err = run_cli(capsys, "train", "--program", "verify", "--out", str(tmp_path / "x"))
    assert_one_line_error(status, err, "--device")
    status, _, err = run_cli(capsys, "train", "--device", "flash", "--epochs", "1", "--out", str(tmp_path / "y"))
    assert_one_line_error(status, err, "flash", "reram-softbounds")
    status, _, err = run_cli(capsys, "train", "--network", "oscillator_xor", "--dataset", "xor", "--device",
                             "ideal", "--out", str(tmp_path / "z"))
    assert_one_line_error(status, err, "--device", "resistive")


def test_open_substrate_builds_the_devices_and_their_programming():
    from analog_ep.models.resistive import compile_network
    from analog_ep.substrates.factory import open_substrate
    model = compile_network(load_network("xor_diode"))
    board = open_substrate("emulator", model, device="ecram", pulse_rounding="sign", device_seed=[1, 5])
    assert board.programming == Programming(method="pulses", rounding="sign")
    before = board.pulses
    board.set_parameters(model.g_max)                 # far away, but one pulse each
    assert board.pulses - before == len(model.g_max)
    again = open_substrate("emulator", model, device="ecram", device_seed=[1, 5])
    np.testing.assert_array_equal(again.devices.g_max, board.devices.g_max)   # same fabrication
    with pytest.raises(ConfigError, match="own parts"):
        open_substrate("serial:/dev/null", model, device="ecram")


def test_drift_reaches_the_network_when_the_clock_runs():
    board = EmulatedBoard(load_network("xor_diode"), device=load_device("pcm"), device_seed=2)
    _, hi = board.model.theta_bounds()
    reached = board.set_parameters(0.6 * hi)
    board.clamp(board.model.default_inputs[None, :])
    v0 = board.equilibrium()
    drifted = board.advance(2e4)                      # 1000 t0 after the write
    a = board.devices
    np.testing.assert_allclose(drifted, np.maximum(reached * 1000.0 ** -a.nu, a.g_min), rtol=1e-12)
    assert np.all(drifted < reached) and not np.allclose(board.equilibrium(), v0)
    with pytest.raises(ConfigError, match="no devices"):
        EmulatedBoard(load_network("xor_diode")).advance(1.0)
