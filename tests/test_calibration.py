"""Calibration estimators on synthetic Gaussian readings drawn from known covariances, and
calibration records. Statistical tolerances are stated in standard errors."""

import datetime as dt
import json

import numpy as np
import pytest
from scipy.signal import lfilter

from analog_ep.calibration import (
    CalibrationRecord, check_samples, combine_estimates, decompose_noise,
    equipartition_temperature, fdt_temperature, fit_gain_offset, integrated_autocorrelation_time,
    load_calibration, quantisation_report, shape_test)
from analog_ep.errors import ConfigError

T = 2.5e-8


def spd(m, rng):
    A = rng.normal(size=(m, m))
    return A @ A.T + m * np.eye(m)


def ar1(phi, cov, n, rng):
    """Stationary vector AR(1) series with covariance ``cov`` and lag-1 correlation ``phi``."""
    z = rng.standard_normal((n, len(cov))) @ np.linalg.cholesky(cov).T
    rest = lfilter([np.sqrt(1 - phi**2)], [1.0, -phi], z[1:], axis=0, zi=phi * z[:1])[0]
    return np.vstack([z[:1], rest])


def test_autocorrelation_time_of_ar1_and_white_noise():
    rng = np.random.default_rng(1)
    phi = 0.8
    x = ar1(phi, np.eye(1), 200_000, rng)[:, 0]
    assert integrated_autocorrelation_time(x) == pytest.approx((1 + phi) / (1 - phi), rel=0.08)
    assert 1.0 <= integrated_autocorrelation_time(rng.standard_normal(100_000)) < 1.05


def test_equipartition_is_unbiased_and_its_stderr_is_calibrated():
    """Over 300 repeats: the mean of T_hat is T within 3 standard errors of that mean, the
    spread matches the reported stderr and the Gaussian closed form sqrt(2/(m(N-1)))."""
    rng = np.random.default_rng(2)
    m, N = 4, 2000
    G = np.linalg.inv(spd(m, rng))
    est = [equipartition_temperature(rng.multivariate_normal(np.zeros(m), T * G, size=N), G)
           for _ in range(300)]
    vals = np.array([e.value for e in est])
    assert abs(vals.mean() - T) < 3 * vals.std() / np.sqrt(len(vals))
    se = np.mean([e.stderr for e in est])
    assert vals.std() == pytest.approx(se, rel=0.12)
    assert se == pytest.approx(T * np.sqrt(2 / (m * (N - 1))), rel=0.05)
    per = np.array([e.per_node for e in est])          # each node's estimate is unbiased too
    assert np.all(np.abs(per.mean(0) - T) < 3 * per.std(0) / np.sqrt(len(per)))


def test_equipartition_stderr_counts_effective_samples_of_a_time_series():
    rng = np.random.default_rng(3)
    m, N, phi = 3, 4000, 0.9
    G = np.linalg.inv(spd(m, rng))
    est = [equipartition_temperature(ar1(phi, T * G, N, rng), G) for _ in range(120)]
    vals = np.array([e.value for e in est])
    se = np.mean([e.stderr for e in est])
    assert vals.std() == pytest.approx(se, rel=0.2)
    assert np.mean([e.n_effective for e in est]) < N / 5   # tau of x^T P x is (1+phi^2)/(1-phi^2)
    iid = T * np.sqrt(2 / (m * (N - 1)))
    assert se > 3 * iid                                 # the naive error would be far too small


def fdt_runs(G, out, delta, N, rng):
    """Readings with +-delta_j at output j (linear network: the mean moves by G e_j delta_j)."""
    z = rng.standard_normal((2 * len(out), N, len(G))) @ np.linalg.cholesky(T * G).T
    shift = (G[:, out] * delta).T
    return z[:len(out)] + shift[:, None, :], z[len(out):] - shift[:, None, :]


@pytest.mark.parametrize("with_free", [False, True])
def test_fdt_is_unbiased_and_its_stderr_is_calibrated(with_free):
    rng = np.random.default_rng(4)
    m, N, out = 4, 2000, np.array([1, 3])
    G = np.linalg.inv(spd(m, rng))
    delta = 3 * np.sqrt(T / np.diag(G)[out])              # 3 standard deviations of shift
    root = np.linalg.cholesky(T * G)
    free = (lambda: rng.standard_normal((N, m)) @ root.T) if with_free else (lambda: None)
    est = [fdt_temperature(*fdt_runs(G, out, delta, N, rng), delta, out, free=free()) for _ in range(300)]
    vals = np.array([e.value for e in est])
    assert abs(vals.mean() - T) < 3 * vals.std() / np.sqrt(len(vals))
    assert vals.std() == pytest.approx(np.mean([e.stderr for e in est]), rel=0.12)
    per = np.array([e.per_node for e in est])
    assert np.all(np.abs(per.mean(0) - T) < 3 * per.std(0) / np.sqrt(len(per)))
    assert per.std(0) == pytest.approx(np.mean([e.per_node_stderr for e in est], axis=0), rel=0.12)


def test_fdt_integral_form_is_exact_for_a_nonlinear_boltzmann_law():
    """One variable with energy E = x^2/2 + x^4/4 (units with T = 0.3): the mean response to
    +-I computed by quadrature, with the covariances at -I, 0, +I, gives T to O(I^4) with
    Simpson's rule and only O(I^2) with the trapezoid rule; the centred difference of the
    mean alone is not T times the covariance at I = 0."""
    x = np.linspace(-6, 6, 200001)
    Tq = 0.3

    def moments(current):
        w = np.exp(-(x**2 / 2 + x**4 / 4 - current * x) / Tq)
        w /= w.sum()
        mean = np.sum(w * x)
        return mean, np.sum(w * (x - mean) ** 2)

    errors = {}
    for I in (0.4, 0.2):
        (mp, cp), (_, c0), (mm, cm) = moments(I), moments(0.0), moments(-I)
        R = (mp - mm) / (2 * I)
        errors[I] = (abs((cp + 4 * c0 + cm) / 6 / R - Tq), abs((cp + cm) / 2 / R - Tq), abs(c0 / R - Tq))
    simpson, trapezoid, centre = (errors[0.4][i] / errors[0.2][i] for i in range(3))
    assert simpson == pytest.approx(16, rel=0.15)     # O(I^4)
    assert trapezoid == pytest.approx(4, rel=0.1)     # O(I^2)
    assert errors[0.4][0] < errors[0.4][1] / 10


def test_per_node_estimates_localise_excess_noise():
    rng = np.random.default_rng(5)
    m, N = 5, 20000
    G = np.linalg.inv(spd(m, rng))
    extra = np.zeros((m, m))
    extra[2, 2] = 0.3 * T * G[2, 2]
    e = equipartition_temperature(rng.multivariate_normal(np.zeros(m), T * G + extra, size=N), G)
    z = (e.per_node - T) / e.per_node_stderr
    assert z[2] > 10
    assert np.all(np.abs(np.delete(z, 2)) < 3)


def test_shape_test_accepts_T_G_and_rejects_diagonal_noise():
    rng = np.random.default_rng(6)
    m, N = 4, 5000
    G = np.linalg.inv(spd(m, rng))
    good = rng.multivariate_normal(np.zeros(m), T * G, size=N)
    bad = rng.multivariate_normal(np.zeros(m), T * np.diag(np.diag(G)), size=N)
    assert shape_test(good, G)[2] > 1e-3
    assert shape_test(bad, G)[2] < 1e-12
    ps = [shape_test(rng.multivariate_normal(np.zeros(m), T * G, size=400), G)[2] for _ in range(200)]
    assert 0.02 < np.mean(np.array(ps) < 0.1) < 0.18    # p-values are calibrated (10% level)


def test_decomposition_recovers_exact_mixtures():
    """Fed exact covariances, the ML split returns the coefficients that built them."""
    rng = np.random.default_rng(7)
    m = 3
    G1, G2 = np.linalg.inv(spd(m, rng)), np.linalg.inv(spd(m, rng))
    cap = np.array([1e-9, 2e-9, 4e-9])
    a, b, c = 3e-8, 2e-15, 1e-6
    S = [a * G + b * np.diag(1 / cap) + c * np.eye(m) for G in (G1, G2)]
    out = decompose_noise(S, [G1, G2], [1e4, 1e4], cap)
    assert out["coefficients"]["boltzmann"] == pytest.approx(a, rel=1e-6)
    assert out["coefficients"]["johnson"] == pytest.approx(b, rel=1e-6)
    assert out["coefficients"]["uncorrelated"] == pytest.approx(c, rel=1e-6)
    assert sum(out["fractions"].values()) == pytest.approx(1.0)
    pure = decompose_noise([a * G1, a * G2], [G1, G2], [1e4, 1e4])
    assert pure["fractions"]["boltzmann"] == pytest.approx(1.0)
    one = decompose_noise([np.array([[a]])], [np.array([[1.0]])], [1e4])   # one node, one setting
    assert one["fractions"] is None


def test_quantisation_bias_matches_sheppard():
    """Readings rounded to a step of half a standard deviation overestimate T by the
    predicted D^2 tr(P) / (12 m T)."""
    rng = np.random.default_rng(8)
    m, N = 3, 200_000
    G = np.linalg.inv(spd(m, rng))
    step = 0.5 * np.sqrt(T * np.diag(G)).min()
    X = rng.multivariate_normal(np.zeros(m), T * G, size=N)
    e = equipartition_temperature(np.round(X / step) * step, G)
    q = quantisation_report(np.var(X, axis=0), step, np.linalg.inv(G), T)
    assert abs(e.value / T - 1 - q["relative_bias"]) < 3 * e.stderr / T
    assert q["relative_bias"] > 5 * e.stderr / T           # the test can see the bias
    assert "ADC step" in q["warning"]
    assert quantisation_report(np.var(X, axis=0), step / 100, np.linalg.inv(G), T)["warning"] is None


def test_gain_offset_fit_recovers_channels_and_inverts_readings():
    rng = np.random.default_rng(9)
    K, N, k = 7, 50, 3
    known = np.linspace(-1, 1, K)
    a, b, noise = np.array([0.98, 1.03, 1.0]), np.array([0.01, -0.02, 0.0]), 1e-3
    reps = []
    for _ in range(100):
        y = known[:, None, None] * a + b + noise * rng.standard_normal((K, N, k))
        reps.append(fit_gain_offset(known, y, ["a", "b", "c"]))
    gains = np.array([r.gain for r in reps])
    offsets = np.array([r.offset for r in reps])
    assert np.all(np.abs(gains.mean(0) - 1 / a) < 3 * gains.std(0) / 10)
    assert np.all(np.abs(offsets.mean(0) + b / a) < 3 * offsets.std(0) / 10)
    assert gains.std(0) == pytest.approx(np.mean([r.gain_stderr for r in reps], 0), rel=0.2)
    assert offsets.std(0) == pytest.approx(np.mean([r.offset_stderr for r in reps], 0), rel=0.2)
    assert reps[0].residual_rms == pytest.approx(np.full(k, noise), rel=0.1)
    assert reps[0].apply(0.5 * a + b) == pytest.approx(np.full(k, 0.5), abs=1e-3)
    assert set(reps[0].to_dict()["a"]) >= {"gain", "offset", "gain_stderr", "offset_stderr"}
    with pytest.raises(ConfigError, match="two distinct known voltages"):
        fit_gain_offset(np.ones(5), np.ones((5, 2)))


def test_combine_estimates():
    mean, se, chi2, dof, p = combine_estimates([1.0, 3.0], [1.0, 1.0])
    assert (mean, se, chi2, dof) == pytest.approx((2.0, np.sqrt(0.5), 2.0, 1))
    assert p == pytest.approx(0.1573, abs=1e-4)


def test_too_few_samples_says_how_many_are_needed():
    with pytest.raises(ConfigError, match="at least 100"):
        check_samples(20, 3, None)
    with pytest.raises(ConfigError, match=r"1\.0% needs at least 6668 readings"):
        check_samples(1000, 3, 0.01)
    check_samples(6668, 3, 0.01)
    with pytest.raises(ConfigError, match="cannot give a covariance"):
        equipartition_temperature(np.zeros((3, 3)), np.eye(3))


# ----- records ---------------------------------------------------------------------------

def record_data(**changes):
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    data = {
        "schema": "analog-ep/calibration", "version": 1,
        "board": {"idn": "ANALOG-EP,BOARD-EMULATOR,divider,1.0", "id": "ANALOG-EP,BOARD-EMULATOR,divider"},
        "profile": "emulator", "created": now.isoformat(),
        "expires": (now + dt.timedelta(days=30)).isoformat(), "method": "both",
        "temperature": {"value": 4e-7, "stderr": 4e-9, "units": "W"},
        "per_node": {"out": {"value": 4.1e-7, "stderr": 8e-9}},
        "adc": {"out": {"gain": 1.0, "offset": 0.0}},
        "consistency": {"verdict": "boltzmann", "message": "fine", "statistic": 1.0},
        "command": "analog-ep calibrate --substrate serial:/dev/ttyX",
    }
    data.update(changes)
    return data


def write(tmp_path, data, name="cal.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_record_round_trip_and_checks(tmp_path):
    p = write(tmp_path, record_data())
    when = dt.datetime(2026, 1, 15, tzinfo=dt.timezone.utc)
    rec = load_calibration(p, board_id="ANALOG-EP,BOARD-EMULATOR,divider,1.1", profile="emulator",
                           units="W", now=when)
    assert (rec.temperature, rec.stderr, rec.units) == (4e-7, 4e-9, "W")
    saved = rec.save(tmp_path / "again.json")
    assert load_calibration(saved, now=when).data == rec.data
    with pytest.raises(ConfigError, match="is for board 'ANALOG-EP,BOARD-EMULATOR,divider', not 'ACME,X,7'"):
        load_calibration(p, board_id="ACME,X,7,2.0", now=when)
    with pytest.raises(ConfigError, match="profile 'emulator', not 'pico'"):
        load_calibration(p, profile="pico", now=when)
    with pytest.raises(ConfigError, match="expired on 2026-01-31.*stale"):
        load_calibration(p, now=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc))
    with pytest.raises(ConfigError, match="in W, this network needs rad"):
        load_calibration(p, units="rad", now=when)


def test_the_serial_driver_reads_the_adc_table_of_a_record(tmp_path):
    from analog_ep.substrates.serial import load_adc_calibration
    p = write(tmp_path, record_data(adc={"out": {"gain": 1.01, "offset": -0.002, "gain_stderr": 1e-4}}))
    assert load_adc_calibration(p) == {"out": (1.01, -0.002)}


@pytest.mark.parametrize("change, message", [
    ({"temperature": 4e-7}, r"'temperature' must be \{"),
    ({"temperature": {"value": -1.0, "stderr": 0.0, "units": "W"}}, "'temperature.value' must be a positive"),
    ({"temperature": {"value": 1.0, "stderr": 0.0}}, "'temperature.units'"),
    ({"schema": "other"}, "'schema' must be"),
    ({"version": 2}, "'version' must be 1"),
    ({"board": {"idn": "x"}}, "'board' must be"),
    ({"created": "yesterday"}, "'created' must be an ISO 8601"),
    ({"method": "guess"}, "'method' must be one of"),
    ({"per_node": {"out": 3.0}}, "'per_node'"),
    ({"consistency": {}}, "'consistency'"),
    ({"command": None}, "'command'"),
])
def test_invalid_records_are_refused_naming_the_field(tmp_path, change, message):
    p = write(tmp_path, record_data(**change))
    with pytest.raises(ConfigError, match=message) as exc:
        load_calibration(p)
    assert str(p) in str(exc.value)


def test_unreadable_records(tmp_path):
    with pytest.raises(ConfigError, match="cannot read calibration record"):
        load_calibration(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_calibration(bad)
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        CalibrationRecord.from_dict([1, 2], "list.json")
