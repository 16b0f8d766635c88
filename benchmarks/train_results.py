"""Classical EP on emulated diode networks: the time of one MNIST-5k ``ep`` epoch against
one epoch of the numpy MLP of the same size (benchmarks/mlp_baseline.py), alternated in this
process so that both see the same machine load (BLAS pinned to one thread).

    python benchmarks/train_results.py            # ep epoch / MLP epoch, same load

The accuracy runs of RESULTS.md ("Classical EP on emulated diode networks") are sweeps,
each cell one ``analog-ep train`` with the data set's defaults; the MLP rows are
``python benchmarks/mlp_baseline.py --datasets mnist5k [--epochs 12]``:

    analog-ep sweep benchmarks/sweeps/train_results.toml --out runs/train_results
    python benchmarks/sweep_table.py runs/train_results --table train
    analog-ep sweep benchmarks/sweeps/train_mnist5k.toml --out runs/train_mnist5k
    python benchmarks/sweep_table.py runs/train_mnist5k --table errors --at-epochs 6 12
    analog-ep sweep benchmarks/sweeps/train_mnist5k_30.toml --out runs/train_mnist5k_30
    python benchmarks/sweep_table.py runs/train_mnist5k_30 --table errors

Seconds per epoch are the training part (all minibatch gradients and updates over the
training split), wall clock; the evaluation after the epoch is excluded.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from analog_ep.datasets import load_dataset
from analog_ep.learning.config import TrainConfig
from analog_ep.training import train

sys.path.insert(0, str(Path(__file__).parent))
from mlp_baseline import MLPConfig, train_mlp  # noqa: E402


def timing_ratio(rounds: int = 2) -> dict:
    """Wall seconds of one training epoch of MNIST-5k with ``ep`` (default network) against
    one epoch of the numpy MLP, alternated round by round; the medians and their ratio."""
    data = load_dataset("mnist5k")
    ep, mlp = [], []
    for k in range(rounds):
        mlp.append(train_mlp(data, MLPConfig(epochs=1), np.random.default_rng(k)).seconds_per_epoch)
        r = train(TrainConfig(dataset="mnist5k", rule="ep", seed=k, epochs=1, progress=False, eval_train=False))
        ep.append(r.final["seconds_per_epoch"])
    return {"ep": float(np.median(ep)), "mlp": float(np.median(mlp)), "ratio": float(np.median(ep) / np.median(mlp))}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2, help="alternated rounds (default: 2)")
    args = p.parse_args(argv)
    with threadpool_limits(1):
        t = timing_ratio(args.rounds)
    print(f"MNIST-5k epoch: ep {t['ep']:.2f} s, numpy MLP {t['mlp']:.3f} s, ratio {t['ratio']:.1f} "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
