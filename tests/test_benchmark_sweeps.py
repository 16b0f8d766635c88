"""The benchmark sweep files (benchmarks/sweeps/*.toml) expand to exactly the training runs
of the loops they replaced, and the table writer (benchmarks/sweep_table.py) turns a
sweep's folder into its table."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run_cli
from analog_ep.learning.config import DEFAULTS
from analog_ep.physics.noise import RESISTIVE_DEFAULT_TEMPERATURE
from analog_ep.sweeps.spec import load_sweep

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import sweep_table  # noqa: E402

SEEDS = [0, 1, 2]
T0 = RESISTIVE_DEFAULT_TEMPERATURE

#: Per file, the settings of every run of the loop it replaced (None: the option unset).
EXPECTED = {
    # train_results.py: --datasets xor iris digits --rules ep exact --seeds 0 1 2, data set defaults
    "train_results": [dict(dataset=d, rule=r, seed=s) for d in ("xor", "iris", "digits")
                      for r in ("ep", "exact") for s in SEEDS],
    # train_results.py --datasets mnist5k --rules ep --epochs 12, and --rules exact (6 epochs)
    "train_mnist5k": [dict(dataset="mnist5k", rule="ep", epochs=12, seed=s) for s in SEEDS]
                     + [dict(dataset="mnist5k", rule="exact", seed=s) for s in SEEDS],
    # train_results.py --datasets mnist5k --rules ep --epochs 30, and train --lr-schedule cosine
    "train_mnist5k_30": [dict(dataset="mnist5k", rule="ep", epochs=30, lr_schedule=k, seed=s)
                         for k in ("constant", "cosine") for s in SEEDS],
    # thermal_training.py headline: HEADLINE x seeds at the default temperature; digits on
    # digits_network(seed) at lr 0.005
    "thermal_headline": [dict(dataset=d, rule=r, samples=n, seed=s, temperature=T0) for d, r, n in
                         (("xor", "thermal", 128), ("iris", "thermal", 128)) for s in SEEDS]
                        + [dict(dataset="digits", rule="thermal-cv", samples=32, seed=s, temperature=T0,
                                network=f"runs/networks/digits-knee-0.25-s{s}.json", lr=0.005) for s in SEEDS],
    # thermal_training.py headline --only digits --default-digits
    "thermal_digits_default": [dict(dataset="digits", rule="thermal-cv", samples=32, seed=s, temperature=T0)
                               for s in SEEDS],
    # thermal_training.py sweep: SWEEP_T x SWEEP_RULES on Iris, seed 0, low-t of order 1
    "thermal_temperature": [dict(dataset="iris", rule=r, seed=0, temperature=T, **extra)
                            for T in (1e-8, 1e-7, 1e-6, 1e-5)
                            for r, extra in (("thermal", {"samples": 128}), ("thermal-nudged", {"samples": 64}),
                                             ("low-t", {"order": 1}))],
    # oscillator_train.py: SETTINGS (network per data set, no flags) x ep, thermal x seeds
    "oscillator_train": [dict(network=f"oscillator_{d}", dataset=d, rule=r, seed=s)
                         for d in ("xor", "iris") for r in ("ep", "thermal") for s in SEEDS],
    # oscillator_train.py --datasets iris --rules ep --seeds 3 4 5
    "oscillator_iris_seeds": [dict(network="oscillator_iris", dataset="iris", rule="ep", seed=s) for s in (3, 4, 5)],
    # quantum_train.py --dataset xor; --shots 2000 --beta 0.2; --shots 500 --beta 0.2 (5 seeds each)
    "quantum_xor": [dict(network="quantum_xor", dataset="xor", rule="ep", seed=s, **extra)
                    for extra in ({}, {"beta": 0.2, "samples": 2000}, {"beta": 0.2, "samples": 500})
                    for s in range(5)],
    # quantum_train.py --dataset iris
    "quantum_iris": [dict(network="quantum_iris", dataset="iris", rule="ep", seed=s) for s in range(5)],
    # benchmarks/sweep.py's scaling sweep
    "scaling": [dict(dataset="xor", rule="thermal", samples=20, epochs=40, temperature=T, seed=s)
                for T in np.geomspace(1e-8, 1e-6, 4) for s in range(4)],
}


def canonical(settings: dict) -> tuple:
    return tuple(sorted(settings.items()))


def test_every_sweep_file_is_covered():
    assert {p.stem for p in (BENCH / "sweeps").glob("*.toml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sweep_file_expands_to_the_runs_of_the_old_loop(name):
    sweep = load_sweep(BENCH / "sweeps" / f"{name}.toml")
    want = EXPECTED[name]
    assert len(sweep.cells) == len(want)
    assert len({c.id for c in sweep.cells}) == len(want)
    assert sorted(canonical(c.settings) for c in sweep.cells) == sorted(canonical(w) for w in want)


def test_the_defaults_the_files_rely_on():
    # train_mnist5k_30 spells out the constant schedule the old 30-epoch runs took by default
    assert DEFAULTS["mnist5k"]["lr_schedule"] == "constant"
    assert T0 == 1e-7                      # the thermal files write the default temperature out


def test_table_writer_on_a_tiny_sweep(tmp_path, capsys):
    """One epoch of XOR, ep and exact, two seeds, through the CLI; the train table's medians
    and the errors table's per-epoch errors are those of results.csv and metrics.json."""
    f = tmp_path / "tiny.toml"
    f.write_text('[base]\ndataset = "xor"\nepochs = 1\nquiet = true\n[axes]\nrule = ["ep", "exact"]\nseed = [0, 1]\n')
    status, out, _ = run_cli(capsys, "sweep", str(f), "--out", str(tmp_path / "o"), "--sequential", "--no-progress")
    assert status == 0, out
    with open(tmp_path / "o" / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sweep_table.main([str(tmp_path / "o"), "--table", "train"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| data set | rule | test accuracy (median; seeds 0, 1) |")
    for rule, line in zip(("ep", "exact"), lines[2:]):
        acc = [float(r["test_accuracy"]) for r in rows if r["rule"] == rule]
        assert line.startswith(f"| xor | {rule} | {np.median(acc):.3f} ({acc[0]:.3f}, {acc[1]:.3f}) |")
    assert len(lines) == 4
    assert sweep_table.main([str(tmp_path / "o"), "--table", "errors", "--at-epochs", "1", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(" | ")[:2] == ["| rule", "test error after 1 epochs % (median; seeds 0, 1)"]
    err = [100 * (1 - float(r["test_accuracy"])) for r in rows if r["rule"] == "ep"]
    assert lines[2].startswith(f"| ep | {np.median(err):.1f} ({err[0]:.1f}, {err[1]:.1f}) | - |")
