"""Noise sources and the measurement model of an emulated board.

Physical dynamics of the free-node voltages ``V`` (volts) with node capacitances ``C``
(farads, diagonal)::

    C dV/dt = -grad F(V) + xi(t),      <xi(t) xi(t')^T> = D delta(t - t')

with ``F = E + beta C_cost`` the co-content (watts) and ``D`` (A^2 s) the current-noise
intensity:

* **injected** current noise ``D = 2 T diag(C)``: the stationary density is
  ``exp(-F/T)`` exactly, the Boltzmann distribution thermal EP needs (``T`` in watts);
* **Johnson** noise of each resistor at a physical temperature ``T_J`` (kelvin),
  ``D = 2 k_B T_J L_ff`` (two-sided ``2 k_B T_J G_e`` across each resistor): for a linear
  network the stationary covariance is ``k_B T_J C^-1``, Boltzmann in the *stored* energy
  ``V^T C V / 2``, which carries no information about the conductances.

For a linear network the drift is ``-A x`` with ``A = C^-1 H`` and the noise rate
``Q = C^-1 D C^-1``; the stationary covariance solves the Lyapunov equation
``A S + S A^T = Q`` and one sample interval ``dt`` is the exact Ornstein-Uhlenbeck update
``x' = e^{-A dt} x + w``, ``w ~ N(0, S - e^{-A dt} S e^{-A^T dt})`` (no O(dt/tau) bias).
Diode networks use Euler-Maruyama with sub-steps of at most ``substep`` times the
shortest relaxation time. Readings then pass through the ADC: white noise ``adc_noise``
(volts rms), clipping to ``adc_range`` and rounding to ``2^adc_bits`` levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ConfigError, ConvergenceError

#: Default noise temperature of the resistive emulator (W), used when a run states none. On the
#: default Iris network (``analog_ep.networks.default_network``, initial conductances) the
#: output nodes fluctuate with a standard deviation of about 20 mV (median over the
#: training inputs, 19-20 mV for seeds 0-2): 2% of the DAC half-range of 1 V, 1% of its
#: 2 V span. That is large against the classical/thermal difference, small against the
#: targets (+-0.125 V), and comparable to the diodes' n V_t = 26 mV, so the distribution
#: is measurably non-Gaussian near the knees.
RESISTIVE_DEFAULT_TEMPERATURE = 1e-7

#: Boltzmann constant (J/K).
K_BOLTZMANN = 1.380649e-23


@dataclass(frozen=True)
class NoiseModel:
    """Noise mix and measurement chain of a board.

    ``injected``: current noise ``2 T C_i`` into every free node (Boltzmann at the board's
    ``T``); ``johnson_temperature``: kelvin, or None for no resistor noise;
    ``capacitance``: farads for nodes whose graph gives none; ``sample_interval``: seconds
    between readings of a time series, or None for independent equilibrium readings;
    ``adc_noise`` (V rms), ``adc_bits`` (None: no quantisation), ``adc_range`` (V).
    ``substep``: Euler-Maruyama step of diode networks as a fraction of the shortest
    relaxation time.
    """

    injected: bool = True
    johnson_temperature: float | None = None
    capacitance: float = 1e-9
    sample_interval: float | None = None
    adc_noise: float = 0.0
    adc_bits: int | None = None
    adc_range: tuple[float, float] = (-1.0, 1.0)
    substep: float = 0.05

    def __post_init__(self):
        def positive(x) -> bool:
            return isinstance(x, (int, float, np.integer, np.floating)) and bool(np.isfinite(x)) and x > 0

        if not positive(self.capacitance):
            raise ConfigError(f"node capacitance must be a finite number > 0 F, got {self.capacitance}")
        if self.sample_interval is not None and not positive(self.sample_interval):
            raise ConfigError(f"sample interval must be a finite number > 0 s, got {self.sample_interval}")
        if self.johnson_temperature is not None and not (positive(self.johnson_temperature)
                                                         or self.johnson_temperature == 0):
            raise ConfigError(f"Johnson noise temperature must be a finite number >= 0 K, "
                              f"got {self.johnson_temperature}")
        if not (positive(self.adc_noise) or self.adc_noise == 0):
            raise ConfigError(f"ADC noise must be a finite number >= 0 V, got {self.adc_noise}")
        if self.adc_bits is not None and (isinstance(self.adc_bits, bool) or
                                          not isinstance(self.adc_bits, (int, np.integer)) or
                                          not 1 <= self.adc_bits <= 32):
            raise ConfigError(f"ADC bits must be an integer in 1..32, got {self.adc_bits}")
        if (len(self.adc_range) != 2 or not all(np.isfinite(x) for x in self.adc_range)
                or not self.adc_range[0] < self.adc_range[1]):
            raise ConfigError(f"ADC range must be finite (low, high) with low < high, got {self.adc_range}")
        if not (positive(self.substep) and self.substep <= 1):
            raise ConfigError(f"substep must lie in (0, 1], got {self.substep}")

    @property
    def dynamic(self) -> bool:
        """Whether readings need the dynamics (a time series, or a non-Boltzmann noise mix)."""
        return self.sample_interval is not None or not self.is_boltzmann

    @property
    def is_boltzmann(self) -> bool:
        """Injected noise only: the stationary law is ``exp(-F/T)``."""
        return self.injected and not self.johnson_temperature

    @property
    def has_adc(self) -> bool:
        return self.adc_noise > 0 or self.adc_bits is not None

    def has_source(self, temperature: float) -> bool:
        """Whether some noise drives the nodes: injected noise at ``T > 0`` or Johnson noise."""
        return bool((self.injected and temperature > 0) or self.johnson_temperature)


def node_capacitances(model, noise: NoiseModel) -> np.ndarray:
    """Capacitance (F) of each free node, (n_free,): the graph's, else (NaN: not given)
    ``noise.capacitance``; a zero, negative or infinite one raises :class:`ConfigError`."""
    c = np.asarray(model.capacitance, dtype=float)[model.free]
    bad = ~np.isnan(c) & ~(np.isfinite(c) & (c > 0))
    if bad.any():
        names = [model.free_names[i] for i in np.flatnonzero(bad)]
        raise ConfigError(f"node capacitance must be a finite number > 0 F; nodes {names} have "
                          f"{c[bad].tolist()}")
    return np.where(np.isnan(c), noise.capacitance, c)


#: Settling tolerance of :func:`settling_time`: the slowest mode decays to this fraction.
SETTLE_TOLERANCE = 1e-3


#: Above this many free nodes :func:`settling_time` uses a sparse shift-invert eigensolver.
DENSE_SETTLE_NODES = 300


def settling_time(H, cap: np.ndarray, tolerance: float = SETTLE_TOLERANCE) -> float:
    """Time (s) for ``C dV/dt = -H (V - V*)`` (node capacitances ``cap`` (n,) F, Hessian
    ``H`` (n, n) S at the equilibrium, dense or scipy.sparse) to bring its slowest mode to
    ``tolerance`` of its start: ``ln(1/tolerance) / lambda_min``, ``lambda_min`` the
    smallest eigenvalue of ``H v = lambda C v`` (1/s), so ``1/lambda_min`` is the slowest
    relaxation time."""
    r = 1.0 / np.sqrt(np.asarray(cap, dtype=float))
    if sp.issparse(H) and len(r) > DENSE_SETTLE_NODES:
        D = sp.diags(r)
        lam = float(spla.eigsh((D @ H @ D).tocsc(), k=1, sigma=0.0, which="LM", return_eigenvectors=False)[0])
    else:
        H = H.toarray() if sp.issparse(H) else np.asarray(H)
        lam = np.linalg.eigvalsh(r[:, None] * H * r[None, :])[0]
    if not lam > 0:
        raise ConvergenceError("the equilibrium is not a strict minimum: no settling time")
    return float(np.log(1.0 / tolerance) / lam)


def noise_intensity(model, theta, temperature: float, noise: NoiseModel) -> np.ndarray:
    """Current-noise intensity ``D`` (A^2 s) on the free nodes, (n_free, n_free):
    ``2 T diag(C)`` if injected plus ``2 k_B T_J L_ff`` for Johnson noise."""
    n = model.n_free
    D = np.zeros((n, n))
    if noise.injected and temperature > 0:
        D += np.diag(2.0 * temperature * node_capacitances(model, noise))
    if noise.johnson_temperature:
        D += 2.0 * K_BOLTZMANN * noise.johnson_temperature * model.laplacian_blocks(theta)[0].toarray()
    return D


def stationary_covariance(H: np.ndarray, capacitance: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Stationary covariance (V^2) of ``C dV/dt = -H V + xi`` with intensity ``D``: the
    solution of the Lyapunov equation ``A S + S A^T = Q``, ``A = C^-1 H``,
    ``Q = C^-1 D C^-1``. With ``D = 2 T C`` it is ``T H^-1``; with ``D = 2 k T L`` and
    ``H = L`` it is ``k T C^-1``."""
    cinv = 1.0 / capacitance
    A = cinv[:, None] * H
    Q = cinv[:, None] * D * cinv[None, :]
    S = sla.solve_continuous_lyapunov(A, Q)
    return 0.5 * (S + S.T)


@dataclass(frozen=True, eq=False)
class OUStep:
    """Exact Ornstein-Uhlenbeck update over one interval ``dt`` of a linear network:
    ``x' = Phi x + chol_w z`` with ``Phi = expm(-A dt)`` and ``chol_w`` a square root of
    ``S - Phi S Phi^T``; ``chol_s`` is a square root of the stationary covariance ``S``."""

    phi: np.ndarray
    chol_w: np.ndarray
    chol_s: np.ndarray


def psd_root(S: np.ndarray) -> np.ndarray:
    """A square root ``R`` with ``R R^T = S`` of a positive semi-definite matrix."""
    w, V = np.linalg.eigh(0.5 * (S + S.T))
    if w.min() < -1e-9 * max(w.max(), 1e-300):
        raise ConvergenceError(f"noise covariance is not positive semi-definite (eigenvalue {w.min():.3e})")
    return V * np.sqrt(np.clip(w, 0.0, None))


def ou_step(H: np.ndarray, capacitance: np.ndarray, D: np.ndarray, dt: float) -> OUStep:
    """Matrices of the exact OU update (see :class:`OUStep`) for Hessian ``H`` (S),
    capacitances (F), intensity ``D`` (A^2 s) and interval ``dt`` (s)."""
    S = stationary_covariance(H, capacitance, D)
    phi = sla.expm(-(1.0 / capacitance)[:, None] * H * dt)
    return OUStep(phi, psd_root(S - phi @ S @ phi.T), psd_root(S))


def simulate_linear(step: OUStep, mean: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A stationary time series of ``n`` readings per input: (B, n, n_free) volts around
    ``mean`` (B, n_free). Starts from an exact stationary draw; O(n B n_free^2)."""
    B, nf = mean.shape
    x = rng.standard_normal((B, nf)) @ step.chol_s.T
    out = np.empty((B, n, nf))
    for k in range(n):
        out[:, k] = x
        x = x @ step.phi.T + rng.standard_normal((B, nf)) @ step.chol_w.T
    return mean[:, None, :] + out


def relaxation_times(H: np.ndarray, capacitance: np.ndarray) -> tuple[float, float]:
    """Shortest and longest relaxation times (s) ``1/|eig(C^-1 H)|`` over a batch of
    Hessians ``H`` (B, n, n) (S) with node capacitances (F)."""
    rates = np.abs(np.linalg.eigvals((1.0 / capacitance)[None, :, None] * H))
    return 1.0 / rates.max(), 1.0 / rates.min()


def simulate_langevin(force, s0: np.ndarray, capacitance: np.ndarray, D: np.ndarray, H0: np.ndarray,
                      n: int, dt: float | None, rng: np.random.Generator, burn_in: float = 10.0,
                      substep: float = 0.05, max_substeps: int = 100_000,
                      max_states: int = 1 << 15) -> np.ndarray:
    """Euler-Maruyama readings of ``C dV/dt = force(V) + xi`` (diode networks).

    ``force(s)`` maps (M, n_free) to currents (A) ``-grad F`` for states whose inputs are
    the rows of ``s0`` (B, n_free, the minimum) repeated ``M / B`` times (each row of
    ``s0`` repeated consecutively, as ``np.repeat(s0, k, axis=0)``); ``H0`` (B, n, n) is the
    Hessian at the minimum, whose fastest mode sets the sub-step (``substep`` of the
    shortest relaxation time ``C/lambda``) and whose slowest mode ``tau_max`` the burn-in.

    * ``dt`` set: one physical time series per input, readings ``dt`` seconds apart after
      ``burn_in`` relaxation times from the minimum (``M = B``);
    * ``dt=None``: independent readings, as many chains per input as fit ``max_states``,
      each started from the linearised stationary law (Lyapunov covariance at the minimum)
      and read once after ``burn_in / 2`` relaxation times, so the cost does not grow with
      the spacing of the readings.

    Returns (B, n, n_free) volts. Euler-Maruyama biases the covariance by O(substep). A
    series needing more than ``max_substeps`` steps raises :class:`ConfigError` naming
    the largest sample interval that fits.
    """
    cinv = 1.0 / capacitance
    tau_min, tau_max = relaxation_times(H0, capacitance)
    h = substep * tau_min
    B, nf = s0.shape
    if dt is None:
        k = int(min(n, max(1, max_states // B)))
        settle = int(np.ceil(0.5 * burn_in * tau_max / h))
        roots = np.stack([psd_root(stationary_covariance(Hb, capacitance, D)) for Hb in H0])
        noise_root = psd_root(cinv[:, None] * D * cinv[None, :] * h)
        out = np.empty((B, -(-n // k) * k, nf))
        for start in range(0, n, k):
            z = rng.standard_normal((B, k, nf)) @ np.swapaxes(roots, -1, -2)
            s = (s0[:, None, :] + z).reshape(B * k, nf)
            for _ in range(settle):
                s = s + h * cinv * force(s) + rng.standard_normal(s.shape) @ noise_root.T
            out[:, start:start + k] = s.reshape(B, k, nf)
        return out[:, :n]
    per_reading = max(1, int(np.ceil(dt / h)))
    settle = int(np.ceil(burn_in * tau_max / h))
    total = settle + n * per_reading
    if total > max_substeps:
        fits = 0.99 * ((max_substeps - settle) // n) * h      # margin for the rounding of the message
        hint = (f"set the sample interval (--sample-interval, NoiseModel.sample_interval) to at "
                f"most {fits:.2e} s, or" if fits > 0 else "ask for fewer readings, or")
        raise ConfigError(f"a time series of {n} readings {dt:.2e} s apart needs {total} Euler steps "
                          f"(> {max_substeps}; relaxation times {tau_min:.2e}-{tau_max:.2e} s); "
                          f"{hint} leave the interval unset for independent readings")
    h = dt / per_reading
    noise_root = psd_root(cinv[:, None] * D * cinv[None, :] * h)
    s = s0.copy()
    out = np.empty((B, n, nf))
    for k in range(total):
        s = s + h * cinv * force(s) + rng.standard_normal(s.shape) @ noise_root.T
        j = k - settle + 1
        if j > 0 and j % per_reading == 0:
            out[:, j // per_reading - 1] = s
    return out


def adc(V: np.ndarray, noise: NoiseModel, rng: np.random.Generator) -> np.ndarray:
    """Readings through the ADC: add white noise, clip to the range, round to the levels."""
    if noise.adc_noise > 0:
        V = V + noise.adc_noise * rng.standard_normal(V.shape)
    if noise.adc_bits is not None:
        lo, hi = noise.adc_range
        lsb = (hi - lo) / (2 ** noise.adc_bits - 1)
        V = lo + np.round((np.clip(V, lo, hi) - lo) / lsb) * lsb
    return V
