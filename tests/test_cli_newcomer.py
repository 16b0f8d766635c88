"""Bad input a new user meets first, run as a user would: ``python -m analog_ep`` in a
subprocess; each case checks the exit status and the one line on stderr."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_module as cli

from analog_ep import __version__
from analog_ep.graph import load_network
from analog_ep.hardware.profile import load_profile
from analog_ep.spice.batch import ngspice_operating_point, ngspice_unavailable
from analog_ep.substrates.emulated import EmulatedBoard, reading_range

ROOT = Path(__file__).resolve().parents[1]




def one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    # argparse's own errors come after its usage block (a "usage:" line and indented ones)
    lines = [line for line in proc.stderr.strip().splitlines()
             if ": warning: " not in line and not line.startswith(("usage:", " "))]
    assert len(lines) == 1 and lines[0].startswith("analog-ep "), proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.mark.parametrize("text, fragment", [
    ('{"nodes": [1, 2, 3]}', "nodes[0] must be an object with an 'id'"),
    ("[1, 2]", "must be an object with 'nodes' and 'edges', not a list"),
    ('"net"', "not a str"),
    ("{}", "needs a list 'nodes'"),
    ("null", "not null"),
    ('{"nodes": [{"id": "a", "role": "input"}, {"id": "b", "role": "output"}], '
     '"edges": [{"source": "a", "target": "bb", "name": "R1", "conductance": 1e-3}]}',
     "edges[0] target 'bb' is not a listed node"),
    ('{"nodes": [{"id": "a", "role": "input"}, {"id": "b", "role": "output"}], '
     '"edges": [{"source": "a", "target": "b", "name": "R1", "conductance": "x"}]}',
     "element R1 attribute 'conductance' must be a number"),
])
def test_malformed_node_link_json(tmp_path, text, fragment):
    path = tmp_path / "net.json"
    path.write_text(text)
    one_line_error(cli("info", path), "net.json", fragment)


DECK = """{title}
*@ input in
*@ output out
V1 in 0 DC 1{ac}
R1 in out 100k
D1 out 0 dmod
.model dmod D(IS=1e-14 N=1)
{options}
.op
.end
"""


def test_missing_input_declaration_is_named(tmp_path):
    path = tmp_path / "noin.cir"
    path.write_text(DECK.format(title="no input", ac="", options="").replace("*@ input in\n", ""))
    one_line_error(cli("info", path), "noin.cir", "no input node is declared", "*@ input NODE")


def test_ac_specification_is_ignored_with_a_note(tmp_path):
    path = tmp_path / "ac.cir"
    path.write_text(DECK.format(title="ac", ac=" AC 1", options=""))
    proc = cli("info", path, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ("analog-ep info: warning: " + str(path) + ":4: source V1: AC "
                                   "specification ignored (it has no effect on the operating point)")
    assert json.loads(proc.stdout)["elements"] == {"diode": 1, "resistor": 1}


@pytest.mark.parametrize("value, fragment", [("0", "must be a positive conductance"),
                                             ("x", ".options gmin")])
def test_bad_gmin_is_refused(tmp_path, value, fragment):
    path = tmp_path / "g.cir"
    path.write_text(DECK.format(title="g", ac="", options=f".options gmin={value}"))
    one_line_error(cli("info", path), "g.cir:8", fragment)


@pytest.mark.skipif(ngspice_unavailable() is not None, reason="ngspice missing: apt-get install ngspice")
def test_gmin_matches_ngspice(tmp_path):
    """gmin = 1e-6 S across a diode behind 100 kOhm moves the output by ~5e-3 relative; with the
    gmin resistor in the graph our solution agrees with ngspice on the file as written to the
    1e-6 tolerance of the ngspice cross-check, and without it it does not."""
    from analog_ep.graph import load_network
    from analog_ep.models.resistive import compile_network
    from analog_ep.physics.equilibrium import solve_equilibrium
    path = tmp_path / "g.cir"
    path.write_text(DECK.format(title="g", ac="", options=".options gmin=1e-6"))
    G = load_network(path)
    assert G.edges["0", "out", "D1_gmin"]["conductance"] == 1e-6

    def out_voltage(H):
        m = compile_network(H)
        s = solve_equilibrium(m, m.default_theta, m.default_inputs[None, :]).s
        return dict(zip(m.node_names, m.voltages(s, m.default_inputs[None, :])[0]))["out"]

    spice = ngspice_operating_point(path=path)["out"]
    assert abs(out_voltage(G) - spice) <= 1e-6 * abs(spice)
    G.remove_edge("0", "out", "D1_gmin")
    assert abs(out_voltage(G) - spice) > 1e-3 * abs(spice)


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"analog-ep {__version__}"


def test_info_lists_bundled_networks():
    proc = cli("info")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    from analog_ep.graph import available_networks
    assert [line.split()[0] for line in lines] == available_networks()
    for line in lines:
        name, fam, *rest = line.split()
        assert fam in ("resistive", "oscillator", "quantum") and "nodes," in rest
        assert line.split("edges", 1)[1].strip(), f"{name} has no description"


def test_convert_help_names_formats():
    out = cli("netlist", "convert", "--help").stdout
    for word in (".cir", ".graphml", ".json", "suffix"):
        assert word in out


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_train_must_be_positive(value):
    one_line_error(cli("train", "--dataset", "xor", "--max-train", value), "--max-train",
                   f"--max-train {value}: expected an integer >= 1")


def test_out_holding_an_earlier_run_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"")
    one_line_error(cli("train", "--dataset", "xor", "--out", tmp_path / "run"),
                   f"--out {tmp_path / 'run'} holds an earlier run", "--resume", "--overwrite")


@pytest.mark.parametrize("out", ["afile", "afile/sub"])
def test_out_naming_a_file_is_refused(tmp_path, out):
    (tmp_path / "afile").write_text("")
    one_line_error(cli("train", "--dataset", "xor", "--out", tmp_path / out), "is a file, not a directory")


def test_negative_exponent_reaches_the_option_check():
    """argparse alone would say '--temperature: expected one argument'."""
    proc = cli("board-emulator", "--temperature", "-1e-7")
    one_line_error(proc, "--temperature -1e-7", "expected a finite number >= 0")


def test_join_negative_values_and_resume_hint():
    from analog_ep.cli import join_negative_values, resume_hint
    assert join_negative_values(["train", "--temperature", "-1e-7", "--seed", "3"]) == \
        ["train", "--temperature=-1e-7", "--seed", "3"]
    assert join_negative_values(["--lr", "-0.5"]) == ["--lr", "-0.5"]  # argparse reads these itself
    assert resume_hint(["train", "--out", "runs/a b", "--overwrite"]) == \
        "analog-ep train --out 'runs/a b' --resume"


def train_xor(out, *extra):
    return cli("train", "--dataset", "xor", "--rule", "exact", "--epochs", "2", "--out", out, *extra)


def test_log_has_one_line_per_epoch_and_no_carriage_returns(tmp_path):
    """stderr is a pipe here, as in a cluster job: no progress bar, one line per epoch."""
    proc = train_xor(tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    epochs = [line for line in proc.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    for picture in ("curves.png", "network.png"):           # written, and their paths printed
        assert (tmp_path / "run" / picture).read_bytes()[:4] == b"\x89PNG"
        assert f"wrote {tmp_path / 'run' / picture}" in proc.stdout


def test_quiet_verbose_and_no_progress(tmp_path):
    quiet = train_xor(tmp_path / "q", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    verbose = train_xor(tmp_path / "v", "--verbose")
    assert "epoch 1 batch 1/1: loss" in verbose.stderr
    plain = train_xor(tmp_path / "n", "--no-progress")
    assert "epoch 2/2:" in plain.stderr


def test_resume_says_where_it_starts_and_why_it_stops(tmp_path):
    assert train_xor(tmp_path / "run").returncode == 0
    more = cli("train", "--dataset", "xor", "--rule", "exact", "--epochs", "3", "--out",
               tmp_path / "run", "--resume")
    assert more.returncode == 0 and "at epoch 3, batch 1 of 3 epochs" in more.stderr, more.stderr
    fewer = cli("train", "--dataset", "xor", "--rule", "exact", "--epochs", "2", "--out",
                tmp_path / "run", "--resume")
    assert fewer.returncode == 0
    assert "already holds 3 epochs (--epochs 2): nothing to train" in fewer.stderr, fewer.stderr


def test_default_run_folder_names_the_network(tmp_path):
    proc = cli("train", "--network", "xor_diode", "--dataset", "xor", "--rule", "exact",
               "--epochs", "1", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "runs" / "xor_diode-xor-exact-s0" / "metrics.json").is_file()


def test_ctrl_c_names_epoch_checkpoint_and_resume_command(tmp_path):
    import signal
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "analog_ep", "train", "--dataset", "iris", "--rule",
                             "ep", "--epochs", "200", "--out", str(out)], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:               # wait for the first epoch, then press Ctrl-C
        if line.startswith("epoch 1/200"):
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130
    last = rest.strip().splitlines()[-1]
    assert last.startswith("analog-ep train: interrupted at epoch "), rest
    assert f"checkpoint saved in {out / 'checkpoint.npz'}" in last
    assert last.endswith(f"to continue: analog-ep train --dataset iris --rule ep --epochs 200 --out {out} --resume")


def gradient_json(*argv):
    proc = cli("gradient", "xor_diode", "--target", "out=0.5", "--input", "bp=1", "--input", "bm=-1",
               "--format", "json", *argv)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_gradient_reports_its_settings():
    r = gradient_json("--rule", "ep")
    s = r["settings"]
    assert s["rule"] == "ep" and s["symmetric"] is True and s["seed"] == 0 and s["samples"] is None
    assert s["beta"] == pytest.approx(0.2 * s["curvature"], rel=1e-12)   # the documented default


def test_richardson_cancels_the_beta_squared_bias():
    """Symmetric EP: g(b) = g + c b^2 + O(b^4). Halving b divides the plain error by 4 and the
    Richardson error (4 g(b/2) - g(b))/3 by 16; the bias estimate |g(b) - g(b/2)| is (3/4)|c| b^2.
    At b = 4e-6 and 2e-6 S (curvature 1e-4 S) the Richardson errors, 1.8e-4 and 1.1e-5 V^2/S
    on gradients of ~60, stay far above the solver's round-off (~1e-9 relative), so the ratios
    hold to the next order in b^2 (a few per cent): brackets [3.5, 4.5] and [13, 19]."""
    exact = gradient_json("--rule", "exact")["gradient"]

    def errors(beta):
        plain = gradient_json("--rule", "ep", "--beta", beta)["gradient"]
        rich = gradient_json("--rule", "ep", "--beta", beta, "--richardson")
        e_plain = max(abs(plain[k] - exact[k]) for k in exact)
        e_rich = max(abs(rich["gradient"][k] - exact[k]) for k in exact)
        return e_plain, e_rich, max(rich["bias_estimate"].values())

    p1, r1, b1 = errors("4e-6")
    p2, r2, _ = errors("2e-6")
    assert 3.5 < p1 / p2 < 4.5
    assert 13 < r1 / r2 < 19
    assert 0.65 < b1 / p1 < 0.85


@pytest.mark.parametrize("argv", [["--rule", "exact"], ["--rule", "ep", "--one-sided"]])
def test_richardson_needs_symmetric_ep(argv):
    one_line_error(cli("gradient", "xor_diode", "--target", "out=0.5", "--richardson", *argv),
                   "--richardson applies to the symmetric ep rule")


@pytest.mark.parametrize("argv", [
    ["train", "--dataset", "xor", "--rule", "thermal-cv", "--epochs", "2", "--quiet"],
    ["train", "--dataset", "xor", "--rule", "low-t", "--epochs", "2", "--quiet"],
    ["train", "--network", "oscillator_xor", "--dataset", "xor", "--epochs", "1", "--quiet"],
    ["gradient", "xor_diode", "--target", "out=0.5", "--rule", "thermal", "--samples", "200"],
])
def test_no_numpy_warning_escapes(tmp_path, argv):
    """Every RuntimeWarning (numpy's divide, overflow, invalid) is made an error here."""
    out = ["--out", tmp_path / "run"] if argv[0] == "train" else []
    proc = cli(*argv, *out, env={"PYTHONWARNINGS": "error::RuntimeWarning"})
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr


def test_readings_outside_the_profile_ranges_warn():
    proc = cli("emulate", "divider", "--input", "in=1e6")
    assert proc.returncode == 0
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "analog-ep emulate: warning: input in = 1e+06 V is outside its DAC range [-10, 9.99969] V "
        "of the emulator board profile",
        "analog-ep emulate: warning: node voltage in = 1e+06 V is outside the ADC range "
        "[-10, 9.99969] V of the emulator board profile (2 in all)"]
    assert cli("emulate", "divider", "--input", "in=2.5").stderr == ""


def test_thermal_readings_outside_the_adc_range_warn():
    """At 1e10 W the divider's output fluctuates by sqrt(T / G) ~ 1e6 V."""
    proc = cli("emulate", "divider", "--temperature", "1e10", "--samples", "100", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("analog-ep emulate: warning: reading of node out = "), proc.stderr
    assert "outside the ADC range [-10, 9.99969] V" in proc.stderr


def test_thermal_readings_outside_the_adc_range_warn_once_per_board():
    """Training samples the same board thousands of times: the range warning comes once."""
    board = EmulatedBoard(load_network("divider"), temperature=1e10, rng=np.random.default_rng(0))
    with pytest.warns(UserWarning, match=r"reading of node out = .* outside the ADC range .* noise swamps"):
        board.sample(100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        board.sample(100)
    assert reading_range() == (load_profile("emulator").measured.lo, load_profile("emulator").measured.hi)
