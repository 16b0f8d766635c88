"""Serial link throughput: bulk acquisition through the board emulator at a paced baud rate.

A pty ignores the baud rate, so the emulator (a subprocess, one BLAS thread) paces its
replies to the 8N1 line rate baud/10 bytes/s against deadlines. For each baud rate this
measures, in the same run:

- ``raw``: the baseline, a paced link (the emulator's own PtyLink) streaming the same
  number of bytes with no protocol, read by pyserial: what the pacing itself achieves;
- ``ACQ?``: ``BoardClient.query_block("ACQ?", ...)`` of a fixed block size, in payload
  bytes per second, counting the command, the reply header, the CRC and its check, and
  the round trip; reported as a fraction of the line rate and of the raw baseline;
- the driver's own cost per acquisition: host CPU seconds per ``query_block`` (the
  emulator runs in another process), and per ``SerialBoard.sample`` (with the conversion
  to volts), against the same block unpaced.

- against the fault rate (``--fault-rates``): unpaced ``ACQ?`` throughput with ``drop``,
  ``corrupt`` and ``delay`` each injected at the rate (``--fault-delay 0.05``, a client
  timeout of 0.2 s), as a fraction of the fault-free rate measured in the same run, with
  the attempts the client made per acquisition.

Usage: ``python benchmarks/serial_throughput.py [--bauds 115200 1000000] [--block 4096]
[--fault-rates 0 0.02 0.05 0.1]`` (``--bauds`` with no value skips the paced part).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

import numpy as np
import serial
from threadpoolctl import threadpool_limits

from analog_ep.graph import load_network
from analog_ep.hardware.client import BoardClient
from analog_ep.hardware.links import PtyLink
from analog_ep.substrates.serial import SerialBoard


def start_emulator(baud: int | None, fault_rate: float = 0.0) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "analog_ep", "board-emulator", "--seed", "0"]
    if baud:
        cmd += ["--baud", str(baud)]
    if fault_rate:
        r = f"{fault_rate:g}"
        cmd += ["--fault", f"drop:{r},corrupt:{r},delay:{r}", "--fault-delay", "0.05"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    return proc, proc.stdout.readline().strip()


def raw_baseline(baud: int, nbytes: int, repeats: int) -> float:
    """Payload bytes/s of a paced PtyLink streaming ``nbytes`` per transfer, no protocol."""
    link = PtyLink(baudrate=baud)
    port = serial.serial_for_url(link.path, timeout=5)
    data = bytes(nbytes)
    try:
        t = time.perf_counter()
        for _ in range(repeats):
            writer = threading.Thread(target=link.write, args=(data,))
            writer.start()
            got = port.read(nbytes)
            writer.join()
            assert len(got) == nbytes
        return nbytes * repeats / (time.perf_counter() - t)
    finally:
        port.close()
        link.remove()


def acquisitions(path: str, count: int, repeats: int) -> tuple[float, float, int]:
    """(payload bytes/s, host CPU s per acquisition, payload bytes) of ACQ? count,0."""
    with BoardClient(path) as c:
        size = 2 * count * c.caps["adcs"]
        c.query_block("ACQ?", count, 0, expected_len=size)          # warm up
        cpu, t = time.process_time(), time.perf_counter()
        for _ in range(repeats):
            c.query_block("ACQ?", count, 0, expected_len=size)
        wall = time.perf_counter() - t
        return size * repeats / wall, (time.process_time() - cpu) / repeats, size


def faulty_acquisitions(path: str, count: int, repeats: int) -> tuple[float, float]:
    """(payload bytes/s, exchanges per acquisition) of ACQ? count,0 on a faulty link."""
    c = BoardClient(path, timeout=0.2)
    for _ in range(10):                  # opening may meet a fault too
        try:
            c.open()
            break
        except Exception:
            time.sleep(0.1)
    with c:
        size = 2 * count * c.caps["adcs"]
        before, t = c.stats["exchanges"], time.perf_counter()
        for _ in range(repeats):
            c.query_block("ACQ?", count, 0, expected_len=size)
        wall = time.perf_counter() - t
        return size * repeats / wall, (c.stats["exchanges"] - before) / repeats


def sample_cost(path: str, count: int, repeats: int) -> float:
    """Host CPU s per SerialBoard.sample(count) (query, CRC check, conversion to volts)."""
    with SerialBoard(path, load_network("divider")) as sb:
        sb.clamp(np.array([[1.0]]))
        sb.sample(count)
        cpu = time.process_time()
        for _ in range(repeats):
            sb.sample(count)
        return (time.process_time() - cpu) / repeats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bauds", type=int, nargs="*", default=[115200, 1000000])
    ap.add_argument("--fault-rates", type=float, nargs="*", default=[],
                    help="also measure unpaced throughput at these rates per fault kind")
    ap.add_argument("--fault-repeats", type=int, default=300, help="acquisitions per fault rate")
    ap.add_argument("--block", type=int, default=4096, help="payload bytes per ACQ? (approx.)")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = ap.parse_args(argv)
    adcs = 3                                     # the emulator profile on the divider: 0, in, out
    count = max(1, args.block // (2 * adcs))
    rows = []
    with threadpool_limits(1):
        proc, path = start_emulator(None)
        try:
            fast, cpu_unpaced, size = acquisitions(path, count, 200)
            sample_cpu = sample_cost(path, count, 200)
        finally:
            proc.terminate()
            proc.wait()
        for baud in args.bauds:
            line = baud / 10.0
            repeats = max(3, int(args.seconds * line / size))
            raw = raw_baseline(baud, size, repeats)
            proc, path = start_emulator(baud)
            try:
                rate, cpu, _ = acquisitions(path, count, repeats)
            finally:
                proc.terminate()
                proc.wait()
            rows.append((baud, line, raw, rate, cpu, repeats))
        faulty = []
        for r in [0.0] + [r for r in args.fault_rates if r > 0]:
            proc, path = start_emulator(None, r)
            try:
                faulty.append((r,) + faulty_acquisitions(path, count, args.fault_repeats))
            finally:
                proc.terminate()
                proc.wait()
    print(f"block: ACQ? {count},0 -> {size} payload bytes ({adcs} channels); "
          f"unpaced: {fast / 1e6:.1f} MB/s, {size / fast * 1e3:.2f} ms per acquisition, "
          f"host CPU {cpu_unpaced * 1e3:.2f} ms per query_block, {sample_cpu * 1e3:.2f} ms per "
          f"SerialBoard.sample({count})")
    print("| baud | line rate B/s | raw paced link B/s (baseline) | ACQ? payload B/s | ACQ? / line rate "
          "| ACQ? / raw | host CPU per ACQ? ms | acquisitions |")
    print("|---|---|---|---|---|---|---|---|")
    for baud, line, raw, rate, cpu, repeats in rows:
        print(f"| {baud} | {line:.0f} | {raw:.0f} ({raw / line:.3f}) | {rate:.0f} | {rate / line:.3f} "
              f"| {rate / raw:.3f} | {cpu * 1e3:.2f} | {repeats} |")
    if args.fault_rates:
        print(f"\nunpaced, drop, corrupt and delay (0.05 s) each at the rate; {args.fault_repeats} "
              f"acquisitions each; client timeout 0.2 s")
        print("| rate per kind | ACQ? payload B/s | / fault-free | exchanges per acquisition |")
        print("|---|---|---|---|")
        for r, rate, per in faulty:
            print(f"| {r:g} | {rate:.0f} | {rate / faulty[0][1]:.3f} | {per:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
