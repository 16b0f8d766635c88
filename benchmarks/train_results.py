"""Classical EP on emulated diode networks: accuracy and time per epoch, EP against the
implicit-function (backpropagation-equivalent) gradient, and, on MNIST-5k, against the numpy
MLP of the same size measured in the same run.

Every run is ``analog_ep.training.train`` with the data set's defaults (the
network of :func:`analog_ep.networks.default_network`, Adam, the epochs and batch size of
``trainer.DEFAULTS``); only the rule and the seed change. BLAS is pinned to one thread.
Seconds per epoch are the training part (all minibatch gradients and updates over the
training split), wall clock and processor time of this process; the evaluation of the two
splits after each epoch is excluded.

    python benchmarks/train_results.py                               # xor, iris, digits: ep and exact
    python benchmarks/train_results.py --datasets mnist5k --rules ep --mlp
    python benchmarks/train_results.py --timing          # ep epoch / MLP epoch, same load
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from analog_ep.learning.config import TrainConfig
from analog_ep.training import train


def run_one(dataset: str, rule: str, seed: int, epochs: int | None) -> dict:
    start = time.perf_counter()
    r = train(TrainConfig(dataset=dataset, rule=rule, seed=seed, epochs=epochs, progress=False))
    return {"dataset": dataset, "rule": rule, "seed": seed, **r.final,
            "test_accuracy_by_epoch": [e["test_accuracy"] for e in r.epochs],
            "wall_seconds": time.perf_counter() - start}


def run_mlp(seeds: list[int], epochs: int) -> list[dict]:
    """The numpy MLP baseline (benchmarks/mlp_baseline.py) on MNIST-5k, doubled inputs."""
    sys.path.insert(0, str(Path(__file__).parent))
    from mlp_baseline import MLPConfig, train_mlp

    from analog_ep.datasets import load_dataset
    data = load_dataset("mnist5k")
    out = []
    for seed in seeds:
        res = train_mlp(data, MLPConfig(epochs=epochs), np.random.default_rng(seed))
        out.append({"dataset": "mnist5k", "rule": "mlp", "seed": seed, "test_accuracy": 1 - float(res.test_error[-1]),
                    "train_accuracy": 1 - float(res.train_error[-1]), "seconds_per_epoch": res.seconds_per_epoch,
                    "test_accuracy_by_epoch": [1 - float(e) for e in res.test_error]})
    return out


def timing_ratio(rounds: int = 2) -> dict:
    """Wall seconds of one training epoch of MNIST-5k with ``ep`` (default network) against
    one epoch of the numpy MLP, alternated in this process so that both see the same
    machine load; returns the medians and their ratio."""
    sys.path.insert(0, str(Path(__file__).parent))
    from mlp_baseline import MLPConfig, train_mlp

    from analog_ep.datasets import load_dataset
    data = load_dataset("mnist5k")
    ep, mlp = [], []
    for k in range(rounds):
        mlp.append(train_mlp(data, MLPConfig(epochs=1), np.random.default_rng(k)).seconds_per_epoch)
        r = train(TrainConfig(dataset="mnist5k", rule="ep", seed=k, epochs=1, progress=False, eval_train=False))
        ep.append(r.final["seconds_per_epoch"])
    return {"ep": float(np.median(ep)), "mlp": float(np.median(mlp)), "ratio": float(np.median(ep) / np.median(mlp))}


def table(rows: list[dict]) -> str:
    lines = ["| data set | rule | test accuracy (median; seeds) | train accuracy (median) | s/epoch wall | s/epoch cpu |",
             "|---|---|---|---|---|---|"]
    keys = sorted({(r["dataset"], r["rule"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for ds, rule in keys:
        rs = [r for r in rows if r["dataset"] == ds and r["rule"] == rule]
        acc = [r["test_accuracy"] for r in rs]
        tr = [r["train_accuracy"] for r in rs]
        wall = np.median([r["seconds_per_epoch"] for r in rs])
        cpu = np.median([r.get("cpu_seconds_per_epoch", np.nan) for r in rs])
        lines.append(f"| {ds} | {rule} | {np.median(acc):.3f} ({', '.join(f'{a:.3f}' for a in acc)}) | "
                     f"{np.median(tr):.3f} | {wall:.2g} | {cpu:.2g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["xor", "iris", "digits"])
    p.add_argument("--rules", nargs="+", default=["ep", "exact"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="override the data sets' default epochs")
    p.add_argument("--mlp", action="store_true", help="also train the numpy MLP on MNIST-5k")
    p.add_argument("--json", default=None, help="write every run's numbers to this file")
    p.add_argument("--timing", action="store_true",
                   help="only time an MNIST-5k ep epoch against an MLP epoch, alternated")
    args = p.parse_args(argv)
    rows = []
    if args.timing:
        with threadpool_limits(1):
            t = timing_ratio()
        print(f"MNIST-5k epoch: ep {t['ep']:.2f} s, numpy MLP {t['mlp']:.3f} s, ratio {t['ratio']:.1f} "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        return
    with threadpool_limits(1):
        for ds in args.datasets:
            for rule in args.rules:
                for seed in args.seeds:
                    row = run_one(ds, rule, seed, args.epochs)
                    rows.append(row)
                    print(f"{ds:8s} {rule:6s} seed {seed}: test {row['test_accuracy']:.3f} train "
                          f"{row['train_accuracy']:.3f}  {row['seconds_per_epoch']:.2f} s/epoch wall, "
                          f"{row['cpu_seconds_per_epoch']:.2f} cpu  ({row['wall_seconds']:.0f} s)", flush=True)
        if args.mlp:
            epochs = args.epochs or 6
            for row in run_mlp(args.seeds, epochs):
                rows.append(row)
                print(f"mnist5k  mlp    seed {row['seed']}: test {row['test_accuracy']:.3f}", flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
