"""The reference firmware: chip encodings against the datasheets, MicroPython constraints,
and the shared modules being the package's own. (The protocol conformance of the firmware
over a pty is in test_serial_conformance.py.)"""

import ast
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "drivers" / "firmware"
sys.path.insert(0, str(ROOT / "drivers"))
from firmware import chips, sim, simchips  # noqa: E402


def test_shared_modules_are_the_packages_own():
    for name in ("protocol.py", "boardcore.py"):
        assert os.path.samefile(FIRMWARE / name, ROOT / "analog_ep" / "hardware" / name)


def test_chip_commands_match_the_datasheets():
    c = simchips.Chips()
    i2c, cs = simchips.FakeI2C(c), simchips.FakePin()
    spi = simchips.FakeSPI(c, cs)
    chips.MCP4728(i2c).write(2, 0x123)
    chips.MCP4251(spi, cs).write(1, 256)
    c.dac[0], c.wiper[:] = 4095, [0, 256]
    code = chips.ADS1115(i2c).read(0)
    assert c.log[0] == ("i2c", 0x60, bytes([0x44, 0x81, 0x23]))   # multi-write ch C, VREF int, gain 1
    assert c.log[1] == ("spi", 0, bytes([0x11, 0x00]))            # wiper 1 <- 256, CS low
    assert c.log[2] == ("i2c", 0x48, bytes([0x01, 0xC5, 0xE3]))   # OS, AIN0/GND, +-2.048 V, single, 860 SPS
    assert cs.level == 1 and c.dac[2] == 0x123 and c.wiper[1] == 256
    r1, r2 = 1000 + 75, 1000 + 75 + 10000
    assert code == round(2.048 * 4095 / 4096 * (1 / r1) / (1 / r1 + 1 / r2) / 2.048 * 32768)


def test_adc_clips_negative_readings_to_zero():
    c = simchips.Chips()
    c.node_volts = lambda ain: -0.01
    assert chips.ADS1115(simchips.FakeI2C(c)).read(0) == 0


def test_firmware_sources_stay_micropython_compatible():
    allowed = {"struct", "binascii", "math", "micropython", "select", "sys", "time", "machine", "gc",
               "protocol", "boardcore", "chips", "config", "hal_pico", "main", "simchips"}
    for name in ("main.py", "chips.py", "hal_pico.py", "config.py", "simchips.py", "vm/machine.py", "vm/vmlink.py"):
        tree = ast.parse((FIRMWARE / name).read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom):   # "from machine import I2C"; "from . import chips"
                imported |= {n.module.split(".")[0]} if n.module else {a.name for a in n.names}
        assert imported <= allowed, (name, imported - allowed)
        assert not any(isinstance(n, ast.JoinedStr) for n in ast.walk(tree)), name
        assert not any(isinstance(n, ast.AnnAssign) or getattr(n, "returns", None) for n in ast.walk(tree)), name


def test_main_disables_the_keyboard_interrupt_before_serving():
    tree = ast.parse((FIRMWARE / "main.py").read_text())
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}

    def calls(name):
        found = [n for n in ast.walk(funcs[name]) if isinstance(n, ast.Call)]
        return [(ast.unparse(n.func), [ast.unparse(a) for a in n.args]) for n in found]

    setup, main = calls("setup"), calls("main")
    assert ("micropython.kbd_intr", ["-1"]) in setup
    assert [f for f, _ in main].index("setup") < [f for f, _ in main].index("boardcore.serve")


def test_firmware_config_agrees_with_its_profile():
    from analog_ep.hardware.profile import load_profile
    from firmware import config
    p = load_profile("pico")
    limits = ("maxavg", "maxinterval", "maxsettle")     # the board's own, not in profiles
    assert {k: v for k, v in p.capabilities().items() if k not in limits} == \
        {k: v for k, v in config.CAPS.items() if k not in limits}
    assert p.labels() == config.LABELS
    assert p.settle_us == config.SETTLE_US


@pytest.mark.parametrize("fault", ["garbage", "hangup"])
def test_firmware_survives_garbage_and_hangups(fault):
    import serial
    from analog_ep.hardware.client import BoardClient
    with sim.SimulatedBoard() as board:
        port = serial.serial_for_url(board.path, timeout=0.2)
        port.write(bytes(range(256)) + (b"#9123" if fault == "garbage" else b"ELEM:BU"))
        if fault == "hangup":
            port.close()        # half a command, then the host goes away
        else:
            port.write(b"\n")
            port.close()
        with BoardClient(board.path) as c:
            assert c.identity[1] == "PICO-DIVIDER"


def test_a_short_training_run_through_the_micropython_vm_matches_the_cpython_firmware():
    """A few batches of the exact rule on the divider, driven by the ordinary host client
    (SerialBoard over a pty) against the firmware in the MicroPython VM and against the
    same firmware under CPython: the VM computes every ADC code the same way, so both
    runs apply the same codes and end at the same parameters."""
    import numpy as np
    from analog_ep.graph import load_network
    from analog_ep.learning.config import TrainConfig
    from analog_ep.learning.trainer import fit
    from analog_ep.tasks import build_task
    missing = sim.micropython_missing()
    if missing:
        pytest.skip(missing)
    rng = np.random.default_rng(3)
    x = rng.uniform(0.1, 1.0, (12, 1))
    y = (x[:, 0] > 0.55).astype(int)
    cfg = TrainConfig(dataset="xor", network="divider", rule="exact", epochs=1, batch_size=4, lr=0.05,
                      lr_schedule="constant", progress=False, quiet=True)
    results, start_loss = {}, {}
    for name, server in (("micropython", sim.MicroPythonBoard), ("cpython", sim.SimulatedBoard)):
        with server() as board:
            task = build_task(load_network("divider"), 1, 2,
                              dict(rule="exact", substrate="serial:" + board.path, profile="pico"))
            try:
                split = (task.encode_inputs(x), task.encode_targets(y), y)
                start_loss[name] = task.objective.loss(task.objective.initial_parameters(rng), *split[:2])
                results[name] = fit(cfg, task, {"train": split, "test": split}, units="S")
            finally:
                task.objective.close()
    vm, ref = results["micropython"], results["cpython"]
    assert len(vm.epochs) == 1
    np.testing.assert_array_equal(vm.theta, ref.theta)
    assert vm.final["test_loss"] == ref.final["test_loss"] and start_loss["micropython"] == start_loss["cpython"]
    assert vm.final["test_loss"] < 0.5 * start_loss["micropython"]     # three batches did learn


def test_ci_installs_the_pinned_micropython_vm_where_the_tests_look():
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"{sim.MICROPYTHON_PACKAGE}@{sim.MICROPYTHON_VERSION}" in ci
    assert f"ANALOG_EP_MICROPYTHON:-${{HOME:-/root}}/{sim.DEFAULT_MICROPYTHON_PREFIX[2:]}" in ci


def test_an_acquisition_allocates_nothing_per_reading_in_the_micropython_vm():
    """On a board the collector must not run inside ACQ? (it would delay readings), so
    the conversion loop allocates nothing: what grows with the count is only the reply
    (the payload, its block and the bridge's hex copy, about 20 bytes per reading
    altogether; the driver used to leave some 460 bytes of garbage per reading)."""
    from analog_ep.hardware.client import BoardClient
    missing = sim.micropython_missing()
    if missing:
        pytest.skip(missing)
    peaks = {}
    with sim.MicroPythonBoard() as vm, BoardClient(vm.path, open_settle=3.0) as c:
        for count in (256, 2048):
            vm.memory()                                  # collects, restarts the peak
            assert len(c.query_block("ACQ?", count, 0)) == 2 * count
            peaks[count] = vm.memory()["peak_alloc"]
    assert (peaks[2048] - peaks[256]) / (2048 - 256) < 32, peaks


def random_session(rng, lines=1500):
    """Command lines, good and bad: every header of the table with random arguments,
    tags good and malformed, blocks with good and bad CRCs (both framings: VISA mode is
    switched on and off along the way), random bytes, overlong lines."""
    import numpy as np
    from analog_ep.hardware import protocol as P
    headers = list(P.INDEX)
    out = []
    for _ in range(lines):
        kind = rng.integers(8)
        tag = b"" if rng.random() < 0.3 else (b"@%d " % rng.integers(10 ** 9) if rng.random() < 0.9 else b"@x ")
        if kind == 0:
            out.append(tag + bytes(rng.integers(0, 256, rng.integers(1, 40), dtype=np.uint8)) + b"\n")
        elif kind == 1:
            payload = bytes(rng.integers(0, 256, 2 * rng.integers(0, 4), dtype=np.uint8))
            block = P.encode_block(payload, crc_inside=bool(rng.integers(2)))
            if rng.random() < 0.2:
                block = block[:-1] + bytes([block[-1] ^ 1])
            out.append(tag + b"%s %d," % (rng.choice(["ELEM:BULK", "DAC:BULK", "NUDG:BULK"]).encode(),
                                          rng.integers(-1, 3)) + block + b"\n")
        elif kind == 2:
            out.append(tag + b"SYST:VISA %d\n" % rng.integers(2))
        elif kind == 3:
            out.append(tag + b"X" * int(rng.integers(200, 300)) + b"\n")
        else:
            args = ",".join(str(rng.integers(-3, 300)) for _ in range(rng.integers(0, 3)))
            out.append(tag + (str(rng.choice(headers)) + (" " + args if args else "")).encode() + b"\n")
    return b"".join(out)


def test_the_micropython_vm_answers_byte_for_byte_like_cpython():
    """The same firmware, the same bytes: the VM's replies equal those of the firmware's
    core under CPython on the same simulated chips, for every line of a random session
    (any MicroPython incompatibility on any path, errors included, shows as a difference)."""
    import subprocess
    import numpy as np
    from firmware import boardcore, main
    missing = sim.micropython_missing()
    if missing:
        pytest.skip(missing)
    data = random_session(np.random.default_rng(7))
    chips_ = simchips.Chips()
    cs = simchips.FakePin()
    hal = main.make_hal(simchips.FakeI2C(chips_, log=False), simchips.FakeSPI(chips_, cs, log=False), cs,
                        lambda us: None, sim._ticks_us, lambda a, b: a - b)
    want = b"".join(boardcore.Session(main.make_core(hal)).feed(data))
    run = subprocess.run(["node", str(sim.BRIDGE), sim.micropython_prefix()], input=data,
                         capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    got, expected = run.stdout.split(b"\n"), want.split(b"\n")
    first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
    assert first is None and len(got) == len(expected), (first, got[first:first + 2], expected[first:first + 2])
    assert want.count(b"ERR ") > 200 and want.count(b"#") > 10      # errors and blocks were reached


def test_a_micropython_vm_that_dies_under_the_host_is_reported_at_once():
    import time
    missing = sim.micropython_missing()
    if missing:
        pytest.skip(missing)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="exited"):
        with sim.MicroPythonBoard() as vm:
            vm.proc.kill()
            vm.proc.wait()
    assert time.monotonic() - start < 0.5 * vm.timeout          # not after the 30 s event timeout


def test_the_nudge_source_is_a_howland_pump_on_dac_channel_b():
    """Reset holds the pump's reference (channel D) at mid-scale and channel B on it; a
    nudge code c writes 2048 + c to B, and the simulated node moves by I / (g1 + g2)
    with I = c * 0.5 mV / 100 kOhm = c * 5 nA, the profile's current of that code."""
    from analog_ep.hardware.profile import load_profile
    from firmware import main
    c = simchips.Chips()
    cs = simchips.FakePin()
    hal = main.make_hal(simchips.FakeI2C(c), simchips.FakeSPI(c, cs), cs, lambda us: None, lambda: 0,
                        lambda a, b: a - b)
    core = main.make_core(hal)
    assert c.dac[1] == c.dac[3] == 2048 and c.nudge_current() == 0.0
    core.execute("NUDG:CODE", (0, -1500), None)
    assert c.dac[1] == 548 and c.log[-1] == ("i2c", 0x60, bytes([0x42, 0x82, 0x24]))
    i = load_profile("pico").nudge_currents(np.array([-1500]))[0]
    assert c.nudge_current() == pytest.approx(i, rel=1e-12) == pytest.approx(-1500 * 5e-9, rel=1e-12)
    c.dac[0], c.wiper[:] = 2000, [40, 100]
    g1, g2 = 1 / c.resistance(0), 1 / c.resistance(1)
    assert c.node_volts(0) == pytest.approx((2000 * 2.048 / 4096 * g1 + i) / (g1 + g2), rel=1e-12)
    core.reset()
    assert c.dac[1] == 2048


def test_the_simulated_noise_has_variance_t_over_g():
    """The injected noise at T: ADC readings of out with variance T / (g1 + g2) (within
    4 standard errors of the variance, sqrt(2 / n) relative, plus the rounding's LSB^2/12)."""
    T, n = 2e-9, 4000
    c = simchips.Chips(temperature=T, seed=5)
    adc = chips.ADS1115(simchips.FakeI2C(c, log=False))
    c.dac[0], c.wiper[:] = 3000, [20, 60]
    x = np.array([adc.read(0) for _ in range(n)]) * (2.048 / 32768)
    g = 1 / c.resistance(0) + 1 / c.resistance(1)
    var, lsb = T / g, 2.048 / 32768
    assert abs(x.mean() - c.node_volts(0)) < 4 * np.sqrt(var / n) + lsb
    assert abs(x.var(ddof=1) / var - 1) < 4 * np.sqrt(2 / n) + lsb ** 2 / 12 / var


@pytest.mark.parametrize("T", [1e-9, 2e-8])
def test_calibrate_through_the_firmware_finds_the_boards_noise_temperature(capsys, T):
    """``analog-ep calibrate`` over a pty against the firmware under CPython on the
    simulated chips: both estimators (equipartition and, with the Howland nudge source,
    fluctuation-dissipation) find the simulated T within 3 standard errors, Boltzmann."""
    import json
    from analog_ep.cli import main as cli
    with sim.SimulatedBoard(temperature=T, seed=2) as board:
        status = cli(["calibrate", "--substrate", "serial:" + board.path, "--profile", "pico",
                      "--samples", "2000", "--format", "json"])
    rec = json.loads(capsys.readouterr().out)
    assert status == 0 and rec["method"] == "both"
    assert abs(rec["temperature"]["value"] - T) < 3 * rec["temperature"]["stderr"], rec["temperature"]
    assert rec["temperature"]["stderr"] < 0.05 * T
    assert rec["consistency"]["verdict"] == "boltzmann", rec["consistency"]["message"]


def test_x9c_firmware_config_agrees_with_its_profile():
    from analog_ep.hardware.profile import load_profile
    from firmware import config
    p = load_profile("pico-x9c")
    limits = ("maxavg", "maxinterval", "maxsettle")
    assert {k: v for k, v in p.capabilities().items() if k not in limits} == \
        {k: v for k, v in config.X9C["caps"].items() if k not in limits}
    assert p.labels() == config.X9C["labels"] and p.settle_us == config.X9C["settle_us"]


def test_the_x9c_moves_only_by_pulses_and_the_driver_never_stores():
    """The simulated X9C103 counts INC falling edges while selected, in the U/D
    direction, stopping at the ends; CS rising with INC high would store. The driver
    homes (99 pulses down) before its first move, then reaches a code by pulsing the
    difference from the position it knows, and deselects with INC low (no store)."""
    net = simchips.X9CNetwork(stored=(37, 62))
    assert [p.tap for p in net.pots] == [37, 62]
    pots = [chips.X9C103(net.inc, net.ud, cs, lambda us: None) for cs in net.cs]
    assert [p.tap for p in net.pots] == [37, 62] and pots[0].position is None   # pins idle: no move
    pots[0].write(10)
    assert net.pots[0].tap == 10 and net.pots[0].pulses == 99 + 10 and net.pots[1].pulses == 0
    pots[0].write(4)
    assert net.pots[0].tap == 4 and net.pots[0].pulses == 99 + 10 + 6
    assert pots[0].step(-20) == 0 and net.pots[0].tap == 0 and net.pots[0].pulses == 115 + 4
    assert pots[1].step(150) == 99 and net.pots[1].tap == 99          # homed from 62, then up to the end
    assert all(p.stores == 0 for p in net.pots) and net.cs[0].level == net.inc.level == 1
    # the chip itself, pulsed by hand: edges while deselected do nothing; CS up with INC high stores
    net.ud.value(1)
    net.inc.value(0)
    net.inc.value(1)
    assert net.pots[0].tap == 0
    net.cs[0].value(0)
    for _ in range(3):
        net.inc.value(0)
        net.inc.value(1)
    net.cs[0].value(1)
    assert net.pots[0].tap == 3 and net.pots[0].stores == 1 and net.pots[0].nvm == 3


def test_the_x9c_board_reads_its_divider_through_pwm_and_the_rp2040_adc():
    from analog_ep.hardware.client import BoardClient
    from analog_ep.hardware.protocol import pack_codes
    with sim.SimulatedBoard(board="pico-x9c") as board, BoardClient(board.path) as c:
        c.command("ELEM:BULK", 0, pack_codes("H", [20, 70]))
        c.command("DAC:CODE", 0, 3000)
        code = int.from_bytes(c.query_block("MEAS?", 1, expected_len=4), "big")
        net = board.chips
    assert [p.tap for p in net.pots] == [20, 70]
    r1, r2 = (1040 + 10000 * t / 99 for t in (20, 70))
    v = 3.3 * ((3000 * 65535 + 2047) // 4095) / 65535 * r2 / (r1 + r2)
    assert code == round(v / 3.3 * 4095)
