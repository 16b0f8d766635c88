"""Train the bundled oscillator examples with ``analog-ep train`` and report the median
accuracy over seeds, per data set and rule.

Each run is the CLI in a subprocess with BLAS pinned to one thread
(``OPENBLAS_NUM_THREADS=1`` and friends), ``--jobs`` runs at a time. Time is reported as
the ratio of each rule's seconds per epoch to the ``ep`` rule's on the same data set,
measured in the same invocation (the baseline).

    python benchmarks/oscillator_train.py                     # XOR and Iris, ep and thermal, seeds 0 1 2
    python benchmarks/oscillator_train.py --datasets xor --rules ep --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

#: Per data set: network and extra CLI flags (none: epochs, batch size and learning rate are
#: the ones the network file recommends, so these runs are plain ``analog-ep train``).
SETTINGS = {
    "xor": ("oscillator_xor", []),
    "iris": ("oscillator_iris", []),
}
THREADS = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def command(dataset: str, rule: str, seed: int, out: Path) -> list[str]:
    network, flags = SETTINGS[dataset]
    return [sys.executable, "-m", "analog_ep", "train", "--network", network, "--dataset", dataset,
            "--rule", rule, "--seed", str(seed), "--no-progress", "--format", "json",
            "--out", str(out), *flags]


def run(dataset: str, rule: str, seed: int, root: Path) -> dict:
    out = root / f"{dataset}-{rule}-s{seed}"
    cmd = command(dataset, rule, seed, out)
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **THREADS})
    if proc.returncode != 0:
        return {"dataset": dataset, "rule": rule, "seed": seed, "error": proc.stderr.strip()[-500:]}
    metrics = json.loads((out / "metrics.json").read_text())
    settings = {k: metrics["config"][k] for k in ("epochs", "batch_size", "lr", "lr_schedule")}
    return {"dataset": dataset, "rule": rule, "seed": seed, "settings": settings, **metrics["final"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(SETTINGS))
    p.add_argument("--rules", nargs="+", default=["ep", "thermal"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default=None, help="keep the run folders here (default: a temporary folder)")
    args = p.parse_args(argv)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="osc-bench-"))
    jobs = [(d, r, s) for d in args.datasets for r in args.rules for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: run(*j, root), jobs))
    for r in results:
        if "error" in r:
            print(f"{r['dataset']} {r['rule']} seed {r['seed']}: FAILED: {r['error']}")
    print("| data set | rule | test accuracy per seed | median | train accuracy (median) | s/epoch | time vs ep |")
    print("|---|---|---|---|---|---|---|")
    for d in args.datasets:
        base = [r["seconds_per_epoch"] for r in results if r["dataset"] == d and r["rule"] == "ep" and "error" not in r]
        for rule in args.rules:
            rows = [r for r in results if r["dataset"] == d and r["rule"] == rule and "error" not in r]
            if not rows:
                continue
            acc = [r["test_accuracy"] for r in rows]
            spe = float(np.median([r["seconds_per_epoch"] for r in rows]))
            ratio = f"{spe / np.median(base):.2f}" if base else "n/a"
            print(f"| {d} | {rule} | {', '.join(f'{a:.2f}' for a in acc)} | {np.median(acc):.2f} | "
                  f"{np.median([r['train_accuracy'] for r in rows]):.2f} | {spe:.2f} | {ratio} |")
    for d in args.datasets:
        rows = [r for r in results if r["dataset"] == d and "error" not in r]
        if rows:
            print(f"{d} settings: {rows[0]['settings']}")
    print(f"\nruns in {root}")
    for d in args.datasets:
        print("  " + " ".join(command(d, "RULE", 0, Path("OUT"))[1:]).replace("-m analog_ep", "analog-ep"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
