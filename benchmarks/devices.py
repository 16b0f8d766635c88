"""Learning on imperfect devices: test accuracy of EP on emulated pulsed devices against the
number of states, the asymmetry, the device-to-device spread and the stuck fraction, medians
over fabrications (docs/devices.md), for three ways of training:

* ``in-situ EP``: ``ep`` gradients measured on the fabricated network, written by pulses;
* ``transfer``: ``ep`` on ideal parameters, then program-and-verify onto the fabricated
  devices (``--program verify``), no training on them;
* ``exact``: the exact (implicit-function) gradient of the fabricated network's readings,
  written by pulses: what a perfect gradient does under the same devices.

Then the digits targets: in-situ EP with ``reram-softbounds`` at 20 % spread and with 5 %
stuck devices against ideal-device EP, and a damage experiment (train on reram-softbounds,
make 10 % of the same devices stuck, retrain a few epochs).

    python benchmarks/devices.py --out runs/devices            # the RESULTS.md tables
    python benchmarks/devices.py --quick --out runs/devices-q  # 1 fabrication, 2 epochs

Every run is one :func:`analog_ep.training.train` with the data set's default network and
settings, BLAS pinned to one thread. A fabrication is the run's ``--seed`` (devices drawn
from ``[seed, 5]``, the network's initial conductances from the same seed). The axes'
devices are written as device files in OUT/devices/.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from analog_ep.datasets import load_dataset
from analog_ep.devices.spec import device_path
from analog_ep.drawing import apply_parameters
from analog_ep.graph import save_network
from analog_ep.networks import default_network
from analog_ep.training import config_from_options, train

#: An idealised pulsed device (constant step, no noise, no spread): the states and
#: asymmetry axes change one property of it. 10 uS .. 100 uS, as the ReRAM presets.
PLAIN = {"family": "constant-step", "g_min": 1e-5, "g_max": 1e-4, "initial": 0.5}
#: The ReRAM preset's own lines, for the spread and stuck axes (its noise kept).
RERAM = "reram-softbounds"

AXES = {
    "states": [16, 64, 256, 1024],
    "asymmetry": [0.0, 0.1, 0.25, 0.5],
    "spread": [0.0, 0.1, 0.2, 0.3],
    "stuck": [0.0, 0.02, 0.05, 0.1],
}


def toml_value(v) -> str:
    return f'"{v}"' if isinstance(v, str) else repr(v)


def write_device(folder: Path, name: str, top: dict, tables: dict | None = None, base: str | None = None) -> str:
    """A device file: ``top`` keys and ``tables`` ({table: {key: value}}), starting from the
    preset ``base`` (its file with those keys and tables replaced)."""
    lines = []
    if base is not None:
        skip = False
        for line in device_path(base).read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith("["):
                skip = stripped.strip("[]") in (tables or {})
            key = stripped.split("=")[0].strip()
            if skip or (not stripped.startswith("[") and key in top) or key == "name":
                continue
            lines.append(line)
    lines = [f"name = {toml_value(name)}"] + [f"{k} = {toml_value(v)}" for k, v in top.items()] + lines
    for t, kv in (tables or {}).items():
        lines += [f"[{t}]"] + [f"{k} = {toml_value(v)}" for k, v in kv.items()]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def axis_device(folder: Path, axis: str, value) -> str:
    if axis == "states":
        return write_device(folder, f"states-{value}", {**PLAIN, "states": int(value)})
    if axis == "asymmetry":
        return write_device(folder, f"asymmetry-{value}", {**PLAIN, "states": 256, "asymmetry": float(value)})
    if axis == "spread":
        return write_device(folder, f"spread-{value}", {}, {"spread": {"dg_min": value, "g_min": value,
                                                                       "g_max": value, "asymmetry": 0.01}}, RERAM)
    return write_device(folder, f"stuck-{value}", {}, {"faults": {"stuck": value, "stuck_at": "random"}}, RERAM)


def run(dataset: str, seed: int, epochs: int, max_train: int | None, **options) -> dict:
    cfg = config_from_options({"dataset": dataset, "seed": seed, "epochs": epochs, "max_train": max_train,
                               "out": None, "quiet": True, "no_progress": True, **options})
    r = train(cfg)
    return {"test_accuracy": r.final["test_accuracy"], "theta": r.theta, "names": r.param_names,
            "pulses_per_epoch": r.final.get("pulses_per_epoch")}


def trained_network(folder: Path, dataset: str, seed: int, result: dict) -> str:
    """The data set's default network of ``seed`` (as a run of that seed builds it) with the
    trained conductances: the start of a transfer or of a retraining."""
    data = load_dataset(dataset)
    G = default_network(dataset, data.x_train.shape[1], data.n_classes, np.random.default_rng([seed, 2]))
    apply_parameters(G, dict(zip(result["names"], map(float, result["theta"]))), "the run")
    path = folder / f"trained-{dataset}-s{seed}-{len(list(folder.iterdir()))}.graphml"
    save_network(G, path)
    return str(path)


def sweep(folder: Path, dataset: str, seeds, epochs: int, max_train: int | None, log) -> dict:
    """Accuracy per axis value, method and seed."""
    nets = folder / "networks"
    nets.mkdir(exist_ok=True)
    ideal = {s: run(dataset, s, epochs, max_train, rule="ep") for s in seeds}
    ideal_nets = {s: trained_network(nets, dataset, s, ideal[s]) for s in seeds}
    log(f"{dataset} ideal ep: {[ideal[s]['test_accuracy'] for s in seeds]}")
    out = {"ideal": [ideal[s]["test_accuracy"] for s in seeds]}
    for axis, values in AXES.items():
        for v in values:
            device = axis_device(folder / "devices", axis, v)
            row = {"in-situ EP": [], "transfer": [], "exact": []}
            for s in seeds:
                row["in-situ EP"].append(run(dataset, s, epochs, max_train, rule="ep", device=device)["test_accuracy"])
                row["transfer"].append(run(dataset, s, 0, max_train, rule="ep", device=device, program="verify",
                                           network=ideal_nets[s])["test_accuracy"])
                row["exact"].append(run(dataset, s, epochs, max_train, rule="exact", device=device)["test_accuracy"])
            out[f"{axis}={v}"] = row
            log(f"{dataset} {axis}={v}: " + ", ".join(f"{k} {np.median(a):.3f}" for k, a in row.items()))
    return out


def targets(folder: Path, dataset: str, seeds, epochs: int, retrain: int, max_train: int | None, log) -> dict:
    """Digits targets: ideal EP, 20 % spread, 5 % stuck, and the 10 % damage experiment."""
    nets = folder / "networks"
    nets.mkdir(exist_ok=True)
    spread = axis_device(folder / "devices", "spread", 0.2)
    stuck5 = axis_device(folder / "devices", "stuck", 0.05)
    damaged = axis_device(folder / "devices", "stuck", 0.1)      # the same fabrication, 10 % stuck
    out = {k: [] for k in ("ideal", "spread 20%", "stuck 5%", "pre-damage", "after damage", "retrained")}
    for s in seeds:
        out["ideal"].append(run(dataset, s, epochs, max_train, rule="ep")["test_accuracy"])
        out["spread 20%"].append(run(dataset, s, epochs, max_train, rule="ep", device=spread)["test_accuracy"])
        out["stuck 5%"].append(run(dataset, s, epochs, max_train, rule="ep", device=stuck5)["test_accuracy"])
        pre = run(dataset, s, epochs, max_train, rule="ep", device=RERAM)
        out["pre-damage"].append(pre["test_accuracy"])
        net = trained_network(nets, dataset, s, pre)
        out["after damage"].append(run(dataset, s, 0, max_train, rule="ep", device=damaged, network=net)["test_accuracy"])
        out["retrained"].append(run(dataset, s, retrain, max_train, rule="ep", device=damaged,
                                    network=net)["test_accuracy"])
        log(f"{dataset} seed {s}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in out.items()))
    return out


def table(results: dict, seeds) -> str:
    rows = ["| axis | value | in-situ EP | transfer | exact |", "| --- | --- | --- | --- | --- |"]
    for key, row in results.items():
        if key == "ideal":
            continue
        axis, value = key.split("=")
        rows.append(f"| {axis} | {value} | " + " | ".join(f"{np.median(row[m]):.3f}" for m in
                                                        ("in-situ EP", "transfer", "exact")) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/devices")
    p.add_argument("--quick", action="store_true", help="one fabrication, 2 epochs (a smoke test)")
    p.add_argument("--seeds", type=int, default=3, help="fabrications (default: 3)")
    p.add_argument("--epochs", type=int, default=6, help="Iris epochs (default: 6)")
    p.add_argument("--digits-epochs", type=int, default=3, help="digits epochs (default: 3)")
    p.add_argument("--digits-max-train", type=int, default=600, help="digits training examples (default: 600)")
    p.add_argument("--retrain", type=int, default=2, help="epochs of retraining after the damage (default: 2)")
    p.add_argument("--skip-digits", action="store_true")
    args = p.parse_args(argv)
    seeds = range(1 if args.quick else args.seeds)
    epochs = 2 if args.quick else args.epochs
    folder = Path(args.out)
    (folder / "devices").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    with threadpool_limits(1):
        results = {"iris": sweep(folder, "iris", seeds, epochs, None, log)}
        if not args.skip_digits:
            results["digits"] = targets(folder, "digits", seeds, 1 if args.quick else args.digits_epochs,
                                        1 if args.quick else args.retrain, args.digits_max_train, log)
    results["settings"] = {"seeds": len(seeds), "iris_epochs": epochs, "digits_epochs": args.digits_epochs,
                           "digits_max_train": args.digits_max_train, "retrain": args.retrain,
                           "seconds": time.perf_counter() - t0}
    (folder / "results.json").write_text(json.dumps(results, indent=1))
    print(f"Iris, ideal-device EP: median {np.median(results['iris']['ideal']):.3f}")
    print(table(results["iris"], seeds))
    if "digits" in results:
        print("| digits | " + " | ".join(results["digits"]) + " |")
        print("| --- |" + " --- |" * len(results["digits"]))
        print("| median | " + " | ".join(f"{np.median(v):.3f}" for v in results["digits"].values()) + " |")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
