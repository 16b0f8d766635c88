"""The physical cost of training (docs/reporting.md): the resistors' power and the settling
time against closed forms, the board's running totals, and the per-epoch numbers a run
writes."""

import json

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

from analog_ep.devices import load_device
from analog_ep.graph import load_network
from analog_ep.learning.trainer import epoch_means, per_period
from analog_ep.models.resistive import compile_network
from analog_ep.physics.noise import DENSE_SETTLE_NODES, settling_time
from analog_ep.substrates.emulated import EmulatedBoard
from cli_helpers import run_cli


def test_divider_power_and_settling_time():
    m = compile_network(load_network("divider"))          # 1 V across R1 + R2, 1 mS each
    board = EmulatedBoard(m)
    board.clamp(np.array([[1.0], [2.0]]))
    s = board.equilibrium_state()
    # power = V^2 G1 G2/(G1 + G2): 0.5 mW at 1 V, 2 mW at 2 V
    np.testing.assert_allclose(m.resistor_power(m.default_theta, board.inputs, s), [5e-4, 2e-3], rtol=1e-12)
    assert board.physical_totals()["power_W"] == pytest.approx((5e-4, 1), rel=1e-12)   # its first input
    board.clamp(np.array([[2.0]]))
    board.equilibrium_state()           # the same parameters: not sampled again
    assert board.physical_totals()["power_W"][1] == 1
    board.set_parameters(m.default_theta)
    board.equilibrium_state()
    totals = board.physical_totals()
    assert totals["power_W"] == pytest.approx((2.5e-3, 2), rel=1e-12)
    # one node of C = 1 nF (the default) on G1 + G2 = 2 mS: tau = 0.5 us, times ln(1000)
    assert totals["settling_time_s"][0] == pytest.approx(2 * 5e-7 * np.log(1e3), rel=1e-12)
    assert totals["settling_time_s"][1] == 2 and "pulses" not in totals


def test_settling_time_is_when_the_slowest_mode_reaches_the_tolerance():
    H = np.array([[3e-3, -1e-3], [-1e-3, 2e-3]])
    C = np.array([2e-9, 5e-10])
    t = settling_time(H, C, tolerance=1e-2)
    w, v = sla.eigh(H, np.diag(C))          # H v = lambda C v
    x0 = v[:, 0]                            # the slowest mode decays as exp(-lambda_min t)
    x = sla.expm(-np.diag(1 / C) @ H * t) @ x0
    np.testing.assert_allclose(x, 1e-2 * x0, rtol=1e-9)
    # every other start decays faster: by t it is below the tolerance in the C-norm
    y0 = np.array([1.0, -0.3])
    y = sla.expm(-np.diag(1 / C) @ H * t) @ y0
    assert np.sqrt(y @ (C * y)) <= 1e-2 * np.sqrt(y0 @ (C * y0)) * (1 + 1e-12)


def test_sparse_settling_time_matches_dense():
    n = DENSE_SETTLE_NODES + 50
    rng = np.random.default_rng(0)
    g = rng.uniform(1e-4, 1e-3, n - 1)
    L = sp.diags([np.r_[g, 0] + np.r_[0, g] + 1e-5, -g, -g], [0, 1, -1], format="csc")   # a grounded chain
    C = rng.uniform(1e-10, 1e-9, n)
    # the shift-invert eigensolver converges to ~1e-10 relative; the chain is well separated
    assert settling_time(L, C) == pytest.approx(settling_time(L.toarray(), C), rel=1e-8)


def test_running_totals_become_per_epoch_values():
    before = {"pulses": (10, None), "power_W": (4.0, 2)}
    now = {"pulses": (25, None), "power_W": (10.0, 5), "settling_time_s": (1.0, 1)}
    assert per_period(before, now) == {"pulses": 15, "power_W": 2.0, "settling_time_s": 1.0}
    assert per_period(now, now)["power_W"] is None
    history = [{"pulses": 15, "power_W": 2.0}, {"pulses": 5, "power_W": 4.0}]
    assert epoch_means(now, history) == {"pulses_per_epoch": 10.0, "power_W": 3.0, "settling_time_s": None}


def test_train_reports_the_physical_cost(capsys, tmp_path):
    out = tmp_path / "run"
    status, stdout, err = run_cli(capsys, "train", "--rule", "ep", "--epochs", "2", "--max-train", "10",
                                  "--device", "reram-softbounds", "--out", str(out), "--quiet")
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    n = len(json.loads((out / "params.json").read_text())["parameters"])
    e = load_device("reram-softbounds").energy_per_pulse
    for row in metrics["epochs"]:
        assert row["pulses_per_device"] == pytest.approx(row["pulses"] / n, rel=1e-12)
        assert row["write_energy_J"] == pytest.approx(row["pulses"] * e, rel=1e-12)
        assert row["power_W"] > 0 and row["settling_time_s"] > 0
    f = metrics["final"]
    assert f["write_energy_J_per_epoch"] == pytest.approx(np.mean([r["write_energy_J"] for r in metrics["epochs"]]))
    assert f["power_W"] == pytest.approx(np.mean([r["power_W"] for r in metrics["epochs"]]))
    assert "physical cost:" in stdout and "J/epoch" in stdout and "W per equilibrium" in stdout
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header.endswith("pulses,pulses_per_device,write_energy_J,power_W,settling_time_s")
