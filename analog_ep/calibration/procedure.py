"""The calibration procedure: drives a substrate through ADC loopback, free and nudged
readings at several conductance settings, and writes a record with both temperature
estimates and the Boltzmann verdict."""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import special

from ..errors import ConfigError
from ..hardware.profile import profile_reference
from ..physics.equilibrium import solve_equilibrium
from ..physics.noise import node_capacitances
from .adc import ChannelCalibration, fit_gain_offset
from .estimators import equipartition_temperature, fdt_temperature, precision_matrix, samples_needed
from .record import (EMULATOR_IDN, METHODS, SCHEMA, SCHEMA_VERSION, TEMPERATURE_UNITS, CalibrationRecord,
                     board_identity, json_default, substrate_identity)
from .statistics import combine_estimates
from .verdict import TOLERANCE, decompose_noise, judge, quantisation_report, shape_test

#: Fewest readings per run: the autocorrelation time and the covariance need this many.
MIN_SAMPLES = 100

#: fdt nudges move each output's mean by this many reading standard deviations: larger ones
#: bias T on nonlinear (diode) networks through the O(delta^4) term of the covariance
#: integral (+2% at 3 sigma on xor_diode), smaller ones through the noise in the response
#: (-1.5% at 1 sigma); 2 sigma keeps both below 0.5% at a few thousand readings.
NUDGE_SIGMAS = 2.0


def _profile_file(substrate) -> str | None:
    """A serial board's profile as a bundled name or file path (None in process)."""
    prof = getattr(substrate, "profile", None)
    if getattr(substrate, "client", None) is None or prof is None:
        return None
    return profile_reference(prof)


def _adc_step(substrate) -> float | None:
    """One ADC step (V) of a substrate, from its profile or its noise model; None if exact."""
    prof = getattr(substrate, "profile", None)
    if prof is not None and getattr(prof, "measured", None) is not None:
        ch = prof.measured
        return (ch.hi - ch.lo) / ch.full_scale
    noise = getattr(substrate, "noise", None)
    if noise is not None and noise.adc_bits is not None:
        lo, hi = noise.adc_range
        return (hi - lo) / (2 ** noise.adc_bits - 1)
    return None


def _capacitance(substrate, model, nodes: Sequence[str]) -> np.ndarray | None:
    """Node capacitances (F) of the measured free nodes, or None when unknown."""
    noise = getattr(substrate, "noise", None)
    free = list(model.free_names)
    idx = [free.index(n) for n in nodes]
    if noise is not None:
        return node_capacitances(model, noise)[idx]
    prof = getattr(substrate, "profile", None)
    table = getattr(prof, "capacitance", None) or {}
    c = np.array([table.get(n, model.capacitance[model.free[i]]) for n, i in zip(nodes, idx)], float)
    return c if np.all(np.isfinite(c) & (c > 0)) else None


def _applied_currents(substrate, currents: np.ndarray) -> np.ndarray:
    """The currents a board with quantised nudge sources actually applies."""
    prof = getattr(substrate, "profile", None)
    if prof is not None and getattr(prof, "nudge", None) is not None:
        return prof.nudge_currents(prof.nudge_codes(currents))
    return currents


def _max_current(substrate) -> float:
    prof = getattr(substrate, "profile", None)
    return prof.nudge.hi if prof is not None and getattr(prof, "nudge", None) is not None else math.inf


def _settings(model, theta: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` conductance settings: ``theta``, then every trainable conductance scaled by
    2, 1/2, 4, 1/4, ... (clipped into the bounds; scales the clipping makes useless skipped)."""
    out = [theta]
    if len(theta) == 0 or count < 2:
        return out
    lo, hi = model.theta_bounds()
    for k in range(1, 8):
        for f in (2.0**k, 0.5**k):
            cand = np.clip(theta * f, lo, hi)
            if all(np.max(np.abs(cand / o - 1)) > 0.1 for o in out):
                out.append(cand)
            if len(out) == count:
                return out
    return out


@dataclass(frozen=True)
class _Setting:
    theta: np.ndarray
    free: np.ndarray            # (N, m) readings of the measured free nodes
    shape: np.ndarray           # G = (H^-1)_MM
    estimates: dict


def _shape_of(model, theta: np.ndarray, u: np.ndarray, cols: np.ndarray) -> np.ndarray:
    s = solve_equilibrium(model, theta, u).s
    Hinv = np.linalg.inv(model.hessian(theta, u, s)[0])
    return Hinv[np.ix_(cols, cols)]


def _pilot_currents(substrate, free: np.ndarray, out: np.ndarray, read_cols: np.ndarray,
                    nudge_sigmas: float, names: Sequence[str]) -> np.ndarray:
    """Nudge currents (A) that move each output's mean by ``nudge_sigmas`` reading standard
    deviations: probe each output with a growing current until its response is five
    standard errors clear, then scale (``R_jj = shift / current``); model-free."""
    i_max = _max_current(substrate)
    n_pilot = max(MIN_SAMPLES, len(free) // 10)
    sigma = free[:, out].std(axis=0, ddof=1)
    base = free[:, out].mean(axis=0)
    n_out = len(out)
    deltas = np.empty(n_out)
    for j in range(n_out):
        probe = min(1e-6, i_max / 100)
        while True:
            cur = np.zeros(n_out)
            cur[j] = probe
            probe = float(_applied_currents(substrate, cur)[j])
            substrate.nudge_currents(cur)
            shift = substrate.sample(n_pilot)[0][:, read_cols[out[j]]].mean() - base[j]
            se = sigma[j] * math.sqrt(1.0 / n_pilot + 1.0 / len(free))
            if abs(shift) > 5 * se:
                break
            if probe >= i_max:
                raise ConfigError(f"fdt: no response at output {names[out[j]]} up to the largest "
                                  f"nudge current {i_max:g} A; check the nudge source")
            probe = min(probe * 10, i_max)
        if shift <= 0:
            raise ConfigError(f"fdt: output {names[out[j]]} moved by {shift:.3g} V for {probe:.3g} A "
                              "injected; a passive network must move up (check the current's sign)")
        deltas[j] = min(nudge_sigmas * sigma[j] * probe / shift, i_max)
    substrate.nudge_currents(np.zeros(n_out))
    return deltas


def _fdt_runs(substrate, deltas: np.ndarray, n: int, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Readings with ``+-deltas[j]`` at output ``j`` alone: (k, n, m) each, and the currents applied."""
    k = len(deltas)
    applied = np.empty(k)
    runs = {}
    for sign in (1.0, -1.0):
        for j in range(k):
            cur = np.zeros(k)
            cur[j] = sign * deltas[j]
            cur = _applied_currents(substrate, cur)
            applied[j] = abs(cur[j])
            substrate.nudge_currents(cur)
            runs[sign, j] = substrate.sample(n)[0][:, cols]
    substrate.nudge_currents(np.zeros(k))
    return (np.stack([runs[1.0, j] for j in range(k)]), np.stack([runs[-1.0, j] for j in range(k)]), applied)


def adc_loopback(substrate, model, *, points: int = 7, samples: int = 200,
                 theta: np.ndarray | None = None, span: tuple[float, float] | None = None) -> ChannelCalibration:
    """Gain and offset of every measured channel from known voltages.

    Sweeps all inputs together over ``points`` voltages in ``span`` (V; default +-1 V, or
    the DAC range when narrower), takes the mean of ``samples`` readings at each, and fits
    the readings against the voltages the network must show there (inputs as clamped, free
    nodes from the equilibrium of the known conductances, ground and bias as fixed) with
    :func:`fit_gain_offset`. Channels whose true voltage does not move with the inputs
    (ground, bias) get only an offset, with gain 1. Run it on a board opened without an
    ADC calibration: the fit is relative to the readings it is given.
    """
    if points < 3:
        raise ConfigError(f"ADC loopback needs at least 3 points, got {points}")
    if len(model.input_names) == 0:
        raise ConfigError("ADC loopback sweeps the inputs, and this network has none")
    lo, hi = span or (-1.0, 1.0)
    prof = getattr(substrate, "profile", None)
    if span is None and prof is not None:
        lo, hi = max(lo, prof.inputs.lo), min(hi, prof.inputs.hi)
    measured = list(substrate.capabilities.measured)
    index = np.array([model.node_names.index(n) for n in measured], dtype=np.intp)
    applied = substrate.set_parameters(model.default_theta if theta is None else theta)
    if substrate.capabilities.nudge:
        substrate.nudge_currents(np.zeros(len(model.output_names)))
    levels = np.linspace(lo, hi, points)
    known, read = [], []
    for v in levels:
        u = np.full((1, len(model.input_names)), v)
        substrate.clamp(u)
        read.append(substrate.sample(samples)[0].mean(axis=0))
        s = solve_equilibrium(model, applied, u).s
        known.append(model.voltages(s, u)[0, index])
    known, read = np.array(known), np.array(read)
    moving = np.ptp(known, axis=0) > 1e-3 * (hi - lo)
    cal = fit_gain_offset(known[:, moving], read[:, moving], [n for n, m in zip(measured, moving) if m])
    fixed = ~moving
    off = (known[:, fixed] - read[:, fixed]).mean(axis=0)
    res = known[:, fixed] - read[:, fixed] - off
    order = np.argsort(np.concatenate([np.flatnonzero(moving), np.flatnonzero(fixed)]))
    cat = lambda a, b: np.concatenate([a, b])[order]
    rms = np.sqrt(np.mean(res**2, axis=0))
    return ChannelCalibration(tuple(measured), cat(cal.gain, np.ones(fixed.sum())), cat(cal.offset, off),
                              cat(cal.gain_stderr, np.zeros(fixed.sum())),
                              cat(cal.offset_stderr, rms / math.sqrt(points)),
                              cat(cal.residual_rms, rms), points)


class _Corrected:
    """A substrate whose readings pass through a channel calibration."""

    def __init__(self, inner, adc: ChannelCalibration):
        order = [adc.names.index(n) for n in inner.capabilities.measured]
        self._inner, self._gain, self._offset = inner, adc.gain[order], adc.offset[order]

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def sample(self, n: int) -> np.ndarray:
        return self._inner.sample(n) * self._gain + self._offset


def check_samples(samples: int, nodes: int, precision: float | None) -> None:
    """Refuse too few readings for a covariance or for the requested relative precision,
    saying how many are needed."""
    if samples < max(MIN_SAMPLES, nodes + 2):
        raise ConfigError(f"--samples {samples} is too few: calibration needs at least "
                          f"{max(MIN_SAMPLES, nodes + 2)} readings per run")
    if precision is not None:
        if not 0 < precision < 1:
            raise ConfigError(f"--precision must be a relative error in (0, 1), got {precision}")
        need = samples_needed(precision, nodes)
        if samples < need:
            best = math.sqrt(2.0 / (nodes * (samples - 1)))
            raise ConfigError(f"--samples {samples} gives at best a {best:.1%} relative standard error "
                              f"on T from {nodes} node(s); {precision:.1%} needs at least {need} "
                              "readings (more if readings are correlated in time)")


def calibrate(substrate, model, *, method: str = "both", samples: int = 4000, settings: int = 2,
              theta: np.ndarray | None = None, inputs: np.ndarray | None = None,
              nudge_sigmas: float = NUDGE_SIGMAS, precision: float | None = None,
              tolerance: float = TOLERANCE, command: str = "", seed: int | None = None,
              valid_days: float | None = None, family: str = "resistive",
              adc: ChannelCalibration | None = None, adc_points: int = 0,
              progress=None) -> CalibrationRecord:
    """Measure the noise temperature of ``substrate`` (a resistive network ``model`` wired on
    it) and judge whether its noise is Boltzmann; returns the record.

    At each of ``settings`` conductance settings (``theta``, then scaled; see
    :func:`_settings`) takes ``samples`` free readings at the ``inputs`` (default: the
    network's), estimates ``T`` by equipartition and/or, with nudge sources, by
    fluctuation-dissipation (2 runs of ``samples`` per output, currents chosen by a pilot to
    move each output by ``nudge_sigmas`` standard deviations, plus a free run of its own
    when both methods run, so that their estimates are independent). ``T`` is the inverse-variance
    mean of every estimate; per-node values come from the first setting. ``precision``: the
    relative standard error required (checked before and after measuring). ``progress(msg)``
    is called before each run. ``adc``: a channel calibration to apply to the readings, or
    with ``adc_points`` > 0 one measured first by :func:`adc_loopback`; either is written
    into the record's ``adc`` table (node -> gain, offset) that the serial driver applies
    to every reading when opened with the record. Cost:
    ``settings * (2 + 2 k) * samples`` readings with both methods.
    """
    if method not in METHODS:
        raise ConfigError(f"--method {method}: expected one of {', '.join(METHODS)}")
    if int(settings) != settings or settings < 1:
        raise ConfigError(f"--settings {settings}: needs at least 1 conductance setting (2 or more "
                          "test that T does not change with the conductances)")
    if not (math.isfinite(nudge_sigmas) and nudge_sigmas > 0):
        raise ConfigError(f"--nudge-sigmas {nudge_sigmas}: must be > 0 reading standard deviations")
    if not 0 < tolerance < 1:
        raise ConfigError(f"--tolerance {tolerance}: must be a relative deviation in (0, 1)")
    if valid_days is not None and not (math.isfinite(valid_days) and valid_days > 0):
        raise ConfigError(f"--valid-days {valid_days}: must be a number of days > 0")
    caps = substrate.capabilities
    use_eq, use_fdt = method in ("equipartition", "both"), method in ("fdt", "both")
    idn, profile = substrate_identity(substrate)
    if use_fdt and not caps.nudge:
        raise ConfigError(f"--method {method}: fluctuation-dissipation injects currents at the outputs, "
                          f"but board {board_identity(idn)} has no nudge current sources; "
                          "use --method equipartition")
    measured = list(caps.measured)
    nodes = [n for n in model.free_names if n in measured]
    if not nodes:
        raise ConfigError(f"the substrate measures none of the free nodes {', '.join(model.free_names)}")
    m = len(nodes)
    read_cols = np.array([measured.index(n) for n in nodes], dtype=np.intp)
    free_cols = np.array([list(model.free_names).index(n) for n in nodes], dtype=np.intp)
    out = []
    if use_fdt:
        missing = [n for n in model.output_names if n not in nodes]
        if missing:
            raise ConfigError(f"--method {method}: the substrate does not measure output(s) {', '.join(missing)}")
        out = np.array([nodes.index(n) for n in model.output_names], dtype=np.intp)
    check_samples(samples, m, precision)
    units = TEMPERATURE_UNITS.get(family, "energy units")
    say = progress or (lambda msg: None)
    if adc_points:
        say(f"ADC loopback: {adc_points} input levels")
        adc = adc_loopback(substrate, model, points=adc_points, theta=theta)
    if adc is not None:
        substrate = _Corrected(substrate, adc)
    u = model.check_inputs(inputs)
    if len(u) != 1:
        raise ConfigError(f"calibration clamps one input vector at a time; got a batch of {len(u)}")
    thetas = _settings(model, model.default_theta if theta is None else np.asarray(theta, float), settings)

    runs: list[_Setting] = []
    for s, th in enumerate(thetas):
        applied = substrate.set_parameters(th)
        substrate.clamp(u)
        if caps.nudge:
            substrate.nudge_currents(np.zeros(len(model.output_names)))
        say(f"setting {s + 1}/{len(thetas)}: {samples} free readings")
        free = substrate.sample(samples)[0][:, read_cols]
        if not np.all(np.ptp(free, axis=0) > 0):
            still = [n for n, v in zip(nodes, np.ptp(free, axis=0)) if v == 0]
            raise ConfigError(f"readings of node(s) {', '.join(still)} do not fluctuate: the board is "
                              "at T = 0 or its noise is below one ADC step; nothing to calibrate")
        shape = _shape_of(model, applied, u, free_cols)
        est = {}
        if use_eq:
            est["equipartition"] = equipartition_temperature(free, shape, nodes)
        if use_fdt:
            say(f"setting {s + 1}/{len(thetas)}: pilot and {2 * len(out)} nudged runs")
            deltas = _pilot_currents(substrate, free, out, read_cols, nudge_sigmas, nodes)
            plus, minus, applied_i = _fdt_runs(substrate, deltas, samples, read_cols)
            # with both methods, a run of its own keeps the two estimates independent
            centre = substrate.sample(samples)[0][:, read_cols] if use_eq else free
            est["fdt"] = fdt_temperature(plus, minus, applied_i, out, nodes, free=centre)
        runs.append(_Setting(applied, free, shape, est))
    substrate.set_parameters(thetas[0])

    every = [(name, s, e) for s, r in enumerate(runs) for name, e in r.estimates.items()]
    T, se, _, _, _ = combine_estimates([e.value for _, _, e in every], [e.stderr for _, _, e in every])
    if precision is not None and se > precision * T:
        tau = max(e.info["tau"] for _, _, e in every)
        need = int(math.ceil(samples * (se / (precision * T)) ** 2))
        raise ConfigError(f"T = {T:.4g} +- {se:.2g} {units} misses the requested {precision:.1%} "
                          f"(readings are correlated over {tau:.3g} samples); rerun with --samples {need}")

    # consistency
    taus = [max(e.info["tau"] for e in r.estimates.values()) for r in runs]
    decomposition = decompose_noise([np.cov(r.free.T).reshape(m, m) for r in runs], [r.shape for r in runs],
                                    [len(r.free) / t for r, t in zip(runs, taus)],
                                    _capacitance(substrate, model, nodes))
    fractions = decomposition["fractions"]
    tests = {}
    if m >= 2:
        shape_stats = [shape_test(r.free, r.shape, t) for r, t in zip(runs, taus)]
        stat, dof = sum(x[0] for x in shape_stats), sum(x[1] for x in shape_stats)
        tests["shape"] = {"statistic": stat, "dof": dof, "p_value": float(special.chdtrc(dof, stat)),
                          "effect": math.inf if fractions is None else 1.0 - fractions["boltzmann"]}
    main = "equipartition" if use_eq else "fdt"
    if len(runs) > 1:
        vals = [r.estimates[main].value for r in runs]
        mean, _, chi2, dof, p = combine_estimates(vals, [r.estimates[main].stderr for r in runs])
        tests["settings"] = {"statistic": chi2, "dof": dof, "p_value": p,
                             "effect": float(np.max(np.abs(np.array(vals) / mean - 1))),
                             "values": vals}
    if use_eq and use_fdt:
        eq = combine_estimates(*zip(*[(r.estimates["equipartition"].value, r.estimates["equipartition"].stderr) for r in runs]))
        fd = combine_estimates(*zip(*[(r.estimates["fdt"].value, r.estimates["fdt"].stderr) for r in runs]))
        z = (eq[0] - fd[0]) / math.hypot(eq[1], fd[1])
        tests["methods"] = {"statistic": z, "dof": 1, "p_value": float(2 * special.ndtr(-abs(z))),
                            "effect": abs(eq[0] / fd[0] - 1)}
    step = _adc_step(substrate)
    cons = judge(decomposition, tests, T, units,
                 _capacitance(substrate, model, nodes), step, tolerance)
    first = runs[0]
    quant = quantisation_report(np.var(first.free, axis=0, ddof=1), step,
                                precision_matrix(first.shape, tuple(nodes)), T)
    warnings = [w for w in [quant and quant["warning"]] if w]
    if cons.verdict != "boltzmann":
        warnings.append(cons.message)
    head = first.estimates[main]
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    if valid_days is None and idn != EMULATOR_IDN:
        valid_days = 30.0
    data = {
        "schema": SCHEMA, "version": SCHEMA_VERSION,
        "board": {"idn": idn, "id": board_identity(idn)},
        "profile": profile,
        "profile_file": _profile_file(substrate),
        "created": now.isoformat(),
        "expires": None if valid_days is None else (now + _dt.timedelta(days=valid_days)).isoformat(),
        "method": method,
        "temperature": {"value": T, "stderr": se, "units": units},
        "per_node": {n: {"value": float(v), "stderr": float(e)}
                     for n, v, e in zip(head.nodes, head.per_node, head.per_node_stderr)},
        "methods": {name: [r.estimates[name].to_dict(units) for r in runs] for name in first.estimates},
        "settings": [{"theta": dict(zip(model.param_names, map(float, r.theta)))} for r in runs],
        "inputs": dict(zip(model.input_names, map(float, u[0]))),
        "network": model.name,
        "samples": samples,
        "adc": {} if adc is None else adc.to_dict(),
        "quantisation": quant,
        "consistency": cons.to_dict(),
        "warnings": warnings,
        "seed": seed,
        "command": command,
    }
    return CalibrationRecord.from_dict(json.loads(json.dumps(data, default=json_default)), "<new record>")
