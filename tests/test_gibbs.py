"""Block-Gibbs sampler against exact references: quadrature of small diode networks (means,
covariances, marginals), the Gaussian closed form of linear networks, gradients of the
thermal rules against MALA's and the exact ones; the colouring; the sampler option."""

import warnings

import networkx as nx
import numpy as np
import pytest
from scipy import stats

from analog_ep.cli import main
from analog_ep.errors import ConfigError
from analog_ep.learning.thermal_rules import ThermalCVRule, ThermalExactRule, ThermalRule
from analog_ep.models.cost import SquaredCost
from analog_ep.models.resistive import compile_network
from analog_ep.networks import default_network
from analog_ep.physics import sampling
from analog_ep.physics.equilibrium import solve_equilibrium
from analog_ep.physics.gibbs import (MAX_COLOURS, colour_free_nodes, free_node_graph,
                                     sample_gibbs)
from analog_ep.physics.sampling import MCMCSettings, SamplerWarning
from analog_ep.schema import normalise_resistive
from analog_ep.substrates.emulated import EmulatedBoard, choose_sampler

from test_thermal_rules import D, U, bonferroni_z, linear_setup


@pytest.fixture(autouse=True)
def fresh_warnings():
    sampling._WARNED.clear()


def network(nodes, elements):
    """A resistive network from ``nodes`` {name: (role, voltage)} and ``elements`` (key, a,
    b, value): resistors ``R*`` of conductance ``value``, diodes ``D*`` (anode a) of
    saturation current ``value``."""
    G = nx.MultiGraph(family="resistive")
    for name, (role, v) in nodes.items():
        G.add_node(name, role=role, **({} if v is None else {"voltage": v}))
    for key, a, b, value in elements:
        if key.startswith("R"):
            G.add_edge(a, b, key=key, element="resistor", conductance=value, trainable=True)
        else:
            G.add_edge(a, b, key=key, element="diode", anode=a, cathode=b, i_s=value)
    return compile_network(normalise_resistive(G))


#: Biases that put every diode of the small networks near its knee (about 0.5 V forward).
CLAMPED = {"in": ("input", 0.6), "0": ("ground", None), "vb": ("bias", 0.6), "vu": ("bias", -0.3)}


def one_node():
    return network({**CLAMPED, "o": ("output", None)},
                   [("R1", "in", "o", 1e-3), ("R2", "o", "0", 2e-3), ("D1", "o", "vu", 1e-12)])


def two_nodes():
    return network({**CLAMPED, "h": ("hidden", None), "o": ("output", None)},
                   [("R1", "in", "h", 1e-3), ("R2", "h", "o", 1.5e-3), ("R3", "o", "0", 1e-3),
                    ("D1", "h", "vu", 1e-12), ("D2", "vb", "o", 1e-12)])


def three_nodes():
    """A diode between two free nodes (h2 -> h1) as well as diodes to bias sources."""
    return network({**CLAMPED, "h1": ("hidden", None), "h2": ("hidden", None), "o": ("output", None)},
                   [("R1", "in", "h1", 1e-3), ("R2", "h1", "h2", 8e-4), ("R3", "h2", "o", 1.2e-3),
                    ("R4", "o", "0", 1e-3), ("R5", "h1", "0", 5e-4), ("R6", "in", "h2", 4e-4),
                    ("D1", "h1", "vu", 1e-12), ("D2", "h2", "h1", 1e-12), ("D3", "vb", "o", 1e-12)])


def quadrature(m, th, u, T, points=(4001, 241, 61)):
    """Grid, normalised weights and the Laplace widths of the law of every free node."""
    n = m.n_free
    s0 = solve_equilibrium(m, th, u).s[0]
    sd = np.sqrt(T * np.diag(np.linalg.inv(m.hessian(th, u, s0[None])[0])))
    k = points[n - 1]
    axes = [s0[i] + np.linspace(-9, 9, k) * sd[i] for i in range(n)]
    X = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, n)
    E = m.energy(th, np.repeat(u, len(X), axis=0), X)
    w = np.exp(-(E - E.min()) / T)
    return X, w / w.sum(), axes


@pytest.mark.slow
@pytest.mark.parametrize("make", [one_node, two_nodes, three_nodes], ids=["1", "2", "3"])
def test_moments_and_marginals_match_quadrature(make):
    """T = 3e-6 W: widths of 20-30 mV against the diodes' 26 mV, a skewed law. Means and
    covariances within 4.5 standard errors from the ESS (Bonferroni over at most 9 checks at
    1e-4); each marginal passes a KS test (p > 1e-4) on draws thinned to the ESS."""
    m = make()
    th, u, T, N = m.default_theta, np.array([[0.6]]), 3e-6, 6000
    X, w, axes = quadrature(m, th, u, T)
    mean = w @ X
    cov = (X - mean).T @ ((X - mean) * w[:, None])
    S, diag = sample_gibbs(m, th, u, T, N, np.random.default_rng(7))
    x, ess = S[0], diag.ess[0]
    assert ess > 0.2 * N and diag.sampler == "Gibbs"
    se_mean = np.sqrt(np.diag(cov) / ess)
    assert np.all(np.abs(x.mean(0) - mean) < 4.5 * se_mean)
    s0 = solve_equilibrium(m, th, u).s[0]
    assert np.max(np.abs(mean - s0) / se_mean) > 5      # the test tells the mean from the minimum
    c = x - x.mean(0)
    prod = c[:, :, None] * c[:, None, :]
    se_cov = prod.std(axis=0) / np.sqrt(ess)
    assert np.all(np.abs(prod.mean(0) - cov) < 4.5 * se_cov)
    thin = int(np.ceil(N / ess))
    for i in range(m.n_free):
        grid = axes[i]
        marg = np.bincount(np.searchsorted(grid, X[:, i]), w, len(grid))
        cdf = np.cumsum(marg)                    # at the upper edges of the grid's cells
        edges = grid + 0.5 * (grid[1] - grid[0])
        p = stats.kstest(x[::thin, i], lambda v: np.interp(v, edges, cdf)).pvalue
        assert p > 1e-4, (i, p)


def test_a_wide_law_against_steep_diodes_matches_quadrature():
    """T = 1e-3 W through a 1e-4 S resistor: a 3 V wide law cut off by two diodes that
    conduct below -0.27 and -0.77 V. The hull's tangents would sit deep in their forward
    region (log-density ~ -1e30, lost to cancellation) and the mode search would start on
    the wrong side of a steep knee; the mean within 4.5 ESS standard errors, KS p > 1e-4."""
    m = network({"0": ("ground", None), "in": ("input", 0.0), "b1": ("bias", -0.27), "b2": ("bias", -0.77),
                 "o": ("output", None)},
                [("R1", "in", "o", 1e-4), ("D1", "b1", "o", 1e-9), ("D2", "b2", "o", 1e-9)])
    th, u, T, N = m.default_theta, np.array([[0.0]]), 1e-3, 4000
    X, w, axes = quadrature(m, th, u, T)
    S, diag = sample_gibbs(m, th, u, T, N, np.random.default_rng(3))
    x, ess = S[0][:, 0], diag.ess[0]
    mean = w @ X[:, 0]
    sd = np.sqrt(w @ (X[:, 0] - mean) ** 2)
    assert abs(x.mean() - mean) < 4.5 * sd / np.sqrt(ess)
    cdf = np.cumsum(w)
    edges = axes[0] + 0.5 * (axes[0][1] - axes[0][0])
    thin = int(np.ceil(N / ess))
    assert stats.kstest(x[::thin], lambda v: np.interp(v, edges, cdf)).pvalue > 1e-4


def test_linear_networks_match_the_gaussian_closed_form():
    """Mean = the equilibrium and covariance = T H^-1 on a 12 x 12 grid (144 free nodes,
    4 colours at most): whitened errors of 8 random projections and the variances of 8
    nodes within 4.5 standard errors of the ESS."""
    k = 12
    nodes = {"in1": ("input", 1.0), "in2": ("input", -1.0), "0": ("ground", None)}
    nodes.update({f"n{i}_{j}": ("hidden", None) for i in range(k) for j in range(k)})
    el, e = [], 0
    for i in range(k):
        for j in range(k):
            for a, b, g in ((f"n{i}_{j}", f"n{i + 1}_{j}", 1e-3), (f"n{i}_{j}", f"n{i}_{j + 1}", 1e-3),
                            (f"n{i}_{j}", "0", 3e-4)):
                if b in nodes:
                    e += 1
                    el.append((f"R{e}", a, b, g))
    el += [("R9998", "in1", "n0_0", 1e-3), ("R9999", "in2", f"n{k - 1}_{k - 1}", 1e-3)]
    m = network(nodes, el)
    assert colour_free_nodes(m).n_colours == 2
    th, u, T, N = m.default_theta, m.default_inputs[None], 1e-7, 4000
    # strong couplings: the ESS is 0.15 N (it warns; the tolerances use it)
    S, diag = sample_gibbs(m, th, u, T, N, np.random.default_rng(3), check=False)
    s0 = solve_equilibrium(m, th, u).s[0]
    Sigma = T * np.linalg.inv(m.hessian(th, u, s0[None])[0])
    rng = np.random.default_rng(4)
    P = rng.standard_normal((8, m.n_free))
    y = (S[0] - s0) @ P.T
    sd = np.sqrt(np.einsum("ki,ij,kj->k", P, Sigma, P))
    ess = diag.ess[0]
    assert np.all(np.abs(y.mean(0)) < 4.5 * sd / np.sqrt(ess))
    var = y.var(axis=0) / sd ** 2                       # sd of a sample variance: sqrt(2/ESS)
    assert np.all(np.abs(var - 1) < 4.5 * np.sqrt(2 / ess))
    idx = rng.choice(m.n_free, 8, replace=False)
    v = S[0][:, idx].var(axis=0) / np.diag(Sigma)[idx]
    assert np.all(np.abs(v - 1) < 4.5 * np.sqrt(2 / ess))


def grid_with_diodes(k: int):
    nodes = {"in1": ("input", 1.0), "in2": ("input", -1.0), "0": ("ground", None), "vb": ("bias", 0.3)}
    nodes.update({f"n{i}_{j}": ("hidden", None) for i in range(k) for j in range(k)})
    el = []
    for i in range(k):
        for j in range(k):
            for b in (f"n{i + 1}_{j}", f"n{i}_{j + 1}", "0"):
                if b in nodes:
                    el.append((f"R{len(el) + 1}", f"n{i}_{j}", b, 1e-3 if b != "0" else 1e-4))
            el.append((f"D{i * k + j + 1}", f"n{i}_{j}", "vb", 1e-12))
    el += [("R90001", "in1", "n0_0", 1e-3), ("R90002", "in2", f"n{k - 1}_{k - 1}", 1e-3)]
    return network(nodes, el)


def test_a_sparse_diode_grid_samples_its_laplace_law_at_low_temperature():
    """25 x 25 grid (625 free nodes: sparse factors), a diode at every node, T = 1e-9 W
    (a few mV): close to the Laplace law, so the mean is the minimum within 4.5 standard
    errors at each node (Bonferroni over 625 nodes at 5e-3: z 4.5)."""
    m = grid_with_diodes(25)
    assert colour_free_nodes(m).n_colours == 2
    th, u, T = m.default_theta, m.default_inputs[None], 1e-9
    S, diag = sample_gibbs(m, th, u, T, 256, np.random.default_rng(5), check=False)
    s0 = solve_equilibrium(m, th, u).s[0]
    sd = S[0].std(axis=0)
    assert np.all(np.abs(S[0].mean(0) - s0) < 4.5 * sd / np.sqrt(diag.ess[0]))


@pytest.mark.slow
def test_thermal_gradients_from_gibbs_match_exact_and_mala():
    """Linear network: ``thermal`` and ``thermal-cv`` from Gibbs readings against
    ``thermal-exact``; diode network: Gibbs against MALA, each within its stated standard
    errors (Bonferroni z over the parameters)."""
    m, cost, board, th = linear_setup(T=1e-6)
    board.sampler = "gibbs"
    exact = ThermalExactRule().gradient(m, board, cost, th, U, D, None).gradient
    for rule in (ThermalRule(samples=4000), ThermalCVRule(samples=1000)):
        r = rule.gradient(m, board, cost, th, U, D, None)
        assert board.last_diagnostics.sampler == "Gibbs"
        assert np.max(np.abs(r.gradient - exact) / r.stderr) < bonferroni_z(len(th))
    m, cost, board, th = linear_setup(T=3e-7, diodes=True, seed=3)
    results = {}
    for sampler in ("gibbs", "mala"):
        board.sampler = sampler
        results[sampler] = ThermalCVRule(samples=4000).gradient(m, board, cost, th, U, D, None)
    g, mm = results["gibbs"], results["mala"]
    z = (g.gradient - mm.gradient) / np.hypot(g.stderr, mm.stderr)
    assert np.max(np.abs(z)) < bonferroni_z(len(th))


# ----- colouring ------------------------------------------------------------------------------
def test_colouring_is_proper_and_small_on_grids_and_layered_networks():
    m = compile_network(default_network("iris", 4, 3, np.random.default_rng(0)))
    c = colour_free_nodes(m)
    adj = free_node_graph(m).tocoo()
    assert not np.any(c.colour[adj.row] == c.colour[adj.col])
    assert c.n_colours == 2                              # hidden layer | outputs
    assert sorted(np.concatenate([b.pos for b in c.blocks]).tolist()) == list(range(m.n_free))
    # differential outputs read in pairs: the nudged cost couples o_kp and o_km
    cost = SquaredCost(tuple(int(i) for i in m.outputs), differential=True)
    cn = colour_free_nodes(m, cost)
    pairs = np.asarray(cost.index).reshape(-1, 2)
    assert np.all(cn.colour[pairs[:, 0]] != cn.colour[pairs[:, 1]])
    assert colour_free_nodes(m) is c                     # cached per structure
    assert colour_free_nodes(three_nodes()).n_colours == 2


def complete_network(k: int):
    nodes = {"in": ("input", 0.5), "0": ("ground", None), "vb": ("bias", 0.3)}
    nodes.update({f"h{i}": ("hidden", None) for i in range(k)})
    el = [(f"R{i}_{j}", f"h{i}", f"h{j}", 1e-4) for i in range(k) for j in range(i + 1, k)]
    el += [(f"Rin{i}", "in", f"h{i}", 1e-3) for i in range(k)] + [("D1", "h0", "vb", 1e-12)]
    return network(nodes, el)


def test_the_sampler_option_chooses_and_falls_back_with_a_message():
    lin = linear_setup()[0]
    layered = compile_network(default_network("xor", 2, 2, np.random.default_rng(0)))
    dense = complete_network(MAX_COLOURS + 2)
    assert choose_sampler(lin, "auto") == ("gaussian", None)
    assert choose_sampler(layered, "auto") == ("gibbs", None)
    assert choose_sampler(dense, "auto") == ("mala", None)
    kind, message = choose_sampler(dense, "gibbs")
    assert kind == "mala" and "10 colours" in message and "MALA instead" in message
    with pytest.raises(ConfigError, match="linear network"):
        choose_sampler(layered, "gaussian")
    with pytest.raises(ConfigError, match="unknown sampler"):
        EmulatedBoard(lin, sampler="langevin")
    board = EmulatedBoard(dense, temperature=1e-7, rng=np.random.default_rng(0), sampler="gibbs")
    with pytest.warns(SamplerWarning, match="MALA instead"):
        board.sample(256)
    assert board.last_diagnostics.sampler == "MALA"
    with warnings.catch_warnings():                      # said once per board
        warnings.simplefilter("error", SamplerWarning)
        board.sample(256)
    board = EmulatedBoard(layered, temperature=1e-7, rng=np.random.default_rng(0))
    board.sample(16)
    assert board.last_diagnostics.sampler == "Gibbs"


def test_bad_counts_and_costs_are_refused():
    m = one_node()
    with pytest.raises(ConfigError, match="samples"):
        sample_gibbs(m, None, None, 1e-7, 0, np.random.default_rng(0))
    for bad in (dict(burn_in=0), dict(burn_in=-1), dict(chains=0), dict(thin=0)):
        with pytest.raises(ConfigError, match=">= 1"):
            MCMCSettings(**bad)
    with pytest.raises(ConfigError, match="temperature"):
        sample_gibbs(m, None, None, 0.0, 10, np.random.default_rng(0))

    class Periodic(SquaredCost):
        quadratic = False
    with pytest.raises(ConfigError, match="quadratic cost"):
        sample_gibbs(m, None, None, 1e-7, 10, np.random.default_rng(0), cost=Periodic((0,)),
                     targets=np.zeros((1, 1)), beta=1e-4)


def test_slow_mixing_warns_with_the_ess_like_mala():
    """A chain of 30 nodes joined by 10 mS resistors with 1 uS leaks: neighbouring nodes
    nearly equal, so single-site updates crawl and the ESS of a short run is small."""
    k = 30
    nodes = {"in": ("input", 0.5), "0": ("ground", None), "vb": ("bias", 0.3)}
    nodes.update({f"h{i}": ("hidden", None) for i in range(k)})
    el = [(f"R{i}", f"h{i}", f"h{i + 1}", 1e-2) for i in range(k - 1)]
    el += [(f"L{i}", f"h{i}", "0", 1e-6) for i in range(k)]
    el = [("R" + e[0], *e[1:]) for e in el] + [("Rin", "in", "h0", 1e-6), ("D1", "h5", "vb", 1e-12)]
    m = network(nodes, el)
    with pytest.warns(SamplerWarning, match=r"Gibbs diagnostics: ESS \d+ < 0.25 x 256 samples"):
        _, diag = sample_gibbs(m, None, None, 1e-7, 256, np.random.default_rng(0))
    assert diag.ess.min() < 64


def test_cli_takes_the_sampler_and_refuses_bad_values(capsys):
    import json
    assert main(["emulate", "xor_diode", "--samples", "400", "--sampler", "gibbs", "--format", "json"]) == 0
    gibbs = json.loads(capsys.readouterr().out)
    assert main(["emulate", "xor_diode", "--samples", "400", "--sampler", "mala", "--format", "json"]) == 0
    mala = json.loads(capsys.readouterr().out)
    # the same law: output means within 5 standard errors of the 400 readings
    a, b = gibbs["nodes"]["out"], mala["nodes"]["out"]
    assert abs(a["mean"] - b["mean"]) < 5 * np.hypot(a["std"], b["std"]) / np.sqrt(400)
    assert main(["emulate", "xor_diode", "--samples", "100", "--sampler", "gaussian"]) == 2
    assert "linear network" in capsys.readouterr().err
    assert main(["emulate", "divider", "--samples", "100", "--sampler", "hmc"]) == 2
    assert "unknown sampler 'hmc'" in capsys.readouterr().err
    assert main(["gradient", "xor_diode", "--target", "out=0.1", "--rule", "thermal", "--samples", "0",
                 "--sampler", "gibbs"]) == 2
    assert "expected an integer >= 1" in capsys.readouterr().err
    assert main(["gradient", "xor_diode", "--target", "out=0.1", "--rule", "thermal", "--samples", "64",
                 "--sampler", "gibbs", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["sampler"] == "gibbs"
    assert main(["gradient", "oscillator_xor", "--target", "y=0.5", "--sampler", "gibbs"]) == 2
    assert "sampler" in capsys.readouterr().err


def test_the_nudged_law_with_a_differential_cost_matches_its_gaussian_form():
    """Nudging a linear network by a differential cost (o1 - o2 against a target, which
    couples the two outputs and so adds a colouring edge): mean = the nudged equilibrium,
    covariance = T (H + beta d2C)^-1, within 4.5 ESS standard errors."""
    m = linear_setup()[0]
    cost = SquaredCost(tuple(int(i) for i in m.outputs), differential=True)
    th, u, d, T, beta, N = m.default_theta, U[:1], np.array([[0.3]]), 1e-7, 2e-3, 4000
    col = colour_free_nodes(m, cost)
    o1, o2 = m.outputs
    assert col.colour[o1] != col.colour[o2]
    S, diag = sample_gibbs(m, th, u, T, N, np.random.default_rng(8), cost=cost, targets=d, beta=beta,
                           check=False)
    s0 = solve_equilibrium(m, th, u, cost=cost, targets=d, beta=beta).s[0]
    Sigma = T * np.linalg.inv(m.hessian(th, u, s0[None])[0] + beta * cost.hessian(m.n_free))
    ess = diag.ess[0]
    sd = np.sqrt(np.diag(Sigma))
    assert np.all(np.abs(S[0].mean(0) - s0) < 4.5 * sd / np.sqrt(ess))
    assert np.all(np.abs(S[0].var(0) / np.diag(Sigma) - 1) < 4.5 * np.sqrt(2 / ess))
    r = cost.readout(S[0])[:, 0]                         # the coupled combination o1 - o2
    w = np.zeros(m.n_free)
    w[[o1, o2]] = [1.0, -1.0]
    assert abs(r.var() / (w @ Sigma @ w) - 1) < 4.5 * np.sqrt(2 / ess)
    assert abs(r.mean() - (s0[o1] - s0[o2])) < 4.5 * np.sqrt(w @ Sigma @ w / ess)
