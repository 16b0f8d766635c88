"""Train the bundled quantum networks on XOR and Iris through the shared trainer (medians over seeds).

Each seed is one ``analog_ep.training.train`` run, the same as
``analog-ep train --network quantum_<dataset> --dataset <dataset> --rule ep --seed S``;
the numbers go to benchmarks/RESULTS.md.

    OPENBLAS_NUM_THREADS=1 python benchmarks/quantum_train.py --dataset xor
    OPENBLAS_NUM_THREADS=1 python benchmarks/quantum_train.py --dataset xor --shots 2000 --beta 0.2
    OPENBLAS_NUM_THREADS=1 python benchmarks/quantum_train.py --dataset iris
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

from analog_ep.learning.config import TrainConfig
from analog_ep.training import train


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("xor", "iris"), default="xor")
    p.add_argument("--network", default=None, help="default: quantum_<dataset>")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="default: the trainer's per data set")
    p.add_argument("--lr", type=float, default=None, help="default: the trainer's per data set")
    p.add_argument("--batch", type=int, default=None, help="default: the trainer's per data set")
    p.add_argument("--rule", default="ep")
    p.add_argument("--beta", type=float, default=None, help="default: the family's (0.05)")
    p.add_argument("--shots", type=int, default=None, help="default: exact expectations")
    a = p.parse_args(argv)
    network = a.network or f"quantum_{a.dataset}"
    runs = []
    with threadpool_limits(1):
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            t0 = time.perf_counter()
            cfg = TrainConfig(dataset=a.dataset, network=network, rule=a.rule, beta=a.beta,
                              samples=a.shots, epochs=a.epochs, batch_size=a.batch, lr=a.lr,
                              seed=seed, progress=False)
            f = train(cfg).final
            r = {"seed": seed, "train_accuracy": f["train_accuracy"], "test_accuracy": f["test_accuracy"],
                 "train_loss": f.get("train_loss"), "seconds": round(time.perf_counter() - t0, 1)}
            print(json.dumps(r), flush=True)
            runs.append(r)
    med = {k: float(np.median([r[k] for r in runs])) for k in ("train_accuracy", "test_accuracy")}
    print(json.dumps({"network": network, "dataset": a.dataset, "rule": a.rule, "beta": a.beta,
                      "shots": a.shots, "epochs": a.epochs, "batch": a.batch, "lr": a.lr,
                      "median": med}))


if __name__ == "__main__":
    main()
