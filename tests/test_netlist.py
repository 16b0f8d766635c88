"""SPICE-subset reader and writer, file round trips, validation rules and CLI bad input."""

import json
import math
import subprocess
import sys
import textwrap

import networkx as nx
import numpy as np
import pytest

from analog_ep.cli import main as cli_main
from analog_ep.errors import NetlistError, NetworkError
from analog_ep.graph import available_networks, load_network, resolve_network_path, save_network
from analog_ep.schema import VT_NOMINAL, normalise_resistive, validate_resistive
from analog_ep.models.resistive import compile_network
from analog_ep.netlist import K_OVER_Q, parse_value, read_spice, saturation_current, write_spice
from analog_ep.physics.equilibrium import solve_equilibrium

BUNDLED = ["divider", "xor_diode", "iris_diode", "mesh_1000"]


def canonical(G):
    """Everything a resistive graph says, as a sorted list of (where, value)."""
    H = normalise_resistive(G)
    items = [(("node", n, k), v) for n, d in H.nodes(data=True) for k, v in d.items()]
    items += [(("edge", d["name"], "ends"), tuple(sorted((a, b)))) for a, b, d in H.edges(data=True)]
    items += [(("edge", d["name"], k), v) for *_, d in H.edges(data=True) for k, v in d.items()]
    items += [(("graph", k), v) for k, v in H.graph.items() if k != "source"]
    return sorted(items, key=lambda t: str(t[0]))


def same(G, H):
    """Graphs equal up to 1e-14 relative in floats (1/(1/g) may move the last bit)."""
    a, b = canonical(G), canonical(H)
    assert [k for k, _ in a] == [k for k, _ in b]
    for (key, x), (_, y) in zip(a, b):
        if isinstance(x, float) and not isinstance(x, bool):
            assert y == pytest.approx(x, rel=1e-14, abs=0), key
        else:
            assert x == y, key


def random_graph(seed: int) -> nx.MultiGraph:
    """A random resistive graph using every feature the SPICE subset can carry."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 15))
    names = [f"N{i}" if i % 3 else f"h{i}" for i in range(n)]
    G = nx.MultiGraph(family="resistive", name=f"random network {seed}", encoding="doubled", scale=2.5)
    G.add_node("0", role="ground")
    roles = rng.choice(["input", "bias", "hidden", "output", "hidden"], size=n)
    roles[0], roles[1] = "input", "output"
    for name, role in zip(names, roles):
        attrs = {"role": str(role)}
        if role in ("input", "bias"):
            attrs["voltage"] = float(rng.uniform(-2, 2))
        if role in ("hidden", "output") and rng.random() < 0.5:
            attrs["capacitance"] = float(10 ** rng.uniform(-12, -8))
        if role in ("hidden", "output") and rng.random() < 0.3:
            attrs["current"] = float(rng.normal(0, 1e-4))
        G.add_node(name, **attrs)
    allnodes = ["0"] + names
    k = 0
    for i in range(1, len(allnodes)):  # spanning tree of resistors
        k += 1
        j = int(rng.integers(0, i))
        G.add_edge(allnodes[i], allnodes[j], key=f"R{k}", element="resistor",
                   conductance=float(10 ** rng.uniform(-5, -2)), trainable=bool(rng.random() < 0.6),
                   g_min=1e-6 if rng.random() < 0.8 else 1e-7, g_max=1e-1)
    for d in range(int(rng.integers(0, 5))):
        a, b = rng.choice(len(allnodes), 2, replace=False)
        vt = VT_NOMINAL if rng.random() < 0.7 else K_OVER_Q * float(rng.uniform(250, 400))
        G.add_edge(allnodes[a], allnodes[b], key=f"D{d + 1}", element="diode", anode=allnodes[a],
                   cathode=allnodes[b], i_s=float(10 ** rng.uniform(-15, -8)),
                   n=float(rng.choice([1.0, 1.5])), vt=vt)
    inputs = [nm for nm, r in zip(names, roles) if r == "input"]
    outputs = [nm for nm, r in zip(names, roles) if r == "output"]
    G.graph["input_order"] = " ".join(reversed(inputs))
    G.graph["output_order"] = " ".join(reversed(outputs))
    return normalise_resistive(G)


# ----- numbers --------------------------------------------------------------------------------
@pytest.mark.parametrize("token, value", [
    ("1k", 1e3), ("10kOhm", 1e4), ("2.2MEG", 2.2e6), ("1Mohm", 1e-3), ("3mil", 3 * 25.4e-6),
    ("4.7u", 4.7e-6), ("1n", 1e-9), ("5p", 5e-12), ("2f", 2e-15), ("1g", 1e9), ("1T", 1e12),
    ("-1.5e-3", -1.5e-3), ("1e3k", 1e6), (".5", 0.5), ("5.", 5.0), ("10V", 10.0), ("1e", 1.0),
    ("1dk", 1e3), ("1D3", 1e3), ("10u", 1e-5), ("2fA", 2e-15), ("3mA", 3e-3),
])
def test_parse_value_follows_spice(token, value):
    assert parse_value(token) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("token", ["10k5", "1.2.3", "abc", "1e+", "k1", "", "10%", "1a", "5A", "--1"])
def test_parse_value_refuses_bad_numbers(token):
    with pytest.raises(ValueError):
        parse_value(token)


# ----- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
def test_graph_spice_graph_round_trip(tmp_path, seed):
    G = random_graph(seed)
    path = tmp_path / "net.cir"
    write_spice(G, path)
    H = read_spice(path)
    same(H, G)


@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("suffix", [".cir", ".json", ".graphml"])
def test_bundled_examples_round_trip_through_every_format(tmp_path, name, suffix):
    G = load_network(name)
    path = tmp_path / f"copy{suffix}"
    save_network(G, path)
    same(load_network(path), G)


def test_bundled_examples_exist_once_per_stem():
    stems = available_networks()
    for name in BUNDLED:
        assert stems.count(name) == 1
        assert resolve_network_path(name).suffix == ".cir"


def test_xor_example_computes_xor():
    m = compile_network(load_network("xor_diode"))
    assert m.input_names == ("ap", "am", "bp", "bm")
    u = np.array([[a, -a, b, -b] for a, b in [(0, 0), (0, 1), (1, 0), (1, 1)]], float)
    out = m.voltages(solve_equilibrium(m, None, u).s, u)[:, m.node_names.index("out")]
    assert out[1] > 0.15 and out[2] > 0.15 and abs(out[0]) < 1e-3 and abs(out[3]) < 1e-3


def test_bundled_shapes():
    iris = compile_network(load_network("iris_diode"))
    assert (len(iris.input_names), len(iris.output_names)) == (8, 3)
    assert iris.input_names[:2] == ("x0p", "x0m") and not iris.is_linear
    mesh = compile_network(load_network("mesh_1000"))
    assert mesh.n_nodes == 1000 and mesh.is_linear
    assert mesh.output_names == ("out1", "out2", "out3")


# ----- reader features ------------------------------------------------------------------------
def read(tmp_path, text, name="net.cir"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return read_spice(path)


def test_reader_features(tmp_path):
    G = read(tmp_path, """
        R1 a b 1k  this first line is the title, not a resistor
        * comment
        *@ INPUT In
        *@ output OUT
        *@ trainable r1 R2
        *@ bounds r? 1u 1
        *@ graph encoding doubled
        *@ graph beta 0.001
        vin IN gnd dc 2   ; inline comment
        Vb 0 bias 1.5 $ reversed polarity: bias = -1.5 V
        R1 in out 2kOhm
        r2 out
        + 0
        +  1k
        R3 out bias 1MEG
        Iload out 0 DC 1m
        I2 0 out 0.25mA
        C1 out 0 1n
        C2 0 OUT 2n
        .MODEL dm D (IS=1e-12, N=1.5)
        D1 out bias dm 2
        .op
        .end
        R9 after end is ignored
        """)
    assert G.graph["name"] == "R1 a b 1k  this first line is the title, not a resistor"
    assert set(G.nodes) == {"IN", "out", "bias", "0"}  # spelled as on its first card
    assert G.nodes["IN"] == {"role": "input", "voltage": 2.0}
    assert G.nodes["bias"] == {"role": "bias", "voltage": -1.5}
    assert G.nodes["0"]["role"] == "ground"
    out = G.nodes["out"]
    assert out["role"] == "output"
    assert out["current"] == pytest.approx(-1e-3 + 0.25e-3)
    assert out["capacitance"] == pytest.approx(3e-9)
    assert G.graph["input_order"] == "IN" and G.graph["output_order"] == "out"
    assert G.graph["encoding"] == "doubled" and G.graph["beta"] == 1e-3
    r1 = G.edges["IN", "out", "R1"]
    assert r1["conductance"] == pytest.approx(5e-4) and r1["trainable"]
    assert (r1["g_min"], r1["g_max"]) == (1e-6, 1.0)
    assert G.edges["out", "0", "r2"]["conductance"] == pytest.approx(1e-3)
    assert not G.edges["out", "bias", "R3"]["trainable"]
    d = G.edges["out", "bias", "D1"]
    assert (d["anode"], d["cathode"], d["n"]) == ("out", "bias", 1.5)
    assert d["i_s"] == pytest.approx(2e-12) and d["vt"] == pytest.approx(VT_NOMINAL, rel=1e-15)
    assert "R9" not in {k for *_, k in G.edges(keys=True)}


def test_graph_directive_keeps_any_text(tmp_path):
    G = small_graph()
    G.graph.update(note="a (b, c) = d;  e $ f", scale=3, flag=True)
    path = tmp_path / "g.cir"
    write_spice(G, path)
    H = read_spice(path)
    assert (H.graph["note"], H.graph["scale"], H.graph["flag"]) == ("a (b, c) = d;  e $ f", 3.0, "True")


def test_temperature_scaling_matches_spice_formula(tmp_path):
    G = read(tmp_path, """
        temperature
        *@ input a
        Va a 0 1
        R1 a b 1k
        R2 b 0 1k
        D1 b 0 d1
        D2 b 0 d2 temp=100
        D3 b 0 d1 dtemp=-20
        .model d1 D(IS=1e-14 N=1.2)
        .model d2 D(IS=1e-14 N=1 TNOM=50 EG=0.69 XTI=2)
        .temp 60
        .options tnom=20
        """)
    T, Tn = 333.15, 293.15
    vt = 1.38064852e-23 * T / 1.6021766208e-19
    expect = 1e-14 * math.exp((T / Tn - 1) * 1.11 / (1.2 * vt) + 3 / 1.2 * math.log(T / Tn))
    d1 = G.edges["b", "0", "D1"]
    assert d1["vt"] == pytest.approx(vt, rel=1e-15) and d1["i_s"] == pytest.approx(expect, rel=1e-13)
    i2, vt2 = saturation_current(1e-14, 1.0, 0.69, 2.0, 373.15, 323.15)
    assert G.edges["b", "0", "D2"]["i_s"] == pytest.approx(i2, rel=1e-15)
    assert G.edges["b", "0", "D3"]["vt"] == pytest.approx(K_OVER_Q * (T - 20), rel=1e-15)
    # no scaling at TNOM
    assert saturation_current(1e-14, 1.3, 1.11, 3.0, 310.0, 310.0)[0] == 1e-14


def test_written_file_runs_as_a_plain_spice_deck(tmp_path):
    G = random_graph(3)
    path = tmp_path / "net.cir"
    write_spice(G, path)
    lines = path.read_text().splitlines()
    assert lines[-2:] == [".op", ".end"]
    assert all(ln.split()[0][0].lower() in "*rdvic." for ln in lines[1:])


# ----- bad files: every error names the file and the line --------------------------------------
BAD = [
    ("R1 a 0 1k\nr1 a 0 2k\nV1 a 0 1\n", 3, "duplicate element name 'r1'"),
    ("V1 a b 1\nR1 a 0 1k\n", 2, "one end must be ground"),
    ("R1 a 0 10k5\n", 2, "not a number"),
    ("R1 a 0 1a\n", 2, "suffix 'a'"),
    ("R1 a 0 0\n", 2, "resistance must be positive"),
    ("R1 a 0 -5\n", 2, "resistance must be positive"),
    ("R1 a a 1k\n", 2, "connects node 'a' to itself"),
    ("R1 a 0 1k tc1=0.1\n", 2, "takes one value"),
    ("R1 a\n", 2, "needs two nodes"),
    ("L1 a 0 1u\n", 2, r"element L1 \(an inductor\) \(line 2\): only ngspice runs this, use --substrate ngspice"),
    ("X1 a 0 sub\n", 2, r"element X1 \(a subcircuit instance\).*--substrate ngspice"),
    ("M1 d g 0 0 nm\n.model nm NMOS\n", 2, r"element M1 \(a MOSFET\) \(line 2\); model nm \(NMOS\) \(line 3\)"),
    ("Q1 c b 0 qm\n", 2, r"element Q1 \(a BJT\).*--substrate ngspice"),
    (".include other.cir\n", 2, r"'\.include' \(line 2\).*--substrate ngspice"),
    (".subckt foo a b\n", 2, r"'\.subckt'.*--substrate ngspice"),
    (".param r=1k\nR1 a 0 {r}\n", 2, r"'\.param' \(line 2\); resistor R1 \(value \{r\}\) \(line 3\)"),
    ("D1 a 0 nomodel\n", 2, "no '.model nomodel"),
    ("D1 a 0 dm\n.model dm D(IS=1e-14 RS=10)\n", 2, r"diode D1 \(model dm with RS\).*--substrate ngspice"),
    ("D1 a 0 dm\n.model dm D(IS=-1)\n", 3, "IS > 0"),
    (".model q1 NPN(BF=100)\n", 2, r"model q1 \(NPN\).*--substrate ngspice"),
    (".model dm D\n.model DM D\n", 3, "duplicate model"),
    ("D1 a 0 dm pj=2\n.model dm D\n", 2, "unsupported parameter"),
    ("+ 1k\n", 2, "continuation line"),
    ("V1 a 0 1\nV2 a 0 2\n", 3, "already clamped by the source on line 2"),
    ("V1 0 0 1\n", 2, "both ends on ground"),
    ("V1 a 0 SIN(0 1 1k)\n", 2, "only a DC value"),
    ("I1 a 0 DC 1 PULSE(0 1 1n)\n", 2, "only a DC value"),
    ("C1 a b 1n\n", 2, "only capacitances to ground"),
    ("C1 a 0 -1n\n", 2, "capacitance must be positive"),
    (".temp 27 50\n", 2, "exactly one temperature"),
    (".options rshunt=1e9\n", 2, "unsupported option 'rshunt'"),
    (".endc\n", 2, "'.endc' without '.control'"),
    ("R1 a 0 1k\n*@ input a\n", 3, "no V source to ground"),
    ("R1 a 0 1k\nV1 a 0 1\n*@ output a\n", 4, "must be a free node"),
    ("R1 a 0 1k\n*@ output b\n", 3, "no node 'b'"),
    ("R1 a 0 1k\n*@ output a a\n", 3, "listed twice"),
    ("R1 a 0 1k\nD1 a 0 dm\n.model dm D\n*@ trainable D1\n", 5, "only resistors"),
    ("R1 a 0 1k\n*@ trainable R7\n", 3, "not a resistor"),
    ("R1 a 0 1k\n*@ trainable\n", 3, "needs element names"),
    ("R1 a 0 1k\n*@ bounds Q* 1u 1m\n", 3, "matches no resistor"),
    ("R1 a 0 1k\n*@ bounds R1 1m 1u\n", 3, "0 < GMIN <= GMAX"),
    ("R1 a 0 1k\n*@ bounds R1 1m\n", 3, "takes NAME_OR_GLOB GMIN GMAX"),
    ("R1 a 0 1k\n*@ wibble a\n", 3, "unknown directive"),
    ("R1 a 0 1k\n*@\n", 3, "empty"),
]


@pytest.mark.parametrize("body, line, message", BAD)
def test_bad_netlists_name_file_and_line(tmp_path, body, line, message):
    path = tmp_path / "bad.cir"
    path.write_text("title line\n" + body)
    with pytest.raises(NetlistError, match=message) as info:
        read_spice(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert info.value.line == line


def test_empty_and_unreadable_files(tmp_path):
    empty = tmp_path / "empty.cir"
    empty.write_text("")
    with pytest.raises(NetlistError, match="empty netlist"):
        read_spice(empty)
    binary = tmp_path / "binary.cir"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(NetlistError, match="cannot read netlist"):
        read_spice(binary)


def test_network_rules_apply_to_netlists(tmp_path):
    # a free node joined to the rest through diodes only
    (tmp_path / "a.cir").write_text("t\n*@ input a\nVa a 0 1\nR1 a 0 1k\nD1 a h dm\n.model dm D\n")
    with pytest.raises(NetworkError, match="'h' has no resistive path"):
        load_network(tmp_path / "a.cir")
    (tmp_path / "b.cir").write_text("t\n*@ input a\n*@ output o\nVa a 0 1\nR1 a 0 1k\nVb b 0 1\nR2 b o 1k\n")
    with pytest.raises(NetworkError, match="output node 'o' cannot be reached"):
        load_network(tmp_path / "b.cir")
    (tmp_path / "c.cir").write_text("t\n*@ trainable R1\n*@ bounds R1 1u 1m\nV1 a 0 1\nR1 a 0 1\n")
    with pytest.raises(NetworkError, match="outside its bounds"):
        load_network(tmp_path / "c.cir")


# ----- graph validation rules not covered by the core tests ----------------------------------------
def small_graph():
    G = nx.MultiGraph(family="resistive")
    G.add_node("in", role="input", voltage=1.0)
    G.add_node("0", role="ground")
    G.add_node("out", role="output")
    G.add_edge("in", "out", key="R1", element="resistor", conductance=1e-3)
    G.add_edge("out", "0", key="R2", element="resistor", conductance=1e-3)
    G.add_edge("out", "0", key="D1", element="diode", anode="out", cathode="0")
    return normalise_resistive(G)


@pytest.mark.parametrize("mutate, message", [
    (lambda G: G.add_edge("in", "0", key="R1", name="R1", element="resistor", conductance=1.0,
                          trainable=False, g_min=1e-7, g_max=1.0), "duplicate element name 'R1'"),
    (lambda G: G.add_edge("out", "out", key="R9", name="R9", element="resistor", conductance=1.0,
                          trainable=False, g_min=1e-7, g_max=1.0), "connects node 'out' to itself"),
    (lambda G: [G.nodes[n].update(role="hidden") for n in ("in", "0")], "no clamped node"),
    (lambda G: G.nodes["out"].update(capacitance=-1e-9), "capacitance must be positive"),
    (lambda G: G.edges["out", "0", "D1"].update(i_s=0.0), "diode D1: i_s must be positive"),
    (lambda G: G.edges["out", "0", "D1"].update(n=-1.0), "diode D1: n must be positive"),
    (lambda G: G.edges["out", "0", "D1"].update(anode="in"), "do not match its endpoints"),
    (lambda G: G.edges["in", "out", "R1"].update(g_min=1e-2, g_max=1e-3), "0 < g_min <= g_max"),
    (lambda G: G.edges["in", "out", "R1"].pop("conductance"), "has no 'conductance'"),
])
def test_graph_validation_names_the_fault(mutate, message):
    G = small_graph()
    validate_resistive(G)
    mutate(G)
    with pytest.raises(NetworkError, match=message):
        validate_resistive(G)


def test_writer_refuses_what_spice_cannot_say(tmp_path):
    G = small_graph()
    G.add_node("my node", role="hidden")
    G.add_edge("my node", "0", key="R5", name="R5", element="resistor", conductance=1.0,
               trainable=False, g_min=1e-7, g_max=1.0)
    with pytest.raises(NetlistError, match="'my node' cannot be written"):
        write_spice(G, tmp_path / "x.cir")
    G = small_graph()
    nx.relabel_nodes(G, {"out": "IN"}, copy=False)
    with pytest.raises(NetlistError, match="differ only in case"):
        write_spice(G, tmp_path / "x.cir")
    G = small_graph()
    G.graph["family"] = "quantum"
    with pytest.raises(NetlistError, match="only resistive networks"):
        write_spice(G, tmp_path / "x.cir")


def test_writer_prefixes_element_letters(tmp_path):
    G = small_graph()
    nx.relabel_nodes(G, {}, copy=False)
    H = nx.MultiGraph(G)
    H.remove_edge("in", "out", "R1")
    H.add_edge("in", "out", key="w1", name="w1", element="resistor", conductance=2e-3,
               trainable=False, g_min=1e-7, g_max=1.0)
    path = tmp_path / "x.cir"
    write_spice(H, path)
    assert "Rw1 in out 500.0" in path.read_text().splitlines()


# ----- CLI bad input: one line on stderr, exit status 2, no traceback ----------------------------------
def run_cli(capsys, *argv):
    status = cli_main(list(argv))
    err = capsys.readouterr().err.strip()
    return status, err


@pytest.mark.parametrize("argv, message", [
    (["emulate", "no_such_network"], "no such network file or bundled example"),
    (["emulate", "{bad}"], "bad.cir:3: "),
    (["emulate", "divider", "--input", "nosuch=1"], "not an input node"),
    (["emulate", "divider", "--input", "in=abc"], "is not a number"),
    (["emulate", "divider", "--input", "in"], "expects NAME=VALUE"),
    (["emulate", "{floating}"], "no resistive path"),
    (["info", "{bad}"], "bad.cir:3: "),
    (["info", "{other}"], "unknown network file type"),
    (["netlist", "convert", "{bad}", "{out}.json"], "bad.cir:3: "),
    (["netlist", "convert", "divider", "{out}.xyz"], "unknown network file type"),
    (["netlist", "convert", "divider", "{tmp}/missing/dir/x.cir"], "cannot write netlist"),
])
def test_cli_bad_input(tmp_path, capsys, argv, message):
    (tmp_path / "bad.cir").write_text("title\nR1 a 0 1k\nR2 a 0 10k5\n")
    (tmp_path / "floating.cir").write_text("t\nV1 a 0 1\nR1 a 0 1k\nD1 a h dm\n.model dm D\n")
    (tmp_path / "other.txt").write_text("hello\n")
    paths = {"bad": tmp_path / "bad.cir", "floating": tmp_path / "floating.cir",
             "other": tmp_path / "other.txt", "out": tmp_path / "out", "tmp": tmp_path}
    argv = [a.format(**paths) for a in argv]
    status, err = run_cli(capsys, *argv)
    assert status == 2
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_cli_process_exits_cleanly_on_a_bad_file(tmp_path):
    bad = tmp_path / "bad.cir"
    bad.write_text("title\nV1 a b 1\n")
    proc = subprocess.run([sys.executable, "-m", "analog_ep", "emulate", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"analog-ep emulate: error: {bad}:2: voltage source V1 between 'a' and 'b': one end must be "
        "ground (0); a floating source cannot be a clamped node"]


def test_cli_emulate_and_convert_spice(tmp_path, capsys):
    assert cli_main(["emulate", "divider", "--input", "in=3", "--format", "json"]) == 0
    assert '"out": 1.5' in capsys.readouterr().out
    out = tmp_path / "xor.graphml"
    assert cli_main(["netlist", "convert", "xor_diode", str(out)]) == 0
    back = tmp_path / "xor.cir"
    assert cli_main(["netlist", "convert", str(out), str(back)]) == 0
    same(load_network(back), load_network("xor_diode"))


@pytest.mark.parametrize("name", BUNDLED)
def test_cli_info_and_emulate_every_bundled_example(capsys, name):
    assert cli_main(["info", name]) == 0
    assert "family     resistive" in capsys.readouterr().out
    assert cli_main(["emulate", name, "--format", "json"]) == 0
    nodes = json.loads(capsys.readouterr().out)["nodes"]
    assert len(nodes) == load_network(name).number_of_nodes() and nodes["0"] == 0.0


def test_cli_info_shows_the_training_settings_a_network_file_recommends(capsys):
    assert cli_main(["info", "oscillator_iris"]) == 0
    assert "training   epochs 60, batch_size 20, lr 0.005 (recommended by the file)" in capsys.readouterr().out
    assert cli_main(["info", "oscillator_iris", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["training"] == {"epochs": 60, "batch_size": 20, "lr": 0.005}
    assert cli_main(["info", "divider"]) == 0
    assert "training" not in capsys.readouterr().out
