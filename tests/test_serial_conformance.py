"""Conformance to drivers/PROTOCOL.md over a real serial device file.

The same tests run against the board emulator, the reference firmware (its real handler
and hardware layer on simulated chips) under CPython and inside the real MicroPython VM
(the WebAssembly port under Node, only ``machine`` stubbed), and, with ``--device PORT``,
a real board. Everything goes through pyserial on a pty.
"""

import dataclasses
import struct
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import serial

from analog_ep.errors import ConfigError
from analog_ep.graph import load_network
from analog_ep.hardware import protocol as P
from analog_ep.hardware.client import BoardClient
from analog_ep.hardware.errors import BoardCommandError
from analog_ep.board_emulator import BoardEmulator
from analog_ep.hardware.profile import load_profile
from analog_ep.models.resistive import compile_network
from analog_ep.substrates.serial import SerialBoard

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drivers"))
from firmware.sim import MicroPythonBoard, SimulatedBoard, micropython_missing  # noqa: E402


@pytest.fixture(params=["emulator", "firmware", "x9c", "micropython",
                        pytest.param("device", marks=pytest.mark.device)])
def board(request):
    if request.param == "emulator":
        with BoardEmulator("divider", seed=1) as emu:
            yield SimpleNamespace(path=emu.path, profile="emulator", kind="emulator")
    elif request.param == "firmware":
        with SimulatedBoard() as sim:
            yield SimpleNamespace(path=sim.path, profile="pico", kind="firmware")
    elif request.param == "x9c":
        with SimulatedBoard(board="pico-x9c") as sim:
            yield SimpleNamespace(path=sim.path, profile="pico-x9c", kind="firmware")
    elif request.param == "micropython":
        missing = micropython_missing()
        if missing:
            pytest.skip(missing)
        with MicroPythonBoard() as vm:
            yield SimpleNamespace(path=vm.path, profile="pico", kind="micropython")
    else:
        yield SimpleNamespace(path=request.config.getoption("--device"),
                              profile=request.config.getoption("--device-profile"), kind="device")


DIVIDER = load_network("divider")


def bound_profile(board):
    m = compile_network(load_network("divider"))
    return load_profile(board.profile).bind(m.param_names, m.input_names, m.output_names, m.node_names)


class Raw:
    """A bare pyserial port: write lines, read reply frames."""

    def __init__(self, path):
        self.port = serial.serial_for_url(path, timeout=0.05, exclusive=True)
        self.framer = P.Framer(1 << 16, 1 << 20)
        self.frames = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.port.close()

    def reply(self, line, timeout=3.0):
        self.port.write(line)
        deadline = time.monotonic() + timeout
        while not self.frames:
            assert time.monotonic() < deadline, f"no reply to {line[:40]!r}"
            self.frames += self.framer.feed(self.port.read(max(1, self.port.in_waiting)))
        return P.parse_reply(self.frames.pop(0))


def test_handshake_identity_and_capabilities(board):
    with BoardClient(board.path, open_settle=3.0) as c:
        assert len(c.identity) == 4 and all(c.identity)
        assert c.version == 1
        want = bound_profile(board).capabilities()
        assert {k: c.caps[k] for k in want if k in ("elements", "levels", "dacs", "adcs", "nudges")} == \
            {k: want[k] for k in ("elements", "levels", "dacs", "adcs", "nudges")}
        assert c.caps["maxline"] >= 128


def sample_args(caps):
    return {
        "*IDN?": (), "*RST": (), "*CLS": (), "SYST:ERR?": (), "SYST:PROT?": (), "SYST:PROT": (1,),
        "SYST:SYNC?": ("n0nce_1",), "SYST:CAP?": (), "SYST:VISA": (0,), "SYST:VISA?": (), "CHAN:MAP?": ("ELEM",),
        "ELEM:CODE": (0, caps["levels"] - 1), "ELEM:CODE?": (0,),
        "ELEM:BULK": (0, P.pack_codes("H", [1] * caps["elements"])),
        "ELEM:PULS": (0, P.pack_codes("h", [0] * caps["elements"])), "ELEM:PULS?": (),
        "DAC:CODE": (0, 1), "DAC:BULK": (0, P.pack_codes("H", [2] * caps["dacs"])),
        "NUDG:CODE": (0, -1), "NUDG:BULK": (0, P.pack_codes("h", [-1])),
        "SETT:TIME": (0,), "SETT:TIME?": (), "MEAS?": (2,), "ACQ?": (3, 0),
    }


def test_every_command_of_the_table_is_served(board):
    with BoardClient(board.path, open_settle=3.0) as c:
        args = sample_args(c.caps)
        for header, params, kind, *_ in P.COMMANDS:
            a = args[header]
            if header.startswith("NUDG") and c.caps["nudges"] == 0:
                with pytest.raises(Exception) as exc:
                    c.command(header, *a)
                assert exc.value.code == P.E_HARDWARE_MISSING
            elif kind == P.R_OK:
                c.command(header, *a)
            elif kind == P.R_VALUE:
                assert c.query(header, *a)
            else:
                n = {"MEAS?": 4 * c.caps["adcs"], "ACQ?": 2 * 3 * c.caps["adcs"]}[header]
                assert len(c.query_block(header, *a, expected_len=n)) == n
        assert c.query("SYST:SYNC?", "n0nce_1") == "n0nce_1"
        assert c.query("ELEM:CODE?", 0) == "1"       # from ELEM:BULK, after ELEM:CODE
        assert c.query("SETT:TIME?") == "0"


def bad_crc_block(payload):
    b = bytearray(P.encode_block(payload))
    b[-1] ^= 0xFF
    return bytes(b)


def test_bad_input_is_answered_with_error_codes(board):
    with BoardClient(board.path, open_settle=3.0) as c:
        caps = c.caps
    cases = [
        (b"NOPE", P.E_UNDEFINED_HEADER),
        (b"ELEM:CODE %d,0" % caps["elements"], P.E_OUT_OF_RANGE),
        (b"ELEM:CODE 0,%d" % caps["levels"], P.E_OUT_OF_RANGE),
        (b"DAC:CODE 0,1e3", P.E_NUMERIC),
        (b"ELEM:CODE 0", P.E_MISSING_PARAM),
        (b"SETT:TIME? 1", P.E_PARAM_NOT_ALLOWED),
        (b"SYST:SYNC? bad-nonce", P.E_ILLEGAL_VALUE),
        (b"SYST:PROT 99", P.E_VERSION),
        (b"*IDN?\x01", P.E_INVALID_CHAR),
        (b"ELEM:BULK 0,1", P.E_DATA_TYPE),
        (b"ELEM:BULK 0,#0", P.E_BLOCK),
        (b"ELEM:BULK 0,#9999999999", P.E_TOO_MUCH_DATA),
        (b"ELEM:BULK 0," + bad_crc_block(b"\x00\x01"), P.E_BLOCK_CRC),
        (b"ELEM:BULK 0," + P.encode_block(b"\x00\x01\x02"), P.E_BLOCK),
        (b"ACQ? %d,0" % (caps["maxblock"] // (2 * caps["adcs"]) + 1), P.E_TOO_MUCH_DATA),
        (b"X" * (caps["maxline"] + 10), P.E_INPUT_OVERRUN),
    ]
    with Raw(board.path) as raw:
        assert raw.reply(b"*CLS\n")[1] == P.R_OK
        for i, (line, code) in enumerate(cases):
            tag, kind, value = raw.reply(b"@%d %s\n" % (i + 1, line))
            assert (tag, kind, value[0]) == (i + 1, P.R_ERR, code), line[:40]
        assert raw.reply(b"SYST:ERR?\n")[2] == '%d,"%s"' % (P.E_UNDEFINED_HEADER, "undefined header NOPE")
        assert raw.reply(b"*IDN?\n")[1] == P.R_VALUE       # still serving, untagged works


def test_lines_and_blocks_of_the_maximum_sizes_pass_and_one_byte_more_is_refused(board):
    with BoardClient(board.path, open_settle=3.0) as c:
        maxline, maxblock, adcs = c.caps["maxline"], c.caps["maxblock"], c.caps["adcs"]
    with Raw(board.path) as raw:
        for extra, want in ((0, (P.R_VALUE, "n0nce")), (1, (P.R_ERR, P.E_INPUT_OVERRUN))):
            line = b"@3 SYST:SYNC? n0nce"
            line += b" " * (maxline + extra - len(line))       # trailing blanks are not parameters
            tag, kind, value = raw.reply(line + b"\n")
            assert (tag, kind, value if kind == P.R_VALUE else value[0]) == (3, *want), extra
        # a block of maxblock bytes is framed and CRC-checked (then refused for its content:
        # far more codes than elements); one byte more is refused by its header
        tag, kind, (code, _) = raw.reply(b"@4 ELEM:BULK 0," + P.encode_block(bytes(maxblock)) + b"\n")
        assert (tag, kind, code) == (4, P.R_ERR, P.E_OUT_OF_RANGE)
        tag, kind, (code, _) = raw.reply(b"@5 ELEM:BULK 0," + P.encode_block(bytes(maxblock + 1)) + b"\n")
        assert (tag, kind, code) == (5, P.R_ERR, P.E_TOO_MUCH_DATA)
        assert raw.reply(b"@6 ELEM:CODE? 0\n")[:2] == (6, P.R_VALUE)     # the payload was skipped
        count = maxblock // (2 * adcs)
        tag, kind, block = raw.reply(b"@7 ACQ? %d,0\n" % count)
        assert (tag, kind, len(block)) == (7, P.R_BLOCK, 2 * count * adcs)


def test_control_bytes_and_all_256_values_reach_the_board(board):
    with Raw(board.path) as raw:
        codes = [0x0A, 0x0D] if board.kind != "emulator" else [0x0A0D, 0x1103]
        assert raw.reply(b"@1 ELEM:BULK 0," + P.encode_block(P.pack_codes("H", codes)) + b"\n")[1] == P.R_OK
        assert [raw.reply(b"ELEM:CODE? %d\n" % i)[2] for i in range(2)] == [str(c) for c in codes]
        levels = len(load_profile(board.profile).levels)
        for pair in [p for p in ([0x11, 0x03], [0x13, 0x00], [0xFF, 0x100]) if max(p) < levels]:
            assert raw.reply(b"ELEM:BULK 0," + P.encode_block(P.pack_codes("H", pair)) + b"\n")[1] == P.R_OK
            assert [raw.reply(b"ELEM:CODE? %d\n" % i)[2] for i in range(2)] == [str(c) for c in pair]
        # every byte value inside one block: it arrives intact (CRC and framing pass) and
        # is then refused only because 128 codes exceed the element count
        tag, kind, (code, _) = raw.reply(b"@2 ELEM:BULK 0," + P.encode_block(bytes(range(256))) + b"\n")
        assert (tag, kind, code) == (2, P.R_ERR, P.E_OUT_OF_RANGE)


def test_late_replies_are_recognised_by_their_tag(board):
    with BoardClient(board.path, open_settle=3.0) as c:
        settle = c.query("SETT:TIME?")
        for _ in range(5):
            c._port.write(b"@7 *IDN?\n@8 ACQ? 50,0\n")      # replies nobody waits for
            assert c.query("SETT:TIME?") == settle
        c._port.write(b"\x00\xff#9garbage")               # a half line of garbage
        c.resync()
        assert c.query("SETT:TIME?") == settle


def test_reset_restores_power_on_codes(board):
    with BoardClient(board.path, open_settle=3.0) as c:
        c.command("ELEM:CODE", 1, 7)
        c.command("SETT:TIME", 5)
        c.command("*RST")
        assert c.query("ELEM:CODE?", 1) == "0"
        assert c.query("SETT:TIME?") != "5"


def test_chunked_acquisition_returns_every_reading(board):
    with SerialBoard(board.path, load_network("divider"), board.profile) as sb:
        sb.set_parameters(np.array([2e-4, 4e-4]))
        sb.clamp(np.array([[0.6]]))
        per_block = sb.client.block_limit // (2 * len(sb.capabilities.measured))
        n = 2 * per_block + 3
        x = sb.sample(n)
        assert x.shape == (1, n, len(sb.capabilities.measured))
        if board.kind != "device":
            lsb = (sb.profile.measured.hi - sb.profile.measured.lo) / sb.profile.measured.full_scale
            assert np.ptp(x, axis=1).max() <= lsb            # T = 0: every reading the same


@pytest.mark.parametrize("theta, vin", [((2e-4, 4e-4), 0.6), ((9e-4, 1e-4), 1.9), ((1e-4, 9e-4), 0.05)])
def test_divider_readings_match_the_closed_form(board, theta, vin):
    if board.kind == "device":
        pytest.skip("real components have tolerances; the closed form is for the simulations")
    with SerialBoard(board.path, load_network("divider"), board.profile) as sb:
        g = sb.set_parameters(np.array(theta))
        assert np.all(np.abs(g / theta - 1) < 0.1)
        sb.clamp(np.array([[vin]]))
        ch = sb.profile.measured
        lsb_adc = (ch.hi - ch.lo) / ch.full_scale
        lsb_dac = (sb.profile.inputs.hi - sb.profile.inputs.lo) / sb.profile.inputs.full_scale
        out = sb.capabilities.measured.index("out")
        v = sb.equilibrium()[0, out]
        exact = vin * g[0] / g.sum()
        assert abs(v - exact) <= lsb_adc + lsb_dac


def test_visa_mode_keeps_a_stock_visa_client_in_step(board):
    """PyVISA with pyvisa-py on ASRL<pty>::INSTR (PROTOCOL.md section 9): untagged set
    commands silent, blocks with the CRC inside whatever bytes they hold, tagged lines
    served as in version 1 meanwhile."""
    pyvisa = pytest.importorskip("pyvisa", reason="pip install 'analog-ep[visa]' (pyvisa, pyvisa-py)")
    pytest.importorskip("pyvisa_py", reason="pip install 'analog-ep[visa]' (pyvisa, pyvisa-py)")
    inst = pyvisa.ResourceManager("@py").open_resource(f"ASRL{board.path}::INSTR", read_termination="\n",
                                                       write_termination="\n", timeout=3000)
    try:
        inst.write("SYST:VISA 1")
        caps = P.parse_capabilities(inst.query("SYST:CAP?"))
        assert caps["visa"] == 1
        inst.write("*CLS")
        for codes in ([0x0A, 0x0D], [0x0A0A % caps["levels"], 0x0A], [3, 4]):
            data = P.pack_codes("H", codes)
            inst.write_binary_values("ELEM:BULK 0,", data + struct.pack(">I", P.crc32(data)), datatype="B")
            assert [inst.query(f"ELEM:CODE? {i}") for i in range(2)] == [str(c) for c in codes]
            for header, n, fmt in (("MEAS? 3", caps["adcs"], "I"), ("ACQ? 200,0", 200 * caps["adcs"], "H")):
                body = inst.query_binary_values(header, datatype="B", container=bytes)
                assert len(struct.unpack(f">{n}{fmt}", P.split_crc(body))) == n
        inst.write("DAC:CODE 0,1")
        assert inst.query("SYST:ERR?") == '0,"No error"'
        assert inst.query("@9 ELEM:CODE 0,2") == "@9 OK"       # tagged: as in version 1
    finally:
        inst.close()
    with BoardClient(board.path, open_settle=3.0) as c:        # a version-1 host, board still in VISA mode
        assert c.query("SYST:VISA?") == "1"
        assert len(c.query_block("MEAS?", 2, expected_len=4 * c.caps["adcs"])) == 4 * c.caps["adcs"]
        c.command("SYST:VISA", 0)
        assert c.query("SYST:VISA?") == "0"


def test_pulses_move_codes_by_their_counts_and_stop_at_the_ends(board):
    """ELEM:PULS: each element moves by its signed count and stops at 0 and levels-1; a
    refused command moves nothing and is not counted; ELEM:PULS? counts the applied
    commands, and *RST does not clear it."""
    with BoardClient(board.path, open_settle=3.0) as c:
        top = c.caps["levels"] - 1
        assert c.caps["pulse"] == 1
        c.command("ELEM:BULK", 0, P.pack_codes("H", [5, top - 3]))
        n0 = int(c.query("ELEM:PULS?"))
        c.command("ELEM:PULS", 0, P.pack_codes("h", [3, 7]))
        assert [c.query("ELEM:CODE?", i) for i in range(2)] == ["8", str(top)]
        c.command("ELEM:CODE", 1, 10)
        c.command("ELEM:PULS", 0, P.pack_codes("h", [-20, -11]))
        assert [c.query("ELEM:CODE?", i) for i in range(2)] == ["0", "0"]
        refused = [(1, P.pack_codes("h", [1, 1]))]                   # past the last element
        if top < 32767:                                              # a count no int16 can exceed
            refused.append((0, P.pack_codes("h", [top + 1, 0])))
        for args in refused:
            with pytest.raises(BoardCommandError) as exc:
                c.command("ELEM:PULS", *args)
            assert exc.value.code == P.E_OUT_OF_RANGE
        assert [c.query("ELEM:CODE?", i) for i in range(2)] == ["0", "0"]
        c.command("*RST")
        assert int(c.query("ELEM:PULS?")) == n0 + 2


def test_serial_board_pulse_splits_large_counts_and_reads_the_codes_back(board):
    """SerialBoard.pulse: counts above the profile's max_pulse go out as several commands
    (here max_pulse = 4: 11 pulses are 4 + 4 + 3), never truncated; the conductances
    returned are the levels of the codes read back."""
    prof = dataclasses.replace(bound_profile(board), max_pulse=4)
    with SerialBoard(board.path, DIVIDER, prof) as sb:
        start = sb.set_parameters(prof.levels[[2, 30]])
        before = int(sb.client.query("ELEM:PULS?"))
        g = sb.pulse(np.array([11, -3]))
        assert int(sb.client.query("ELEM:PULS?")) == before + 3
        assert np.array_equal(g, prof.levels[[13, 27]]) and not np.array_equal(g, start)
        with pytest.raises(ConfigError, match="integers"):
            sb.pulse(np.array([1.5, 0.0]))
