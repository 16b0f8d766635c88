"""Devices: each response family against its closed form (docs/devices.md), the statistics
of the noise, spread, drift and faults, fabrication from a seed, the device-file reader and
the ``analog-ep device`` command."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from analog_ep.devices import (FixedSpread, device_from_dict, device_presets, fabricate,
                               fabricate_fixed, load_device, up_down_train, without_noise)
from analog_ep.errors import DeviceError
from cli_helpers import assert_one_line_error, run_cli

# Closed forms and the code differ only by rounding: at most ~(N + M) float64 operations of
# relative error 1.1e-16 on values of order g_max, far below the 1e-9 asked for.
RTOL = 1e-9

G_MIN, G_MAX, DG = 1e-5, 1e-4, 2e-7
DELTA = G_MAX - G_MIN


def spec(family, **extra):
    tables = {k: extra.pop(k) for k in ("spread", "drift", "faults", "linear-step", "exp-step", "counter")
              if k in extra}
    base = {} if family == "counter" else {"g_min": G_MIN, "g_max": G_MAX, "dg_min": DG}
    return device_from_dict({"family": family, **base, **extra, **tables}, "test.toml")


def trajectory(s, up, down, n=1, seed=0):
    return up_down_train(fabricate(s, n, seed), up, down)[:, 0]


def chi2_interval(n, p=1e-3):
    """Bounds on s^2/sigma^2 of n normal draws that hold with probability 1 - p."""
    return stats.chi2.ppf(p / 2, n - 1) / (n - 1), stats.chi2.ppf(1 - p / 2, n - 1) / (n - 1)


def assert_std(samples, sigma):
    lo, hi = chi2_interval(len(samples))
    ratio = np.var(samples, ddof=1) / sigma ** 2
    assert lo < ratio < hi, (ratio, lo, hi)


# ----- closed forms ------------------------------------------------------------------------------

def test_constant_step_is_linear_then_clips():
    alpha, up, down = 0.2, 300, 700
    s = spec("constant-step", asymmetry=alpha, initial=0.3)
    g = trajectory(s, up, down)
    g0 = G_MIN + 0.3 * DELTA
    n = np.arange(up + 1)
    expect_up = np.minimum(g0 + n * DG * (1 + alpha), G_MAX)
    m = np.arange(1, down + 1)
    expect_down = np.maximum(expect_up[-1] - m * DG * (1 - alpha), G_MIN)
    np.testing.assert_allclose(g, np.concatenate([expect_up, expect_down]), rtol=RTOL, atol=0)
    assert g.max() == G_MAX and g.min() == G_MIN      # both bounds reached and held


def test_ideal_steps_are_exact():
    s = spec("ideal", initial=0.5)
    g = trajectory(s, 10, 25)
    g0 = G_MIN + 0.5 * DELTA
    expect = np.concatenate([g0 + np.arange(11) * DG, g0 + 10 * DG - np.arange(1, 26) * DG])
    np.testing.assert_allclose(g, expect, rtol=RTOL, atol=0)


def test_soft_bounds_approach_each_bound_geometrically():
    alpha, up, down = -0.25, 2000, 3000
    s = spec("soft-bounds", asymmetry=alpha, initial=0.375)
    g = trajectory(s, up, down)
    g0 = G_MIN + 0.375 * DELTA
    a, b = DG * (1 + alpha) / DELTA, DG * (1 - alpha) / DELTA
    expect_up = G_MAX - (G_MAX - g0) * (1 - a) ** np.arange(up + 1)
    expect_down = G_MIN + (expect_up[-1] - G_MIN) * (1 - b) ** np.arange(1, down + 1)
    np.testing.assert_allclose(g, np.concatenate([expect_up, expect_down]), rtol=RTOL, atol=0)
    assert G_MIN < g.min() and g.max() < G_MAX       # soft bounds are never reached


@pytest.mark.parametrize("gamma_up, gamma_down, r", [(0.3, 0.6, 0.4), (0.0, 0.0, 0.5), (1.0, 1.0, 0.25)])
def test_linear_step_relaxes_to_its_fixed_point(gamma_up, gamma_down, r):
    alpha, up, down = 0.1, 900, 1400
    s = spec("linear-step", asymmetry=alpha, initial=0.2,
             **{"linear-step": {"gamma_up": gamma_up, "gamma_down": gamma_down, "reference": r}})
    g = trajectory(s, up, down)
    g0, gr = G_MIN + 0.2 * DELTA, G_MIN + r * DELTA
    c_up, c_down = DG * (1 + alpha), DG * (1 - alpha)
    L, Ld = G_MAX - gr, gr - G_MIN
    n, m = np.arange(up + 1), np.arange(1, down + 1)
    if gamma_up:
        k, g_star = c_up * gamma_up / L, gr + L / gamma_up
        expect_up = g_star - (g_star - g0) * (1 - k) ** n
    else:
        expect_up = g0 + n * c_up
    expect_up = np.minimum(expect_up, G_MAX)
    # the clip at g_max holds the state there: once reached, later up steps are 0 or clipped
    expect_up = np.where(np.maximum.accumulate(expect_up >= G_MAX), G_MAX, expect_up)
    top = expect_up[-1]
    if gamma_down:
        kd, g_low = c_down * gamma_down / Ld, gr - Ld / gamma_down
        expect_down = g_low + (top - g_low) * (1 - kd) ** m
    else:
        expect_down = top - m * c_down
    expect_down = np.maximum(expect_down, G_MIN)
    np.testing.assert_allclose(g, np.concatenate([expect_up, expect_down]), rtol=RTOL, atol=0)


def test_exp_step_follows_its_map():
    shape = {"a": -0.5, "b": -0.5, "gamma_up": 5.0, "gamma_down": 5.0, "A_up": -1.18445,
             "A_down": -0.081404, "reference": 0.5}
    alpha, up, down = 0.259359, 600, 900
    s = spec("exp-step", asymmetry=alpha, initial=0.5, **{"exp-step": shape})
    g = trajectory(s, up, down)
    # the map of docs/devices.md, one scalar pulse at a time
    value, expect = G_MIN + 0.5 * DELTA, [G_MIN + 0.5 * DELTA]
    for d in [1] * up + [-1] * down:
        z = 2 * shape["a"] * ((value - G_MIN) / DELTA - shape["reference"]) + shape["b"]
        if d > 0:
            step = DG * (1 + alpha) * max(1 - shape["A_up"] * math.exp(shape["gamma_up"] * z), 0.0)
        else:
            step = DG * (1 - alpha) * max(1 - shape["A_down"] * math.exp(-shape["gamma_down"] * z), 0.0)
        value = min(max(value + d * step, G_MIN), G_MAX)
        expect.append(value)
    np.testing.assert_allclose(g, expect, rtol=RTOL, atol=0)


def test_counter_steps_one_tap_and_stops_at_its_ends():
    counter = {"taps": 100, "r_total": 1e4, "r_wiper": 40.0, "r_series": 1000.0}
    s = spec("counter", initial=0.5, counter=counter)
    g = trajectory(s, 80, 150)
    k0 = round(0.5 * 99)
    taps = np.concatenate([np.minimum(k0 + np.arange(81), 99), np.maximum(99 - np.arange(1, 151), 0)])
    expect = 1 / (1040.0 + 1e4 * (1 - taps / 99))
    np.testing.assert_allclose(g, expect, rtol=RTOL, atol=0)
    assert s.states == 100 and math.isclose(s.g_max, 1 / 1040) and math.isclose(s.g_min, 1 / 11040)


# ----- statistics --------------------------------------------------------------------------------

N = 4000


@pytest.mark.parametrize("kind", ["multiplicative", "additive"])
def test_write_noise_has_its_standard_deviation(kind):
    sigma, alpha = 0.3, 0.1
    s = spec("constant-step", asymmetry=alpha, initial=0.5, write_noise=sigma, write_noise_kind=kind)
    a = fabricate(s, N, seed=3)
    g0 = a.conductance.copy()
    step = a.pulse(np.ones(N, dtype=int)) - g0
    c_up = DG * (1 + alpha)
    # multiplicative: step = c_up (1 + sigma xi); additive: step = c_up + sigma dg xi
    xi = (step / c_up - 1) / sigma if kind == "multiplicative" else (step - c_up) / (sigma * DG)
    assert abs(xi.mean()) < 4 / math.sqrt(N)          # 4 standard errors
    assert_std(xi, 1.0)


def test_fabrication_spread_has_its_standard_deviation():
    spread = {"dg_min": 0.1, "g_min": 0.05, "g_max": 0.08, "asymmetry": 0.02}
    a = fabricate(spec("constant-step", asymmetry=0.1, spread=spread), N, seed=4)
    # the truncation at physical values removes draws 10 sigma or more away: nothing here
    assert_std(a.dg / DG - 1, spread["dg_min"])
    assert_std(a.g_min / G_MIN - 1, spread["g_min"])
    assert_std(a.g_max / G_MAX - 1, spread["g_max"])
    assert_std(a.alpha - 0.1, spread["asymmetry"])
    for values, mean, std in [(a.dg, DG, 0.1 * DG), (a.g_max, G_MAX, 0.08 * G_MAX)]:
        assert abs(values.mean() - mean) < 4 * std / math.sqrt(N)


def test_read_and_update_noise_have_their_standard_deviations():
    a = fabricate(spec("constant-step", initial=0.5, read_noise=0.01, update_noise=0.02), N, seed=5)
    g = a.conductance.copy()
    assert_std(a.read() - g, 0.01 * DELTA)
    np.testing.assert_array_equal(a.conductance, g)           # reading leaves the state alone
    shown = a.pulse(np.ones(N, dtype=int))
    assert_std(shown - (g + DG), 0.02 * DELTA)


def test_drift_follows_its_power_law():
    s = spec("constant-step", initial=0.8, drift={"nu": 0.06, "nu_spread": 0.2, "t0": 20.0})
    a = fabricate(s, N, seed=6)
    g = a.pulse(np.ones(N, dtype=int)).copy()
    a.advance(10.0)                                           # younger than t0: no drift yet
    np.testing.assert_array_equal(a.conductance, g)
    for t in (20.0, 200.0, 2e4):
        a.advance(t - a.time)
        np.testing.assert_allclose(a.conductance, g * (t / 20.0) ** -a.nu, rtol=1e-12)
    assert_std(a.nu / 0.06 - 1, 0.2)
    assert abs(a.nu.mean() - 0.06) < 4 * 0.2 * 0.06 / math.sqrt(N)
    # a pulse writes: the drifted state is where it starts, and the clock restarts
    drifted = a.conductance.copy()
    np.testing.assert_allclose(a.pulse(np.ones(N, dtype=int)), drifted + DG, rtol=1e-12)


@pytest.mark.parametrize("stuck_at", ["g_min", "g_max", "random"])
def test_stuck_devices_never_move(stuck_at):
    p = 0.1
    s = spec("soft-bounds", initial=0.5, write_noise=0.5, drift={"nu": 0.1},
             faults={"stuck": p, "stuck_at": stuck_at})
    a = fabricate(s, N, seed=7)
    k = a.stuck.sum()
    assert abs(k - p * N) < 4 * math.sqrt(N * p * (1 - p))   # 4 standard errors of a binomial
    g0 = a.conductance[a.stuck].copy()
    if stuck_at != "random":
        np.testing.assert_array_equal(g0, (a.g_min if stuck_at == "g_min" else a.g_max)[a.stuck])
    else:
        assert np.all((a.g_min[a.stuck] <= g0) & (g0 <= a.g_max[a.stuck]))
    rng = np.random.default_rng(0)
    for _ in range(20):
        a.pulse(rng.integers(-30, 31, N))
        a.advance(100.0)
        np.testing.assert_array_equal(a.conductance[a.stuck], g0)
    assert not np.allclose(a.conductance[~a.stuck], 0.5 * (a.g_min + a.g_max)[~a.stuck])


def test_counter_never_leaves_its_taps():
    s = load_device("x9c103")
    a = fabricate(s, 500, seed=8)
    rng = np.random.default_rng(1)
    for _ in range(50):
        g = a.pulse(rng.integers(-60, 61, a.n))
        assert np.all((0 <= a.tap) & (a.tap <= 99)) and a.tap.dtype.kind == "i"
        np.testing.assert_allclose(g, 1 / (1040.0 + a.r_total * (1 - a.tap / 99)), rtol=1e-15)
    assert np.all(np.abs(a.r_total / 1e4 - 1) <= 0.2)
    assert_std_uniform(a.r_total / 1e4 - 1, 0.2)


def assert_std_uniform(u, t):
    """Uniform on [-t, t]: variance t^2/3; the sample variance's standard error for n draws
    is sqrt(4/45) t^2 / sqrt(n) (fourth central moment t^4/5); 4 standard errors."""
    assert abs(np.var(u, ddof=1) - t * t / 3) < 4 * math.sqrt(4 / 45) * t * t / math.sqrt(len(u))


def test_fixed_parts_spread():
    rng = np.random.default_rng(9)
    spread = FixedSpread(resistor_tolerance=0.05, diode_i_s_spread=0.3, diode_n_spread=0.02)
    g, i_s, n = fabricate_fixed(spread, np.full(N, 1e-3), np.full(N, 1e-9), np.full(N, 1.8), rng)
    r = 1 / g / 1e3 - 1
    assert np.all(np.abs(r) <= 0.05)
    assert_std_uniform(r, 0.05)
    assert_std(np.log(i_s / 1e-9), 0.3)
    assert_std(n / 1.8 - 1, 0.02)


def test_fabrication_is_reproducible_from_its_seed():
    s = load_device("reram-softbounds")
    a, b, c = fabricate(s, 50, seed=11), fabricate(s, 50, seed=11), fabricate(s, 50, seed=12)
    for name in ("dg", "g_min", "g_max", "alpha", "nu", "stuck"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.dg, c.dg)
    np.testing.assert_array_equal(up_down_train(a, 20, 10), up_down_train(b, 20, 10))
    # the fabrication does not depend on the noise being switched on
    np.testing.assert_array_equal(fabricate(without_noise(s), 50, seed=11).g_max, a.g_max)


def test_pulse_counts_must_be_integers_one_per_device():
    a = fabricate(load_device("ideal"), 3)
    with pytest.raises(DeviceError, match="3 integers"):
        a.pulse([1, 2])
    with pytest.raises(DeviceError, match="3 integers"):
        a.pulse([0.5, 1, 1])
    with pytest.raises(DeviceError, match="forward"):
        a.advance(-1.0)


# ----- device files ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", device_presets())
def test_every_preset_loads_and_names_its_source(name):
    s = load_device(name)
    assert s.name == name and s.family in ("ideal", "soft-bounds", "exp-step", "linear-step", "counter")
    assert s.states >= 100 and (s.references or name == "ideal")
    trace = up_down_train(fabricate(s, 4, seed=0), 50, 50)
    assert np.all(np.isfinite(trace)) and np.all(trace > 0)


def test_preset_numbers():
    assert load_device("x9c103").states == 100 and load_device("mcp4551").states == 257
    sb = load_device("reram-softbounds")
    # aihwkit's up and down steps at w = 0 (x = 0.375): dw_min (g_max - g_min)/2 = 9e-8 S
    assert math.isclose(sb.dg_min * (1 + sb.asymmetry) * (1 - 0.375), 9e-8, rel_tol=1e-3)
    assert math.isclose(sb.dg_min * (1 - sb.asymmetry) * 0.375, 9e-8, rel_tol=1e-3)


def write(tmp_path, text, name="dev.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = 'family = "soft-bounds"\ng_min = 1e-5\ng_max = 1e-4\ndg_min = 2e-7\n'


@pytest.mark.parametrize("text, fragments", [
    (GOOD + "colour = 3\n", ["colour", "unknown key"]),
    (GOOD.replace("dg_min = 2e-7", "dg_min = -2e-7"), ["dg_min", "outside"]),
    (GOOD.replace("g_min = 1e-5", "g_min = 2e-4"), ["g_min", "below g_max"]),
    (GOOD + "[spread]\ng_max = 1.0\n", ["spread.g_max", "outside [0, 1)"]),
    (GOOD + "[spread]\ndg_min = -0.1\n", ["spread.dg_min", "outside [0, 1)"]),
    (GOOD + "[spread]\nsize = 0.1\n", ["spread.size", "unknown key"]),
    (GOOD + "[exp-step]\na = 1\n", ["exp-step", "does not apply"]),
    (GOOD + "[drift]\nnu_spread = 1.5\n", ["drift.nu_spread", "outside"]),
    (GOOD + "[faults]\nstuck_at = \"middle\"\n", ["faults.stuck_at", "g_min, g_max, random"]),
    (GOOD.replace("soft-bounds", "memristor"), ["family", "expected one of"]),
    (GOOD.replace("dg_min = 2e-7\n", ""), ["dg_min", "required"]),
    ('family = "counter"\ng_min = 1e-5\n', ["g_min", "does not apply to a counter"]),
    ('family = "ideal"\ng_min = 1e-5\ng_max = 1e-4\nwrite_noise = 0.1\n', ["write_noise", "exact"]),
    (GOOD + "asymmetry = 1.0\n", ["asymmetry", "outside"]),
    ("family = ", ["dev.toml"]),
])
def test_bad_device_files_are_refused_naming_file_and_key(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(DeviceError) as info:
        load_device(path)
    message = str(info.value)
    assert str(path) in message
    for f in fragments:
        assert f in message, (f, message)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(DeviceError) as info:
        load_device("flash")
    assert "flash" in str(info.value)
    for name in device_presets():
        assert name in str(info.value)


def test_states_instead_of_dg_min(tmp_path):
    s = load_device(write(tmp_path, GOOD.replace("dg_min = 2e-7", "states = 451")))
    assert s.states == 451 and math.isclose(s.dg_min, 9e-5 / 450)


# ----- the command -------------------------------------------------------------------------------

def test_cli_response_matches_the_closed_form(capsys, tmp_path):
    path = write(tmp_path, GOOD + "initial = 0.5\nwrite_noise = 0.4\n")
    status, out, err = run_cli(capsys, "device", "response", str(path), "--up", "40", "--down", "60",
                               "--no-noise", "--format", "json")
    assert status == 0, err
    g = np.array(json.loads(out)["g"])
    g0, a = G_MIN + 0.5 * DELTA, DG / DELTA
    expect_up = G_MAX - (G_MAX - g0) * (1 - a) ** np.arange(41)
    expect = np.concatenate([expect_up, G_MIN + (expect_up[-1] - G_MIN) * (1 - a) ** np.arange(1, 61)])
    assert len(g) == 101
    np.testing.assert_allclose(g, expect, rtol=RTOL, atol=0)


def test_cli_response_of_a_preset_is_one_device_of_its_fabrication(capsys):
    status, out, err = run_cli(capsys, "device", "response", "reram-softbounds", "--up", "30", "--down", "20",
                               "--no-noise", "--seed", "5", "--format", "json")
    assert status == 0, err
    g = np.array(json.loads(out)["g"])
    d = fabricate(load_device("reram-softbounds"), 1, seed=5)
    lo, hi, dg, alpha = d.g_min[0], d.g_max[0], d.dg[0], d.alpha[0]
    a, b = dg * (1 + alpha) / (hi - lo), dg * (1 - alpha) / (hi - lo)
    g0 = lo + 0.375 * (hi - lo)
    up = hi - (hi - g0) * (1 - a) ** np.arange(31)
    np.testing.assert_allclose(g, np.concatenate([up, lo + (up[-1] - lo) * (1 - b) ** np.arange(1, 21)]),
                               rtol=RTOL, atol=0)
    # with noise the same device moves differently
    status, out, _ = run_cli(capsys, "device", "response", "reram-softbounds", "--up", "30", "--down", "20",
                             "--seed", "5", "--format", "json")
    assert not np.allclose(json.loads(out)["g"], g)


def test_cli_show_prints_parameters_and_writes_the_picture(capsys, tmp_path):
    out_png = tmp_path / "r.png"
    status, out, err = run_cli(capsys, "device", "show", "ecram", "--out", str(out_png), "--pulses", "200",
                               "--devices", "3", "--format", "json")
    assert status == 0, err
    data = json.loads(out)
    assert data["family"] == "linear-step" and data["states"] == 1001 and data["picture"] == str(out_png)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    status, out, err = run_cli(capsys, "device", "show", "x9c103", "--out", str(out_png))
    assert status == 0 and "states: 100" in out and "r_wiper: 40" in out
    status, out, err = run_cli(capsys, "device", "list")
    assert status == 0 and all(n in out for n in device_presets())


def test_cli_refuses_unknown_presets_and_negative_counts(capsys):
    status, _, err = run_cli(capsys, "device", "response", "flash", "--up", "3")
    assert_one_line_error(status, err, "flash", "x9c103")
    status, _, err = run_cli(capsys, "device", "response", "ideal", "--up", "-3")
    assert_one_line_error(status, err, "--up", "integer >= 0")
