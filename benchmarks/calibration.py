"""Noise-temperature calibration on the emulated board: accuracy, error bars, verdicts, cost.

For each injected temperature (three decades) and seed, calibrates a three-free-node
ladder with both methods and reports, per method, the coverage of the 3-standard-error
interval, the z-score spread (1 when the standard errors are right) and the mean relative
standard error. Then the verdict rates for Johnson noise alone, ADC noise and a sampled time
series, and the cost of a calibration as a ratio to the baseline of drawing the same number
of readings in the same run. One BLAS thread.

    python benchmarks/calibration.py [--seeds 20] [--samples 4000]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import networkx as nx
import numpy as np
from threadpoolctl import threadpool_limits

from analog_ep.calibration import calibrate
from analog_ep.schema import normalise_resistive
from analog_ep.models.resistive import compile_network
from analog_ep.physics.noise import NoiseModel
from analog_ep.substrates.emulated import EmulatedBoard


def ladder():
    G = nx.MultiGraph(family="resistive", name="ladder")
    G.add_node("in", role="input", voltage=1.0)
    G.add_node("0", role="ground")
    G.add_node("out", role="output")
    for key, a, b, g, train in (("R1", "in", "a", 1e-3, True), ("R2", "a", "b", 2e-3, True),
                                ("R3", "b", "out", 1.5e-3, True), ("R4", "a", "0", 5e-4, False),
                                ("R5", "b", "0", 7e-4, False), ("R6", "out", "0", 1e-3, True)):
        G.add_edge(a, b, key=key, element="resistor", conductance=g, trainable=train)
    return compile_network(normalise_resistive(G))


CASES = {
    "injected, independent": (1e-8, {}),
    "injected, time series (0.2 tau)": (1e-8, {"sample_interval": 2e-7}),
    "Johnson only, 300 K": (0.0, {"injected": False, "johnson_temperature": 300.0}),
    "injected + ADC noise 1.5 mV": (1e-8, {"adc_noise": 1.5e-3}),
    "injected + ADC noise 0.3 mV": (1e-8, {"adc_noise": 3e-4}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--samples", type=int, default=4000)
    args = ap.parse_args()
    model = ladder()
    print(f"ladder: {model!r}; {args.samples} readings per run; seeds 0..{args.seeds - 1}\n")
    print("| T (W) | method | estimates | within 3 s.e. | z-score s.d. | mean rel. s.e. |")
    print("|---|---|---|---|---|---|")
    for T in (1e-9, 1e-8, 1e-7, 1e-6):
        z = {"equipartition": [], "fdt": []}
        rel = {"equipartition": [], "fdt": []}
        for seed in range(args.seeds):
            b = EmulatedBoard(model, temperature=T, rng=np.random.default_rng(seed))
            rec = calibrate(b, model, samples=args.samples)
            for name, runs in rec.data["methods"].items():
                for r in runs:
                    z[name].append((r["value"] - T) / r["stderr"])
                    rel[name].append(r["stderr"] / T)
        for name in z:
            zz = np.array(z[name])
            print(f"| {T:g} | {name} | {len(zz)} | {np.mean(np.abs(zz) < 3):.0%} | {zz.std():.2f} | "
                  f"{np.mean(rel[name]):.2%} |")

    print("\n| noise | verdicts over seeds | Boltzmann fraction (median) |")
    print("|---|---|---|")
    for label, (T, noise) in CASES.items():
        verdicts, fractions = Counter(), []
        for seed in range(args.seeds):
            b = EmulatedBoard(model, temperature=T, rng=np.random.default_rng(seed), noise=NoiseModel(**noise))
            rec = calibrate(b, model, samples=args.samples)
            verdicts[rec.verdict] += 1
            fractions.append(rec.data["consistency"]["statistic"])
        print(f"| {label} | {dict(verdicts)} | {np.median(fractions):.3f} |")

    # cost: a full calibration (2 settings, both methods) against drawing its readings
    b = EmulatedBoard(model, temperature=1e-8, rng=np.random.default_rng(0))
    runs = 2 * (2 + 2 * len(model.outputs))
    t0 = time.perf_counter()
    for _ in range(5):
        for _ in range(runs):
            b.sample(args.samples)
    base = (time.perf_counter() - t0) / 5
    t0 = time.perf_counter()
    for _ in range(5):
        calibrate(b, model, samples=args.samples)
    cal = (time.perf_counter() - t0) / 5
    print(f"\ncalibration {cal * 1e3:.0f} ms; drawing its {runs} x {args.samples} readings alone "
          f"{base * 1e3:.0f} ms; ratio {cal / base:.1f}")


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
