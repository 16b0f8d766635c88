"""A stock VISA client (PyVISA with pyvisa-py, ASRL<pty>::INSTR) against ``analog-ep
board-emulator`` in VISA mode: no desynchronisation, blocks whose payloads hold 0x0A,
every block CRC-checked by the host; and the script of docs/visa.md, unchanged."""

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from analog_ep.hardware import protocol as P

pyvisa = pytest.importorskip("pyvisa", reason="pip install 'analog-ep[visa]' (pyvisa, pyvisa-py)")
pytest.importorskip("pyvisa_py", reason="pip install 'analog-ep[visa]' (pyvisa, pyvisa-py)")

ROOT = Path(__file__).resolve().parents[1]
IDN = "ANALOG-EP,BOARD-EMULATOR,"


def open_board(path):
    rm = pyvisa.ResourceManager("@py")
    return rm.open_resource(f"ASRL{path}::INSTR", read_termination="\n", write_termination="\n", timeout=3000)


def test_a_stock_pyvisa_client_never_desynchronises_in_visa_mode(emulator_cli_path):
    board = open_board(emulator_cli_path)
    try:
        board.write("SYST:VISA 1")
        assert board.query("*IDN?").startswith(IDN)
        caps = P.parse_capabilities(board.query("SYST:CAP?"))
        assert caps["visa"] == 1
        adc = board.query("CHAN:MAP? ADC").split(",")
        assert board.query("CHAN:MAP? DAC") == "in" and "in" in adc
        board.write("*RST")                               # keeps VISA mode: still silent
        board.write("ELEM:CODE 0,40000")
        board.write("ELEM:CODE 1,20000")
        assert board.query("ELEM:CODE? 1") == "20000"
        holding_lf = 0
        # emulator profile: DAC and ADC have the same 16-bit range, so the ADC code of the
        # clamped node "in" is the DAC code: codes with 0x0A bytes put 0x0A into payloads
        for k, dac in enumerate([0x0A0A, 0x0A00, 0x800A, 0x0A0D, 0x1A0A] + list(range(0x0A01, 0x0A40, 7))):
            board.write(f"DAC:CODE 0,{dac}")
            average = 1 + k % 10
            body = board.query_binary_values(f"MEAS? {average}", datatype="B", container=bytes)
            sums = struct.unpack(f">{caps['adcs']}I", P.split_crc(body))
            assert sums[adc.index("in")] == average * dac
            body = board.query_binary_values("ACQ? 50,0", datatype="B", container=bytes)
            codes = struct.unpack(f">{50 * caps['adcs']}H", P.split_crc(body))
            assert set(codes[adc.index("in")::caps["adcs"]]) == {dac}
            holding_lf += P.split_crc(body).count(b"\n") > 0
            assert board.query("ELEM:CODE? 0") == "40000"    # still in step
        assert holding_lf >= 10
        board.write("ELEM:CODE 0,70000")                  # an error: queued, not answered
        assert board.query("*IDN?").startswith(IDN)
        assert board.query("SYST:ERR?").startswith("-222,")
        assert board.query("ELEM:CODE? 9").startswith("ERR -222,")   # a query's error: inline
        assert board.query("SYST:VISA?") == "1"
    finally:
        board.write("SYST:VISA 0")
        board.close()


def test_without_visa_mode_a_stock_client_falls_out_of_step(emulator_cli_path):
    """Why the mode exists: in version-1 framing a write leaves its OK behind."""
    board = open_board(emulator_cli_path)
    try:
        board.write("SYST:VISA 0")
        board.write("ELEM:CODE 0,5")
        assert board.query("*IDN?") == "OK"               # the reply to the write
        assert board.read().startswith(IDN)
    finally:
        board.close()


def test_the_script_of_the_visa_document_runs_unchanged(emulator_cli_path, tmp_path):
    doc = (ROOT / "docs" / "visa.md").read_text()
    script = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "visa_read.py").write_text(script)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, str(tmp_path / "visa_read.py"), f"ASRL{emulator_cli_path}::INSTR"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(IDN) and lines[-1] == 'errors: 0,"No error"'
    assert lines[1].startswith("MEAS? 1: {") and lines[3] == "ACQ? 100,0: 300 codes"
