"""Gate-trained MOSFET edges in ngspice: the level-1 channel current, EP's dV_G against
finite differences of the loss, and the bundled transistor XOR trained end to end.

Tolerances. ngspice runs with reltol = 1e-12, vntol = 1e-15 V (``SPICE_OPTIONS``), so node
voltages carry ~1e-12 V of error. The closed-form channel current is compared to the load
current of a one-edge divider at 1e-9 relative (ngspice's ``I = V / R`` at 1e-12 V over a
0.1-1 V drop, with margin for its own square-law evaluation). EP vs finite differences, on
the two-edge network at beta = 1e-7 S: symmetric EP's bias is O((beta/G)^2) with G >= 1e-4 S
the smallest conductance at the output, 1e-6 of the gradient times a coefficient measured
below 30 (the beta = 1e-6 / 1e-7 estimates differ by 2.6e-5 of the gradient, x100 per decade
of beta, as O(beta^2)): <= 3e-5; ngspice's 1e-12 V error divided by 2 beta adds
K 1e-12 V / 2e-7 S ~ 5e-9 A on a gradient of ~4e-3 A/V (1e-6); central differences at
h = 1e-4 V truncate at (h / V_ov)^2 ~ 1e-8. The test accepts 1e-4 of the largest gradient
of each unit, covering the sum with margin.
"""

import numpy as np
import pytest

from analog_ep.errors import NetlistError
from analog_ep.graph import load_network
from analog_ep.learning.rules import EPRule, FiniteDifferenceRule
from analog_ep.models.resistive import compile_network
from analog_ep.netlist import read_spice
from analog_ep.spice.shared import library_unavailable
from analog_ep.substrates.ngspice import NgspiceNetwork

from cli_helpers import run_cli

_REASON = library_unavailable()
pytestmark = [pytest.mark.ngspice,
              pytest.mark.skipif(_REASON is not None, reason=f"ngspice substrate: {_REASON}")]

MODEL = ".model nch NMOS(LEVEL=1 VTO=0.5 KP=1e-4)"

TWO_EDGES = f"""two transistor edges and a trainable load
*@ input in1 in2
*@ output out
*@ trainable-gate M1 VG1 M2 VG2
*@ trainable R1
*@ bounds VG* 0 5
Vin1 in1 0 DC 1
Vin2 in2 0 DC 0.2
M1 in1 g1 mid sub nch W=10u L=1u
VG1 g1 mid DC 2
R2 mid out 5k
M2 out g2 in2 sub nch W=5u L=1u
VG2 g2 in2 DC 1.5
R1 out 0 10k
Vsub sub 0 DC -5
{MODEL}
.end
"""


def _model(tmp_path, text, name="net.cir"):
    path = tmp_path / name
    path.write_text(text)
    return compile_network(read_spice(path, ngspice=True))


def square_law(vg, v, k=1e-3, vto=0.5):
    """Level-1 channel current from a to b, ``F(V_G) - F(V_G - v)`` (docs/PHYSICS.md)."""
    F = lambda x: 0.5 * k * np.maximum(x - vto, 0.0) ** 2
    return F(vg) - F(vg - v)


@pytest.mark.parametrize("vin, vg", [(1.0, 2.0), (1.0, 0.8), (-1.0, 2.0), (-1.0, 0.3)])
def test_channel_current_is_the_square_law(tmp_path, vin, vg):
    # linear and saturated regions, current in either direction (the reference node is out)
    model = _model(tmp_path, f"""one edge
*@ input in
*@ output out
*@ trainable-gate M1 VG1
*@ bounds VG1 0 5
Vin in 0 DC {vin}
M1 in g out sub nch W=10u L=1u
VG1 g out DC {vg}
Vsub sub 0 DC -5
R1 out 0 10k
{MODEL}
.end
""")
    assert model.param_names == ("VG1",) and model.gate_names == ("M1",)
    with NgspiceNetwork(model) as net:
        out = net.equilibrium()[0, model.node_names.index("out")]
    current = out / 1e4
    assert current == pytest.approx(square_law(vg, vin - out), rel=1e-9, abs=1e-18)


def test_ep_gate_gradient_matches_finite_differences(tmp_path):
    model = _model(tmp_path, TWO_EDGES)
    assert model.param_names == ("R1", "VG1", "VG2")
    u = np.array([[1.0, 0.2], [0.8, 0.5]])
    d = np.array([[0.3], [0.1]])
    theta = model.default_theta
    with NgspiceNetwork(model) as net:
        ep = EPRule(beta=1e-7).gradient(model, net, net.cost, theta, u, d, None).gradient
        fd = FiniteDifferenceRule(step=1e-4).gradient(model, net, net.cost, theta, u, d, None).gradient
    assert np.all(np.abs(fd[1:]) > 1e-4)                      # the gates matter here
    # tolerance: module docstring (1e-4 of the largest gradient of each unit)
    np.testing.assert_allclose(ep[:1], fd[:1], rtol=0, atol=1e-4 * np.abs(fd[:1]).max())
    np.testing.assert_allclose(ep[1:], fd[1:], rtol=0, atol=1e-4 * np.abs(fd[1:]).max())


def test_gate_voltages_are_clipped_and_altered(tmp_path):
    model = _model(tmp_path, TWO_EDGES)
    with NgspiceNetwork(model) as net:
        applied = net.set_parameters(np.array([1e-4, 7.0, 0.2]))
        assert applied.tolist() == [1e-4, 5.0, 0.2]
        out_hi = net.equilibrium()[0, model.node_names.index("out")]
        net.set_parameters(np.array([1e-4, 0.3, 0.2]))     # M1 below threshold: the path is cut
        out_lo = net.equilibrium()[0, model.node_names.index("out")]
    assert out_hi > 0.3 and abs(out_lo) < 1e-9


@pytest.mark.parametrize("change, message", [
    ("VG1 g1 0 DC 2", "floating V source"),
    ("VG1 mid g1 DC -2", "must run from"),
])
def test_a_gate_source_must_hold_the_gate_above_a_channel_node(tmp_path, change, message):
    text = TWO_EDGES.replace("VG1 g1 mid DC 2", change)
    with pytest.raises(NetlistError, match=message):
        _model(tmp_path, text)


@pytest.mark.parametrize("card, message", [
    (".model nch NMOS(LEVEL=1 VTO=0.5 KP=1e-4 LAMBDA=0.02)", "LAMBDA"),
    (".model nch NMOS(LEVEL=2 VTO=0.5 KP=1e-4)", "level-1"),
    (".model nch PMOS(LEVEL=1 VTO=-0.5 KP=1e-4)", "NMOS"),
])
def test_only_the_closed_form_level_1_nmos_is_a_trainable_gate(tmp_path, card, message):
    with pytest.raises(NetlistError, match=message):
        _model(tmp_path, TWO_EDGES.replace(MODEL, card))


def test_gate_bounds_and_values_are_checked(tmp_path):
    with pytest.raises(NetlistError, match="outside its bounds"):
        _model(tmp_path, TWO_EDGES.replace("*@ bounds VG* 0 5", "*@ bounds VG* 0 1"))
    model = _model(tmp_path, TWO_EDGES.replace("*@ bounds VG* 0 5", "*@ bounds VG1 1 3"))
    lo, hi = model.theta_bounds()
    assert lo[1:].tolist() == [1.0, 0.0] and hi[1:].tolist() == [3.0, 5.0]


def test_the_bundled_transistor_xor_is_listed_and_read(capsys):
    G = load_network("xor_mosfet", ngspice=True)
    model = compile_network(G)
    assert model.param_names == tuple(f"VG{k}" for k in range(1, 7))
    code, out, _ = run_cli(capsys, "info")
    assert code == 0 and "transistor XOR" in out


def test_transistor_xor_trains_to_four_of_four(tmp_path, capsys):
    # about 2 s on one core: 100 epochs of 4 inputs, three ngspice ops each
    code, out, err = run_cli(capsys, "train", "--network", "xor_mosfet", "--dataset", "xor", "--substrate", "ngspice",
                              "--rule", "ep", "--no-progress", "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert "test accuracy 1.0000" in out
