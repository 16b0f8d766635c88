"""Network pictures: the layered layout puts each role where a reader expects it, trained
values reach the picture, and ``analog-ep draw`` writes a PNG and prints its path."""

import json

import pytest
from cli_helpers import run_module as cli

from analog_ep.drawing import apply_parameters, draw_network, layout
from analog_ep.errors import ConfigError
from analog_ep.graph import load_network

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"




def test_layered_layout_columns_follow_depth():
    G = load_network("xor_diode")
    pos = layout(G)
    assert {pos[n][0] for n in ("ap", "am", "bp", "bm")} == {0.0}
    assert pos["p"][0] == pos["q"][0] == 1.0          # one resistor from the inputs
    assert pos["out"][0] == 2.0                        # outputs in the last column
    assert pos["0"][1] < min(y for n, (_, y) in pos.items() if n != "0")  # ground below


def test_parameters_by_name_and_by_coupling_key():
    G = load_network("divider")
    assert apply_parameters(G, {"R1": 2e-3, "not_there": 1.0}, "p.json") == 1
    assert G.edges["in", "out", "R1"]["conductance"] == 2e-3
    Q = load_network("quantum_xor")
    assert apply_parameters(Q, {"J[x1,x2]": -0.25, "h[x1]": 1.0}, "p.json") == 1
    assert Q.edges["x1", "x2"]["J"] == -0.25
    with pytest.raises(ConfigError, match="p.json: no parameter names an element"):
        apply_parameters(G, {"Q7": 1.0}, "p.json")


@pytest.mark.parametrize("name", ["xor_diode", "oscillator_xor", "quantum_xor"])
def test_draw_writes_a_png(tmp_path, name):
    path = draw_network(load_network(name), tmp_path / "n.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_draw_command_prints_its_path_and_uses_params(tmp_path):
    (tmp_path / "params.json").write_text(json.dumps({"parameters": {"R1": 5e-4, "R2": 1e-5}}))
    proc = cli("draw", "divider", "--params", "params.json", "--out", "net.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "wrote net.png" and proc.stderr == ""
    assert (tmp_path / "net.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("argv, fragment", [
    (["--params", "missing.json"], "missing.json: cannot read parameters"),
    (["--params", "bad.json"], "bad.json: expected an object with a 'parameters' table"),
    (["--out", "/nonexistent-dir/net.png"], "cannot write /nonexistent-dir/net.png"),
    (["--out", "net.xyz"], "cannot write net.xyz"),
    (["--out", "."], "is a directory"),
])
def test_draw_bad_input(tmp_path, argv, fragment):
    (tmp_path / "bad.json").write_text("[1, 2]")
    proc = cli("draw", "divider", *argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("analog-ep draw: error: ") and fragment in lines[0], proc.stderr
