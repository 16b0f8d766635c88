"""The board emulator: raw pty, stable path, faults, pacing, the command, TCP."""

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import serial

from analog_ep.graph import load_network
from analog_ep.hardware.client import BoardClient
from analog_ep.board_emulator import BoardEmulator
from analog_ep.hardware.faults import parse_faults
from analog_ep.hardware.links import PtyLink
from analog_ep.hardware.errors import (BoardDisconnectedError, BoardError, BoardTimeoutError,
                                       BoardVersionError)
from analog_ep.hardware.profile import load_profile
from analog_ep.errors import ConfigError
from analog_ep.substrates.serial import SerialBoard

FAST = dataclasses.replace(load_profile("emulator"), timeout=0.15, open_settle=1.0)


def read_exactly(link, n, timeout=3.0):
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += link.read() or b""
    return got


@pytest.mark.parametrize("host", ["os.open", "pyserial"])
def test_pty_passes_all_256_byte_values_both_ways(host):
    link = PtyLink()
    try:
        data = bytes(range(256)) * 2
        if host == "os.open":     # a host that configures nothing: the emulator's raw mode
            fd = os.open(link.path, os.O_RDWR | os.O_NOCTTY)
            write, close = (lambda b: os.write(fd, b)), (lambda: os.close(fd))

            def read(n):
                out = b""
                while len(out) < n:
                    out += os.read(fd, n - len(out))
                return out
        else:
            port = serial.serial_for_url(link.path, timeout=3, exclusive=True)
            write, read, close = port.write, port.read, port.close
        try:
            write(data)
            assert read_exactly(link, len(data)) == data       # no ^C, XON, CR/LF mangling
            assert link.write(data)
            assert read(len(data)) == data                     # no LF -> CRLF
        finally:
            close()
    finally:
        link.remove()


def test_eio_means_no_host_and_the_path_survives_a_disconnect():
    link = PtyLink()
    try:
        assert link.read(0.01) is None                          # nobody has the port open
        port = serial.serial_for_url(link.path, timeout=0.5)
        assert link.read(0.01) == b""                           # a host, silent
        link.disconnect(0.01)
        with pytest.raises(serial.SerialException):
            port.read(1)                                        # the old host lost its port
        port.close()
        assert os.path.islink(link.path) and os.path.exists(os.readlink(link.path))
        port = serial.serial_for_url(link.path, timeout=0.5)    # same name, new pty
        port.write(b"x")
        assert read_exactly(link, 1) == b"x"
        port.close()
    finally:
        link.remove()
    assert not os.path.lexists(link.path)


def test_fault_spec_parsing():
    assert parse_faults("drop:0.25, corrupt,delay:0") == {"drop": 0.25, "corrupt": 0.1, "delay": 0.0}
    for bad in ("jitter", "drop:x", "drop:1.5"):
        with pytest.raises(ConfigError, match="--fault"):
            parse_faults(bad)


def workload(sb, steps):
    """Deterministic (T = 0) settings and readings, one list entry per step."""
    rng = np.random.default_rng(5)
    plan = [(rng.uniform(1e-4, 5e-3, 2), rng.uniform(-2, 2, (2, 1))) for _ in range(steps)]
    for theta, u in plan:
        yield lambda theta=theta, u=u: (sb.set_parameters(theta), sb.clamp(u),
                                        sb.equilibrium(), sb.sample(40))


def run(path, steps):
    """Run the workload, redoing a step after any typed error (reconnecting if needed)."""
    results, errors = [], []
    for _ in range(10):     # opening may meet a fault too; the caller retries, boundedly
        try:
            sb = SerialBoard(path, load_network("divider"), FAST)
            break
        except BoardError as exc:
            errors.append(type(exc).__name__)
            time.sleep(0.1)
    with sb:
        for step in workload(sb, steps):
            for _ in range(20):
                try:
                    applied, _, eq, samples = step()
                    results.append((applied, eq, samples))
                    break
                except BoardError as exc:
                    errors.append(type(exc).__name__)
                    if isinstance(exc, BoardDisconnectedError):
                        sb.reconnect(tries=8, backoff=0.05)
            else:
                pytest.fail("a step never completed")
        stats = dict(sb.client.stats)
    return results, errors, stats


@pytest.fixture(scope="module")
def reference():
    with BoardEmulator("divider", seed=3) as emu:
        results, errors, _ = run(emu.path, 12)
    assert not errors
    return results


@pytest.mark.parametrize("faults", ["drop:0.15", "corrupt:0.3", "delay:0.1", "disconnect:0.05",
                                    "drop:0.05,corrupt:0.1,delay:0.03,disconnect:0.02"])
def test_faults_never_yield_corrupted_readings(reference, faults):
    with BoardEmulator("divider", seed=3, faults=faults, delay_s=0.25, reconnect_s=0.05) as emu:
        results, errors, stats = run(emu.path, len(reference))
        injected = emu.writer.counts
    for kind in parse_faults(faults):
        assert injected[kind] > 0, f"no {kind} fault was injected"
    assert len(results) == len(reference)
    for (a, e, s), (ra, re, rs) in zip(results, reference):
        assert np.array_equal(a, ra) and np.array_equal(e, re) and np.array_equal(s, rs)
    assert set(errors) <= {"BoardDisconnectedError", "BoardTimeoutError", "CorruptBlockError",
                           "BoardProtocolError"}
    if "disconnect" in faults:
        assert stats.get("reconnects", 0) >= 1
    else:
        assert stats.get("resyncs", 0) >= 1          # recovered by resynchronising


def test_non_idempotent_commands_are_never_retried_on_a_board_without_replay():
    prof = dataclasses.replace(FAST, non_idempotent=("ELEM:BULK",))
    with BoardEmulator("divider", seed=0, replay=False) as emu:
        with SerialBoard(emu.path, load_network("divider"), prof) as sb:
            emu.writer.faults["delay"] = 1.0
            before = emu.writer.replies
            with pytest.raises(BoardTimeoutError, match=r"ELEM:BULK 0,<block 4 bytes>.*not retried"):
                sb.set_parameters(np.array([1e-3, 2e-3]))
            assert emu.writer.replies - before == 1              # sent once
            emu.writer.faults["delay"] = 0.0
            time.sleep(0.3)
            sb.clamp(np.array([[1.0]]))
            assert sb.equilibrium().shape == (1, 3)              # resynchronised, serving


def test_on_a_replay_board_a_non_idempotent_command_is_retried_with_its_tag_and_applied_once():
    prof = dataclasses.replace(FAST, non_idempotent=("ELEM:BULK",))
    with BoardEmulator("divider", seed=0) as emu:
        with SerialBoard(emu.path, load_network("divider"), prof) as sb:
            assert sb.client.replay
            applied = []
            emu.hal.set_elements = lambda start, codes, f=emu.hal.set_elements: (applied.append(codes),
                                                                                f(start, codes))
            emu.writer.faults["drop"] = 1.0                      # the first reply is lost
            threading.Timer(0.1, lambda: emu.writer.faults.update(drop=0.0)).start()
            sb.set_parameters(np.array([1e-3, 2e-3]))
            assert len(applied) == 1 and emu.core.replayed >= 1   # executed once, answered again
            last = [line for line, _, _ in emu.core.replies.values() if b"ELEM:BULK" in line]
            assert last and sb.client.stats["retries"] >= 1


def test_timeouts_name_the_command_and_reconnect_is_bounded():
    link = PtyLink()                    # a port nobody answers on
    try:
        with pytest.raises(BoardTimeoutError, match=r"\*IDN\?.*within 0.3 s"):
            BoardClient(link.path, timeout=0.1, open_settle=0.3).open()
    finally:
        link.remove()
    c = BoardClient(link.path)
    with pytest.raises(BoardDisconnectedError, match="2 tries"):
        c.reconnect(tries=2, backoff=0.01)


def test_other_protocol_versions_are_refused():
    with BoardEmulator("divider", versions=(2, 3)) as emu:
        with pytest.raises(BoardVersionError, match=r"protocol 2..3, this driver 1..1"):
            BoardClient(emu.path).open()


def test_pacing_holds_replies_to_the_line_rate():
    baud = 115200
    with BoardEmulator("divider", baudrate=baud) as emu:
        with BoardClient(emu.path) as c:
            size = 2 * 700 * c.caps["adcs"]
            t = time.perf_counter()
            c.query_block("ACQ?", 700, 0, expected_len=size)
            elapsed = time.perf_counter() - t
    assert elapsed >= size * 10 / baud           # a block never outruns the line


def test_tcp_link_serves_a_socket_url():
    with BoardEmulator("divider", tcp=0) as emu:
        assert emu.path.startswith("socket://127.0.0.1:")
        with SerialBoard(emu.path, load_network("divider"), FAST) as sb:
            g = sb.set_parameters(np.array([1e-3, 3e-3]))
            sb.clamp(np.array([[2.0]]))
            assert abs(sb.equilibrium()[0, 2] - 2.0 * g[0] / g.sum()) < 1e-3
            emu.writer.faults["disconnect"] = 1.0
            with pytest.raises(BoardDisconnectedError):
                sb.equilibrium()
            emu.writer.faults["disconnect"] = 0.0
            sb.reconnect(tries=3, backoff=0.02)
            assert sb.equilibrium().shape == (1, 3)


def test_command_prints_a_stable_path_and_stops_cleanly():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "analog_ep", "board-emulator", "--seed", "4",
                             "--temperature", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        path = proc.stdout.readline().strip()
        assert os.path.islink(path)
        with BoardClient(path) as c:
            assert c.identity[:2] == ("ANALOG-EP", "BOARD-EMULATOR")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert "seed=4" in proc.stderr.read()
        assert not os.path.lexists(path)
    finally:
        proc.kill()
        proc.wait()


def test_ports_are_opened_exclusively():
    with BoardEmulator("divider") as emu, BoardClient(emu.path):
        with pytest.raises(BoardDisconnectedError, match="cannot open.*lock"):
            BoardClient(emu.path).open()


def test_host_waits_for_a_board_that_boots_late_and_chatters():
    emu = BoardEmulator("divider")
    try:
        def boot():
            time.sleep(0.2)
            while emu.link.read(0.01) is None:      # wait for the host to open the port
                pass
            emu.link.write(b"\x00boot: MicroPython v1.22\r\n>>> \xff")
            time.sleep(0.4)
            emu.start()
        t = threading.Thread(target=boot)
        t.start()
        with BoardClient(emu.path, timeout=0.1, open_settle=3.0) as c:
            assert c.identity[1] == "BOARD-EMULATOR"
        t.join()
    finally:
        emu.stop()
