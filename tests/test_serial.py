"""SerialBoard as a Substrate over a pty: physics through the wire against exact
references, profiles, refusals, calibration and resuming after a disconnect."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from analog_ep.errors import ConfigError
from analog_ep.graph import load_network
from analog_ep.board_emulator import BoardEmulator
from analog_ep.hardware.errors import BoardDisconnectedError, ProfileError
from analog_ep.hardware.faults import parse_faults
from analog_ep.learning.config import TrainConfig
from analog_ep.physics.noise import RESISTIVE_DEFAULT_TEMPERATURE
from analog_ep.training import train as train_run
from analog_ep.hardware.profile import load_profile, profile_from_dict
from analog_ep.substrates.base import Substrate
from analog_ep.substrates.emulated import EmulatedBoard
from analog_ep.learning.rules import state_from_readings
from analog_ep.models.resistive import compile_network
from analog_ep.substrates.factory import open_substrate, require_nudge
from analog_ep.substrates.serial import SerialBoard

DIVIDER = load_network("divider")
FAST = dataclasses.replace(load_profile("emulator"), timeout=0.2, open_settle=1.0)
LSB = 20.0 / 65536          # emulator profile: 16-bit bipolar ADC, +-10 V
OUT = 2                     # emulator profile: every node is measured, in node order ("0", "in", "out")


@pytest.fixture
def emulator():
    with BoardEmulator("divider", seed=11) as emu:
        yield emu


def test_serial_board_is_a_substrate_and_matches_the_in_process_emulator(emulator):
    ref = open_substrate("emulator", DIVIDER)
    with open_substrate("serial:" + emulator.path, DIVIDER) as sb:
        assert isinstance(sb, Substrate) and isinstance(ref, EmulatedBoard)
        assert sb.capabilities.measured == ("0", "in", "out") == ref.capabilities.measured
        assert not sb.capabilities.batch
        u = np.array([[1.0], [-2.5], [7.0]])
        for theta in ([1e-3, 1e-3], [3e-3, 2e-4], [1e-5, 9e-3]):
            applied = sb.set_parameters(np.array(theta))
            assert np.all(np.abs(applied / theta - 1) < 2e-4)        # 65536 log levels
            ref.set_parameters(applied)
            ref.clamp(u)
            sb.clamp(u)
            assert np.max(np.abs(sb.equilibrium() - ref.equilibrium())) <= LSB
            assert np.max(np.abs(sb.sample(5) - ref.equilibrium()[:, None, :])) <= LSB


def test_thermal_noise_reaches_the_wire_with_the_boltzmann_variance():
    T = 3e-8          # W; Var(out) = T / (G1 + G2) for the divider
    with BoardEmulator("divider", temperature=T, seed=2) as emu:
        with SerialBoard(emu.path, DIVIDER, temperature=T) as sb:
            assert sb.capabilities.temperature == T
            g = sb.set_parameters(np.array([1e-3, 2e-3]))
            sb.clamp(np.array([[2.0]]))
            n = 20000
            x = sb.sample(n)[0, :, OUT]
    var = T / g.sum()
    mean = 2.0 * g[0] / g.sum()
    assert abs(x.mean() - mean) < 4 * np.sqrt(var / n)
    assert abs(x.var(ddof=1) / var - 1) < 4 * np.sqrt(2 / n) + LSB ** 2 / 12 / var


def test_nudge_is_first_order_and_centred_differences_are_exact(emulator):
    with SerialBoard(emulator.path, DIVIDER, FAST) as sb:
        g = sb.set_parameters(np.array([1e-3, 2e-3]))
        sb.clamp(np.array([[2.0], [-1.0]]))
        d = np.array([[0.1], [0.4]])
        v0 = sb.equilibrium()[:, OUT]
        beta = 3e-4
        sb.nudge(beta, d)
        vp = sb.equilibrium()[:, OUT]
        sb.nudge(-beta, d)
        vm = sb.equilibrium()[:, OUT]
        sb.nudge(0.0)
        assert np.max(np.abs(sb.equilibrium()[:, OUT] - v0)) <= LSB      # released
        # divider: V(beta) = (G1 Vin + beta d) / (G + beta), so dV/dbeta at 0 = (d - V0) / G
        assert np.allclose((vp - vm) / (2 * beta), (d[:, 0] - v0) / g.sum(), atol=2 * LSB / beta)
        sb.nudge_currents(np.array([1e-4]))
        assert np.allclose(sb.equilibrium()[:, OUT], v0 + 1e-4 / g.sum(), atol=2 * LSB)


def test_a_board_without_nudge_sources_refuses_nudged_rules_but_samples():
    prof = dataclasses.replace(load_profile("pico"), nudge=None)
    with BoardEmulator("divider", profile=prof) as emu:
        with SerialBoard(emu.path, DIVIDER, prof) as sb:
            assert not sb.capabilities.nudge
            with pytest.raises(ConfigError, match="no nudge current sources.*thermal rule needs only"):
                sb.nudge(1e-4, np.array([[0.3]]))
            with pytest.raises(ConfigError, match="no nudge current sources"):
                require_nudge(sb.capabilities, "the nudged EP rule")
            sb.nudge(0.0)                                          # releasing is always fine
            sb.clamp(np.array([[1.0]]))
            assert sb.sample(4).shape == (1, 4, 1)
            with pytest.raises(ConfigError, match=r"input in: 3 V is outside the DAC range \[0, 2.0475\] V"):
                sb.clamp(np.array([[3.0]]))


def test_rules_are_refused_what_the_board_cannot_measure():
    prof = dataclasses.replace(FAST, measured=dataclasses.replace(FAST.measured, names=("in",)))
    with BoardEmulator("divider", profile=prof) as emu, SerialBoard(emu.path, DIVIDER, prof) as sb:
        sb.clamp(np.array([[1.0]]))
        with pytest.raises(ConfigError, match="needs readings of every free node.*does not measure out"):
            state_from_readings(compile_network(DIVIDER), sb.capabilities.measured, sb.sample(3)[:, 0])
        with pytest.raises(ConfigError, match="does not measure output"):
            sb.nudge(1e-4, np.array([[0.0]]))


def test_a_board_that_disagrees_with_its_profile_is_refused(emulator):
    with pytest.raises(ProfileError, match=r"levels=65536 \(profile: 257\)"):
        SerialBoard(emulator.path, DIVIDER, "pico")
    renamed = dataclasses.replace(FAST, elements=("R2", "R1"))
    with pytest.raises(ProfileError, match="ELEM channels are R1,R2, profile says R2,R1"):
        SerialBoard(emulator.path, DIVIDER, renamed)


def test_adc_calibration_is_applied(emulator, tmp_path):
    record = tmp_path / "cal.json"
    record.write_text(json.dumps({"adc": {"out": {"gain": 2.0, "offset": 0.1}}}))
    with SerialBoard(emulator.path, DIVIDER, FAST) as sb:
        g = sb.set_parameters(np.array([1e-3, 1e-3]))
        sb.clamp(np.array([[1.0]]))
        raw = sb.equilibrium()
    with SerialBoard(emulator.path, DIVIDER, FAST, calibration=record) as sb:
        sb.set_parameters(g)
        sb.clamp(np.array([[1.0]]))
        cal = sb.equilibrium()
        assert np.allclose(cal[:, OUT], 2.0 * raw[:, OUT] + 0.1)
        assert np.array_equal(cal[:, :OUT], raw[:, :OUT])
    with pytest.raises(ConfigError, match="unmeasured node"):
        SerialBoard(emulator.path, DIVIDER, FAST, calibration={"nowhere": (1.0, 0.0)})


def test_open_substrate_specs(emulator):
    assert isinstance(open_substrate("emulator", DIVIDER, temperature=1e-9), EmulatedBoard)
    for bad in ("serial:", "emulator:x", "ngspice:x", "usb:/dev/x"):
        with pytest.raises(ConfigError, match="expected 'emulator', 'ngspice' or 'serial:PORT_OR_URL'"):
            open_substrate(bad, DIVIDER)
    with pytest.raises(BoardDisconnectedError, match="cannot open /nonexistent"):
        open_substrate("serial:/nonexistent/tty", DIVIDER)


# -- profiles ---------------------------------------------------------------------------

def test_bundled_profiles_load_and_bind():
    for name in ("emulator", "pico", "pico-x9c"):
        p = load_profile(name).bind(("R1", "R2"), ("in",), ("out",), ("out",))
        caps = p.capabilities()
        assert caps["elements"] == 2 and caps["dacs"] == 1
    assert load_profile("pico-x9c").non_idempotent == ("ELEM:CODE", "ELEM:BULK", "ELEM:PULS")
    with pytest.raises(ProfileError, match="no channel for trainable element.*R3"):
        load_profile("pico").bind(("R1", "R2", "R3"), ("in",), ("out",), ("out",))


BASE = {"board": {}, "elements": {"levels": "linear", "g_min": 1e-4, "g_max": 1e-3, "steps": 11},
        "inputs": {"bits": 12, "v_min": 0.0, "v_max": 3.3}, "measured": {"bits": 12, "v_max": 3.3}}


@pytest.mark.parametrize("change, message", [
    ({"inputs": None}, r"missing table \[inputs\]"),
    ({"measured": {"bits": 17, "v_max": 1.0}}, r"\[measured\] bits must be 1..16"),
    ({"measured": {"bits": 12, "v_min": 2.0, "v_max": 1.0}}, r"\[measured\] needs v_min < v_max"),
    ({"elements": {"levels": "cubic"}}, r"\[elements\] levels must be"),
    ({"elements": {"levels": [1e-3, -1.0]}}, r"\[elements\] levels must be 2..65536 conductances > 0"),
    ({"board": {"non_idempotent": ["ELEM:POKE"]}}, r"\[board\] non_idempotent: unknown command.*ELEM:POKE"),
    ({"board": {"timeout": "1s"}}, r"\[board\] timeout must be a number"),
    ({"nudge": {"bits": 1, "i_max": 1e-3}}, r"\[nudge\] bits must be >= 2"),
])
def test_bad_profiles_name_the_file_and_key(change, message):
    data = {**BASE, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ProfileError, match="bad.toml: " + message):
        profile_from_dict(data, "bad.toml")


def test_profile_file_errors(tmp_path):
    with pytest.raises(ProfileError, match="no such board profile.*bundled: emulator, pico, pico-x9c"):
        load_profile("nope")
    bad = tmp_path / "b.toml"
    bad.write_text("[board\n")
    with pytest.raises(ProfileError, match="b.toml"):
        load_profile(bad)


def test_conversions_against_brute_force():
    rng = np.random.default_rng(0)
    p = load_profile("pico")
    g = rng.uniform(5e-5, 2e-3, 500)
    brute = np.argmin(np.abs(p.levels[None, :] - g[:, None]), axis=1)
    assert np.array_equal(p.element_values(p.element_codes(g)), p.levels[brute])
    v = rng.uniform(0, 2.0479375, 500)
    lsb = 2.0479375 / 32767
    assert np.max(np.abs(p.adc_volts(p.adc_codes(v)) - v)) <= lsb / 2 * (1 + 1e-9)
    assert p.adc_codes(np.array([-1.0, 9.0])).tolist() == [0, 32767]      # rails
    e = load_profile("emulator").bind(("R1", "R2"), ("in",), ("out",), ("out",))
    i = rng.uniform(-0.01, 0.01, 100)
    assert np.max(np.abs(e.nudge_currents(e.nudge_codes(i)) - i)) <= 0.01 / 32767 / 2 * (1 + 1e-9)
    with pytest.raises(ProfileError, match="nudge current 0.02 A on output out"):
        e.nudge_codes(np.array([0.02]))


# -- a run interrupted by a disconnect resumes from its checkpoint ------------------------

def train(sb, ckpt: Path, steps: int):
    """Gradient descent of 1/2 (V_out - 0.25)^2 at V_in = 1 on the divider, through the
    substrate, with a checkpoint after every step (written atomically)."""
    state = json.loads(ckpt.read_text()) if ckpt.exists() else {"step": 0, "theta": [1e-3, 1e-3]}
    while state["step"] < steps:
        g = sb.set_parameters(np.array(state["theta"]))
        sb.clamp(np.array([[1.0]]))
        v = sb.equilibrium()[0, OUT]
        dv = np.array([(1.0 - v), -v]) / g.sum()             # dV/dG1, dV/dG2
        theta = np.clip(g - 1e-6 * (v - 0.25) * dv, 1e-5, 1e-2)
        state = {"step": state["step"] + 1, "theta": theta.tolist()}
        tmp = ckpt.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(ckpt)
    return np.array(state["theta"])


@pytest.mark.parametrize("replay", [False, True])
def test_training_interrupted_by_a_disconnect_resumes_with_nothing_lost(tmp_path, replay):
    """Without replay the lost port reaches the caller, which reconnects and repeats the
    step from its checkpoint; with replay the board is reopened inside the call and the
    command in flight sent again with its tag, so the caller never sees the loss."""
    steps = 25
    with BoardEmulator("divider", seed=1) as emu, SerialBoard(emu.path, DIVIDER, FAST) as sb:
        clean = train(sb, tmp_path / "clean.json", steps)
    interruptions = 0
    with BoardEmulator("divider", seed=1, faults="disconnect:0.04", reconnect_s=0.05, replay=replay) as emu:
        with SerialBoard(emu.path, DIVIDER, FAST) as sb:
            while True:
                try:
                    resumed = train(sb, tmp_path / "run.json", steps)
                    break
                except BoardDisconnectedError:
                    interruptions += 1
                    assert interruptions < 20
                    sb.reconnect(tries=8, backoff=0.05)
            reconnects = sb.client.stats["reconnects"]
        injected = emu.writer.counts["disconnect"]
    assert injected >= 1 and reconnects >= 1
    assert interruptions == (0 if replay else reconnects)
    assert np.max(np.abs(clean / 1e-3 - 1)) > 0.1          # it did train
    assert np.array_equal(resumed, clean)


def test_a_large_diode_network_over_the_wire_matches_in_process():
    from analog_ep.networks import layered_diode_network
    G = layered_diode_network(4, 3, (6,), rng=np.random.default_rng(0))
    ref = EmulatedBoard(G)
    with BoardEmulator(G, seed=0) as emu, SerialBoard(emu.path, G, FAST) as sb:
        assert sb.capabilities.measured == ref.capabilities.measured
        rng = np.random.default_rng(1)
        theta = ref.model.default_theta * rng.uniform(0.5, 1.5, len(ref.model.param_names))
        ref.set_parameters(sb.set_parameters(theta))
        u = rng.uniform(-1, 1, (4, len(ref.model.input_names)))
        sb.clamp(u)
        ref.clamp(sb.profile.dac_volts(sb.profile.dac_codes(u)))     # the voltages the DACs make
        assert np.max(np.abs(sb.equilibrium() - ref.equilibrium())) <= LSB


def test_a_lost_pulse_reply_is_never_retried_blindly_and_no_pulse_is_applied_twice():
    """Replies dropped at random (15 %): every SerialBoard.pulse still ends exactly where
    the counts lead (each applied once: the board's ELEM:PULS? count equals the commands
    sent), because after a lost reply the host asks whether it was applied."""
    prof = dataclasses.replace(FAST, max_pulse=50, retries=6)
    rng = np.random.default_rng(7)
    with BoardEmulator("divider", profile=prof, faults="drop:0", seed=5) as emu, \
            SerialBoard(emu.path, DIVIDER, prof) as sb:
        emu.writer.faults["drop"] = 0.15                 # from here on: the handshake went through
        bound = sb.profile
        codes = bound.element_codes(sb.set_parameters(bound.levels[[1000, 2000]]))
        start = int(sb.client.query("ELEM:PULS?"))
        sent = 0
        for _ in range(12):
            counts = rng.integers(-120, 121, 2)
            g = sb.pulse(counts)
            codes = np.clip(codes + counts, 0, len(bound.levels) - 1)
            sent += int(np.max(np.ceil(np.abs(counts) / 50)))
            assert np.array_equal(g, bound.levels[codes])
        assert int(sb.client.query("ELEM:PULS?")) == start + sent
        assert emu.writer.counts["drop"] > 0 and sb.client.stats["failures"] > 0


# -- a thermal training run over a faulty link equals the clean run ------------------------

def thermal_run(faults=None):
    """Three epochs of the thermal rule on xor_diode over the board emulator (noise on),
    with ``faults`` injected; the metrics and the injected fault counts."""
    with BoardEmulator("xor_diode", seed=1, faults=faults, delay_s=0.05, reconnect_s=0.05,
                       temperature=RESISTIVE_DEFAULT_TEMPERATURE) as emu:
        r = train_run(TrainConfig(dataset="xor", network="xor_diode", substrate="serial:" + emu.path,
                                  epochs=3, progress=False, quiet=True, seed=0))
        counts = dict(emu.writer.counts)
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in r.epochs], counts


@pytest.fixture(scope="module")
def clean_thermal_run():
    return thermal_run()[0]


@pytest.mark.filterwarnings("ignore::analog_ep.physics.sampling.SamplerWarning")
@pytest.mark.parametrize("faults", ["drop:0.1,corrupt:0.1,delay:0.1", "disconnect:0.05"])
def test_a_thermal_run_over_a_faulty_link_ends_exactly_as_the_clean_run(clean_thermal_run, faults):
    """With replay every command is executed once on the board, so its noise stream
    advances as in the clean run and every metric is the same number, lost replies,
    corrupt blocks, late replies and lost ports (reopened inside the command, the
    minibatch not repeated) notwithstanding."""
    metrics, counts = thermal_run(faults)
    for kind in parse_faults(faults):
        assert counts[kind] > 0, f"no {kind} fault was injected"
    assert metrics == clean_thermal_run


@pytest.mark.filterwarnings("ignore::analog_ep.physics.sampling.SamplerWarning")
def test_a_run_resumes_on_the_same_board_at_another_port_and_refuses_another_board(tmp_path):
    def run(emu, epochs, resume):
        return train_run(TrainConfig(dataset="xor", network="xor_diode", substrate="serial:" + emu.path,
                                     epochs=epochs, progress=False, quiet=True, seed=0,
                                     out=str(tmp_path), resume=resume))
    with BoardEmulator("xor_diode", seed=1) as emu:
        first_path, board = emu.path, run(emu, 1, False).config["board"]
    with BoardEmulator("xor_diode", seed=1) as emu:           # restarted: a new pty path
        assert emu.path != first_path
        emu.core.identity = "ANALOG-EP,BOARD-EMULATOR,other,1.0"
        with pytest.raises(ConfigError, match=re.escape(f"made on board {board}; this is board "
                                                        f"ANALOG-EP,BOARD-EMULATOR,other (profile emulator)")):
            run(emu, 2, True)
    with BoardEmulator("xor_diode", seed=1) as emu:
        assert emu.path != first_path
        result = run(emu, 2, True)
    assert len(result.epochs) == 2 and result.config["board"] == board
    assert board.startswith("ANALOG-EP,BOARD-EMULATOR,") and board.endswith("(profile emulator)")
