"""The markdown tables of benchmarks/RESULTS.md from the folder of an ``analog-ep sweep``.

Reads ``DIR/results.csv`` (one row per cell: settings, final metrics, wall time, status)
and, for what results.csv does not hold (processor time per epoch, the accuracy after a
given epoch, the resolved training settings), each cell's ``DIR/<cell-id>/metrics.json``.
Cells are grouped by their settings other than the seed; a group's row gives medians over
its seeds, with the per-seed values in seed order. Cells that failed are left out of the
groups and listed under the table with their errors.

    python benchmarks/sweep_table.py DIR --table train                # train_results.toml
    python benchmarks/sweep_table.py DIR --table errors --at-epochs 6 12   # train_mnist5k*.toml
    python benchmarks/sweep_table.py DIR --table thermal-headline     # thermal_headline.toml
    python benchmarks/sweep_table.py DIR --table thermal-temperature  # thermal_temperature.toml
    python benchmarks/sweep_table.py DIR --table oscillator           # oscillator_*.toml
    python benchmarks/sweep_table.py DIR --table quantum              # quantum_*.toml

Accuracies are fractions of the test (or training) split after the last epoch unless
``--at-epochs`` says otherwise; errors are ``100 (1 - accuracy)`` %; times are wall-clock
seconds per training epoch (``seconds_per_epoch``), processor seconds per epoch
(``cpu_seconds_per_epoch``) and a cell's whole wall time (``wall_s``, minutes or seconds).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from analog_ep.sweeps.engine import METRICS


def _value(text: str):
    """A setting as written to results.csv: '' is unset, numbers and lists are JSON."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return json.loads(text)
    except ValueError:
        return text


def load_cells(folder: str | Path) -> list[dict]:
    """The cells of ``folder/results.csv`` in file order: ``id``, ``settings``, ``status``,
    ``error``, ``wall_s`` and, for cells that finished, ``final``, ``epochs`` and ``config``
    of their metrics.json."""
    folder = Path(folder)
    with open(folder / "results.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        keys = reader.fieldnames[1:reader.fieldnames.index(METRICS[0])]
        rows = list(reader)
    cells = []
    for r in rows:
        cell = {"id": r["cell"], "settings": {k: _value(r[k]) for k in keys}, "status": r["status"],
                "error": r["error"], "wall_s": float(r["wall_s"]), "final": {}, "epochs": [], "config": {}}
        path = folder / r["cell"] / "metrics.json"
        if r["status"] == "ok" and path.is_file():
            cell.update({k: v for k, v in json.loads(path.read_text()).items() if k in ("final", "epochs", "config")})
        cells.append(cell)
    return cells


def varied(cells: list[dict]) -> list[str]:
    """The settings other than the seed that differ between cells, in file order."""
    return [k for k in (cells[0]["settings"] if cells else {}) if k != "seed"
            and len({json.dumps(c["settings"][k]) for c in cells}) > 1]


def group(cells: list[dict], keys: list[str] | None = None) -> dict[tuple, list[dict]]:
    """Finished cells by the values of ``keys`` (default: :func:`varied`), groups in order of
    first appearance, cells in seed order."""
    keys = varied(cells) if keys is None else keys
    out: dict[tuple, list[dict]] = {}
    for c in cells:
        if c["status"] == "ok":
            out.setdefault(tuple(c["settings"].get(k) for k in keys), []).append(c)
    for members in out.values():
        members.sort(key=lambda c: c["settings"].get("seed") or 0)
    return out


def seeds(cells: list[dict]) -> str:
    found = sorted({c["settings"].get("seed") or 0 for c in cells if c["status"] == "ok"})
    return ", ".join(map(str, found))


def per_seed(values: list[float], fmt: str) -> str:
    """``median (v1, v2, ...)``, or the one value."""
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{np.median(values):{fmt}} ({', '.join(format(v, fmt) for v in values)})"


def final(cells: list[dict], key: str) -> list[float]:
    return [c["final"][key] for c in cells]


def at_epoch(cell: dict, epoch: int, key: str) -> float | None:
    """``key`` after epoch ``epoch`` (1-based) of a finished cell, None if it ran fewer."""
    return cell["epochs"][epoch - 1][key] if 0 < epoch <= len(cell["epochs"]) else None


def span(values: list[float], fmt: str) -> str:
    """``lo-hi`` of ``values``, or one value when both print the same."""
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return lo if lo == hi else f"{lo}-{hi}"


def markdown(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(r) + " |" for r in rows)])


def readings(rule: str, samples: int | None) -> str:
    """Readings per input per update of a thermal rule."""
    if rule == "low-t":
        return "0 (2 nudged equilibria)"
    return f"{2 * samples} ({samples} x 2 phases)" if rule == "thermal-nudged" else str(samples)


def table_train(cells: list[dict], args) -> str:
    head = ["data set", "rule", f"test accuracy (median; seeds {seeds(cells)})", "train accuracy (median)",
            "s/epoch wall", "s/epoch cpu"]
    rows = [[ds, rule, per_seed(final(g, "test_accuracy"), ".3f"), f"{np.median(final(g, 'train_accuracy')):.3f}",
             f"{np.median(final(g, 'seconds_per_epoch')):.2g}", f"{np.median(final(g, 'cpu_seconds_per_epoch')):.2g}"]
            for (ds, rule), g in group(cells, ["dataset", "rule"]).items()]
    return markdown(head, rows)


def table_errors(cells: list[dict], args) -> str:
    keys = varied(cells)
    groups = group(cells, keys)
    epochs = args.at_epochs or sorted({len(c["epochs"]) for g in groups.values() for c in g})
    head = [*keys, *(f"test error after {e} epochs % (median; seeds {seeds(cells)})" for e in epochs),
            "train error after the last epoch %", "wall s/epoch"]
    rows = []
    for values, g in groups.items():
        row = [str(v) for v in values]
        for e in epochs:
            acc = [at_epoch(c, e, "test_accuracy") for c in g]
            row.append("-" if None in acc else per_seed([100 * (1 - a) for a in acc], ".1f"))
        row.append(per_seed([100 * (1 - a) for a in final(g, "train_accuracy")], ".1f"))
        row.append(span(final(g, "seconds_per_epoch"), ".2g"))
        rows.append(row)
    return markdown(head, rows)


def table_thermal_headline(cells: list[dict], args) -> str:
    head = ["data set", "rule", "readings/input/update", f"test accuracy, median (seeds {seeds(cells)})",
            "minutes per run"]
    rows = [[ds, rule, readings(rule, n), per_seed(final(g, "test_accuracy"), ".3f"),
             f"{np.mean([c['wall_s'] for c in g]) / 60:.1f}"]
            for (ds, rule, n), g in group(cells, ["dataset", "rule", "samples"]).items()]
    return markdown(head, rows)


def table_thermal_temperature(cells: list[dict], args) -> str:
    head = ["T (W)", "rule", "readings/input/update", "test accuracy", "train loss", "minutes"]
    groups = group(cells, ["temperature", "rule", "samples", "order"])
    rows = [[f"{T:.0e}", rule + (f" (order {order})" if order is not None else ""), readings(rule, n),
             per_seed(final(g, "test_accuracy"), ".3f"), per_seed(final(g, "train_loss"), ".4f"),
             f"{np.mean([c['wall_s'] for c in g]) / 60:.1f}"]
            for (T, rule, n, order), g in sorted(groups.items(), key=lambda kv: kv[0][0])]
    return markdown(head, rows)


def table_oscillator(cells: list[dict], args) -> str:
    head = ["data set", "rule", f"test accuracy, seeds {seeds(cells)}", "median", "train accuracy (median)",
            "wall s/epoch (median)", "time vs ep (same run)"]
    groups = group(cells, ["dataset", "rule"])
    rows, notes = [], {}
    for (ds, rule), g in groups.items():
        notes.setdefault(ds, ", ".join(f"{k} {g[0]['config'].get(k)}" for k in ("epochs", "batch_size", "lr", "lr_schedule")))
        spe = float(np.median(final(g, "seconds_per_epoch")))
        ep = groups.get((ds, "ep"))
        rows.append([ds, rule, ", ".join(f"{a:.2f}" for a in final(g, "test_accuracy")),
                     f"{np.median(final(g, 'test_accuracy')):.2f}", f"{np.median(final(g, 'train_accuracy')):.2f}",
                     f"{spe:.2f}", f"{spe / np.median(final(ep, 'seconds_per_epoch')):.2f}" if ep else "n/a"])
    return markdown(head, rows) + "".join(f"\n\n{ds} settings: {text}" for ds, text in notes.items())


def table_quantum(cells: list[dict], args) -> str:
    head = ["network", "data", "rule", f"test accuracy, seeds {seeds(cells)}", "median",
            "train accuracy (median)", "s per run"]
    rows = []
    for (net, ds, rule, beta, shots), g in group(cells, ["network", "dataset", "rule", "beta", "samples"]).items():
        how = (f", beta {beta:g}" if beta is not None else "") + (f", {shots} shots" if shots else ", exact expectations")
        rows.append([f"`{net}`", ds, rule + how, ", ".join(f"{a:.2f}" for a in final(g, "test_accuracy")),
                     f"{np.median(final(g, 'test_accuracy')):.2f}", f"{np.median(final(g, 'train_accuracy')):.2f}",
                     span([c["wall_s"] for c in g], ".0f")])
    return markdown(head, rows)


TABLES = {"train": table_train, "errors": table_errors, "thermal-headline": table_thermal_headline,
          "thermal-temperature": table_thermal_temperature, "oscillator": table_oscillator,
          "quantum": table_quantum}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", help="the --out folder of the sweep")
    p.add_argument("--table", required=True, choices=sorted(TABLES))
    p.add_argument("--at-epochs", type=int, nargs="+", default=None,
                   help="errors: the epochs to read the test error after (default: the last)")
    args = p.parse_args(argv)
    if not (Path(args.folder) / "results.csv").is_file():
        p.error(f"no results.csv in {args.folder}; run analog-ep sweep FILE --out {args.folder} first")
    cells = load_cells(args.folder)
    print(TABLES[args.table](cells, args))
    failed = [c for c in cells if c["status"] != "ok"]
    for c in failed:
        print(f"{c['id']}: {c['status']}: {c['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
