"""Train the bundled quantum networks on XOR and Iris (medians over seeds).

A small Adam loop over the family's ``Objective``; the numbers go to benchmarks/RESULTS.md.

    OPENBLAS_NUM_THREADS=1 python benchmarks/quantum_train.py --dataset xor
    OPENBLAS_NUM_THREADS=1 python benchmarks/quantum_train.py --dataset xor --shots 2000
    OPENBLAS_NUM_THREADS=1 python benchmarks/quantum_train.py --dataset iris
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

from analog_ep.datasets import load_dataset
from analog_ep.graph import load_network
from analog_ep.quantum_family import (QuantumObjective, decode_outputs, encode_inputs,
                                      encode_targets)


def train_one(network: str, dataset: str, seed: int, *, epochs: int, lr: float, batch: int,
              rule: str, beta: float, shots: int | None, balanced: bool, cosine: bool) -> dict:
    """Adam on mean <C> (constant or cosine-decayed rate); returns train/test accuracy."""
    data = load_dataset(dataset)
    obj = QuantumObjective(load_network(network), rule=rule, beta=beta, shots=shots)
    n_out = len(obj.output_names)
    u_tr, u_te = encode_inputs(data.x_train), encode_inputs(data.x_test)
    negative = -1.0 / (data.n_classes - 1) if balanced and n_out > 1 else -1.0
    d_tr = encode_targets(data.y_train, data.n_classes, n_out, negative)
    root = np.random.SeedSequence(seed)
    init_rng, data_rng, noise_rng = (np.random.default_rng(s) for s in root.spawn(3))
    theta = obj.initial_parameters(init_rng)
    lo, hi = obj.bounds()
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    step = 0
    n_steps = epochs * -(-len(u_tr) // batch)
    for _ in range(epochs):
        order = data_rng.permutation(len(u_tr))
        for a in range(0, len(order), batch):
            idx = order[a:a + batch]
            g = obj.gradient(theta, u_tr[idx], d_tr[idx], noise_rng).gradient
            step += 1
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g ** 2
            eta = lr * 0.5 * (1 + np.cos(np.pi * step / n_steps)) if cosine else lr
            theta = np.clip(theta - eta * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8), lo, hi)
    acc = lambda u, y: float(np.mean(decode_outputs(obj.predict(theta, u)) == y))
    return {"seed": seed, "train_accuracy": acc(u_tr, data.y_train),
            "test_accuracy": acc(u_te, data.y_test),
            "train_loss": obj.loss(theta, u_tr, d_tr), "skipped": obj.samples_skipped,
            "seen": obj.samples_seen}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("xor", "iris"), default="xor")
    p.add_argument("--network", default=None, help="default: quantum_<dataset>")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--rule", default="ep")
    p.add_argument("--beta", type=float, default=0.05)
    p.add_argument("--shots", type=int, default=None)
    p.add_argument("--cosine", action="store_true", help="decay the learning rate to 0 on a cosine")
    p.add_argument("--balanced", action="store_true", help="one-vs-rest targets +1 / -1/(K-1)")
    a = p.parse_args(argv)
    epochs = a.epochs or (150 if a.dataset == "xor" else 60)
    network = a.network or f"quantum_{a.dataset}"
    runs = []
    with threadpool_limits(1):
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            t0 = time.perf_counter()
            r = train_one(network, a.dataset, seed, epochs=epochs, lr=a.lr, batch=a.batch,
                          rule=a.rule, beta=a.beta, shots=a.shots, balanced=a.balanced,
                          cosine=a.cosine)
            r["seconds"] = round(time.perf_counter() - t0, 1)
            print(json.dumps(r), flush=True)
            runs.append(r)
    med = {k: float(np.median([r[k] for r in runs])) for k in ("train_accuracy", "test_accuracy")}
    print(json.dumps({"network": network, "dataset": a.dataset, "rule": a.rule, "beta": a.beta,
                      "shots": a.shots, "balanced": a.balanced, "cosine": a.cosine, "epochs": epochs,
                      "batch": a.batch, "lr": a.lr, "median": med}))


if __name__ == "__main__":
    main()
