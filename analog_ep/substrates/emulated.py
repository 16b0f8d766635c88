"""The in-process emulator of a resistive board."""

from __future__ import annotations

import dataclasses
import functools

import warnings
from dataclasses import replace

import numpy as np

from ..devices import DeviceArray, DeviceSpec, Programming, fabricate, fabricate_fixed, program
from ..errors import ConfigError
from ..hardware.profile import load_profile
from ..models.cost import SquaredCost
from ..models.resistive import ResistiveModel, compile_network
from ..physics import noise as _noise
from ..physics.equilibrium import solve_equilibrium
from ..physics.gibbs import GIBBS_SETTINGS, MAX_COLOURS, colour_free_nodes, sample_gibbs
from ..physics.sampling import MCMCSettings, SamplerWarning, energy_function, sample_gaussian, sample_mala
from .base import Capabilities, measured_channels


#: Most readings x nodes x inputs one :meth:`EmulatedBoard.sample` call returns (128 MB of float64).
MAX_VALUES = 1 << 24


#: Samplers of independent Boltzmann readings (``EmulatedBoard(sampler=...)``, ``--sampler``).
SAMPLERS = ("auto", "gaussian", "mala", "gibbs")


#: Chain settings a sampler spec may set (``"mala:thin=4,burn_in=50"``), all integers >= 1.
CHAIN_SETTINGS = ("chains", "burn_in", "thin")


def parse_sampler(spec: str) -> tuple[str, dict[str, int]]:
    """``"NAME[:key=value,...]"`` -> ``(NAME, {key: value})``: a sampler of :data:`SAMPLERS`
    and the chain settings of :data:`CHAIN_SETTINGS` it overrides (for ``mala`` and
    ``gibbs``; the exact Gaussian draws independent readings and takes none)."""
    name, _, rest = str(spec).partition(":")
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}")
    settings: dict[str, int] = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in CHAIN_SETTINGS or not eq:
            raise ConfigError(f"sampler {spec!r}: {item!r} is not one of {', '.join(k + '=N' for k in CHAIN_SETTINGS)}")
        try:
            settings[key] = int(value)
        except ValueError:
            raise ConfigError(f"sampler {spec!r}: {key} must be an integer >= 1, got {value.strip()!r}") from None
        if settings[key] < 1:
            raise ConfigError(f"sampler {spec!r}: {key} must be an integer >= 1, got {settings[key]}")
    if settings and name == "gaussian":
        raise ConfigError(f"sampler {spec!r}: the exact Gaussian sampler draws independent readings and "
                          "has no chain settings")
    return name, settings


def choose_sampler(model: ResistiveModel, sampler: str, cost=None) -> tuple[str, str | None]:
    """The sampler that draws a network's readings, and a message when the request could not
    be honoured. ``auto``: exact Gaussian for linear networks, block Gibbs when the free
    nodes need at most :data:`~analog_ep.physics.gibbs.MAX_COLOURS` colours (with the
    couplings of ``cost``, the cost of a nudged phase), MALA otherwise. ``gibbs`` on a
    network needing more colours falls back to MALA, saying so. ``gaussian`` on a diode
    network is refused."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    if sampler == "gaussian" and not model.is_linear:
        raise ConfigError(f"the exact Gaussian sampler needs a linear network; {model.name or 'this network'} "
                          f"has diodes: use the gibbs, mala or auto sampler")
    if sampler == "auto" and model.is_linear:
        return "gaussian", None
    if sampler in ("auto", "gibbs"):
        colours = colour_free_nodes(model, cost).n_colours
        if colours <= MAX_COLOURS:
            return "gibbs", None
        message = (f"block Gibbs would need {colours} colours on {model.name or 'this network'} (more than "
                   f"{MAX_COLOURS}): sampling with MALA instead")
        return "mala", message if sampler == "gibbs" else None
    return sampler, None


def max_samples(n_inputs: int, n_nodes: int) -> int:
    """Largest ``n`` that :meth:`EmulatedBoard.sample` accepts for this batch and node count."""
    return max(1, MAX_VALUES // max(1, n_inputs * n_nodes))


@functools.lru_cache(maxsize=1)
def reading_range() -> tuple[float, float]:
    """The ADC range (V) of the bundled emulator board profile, which thermal readings of the
    in-process emulator are held against."""
    measured = load_profile("emulator").measured
    return measured.lo, measured.hi


class EmulatedBoard:
    """A resistive network emulated in process, behind the :class:`Substrate` interface.

    At ``temperature = 0`` readings are the exact equilibrium. Parameters are clipped into
    their bounds and, with ``levels``, quantised to that many evenly spaced conductances
    between the bounds, as a digital potentiometer would.

    At ``temperature = T > 0`` (watts) :meth:`sample` returns thermal readings. With the
    default ``noise`` (injected current noise ``2 T C_i``, independent readings) they are
    exact Boltzmann samples ``exp(-(E + beta C)/T)`` drawn by ``sampler`` (see
    :func:`choose_sampler`; default ``auto``): Gaussian through the factor of the reduced
    Laplacian for linear networks, block Gibbs (:mod:`analog_ep.physics.gibbs`) or
    Hessian-preconditioned MALA for diode networks, with chain settings ``mcmc`` (default:
    each sampler's own) and their diagnostics kept in ``last_diagnostics``. A
    ``noise.sample_interval`` makes the readings a physical time series of
    ``C dV/dt = -grad F + xi`` (exact Ornstein-Uhlenbeck steps for linear networks);
    Johnson noise, ADC noise and quantisation are further options of
    :class:`~analog_ep.physics.noise.NoiseModel`. Without ``sample_interval`` the readings
    of a diode network under a non-Boltzmann noise mix come from independent Langevin chains
    (the cost does not depend on the network's time constants).

    With a ``device`` (a :class:`~analog_ep.devices.DeviceSpec`), each trainable resistor
    is a device of one fabrication (``device_seed``), in units where the preset's ``g_max``
    is the parameter's upper bound (conductances times ``g_max_j / spec.g_max``): it keeps
    its number of states, response shape and on/off ratio. :meth:`set_parameters` then
    programs the devices towards the (clipped, quantised) targets as ``programming`` says
    (open-loop pulses or program-and-verify, :mod:`analog_ep.devices.program`) and returns
    the conductances reached; :meth:`pulse` applies pulse counts directly and
    :meth:`advance` lets time pass (the devices drift). The fixed
    resistors and diodes are drawn once from the device file's ``[fixed]`` tolerances.
    ``pulses`` counts every pulse applied so far.

    ``T`` must be finite. A board at ``T > 0`` with no noise source switched on (injected
    noise off and no Johnson noise) refuses to :meth:`sample` with a :class:`ConfigError`:
    its readings would be noiseless, and a thermal rule dividing their covariance by ``T``
    would return a silent zero gradient; set ``temperature=0`` for noiseless readings.
    """

    def __init__(self, model, temperature: float = 0.0, rng: np.random.Generator | None = None,
                 levels: int | None = None, measured: tuple[str, ...] | None = None,
                 noise: _noise.NoiseModel | None = None, mcmc: MCMCSettings | None = None,
                 device: DeviceSpec | None = None, device_seed=0, programming: Programming | None = None,
                 sampler: str = "auto"):
        self.model: ResistiveModel = model if isinstance(model, ResistiveModel) else compile_network(model)
        if self.model.spice_only:
            raise ConfigError(f"{self.model.name}: {self.model.spice_only} run(s) only in ngspice: "
                              f"use --substrate ngspice")
        if not isinstance(temperature, (int, float, np.integer, np.floating)) or not np.isfinite(temperature) \
                or temperature < 0:
            raise ConfigError(f"temperature must be a finite number >= 0 W, got {temperature!r}")
        self.temperature = float(temperature)
        self.noise = noise if noise is not None else _noise.NoiseModel()
        self.mcmc = mcmc
        self.sampler, self.chain_settings = parse_sampler(sampler)
        self._fallback_said = False
        self._range_said = False
        self.last_diagnostics = None
        self.rng = rng if rng is not None else np.random.default_rng()
        self.levels = levels
        names, self._measured = measured_channels(self.model, measured)
        self.capabilities = Capabilities(measured=tuple(names), nudge=True, batch=True,
                                         temperature=self.temperature, quantised=levels is not None,
                                         clamp_outputs=True)
        self.cost = SquaredCost(tuple(int(i) for i in self.model.outputs))
        self.theta = self.model.default_theta
        self.devices: DeviceArray | None = None
        self.programming = programming if programming is not None else Programming()
        if device is not None:
            self._fabricate(device, device_seed)
        self.inputs = self.model.default_inputs[None, :]
        self.beta = 0.0
        self.targets: np.ndarray | None = None
        self.currents = np.zeros(len(self.model.outputs))
        self.output_clamp: np.ndarray | None = None
        self._metered = 0                           # equilibria metered, and their sums (W, s)
        self._power = self._settling = 0.0
        self._meter_due = True                      # meter the next solve (parameters changed)
        self._held_key = None
        self._s_warm: np.ndarray | None = None

    def __repr__(self) -> str:
        device = "" if self.devices is None else f", device={self.devices.spec.name!r}"
        return (f"EmulatedBoard({self.model!r}, temperature={self.temperature:g} W, "
                f"levels={self.levels}, noise={self.noise!r}{device})")

    def _fabricate(self, spec: DeviceSpec, seed) -> None:
        """Devices for the trainable resistors, and the fixed parts' spread (class docstring)."""
        devices_seq, fixed_seq = np.random.SeedSequence(seed).spawn(2)
        _, hi = self.model.theta_bounds()
        self.devices = fabricate(spec, len(hi), devices_seq, scale=hi / spec.g_max)
        m = self.model
        fixed = np.setdiff1d(np.arange(len(m.g_fixed)), m.trainable)
        # n V_t times (1 + s xi) is n times (1 + s xi), at the same V_t
        g, i_s, nvt = fabricate_fixed(spec.fixed, m.g_fixed[fixed], m.d_is, m.d_nvt,
                                      np.random.default_rng(fixed_seq))
        g_all = m.g_fixed.copy()
        g_all[fixed] = g
        self.model = replace(m, g_fixed=g_all, d_is=i_s, d_nvt=nvt)
        self.theta = self.devices.conductance

    @property
    def pulses(self) -> int:
        """Pulses applied to the devices so far (0 without devices)."""
        return 0 if self.devices is None else self.devices.pulses

    def physical_totals(self) -> dict[str, tuple[float, int | None]]:
        """What the physics has cost so far, as running totals ``name -> (sum, count)``: a
        per-period mean is the change of the sum over the change of the count, a total
        (count None) the change of the sum. Both means are sampled at the first free
        equilibrium after each change of the parameters (once per gradient evaluation or
        evaluation pass), at its first input (minibatches are shuffled):
        ``power_W``, the resistors' dissipation ``sum g dV^2``; ``settling_time_s``, the
        settling time from the node capacitances
        (:func:`~analog_ep.physics.noise.settling_time`). With devices,
        ``pulses``, ``pulses_per_device`` and, when the device file gives its energy per
        pulse, ``write_energy_J``."""
        out = {"power_W": (self._power, self._metered), "settling_time_s": (self._settling, self._metered)}
        if self.devices is not None:
            out["pulses"] = (self.devices.pulses, None)
            out["pulses_per_device"] = (self.devices.pulses / self.devices.n, None)
            if self.devices.spec.energy_per_pulse is not None:
                out["write_energy_J"] = (self.devices.pulses * self.devices.spec.energy_per_pulse, None)
        return out

    def _meter(self, s: np.ndarray) -> None:
        """Add the free equilibrium ``s`` (its first input) to :meth:`physical_totals`: one
        input and one eigenvalue per change of the parameters, not per solve (on networks
        of 1e5 resistors a Hessian costs more than the layered solve)."""
        u, s = self.inputs[:1], s[:1]
        self._power += float(self.model.resistor_power(self.theta, u, s)[0])
        H = self.model.hessian_sparse(self.theta, u, s)
        self._settling += _noise.settling_time(H, _noise.node_capacitances(self.model, self.noise))
        self._metered += 1
        self._meter_due = False

    def quantise(self, theta: np.ndarray) -> np.ndarray:
        """Clip to the bounds and round to the nearest of ``levels`` conductances."""
        lo, hi = self.model.theta_bounds()
        theta = np.clip(np.asarray(theta, dtype=float), lo, hi)
        if self.levels is not None:
            step = (hi - lo) / (self.levels - 1)
            theta = lo + np.round((theta - lo) / step) * step
        return theta

    def set_parameters(self, theta: np.ndarray) -> np.ndarray:
        """Set (or, with devices, program towards) ``theta`` (S); return the conductances
        the network now has."""
        target = self.quantise(theta)
        self.theta = target if self.devices is None else program(self.devices, target, self.programming)
        self._s_warm = None
        self._meter_due = True
        return self.theta.copy()

    def pulse(self, counts) -> np.ndarray:
        """Apply ``counts[j]`` pulses (signed integers) to the device of parameter ``j``;
        return the conductances reached (S)."""
        if self.devices is None:
            raise ConfigError("this emulated board has no devices to pulse; give it a device")
        self.theta = self.devices.pulse(counts)
        self._s_warm = None
        self._meter_due = True
        return self.theta.copy()

    def advance(self, seconds: float) -> np.ndarray:
        """Let ``seconds`` pass on the devices' clock (they drift); return the network's
        conductances now (S)."""
        if self.devices is None:
            raise ConfigError("this emulated board has no devices to drift; give it a device")
        self.devices.advance(seconds)
        self.theta = self.devices.conductance
        self._s_warm = None
        self._meter_due = True
        return self.theta.copy()

    def clamp(self, inputs: np.ndarray) -> None:
        self.inputs = self.model.check_inputs(inputs)
        self._s_warm = None

    def clamp_outputs(self, volts: np.ndarray | None) -> None:
        """Hold outputs at fixed voltages, as a source on each would: ``volts`` (B or 1,
        n_outputs) V in the model's output order, NaN for an output left free (the same
        outputs in every row); None releases them. While held, the held outputs are clamped
        nodes of the equilibrium (a nudge or injected current on them does nothing) and their
        readings are the held voltages."""
        if volts is None:
            self.output_clamp = None
        else:
            v = np.atleast_2d(np.asarray(volts, dtype=float))
            n_out = len(self.model.outputs)
            held = ~np.isnan(v)
            if v.ndim != 2 or v.shape[1] != n_out or np.isinf(v).any() or not (held == held[:1]).all():
                raise ConfigError(f"output clamp: expected finite volts of shape (batch, {n_out}), NaN for a "
                                  f"free output, the same outputs in every row; got shape {v.shape}")
            self.output_clamp = v
        self._s_warm = None

    def _held(self) -> tuple[ResistiveModel, np.ndarray, np.ndarray]:
        """The model with the held outputs as clamped nodes (cached per set of held outputs),
        their positions in the free state and the positions of the others."""
        held = np.asarray(self.model.outputs)[~np.isnan(self.output_clamp[0])]
        key = (id(self.model), tuple(held))
        if self._held_key != key:
            m = self.model
            rest = np.setdiff1d(np.arange(m.n_free), held)
            self._held_model = replace(m, free=m.free[rest], inputs=np.concatenate([m.inputs, m.free[held]]),
                                       outputs=np.zeros(0, dtype=np.intp),
                                       default_inputs=np.concatenate([m.default_inputs, np.zeros(len(held))]))
            self._held_key, self._held_pos = key, (held, rest)
        return (self._held_model,) + self._held_pos

    def nudge(self, beta: float, targets: np.ndarray | None = None) -> None:
        if beta != 0.0 and targets is None:
            raise ConfigError("nudging needs targets")
        self.beta = float(beta)
        self.targets = None if targets is None else np.atleast_2d(np.asarray(targets, dtype=float))

    def nudge_currents(self, currents: np.ndarray) -> None:
        self.currents = np.asarray(currents, dtype=float)

    def _effective_model(self) -> ResistiveModel:
        if not np.any(self.currents):
            return self.model
        injected = self.model.node_current.copy()
        injected[self.model.free[self.model.outputs]] += self.currents
        return replace(self.model, node_current=injected)

    def equilibrium_state(self) -> np.ndarray:
        """Free-node state (B, n_free) at the current settings (held outputs at their volts)."""
        if self.output_clamp is not None:
            m, held, rest = self._held()
            B = max(len(self.inputs), len(self.output_clamp))
            v = np.broadcast_to(self.output_clamp[:, ~np.isnan(self.output_clamp[0])], (B, len(held)))
            u = np.concatenate([np.broadcast_to(self.inputs, (B, self.inputs.shape[1])), v], axis=1)
            s = np.empty((B, self.model.n_free))
            s[:, held] = v
            s[:, rest] = solve_equilibrium(m, self.theta, u).s
            return s
        eq = solve_equilibrium(self._effective_model(), self.theta, self.inputs, cost=self.cost,
                               targets=self.targets, beta=self.beta, s0=self._s_warm)
        self._s_warm = eq.s
        if self._meter_due and self.beta == 0.0 and not np.any(self.currents):
            self._meter(eq.s)
        return eq.s

    def equilibrium(self) -> np.ndarray:
        s = self.equilibrium_state()
        return self.model.voltages(s, self.inputs)[:, self._measured]

    def _settings(self, default: MCMCSettings) -> MCMCSettings:
        """The chains' settings: ``mcmc`` (else the sampler's default) with the sampler spec's
        overrides."""
        return dataclasses.replace(self.mcmc or default, **self.chain_settings)

    def sample(self, n: int) -> np.ndarray:
        """``n`` readings of every measured node, (B, n, n_measured) volts (see the class)."""
        if n < 1:
            raise ConfigError(f"number of samples must be >= 1, got {n}")
        most = max_samples(len(self.inputs), self.model.n_nodes)
        if n > most:
            raise ConfigError(f"{n} readings of {len(self.inputs)} input(s) x {self.model.n_nodes} nodes "
                              f"exceed the emulator's limit of {MAX_VALUES} values per call; ask for at "
                              f"most {most} readings at a time")
        if self.temperature > 0 and not self.noise.has_source(self.temperature):
            raise ConfigError(f"the board is set to T = {self.temperature:g} W but no noise source is "
                              "switched on (injected noise off, no Johnson noise): switch the injected "
                              "noise on, add Johnson noise, or set temperature=0 for noiseless readings")
        if self.temperature > 0 or self.noise.johnson_temperature:
            if self.output_clamp is not None:
                raise ConfigError("thermal readings with held outputs are not emulated; release them "
                                  "(clamp_outputs(None)) or read the equilibrium")
            s = self.sample_state(n)
            B, _, nf = s.shape
            u = np.repeat(self.inputs, n, axis=0) if len(self.inputs) > 1 else self.inputs
            V = self.model.voltages(s.reshape(B * n, nf), u).reshape(B, n, -1)[..., self._measured]
            self._check_reading_range(V)
        else:
            V = np.repeat(self.equilibrium()[:, None, :], n, axis=1)
        return _noise.adc(V, self.noise, self.rng) if self.noise.has_adc else V

    def _check_reading_range(self, V: np.ndarray) -> None:
        """Warn, once per board, when thermal readings leave the ADC range of the emulator
        board profile: a board would clip them, and the noise then swamps the signal."""
        lo, hi = reading_range()
        out = np.flatnonzero((V.min(axis=(0, 1)) < lo) | (V.max(axis=(0, 1)) > hi))
        if self._range_said or not out.size:
            return
        self._range_said = True
        i = out[0]
        column = V[..., i].ravel()
        far = column[np.abs(column).argmax()]
        warnings.warn(f"reading of node {self.capabilities.measured[i]} = {far:.6g} V is outside the ADC "
                      f"range [{lo:g}, {hi:.6g}] V of the emulator board profile"
                      + (f" ({out.size} nodes in all)" if out.size > 1 else "")
                      + f"; at T = {self.temperature:g} W the noise swamps the signal", stacklevel=3)

    def sample_state(self, n: int) -> np.ndarray:
        """Thermal free-node states (B, n, n_free) volts, before the ADC."""
        model = self._effective_model()
        kw = dict(cost=self.cost, targets=self.targets, beta=self.beta)
        if not self.noise.dynamic:
            coupling = self.cost if self.beta != 0.0 else None
            kind, message = choose_sampler(self.model, self.sampler, coupling)
            if message and not self._fallback_said:
                self._fallback_said = True
                warnings.warn(message, SamplerWarning, stacklevel=3)
            if kind == "gaussian":
                return sample_gaussian(model, self.theta, self.inputs, self.temperature, n, self.rng, **kw)
            if kind == "gibbs":
                s, self.last_diagnostics = sample_gibbs(
                    model, self.theta, self.inputs, self.temperature, n, self.rng, s_min=self.equilibrium_state(),
                    settings=self._settings(GIBBS_SETTINGS), colouring=colour_free_nodes(self.model, coupling),
                    **kw)
                return s
            s, self.last_diagnostics = sample_mala(model, self.theta, self.inputs, self.temperature, n,
                                                   self.rng, s_min=self.equilibrium_state(),
                                                   settings=self._settings(MCMCSettings()), **kw)
            return s
        if self.sampler != "auto":
            raise ConfigError(f"the {self.sampler} sampler draws independent Boltzmann readings; this "
                              "board's noise (a time series, or Johnson noise) follows the dynamics instead")
        s0 = self.equilibrium_state()
        u = self.inputs if len(self.inputs) == len(s0) else np.repeat(self.inputs, len(s0), axis=0)
        H = model.hessian(self.theta, u, s0)
        if self.beta != 0.0:
            H = H + self.beta * self.cost.hessian(model.n_free)
        cap = _noise.node_capacitances(model, self.noise)
        D = _noise.noise_intensity(model, self.theta, self.temperature, self.noise)
        dt = self.noise.sample_interval
        if model.is_linear:
            if dt is None:      # independent readings of the stationary (Lyapunov) law
                root = _noise.psd_root(_noise.stationary_covariance(H[0], cap, D))
                return s0[:, None, :] + self.rng.standard_normal((len(s0), n, len(cap))) @ root.T
            return _noise.simulate_linear(_noise.ou_step(H[0], cap, D, dt), s0, n, self.rng)

        energies = {}

        def force(s):                     # rows of s: each input's states, consecutively
            k = len(s) // len(u)
            if k not in energies:
                energies[k] = energy_function(model, self.theta, np.repeat(u, k, axis=0))
            f = -energies[k](s, with_energy=False)[1]
            if self.beta != 0.0:
                d = np.atleast_2d(self.targets)
                f = f - self.beta * self.cost.grad(s, np.repeat(d, k, axis=0) if len(d) > 1 else d)
            return f
        return _noise.simulate_langevin(force, s0, cap, D, H, n, dt, self.rng, substep=self.noise.substep)
