"""Training with the thermal rules on emulated diode networks: the headline results and the
temperature sweep recorded in benchmarks/RESULTS.md.

    python benchmarks/thermal_training.py headline [--workers 2]
    python benchmarks/thermal_training.py sweep [--workers 2]

``headline``: XOR and Iris with the plain covariance rule ``thermal`` (readings only) on
their default networks, digits with ``thermal-cv`` (Stein control variates) on the layered
diode network 128-100-20 with its knees at +-0.25 V and uniform initial conductances
(:func:`digits_network`; the default digits network until the default moved to 0.1 V
knees), 3 seeds each, at the default temperature. ``sweep``: Iris, seed 0, ``thermal``, ``thermal-nudged`` and ``low-t`` (order 1)
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

from analog_ep.physics.noise import RESISTIVE_DEFAULT_TEMPERATURE as DEFAULT_TEMPERATURE  # noqa: E402

#: (data set, rule, samples per input) of the headline results.
HEADLINE = [("xor", "thermal", 128), ("iris", "thermal", 128), ("digits", "thermal-cv", 32)]
#: Rules of the sweep and their readings per input per update (nudged: per phase).
SWEEP_RULES = [("thermal", 128), ("thermal-nudged", 64), ("low-t", None)]
SWEEP_T = [1e-8, 1e-7, 1e-6, 1e-5]


def digits_network(seed: int, folder: str) -> str:
    """The digits network of the headline runs, written to ``folder``: 128-100-20, knees at
    +-0.25 V, every initial conductance uniform in (0.05, 0.5) g_max, drawn as the trainer
    draws the default network's (``default_rng([seed, 2])``)."""
    import numpy as np

    from analog_ep.graph import save_network
    from analog_ep.networks import layered_diode_network
    G = layered_diode_network(64, 10, (100,), rng=np.random.default_rng([seed, 2]), name="drn-digits-knee-0.25",
                              strong_inputs=10**9)
    path = os.path.join(folder, f"digits-knee-0.25-s{seed}.json")
    save_network(G, path)
    return path


def run(job: dict) -> dict:
    import tempfile

    from threadpoolctl import threadpool_limits

    from analog_ep.learning.config import TrainConfig
    from analog_ep.training import train
    t0 = time.time()
    job = dict(job)
    folder = tempfile.mkdtemp()
    if job.pop("digits_network", False):
        job.update(network=digits_network(job["seed"], folder), lr=0.005)
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = train(TrainConfig(progress=False, **job))
            final = result.final
        except Exception as exc:            # a failed run is a result of the sweep
            final = {"error": f"{type(exc).__name__}: {exc}"}
    job.pop("network", None)
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
    p.add_argument("--only", default=None, help="headline: only this data set")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="headline seeds")
    p.add_argument("--default-digits", action="store_true",
                   help="headline: train digits on today's default network and trainer settings")
    a = p.parse_args(argv)
    if a.what == "headline":
        jobs = [dict(dataset=ds, rule=rule, samples=n, seed=seed, temperature=DEFAULT_TEMPERATURE,
                     digits_network=ds == "digits" and not a.default_digits)
                for ds, rule, n in HEADLINE for seed in a.seeds if a.only in (None, ds)]
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
            if not rs:
                continue
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
