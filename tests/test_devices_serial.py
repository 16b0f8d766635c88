"""The board emulator's devices are the in-process emulator's: the same fabrication from the
same seed, moved by the same pulses (ELEM:PULS over a real pty)."""

import numpy as np
import pytest

from analog_ep.board_emulator import BoardEmulator
from analog_ep.devices import device_seed, load_device
from analog_ep.errors import ConfigError
from analog_ep.graph import load_network
from analog_ep.substrates.emulated import EmulatedBoard
from analog_ep.substrates.serial import SerialBoard


@pytest.mark.parametrize("preset", ["x9c103", "reram-softbounds"])
def test_same_conductances_after_the_same_pulses_in_process_and_over_the_wire(preset):
    """Both boards are programmed to the same (code-rounded) conductances, then pulsed alike;
    the wire returns conductances rounded to the profile's element codes, hence one code
    step of tolerance."""
    G = load_network("divider")
    counts = np.array([7, -5])
    with BoardEmulator(G, seed=11, device=preset) as emu, SerialBoard(emu.path, G) as board:
        applied = board.set_parameters(board.profile.element_values(board.profile.element_codes(
            np.array([1e-3, 2e-3]))))
        over_wire = board.pulse(counts)
        codes = board.profile.element_codes(over_wire)
        step = np.abs(board.profile.element_values(codes + 1) - board.profile.element_values(codes))
    local = EmulatedBoard(G, device=load_device(preset), device_seed=device_seed(11))
    local.set_parameters(applied)
    in_process = local.pulse(counts)
    assert not np.allclose(in_process, applied)                 # the pulses moved the devices
    assert np.all(np.abs(over_wire - in_process) <= step)


def test_an_unknown_device_is_refused_before_serving():
    with pytest.raises(ConfigError, match="no-such-device"):
        BoardEmulator("divider", device="no-such-device")
