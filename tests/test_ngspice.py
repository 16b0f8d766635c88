"""Cross-check of the equilibrium solver and the SPICE reader against ngspice.

ngspice runs with ``.options reltol=1e-9 vntol=1e-12 abstol=1e-18`` and 15 printed digits;
node voltages must agree to ``|dV| <= 1e-6 max|V| + 1e-12``. The whole module is skipped,
with the reason, when ngspice cannot run.
"""

import textwrap

import networkx as nx
import numpy as np
import pytest

from analog_ep.errors import NetworkError
from analog_ep.graph import available_networks, load_network, resolve_network_path
from analog_ep.schema import K_OVER_Q, VT_NOMINAL, normalise_resistive, validate_resistive
from analog_ep.models.resistive import compile_network
from analog_ep.netlist import read_spice
from analog_ep.spice.batch import ngspice_operating_point, ngspice_unavailable
from analog_ep.physics.equilibrium import solve_equilibrium

_REASON = ngspice_unavailable()
pytestmark = [pytest.mark.ngspice,
              pytest.mark.skipif(_REASON is not None, reason=f"ngspice cross-check: {_REASON}")]


def ours(G) -> dict[str, float]:
    m = compile_network(G)
    s = solve_equilibrium(m, m.default_theta, m.default_inputs[None, :]).s
    return dict(zip(m.node_names, m.voltages(s, m.default_inputs[None, :])[0]))


def assert_agree(mine: dict[str, float], spice: dict[str, float]):
    assert set(mine) == set(spice)
    names = sorted(mine)
    a = np.array([mine[n] for n in names])
    b = np.array([spice[n] for n in names])
    tol = 1e-6 * np.max(np.abs(b)) + 1e-12
    worst = int(np.argmax(np.abs(a - b)))
    assert np.abs(a - b).max() <= tol, (f"node {names[worst]}: ours {a[worst]!r}, ngspice "
                                        f"{b[worst]!r}, tolerance {tol:.3g}")


#: Bundled resistive examples the emulator also runs (not those with parts only ngspice runs).
RESISTIVE_EXAMPLES = [n for n in available_networks()
                      if str((G := load_network(n, validate=False, ngspice=True)).graph.get("family")) == "resistive"
                      and not G.graph.get("spice_only")]


@pytest.mark.parametrize("name", RESISTIVE_EXAMPLES)
def test_bundled_example_matches_ngspice(name):
    path = resolve_network_path(name)
    G = load_network(path)
    if path.suffix == ".cir":  # the file as it is, so the reader is checked too
        spice = ngspice_operating_point(path=path)
    else:
        spice = ngspice_operating_point(G)
    assert_agree(ours(G), spice)


@pytest.mark.parametrize("a, b", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_xor_truth_table_matches_ngspice(a, b):
    G = load_network("xor_diode")
    for node, v in (("ap", a), ("am", -a), ("bp", b), ("bm", -b)):
        G.nodes[node]["voltage"] = float(v)
    assert_agree(ours(G), ngspice_operating_point(G))


def random_network(seed: int) -> nx.MultiGraph:
    """Random resistors, diodes (in either direction, to free and clamped nodes, some at
    another temperature), inputs, bias nodes and current sources.

    Saturation currents stay below 1 nA: below ``-3 n V_t`` SPICE replaces the Shockley
    current by ``-IS (1 + (3 n V_t / (e V))^3)``, up to ``0.004 IS`` away from it, which a
    1 uA diode would turn into voltage differences above the tolerance."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 25))
    G = nx.MultiGraph(family="resistive", name=f"random {seed}")
    G.add_node("0", role="ground")
    nodes = ["0"]
    for i in range(n):
        role = rng.choice(["hidden", "hidden", "output", "input", "bias"]) if i else "input"
        attrs = {"role": str(role)}
        if role in ("input", "bias"):
            attrs["voltage"] = float(rng.uniform(-3, 3))
        elif rng.random() < 0.2:
            attrs["current"] = float(rng.normal(0, 1e-3))
        G.add_node(f"n{i}", **attrs)
        nodes.append(f"n{i}")
    k = 0
    edges = [(i, int(rng.integers(0, i))) for i in range(1, len(nodes))]
    edges += [tuple(rng.choice(len(nodes), 2, replace=False)) for _ in range(int(rng.integers(0, n)))]
    for a, b in edges:
        k += 1
        G.add_edge(nodes[a], nodes[b], key=f"R{k}", element="resistor",
                   conductance=float(10 ** rng.uniform(-4.5, -1.5)))
    for d in range(int(rng.integers(1, 2 * n))):
        a, b = rng.choice(len(nodes), 2, replace=False)
        vt = VT_NOMINAL if rng.random() < 0.8 else K_OVER_Q * float(rng.uniform(240, 400))
        G.add_edge(nodes[a], nodes[b], key=f"D{d + 1}", element="diode", anode=nodes[a],
                   cathode=nodes[b], i_s=float(10 ** rng.uniform(-16, -9)),
                   n=float(rng.uniform(1.0, 2.0)), vt=vt)
    G = normalise_resistive(G)
    while True:  # an output no input reaches becomes a hidden node
        try:
            validate_resistive(G)
            return G
        except NetworkError as exc:
            G.nodes[str(exc).split("'")[1]]["role"] = "hidden"


@pytest.mark.parametrize("seed", range(12))
def test_random_resistor_diode_networks_match_ngspice(seed):
    G = random_network(seed)
    assert_agree(ours(G), ngspice_operating_point(G))


def test_reader_semantics_match_ngspice(tmp_path):
    """A hand-written deck with suffixes, continuations, comments, reversed sources, diode
    area and multiplier, and SPICE's temperature scaling, run by ngspice as it is."""
    path = tmp_path / "deck.cir"
    path.write_text(textwrap.dedent("""\
        Reader check: SPICE syntax and temperatures
        *@ input IN
        *@ output out
        vin IN 0 dc 1.2V
        VB 0 neg 0.7      ; node neg at -0.7 V
        R1 in mid 2.2kOhm
        r2 mid OUT
        + 4.7kx
        R3 out neg 10K $ to the negative rail
        R4 mid 0 0.0033MEG
        I1 0 mid 20uA
        Iout out 0 DC 5u
        C1 mid 0 1n
        D1 mid out dfast 2 m=3
        D2 out 0 dslow temp=80
        D3 neg mid dfast dtemp=-30
        D4 mid 0 dslow
        .MODEL dfast D(IS=2.5e-12 N=1.3 CJO=1p)
        .model dslow D (is=1e-15, n=1.05, eg=0.8, xti=2.5, tnom=35)
        .temp 55
        .options tnom=10 reltol=1e-3
        .op
        .end
        """))
    G = load_network(path)
    assert_agree(ours(G), ngspice_operating_point(path=path))


def test_rewritten_deck_matches_the_original(tmp_path):
    """read -> write -> ngspice equals the original deck in ngspice (temperatures included)."""
    src = tmp_path / "src.cir"
    src.write_text("t\n*@ input a\nVa a 0 0.9\nR1 a b 1k\nR2 b 0 3k\nD1 b 0 dm\nD2 a b dm temp=-20\n"
                   ".model dm D(IS=1e-13 N=1.2)\n.options temp=70\n")
    direct = ngspice_operating_point(path=src)
    rewritten = ngspice_operating_point(read_spice(src))
    assert_agree(rewritten, direct)
