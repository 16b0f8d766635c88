"""Thermal oscillator networks: MALA on the torus against the exact von Mises law and
against quadrature on the torus, basin-visit statistics, and the thermal identities
(covariance = nudged = finite differences of the quadrature <C>) through the gradient
rules. Samples come from independent chains (one kept draw per chain after burn-in), so
standard errors are those of independent draws."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from scipy import integrate, special, stats

from analog_ep.models.periodic_cost import PeriodicCost
from analog_ep.learning.registry import make_rule
from analog_ep.models.oscillator import compile_oscillator
from analog_ep.physics.torus import basin_visits, sample_torus, solve_torus
from analog_ep.substrates.oscillator import EmulatedOscillators


def von_mises_pdf(phi, kappa, mu):
    """exp(kappa cos(phi - mu)) / (2 pi I0(kappa)), normalised with i0e (no overflow)."""
    return np.exp(kappa * (np.cos(phi - mu) - 1.0)) / (2 * np.pi * special.i0e(kappa))


def single(J=1.2, psi=0.9, a=-0.4, c=0.5):
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=psi)
    G.add_node("o", role="output", a=a, c=c)
    G.add_edge("x", "o", coupling=J)
    h = J * np.exp(1j * psi) + a + 1j * c
    return compile_oscillator(G), abs(h), np.angle(h)


@pytest.mark.parametrize("T", [0.3, 2.0])
def test_mala_matches_the_von_mises_law(T):
    m, h, mu = single()
    kappa = h / T
    assert integrate.quad(von_mises_pdf, -np.pi, np.pi, args=(kappa, mu))[0] == pytest.approx(1.0, abs=1e-10)
    N = 4000
    r = sample_torus(m, None, None, temperature=T, n_samples=N, rng=np.random.default_rng(7),
                     chains=N, burn=150, start="uniform")
    phi = r.samples[0, :, 0]
    assert np.all((phi >= -np.pi) & (phi < np.pi))
    edges = np.linspace(-np.pi, np.pi, 21)
    p = np.array([integrate.quad(von_mises_pdf, lo, hi, args=(kappa, mu))[0] for lo, hi in zip(edges[:-1], edges[1:])])
    counts = np.histogram(phi, edges)[0]
    chi2 = np.sum((counts - N * p) ** 2 / (N * p))
    assert stats.chi2.sf(chi2, len(p) - 1) > 1e-3
    mean_cos = np.cos(phi - mu)
    exact = special.i1e(kappa) / special.i0e(kappa)
    assert abs(mean_cos.mean() - exact) < 4 * mean_cos.std() / np.sqrt(N)


def test_unadjusted_langevin_is_close_to_von_mises_at_small_step():
    m, h, mu = single()
    T, N = 1.0, 4000
    r = sample_torus(m, None, None, temperature=T, n_samples=N, rng=np.random.default_rng(8),
                     chains=N, burn=600, method="langevin", step=0.02, start="uniform")
    mean_cos = np.cos(r.samples[0, :, 0] - mu)
    exact = special.i1e(h / T) / special.i0e(h / T)
    # the O(step) bias of the unadjusted chain is well below 0.02 at step 0.02
    assert abs(mean_cos.mean() - exact) < 4 * mean_cos.std() / np.sqrt(N) + 0.02
    assert np.all(r.acceptance == 1.0)


# ----- quadrature references on the torus ------------------------------------------------

def coupled(n_free=2, seed=3):
    """An input and ``n_free`` free oscillators (the last one the output), chain-coupled, with
    trainable couplings and fields."""
    rng = np.random.default_rng(seed)
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.4)
    names = [f"h{k}" for k in range(n_free - 1)] + ["o"]
    for k, name in enumerate(names):
        G.add_node(name, role="output" if name == "o" else "hidden", field_trainable=True,
                   a=float(rng.uniform(-0.5, 0.5)), c=float(rng.uniform(-0.5, 0.5)))
    G.add_edge("x", names[0], name="J1", coupling=1.0, trainable=True)
    for k in range(1, n_free):
        G.add_edge(names[k - 1], names[k], name=f"J{k + 1}", coupling=float(rng.uniform(0.5, 1.0)), trainable=True)
    if n_free > 2:
        G.add_edge("x", names[-1], name="Jskip", coupling=-0.4, trainable=True)
    return compile_oscillator(G)


def torus_grid(n, k):
    x = np.linspace(-np.pi, np.pi, k, endpoint=False)
    return np.stack(np.meshgrid(*([x] * n), indexing="ij"), axis=-1).reshape(-1, n)


def quadrature(model, theta, u, d, T, beta=0.0, k=96):
    """Exact Boltzmann expectations by the trapezoid rule on the torus (spectrally accurate
    for periodic integrands): per input b, <C>, <A> (P,) and Cov(C, A) (P,)."""
    cost = PeriodicCost(tuple(int(i) for i in model.outputs))
    S = torus_grid(model.n_free, k)
    out = []
    for b in range(len(u)):
        ub, db = u[b:b + 1], d[b:b + 1]
        F = model.energy(theta, ub, S) + beta * cost.value(S, db)
        w = np.exp(-(F - F.min()) / T)
        w /= w.sum()
        C = cost.value(S, db)
        A = model.dE_dtheta(theta, ub, S)
        mC, mA = w @ C, w @ A
        out.append((mC, mA, w @ ((C - mC)[:, None] * (A - mA))))
    return out


def exact_gradient(model, theta, u, d, T, h=1e-5, k=96):
    """Batch-mean d<C>/dtheta by central differences of the quadrature <C>."""
    g = np.empty(len(theta))
    for p in range(len(theta)):
        e = np.zeros(len(theta))
        e[p] = h
        up = np.mean([q[0] for q in quadrature(model, theta + e, u, d, T, k=k)])
        dn = np.mean([q[0] for q in quadrature(model, theta - e, u, d, T, k=k)])
        g[p] = (up - dn) / (2 * h)
    return g


U = np.array([[0.4], [-0.9]])
D = np.array([[np.pi / 2], [-np.pi / 2]])


@pytest.mark.parametrize("n_free, k", [(2, 160), (3, 48)])
def test_mala_moments_match_quadrature(n_free, k):
    m = coupled(n_free)
    th, T, N = m.default_theta, 0.5, 3000
    r = sample_torus(m, th, U, temperature=T, n_samples=N, rng=np.random.default_rng(11),
                     chains=N, burn=150, start="uniform")
    S = torus_grid(n_free, k)
    for b in range(2):
        F = m.energy(th, U[b:b + 1], S)
        w = np.exp(-(F - F.min()) / T)
        w /= w.sum()
        for f in (np.cos, np.sin):
            est = f(r.samples[b]).mean(axis=0)
            se = f(r.samples[b]).std(axis=0) / np.sqrt(N)
            assert np.all(np.abs(est - w @ f(S)) < 4 * se)


def test_covariance_and_nudged_identities_hold_exactly_on_the_torus():
    """Quadrature alone: -(1/T) Cov(C, A) = d/dbeta <A>_beta = d<C>/dtheta."""
    m = coupled(2)
    th, T = m.default_theta, 0.5
    g_fd = exact_gradient(m, th, U, D, T)
    cov = -np.mean([q[2] for q in quadrature(m, th, U, D, T)], axis=0) / T
    b = 1e-5
    nudged = (np.mean([q[1] for q in quadrature(m, th, U, D, T, beta=b)], axis=0)
              - np.mean([q[1] for q in quadrature(m, th, U, D, T, beta=-b)], axis=0)) / (2 * b)
    assert np.allclose(cov, g_fd, atol=1e-7)
    assert np.allclose(nudged, g_fd, atol=1e-7)


@pytest.mark.parametrize("rule, options", [
    ("thermal", {"samples": 3000}),
    ("thermal-nudged", {"samples": 1500, "beta": 0.1}),
])
def test_thermal_rules_match_the_exact_gradient_within_standard_errors(rule, options):
    m = coupled(2)
    th, T = m.default_theta, 0.5
    board = EmulatedOscillators(m, temperature=T, rng=np.random.default_rng(21), chains=options["samples"],
                                burn=100)
    cost = PeriodicCost(tuple(int(i) for i in m.outputs))
    r = make_rule(rule, temperature=T, **options).gradient(m, board, cost, th, U, D, np.random.default_rng(22))
    g = exact_gradient(m, th, U, D, T)
    z = (r.gradient - g) / r.stderr
    # thermal-nudged carries an O(beta^2) bias: allow 0.5 % of the gradient's scale on top
    slack = 0.005 * np.max(np.abs(g)) if rule == "thermal-nudged" else 0.0
    assert np.all(np.abs(r.gradient - g) < 4.5 * r.stderr + slack), z
    assert r.loss == pytest.approx(np.mean([q[0] for q in quadrature(m, th, U, D, T)]), abs=0.03)


# ----- basins ------------------------------------------------------------------------------

def canted_pair(c1=0.15):
    """Two oscillators pulled towards an input at 0 (J = 1) and coupled antiferromagnetically
    (K = -1): two canted minima (d, -d), (-d, d) with cos d = J / 2|K|; a small field c1 on
    the first makes them unequal."""
    G = nx.Graph(family="oscillator")
    G.add_node("x", role="input", phase=0.0)
    G.add_node("h", role="hidden", c=c1)
    G.add_node("o", role="output")
    G.add_edge("x", "h", coupling=1.0)
    G.add_edge("x", "o", coupling=1.0)
    G.add_edge("h", "o", coupling=-1.0)
    return compile_oscillator(G)


def test_solver_reports_both_canted_minima():
    m = canted_pair(c1=0.0)
    eq = solve_torus(m, None, None, restarts=12)
    assert eq.n_minima[0] == 2 and eq.gap[0] == pytest.approx(0.0, abs=1e-10)
    assert np.abs(eq.s[0]) == pytest.approx(np.full(2, np.pi / 3), abs=1e-8)    # cos d = 1/2


def test_basin_visits_match_the_quadrature_basin_weights():
    m = canted_pair()
    T, N = 0.35, 1500
    r = sample_torus(m, None, None, temperature=T, n_samples=N, rng=np.random.default_rng(31),
                     chains=N, burn=150, start="uniform")
    visits = basin_visits(m, None, None, r.samples, max_quench=N)
    assert len(visits.energies[0]) == 2
    # reference: quench every point of a quadrature grid, weighted by its Boltzmann weight
    S = torus_grid(2, 64)
    F = m.energy(None, None, S)
    w = np.exp(-(F - F.min()) / T)
    ref = basin_visits(m, None, None, S[None], max_quench=len(S), weights=w[None])
    assert np.allclose(ref.energies[0], visits.energies[0], atol=1e-9)
    p_exact = ref.fractions[0]
    se = np.sqrt(p_exact * (1 - p_exact) / N)
    assert np.all(np.abs(visits.fractions[0] - p_exact) < 4 * se)
    assert 0.1 < p_exact[1] < 0.5 and p_exact.sum() == pytest.approx(1.0)
    # a few long chains hop between the two basins: split-R-hat of F near 1
    long = sample_torus(m, None, None, temperature=T, n_samples=2000, rng=np.random.default_rng(32),
                        chains=8, burn=200, thin=2, start="uniform")
    assert np.all(long.rhat < 1.05) and np.all(long.ess > 200)
    board = EmulatedOscillators(m, temperature=T, rng=np.random.default_rng(33), chains=200)
    board.sample(200)
    assert len(board.basin_visits().energies[0]) == 2
