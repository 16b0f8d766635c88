"""Training with the thermal rules on emulated diode networks: the headline results and the
temperature sweep recorded in benchmarks/RESULTS.md.

    python benchmarks/thermal_training.py headline [--workers 2]
    python benchmarks/thermal_training.py sweep [--workers 2]

``headline``: XOR and Iris with the plain covariance rule ``thermal`` (readings only),
digits with ``thermal-cv`` (Stein control variates), 3 seeds each, at the default
temperature. ``sweep``: Iris, seed 0, ``thermal``, ``thermal-nudged`` and ``low-t`` (order 1)
at temperatures over three decades. Each run is one ``train(TrainConfig(...))`` in a worker
process with BLAS pinned to one thread; the table gives test accuracy, readings per input
per update and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from analog_ep.learning.thermal_rules import DEFAULT_TEMPERATURE  # noqa: E402

#: (data set, rule, samples per input) of the headline results.
HEADLINE = [("xor", "thermal", 128), ("iris", "thermal", 128), ("digits", "thermal-cv", 32)]
#: Rules of the sweep and their readings per input per update (nudged: per phase).
SWEEP_RULES = [("thermal", 128), ("thermal-nudged", 64), ("low-t", None)]
SWEEP_T = [1e-8, 1e-7, 1e-6, 1e-5]


def run(job: dict) -> dict:
    from threadpoolctl import threadpool_limits

    from analog_ep.learning.trainer import TrainConfig, train
    t0 = time.time()
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = train(TrainConfig(progress=False, **job))
            final = result.final
        except Exception as exc:            # a failed run is a result of the sweep
            final = {"error": f"{type(exc).__name__}: {exc}"}
    return {"job": job, "final": final, "seconds": time.time() - t0,
            "warnings": sorted({str(w.message)[:90] for w in caught})}


def readings(rule: str, samples: int | None) -> str:
    if rule == "low-t":
        return "0 (2 nudged equilibria)"
    return f"{2 * samples} ({samples} x 2 phases)" if rule == "thermal-nudged" else str(samples)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("headline", "sweep"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", default=None, help="also write every run's result here")
    a = p.parse_args(argv)
    if a.what == "headline":
        jobs = [dict(dataset=ds, rule=rule, samples=n, seed=seed, temperature=DEFAULT_TEMPERATURE)
                for ds, rule, n in HEADLINE for seed in (0, 1, 2)]
    else:
        jobs = [dict(dataset="iris", rule=rule, samples=n, seed=0, temperature=T, order=1 if rule == "low-t" else None)
                for T in SWEEP_T for rule, n in SWEEP_RULES]
    with ProcessPoolExecutor(a.workers) as pool:
        results = list(pool.map(run, jobs))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=1)
    if a.what == "headline":
        print("| data set | rule | readings/input/update | test accuracy, median (seeds 0, 1, 2) | minutes per run |")
        print("|---|---|---|---|---|")
        for ds, rule, n in HEADLINE:
            rs = [r for r in results if r["job"]["dataset"] == ds]
            acc = [r["final"].get("test_accuracy", float("nan")) for r in rs]
            print(f"| {ds} | {rule} | {readings(rule, n)} | {statistics.median(acc):.3f} "
                  f"({', '.join(f'{x:.3f}' for x in acc)}) | {statistics.mean(r['seconds'] for r in rs) / 60:.1f} |")
    else:
        print("| T (W) | rule | readings/input/update | test accuracy | train loss | minutes |")
        print("|---|---|---|---|---|---|")
        for r in results:
            j, f = r["job"], r["final"]
            acc = f"{f['test_accuracy']:.3f}" if "test_accuracy" in f else f["error"][:60]
            loss = f"{f['train_loss']:.4f}" if "train_loss" in f else "-"
            print(f"| {j['temperature']:.0e} | {j['rule']} | {readings(j['rule'], j['samples'])} | {acc} | "
                  f"{loss} | {r['seconds'] / 60:.1f} |")
    for r in results:
        if r["warnings"]:
            print(f"warnings in {r['job']}: {r['warnings']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
