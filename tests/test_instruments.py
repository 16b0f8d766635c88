"""The PyMeasure and QCoDeS drivers (analog_ep.instruments) against ``analog-ep
board-emulator`` on a pty, through pyvisa-py: quantities declared from the board profile
with units and validated ranges, readings from CRC-checked blocks, one QCoDeS Measurement
into a QCoDeS database and one PyMeasure Procedure run by a Worker into a results file,
both against the divider's closed form."""

import numpy as np
import pytest

from analog_ep.errors import ConfigError
from analog_ep.hardware import protocol as P
from analog_ep.hardware.errors import BoardCommandError
from analog_ep.hardware.profile import load_profile
from analog_ep.instruments import describe_board

pytest.importorskip("pyvisa_py", reason="pip install 'analog-ep[visa]' (pyvisa, pyvisa-py)")

PROFILE = load_profile("emulator").bind(("R1", "R2"), ("in",), ("out",), ("0", "in", "out"))
LSB_ADC = (PROFILE.measured.hi - PROFILE.measured.lo) / PROFILE.measured.full_scale
INPUTS = np.array([0.05, 0.3, 0.61, 1.2, 1.9])


def divider_out(v_set, g1, g2):
    """Closed form at the DAC voltage the board applies (nearest code)."""
    return PROFILE.dac_volts(PROFILE.dac_codes(np.asarray(v_set)[:, None]))[:, 0] * g1 / (g1 + g2)


def test_the_declaration_takes_units_and_ranges_from_the_profile(emulator_cli_path):
    import pyvisa
    inst = pyvisa.ResourceManager("@py").open_resource(f"ASRL{emulator_cli_path}::INSTR", read_termination="\n",
                                                      write_termination="\n", timeout=3000)
    try:
        d = describe_board(inst.write, inst.query, "emulator")
        q = d.quantities
        assert list(q) == ["g_R1", "g_R2", "v_in", "i_out"] and d.readings == ("read_0", "read_in", "read_out")
        assert (q["g_R1"].unit, q["g_R1"].low, q["g_R1"].high) == ("S", PROFILE.levels.min(), PROFILE.levels.max())
        assert (q["v_in"].unit, q["v_in"].low, q["v_in"].high) == ("V", -10.0, PROFILE.inputs.hi)
        assert (q["i_out"].unit, q["i_out"].low, q["i_out"].high) == ("A", -0.01, 0.01)
        for x in q.values():                               # the declaration uses the command table's rows
            assert P.INDEX[x.header][2] == P.R_OK and (x.query is None or P.INDEX[x.query][2] == P.R_VALUE)
        with pytest.raises(ConfigError, match="v_in = 11 V is outside -10 .. 9.99969 V"):
            d.set_command(q["v_in"], 11.0)
        assert d.set_command(q["v_in"], 0.0) == "DAC:CODE 0,32768"      # offset binary: 0 V
        with pytest.raises(ConfigError, match="pico"):
            describe_board(inst.write, inst.query, "pico")                  # not this board
    finally:
        inst.close()


def test_a_qcodes_measurement_loop_into_a_qcodes_database(emulator_cli_path, tmp_path):
    pytest.importorskip("qcodes", reason="pip install 'analog-ep[qcodes]'")
    from qcodes.dataset import Measurement, initialise_or_create_database_at, load_or_create_experiment
    from analog_ep.instruments.qcodes_board import AnalogEPBoard
    initialise_or_create_database_at(tmp_path / "board.db")
    exp = load_or_create_experiment("divider", sample_name="board emulator")
    board = AnalogEPBoard("board", f"ASRL{emulator_cli_path}::INSTR")
    try:
        assert board.v_in.unit == "V" and board.g_R1.unit == "S" and board.read_out.unit == "V"
        with pytest.raises(ValueError, match="between"):
            board.v_in(12.0)                                 # the validator, before any byte is sent
        board.g_R1(2e-4)
        board.g_R2(4e-4)
        g1, g2 = board.g_R1(), board.g_R2()                  # as applied: the nearest levels
        assert abs(g1 / 2e-4 - 1) < 1e-3 and abs(g2 / 4e-4 - 1) < 1e-3
        meas = Measurement(exp=exp, name="divider sweep")
        meas.register_parameter(board.v_in)
        meas.register_parameter(board.read_out, setpoints=(board.v_in,))
        with meas.run() as saver:
            for v in INPUTS:
                board.v_in(v)
                saver.add_result((board.v_in, v), (board.read_out, board.read_out()))
        data = saver.dataset.get_parameter_data()["board_read_out"]
    finally:
        board.close()
    np.testing.assert_array_equal(data["board_v_in"], INPUTS)
    # ADC rounding to the nearest code: at most half an LSB, plus float rounding
    np.testing.assert_allclose(data["board_read_out"], divider_out(INPUTS, g1, g2), rtol=0, atol=LSB_ADC / 2 + 1e-12)


def test_a_pymeasure_procedure_run_by_a_worker_writes_its_results_file(emulator_cli_path, tmp_path):
    pytest.importorskip("pymeasure", reason="pip install 'analog-ep[pymeasure]'")
    from pymeasure.experiment import FloatParameter, IntegerParameter, Parameter, Procedure, Results, Worker
    from analog_ep.instruments.pymeasure_board import AnalogEPBoard

    class DividerSweep(Procedure):
        resource = Parameter("VISA resource")
        g1 = FloatParameter("G1", units="S", default=2e-4)
        g2 = FloatParameter("G2", units="S", default=4e-4)
        steps = IntegerParameter("Points", default=len(INPUTS))
        DATA_COLUMNS = ["Input (V)", "Output (V)", "G1 (S)", "G2 (S)"]

        def startup(self):
            self.board = AnalogEPBoard(self.resource, visa_library="@py")
            self.board.reset()
            self.board.g_R1.value = self.g1
            self.board.g_R2.value = self.g2

        def execute(self):
            for v in INPUTS[:self.steps]:
                self.board.v_in.value = v
                self.emit("results", {"Input (V)": v, "Output (V)": self.board.voltages["out"],
                                      "G1 (S)": self.board.g_R1.value, "G2 (S)": self.board.g_R2.value})

        def shutdown(self):
            self.board.adapter.close()

    procedure = DividerSweep()
    procedure.resource = f"ASRL{emulator_cli_path}::INSTR"
    results = Results(procedure, str(tmp_path / "divider.csv"))
    worker = Worker(results)
    worker.start()
    worker.join(timeout=60)
    assert procedure.status == Procedure.FINISHED
    rows = [line for line in (tmp_path / "divider.csv").read_text().splitlines() if not line.startswith("#")]
    assert rows[0].split(",") == DividerSweep.DATA_COLUMNS
    table = np.array([[float(x) for x in r.split(",")] for r in rows[1:]])
    assert table.shape == (len(INPUTS), 4)
    np.testing.assert_array_equal(table[:, 0], INPUTS)
    g1, g2 = table[0, 2], table[0, 3]
    np.testing.assert_allclose(table[:, 1], divider_out(INPUTS, g1, g2), rtol=0, atol=LSB_ADC / 2 + 1e-12)


def test_a_refused_set_command_raises_with_the_boards_error(emulator_cli_path):
    pytest.importorskip("pymeasure", reason="pip install 'analog-ep[pymeasure]'")
    from analog_ep.instruments.pymeasure_board import AnalogEPBoard
    board = AnalogEPBoard(f"ASRL{emulator_cli_path}::INSTR", visa_library="@py")
    try:
        assert board.elements[1] is board.g_R2 and board.inputs[0] is board.v_in
        with pytest.raises(ValueError, match="not in range"):
            board.g_R1.value = 2.0                           # above the largest level: never sent
        board.write("ELEM:CODE 5,1")                         # raw, unchecked: queued by the board
        with pytest.raises(BoardCommandError, match="-222"):    # raised by the next set
            board.v_in.value = 0.5
        board.ask("SYST:ERR?")
    finally:
        board.adapter.close()


def test_the_pymeasure_driver_on_the_reference_firmware_in_the_micropython_vm():
    """A bound profile (pico: rheostat levels, 12-bit DAC, 15-bit ADC, a 12-bit nudge
    source) and the firmware's own board core, inside the MicroPython VM."""
    import sys
    from pathlib import Path
    pytest.importorskip("pymeasure", reason="pip install 'analog-ep[pymeasure]'")
    from analog_ep.instruments.pymeasure_board import AnalogEPBoard
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drivers"))
    from firmware.sim import MicroPythonBoard, micropython_missing
    missing = micropython_missing()
    if missing:
        pytest.skip(missing)
    pico = load_profile("pico")
    with MicroPythonBoard() as vm:
        board = AnalogEPBoard(f"ASRL{vm.path}::INSTR", profile="pico", visa_library="@py")
        try:
            assert list(board.declaration.quantities) == ["g_R1", "g_R2", "v_in", "i_out"]
            assert board.v_in.unit == "V" and board.i_out.unit == "A"
            board.g_R1.value, board.g_R2.value, board.v_in.value = 2e-4, 4e-4, 0.6
            board.i_out.value = 2e-6
            g1, g2, v, i = board.g_R1.value, board.g_R2.value, board.v_in.value, board.i_out.value
            out = board.voltages["out"]
        finally:
            board.adapter.close()
    assert v == pico.dac_volts(pico.dac_codes(np.array([0.6])))[0]
    lsb_adc = (pico.measured.hi - pico.measured.lo) / pico.measured.full_scale
    assert i == pico.nudge_currents(pico.nudge_codes(np.array([2e-6])))[0]
    assert abs(out - (v * g1 + i) / (g1 + g2)) <= lsb_adc    # ADC rounding of the simulated chips
