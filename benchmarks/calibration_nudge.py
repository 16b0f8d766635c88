"""Bias and standard error of the fluctuation-dissipation estimate of T against the size of
its nudge currents (``calibrate(..., nudge_sigmas=k)``: each output's mean moves by k reading
standard deviations), on the linear divider and the diode network xor_diode.

    OPENBLAS_NUM_THREADS=1 python benchmarks/calibration_nudge.py

For each network and k: 6 seeds x 2 conductance settings, 4,000 readings per run, injected
T = 1e-7 W. Prints the mean relative deviation of T from the truth (with its standard error
over the 12 estimates), the mean z-score and the mean reported relative standard error.
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analog_ep.calibration import calibrate  # noqa: E402
from analog_ep.graph import load_network  # noqa: E402
from analog_ep.models.resistive import compile_network  # noqa: E402
from analog_ep.substrates.emulated import EmulatedBoard  # noqa: E402

T = 1e-7
SEEDS = 6


def row(model, k):
    rel, z, se = [], [], []
    for seed in range(SEEDS):
        board = EmulatedBoard(model, temperature=T, rng=np.random.default_rng(200 + seed))
        rec = calibrate(board, model, samples=4000, method="fdt", nudge_sigmas=k)
        for r in rec.data["methods"]["fdt"]:
            rel.append(r["value"] / T - 1)
            z.append((r["value"] - T) / r["stderr"])
            se.append(r["stderr"] / T)
    rel = np.array(rel)
    return rel.mean(), rel.std(ddof=1) / np.sqrt(len(rel)), np.mean(z), np.mean(se)


def main():
    warnings.simplefilter("ignore")
    print("| network | nudge (reading s.d.) | mean rel. deviation of T | mean z | mean rel. s.e. |")
    print("|---|---|---|---|---|")
    t0 = time.perf_counter()
    with threadpool_limits(1):
        for name in ("divider", "xor_diode"):
            model = compile_network(load_network(name))
            for k in (1.0, 1.5, 2.0, 3.0):
                m, s, z, se = row(model, k)
                print(f"| {name} | {k:g} | {m:+.2%} +- {s:.2%} | {z:+.2f} | {se:.2%} |", flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s wall")


if __name__ == "__main__":
    main()
