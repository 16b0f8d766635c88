"""ngspice's shared library as a substrate, against the built-in emulator.

Tolerance of the cross-checks: 1e-6 of the largest value compared. The deck runs ngspice
with reltol = 1e-12, vntol = 1e-15 V, abstol = 1e-18 A and gmin = 1e-30 S
(``substrates.ngspice.SPICE_OPTIONS``), the emulator's Newton stops at a relative Kirchhoff
residual of 1e-10: both are far below 1e-6. What remains is SPICE's reverse-bias diode
current, at most 0.004 I_s from Shockley's: on ``xor_diode`` (I_s = 1 nA behind the 10 kOhm
to ground at ``out``) 0.004 nA x 10 kOhm = 4e-8 V, 2e-7 of the 0.2 V output; 1.6e-8 of it is
seen. EP gradients are differences of smooth functions of these states, divided by the same
beta on both substrates, so the gap carries over at the same relative size (2e-9 of the
largest gradient on ``xor_diode`` is seen). The whole module is skipped, with the install
command, when the shared library is missing.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from analog_ep.errors import ConfigError, ConvergenceError, NetlistError, SubstrateError
from analog_ep.graph import load_network
from analog_ep.models.cost import SquaredCost
from analog_ep.models.periodic_cost import PeriodicCost
from analog_ep.models.readout import SoftmaxCrossEntropyCost
from analog_ep.models.resistive import compile_network
from analog_ep.spice.batch import ngspice_operating_point, ngspice_unavailable
from analog_ep.spice.shared import SharedNgspice, SpiceCircuit, library_unavailable
from analog_ep.substrates.emulated import EmulatedBoard
from analog_ep.substrates.factory import open_substrate
from analog_ep.substrates.ngspice import SPICE_OPTIONS, NgspiceNetwork
from analog_ep.tasks.resistive import ResistiveObjective

from cli_helpers import assert_one_line_error, run_cli

_REASON = library_unavailable()
pytestmark = [pytest.mark.ngspice,
              pytest.mark.skipif(_REASON is not None, reason=f"ngspice substrate: {_REASON}")]

#: Relative agreement of ngspice and the emulator (module docstring).
RTOL = 1e-6
NETWORKS = ["divider", "xor_diode", "iris_diode", "mesh_1000"]


def assert_close(ours, theirs, what=""):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    tol = RTOL * np.abs(theirs).max() + 1e-15
    err = np.abs(ours - theirs).max()
    assert err <= tol, f"{what}: max difference {err:.3g} > {tol:.3g}"


@pytest.fixture(scope="module")
def models():
    return {name: compile_network(load_network(name)) for name in NETWORKS}


# ----- the ctypes layer ------------------------------------------------------------------------

def test_a_missing_library_says_how_to_install_it():
    with pytest.raises(SubstrateError, match="apt-get install libngspice0"):
        SharedNgspice("libngspice-not-there.so.0")


def test_a_refused_deck_carries_ngspice_message_and_line():
    with pytest.raises(NetlistError, match=r"unknown parameter \(abc\).*deck line 3: 'R1 a b abc'") as info:
        SpiceCircuit(["t", "V1 a 0 1", "R1 a b abc", "R2 b 0 1k", ".end"])
    assert info.value.line == 3


def test_a_singular_circuit_is_a_convergence_error_not_a_number():
    # ngspice's transient fallback returns 1e9 V here; it must not become a reading
    with SpiceCircuit(["t", "I1 0 a 1m", "R1 a 0 -1k", "R2 a 0 1k", ".end"]) as c:
        with pytest.raises(ConvergenceError, match="singular matrix"):
            c.operating_point(["a"])


def test_circuits_sharing_the_library_keep_their_own_values():
    a = SpiceCircuit(["a", "V1 x 0 1", "R1 x y 1k", "R2 y 0 1k", ".end"])
    b = SpiceCircuit(["b", "V1 x 0 2", "R1 x y 1k", "R2 y 0 3k", ".end"])
    try:
        a.alter("R2", "resistance", 3000.0)
        b.alter("V1", "dc", 4.0)
        for _ in range(2):              # each op reloads the other deck and replays its alters
            assert a.operating_point(["y"])[0] == pytest.approx(0.75, abs=1e-12)
            assert b.operating_point(["y"])[0] == pytest.approx(3.0, abs=1e-12)
    finally:
        a.close()
        b.close()
    with pytest.raises(SubstrateError, match="closed"):
        a.operating_point(["y"])


def test_after_ngspice_exits_every_call_says_so():
    """ngspice's 'quit' asks the caller to unload the library (its controlled-exit callback);
    run in a fresh interpreter, since the library is one per process."""
    code = textwrap.dedent("""
        from analog_ep.errors import SubstrateError
        from analog_ep.spice.shared import SpiceCircuit, library
        c = SpiceCircuit(["t", "V1 a 0 1", "R1 a 0 1k", ".end"])
        try:
            library().command("quit")
        except SubstrateError:
            pass
        try:
            c.operating_point(["a"])
        except SubstrateError as exc:
            print(exc)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert "ngspice asked to exit" in out.stdout and "cannot be used again" in out.stdout, out


def test_a_deck_ngspice_cannot_recover_from_is_a_netlist_error():
    """An undefined parameter ends ngspice (it asks to be unloaded): the deck's error says
    what and where, and that the library is gone (a fresh interpreter, as above)."""
    code = textwrap.dedent("""
        from analog_ep.errors import NetlistError
        from analog_ep.spice.shared import SpiceCircuit
        try:
            SpiceCircuit(["t", "V1 a 0 1", "R1 a 0 {nothere}", ".end"])
        except NetlistError as exc:
            print(exc)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert "Undefined parameter [nothere]" in out.stdout and "cannot run another circuit" in out.stdout, out


# ----- equilibria ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NETWORKS)
def test_equilibria_agree_with_the_emulator(models, name):
    """Free, nudged (+-beta, plain and differential costs) and current-nudged phases over a
    batch of random inputs and parameters."""
    m = models[name]
    rng = np.random.default_rng(7)
    u = rng.uniform(-1, 1, (2 if name == "mesh_1000" else 6, len(m.inputs)))
    lo, hi = m.theta_bounds()
    theta = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    with NgspiceNetwork(m) as ng:
        em = EmulatedBoard(m)
        outputs = tuple(int(i) for i in m.outputs)
        costs = [SquaredCost(outputs), SoftmaxCrossEntropyCost(outputs, gain=40.0)]
        if len(m.outputs) >= 2:
            costs += [SquaredCost(outputs[:2], differential=True),
                      SoftmaxCrossEntropyCost(outputs[:2], differential=True, gain=40.0)]
        for board in (ng, em):
            board.set_parameters(theta)
            board.clamp(u)
        assert_close(ng.equilibrium(), em.equilibrium(), f"{name} free")
        for cost in costs:
            ng.cost = em.cost = cost
            d = rng.uniform(-0.1, 0.1, (len(u), cost.n_targets))
            if isinstance(cost, SoftmaxCrossEntropyCost):        # class probabilities
                d = np.eye(cost.n_targets)[rng.integers(0, cost.n_targets, len(u))]
            bound = ng.convexity_bound()
            for beta in (0.3 * bound, -0.3 * bound):
                for board in (ng, em):
                    board.nudge(beta, d)
                assert_close(ng.equilibrium(), em.equilibrium(), f"{name} beta {beta:.3g}")
        currents = rng.normal(0, 1e-5, len(m.outputs))
        for board in (ng, em):
            board.nudge(0.0, None)
            board.nudge_currents(currents)
        assert_close(ng.equilibrium(), em.equilibrium(), f"{name} nudge currents")


def test_several_networks_in_one_process(models):
    """Two substrates interleaved: each reading is its own network's."""
    a, b = NgspiceNetwork(models["divider"]), NgspiceNetwork(models["xor_diode"])
    try:
        a.set_parameters(np.array([1e-3, 3e-3]))
        for _ in range(2):
            a.clamp(np.array([[2.0]]))
            assert a.equilibrium()[0, a.capabilities.measured.index("out")] == pytest.approx(0.5, abs=1e-12)
            assert_close(b.equilibrium(), EmulatedBoard(models["xor_diode"]).equilibrium(), "xor")
    finally:
        a.close()
        b.close()


def test_a_non_convex_nudge_is_refused(models):
    with NgspiceNetwork(models["xor_diode"]) as ng:
        bound = ng.convexity_bound()
        ng.nudge(-0.99 * bound, np.array([[0.1]]))
        with pytest.raises(ConfigError, match="non-convex"):
            ng.nudge(-1.01 * bound, np.array([[0.1]]))
        ng.cost = PeriodicCost(ng.cost.index)
        with pytest.raises(ConfigError, match="PeriodicCost is neither"):
            ng.nudge(1e-5, np.array([[1.0]]))


def test_an_op_that_does_not_converge_names_the_phase_and_inputs(models):
    # two Newton iterations, no gmin or source stepping, no transient fallback
    options = dict(SPICE_OPTIONS, itl1=2, gminsteps=0, srcsteps=0, noopiter=1)
    with NgspiceNetwork(models["xor_diode"], options=options) as ng:
        ng.clamp(np.array([[5.0, -5.0, 0.0, 0.0]]))
        ng.nudge(1e-5, np.array([[0.2]]))
        with pytest.raises(ConvergenceError, match=r"nudged phase \(beta = \+1e-05 S\) at inputs "
                                                   r"\(ap = 5 V, am = -5 V, bp = 0 V, bm = 0 V\)"):
            ng.equilibrium()


def test_a_point_off_kirchhoff_is_refused(models):
    m = models["xor_diode"]
    with NgspiceNetwork(m) as ng:
        s = ng.equilibrium_state()
        fixed = np.zeros_like(s)
        ng._check_kirchhoff(ng.inputs, s, fixed, None)          # ngspice's point passes
        with pytest.raises(ConvergenceError, match="Kirchhoff's current law at node"):
            ng._check_kirchhoff(ng.inputs, s + 1e-3, fixed, None)


# ----- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["divider", "xor_diode", "iris_diode"])
@pytest.mark.parametrize("rule, options", [("ep", {}), ("ep", {"symmetric": False, "beta": 1e-6}),
                                           ("exact", {}), ("fd", {})])
def test_gradients_agree_with_the_emulator(models, name, rule, options):
    G = load_network(name)
    m = models[name]
    rng = np.random.default_rng(3)
    u = rng.uniform(-1, 1, (4, len(m.inputs)))
    d = rng.uniform(-0.1, 0.1, (4, len(m.outputs)))
    results = []
    for substrate in ("ngspice", "emulator"):
        obj = ResistiveObjective(G, rule=rule, substrate=substrate, **options)
        try:
            results.append(obj.gradient(m.default_theta, u, d, np.random.default_rng(0)))
        finally:
            obj.close()
    ng, em = results
    assert ng.loss == pytest.approx(em.loss, rel=RTOL)
    assert_close(ng.gradient, em.gradient, f"{name} {rule}")


# ----- the factory and the command line --------------------------------------------------------

def test_the_factory_opens_ngspice_and_refuses_noise(models):
    board = open_substrate("ngspice", models["divider"])
    assert isinstance(board, NgspiceNetwork) and board.capabilities.temperature is None
    board.close()
    for kw in ({"temperature": 1e-7}, {"default_temperature": 1e-7}):
        with pytest.raises(ConfigError, match="noiseless"):
            open_substrate("ngspice", models["divider"], **kw)


@pytest.mark.parametrize("name", ["divider", "xor_diode"])
def test_emulate_and_gradient_commands_on_ngspice(capsys, name):
    target = {"divider": "out=0.3", "xor_diode": "out=0.2"}[name]
    outputs = {}
    for substrate in ("ngspice", "emulator"):
        status, out, _ = run_cli(capsys, "emulate", name, "--substrate", substrate, "--format", "json")
        assert status == 0
        status, grad, _ = run_cli(capsys, "gradient", name, "--target", target, "--rule", "ep",
                                  "--substrate", substrate, "--format", "json")
        assert status == 0
        outputs[substrate] = (out, grad)
    import json
    (ng_v, ng_g), (em_v, em_g) = ([json.loads(t) for t in outputs[s]] for s in ("ngspice", "emulator"))
    assert_close(list(ng_v["nodes"].values()), list(em_v["nodes"].values()), "emulate")
    assert_close(list(ng_g["gradient"].values()), list(em_g["gradient"].values()), "gradient")
    assert ng_g["settings"]["substrate"] == "ngspice"


@pytest.mark.parametrize("network, dataset, readout", [("xor_diode", "xor", "squared"),
                                                      ("iris_diode", "iris", "softmax")])
def test_train_on_ngspice_matches_the_emulator(capsys, tmp_path, network, dataset, readout):
    import json
    metrics = {}
    for substrate in ("ngspice", "emulator"):
        status, _, err = run_cli(capsys, "train", "--network", network, "--dataset", dataset, "--rule", "ep",
                                 "--substrate", substrate, "--epochs", "2", "--quiet", "--seed", "0",
                                 "--readout", readout, "--max-train", "40", "--out", str(tmp_path / substrate))
        assert status == 0, err
        metrics[substrate] = json.loads((tmp_path / substrate / "metrics.json").read_text())
    ng, em = (metrics[s] for s in ("ngspice", "emulator"))
    assert [e["train_loss"] for e in ng["epochs"]] == pytest.approx([e["train_loss"] for e in em["epochs"]], rel=RTOL)
    assert ng["final"]["test_loss"] == pytest.approx(em["final"]["test_loss"], rel=RTOL)


def test_cli_errors_on_ngspice_are_one_line(capsys):
    status, _, err = run_cli(capsys, "train", "--network", "xor_diode", "--dataset", "xor",
                             "--substrate", "ngspice", "--epochs", "1", "--quiet")
    assert_one_line_error(status, err, "noiseless", "--rule ep")
    status, _, err = run_cli(capsys, "emulate", "xor_diode", "--substrate", "ngspice", "--samples", "10")
    assert_one_line_error(status, err, "--substrate emulator")


# ----- netlists with parts only ngspice runs ---------------------------------------------------

COMMON_SOURCE = """common-source stage: an NMOS with a trainable gate divider and drain load
*@ input in
*@ output out
*@ trainable R1 R2 R3
*@ bounds R* 10u 10m
.param rl=10k
Vin in 0 DC {vin}
Vdd vdd 0 DC 2
R1 in g 1k
R2 g 0 10k
R3 vdd out 5k
R4 out 0 {{rl}}
M1 out g 0 0 nmod
.model nmod NMOS(level=1 VTO=0.5 KP=1e-4)
.op
.end
"""
#: Reciprocal (resistors and diodes only, some of them ngspice's alone), so that EP's
#: estimate is the gradient; the input b is set by a reversed source.
RECIPROCAL = """diodes with series resistance, a resistor subcircuit and a parameter
*@ input a b
*@ output out
*@ trainable R1 R2 R3
*@ bounds R* 10u 10m
.param rp=20k
Va a 0 DC {va}
Vb 0 b DC {minus_vb}
R1 a m 1k
R2 b m 2k
R3 m out 3k
D1 out 0 drs
X1 out 0 half
Rp m 0 {{rp}}
.include half.lib
.model drs D(IS=1e-12 N=1.5 RS=200)
.control
echo not run
.endc
.end
"""
HALF = "* two resistors in series\n.subckt half p q\nRa p x 4k\nRb x q 4k\n.ends\n"


def write(tmp_path, name, text, **values):
    (tmp_path / "half.lib").write_text(HALF)
    path = tmp_path / name
    path.write_text(text.format(**values))
    return path


needs_binary = pytest.mark.skipif(ngspice_unavailable() is not None,
                                  reason=f"the cross-check runs ngspice -b: {ngspice_unavailable()}")


@needs_binary
@pytest.mark.parametrize("text, inputs", [(COMMON_SOURCE, [{"vin": 1.0}, {"vin": 1.7}]),
                                          (RECIPROCAL, [{"va": 1.0, "minus_vb": 0.5},
                                                        {"va": -0.3, "minus_vb": -0.9}])])
def test_a_netlist_only_ngspice_runs_goes_through_unchanged(tmp_path, text, inputs):
    """The substrate's operating points, inputs altered through the file's own sources
    (one of them reversed), against ngspice -b on the file written with those inputs."""
    path = write(tmp_path, "net.cir", text, **inputs[0])
    with pytest.raises(NetlistError, match="only ngspice runs this, use --substrate ngspice"):
        load_network(path)
    G = load_network(path, ngspice=True)
    assert "element" in G.graph["spice_only"]
    m = compile_network(G)
    with pytest.raises(ConfigError, match="use --substrate ngspice"):
        EmulatedBoard(m)
    u = np.array([[v if k != "minus_vb" else -v for k, v in values.items()] for values in inputs])
    with NgspiceNetwork(m) as ng:
        ng.clamp(u)
        V = ng.equilibrium()
    for row, values in zip(V, inputs):
        spice = ngspice_operating_point(path=write(tmp_path, "one.cir", text, **values))
        assert_close(row, [spice[n] for n in ng.capabilities.measured], str(values))


def test_ep_on_a_netlist_only_ngspice_runs_is_its_gradient(tmp_path):
    """Symmetric EP at a small beta against central differences, both through ngspice.

    Tolerance 1e-4 of the largest gradient: symmetric EP's bias is O((beta / G)^2), about
    1e-5 at beta = 1e-6 S against the 3e-4 S output conductance; the differences err by
    ngspice's roundoff, ~1e-13 V^2 in the loss over 1e-8 S steps, 2e-7 of the gradient.
    1e-6 is seen."""
    G = load_network(write(tmp_path, "net.cir", RECIPROCAL, va=1.0, minus_vb=0.5), ngspice=True)
    u, d = np.array([[1.0, -0.5], [0.4, 0.8]]), np.array([[0.2], [0.1]])
    grads = {}
    for rule, options in (("ep", {"beta": 1e-6}), ("fd", {})):
        obj = ResistiveObjective(G, rule=rule, substrate="ngspice", **options)
        try:
            grads[rule] = obj.gradient(obj.model.default_theta, u, d, np.random.default_rng(0)).gradient
        finally:
            obj.close()
    assert np.abs(grads["ep"] - grads["fd"]).max() <= 1e-4 * np.abs(grads["fd"]).max(), grads
    exact = ResistiveObjective(G, rule="exact", substrate="ngspice")
    with pytest.raises(ConfigError, match="exact rule needs the network's Hessian"):
        exact.gradient(exact.model.default_theta, u, d, np.random.default_rng(0))
    exact.close()


def test_commands_take_a_netlist_only_ngspice_runs(capsys, tmp_path):
    path = write(tmp_path, "cs.cir", COMMON_SOURCE, vin=1.0)
    status, _, err = run_cli(capsys, "emulate", str(path))
    assert_one_line_error(status, err, "element M1 (a MOSFET) (line 13)", "--substrate ngspice")
    status, out, _ = run_cli(capsys, "emulate", str(path), "--substrate", "ngspice", "--format", "json")
    assert status == 0
    import json
    g = json.loads(out)["nodes"]["g"]
    assert g == pytest.approx(1.0 * 10 / 11, abs=1e-12)         # the gate divider: no gate current
    status, out, _ = run_cli(capsys, "gradient", str(path), "--substrate", "ngspice", "--rule", "fd",
                             "--target", "out=1.0")
    assert status == 0 and "R3" in out
