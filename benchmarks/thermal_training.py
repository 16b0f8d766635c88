"""The digits networks of the thermal headline results, written to files for the sweep
``benchmarks/sweeps/thermal_headline.toml`` (whose digits rows name them with ``network``).

The training runs themselves are sweeps (RESULTS.md, "Thermal EP"):

    python benchmarks/thermal_training.py                  # writes runs/networks/digits-knee-0.25-s{0,1,2}.json
    analog-ep sweep benchmarks/sweeps/thermal_headline.toml --out runs/thermal_headline
    python benchmarks/sweep_table.py runs/thermal_headline --table thermal-headline
    analog-ep sweep benchmarks/sweeps/thermal_temperature.toml --out runs/thermal_temperature
    python benchmarks/sweep_table.py runs/thermal_temperature --table thermal-temperature
    analog-ep sweep benchmarks/sweeps/thermal_digits_default.toml --out runs/thermal_digits_default
    python benchmarks/sweep_table.py runs/thermal_digits_default --table thermal-headline

Run from the repository root: the sweep file names the networks by paths relative to it.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from analog_ep.graph import save_network
from analog_ep.networks import layered_diode_network


def digits_network(seed: int, folder: str) -> str:
    """The digits network of the headline runs, written to ``folder``: 128-100-20, knees at
    +-0.25 V, every initial conductance uniform in (0.05, 0.5) g_max, drawn as the trainer
    draws the default network's (``default_rng([seed, 2])``); returns its path."""
    G = layered_diode_network(64, 10, (100,), rng=np.random.default_rng([seed, 2]), name="drn-digits-knee-0.25",
                              strong_inputs=10**9)
    path = os.path.join(folder, f"digits-knee-0.25-s{seed}.json")
    save_network(G, path)
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", default="runs/networks", help="where to write them (default: runs/networks)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = p.parse_args(argv)
    os.makedirs(a.folder, exist_ok=True)
    for seed in a.seeds:
        print(digits_network(seed, a.folder))


if __name__ == "__main__":
    main()
