"""The files a training run writes: ``metrics.json``, ``metrics.csv``, ``params.json`` and
``curves.png``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .checkpoint import write_atomic
from .config import TrainResult

CSV_COLUMNS = ("epoch", "seed", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
               "running_loss", "running_accuracy", "seconds", "cpu_seconds", "eval_seconds")

#: Per-epoch physical cost columns, when the objective reports them (docs/reporting.md).
PHYSICAL_COLUMNS = ("pulses", "pulses_per_device", "write_energy_J", "power_W", "settling_time_s")


def physical_summary(final: dict) -> str:
    """One line of the physical cost per epoch in ``final`` ('' when there is none)."""
    parts = []
    if "pulses_per_epoch" in final:
        parts.append(f"{final['pulses_per_epoch']:.4g} pulses/epoch "
                     f"({final.get('pulses_per_device_per_epoch', 0.0):.3g} per device)")
    if final.get("write_energy_J_per_epoch") is not None:
        parts.append(f"write energy {final['write_energy_J_per_epoch']:.3g} J/epoch")
    if final.get("power_W") is not None:
        parts.append(f"{final['power_W']:.3g} W per equilibrium")
    if final.get("settling_time_s") is not None:
        parts.append(f"settling {final['settling_time_s']:.3g} s")
    return ", ".join(parts)


def write_results(out: Path, result: TrainResult, units: str = "S") -> None:
    """metrics.json, metrics.csv, params.json and (with matplotlib) curves.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = {"final": result.final, "epochs": result.epochs, "seed": result.seed, "config": result.config}
    write_atomic(out / "metrics.json", lambda fh: fh.write(json.dumps(metrics, indent=1).encode()))
    # then the physical cost's columns the rows carry (pulses, energy, power, settling time)
    physical = [k for k in PHYSICAL_COLUMNS if any(k in row for row in result.epochs)]
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS + tuple(physical), extrasaction="ignore")
        writer.writeheader()
        for row in result.epochs:
            writer.writerow(row)
    params = {"seed": result.seed, "units": units,
              "parameters": {n: float(v) for n, v in zip(result.param_names, result.theta)}}
    write_atomic(out / "params.json", lambda fh: fh.write(json.dumps(params, indent=1).encode()))
    plot_curves(out / "curves.png", result.epochs)


def plot_curves(path: Path, epochs: list[dict]) -> bool:
    """Loss and accuracy per epoch; returns False (and writes nothing) without epochs."""
    # imported here: pyplot costs about 0.3 s of start-up that most commands never need
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not epochs:
        return False
    x = [e["epoch"] for e in epochs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, label in (("train_loss", "train"), ("test_loss", "test")):
        a.plot(x, [e[key] for e in epochs], marker="o", label=label)
    a.set_xlabel("epoch"), a.set_ylabel("loss (V$^2$)"), a.set_yscale("log"), a.legend()
    for key, label in (("train_accuracy", "train"), ("test_accuracy", "test")):
        b.plot(x, [e[key] if e[key] is not None else np.nan for e in epochs], marker="o", label=label)
    b.set_xlabel("epoch"), b.set_ylabel("accuracy"), b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
