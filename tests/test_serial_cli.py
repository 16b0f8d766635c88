"""The serial layer as a lab user meets it: ``analog-ep board-emulator`` and the serial
substrate through the command line. Bad input is one line on stderr and exit status 2."""

import json
import os
import signal
import subprocess
import sys

import pytest

from cli_helpers import assert_one_line_error, run_cli
from analog_ep.physics.noise import RESISTIVE_DEFAULT_TEMPERATURE as DEFAULT_TEMPERATURE


@pytest.mark.parametrize("argv, fragment", [
    (["--fault", "bogus"], "kind must be one of"),
    (["--fault", "drop:1.5"], "probability"),
    (["--fault", "drop:nan"], "probability"),
    (["--temperature", "nan"], "--temperature nan"),
    (["--temperature", "inf"], "--temperature inf"),
    (["--temperature", "-1"], "--temperature -1"),
    (["--baud", "0"], "--baud 0"),
    (["--baud", "-9600"], "--baud -9600"),
    (["--fault-delay", "-1"], "--fault-delay -1"),
    (["--tcp", "70000"], "--tcp 70000"),
    (["--tcp", "-1"], "--tcp -1"),
    (["--link", "/nonexistent-folder/board"], "does not exist"),
    (["--network", "oscillator_xor"], "resistive networks"),
    (["--network", "no-such-network"], "no such network"),
    (["--profile", "no-such-profile"], "no such board profile"),
])
def test_board_emulator_refuses_bad_options_in_one_line(capsys, argv, fragment):
    status, out, err = run_cli(capsys, "board-emulator", *argv)
    assert_one_line_error(status, err, fragment)
    assert out == ""


def test_board_emulator_refuses_a_folder_as_link(capsys, tmp_path):
    status, _, err = run_cli(capsys, "board-emulator", "--link", str(tmp_path))
    assert_one_line_error(status, err, "is a folder")


def test_board_emulator_refuses_a_bad_profile_file(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[board\nname = 1\n")
    status, _, err = run_cli(capsys, "board-emulator", "--profile", str(bad))
    assert_one_line_error(status, err, str(bad))
    partial = tmp_path / "partial.toml"
    partial.write_text('[board]\nname = "x"\n')
    status, _, err = run_cli(capsys, "board-emulator", "--profile", str(partial))
    assert_one_line_error(status, err, "missing table [elements]")


def test_board_emulator_refuses_a_busy_tcp_port(capsys):
    import socket
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        status, _, err = run_cli(capsys, "board-emulator", "--tcp", str(port))
    assert_one_line_error(status, err, f"--tcp {port}")


def test_default_board_emulator_has_the_emulators_noise_and_calibrates_over_the_pty(capsys, tmp_path):
    """With no --temperature the board emulator injects the in-process emulator's default
    noise, so `calibrate --substrate serial:PATH` finds that T (within 4 standard errors)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "analog_ep.cli", "board-emulator", "--seed", "7"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        path = proc.stdout.readline().strip()
        assert os.path.islink(path), proc.stderr.read()
        record = tmp_path / "board.json"
        status, out, err = run_cli(capsys, "calibrate", "--substrate", f"serial:{path}",
                                   "--method", "equipartition", "--samples", "2000",
                                   "--settings", "1", "--out", str(record))
        assert status == 0, err
        t = json.loads(record.read_text())["temperature"]
        assert abs(t["value"] - DEFAULT_TEMPERATURE) < 4 * t["stderr"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert not os.path.lexists(path)
    finally:
        proc.kill()
        proc.wait()


def test_a_network_too_big_for_the_profile_is_named_briefly(capsys):
    status, _, err = run_cli(capsys, "board-emulator", "--profile", "pico", "--network", "mesh_1000")
    assert_one_line_error(status, err, "and 2969 more", "2 trainable element channels for 2979")
    assert len(err) < 400


def test_a_port_in_use_is_refused_in_one_line(capsys):
    from analog_ep.hardware.client import BoardClient
    from analog_ep.board_emulator import BoardEmulator
    with BoardEmulator("divider", temperature=1e-7) as emu, BoardClient(emu.path):
        status, _, err = run_cli(capsys, "calibrate", "--substrate", f"serial:{emu.path}")
    assert_one_line_error(status, err, "another program holds its lock")
