"""Trainer: learning, reproducibility, resume and Ctrl-C equal to an uninterrupted run,
checkpoints written atomically, projection and quantisation, clear errors."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from analog_ep.learning.results import PHYSICAL_COLUMNS
from analog_ep.errors import ConfigError, SubstrateDisconnectedError
from analog_ep.tasks import build_task
from analog_ep.tasks.resistive import ResistiveObjective
from analog_ep.graph import save_network
from analog_ep.learning.objective import Objective
from analog_ep.learning.checkpoint import load_checkpoint
from analog_ep.learning.config import TrainConfig, network_settings
from analog_ep.learning.optimiser import learning_rate, quantise
from analog_ep.training import train
from analog_ep.networks import layered_diode_network

SMALL = dict(dataset="iris", rule="ep", hidden=(6,), max_train=30, batch_size=10, epochs=3,
             progress=False, eval_train=False)


def strip(epochs):
    """The epochs without timings and physical cost: a resumed epoch meters only what ran
    after resuming, from other warm starts (docs/reporting.md, "Physical cost")."""
    return [{k: v for k, v in e.items() if "seconds" not in k and k not in PHYSICAL_COLUMNS} for e in epochs]


def resumes_exactly(cfg, full, monkeypatch, gradient):
    """The checkpoint of ``cfg``'s stopped run sits at epoch 2, batch 2, and resuming it with
    the objective's ``gradient`` restored ends exactly where the uninterrupted ``full`` did."""
    state = load_checkpoint(Path(cfg.out) / "checkpoint.npz")
    assert (state["epoch"], state["batch"]) == (1, 1)
    monkeypatch.setattr(ResistiveObjective, "gradient", gradient)
    resumed = train(dataclasses.replace(cfg, resume=True))
    np.testing.assert_array_equal(resumed.theta, full.theta)
    assert strip(resumed.epochs) == strip(full.epochs)


def test_xor_is_learned_by_ep():
    r = train(TrainConfig(dataset="xor", rule="ep", epochs=60, progress=False))
    assert r.final["test_accuracy"] == 1.0
    assert r.epochs[-1]["train_loss"] < 0.1 * r.epochs[0]["train_loss"]


def test_same_seed_same_run_and_other_seed_differs():
    a = train(TrainConfig(**SMALL))
    b = train(TrainConfig(**SMALL))
    c = train(TrainConfig(**{**SMALL, "seed": 1}))
    np.testing.assert_array_equal(a.theta, b.theta)
    assert strip(a.epochs) == strip(b.epochs)
    assert not np.array_equal(a.theta, c.theta)


def test_resume_after_an_epoch_equals_an_uninterrupted_run(tmp_path):
    full = train(TrainConfig(**SMALL, out=str(tmp_path / "full")))
    part = dataclasses.replace(TrainConfig(**SMALL, out=str(tmp_path / "part")), epochs=1)
    train(part)
    resumed = train(dataclasses.replace(part, epochs=3, resume=True))
    np.testing.assert_array_equal(resumed.theta, full.theta)
    assert strip(resumed.epochs) == strip(full.epochs)
    assert not list(tmp_path.glob("*/*.tmp"))


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes_exactly(tmp_path, monkeypatch, schedule):
    cfg = TrainConfig(**{**SMALL, "rule": "exact"}, lr_schedule=schedule, out=str(tmp_path / "run"))
    full = train(dataclasses.replace(cfg, out=str(tmp_path / "full")))
    calls = {"n": 0}
    original = ResistiveObjective.gradient

    def interrupted(self, *args):
        calls["n"] += 1
        if calls["n"] == 5:                # epoch 2, batch 2
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(ResistiveObjective, "gradient", interrupted)
    with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
        train(cfg)
    resumes_exactly(cfg, full, monkeypatch, original)


def test_corrupt_missing_or_mismatched_checkpoints_are_clear_errors(tmp_path):
    cfg = TrainConfig(**{**SMALL, "epochs": 1}, out=str(tmp_path))
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(dataclasses.replace(cfg, resume=True))
    train(cfg)
    with pytest.raises(ConfigError, match="different settings.*lr"):
        train(dataclasses.replace(cfg, resume=True, lr=0.5, epochs=2))
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ConfigError, match="corrupt checkpoint"):
        train(dataclasses.replace(cfg, resume=True))
    with pytest.raises(ConfigError, match="needs --out"):
        train(dataclasses.replace(cfg, resume=True, out=None))


def test_cosine_schedule_anneals_the_rate_and_fixes_the_run_length(tmp_path):
    assert learning_rate(0.1, "constant", 7, 10) == 0.1
    rates = [learning_rate(0.1, "cosine", k, 10) for k in range(10)]
    assert rates[0] == 0.1 and rates[5] == pytest.approx(0.05) and rates[-1] == pytest.approx(0.1 * 0.0245, rel=1e-2)
    assert np.all(np.diff(rates) < 0)
    with pytest.raises(ConfigError, match="unknown learning-rate schedule 'step'"):
        train(TrainConfig(**SMALL, lr_schedule="step"))
    # a cosine run takes smaller late steps than the constant-rate run from the same start
    const = train(TrainConfig(**SMALL, lr_schedule="constant"))
    cos = train(TrainConfig(**SMALL, lr_schedule="cosine"))
    assert not np.array_equal(const.theta, cos.theta)
    cfg = TrainConfig(**{**SMALL, "epochs": 2}, lr_schedule="cosine", out=str(tmp_path))
    train(dataclasses.replace(cfg, epochs=1))
    with pytest.raises(ConfigError, match="cosine learning-rate schedule spans the run's 1 epochs"):
        train(dataclasses.replace(cfg, resume=True))


def test_a_checkpoint_from_before_learning_rate_schedules_resumes_at_a_constant_rate(tmp_path):
    from analog_ep.learning.checkpoint import save_checkpoint
    cfg = TrainConfig(**{**SMALL, "epochs": 1}, out=str(tmp_path))
    train(cfg)
    path = tmp_path / "checkpoint.npz"
    st = load_checkpoint(path)
    del st["config"]["lr_schedule"]
    save_checkpoint(path, **{k: st[k] for k in ("config", "epoch", "batch", "w", "opt", "rng_state", "running",
                                                "epochs")})
    assert len(train(dataclasses.replace(cfg, epochs=2, resume=True)).epochs) == 2
    with pytest.raises(ConfigError, match="different settings.*lr_schedule"):
        train(dataclasses.replace(cfg, epochs=3, resume=True, lr_schedule="cosine"))


def test_a_network_file_recommends_training_settings_that_flags_override(tmp_path):
    G = layered_diode_network(4, 3, (6,), rng=np.random.default_rng([0, 2]))
    G.graph.update(train_epochs=2, train_batch_size="15", train_lr=0.003, train_lr_schedule="cosine")
    path = tmp_path / "net.json"
    save_network(G, path)
    assert network_settings(G.graph) == {"epochs": 2, "batch_size": 15, "lr": 0.003, "lr_schedule": "cosine"}
    base = {k: v for k, v in SMALL.items() if k not in ("hidden", "epochs", "batch_size")}
    r = train(TrainConfig(**base, network=str(path)))
    assert (r.config["epochs"], r.config["batch_size"], r.config["lr"], r.config["lr_schedule"]) == \
        (2, 15, 0.003, "cosine")
    assert len(r.epochs) == 2
    r = train(TrainConfig(**base, network=str(path), epochs=1, lr=0.02, lr_schedule="constant"))
    assert (r.config["epochs"], r.config["batch_size"], r.config["lr"], r.config["lr_schedule"]) == \
        (1, 15, 0.02, "constant")
    for bad, match in (({"train_epochs": 2.5}, "train_epochs must be a whole number"),
                       ({"train_lr": "fast"}, "train_lr must be a number")):
        G.graph.update(bad)
        with pytest.raises(ConfigError, match=match):
            network_settings(G.graph)
        G.graph.update(train_epochs=2, train_lr=0.003)
    with pytest.raises(ConfigError, match="learning rate must be positive"):
        train(TrainConfig(**base, network=str(path), lr=-1.0))


def test_parameters_stay_in_bounds_and_quantise_to_levels():
    r = train(TrainConfig(**{**SMALL, "levels": 5, "optimizer": "sgd", "lr": 50.0}))
    G = layered_diode_network(4, 3, (6,), rng=np.random.default_rng([0, 2]))
    obj = ResistiveObjective(G, rule="exact")
    lo, hi = obj.bounds()
    assert np.all(r.theta >= lo) and np.all(r.theta <= hi)
    k = (r.theta - lo) / ((hi - lo) / 4)
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert len(np.unique(np.round(k))) > 1
    np.testing.assert_allclose(quantise(np.array([0.0, 0.26, 0.9, 2.0]), np.zeros(4), np.ones(4), 3),
                               [0.0, 0.5, 1.0, 1.0])


def test_exact_and_ep_train_alike():
    a = train(TrainConfig(**{**SMALL, "rule": "exact"}))
    b = train(TrainConfig(**{**SMALL, "rule": "ep", "beta_fraction": 0.05}))
    assert np.max(np.abs(a.theta - b.theta)) < 0.05 * np.max(a.theta)


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown data set"):
        train(TrainConfig(dataset="cifar", progress=False))
    with pytest.raises(ConfigError, match="unknown rule"):
        train(TrainConfig(**{**SMALL, "rule": "magic"}))
    with pytest.raises(ConfigError, match="optimizer"):
        train(TrainConfig(**{**SMALL, "optimizer": "lbfgs"}))
    G = layered_diode_network(3, 3, (4,), rng=np.random.default_rng(0))
    path = tmp_path / "net.json"
    save_network(G, path)
    with pytest.raises(ConfigError, match="6 inputs.*4 features"):
        train(TrainConfig(**{**SMALL, "hidden": None}, network=str(path)))
    G = layered_diode_network(4, 4, (4,), rng=np.random.default_rng(0))
    save_network(G, path)
    with pytest.raises(ConfigError, match="8 outputs.*3 classes"):
        train(TrainConfig(**{**SMALL, "hidden": None}, network=str(path)))


def test_resistive_task_encoding_and_objective_protocol():
    G = layered_diode_network(2, 3, (4,), rng=np.random.default_rng(0), target=0.2)
    task = build_task(G, 2, 3, {"rule": "exact"})
    assert isinstance(task.objective, Objective)
    u = task.encode_inputs(np.array([[0.5, -1.0]]))
    np.testing.assert_array_equal(u, [[0.5, -0.5, -1.0, 1.0]])
    np.testing.assert_array_equal(task.encode_targets(np.array([2, 0])), [[-0.2, -0.2, 0.2], [0.2, -0.2, -0.2]])
    readout = task.objective.predict(task.objective.initial_parameters(None), u)
    assert readout.shape == (1, 3)
    assert task.decode(np.array([[0.1, 0.3, -0.2]])).tolist() == [1]


def test_results_files(tmp_path):
    r = train(TrainConfig(**{**SMALL, "epochs": 2, "eval_train": True}, out=str(tmp_path)))
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["final"]) >= {"test_accuracy", "train_accuracy", "test_loss"}
    assert m["final"]["test_accuracy"] == r.final["test_accuracy"] and m["seed"] == 0
    assert len(m["epochs"]) == 2 and m["epochs"][0]["epoch"] == 1
    assert len((tmp_path / "metrics.csv").read_text().strip().splitlines()) == 3
    p = json.loads((tmp_path / "params.json").read_text())
    assert list(p["parameters"]) == list(r.param_names) and p["units"] == "S"
    pytest.importorskip("matplotlib")
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_default_network_currents_stay_below_the_documented_2_mA():
    """Every resistor and diode current, at extreme inputs and extreme conductances."""
    from analog_ep.models.resistive import compile_network
    from analog_ep.networks import default_network
    from analog_ep.physics.equilibrium import solve_equilibrium
    rng = np.random.default_rng(0)
    m = compile_network(default_network("digits", 64, 10, rng, hidden=(30,)))
    lo, hi = m.theta_bounds()
    x = rng.choice([-1.0, 1.0], (20, 64))
    u = np.stack([x, -x], 2).reshape(20, 128)
    for theta in (hi, np.where(rng.random(len(hi)) < 0.5, lo, hi)):
        s = solve_equilibrium(m, theta, u).s
        V = m.voltages(s, u)
        i_r = np.abs(V[:, m.r_a] - V[:, m.r_b]) * m.conductances(theta)
        i_d = np.abs(m.d_is * (np.exp((V[:, m.d_a] - V[:, m.d_c]) / m.d_nvt) - 1))
        assert np.max(np.abs(V)) <= 1.0 + 1e-9
        assert max(i_r.max(), i_d.max()) < 2e-3


def test_softmax_readout_trains_xor():
    r = train(TrainConfig(dataset="xor", rule="ep", readout="softmax", epochs=60, progress=False))
    assert r.final["test_accuracy"] == 1.0
    assert r.epochs[-1]["train_loss"] < 0.5 * r.epochs[0]["train_loss"]
    with pytest.raises(ConfigError, match="read-out"):
        train(TrainConfig(**{**SMALL, "readout": "hinge"}))


def test_quantum_training_receives_shots_and_state():
    from analog_ep.training import build
    cfg = TrainConfig(dataset="xor", network="quantum_xor", rule="ep", samples=100, state=1).resolved()
    _, _, task, _ = build(cfg)
    assert task.objective.options["shots"] == 100 and task.objective.options["state"] == 1


def _flaky_gradient(monkeypatch, fail_on):
    """ResistiveObjective.gradient that loses the port (after drawing from the rule's
    generator) on the calls numbered in ``fail_on``."""
    from analog_ep.hardware.errors import BoardDisconnectedError
    calls = {"n": 0}
    original = ResistiveObjective.gradient

    def flaky(self, theta, u, d, rng):
        calls["n"] += 1
        if calls["n"] in fail_on:
            rng.normal(size=7)
            raise BoardDisconnectedError("port lost", "MEAS?")
        return original(self, theta, u, d, rng)

    monkeypatch.setattr(ResistiveObjective, "gradient", flaky)
    return original


THERMAL = {**SMALL, "rule": "thermal", "samples": 8, "epochs": 2}


def test_a_lost_port_is_reopened_and_the_minibatch_repeated_exactly(tmp_path, monkeypatch):
    from analog_ep.substrates.emulated import EmulatedBoard
    full = train(TrainConfig(**THERMAL))
    reopened = []
    monkeypatch.setattr(EmulatedBoard, "reconnect", lambda self: reopened.append(1), raising=False)
    _flaky_gradient(monkeypatch, {5, 6})
    again = train(TrainConfig(**THERMAL))
    assert len(reopened) == 2
    np.testing.assert_array_equal(again.theta, full.theta)
    assert strip(again.epochs) == strip(full.epochs)


def test_a_board_that_stays_lost_leaves_a_checkpoint_that_resumes_exactly(tmp_path, monkeypatch):
    from analog_ep.hardware.errors import BoardDisconnectedError
    from analog_ep.learning import trainer
    from analog_ep.substrates.emulated import EmulatedBoard
    cfg = TrainConfig(**THERMAL, out=str(tmp_path / "run"))
    full = train(TrainConfig(**THERMAL))

    def gone(self):
        raise BoardDisconnectedError("could not reopen the port")

    monkeypatch.setattr(EmulatedBoard, "reconnect", gone, raising=False)
    original = _flaky_gradient(monkeypatch, {5})
    with pytest.raises(SubstrateDisconnectedError, match=r"epoch 2, batch 2.*could not reopen.*--resume"):
        train(cfg)
    resumes_exactly(cfg, full, monkeypatch, original)
    _flaky_gradient(monkeypatch, set(range(1, 2 + trainer.RECONNECTS)))    # every reconnection fails too
    monkeypatch.setattr(EmulatedBoard, "reconnect", lambda self: None, raising=False)
    with pytest.raises(SubstrateDisconnectedError, match="port lost"):
        train(dataclasses.replace(cfg, out=str(tmp_path / "other")))
