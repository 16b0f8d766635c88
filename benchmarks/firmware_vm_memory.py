"""GC heap of the reference firmware inside the real MicroPython VM over a full conformance
run.

Starts the firmware in the MicroPython VM (``drivers/firmware/vm/bridge.mjs``, the
WebAssembly port under Node, only ``machine`` stubbed) on a pty, reads its GC heap
(``gc.mem_free()``, ``gc.mem_alloc()`` after ``gc.collect()``), runs the whole board
conformance suite against it as a device (``pytest tests/test_serial_conformance.py
--device PTY --device-profile pico``: the same VM serves every test, as a plugged-in board
would), reads the heap again, and prints a Markdown table. ``peak_alloc`` is the most
allocated right after any command line was handled, before the next collection.

The VM starts with the 192 KiB heap of a Raspberry Pi Pico and grows it on demand, so its
``mem_free`` counts the room it may still grow into (128 MiB); ``mem_alloc`` is what
the firmware holds.

Usage: ``python benchmarks/firmware_vm_memory.py`` (needs node and the pinned npm package;
the error message names the install command).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "drivers"))
from firmware.sim import MICROPYTHON_VERSION, MicroPythonBoard  # noqa: E402


def main() -> None:
    rows, failed = [], None
    with MicroPythonBoard() as vm:
        rows.append(("after start-up", vm.memory()))
        for k in (1, 2):
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                  str(ROOT / "tests" / "test_serial_conformance.py"), "-k", "device",
                                  "--device", vm.path, "--device-profile", "pico"],
                                 cwd=ROOT, env=env, capture_output=True, text=True)
            summary = [line for line in run.stdout.splitlines() if " passed" in line or " failed" in line]
            rows.append((f"after conformance run {k} ({summary[-1] if summary else '?'})", vm.memory()))
            if run.returncode != 0:
                failed = run.stdout[-3000:]
    print(f"MicroPython {MICROPYTHON_VERSION} (WebAssembly port), reference firmware on simulated chips")
    print("| when | gc.mem_free() | gc.mem_alloc() | peak_alloc since the row before |")
    print("|---|---|---|---|")
    for when, m in rows:
        print(f"| {when} | {m['mem_free']} | {m['mem_alloc']} | {m['peak_alloc']} |")
    if failed:
        sys.exit(failed)


if __name__ == "__main__":
    main()
