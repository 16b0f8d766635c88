"""Noise-temperature calibration as a lab user meets it: ``analog-ep calibrate`` options and
records given to ``train``/``gradient`` with ``--calibration``. Bad input is one line on
stderr and exit status 2, before anything is measured."""

import json

import pytest

from analog_ep.board_emulator import BoardEmulator
from cli_helpers import assert_one_line_error as _assert_one_line_error
from cli_helpers import run_cli


def assert_one_line_error(status, err, *fragments):
    _assert_one_line_error(status, err, *fragments, allow_warnings=True)


GRADIENT = ["gradient", "divider", "--input", "in=2", "--target", "out=0.5", "--rule", "thermal",
            "--samples", "200"]


@pytest.mark.parametrize("argv, fragment", [
    (["--settings", "0"], "--settings 0"),
    (["--nudge-sigmas", "-1"], "--nudge-sigmas"),
    (["--nudge-sigmas", "nan"], "--nudge-sigmas"),
    (["--tolerance", "-1"], "--tolerance"),
    (["--tolerance", "1.5"], "--tolerance"),
    (["--valid-days", "-3"], "--valid-days"),
    (["--temperature", "nan"], "--temperature nan"),
    (["--temperature", "-1"], "--temperature -1"),
    (["--no-injected"], "without noise"),
    (["--profile", "pico"], "--profile applies to --substrate serial"),
    (["--samples", "10"], "at least 100"),
    (["--substrate", "serial:"], "serial:PORT_OR_URL"),
    (["--substrate", "serial:/nonexistent/ttyACM9"], "no such device"),
])
def test_calibrate_refuses_bad_options_in_one_line(capsys, argv, fragment):
    status, out, err = run_cli(capsys, "calibrate", "--samples", "200", *argv)
    assert_one_line_error(status, err, fragment)
    assert out == ""


def test_calibrate_refuses_a_folder_as_out_before_measuring(capsys, tmp_path):
    status, _, err = run_cli(capsys, "calibrate", "--samples", "200", "--out", str(tmp_path))
    assert_one_line_error(status, err, "is a folder")
    assert "free readings" not in err          # refused before the first run


def test_calibrate_picks_equipartition_on_a_board_without_nudge_sources(capsys, tmp_path):
    """No --method on a board without nudge sources: equipartition, said so; an explicit
    fdt is refused with what to use instead. The record names the profile, which a
    substrate opened with the record then uses."""
    with BoardEmulator("divider", temperature=1e-7, profile="pico-x9c", seed=3) as emu:
        out = tmp_path / "x9c.json"
        status, _, err = run_cli(capsys, "calibrate", "--substrate", f"serial:{emu.path}", "--profile", "pico-x9c",
                                 "--samples", "300", "--settings", "1", "--out", str(out))
        assert status == 0, err
        assert "no nudge current sources" in err
        rec = json.loads(out.read_text())
        assert rec["method"] == "equipartition" and "--method equipartition" in rec["command"]
        assert rec["profile"] == "pico-x9c" and rec["profile_file"] == "pico-x9c"
        # the record knows the board's profile: train/gradient need no --profile
        status, _, err = run_cli(capsys, *GRADIENT, "--substrate", f"serial:{emu.path}", "--calibration", str(out))
        assert status == 0, err
        status, _, err = run_cli(capsys, "calibrate", "--substrate", f"serial:{emu.path}", "--profile", "pico-x9c",
                                 "--samples", "300", "--method", "fdt")
        assert_one_line_error(status, err, "no nudge current sources", "--method equipartition")


def test_records_are_refused_on_another_board_and_shipped_ones_found_by_name(capsys, tmp_path):
    """train/gradient --calibration: a record made on the board emulator over the wire is
    refused by the in-process emulator and the reverse; the shipped record is found by name
    wherever the package is installed."""
    with BoardEmulator("divider", temperature=1e-7, seed=4) as emu:
        board_rec = tmp_path / "board.json"
        status, _, err = run_cli(capsys, "calibrate", "--substrate", f"serial:{emu.path}",
                                 "--method", "equipartition", "--samples", "300", "--out", str(board_rec))
        assert status == 0, err
        status, _, err = run_cli(capsys, *GRADIENT, "--substrate", f"serial:{emu.path}",
                                 "--calibration", str(board_rec))
        assert status == 0, err
        status, _, err = run_cli(capsys, *GRADIENT, "--substrate", f"serial:{emu.path}",
                                 "--calibration", "emulator-default")
        assert_one_line_error(status, err, "calibration record is for board 'ANALOG-EP,EMULATOR,in-process'")
    status, _, err = run_cli(capsys, *GRADIENT, "--calibration", str(board_rec))
    assert_one_line_error(status, err, "calibration record is for board 'ANALOG-EP,BOARD-EMULATOR")
    status, out, err = run_cli(capsys, *GRADIENT, "--calibration", "emulator-default", "--format", "json")
    assert status == 0, err
    status, _, err = run_cli(capsys, *GRADIENT, "--calibration", "no-such-record")
    assert_one_line_error(status, err, "no such calibration record (shipped: emulator-default")


def test_stale_and_invalid_records_are_refused(capsys, tmp_path):
    from importlib import resources
    shipped = json.loads((resources.files("analog_ep.resources") / "calibration" /
                          "emulator-default.json").read_text())
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(dict(shipped, expires="2000-01-01T00:00:00+00:00")))
    status, _, err = run_cli(capsys, *GRADIENT, "--calibration", str(stale))
    assert_one_line_error(status, err, "expired on 2000-01-01", "recalibrate")
    for broken, fragment in ((dict(shipped, temperature={"value": -1.0, "stderr": 0.0, "units": "W"}),
                              "temperature.value"),
                             (dict(shipped, schema="something-else"), "'schema'"),
                             ([1, 2, 3], "JSON object")):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(broken))
        status, _, err = run_cli(capsys, *GRADIENT, "--calibration", str(bad))
        assert_one_line_error(status, err, "invalid calibration record", fragment)
    bad.write_text("{not json")
    status, _, err = run_cli(capsys, *GRADIENT, "--calibration", str(bad))
    assert_one_line_error(status, err, "not JSON")


@pytest.mark.slow
def test_fdt_with_default_nudges_is_unbiased_on_a_diode_network():
    """On xor_diode the default nudge (2 reading standard deviations) keeps fdt unbiased:
    pooled over 4 runs x 2 settings the mean z-score of T is within 3/sqrt(8) of 0 (with
    nudges of 3 standard deviations it is about +1.7, the O(delta^4) term of the covariance
    integral)."""
    import numpy as np
    from analog_ep.calibration import calibrate
    from analog_ep.graph import load_network
    from analog_ep.models.resistive import compile_network
    from analog_ep.substrates.emulated import EmulatedBoard
    model = compile_network(load_network("xor_diode"))
    T = 1e-7
    z = []
    for seed in range(4):
        board = EmulatedBoard(model, temperature=T, rng=np.random.default_rng(200 + seed))
        rec = calibrate(board, model, samples=2000, method="fdt")
        z += [(r["value"] - T) / r["stderr"] for r in rec.data["methods"]["fdt"]]
    assert abs(np.mean(z)) < 3 / np.sqrt(len(z)), z
