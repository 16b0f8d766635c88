"""Thermal check in SPICE: ngspice's transient-noise current sources at the emulator's
injected noise intensity give node covariances ``T H^-1``.

The emulator's dynamics (docs/PHYSICS.md, section 5) are ``C dV/dt = -H (V - V*) + xi`` with
injected current noise ``<xi_i(t) xi_i(t')> = 2 T C_i delta(t - t')`` (``T`` in watts), whose
stationary covariance is ``T H^-1``. ngspice's ``trnoise(NA NT 0 0)`` is a sequence of
independent samples of rms ``NA`` every ``NT``, interpolated linearly: its integrated
autocorrelation is ``NA^2 NT``, so each node gets ``NA = sqrt(2 T C_i / NT)``. With
``NT`` a hundredth of the network's shortest time constant the noise is white to ~1 %.

The network: a chain ``in -R1- a -R2- out -R3- 0`` (1 kOhm each, V_in = 1 V), 1 nF at ``a``
and ``out``, ``T = 1e-7 W`` (the emulator's default). One ``ngspice -b`` transient of
``--length`` seconds (default 10 ms, after 0.1 ms of settling; ngspice's seed fixed by
``.options seed``) at NT = 5 ns is written by ``wrdata``; the
covariance of (V_a, V_out) is compared with ``T H^-1``, standard errors from 20 batch means
(each batch hundreds of time constants long). Needs ngspice on the PATH
(``apt-get install ngspice``).

Run: ``python benchmarks/ngspice_thermal.py`` (``--length 1e-2 --seed 1``); the table goes to stdout.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

T = 1e-7            # W, the emulator's default noise temperature
G = 1e-3            # S, each resistor
C = 1e-9            # F, each node capacitance
NT = 5e-9           # s, trnoise sample interval
BATCHES = 20


def run(length: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Measured covariance (2, 2) of (V_a, V_out) and its standard errors."""
    exe = shutil.which("ngspice")
    if exe is None:
        sys.exit("ngspice is not on the PATH; install it with: apt-get install ngspice")
    na = float(np.sqrt(2 * T * C / NT))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "v.txt"
        deck = f"""thermal chain
Vin in 0 DC 1
R1 in a {1 / G!r}
R2 a out {1 / G!r}
R3 out 0 {1 / G!r}
Ca a 0 {C!r}
Cout out 0 {C!r}
Ina 0 a DC 0 trnoise({na!r} {NT!r} 0 0)
Inout 0 out DC 0 trnoise({na!r} {NT!r} 0 0)
.options seed={seed}
.control
tran {NT!r} {length + 1e-4!r} 1e-4
linearize
wrdata {out} v(a) v(out)
quit
.endc
.end
"""
        (Path(tmp) / "deck.cir").write_text(deck)
        proc = subprocess.run([exe, "-b", "deck.cir"], cwd=tmp, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            sys.exit(f"ngspice failed: {(proc.stdout + proc.stderr)[-800:]}")
        data = np.loadtxt(out)
    v = data[:, [1, 3]]
    parts = np.array_split(v, BATCHES)
    covs = np.array([np.cov(p.T) for p in parts])
    return covs.mean(axis=0), covs.std(axis=0, ddof=1) / np.sqrt(BATCHES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=float, default=1e-2, help="simulated time after settling (s)")
    ap.add_argument("--seed", type=int, default=1, help="ngspice's random seed (.options seed)")
    args = ap.parse_args()
    H = G * np.array([[2.0, -1.0], [-1.0, 2.0]])
    exact = T * np.linalg.inv(H)
    cov, se = run(args.length, args.seed)
    print("| entry | T H^-1 (V^2) | ngspice (V^2) | ratio | (ngspice - exact) / SE |")
    print("|---|---|---|---|---|")
    for (i, j), name in zip([(0, 0), (1, 1), (0, 1)], ["var V_a", "var V_out", "cov V_a V_out"]):
        print(f"| {name} | {exact[i, j]:.4g} | {cov[i, j]:.4g} +- {se[i, j]:.2g} | {cov[i, j] / exact[i, j]:.3f} "
              f"| {(cov[i, j] - exact[i, j]) / se[i, j]:+.2f} |")


if __name__ == "__main__":
    main()
