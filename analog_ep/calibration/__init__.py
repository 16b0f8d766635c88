"""Calibration of a substrate: ADC gain and offset, noise temperature, calibration records.

Modules: :mod:`.record` (records, read once per run and checked against the board),
:mod:`.statistics`, :mod:`.adc`, :mod:`.estimators`, :mod:`.verdict` (Boltzmann
consistency) and :mod:`.procedure` (drives a substrate). Nothing here imports a substrate:
the procedure works on any object with the substrate interface.

Thermal EP divides by the noise temperature ``T`` (``dL/dW = -(1/T) Cov(C, dE/dW)``), in
the model's energy units: watts for resistive networks, whose energy is the co-content.
The package measures ``T`` with a standard error and says whether the fluctuations are
Boltzmann in ``E`` at all.

Two independent estimators, both over every measured free node:

- **equipartition** (needs the conductances): free samples ``x_t`` (N, m) of the measured
  free nodes ``M`` should be Gaussian with ``Cov = T G``, ``G = (H^-1)_MM`` (V^2/W) from the
  Hessian ``H`` of the known conductances. The maximum-likelihood estimate over all node
  pairs is ``T = tr(G^-1 S) / m`` with ``S`` the unbiased sample covariance; per node,
  ``T_i = (S G^-1)_ii`` (these average to ``T`` and each has expectation ``T``, so a node with
  extra noise stands out).
- **fluctuation-dissipation** (model-free): with small currents ``+-delta_j`` (A) injected
  at output ``j`` the means move by ``R_ij delta_j`` (``R = dV/dI``, ohms) and
  ``Cov(V_i, V_j) = T R_ij``. ``T = <C, R> / <R, R>`` over every measured node ``i`` and
  output ``j``, with ``R`` from centred differences of sample means and ``C`` the covariance
  averaged over the current interval by Simpson's rule (each run centred on its own mean,
  so ``R`` and ``C`` are independent). In this integral form it holds for any Boltzmann
  law, diode networks included, up to O(delta^4).

Standard errors are analytic: each estimate is a mean of a per-reading series, whose
variance is ``var(q) tau / N`` with ``tau`` the integrated autocorrelation time of that
series (Sokal's automatic window), so time-series readings count ``N / tau`` effective
samples.

Boltzmann consistency: the measured covariance is decomposed by maximum likelihood as
``Sigma_s = a G_s + b C^-1 + c I`` jointly over several conductance settings ``s``. Injected
noise of intensity ``2 T C_i`` gives ``a = T`` and nothing else; Johnson noise alone gives
``k_B T_phys C^-1`` (no conductance information, thermal EP cannot work); ADC noise gives
``c I``. The share of variance explained by ``a G`` (``boltzmann_fraction``) is the headline
statistic, backed by a likelihood-ratio test of the shape ``T G`` within each setting, a
chi-square test of equal ``T`` across settings and, with both methods, their z-score.

Records are JSON (schema ``analog-ep/calibration`` version 1) with the headline
``"temperature": {"value", "stderr", "units"}``; :func:`load_calibration` validates them and
refuses stale or mismatched ones.
"""

from .adc import ChannelCalibration, fit_gain_offset
from .estimators import TemperatureEstimate, equipartition_temperature, fdt_temperature, samples_needed
from .procedure import NUDGE_SIGMAS, adc_loopback, calibrate, check_samples
from .record import (EMULATOR_IDN, METHODS, SCHEMA, SCHEMA_VERSION, TEMPERATURE_UNITS, CalibrationRecord,
                     board_identity, calibration_for, calibration_path, check_calibration, load_calibration,
                     read_calibration, substrate_identity, validate_record)
from .statistics import combine_estimates, integrated_autocorrelation_time
from .verdict import SIGNIFICANCE, TOLERANCE, Consistency, decompose_noise, judge, quantisation_report, shape_test

__all__ = ["ChannelCalibration", "fit_gain_offset", "TemperatureEstimate", "equipartition_temperature",
           "fdt_temperature", "samples_needed", "NUDGE_SIGMAS", "adc_loopback", "calibrate", "check_samples",
           "EMULATOR_IDN", "METHODS", "SCHEMA", "SCHEMA_VERSION", "TEMPERATURE_UNITS", "CalibrationRecord",
           "board_identity", "calibration_for", "calibration_path", "check_calibration", "load_calibration",
           "read_calibration", "substrate_identity",
           "validate_record", "combine_estimates", "integrated_autocorrelation_time", "SIGNIFICANCE",
           "TOLERANCE", "Consistency", "decompose_noise", "judge", "quantisation_report", "shape_test"]
