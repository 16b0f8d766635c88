"""Whether the noise is Boltzmann enough for thermal EP: the likelihood-ratio test of the
shape ``T G``, the maximum-likelihood decomposition ``Sigma = a G + b C^-1 + c I`` over
several settings, and the verdict with its reasons."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import special

from .estimators import node_names, precision_matrix

#: Boltzmann constant (J/K), for Johnson-noise temperatures.
K_B = 1.380649e-23
#: A deviation from Boltzmann statistics matters when it is significant at this level ...
SIGNIFICANCE = 1e-3
#: ... and larger than this relative size.
TOLERANCE = 0.05


def shape_test(samples: np.ndarray, covariance_shape: np.ndarray, tau: float = 1.0) -> tuple[float, int, float]:
    """Likelihood-ratio test that ``Cov = T G`` for some T (sphericity of the readings
    whitened by ``G^-1/2``): ``(statistic, dof, p_value)``, Bartlett-corrected and computed
    with ``(N - 1) / tau`` effective degrees of freedom. Needs m >= 2 nodes (else dof = 0)."""
    X = np.asarray(samples, dtype=float)
    m = X.shape[1]
    if m < 2:
        return 0.0, 0, 1.0
    L = np.linalg.cholesky(precision_matrix(covariance_shape, node_names(None, m)))
    Z = (X - X.mean(axis=0)) @ L
    W = Z.T @ Z / (len(X) - 1)
    n = (len(X) - 1) / tau
    sign, logdet = np.linalg.slogdet(W)
    stat = n * (m * math.log(np.trace(W) / m) - logdet) if sign > 0 else math.inf
    stat *= max(1.0 - (2 * m * m + m + 2) / (6.0 * m * n), 0.0)
    dof = m * (m + 1) // 2 - 1
    return float(stat), dof, float(special.chdtrc(dof, stat))


def decompose_noise(covariances: Sequence[np.ndarray], shapes: Sequence[np.ndarray],
                    n_effective: Sequence[float], capacitance: np.ndarray | None = None,
                    iterations: int = 50) -> dict:
    """Maximum-likelihood split of the measured covariance into Boltzmann and uncorrelated
    noise, jointly over settings ``s``:

        Sigma_s = a G_s + b diag(1/C) + c I      (a, b, c >= 0)

    ``covariances`` are the sample covariances ``S_s`` (m, m) with ``n_effective`` readings,
    ``shapes`` the ``G_s = (H_s^-1)_MM``; ``capacitance`` (m,) farads (the ``C^-1`` term is
    used only when known and not proportional to I). Fisher scoring with an active set for
    the sign constraints. Returns ``{"coefficients", "fractions", "boltzmann_stderr"}``:
    each fraction is that term's share of ``sum_s tr(Sigma_s)``, with the standard error of
    the Boltzmann share; all None when the terms cannot be told apart (one node at one
    setting).
    """
    m = covariances[0].shape[0]
    comps = {"boltzmann": [np.asarray(G, float) for G in shapes]}
    if capacitance is not None and np.all(np.isfinite(capacitance)) and np.all(np.asarray(capacitance) > 0):
        inv_c = 1.0 / np.asarray(capacitance, float)
        if np.ptp(inv_c) > 1e-6 * inv_c.mean():
            comps["johnson"] = [np.diag(inv_c)] * len(shapes)
    comps["uncorrelated"] = [np.eye(m)] * len(shapes)
    names = list(comps)
    S = [np.asarray(s, float) for s in covariances]
    w = np.asarray(n_effective, float) / 2.0

    def fisher(active, theta):
        Sig = [sum(theta[i] * comps[names[i]][s] for i in active) for s in range(len(S))]
        inv = [np.linalg.inv(x) for x in Sig]
        A = [[inv[s] @ comps[names[i]][s] for i in active] for s in range(len(S))]
        F = np.array([[sum(w[s] * np.sum(A[s][p] * A[s][q].T) for s in range(len(S)))
                       for q in range(len(active))] for p in range(len(active))])
        g = np.array([sum(w[s] * np.sum(A[s][p] * (inv[s] @ S[s]).T) for s in range(len(S)))
                      for p in range(len(active))])
        return F, g

    # start from least squares on the entries, then Fisher scoring (the GLS iteration)
    design = np.array([np.concatenate([comps[n][s].ravel() for s in range(len(S))]) for n in names]).T
    target = np.concatenate([x.ravel() for x in S])
    if np.linalg.matrix_rank(design / np.abs(design).max(axis=0), tol=1e-9) < len(names):
        return {"coefficients": None, "fractions": None, "boltzmann_stderr": None}
    floor = 1e-3 * np.abs(target).max() / np.abs(design).max(axis=0)
    theta = np.maximum(np.linalg.lstsq(design, target, rcond=None)[0], floor)
    active = list(range(len(names)))
    for _ in range(iterations):
        F, g = fisher(active, theta)
        new = np.linalg.solve(F, g)
        if np.any(new < 0):
            drop = active.pop(int(np.argmin(new)))
            theta[drop] = 0.0
            continue
        step = np.max(np.abs(new - theta[active]) / np.maximum(new, floor[active]))  # 0 by its floor
        theta[active] = new
        if step < 1e-10:
            break
    unit = np.array([sum(np.trace(comps[n][s]) for s in range(len(S))) for n in names])
    total = float(theta @ unit)
    # standard error of the Boltzmann share by the delta method, from the Fisher information
    # of every term at the estimate (one-sided at a boundary, but the right scale)
    grad = -theta[0] * unit[0] * unit / total**2
    grad[0] += unit[0] / total
    F, _ = fisher(list(range(len(names))), theta)
    se = float(np.sqrt(max(grad @ np.linalg.lstsq(F, grad, rcond=None)[0], 0.0)))
    return {"coefficients": {n: float(theta[i]) for i, n in enumerate(names)},
            "fractions": {n: float(theta[i] * unit[i] / total) for i, n in enumerate(names)},
            "boltzmann_stderr": se}


@dataclass(frozen=True)
class Consistency:
    """Boltzmann-consistency statistic and verdict.

    ``statistic`` is the Boltzmann fraction (share of the measured variance explained by
    ``T H^-1``; None when undetermined); ``tests`` maps each test (``shape``, ``settings``,
    ``methods``) to its statistic, dof, p-value and relative effect size; ``verdict`` is one
    of ``boltzmann``, ``biased``, ``uncorrelated``, ``undetermined``; ``message`` says it in
    plain language; ``johnson_kelvin`` is the physical temperature the uncorrelated variance
    would have as Johnson noise of the node capacitances; ``stderr`` that of the statistic.
    """

    statistic: float | None
    fractions: dict | None
    coefficients: dict | None
    tests: dict
    verdict: str
    message: str
    johnson_kelvin: float | None = None
    stderr: float | None = None

    def to_dict(self) -> dict:
        return {"statistic": self.statistic, "name": "boltzmann_fraction", "stderr": self.stderr,
                "fractions": self.fractions, "coefficients": self.coefficients,
                "tests": self.tests, "johnson_kelvin": self.johnson_kelvin,
                "verdict": self.verdict, "message": self.message}


def judge(decomposition: dict, tests: dict, T: float, units: str,
          capacitance: np.ndarray | None = None, adc_step: float | None = None,
          tolerance: float = TOLERANCE) -> Consistency:
    """Turn the noise decomposition (:func:`decompose_noise`) and the tests into a verdict.

    With ``f`` the Boltzmann share and ``se`` its standard error: ``uncorrelated`` when
    ``f + 3 se < 1/2``; ``biased`` when ``1 - f`` exceeds both ``tolerance`` and ``3 se``, or a
    test fails at ``SIGNIFICANCE`` with a relative effect above ``tolerance``;
    ``undetermined`` when nothing could test the shape or ``se > tolerance``; else
    ``boltzmann``. ``tests`` maps names to ``{"statistic", "dof", "p_value", "effect"}``.
    """
    fractions, coefficients = decomposition["fractions"], decomposition["coefficients"]
    fB = None if fractions is None else fractions["boltzmann"]
    se = decomposition.get("boltzmann_stderr") or 0.0
    failing = [name for name, t in tests.items()
               if t["p_value"] < SIGNIFICANCE and t.get("effect", math.inf) > tolerance]
    johnson_k = None
    unc = None
    if coefficients is not None:
        unc = coefficients.get("uncorrelated", 0.0)
        if capacitance is not None and np.all(np.isfinite(capacitance)):
            var_diag = coefficients.get("johnson", 0.0) / np.asarray(capacitance) + unc
            johnson_k = float(np.mean(var_diag * np.asarray(capacitance)) / K_B)
    what, remedy = _uncorrelated_source(unc, johnson_k, adc_step)
    excess = fB is not None and 1 - fB > max(tolerance, 3 * se)
    if fB is not None and fB + 3 * se < 0.5:
        verdict = "uncorrelated"
        msg = (f"Only {100 * fB:.0f}% of the measured variance follows the conductances (T H^-1); "
               f"the rest is uncorrelated between nodes and independent of the conductances, "
               f"{what}. Such noise carries no information about the conductances, so thermal EP "
               f"will not work on this board: {remedy}.")
    elif excess or failing:
        verdict = "biased"
        parts = []
        if excess:
            parts.append(f"{100 * (1 - fB):.0f}% (+-{100 * se:.0f}%) of the measured variance is "
                         f"uncorrelated noise ({what}) on top of T H^-1")
        parts += [_FAIL_TEXT[name].format(**tests[name]) for name in failing]
        msg = ("Fluctuations are not Boltzmann in the co-content: " + "; ".join(parts) +
               f". T = {T:.4g} {units} is biased and thermal EP will not work reliably "
               f"(its gradients will be biased by as much): {remedy}.")
    elif fB is None and not tests:
        verdict = "undetermined"
        msg = ("One measured node at one conductance setting cannot tell Boltzmann noise from "
               "uncorrelated (Johnson or ADC) noise: calibrate at two settings (--settings 2) or "
               "measure more nodes before trusting T for thermal EP.")
    elif se > tolerance:
        verdict = "undetermined"
        msg = (f"The share of the variance that follows T H^-1 is uncertain ({100 * fB:.0f}% "
               f"+- {100 * se:.0f}%): take more readings (--samples) or settings before trusting "
               f"T = {T:.4g} {units} for thermal EP.")
    else:
        verdict = "boltzmann"
        checks = ", ".join(f"{name} p={t['p_value']:.2g}" for name, t in tests.items()) or "no test"
        share = "" if fB is None else f"{100 * fB:.1f}% (+-{100 * se:.1f}%) of the variance follows T H^-1; "
        msg = (f"Fluctuations are Boltzmann in the co-content: {share}{checks}. Thermal EP can "
               f"use T = {T:.4g} {units}.")
    return Consistency(fB, fractions, coefficients, tests, verdict, msg, johnson_k, se)


_FAIL_TEXT = {
    "shape": "the covariance is not shaped like H^-1 (p={p_value:.2g})",
    "settings": "T changes with the conductances by {effect:.0%} (p={p_value:.2g})",
    "methods": "equipartition and fluctuation-dissipation disagree by {effect:.0%} (p={p_value:.2g})",
}


def _uncorrelated_source(unc: float | None, johnson_k: float | None,
                         adc_step: float | None) -> tuple[str, str]:
    """What the uncorrelated noise looks like, and what to do about it."""
    inject = "inject node current noise of intensity 2 T C_i (Boltzmann in the co-content)"
    if johnson_k is not None and 30.0 <= johnson_k <= 3000.0:
        return (f"shaped like k_B T C^-1 with T = {johnson_k:.0f} K, i.e. Johnson noise of the "
                "resistors alone", inject)
    average = "average more conversions per reading or use a quieter ADC"
    if adc_step and unc is not None and unc < 4 * adc_step**2:
        return "about the size of one ADC step, i.e. ADC noise or quantisation", average
    if johnson_k is not None:
        return (f"{'too large' if johnson_k > 3000 else 'too small'} for Johnson noise at a "
                f"physical temperature ({johnson_k:.3g} K for the node capacitances), i.e. ADC or "
                "channel noise", average)
    return "like ADC noise or Johnson noise (k_B T C^-1)", f"{average}, or {inject}"


def quantisation_report(variances: np.ndarray, step: float | None, precision: np.ndarray,
                        T: float) -> dict | None:
    """How ADC quantisation biases ``T``. A step ``D`` adds ``D^2/12`` to every variance
    (Sheppard), so equipartition overestimates ``T`` by ``D^2 tr(G^-1) / (12 m)``; below about
    half a step of noise the readings stick to a code and even that correction fails.
    ``variances`` (m,) V^2 per node, ``precision`` ``G^-1`` (m, m). Returns None without a step."""
    if not step:
        return None
    sigma = np.sqrt(np.asarray(variances, float))
    ratio = float(sigma.min() / step)
    bias = float(step**2 * np.trace(precision) / (12 * len(sigma)) / T) if T > 0 else math.inf
    warn = None
    if ratio < 4.0:
        warn = (f"noise is only {ratio:.2g} ADC steps ({step:.3g} V) at its smallest: quantisation "
                f"biases T by about {bias:+.1%}" +
                ("" if ratio >= 0.5 else ", and below half a step the bias is not even predictable")
                + "; average more or use a finer ADC range")
    return {"adc_step": step, "min_sigma_over_step": ratio, "relative_bias": bias, "warning": warn}
