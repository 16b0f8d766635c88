"""Running a sweep's cells as ordinary training runs: on ``dask.distributed`` (a
``LocalCluster`` sized to the machine, or ``scheduler=ADDRESS``), or one by one in process
when dask is not installed. Each cell writes ``DIR/<cell-id>/`` (the files of ``analog-ep
train --out``) and ``DIR/<cell-id>/cell.json`` (its record); a cell with a record of status
``ok`` is skipped when the sweep runs again. ``DIR/results.csv`` is rewritten atomically
(temporary file, then rename) after every cell. A cell that raises is recorded with its
error; a task whose worker dies is retried by dask (``retries``). ``DIR/sweep.lock`` (an
``flock``, released by the kernel when the process ends) refuses a second sweep on DIR."""

from __future__ import annotations

import importlib.util

import csv
import fcntl
import json
import os
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path

from threadpoolctl import threadpool_limits

from ..errors import ConfigError
from ..training import config_from_options, train
from .spec import Cell, Sweep

#: Metrics of a cell's run copied to results.csv (from ``TrainResult.final``).
METRICS = ("test_accuracy", "train_accuracy", "test_loss", "train_loss", "seconds_per_epoch")
#: Times a dask task is retried after it failed (its worker died).
RETRIES = 2


@contextmanager
def board(ports: tuple[str, ...], shared: bool):
    """One port of the rack, owned by this task alone until the block ends: with ``shared``
    (a dask worker) through the scheduler's ``Lock("board:PORT")``, tried port by port."""
    if not shared:
        yield ports[0]
        return
    from distributed import Lock  # optional extra; only inside a dask task
    locks = [Lock(f"board:{p}") for p in ports]
    while True:
        for port, lock in zip(ports, locks):
            if lock.acquire(blocking=False):
                try:
                    yield port
                finally:
                    lock.release()
                return
        time.sleep(0.05)


def run_cell(cell: Cell, out_dir: str, ports: tuple[str, ...] = (), shared: bool = False) -> dict:
    """Train one cell (BLAS pinned to one thread) and write its record; never raises for an
    error of the run itself, which is recorded as ``status = "error"``. A cell with
    ``substrate = "serial"`` runs on one of ``ports`` (see :func:`board`)."""
    if cell.settings.get("substrate") == "serial":
        if not ports:
            return _record(cell, out_dir, ConfigError(f"cell {cell.id} has substrate = \"serial\" but the sweep "
                                                       "names no boards (--boards or [boards] ports)"))
        with board(ports, shared) as port:
            return _record(cell, out_dir, None, {"substrate": f"serial:{port}"})
    return _record(cell, out_dir, None)


def _record(cell: Cell, out_dir: str, error: Exception | None, overrides: dict | None = None) -> dict:
    folder = Path(out_dir) / cell.id
    folder.mkdir(parents=True, exist_ok=True)
    record = {"cell": cell.id, "settings": cell.settings, "pid": os.getpid(), "start": time.time()}
    t0 = time.perf_counter()
    record.update(overrides or {})
    try:
        if error is not None:
            raise error
        resume = (folder / "checkpoint.npz").exists()
        cfg = config_from_options({**cell.settings, **(overrides or {}), "out": str(folder), "resume": resume, "no_progress": True})
        with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = train(cfg)
        # kept with the cell (a worker's stderr is not the sweep's), and still shown here
        record["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
        for w in caught:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        record.update(status="ok", final={k: result.final.get(k) for k in METRICS}, error="")
    except Exception as exc:  # recorded, so the sweep goes on; the traceback is kept in cell.json
        record.update(status="error", final={}, error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc())
    record["wall_s"] = time.perf_counter() - t0
    record["end"] = time.time()
    tmp = folder / "cell.json.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, folder / "cell.json")
    return record


def finished(out_dir: str, cell: Cell) -> dict | None:
    """The record of a cell finished earlier in ``out_dir`` with the same settings, else None."""
    path = Path(out_dir) / cell.id / "cell.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("status") == "ok" and record.get("settings") == cell.settings else None


def write_results(path: Path, sweep: Sweep, records: dict[str, dict]) -> None:
    """results.csv: one row per cell (settings under their own names, metrics, wall time,
    status, error), written to a temporary file and renamed."""
    keys = sweep.keys
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["cell", *keys, *METRICS, "wall_s", "status", "error"])
        for cell in sweep.cells:
            r = records.get(cell.id)
            if r is None:
                continue
            w.writerow([cell.id, *(json.dumps(cell.settings[k]) if isinstance(cell.settings.get(k), list)
                                   else cell.settings.get(k, "") for k in keys),
                        *(r["final"].get(m, "") for m in METRICS), f"{r['wall_s']:.3f}", r["status"], r["error"]])
    os.replace(tmp, path)


@contextmanager
def sweep_lock(out_dir: Path):
    """Hold ``out_dir/sweep.lock``; ConfigError when another sweep holds it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fh = open(out_dir / "sweep.lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise ConfigError(f"another sweep is writing to {out_dir} (it holds {out_dir / 'sweep.lock'})") from None
    try:
        fh.truncate(0)
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _client(scheduler: str | None, workers: int | None, threads: int, timeout: float):
    from dask.distributed import Client, LocalCluster  # optional extra: pip install .[sweep]
    if scheduler is not None:
        try:
            return Client(scheduler, timeout=timeout), None
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the dask scheduler at {scheduler} within {timeout:g} s ({exc})") from None
    n = workers or max(1, (os.cpu_count() or 1) // threads)
    cluster = LocalCluster(n_workers=n, threads_per_worker=threads, processes=True, dashboard_address=None)
    return Client(cluster), cluster


def dask_available() -> bool:
    return importlib.util.find_spec("distributed") is not None


def run_sweep(sweep: Sweep, out_dir: str | Path, *, engine: str = "dask", scheduler: str | None = None,
              workers: int | None = None, threads_per_worker: int = 1, timeout: float = 10.0,
              boards: tuple[str, ...] | None = None, on_cell=None) -> dict[str, dict]:
    """Run every cell not finished in ``out_dir``; returns ``{cell id: record}``.

    ``engine``: ``dask`` or ``sequential`` (in process); ``on_cell(record, done, total)`` is
    called after each cell (the command's progress bar). Skipped cells count as done.
    ``boards`` (default: the file's ``[boards]``) are the ports of ``substrate = "serial"`` cells."""
    out = Path(out_dir)
    ports = tuple(boards) if boards else sweep.boards
    if engine not in ("dask", "sequential"):
        raise ConfigError(f"unknown engine {engine!r}; use dask or sequential")
    if engine == "dask" and not dask_available():
        raise ConfigError("dask.distributed is not installed (pip install .[sweep]); use the sequential engine")
    with sweep_lock(out):
        records = {c.id: r for c in sweep.cells if (r := finished(str(out), c)) is not None}
        todo = [c for c in sweep.cells if c.id not in records]
        total = len(sweep.cells)

        def done(record):
            records[record["cell"]] = record
            write_results(out / "results.csv", sweep, records)
            if on_cell is not None:
                on_cell(record, len(records), total)

        write_results(out / "results.csv", sweep, records)
        if engine == "sequential":
            for cell in todo:
                done(run_cell(cell, str(out), ports))
            return records
        from dask.distributed import as_completed  # optional extra
        client, cluster = _client(scheduler, workers, threads_per_worker, timeout)
        try:
            futures = [client.submit(run_cell, c, str(out.resolve()), ports, True, key=f"cell-{c.id}", pure=False,
                                     retries=RETRIES) for c in todo]
            for fut in as_completed(futures):
                try:
                    done(fut.result())
                except Exception as exc:  # the task itself failed (e.g. its worker died too often)
                    cell = todo[futures.index(fut)]
                    done({"cell": cell.id, "settings": cell.settings, "status": "error", "final": {},
                          "error": f"{type(exc).__name__}: {exc}", "wall_s": 0.0})
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return records
