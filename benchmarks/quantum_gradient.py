"""Quantum EP gradient: cost against finite differences, and the shot budget / beta trade-off.

    OPENBLAS_NUM_THREADS=1 python benchmarks/quantum_gradient.py            # full run
    OPENBLAS_NUM_THREADS=1 python benchmarks/quantum_gradient.py --quick    # 8 and 12 qubits

Part 1 times one full gradient (every J, b, h) of the ground state of a random network
(a ring plus chords) at 8, 12 and 16 qubits, all with Lanczos states: centred EP
(1 free + 2 nudged eigensolves), the perturbative rule (1 eigensolve + 1 MINRES solve)
and centred finite differences (2 eigensolves per parameter). At 16 qubits finite
differences are timed on a sample of parameters and scaled to all of them (stated in the
output). Ratios are against EP measured in the same run.

Part 2: for a 6-qubit network, the bias of centred EP as a function of beta (exact
expectations) and its shot noise with N preparations per phase and basis setting,
``sd = sqrt(Var_+ + Var_-) / (2 beta sqrt(N))`` with the exact single-shot variances
``1 - <O>^2``; hence the shots needed for a given RMS error, ``N = s1^2 / (eps^2 - bias^2)``.
One point is checked by simulated shots.
"""

from __future__ import annotations

import argparse
import json

import networkx as nx
import numpy as np
from threadpoolctl import threadpool_limits

from analog_ep.learning import quantum_rules as qr
from timing import best_of
from analog_ep.models.quantum import compile_quantum, solve_levels


def ring_network(n: int, seed: int, chords: int) -> nx.Graph:
    rng = np.random.default_rng(seed)
    G = nx.cycle_graph([f"q{i}" for i in range(n)])
    while G.number_of_edges() < n + chords:
        a, b = rng.choice(n, 2, replace=False)
        G.add_edge(f"q{a}", f"q{b}")
    G.graph["family"] = "quantum"
    for i, v in enumerate(G.nodes):
        G.nodes[v].update(role="input" if i < 2 else ("output" if i >= n - 2 else "hidden"),
                          b=rng.uniform(-0.4, 0.4), h=rng.uniform(1.0, 1.5))
    for a, b in G.edges:
        G.edges[a, b]["J"] = rng.uniform(-0.5, 0.5)
    return G


def timing(sizes: list[int], fd_sample: int) -> list[dict]:
    rows = []
    u, d = np.array([[0.8, -0.6]]), np.array([[1.0, -1.0]])
    for n in sizes:
        model = compile_quantum(ring_network(n, seed=n, chords=n // 2))
        theta = model.default_theta
        P = len(theta)
        kw = dict(method="lanczos")
        # EP and exact are cheap: best of 3 (the least disturbed by other load); FD once
        t_ep, ep = best_of(lambda: qr.eigenstate_gradients(model, theta, u, d, rule="ep", beta=1e-3, **kw))
        t_ex, ex = best_of(lambda: qr.eigenstate_gradients(model, theta, u, d, rule="exact", **kw))
        k = P if n < 16 else min(P, fd_sample)
        sub = compile_quantum(ring_network(n, seed=n, chords=n // 2))
        # finite differences of <C> on the first k parameters (the same network)
        t_fd, fd = best_of(lambda: _fd_first(sub, theta, u, d, k), repeats=1)
        t_fd_all = t_fd * P / k
        free = solve_levels(model, theta, u, n_levels=2, method="lanczos")
        nudge = 1e-3 * model.cost_diagonal(d)
        cold = solve_levels(model, theta, u, n_levels=2, method="lanczos", extra_diagonal=nudge)
        warm = solve_levels(model, theta, u, n_levels=2, method="lanczos", extra_diagonal=nudge,
                            start=free.vectors)
        rows.append({"qubits": n, "parameters": P,
                     "products_free": int(free.matvecs[0]), "products_nudged_cold": int(cold.matvecs[0]),
                     "products_nudged_warm": int(warm.matvecs[0]),
                     "fd_over_ep_ideal": round((2 * P + 1) / 3, 1),
                     # products of the solves each rule makes (FD's shifted solves cost about
                     # a warm nudged one): a measure of the cost that other load cannot disturb
                     "fd_over_ep_products": round((free.matvecs[0] + 2 * P * warm.matvecs[0])
                                                  / (free.matvecs[0] + 2 * warm.matvecs[0]), 1),
                     "ep_s": round(t_ep, 3), "exact_minres_s": round(t_ex, 3),
                     "fd_s": round(t_fd_all, 2), "fd_timed_parameters": k,
                     "fd_over_ep": round(t_fd_all / t_ep, 1),
                     "max|ep-exact|": float(np.max(np.abs(ep.gradient - ex.gradient))),
                     "max|fd-exact|": float(np.max(np.abs(fd - ex.gradient[0, :k])))})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _fd_first(model, theta, u, d, k, step=1e-4):
    """Centred differences of the ground-state <C> for the first k parameters, each shifted
    solve started from the free levels (as the library's ``fd`` rule does)."""
    cd = model.cost_diagonal(d)
    free = solve_levels(model, theta, u, n_levels=2, method="lanczos").vectors
    out = np.empty(k)
    for j in range(k):
        vals = []
        for s in (1.0, -1.0):
            t = theta.copy()
            t[j] += s * step
            psi = solve_levels(model, t, u, n_levels=2, method="lanczos", start=free).vectors[0, :, 0]
            vals.append(psi ** 2 @ cd[0])
        out[j] = (vals[0] - vals[1]) / (2 * step)
    return out


def tradeoff(rng: np.random.Generator) -> dict:
    model = compile_quantum(ring_network(6, seed=1, chords=3))
    theta, u, d = model.default_theta, np.array([[0.8, -0.6]]), np.array([[1.0, -1.0]])
    exact = qr.eigenstate_gradients(model, theta, u, d, rule="exact").gradient[0]
    cd = model.cost_diagonal(d)
    psi0 = solve_levels(model, theta, u, n_levels=2, method="dense").vectors[:, :, 0]
    rows = []
    for beta in (0.01, 0.02, 0.05, 0.1, 0.2, 0.4):
        ep = qr.eigenstate_gradients(model, theta, u, d, rule="ep", beta=beta).gradient[0]
        bias = float(np.sqrt(np.mean((ep - exact) ** 2)))
        var = []
        for sgn in (1.0, -1.0):
            spec = solve_levels(model, theta, u, n_levels=4, method="dense", extra_diagonal=sgn * beta * cd)
            psi = spec.vectors[:, :, np.argmax(np.abs(np.einsum("bx,bxm->bm", psi0, spec.vectors)))]
            var.append(1.0 - model.local_terms(psi, psi)[0] ** 2)    # +-1 outcomes
        s1 = float(np.sqrt(np.mean(var[0] + var[1])) / (2 * beta))  # RMS sd of one-shot estimate
        need = {f"shots_for_rms_{eps}": (int(np.ceil(s1 ** 2 / (eps ** 2 - bias ** 2)))
                                         if eps > bias else None) for eps in (0.1, 0.03, 0.01)}
        rows.append({"beta": beta, "rms_bias": bias, "rms_sd_one_shot": s1, **need})
        print(json.dumps(rows[-1]), flush=True)
    # check the noise model once by simulation
    beta, shots, reps = 0.1, 2000, 200
    errs = np.array([qr.eigenstate_gradients(model, theta, u, d, rule="ep", beta=beta, shots=shots,
                                             rng=rng).gradient[0] for _ in range(reps)])
    ep = qr.eigenstate_gradients(model, theta, u, d, rule="ep", beta=beta).gradient[0]
    simulated = float(np.sqrt(np.mean(np.var(errs, axis=0, ddof=1))))
    predicted = [r for r in rows if r["beta"] == beta][0]["rms_sd_one_shot"] / np.sqrt(shots)
    check = {"beta": beta, "shots": shots, "simulated_rms_sd": simulated,
             "predicted_rms_sd": float(predicted),
             "simulated_mean_minus_exact_ep_rms": float(np.sqrt(np.mean((errs.mean(0) - ep) ** 2)))}
    print(json.dumps(check), flush=True)
    return {"rows": rows, "check": check, "parameters": len(theta), "qubits": model.n_qubits}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="8 and 12 qubits only")
    p.add_argument("--fd-sample", type=int, default=8, help="parameters timed by FD at 16 qubits")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    with threadpool_limits(1):
        timing([8, 12] if a.quick else [8, 12, 16], a.fd_sample)
        tradeoff(np.random.default_rng(a.seed))


if __name__ == "__main__":
    main()
