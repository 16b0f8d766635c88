"""Thermal sampling benchmarks (ratios against baselines measured in the same run).

    python benchmarks/sampling.py throughput   # exact Gaussian sampling vs the triangular-solve bound
    python benchmarks/sampling.py mala [--dataset digits --samples 1024]   # MALA vs plain Langevin
    python benchmarks/sampling.py variance     # plain vs control-variate covariance estimator
    python benchmarks/sampling.py gibbs        # block Gibbs vs MALA vs plain Langevin, and its scaling

BLAS is pinned to one thread. ``throughput``: samples x nodes per second of
``sample_gaussian`` (solve for the mean, white noise, correlated through the factor)
against the bare triangular solves of the same factor on as many right-hand sides,
the bound of any factor-based sampler. ``mala``: on the default Iris network at the default
temperature, effective samples per second (minimum over coordinates and energy) of the
Hessian-preconditioned samplers against plain unpreconditioned Langevin (classic MALA
with an isotropic step). ``variance``: on the same network, the gradient error of the
``thermal`` (readings only), ``thermal-cv`` and ``thermal-nudged`` estimators over repeats
against a high-precision reference, and the samples each needs for the error of ``thermal``.
``gibbs``: effective samples per second (minimum over inputs, free coordinates and the
energy, times the inputs) of every sampler on the default digits and Iris networks and on
a 100 x 100 grid with a diode at every node, each sampler with its default settings and
the same minimum (the equilibrium solve is timed apart); then the cost per effective
sample of block Gibbs on such grids from 10^2 to 10^5 free nodes.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import networkx as nx
import numpy as np
import scipy.linalg as sla
from threadpoolctl import threadpool_limits

from analog_ep.graph import load_network
from analog_ep.schema import normalise_resistive
from analog_ep.models.cost import SquaredCost
from analog_ep.physics.noise import RESISTIVE_DEFAULT_TEMPERATURE as DEFAULT_TEMPERATURE
from analog_ep.learning.thermal_rules import (ThermalCVRule,
                                              ThermalNudgedRule, ThermalRule)
from analog_ep.models.resistive import compile_network
from analog_ep.physics.equilibrium import _newton, linear_factor, solve_equilibrium
from analog_ep.physics.gibbs import GIBBS_SETTINGS, colour_free_nodes, sample_gibbs
from analog_ep.physics.sampling import MCMCSettings, sample_gaussian, sample_mala
from analog_ep.substrates.emulated import EmulatedBoard
from timing import best_of


def grid_network(k: int, diodes: bool = False):
    """k x k grid of 1 mS resistors, 10 uS leaks to ground, two inputs on opposite corners;
    with ``diodes``, a diode (1e-12 A) from every node to a bias source at -0.2 V, which
    conducts where the node rises above about 0.3 V (the corner at +1 V)."""
    G = nx.MultiGraph(family="resistive", name=f"grid-{k}x{k}" + ("-diodes" if diodes else ""))
    G.add_node("in1", role="input", voltage=1.0)
    G.add_node("in2", role="input", voltage=-1.0)
    G.add_node("0", role="ground")
    if diodes:
        G.add_node("vb", role="bias", voltage=-0.2)
    name = lambda i, j: f"n{i}_{j}"                                   # noqa: E731
    for i in range(k):
        for j in range(k):
            G.add_node(name(i, j), role="output" if (i, j) == (k // 2, k // 2) else "hidden")
    edges = [(name(i, j), name(i + 1, j)) for i in range(k - 1) for j in range(k)]
    edges += [(name(i, j), name(i, j + 1)) for i in range(k) for j in range(k - 1)]
    edges += [(name(i, j), "0") for i in range(k) for j in range(k)]
    edges += [("in1", name(0, 0)), ("in2", name(k - 1, k - 1))]
    for e, (a, b) in enumerate(edges, 1):
        G.add_edge(a, b, key=f"R{e}", element="resistor", trainable=True,
                   conductance=1e-5 if b == "0" else 1e-3)
    if diodes:
        for i in range(k):
            for j in range(k):
                G.add_edge(name(i, j), "vb", key=f"D{i * k + j + 1}", element="diode", anode=name(i, j),
                           cathode="vb", i_s=1e-12)
    return compile_network(normalise_resistive(G))


def throughput() -> None:
    print("| network | free nodes | factor | samples | sampler (Msample-nodes/s) | bound (Msample-nodes/s) | ratio |")
    print("|---|---|---|---|---|---|---|")
    cases = [(grid_network(16), 4096), (grid_network(20), 4096),
             (compile_network(load_network("mesh_1000")), 1024), (grid_network(100), 256)]
    for m, n in cases:
        th, u, T = m.default_theta, m.default_inputs[None], 1e-7
        f = linear_factor(m, th)
        rng = np.random.default_rng(0)
        t_s = best_of(lambda: sample_gaussian(m, th, u, T, n, rng, factor=f))[0]
        z = rng.standard_normal((m.n_free, n))
        if f.dense is not None:
            c, lower = f.dense
            bound = best_of(lambda: sla.solve_triangular(c, z, lower=lower, trans="T", check_finite=False))[0]
            kind = "dense Cholesky"
        else:
            bound = best_of(lambda: f.sparse.solve(z))[0]
            kind = f"sparse LDL^T, nnz(L+U) {f.sparse.L.nnz + f.sparse.U.nnz}"
        work = n * m.n_free / 1e6
        print(f"| {m.name} | {m.n_free} | {kind} | {n} | {work / t_s:.1f} | {work / bound:.1f} | {bound / t_s:.2f} |")


def default_setup(batch: int = 8, dataset: str = "iris"):
    from analog_ep.datasets import load_dataset
    from analog_ep.networks import default_network
    ds = load_dataset(dataset)
    m = compile_network(default_network(dataset, ds.n_features, ds.n_classes, np.random.default_rng(0)))
    x = ds.x_train[:batch]
    u = np.repeat(x, 2, axis=1) * np.tile([1.0, -1.0], x.shape[1])
    d = np.where(np.eye(ds.n_classes)[ds.y_train[:batch]] > 0, 0.125, -0.125)
    return m, u, d


def mala(dataset: str = "iris", n: int = 4096) -> None:
    m, u, _ = default_setup(dataset=dataset)
    T = DEFAULT_TEMPERATURE
    print(f"default {dataset} network ({m.n_free} free nodes, {len(m.diode_names)} diodes), {len(u)} inputs, "
          f"T = {T:g} W, {n} samples per input")
    print("| sampler | acceptance | ESS per input (min) | seconds | ESS/s | vs plain Langevin |")
    print("|---|---|---|---|---|---|")
    rows = []
    for label, st in (("Crank-Nicolson MALA, Hessian-preconditioned (default)", MCMCSettings()),
                      ("classic MALA, Hessian-preconditioned", MCMCSettings(scheme="euler")),
                      ("plain Langevin (classic MALA, isotropic step)", MCMCSettings(scheme="euler", preconditioned=False))):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, diag = sample_mala(m, m.default_theta, u, T, n, np.random.default_rng(1), settings=st)
        sec = time.perf_counter() - t
        rows.append((label, diag, sec, diag.ess.min() * len(u) / sec))
    base = rows[-1][3]
    for label, diag, sec, rate in rows:
        print(f"| {label} | {diag.acceptance.mean():.3f} | {diag.ess.min():.0f} | {sec:.2f} | {rate:.0f} | {rate / base:.1f}x |")


def variance(repeats: int = 40) -> None:
    m, u, d = default_setup(batch=16)
    cost = SquaredCost(tuple(int(i) for i in m.outputs), differential=True)
    T = DEFAULT_TEMPERATURE
    th = m.default_theta

    def board(seed):
        b = EmulatedBoard(m, temperature=T, rng=np.random.default_rng(seed))
        b.cost = cost
        return b

    ref = ThermalCVRule(samples=16384).gradient(m, board(0), cost, th, u, d, None)
    norm = np.linalg.norm(ref.gradient)
    print(f"default Iris network, {len(u)} inputs, T = {T:g} W; reference: thermal-cv with 16384 samples "
          f"(its standard error {np.linalg.norm(ref.stderr) / norm:.1e} of |g|)")
    print("| estimator | samples per input | relative RMS error | samples for the error of `thermal` | reduction |")
    print("|---|---|---|---|---|")
    rules = [("thermal", ThermalRule, 1), ("thermal-cv", ThermalCVRule, 1), ("thermal-nudged", ThermalNudgedRule, 2)]
    for N in (32, 128, 512):
        mse = {}
        for name, cls, phases in rules:
            errs = [cls(samples=N).gradient(m, board(100 + r), cost, th, u, d, None).gradient - ref.gradient
                    for r in range(repeats)]
            mse[name] = np.mean(np.sum(np.square(errs), axis=1))
        for name, cls, phases in rules:
            need = N * phases * mse[name] / mse["thermal"]       # MSE ~ 1/N for unbiased estimators
            print(f"| {name} | {N * phases} | {np.sqrt(mse[name]) / norm:.3f} | {need:.3g} | "
                  f"{N / need:.3g}x |")


def equilibrium(m, u):
    """The free minimum; on grids by sparse Newton directly (the layered solver, which
    takes a grid for a layered network, needs 114 s on the 100 x 100 grid against 2 s)."""
    if m.name.startswith("grid"):
        return _newton(m, m.default_theta, u, None, None, 0.0, None, 1e-10, 200).s
    return solve_equilibrium(m, m.default_theta, u).s


def _timed(run):
    """Diagnostics and CPU seconds of ``run`` (one BLAS thread: CPU time is the cost, and
    unlike wall time it does not grow with the other jobs of a shared machine)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.process_time()
        _, diag = run()
        return diag, time.process_time() - t


def gibbs(n: int = 4096, grid_samples: int = 1024, sizes=(10, 32, 100, 316)) -> None:
    T = DEFAULT_TEMPERATURE
    samplers = [("block Gibbs (`sampler=\"auto\"`)", None),
                ("Crank-Nicolson MALA, Hessian-preconditioned (previous default)", MCMCSettings()),
                ("classic MALA, Hessian-preconditioned", MCMCSettings(scheme="euler")),
                ("plain Langevin (classic MALA, isotropic step)", MCMCSettings(scheme="euler", preconditioned=False))]
    cases = [("digits", *default_setup(dataset="digits")[:2], n), ("iris", *default_setup(dataset="iris")[:2], n),
             ("grid 100x100, a diode at every node", grid_network(100, diodes=True), None, grid_samples)]
    print(f"T = {T:g} W; ESS/s = min ESS over inputs, free coordinates and energy, times the inputs, per CPU second")
    print("| network | free nodes | diodes | colours | inputs x samples | equilibrium (s) | sampler | ESS per input (min) | CPU seconds | ESS/s | vs previous default | vs plain Langevin |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, m, u, N in cases:
        u = m.default_inputs[None] if u is None else u
        t = time.process_time()
        s0 = equilibrium(m, u)
        t_eq = time.process_time() - t
        colours = colour_free_nodes(m).n_colours
        rows = []
        for name, st in samplers:
            if st is None:
                run = lambda: sample_gibbs(m, m.default_theta, u, T, N, np.random.default_rng(1), s_min=s0)  # noqa: E731
            elif m.n_free > 2000:
                rows.append((name, None, None, None))   # dense (B, n, n) Hessian and its Cholesky
                continue
            else:
                run = lambda st=st: sample_mala(m, m.default_theta, u, T, N, np.random.default_rng(1),  # noqa: E731
                                                settings=st, s_min=s0)
            diag, sec = _timed(run)
            rows.append((name, diag, sec, diag.ess.min() * len(u) / sec))
        base = {r[0]: r[3] for r in rows}
        prev, plain = base[samplers[1][0]], base[samplers[3][0]]
        for name, diag, sec, rate in rows:
            if diag is None:
                print(f"| {label} | {m.n_free} | {len(m.diode_names)} | {colours} | | | {name} | not run: a dense "
                      f"{m.n_free}x{m.n_free} Hessian per input ({8 * m.n_free ** 2 / 1e9:.1f} GB) | | | | |")
                continue
            vs = lambda b: f"{rate / b:.1f}x" if b else "-"   # noqa: E731
            print(f"| {label} | {m.n_free} | {len(m.diode_names)} | {colours} | {len(u)} x {N} | {t_eq:.2f} | {name} | "
                  f"{diag.ess.min():.0f} | {sec:.2f} | {rate:.3g} | {vs(prev)} | {vs(plain)} |")
    print()
    print(f"| grid | free nodes | samples ({GIBBS_SETTINGS.chains} chains) | sweeps | CPU seconds | ms per sweep per 1000 nodes | ESS (min) | seconds per effective sample | per effective sample per 1000 nodes (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in sizes:
        m = grid_network(k, diodes=True)
        u = m.default_inputs[None]
        s0 = equilibrium(m, u)
        colour_free_nodes(m)                         # once per network, not per call
        N = 256 if k > 200 else grid_samples
        diag, sec = _timed(lambda: sample_gibbs(m, m.default_theta, u, T, N, np.random.default_rng(1), s_min=s0))
        sweeps = GIBBS_SETTINGS.burn_in + -(-N // GIBBS_SETTINGS.chains)
        ess = diag.ess.min()
        print(f"| {k}x{k} | {m.n_free} | {N} | {sweeps} | {sec:.2f} | {1e6 * sec / sweeps / m.n_free:.2f} | {ess:.0f} | "
              f"{sec / ess:.3g} | {1e6 * sec / ess / m.n_free:.3g} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("throughput", "mala", "variance", "gibbs"))
    p.add_argument("--dataset", default="iris", help="default network of this data set (mala)")
    p.add_argument("--samples", type=int, default=4096, help="samples per input (mala, gibbs)")
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 32, 100, 316],
                   help="grid sides of the gibbs scaling table (default: 10 32 100 316)")
    a = p.parse_args(argv)
    with threadpool_limits(1):
        if a.what == "mala":
            mala(a.dataset, a.samples)
        elif a.what == "gibbs":
            gibbs(a.samples, sizes=tuple(a.sizes))
        else:
            {"throughput": throughput, "variance": variance}[a.what]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
