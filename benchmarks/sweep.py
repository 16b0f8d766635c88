"""Scaling of ``analog-ep sweep``: the 16-cell thermal-EP sweep ``benchmarks/sweeps/scaling.toml``
in process (the baseline) and on local dask clusters of 1, 2 and 4 workers (one thread each),
in the same run. Speed-up = wall(sequential) / wall(N workers); engine overhead per cell =
(wall(1 worker) - sum of the cells' own wall times) / cells, cluster start-up excluded.

    PYTHONPATH=. python benchmarks/sweep.py [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from analog_ep.sweeps.engine import run_sweep
from analog_ep.sweeps.spec import load_sweep

SPEC = Path(__file__).with_name("sweeps") / "scaling.toml"


def timed(sweep, **kw) -> tuple[float, float]:
    """(wall seconds of the cells' loop, sum of the cells' own wall seconds)."""
    with tempfile.TemporaryDirectory() as out:
        if kw.get("engine") == "dask":
            from dask.distributed import Client, LocalCluster  # optional extra
            with LocalCluster(n_workers=kw.pop("workers"), threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster):
                t0 = time.perf_counter()
                records = run_sweep(sweep, out, scheduler=cluster.scheduler_address, **kw)
                wall = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            records = run_sweep(sweep, out, **kw)
            wall = time.perf_counter() - t0
    assert all(r["status"] == "ok" for r in records.values())
    return wall, sum(r["wall_s"] for r in records.values())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    a = p.parse_args(argv)
    sweep = load_sweep(SPEC)
    n = len(sweep.cells)
    with threadpool_limits(1):
        base, cells = timed(sweep, engine="sequential")
    print("| engine | wall s | speed-up vs in process | overhead per cell (s, % of a cell) |")
    print("|---|---|---|---|")
    print(f"| in process | {base:.2f} | 1.00 | - (cell {cells / n:.3f} s) |")
    for w in a.workers:
        wall, cell_sum = timed(sweep, engine="dask", workers=w)
        extra = ""
        if w == 1:
            per = (wall - cell_sum) / n
            extra = f"{per:.3f} s, {100 * per / (cell_sum / n):.1f}%"
        print(f"| dask, {w} worker{'s' * (w > 1)} | {wall:.2f} | {base / wall:.2f} | {extra} |")


if __name__ == "__main__":
    main()
