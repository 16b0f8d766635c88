"""Time per operating point: ngspice's shared library against the emulator and against one
``ngspice -b`` process per point, all in the same run.

For each bundled resistive network and K random inputs (uniform in [-1, 1] V), default
parameters:

* emulator, batch: ``EmulatedBoard.equilibrium()`` on the K inputs at once, / K;
* emulator, one at a time: K calls with one input each, / K (what a loop over inputs pays);
* shared library: ``NgspiceNetwork.equilibrium()`` on the K inputs (``alter`` of the input
  sources and one ``op`` per input, in the one loaded circuit), / K;
* one process per point: the same deck, its input sources set, run by ``ngspice -b``
  (start-up, parsing, ``op``, raw file), wall time per point over fewer points.

Each is the best of a few rounds (``benchmarks/timing.py``); the rounds of the in-process
candidates interleave, so load on a shared machine hits them alike. The last column is the
largest voltage difference between the shared library and the emulator over the batch,
relative to max |V| (and the same for the process points). BLAS is pinned to one thread.

Run: ``python benchmarks/ngspice_substrate.py`` (``--points K``, ``--process-points N``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analog_ep.graph import load_network  # noqa: E402
from analog_ep.models.resistive import compile_network  # noqa: E402
from analog_ep.spice.batch import run_ngspice  # noqa: E402
from analog_ep.substrates.emulated import EmulatedBoard  # noqa: E402
from analog_ep.substrates.ngspice import NgspiceNetwork, model_deck  # noqa: E402
from timing import best_of  # noqa: E402

NETWORKS = ("divider", "xor_diode", "iris_diode", "mesh_1000")


def process_point(model, u_row: np.ndarray) -> np.ndarray:
    """Free-node voltages of one input from a fresh ``ngspice -b`` process."""
    deck = model_deck(model, inputs=u_row)
    _, values = run_ngspice(deck.lines[:-1], ["op"], options="*", raw=True)
    return np.array([values[name] if name in values else values[f"v({name})"] for name in deck.free_nodes])


def measure(name: str, points: int, process_points: int, rounds: int) -> dict:
    model = compile_network(load_network(name))
    rng = np.random.default_rng(0)
    u = rng.uniform(-1, 1, (points, len(model.inputs)))
    emulator = EmulatedBoard(model)
    spice = NgspiceNetwork(model)
    try:
        def emulator_batch():
            emulator.clamp(u)
            return emulator.equilibrium_state()

        def emulator_single():
            for row in u:
                emulator.clamp(row[None, :])
                emulator.equilibrium_state()

        def shared():
            spice.clamp(u)
            return spice.equilibrium_state()

        best = {"emulator batch": np.inf, "emulator single": np.inf, "shared library": np.inf}
        fns = {"emulator batch": emulator_batch, "emulator single": emulator_single, "shared library": shared}
        results = {}
        for _ in range(rounds):
            for key, fn in fns.items():
                t, out = best_of(fn, 1)
                best[key] = min(best[key], t)
                results[key] = out
        per = {k: v / points for k, v in best.items()}
        k = min(process_points, points)
        t0 = time.perf_counter()
        proc = np.array([process_point(model, row) for row in u[:k]])
        per["process per point"] = (time.perf_counter() - t0) / k
        s_ng, s_em = results["shared library"], results["emulator batch"]
        scale = max(np.abs(s_em).max(), np.abs(u).max())
        return {"network": name, "nodes": model.n_nodes, "diodes": len(model.d_a), "points": points,
                "process_points": k, **per,
                "agree": float(np.abs(s_ng - s_em).max() / scale),
                "process_agree": float(np.abs(proc - s_em[:k]).max() / scale)}
    finally:
        spice.close()


def fmt(t: float) -> str:
    return f"{t * 1e3:.3f} ms" if t < 1 else f"{t:.2f} s"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=100, help="inputs per network (default 100)")
    p.add_argument("--process-points", type=int, default=10, help="points run as ngspice -b processes (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3)")
    args = p.parse_args(argv)
    with threadpool_limits(1):
        rows = [measure(n, args.points, args.process_points, args.rounds) for n in NETWORKS]
    print("| network | nodes | diodes | emulator, batch / point | emulator, one input at a time / point | "
          "shared library / point | ngspice -b process / point | shared / emulator batch | "
          "shared / emulator single | process / shared | max dV / max V vs emulator: shared, process |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['network']} | {r['nodes']} | {r['diodes']} | {fmt(r['emulator batch'])} | "
              f"{fmt(r['emulator single'])} | {fmt(r['shared library'])} | "
              f"{fmt(r['process per point'])} ({r['process_points']} pts) | "
              f"{r['shared library'] / r['emulator batch']:.1f}x | {r['shared library'] / r['emulator single']:.2f}x | "
              f"{r['process per point'] / r['shared library']:.1f}x | {r['agree']:.1e}, {r['process_agree']:.1e} |")


if __name__ == "__main__":
    main()
