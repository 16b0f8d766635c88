"""The train and gradient commands: files, output, exit status and one-line errors."""

import json

import pytest

from analog_ep.cli import main


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_writes_metrics_params_and_curves(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run(["train", "--dataset", "xor", "--rule", "ep", "--epochs", "3", "--seed", "2",
                           "--out", str(out), "--no-progress"], capsys)
    assert code == 0 and "test accuracy" in stdout and str(out) in stdout
    m = json.loads((out / "metrics.json").read_text())
    assert {"test_accuracy", "train_accuracy", "test_loss"} <= set(m["final"]) and m["seed"] == 2
    assert len(m["epochs"]) == 3
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,seed,train_loss") and len(rows) == 4
    params = json.loads((out / "params.json").read_text())["parameters"]
    assert all(name.startswith("R") for name in params)
    code, stdout, _ = run(["train", "--dataset", "xor", "--rule", "ep", "--epochs", "4", "--seed", "2",
                           "--out", str(out), "--no-progress", "--resume", "--format", "json"], capsys)
    assert code == 0 and len(json.loads((out / "metrics.json").read_text())["epochs"]) == 4
    assert json.loads(stdout)["final"]["epochs"] == 4


def test_gradient_of_the_divider(capsys):
    # V_out = V_in G1 / (G1 + G2) = 1 V; dL/dG1 = (V_out - d) V_in G2 / (G1 + G2)^2 = 250 V^2/S
    code, stdout, _ = run(["gradient", "divider", "--input", "in=2", "--target", "out=0.5",
                           "--rule", "exact", "--format", "json"], capsys)
    assert code == 0
    report = json.loads(stdout)
    assert report["loss"] == pytest.approx(0.125)
    assert report["gradient"]["R1"] == pytest.approx(250.0) and report["gradient"]["R2"] == pytest.approx(-250.0)
    code, stdout, _ = run(["gradient", "divider", "--input", "in=2", "--target", "out=0.5",
                           "--rule", "ep", "--beta", "1e-6", "--format", "json"], capsys)
    assert json.loads(stdout)["gradient"]["R1"] == pytest.approx(250.0, rel=1e-5)
    code, stdout, _ = run(["gradient", "divider", "--target", "out=0.5", "--rule", "exact"], capsys)
    assert code == 0 and stdout.splitlines()[0].startswith("loss")


@pytest.mark.parametrize("argv,message", [
    (["gradient", "divider", "--target", "in=0.5"], "not an output node"),
    (["gradient", "divider", "--input", "out=1", "--target", "out=0.5"], "not an input node"),
    (["gradient", "divider"], "--target"),
    (["gradient", "divider", "--target", "out=0.5", "--rule", "nope"], "unknown rule"),
    (["gradient", "divider", "--target", "out=0.5", "--rule", "ep", "--beta", "1"], "curvature"),
    (["train", "--dataset", "xor", "--rule", "nope", "--no-progress"], "unknown rule"),
    (["train", "--dataset", "xor", "--rule", "ep", "--network", "divider", "--no-progress"], "inputs"),
])
def test_errors_are_one_line_with_status_2(argv, message, capsys, tmp_path):
    code, _, err = run(argv + (["--out", str(tmp_path)] if argv[0] == "train" else []), capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_corrupt_checkpoint_is_refused(tmp_path, capsys):
    (tmp_path / "checkpoint.npz").write_text("not a checkpoint")
    code, _, err = run(["train", "--dataset", "xor", "--rule", "ep", "--out", str(tmp_path), "--resume",
                        "--no-progress"], capsys)
    assert code == 2 and "corrupt checkpoint" in err


@pytest.mark.parametrize("argv", [["train", "--dataset", "cifar10"], ["train", "--shots", "0"],
                                  ["gradient", "quantum_xor", "--target", "y=1", "--samples", "-3"]])
def test_bad_values_are_refused_by_the_parser(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and argv[-1] in err


def test_thermal_rule_over_the_wire_takes_the_profiles_temperature_or_says_what_to_pass(tmp_path, capsys):
    from importlib.resources import files

    from analog_ep.board_emulator import BoardEmulator
    template = files("analog_ep.resources.boards").joinpath("emulator.toml").read_text()
    assert "\ntemperature = 1e-7" in template
    silent = tmp_path / "silent.toml"         # the same board, but its profile states no temperature
    silent.write_text("\n".join(l for l in template.splitlines() if not l.startswith("temperature")))
    args = ["gradient", "divider", "--target", "out=0.3", "--rule", "thermal", "--samples", "20"]
    with BoardEmulator("divider", temperature=1e-7, tcp=0, seed=1) as emu:
        code, stdout, err = run(args + ["--substrate", f"serial:{emu.path}", "--format", "json"], capsys)
        assert code == 0, err
        assert set(json.loads(stdout)["gradient"]) == {"R1", "R2"}
        code, _, err = run(args + ["--substrate", f"serial:{emu.path}", "--profile", str(silent)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--temperature T" in err and "--calibration FILE" in err and "analog-ep calibrate" in err
    code, _, err = run(["gradient", "divider", "--target", "out=0.3", "--substrate", "serial:socket://x:1",
                        "--profile", "no-such-profile"], capsys)
    assert code == 2 and "no-such-profile" in err


def test_quantum_gradient_passes_state_and_samples_as_shots(capsys):
    import numpy as np

    from analog_ep.graph import load_network
    from analog_ep.commands.reports import quantum_gradient_report
    G = load_network("quantum_xor")
    base = ["gradient", "quantum_xor", "--input", "x1=0.5", "--target", "y=1", "--format", "json"]
    for extra, kwargs in ((["--rule", "exact", "--state", "1"], dict(rule="exact", state=1)),
                          (["--rule", "ep", "--samples", "400", "--seed", "3"], dict(rule="ep", shots=400)),
                          (["--rule", "ep", "--shots", "400", "--seed", "3"], dict(rule="ep", shots=400))):
        code, stdout, err = run(base + extra, capsys)
        assert code == 0, err
        want = quantum_gradient_report(G, {"x1": 0.5}, {"y": 1.0}, rng=np.random.default_rng(3), **kwargs)
        got = json.loads(stdout)
        assert got["gradient"] == pytest.approx(want["gradient"], rel=1e-12)
        assert ("stderr" in got) == ("shots" in kwargs)
        if "state" in kwargs:                                   # --state reached the report
            ground = quantum_gradient_report(G, {"x1": 0.5}, {"y": 1.0}, rule="exact")
            assert got["loss"] != pytest.approx(ground["loss"])


@pytest.mark.parametrize("argv,message", [
    (["gradient", "divider", "--target", "out=0.5", "--state", "1"], "--state"),
    (["gradient", "oscillator_xor", "--target", "y=1", "--profile", "pico"], "--profile"),
    (["gradient", "quantum_xor", "--target", "y=1", "--substrate", "serial:/dev/null"], "--substrate"),
    (["train", "--dataset", "xor", "--rule", "ep", "--state", "1", "--no-progress", "--epochs", "0"], "--state"),
])
def test_options_of_other_families_are_refused(argv, message, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("reconnects", [0, 3])
def test_training_over_a_board_that_drops_its_port_finishes_with_resume(reconnects, tmp_path, capsys, monkeypatch):
    from analog_ep.board_emulator import BoardEmulator
    from analog_ep.learning import trainer
    monkeypatch.setattr(trainer, "RECONNECTS", reconnects)    # 0: every lost port stops the run
    out = tmp_path / "run"
    argv = ["train", "--network", "iris_diode", "--temperature", "1e-7", "--epochs", "1", "--max-train", "20",
            "--out", str(out), "--no-progress", "--format", "json"]
    # a board without replay: its lost ports reach the trainer (a replay board recovers inside)
    with BoardEmulator("iris_diode", temperature=1e-7, faults="disconnect:0.005", seed=5, replay=False) as emu:
        for attempt in range(10):
            code, stdout, err = run(argv + ["--substrate", f"serial:{emu.path}"] + ["--resume"] * (attempt > 0),
                                    capsys)
            if code == 0:
                break
            assert len(err.strip().splitlines()) == 1
            assert "lost" in err and "--resume" in err or "cannot open" in err    # still down: run again
    assert code == 0, err
    assert json.loads(stdout)["final"]["epochs"] == 1
    assert (attempt > 0) == (reconnects == 0)


def test_single_output_network_learns_a_two_class_data_set_by_its_sign(tmp_path, capsys):
    code, stdout, err = run(["train", "--dataset", "xor", "--network", "xor_diode", "--epochs", "1",
                             "--no-progress", "--out", str(tmp_path / "thermal")], capsys)
    assert code == 0, err
    code, stdout, err = run(["train", "--dataset", "xor", "--network", "xor_diode", "--rule", "exact",
                             "--epochs", "40", "--no-progress", "--format", "json", "--out", str(tmp_path / "x")],
                            capsys)
    assert code == 0, err
    assert json.loads(stdout)["final"]["test_accuracy"] == 1.0


def test_single_output_encoding_and_decision():
    import numpy as np

    from analog_ep.tasks import build_task
    from analog_ep.graph import load_network
    task = build_task(load_network("xor_diode"), 2, 2, dict(rule="exact"))
    np.testing.assert_array_equal(task.encode_targets(np.array([0, 1, 1])), [[-0.1], [0.1], [0.1]])
    np.testing.assert_array_equal(task.decode(np.array([[-0.01], [0.02], [0.0]])), [0, 1, 0])


@pytest.mark.parametrize("argv,sizes", [
    (["--dataset", "iris", "--network", "xor_diode"], ("1 outputs", "3 classes")),
    (["--dataset", "xor", "--network", "iris_diode"], ("8 inputs", "2 features")),
    (["--dataset", "digits", "--network", "divider"], ("1 inputs", "64 features")),
    (["--dataset", "xor", "--network", "xor_diode", "--readout", "softmax"], ("single output", "softmax")),
])
def test_network_and_data_set_mismatch_names_both_sizes(argv, sizes, capsys, tmp_path):
    code, _, err = run(["train", "--rule", "exact", "--no-progress", "--out", str(tmp_path)] + argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert all(s in err for s in sizes), err


def test_default_network_on_a_board_wired_otherwise_points_to_network(tmp_path, capsys):
    from analog_ep.board_emulator import BoardEmulator
    with BoardEmulator("iris_diode", temperature=1e-7, tcp=0) as emu:
        code, _, err = run(["train", "--substrate", f"serial:{emu.path}", "--epochs", "1", "--no-progress",
                            "--out", str(tmp_path)], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "--network FILE_OR_NAME" in err
        code, _, err = run(["train", "--substrate", f"serial:{emu.path}", "--network", "iris_diode",
                            "--epochs", "1", "--max-train", "10", "--no-progress", "--out", str(tmp_path)], capsys)
    assert code == 0, err


def test_train_and_gradient_release_the_boards_port(tmp_path, capsys):
    from analog_ep.hardware.client import BoardClient
    from analog_ep.board_emulator import BoardEmulator
    with BoardEmulator("xor_diode", temperature=1e-7) as emu:
        for argv in (["gradient", "xor_diode", "--target", "out=0.1", "--samples", "5"],
                     ["gradient", "xor_diode", "--target", "nope=0.1"],
                     ["gradient", "xor_diode", "--target", "out=0.1", "--rule", "nope"],
                     ["train", "--network", "xor_diode", "--dataset", "xor", "--epochs", "1", "--samples", "5",
                      "--no-progress", "--out", str(tmp_path)]):
            run(argv + ["--substrate", f"serial:{emu.path}"], capsys)
            with BoardClient(emu.path):         # refused while another handle holds the port's lock
                pass


def test_quantum_networks_default_to_the_ep_rule(tmp_path):
    from analog_ep.graph import load_network
    from analog_ep.learning.config import TrainConfig
    from analog_ep.tasks import default_rule
    assert default_rule(load_network("quantum_xor")) == "ep"
    assert default_rule(load_network("xor_diode")) == "thermal"
    assert TrainConfig().rule is None          # the library resolves it as the command line does


def test_low_t_order_reaches_the_rule_and_order_1_is_exact_on_a_linear_network(capsys):
    import json

    from analog_ep.cli import main
    grads = {}
    for rule, extra in (("low-t", ["--order", "0"]), ("low-t", ["--order", "1"]), ("thermal-exact", []), ("exact", [])):
        assert main(["gradient", "divider", "--target", "out=0.3", "--rule", rule, "--temperature", "1e-4",
                     "--format", "json", *extra]) == 0
        grads[(rule, tuple(extra))] = json.loads(capsys.readouterr().out)["gradient"]["R1"]
    assert grads[("low-t", ("--order", "1"))] == pytest.approx(grads[("thermal-exact", ())], rel=1e-6)
    assert grads[("low-t", ("--order", "0"))] == pytest.approx(grads[("exact", ())], rel=1e-6)
    assert grads[("low-t", ("--order", "1"))] != pytest.approx(grads[("exact", ())], rel=1e-6)
