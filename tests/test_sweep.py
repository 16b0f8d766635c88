"""Sweeps: file validation before anything runs, and the engine on a real LocalCluster
giving the same results as in process; resume, failing cells, lock, unreachable scheduler."""

import csv
import socket
import threading

import pytest

from cli_helpers import assert_one_line_error, run_cli
from analog_ep.sweeps.engine import run_sweep, sweep_lock, write_results
from analog_ep.sweeps.spec import load_sweep

SMALL = """[base]
dataset = "xor"
rule = "ep"
epochs = 2

[axes]
seed = [0, 1]
lr = [0.01, 0.1]
"""
METRICS = ("test_accuracy", "train_accuracy", "test_loss", "train_loss")


def rows(path):
    with open(path) as fh:
        return {r["cell"]: r for r in csv.DictReader(fh)}


@pytest.fixture
def small(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(SMALL)
    return load_sweep(f)


def test_grid_log_range_and_rows_expand_with_readable_ids(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[base]\ndataset = "xor"\n[axes]\nlr = {start = 0.001, stop = 0.1, num = 3, log = true}\n'
                 '[[rows]]\nrule = "ep"\n[[rows]]\nrule = "thermal"\nsamples = 10\n')
    s = load_sweep(f)
    assert [c.id for c in s.cells] == ["rule=ep_lr=0.001", "rule=ep_lr=0.01", "rule=ep_lr=0.1",
                                       "rule=thermal_samples=10_lr=0.001", "rule=thermal_samples=10_lr=0.01",
                                       "rule=thermal_samples=10_lr=0.1"]
    assert [c.settings["lr"] for c in s.cells[:3]] == pytest.approx([1e-3, 1e-2, 1e-1], rel=1e-12)


@pytest.mark.parametrize("text, line, fragments", [
    ('[base]\ndataset = "xor"\nlearning_rate = 0.1\n', 3, ("unknown key 'learning_rate'",)),
    ('[base]\ndataset = "xor"\n[axes]\nseed = []\n', 4, ("axis seed is empty",)),
    ('[base]\nepochs = "ten"\n', 2, ("epochs must be a int", "'ten'")),
    ('[axes]\nseed = [0, 1.5]\n', 2, ("seed must be a int",)),
    ('[base]\nout = "x"\n', 2, ("out is set by the sweep",)),
    ('[[rows]]\nrule = "ep"\n[[rows]]\nbogus = 1\n', 4, ("unknown key 'bogus'",)),
])
def test_malformed_files_are_refused_naming_key_and_line_before_anything_runs(tmp_path, capsys, text, line, fragments):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    status, _, err = run_cli(capsys, "sweep", str(f), "--out", str(tmp_path / "out"), "--sequential")
    assert_one_line_error(status, err, f"{f}:{line}:", *fragments)
    assert not (tmp_path / "out").exists()


def test_same_results_in_process_and_on_a_two_worker_local_cluster(tmp_path, small):
    pytest.importorskip("distributed", reason="pip install 'dask[distributed]'")
    a = run_sweep(small, tmp_path / "seq", engine="sequential")
    b = run_sweep(small, tmp_path / "dask", engine="dask", workers=2)
    assert all(r["status"] == "ok" for r in (*a.values(), *b.values()))
    assert len({r["pid"] for r in b.values()}) == 2          # both workers ran cells
    ra, rb = rows(tmp_path / "seq" / "results.csv"), rows(tmp_path / "dask" / "results.csv")
    assert set(ra) == set(rb) == {c.id for c in small.cells}
    for cid in ra:
        assert [ra[cid][m] for m in METRICS] == [rb[cid][m] for m in METRICS]


def test_finished_cells_are_skipped_and_a_failing_cell_is_recorded(tmp_path, small):
    out = tmp_path / "out"
    first = run_sweep(small, out, engine="sequential")
    stamps = {cid: r["start"] for cid, r in first.items()}
    f2 = tmp_path / "again.toml"
    f2.write_text(SMALL + '[[rows]]\nrule = "ep"\n[[rows]]\nrule = "no-such-rule"\n')
    s2 = load_sweep(f2)
    records = run_sweep(s2, out, engine="sequential")    # the new cells; no-such-rule ones raise
    bad = [r for r in records.values() if r["status"] == "error"]
    assert len(bad) == 4 and all("no-such-rule" in r["error"] for r in bad)
    table = rows(out / "results.csv")
    assert len(table) == 8 and {table[r["cell"]]["status"] for r in bad} == {"error"}
    # the sweep file of the first run again: nothing reruns
    again = run_sweep(small, out, engine="sequential")
    assert {cid: r["start"] for cid, r in again.items()} == stamps


def test_each_cell_keeps_its_warnings(tmp_path):
    """One-sided quantum EP at beta = 0.5 warns of its O(beta) bias; a clean cell has none."""
    f = tmp_path / "w.toml"
    f.write_text('[base]\nnetwork = "quantum_xor"\ndataset = "xor"\nepochs = 1\nbeta = 0.5\n'
                 '[axes]\none_sided = [true, false]\n')
    with pytest.warns(UserWarning, match="one-sided EP"):
        records = run_sweep(load_sweep(f), tmp_path / "out", engine="sequential")
    warned = {r["settings"]["one_sided"]: r["warnings"] for r in records.values()}
    assert warned[False] == [] and len(warned[True]) == 1 and "O(beta) bias" in warned[True][0]


def test_results_are_written_atomically(tmp_path, small):
    out = tmp_path / "out"
    records = run_sweep(small, out, engine="sequential")
    before = (out / "results.csv").read_text()
    (out / "results.csv.tmp").mkdir()          # the temporary file cannot be written
    with pytest.raises(OSError):
        write_results(out / "results.csv", small, records)
    assert (out / "results.csv").read_text() == before


def test_a_second_sweep_on_the_same_folder_is_refused(tmp_path, small, capsys):
    f = tmp_path / "s.toml"
    with sweep_lock(tmp_path / "out"):
        status, _, err = run_cli(capsys, "sweep", str(f), "--out", str(tmp_path / "out"), "--sequential")
    assert_one_line_error(status, err, "another sweep is writing to", "sweep.lock")


def test_an_unreachable_scheduler_fails_within_the_timeout_naming_it(tmp_path, small, capsys):
    pytest.importorskip("distributed", reason="pip install 'dask[distributed]'")
    with socket.socket() as s:                 # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    status, _, err = run_cli(capsys, "sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"),
                             "--scheduler", address, "--timeout", "2", "--no-progress")
    assert_one_line_error(status, err, address, "within 2 s")


def test_a_cell_whose_worker_dies_is_retried_on_another_worker(tmp_path):
    """SIGKILL the worker process running a cell mid-run: the nanny restarts it, dask
    reschedules the task, and the cell's results equal an undisturbed in-process run."""
    distributed = pytest.importorskip("distributed", reason="pip install 'dask[distributed]'")
    import os
    import signal
    import time
    f = tmp_path / "long.toml"
    f.write_text('[base]\ndataset = "xor"\nrule = "ep"\nepochs = 300\n[axes]\nseed = [0, 1]\n')
    sweep = load_sweep(f)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        result = {}
        runner = threading.Thread(target=lambda: result.update(
            run_sweep(sweep, tmp_path / "dask", engine="dask", scheduler=cluster.scheduler_address)))
        runner.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy and any((tmp_path / "dask" / c.id / "checkpoint.npz").exists() for c in sweep.cells):
                break
            time.sleep(0.05)
        pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        runner.join(120)
    assert all(r["status"] == "ok" for r in result.values()) and len(result) == 2
    assert pid not in {r["pid"] for r in result.values()}     # a killed worker writes no record
    # the retried cell resumed from its last checkpoint, which continues exactly
    reference = run_sweep(sweep, tmp_path / "seq", engine="sequential")
    for cid, r in reference.items():
        assert [r["final"][m] for m in METRICS] == [result[cid]["final"][m] for m in METRICS]


def test_a_rack_of_two_boards_gives_each_port_to_one_cell_at_a_time(tmp_path):
    """Four cells on two emulated boards (two ptys) and two workers: every cell succeeds
    (a port already open is refused by the client's lock, so a clash would fail a cell) and
    the time spans of the cells on one port never overlap."""
    pytest.importorskip("distributed", reason="pip install 'dask[distributed]'")
    from analog_ep.board_emulator import BoardEmulator
    f = tmp_path / "rack.toml"
    f.write_text('[base]\ndataset = "xor"\nnetwork = "xor_diode"\nrule = "ep"\nepochs = 2\nsubstrate = "serial"\n'
                 '[axes]\nseed = [0, 1, 2, 3]\n')
    sweep = load_sweep(f)
    with BoardEmulator("xor_diode", temperature=1e-7) as a, BoardEmulator("xor_diode", temperature=1e-7) as b:
        records = run_sweep(sweep, tmp_path / "out", engine="dask", workers=2, boards=(a.path, b.path))
    assert all(r["status"] == "ok" for r in records.values()), [r["error"] for r in records.values()]
    by_port = {}
    for r in records.values():
        by_port.setdefault(r["substrate"], []).append((r["start"], r["end"]))
    assert set(by_port) <= {f"serial:{a.path}", f"serial:{b.path}"}
    for spans in by_port.values():
        spans.sort()
        assert all(s1[1] <= s2[0] for s1, s2 in zip(spans, spans[1:]))
