"""``analog-ep sweep FILE --out DIR``: run a sweep file's cells as training runs (see
:mod:`analog_ep.sweeps`), then write DIR/results.csv and DIR/sweep.png."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from ..sweeps.engine import dask_available, run_sweep
from ..sweeps.plot import plot_sweep
from ..sweeps.spec import load_sweep
from .common import positive_int


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid of training runs (on dask.distributed when installed)",
                       description="Run every cell of a sweep file as a training run writing DIR/<cell-id>/, "
                                   "then DIR/results.csv and DIR/sweep.png. Finished cells are skipped.")
    p.add_argument("file", help="sweep file (TOML: [base], [axes], [[rows]])")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask scheduler to use (default: a local cluster sized to the machine)")
    p.add_argument("--workers", type=positive_int, default=None, help="local workers (default: cores / threads)")
    p.add_argument("--threads-per-worker", type=positive_int, default=1, help="threads per local worker (default: 1)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to reach --scheduler (default: 10)")
    p.add_argument("--boards", default=None, metavar="PORT1,PORT2,...",
                   help="serial ports of a rack; each cell with substrate = \"serial\" owns one at a time "
                        "(default: the file's [boards] ports)")
    p.add_argument("--sequential", action="store_true", help="run cells one by one in this process")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    sweep = load_sweep(args.file)
    engine = "sequential" if args.sequential else "dask"
    if engine == "dask" and not dask_available():
        print("analog-ep sweep: dask.distributed is not installed (pip install .[sweep]); "
              "running cells one by one in this process", file=sys.stderr)
        engine = "sequential"
    bars = []          # opened at the first finished cell, once the folder's lock is held

    def on_cell(record, done, total):
        if not bars:
            bars.append(tqdm(total=total, unit="cell", disable=args.no_progress, file=sys.stderr))
        bar = bars[0]
        bar.n = done
        bar.set_postfix_str(f"{record['cell']}: {record['status']}")
        bar.refresh()

    records = run_sweep(sweep, args.out, engine=engine, scheduler=args.scheduler, workers=args.workers,
                        threads_per_worker=args.threads_per_worker, timeout=args.timeout,
                        boards=tuple(args.boards.split(",")) if args.boards else None, on_cell=on_cell)
    for bar in bars:
        bar.close()
    out = Path(args.out)
    plotted = plot_sweep(sweep, records, out / "sweep.png")
    failed = [r for r in records.values() if r["status"] != "ok"]
    print(f"{len(records) - len(failed)} of {len(sweep.cells)} cells ok; results in {out / 'results.csv'}"
          + (f", figure {out / 'sweep.png'}" if plotted else ""))
    for r in failed:
        print(f"  {r['cell']}: {r['error']}")
    return 1 if failed else 0
