"""Shared pytest configuration."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


# -- real serial boards (opt-in) -------------------------------------------------------

def pytest_addoption(parser):
    parser.addoption("--device", metavar="PORT", default=None,
                     help="also run the board conformance tests against a real board on PORT "
                          "(a device path or a pyserial URL)")
    parser.addoption("--device-profile", metavar="PROFILE", default="pico",
                     help="board profile of --device (file or bundled name; default: pico)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--device"):
        return
    skip = pytest.mark.skip(reason="needs a real board: pass --device PORT")
    for item in items:
        if "device" in item.keywords:
            item.add_marker(skip)


# -- analog-ep board-emulator as a separate program --------------------------------------

@pytest.fixture(scope="module")
def emulator_cli_path():
    """The device path of ``analog-ep board-emulator --temperature 0`` (noiseless, so
    readings are exact) running in a subprocess for the module's tests."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "analog_ep", "board-emulator", "--temperature", "0",
                             "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        path = proc.stdout.readline().strip()
        assert path, proc.stderr.read()
        yield path
    finally:
        proc.terminate()
        proc.wait(timeout=10)
