"""Arrays of fabricated devices: conductances that change only by signed integer pulses.

:func:`fabricate` draws every device's own parameters once from a fabrication seed
(``numpy.random.SeedSequence(seed)``: the first child stream fabricates, the second
drives the cycle-to-cycle noise unless an ``rng`` is given). All operations are
vectorised over devices; a pulse train loops over pulse index only, up to the largest
``|count|``. Formulas: docs/devices.md.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import DeviceError
from .response import step_sizes
from .spec import DeviceSpec


def without_noise(spec: DeviceSpec) -> DeviceSpec:
    """The same device with its cycle-to-cycle, update and read noise switched off (its
    fabrication spread, faults and drift unchanged)."""
    return replace(spec, write_noise=0.0, update_noise=0.0, read_noise=0.0)


def _normal(rng: np.random.Generator, mean: float, std: float, n: int, valid) -> np.ndarray:
    """``mean + std xi`` for ``n`` devices, each draw that fails ``valid(values)`` drawn
    again (the normal distribution truncated to the valid set)."""
    values = mean + std * rng.standard_normal(n)
    bad = ~valid(values)
    while bad.any():
        values = np.where(bad, mean + std * rng.standard_normal(n), values)
        bad = ~valid(values)
    return values


class DeviceArray:
    """``n`` devices of one :class:`DeviceSpec`, fabricated from ``seed``.

    Every conductance of the spec is multiplied by ``scale`` (a number or one per device):
    the units in which a device stands for a network parameter (docs/devices.md).

    Per-device arrays (n,): ``g_min``, ``g_max`` (S), ``dg`` (S, the step scale),
    ``alpha`` (asymmetry), ``nu`` (drift exponent), ``stuck`` (bool); counters also
    ``tap`` (int, 0 .. taps - 1, conductance rising with the tap) and ``r_total`` (ohm).
    ``time`` is the array's clock (s), moved by :meth:`advance`; drift runs from each
    device's last write.
    """

    def __init__(self, spec: DeviceSpec, n: int, seed: int | np.random.SeedSequence = 0,
                 rng: np.random.Generator | None = None,
                 scale: float | np.ndarray = 1.0):
        if int(n) < 1:
            raise DeviceError(f"a device array needs at least one device, got {n}")
        self.spec, self.n = spec, int(n)
        self.scale = np.broadcast_to(np.asarray(scale, dtype=float), (self.n,)).copy()
        if not np.all(self.scale > 0):
            raise DeviceError("a device array's conductance scale must be > 0")
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        fab_seq, run_seq = seq.spawn(2)
        fab = np.random.default_rng(fab_seq)
        self.rng = rng if rng is not None else np.random.default_rng(run_seq)
        s, sp, n = spec, spec.spread, self.n
        k = self.scale
        self.dg = _normal(fab, s.dg_min * k, sp.dg_min * s.dg_min * k, n, lambda v: v > 0)
        if s.family == "counter":
            self.r_total = s.shape["r_total"] * (1 + s.shape["tolerance"] * fab.uniform(-1, 1, n))
            self.g_min, self.g_max = self._counter_g(np.zeros(n)), self._counter_g(np.full(n, self.taps - 1))
        else:
            self.g_min = _normal(fab, s.g_min * k, sp.g_min * s.g_min * k, n, lambda v: v > 0)
            self.g_max = _normal(fab, s.g_max * k, sp.g_max * s.g_max * k, n, lambda v: v > self.g_min)
        self.alpha = _normal(fab, s.asymmetry, sp.asymmetry, n, lambda v: np.abs(v) < 1)
        self.nu = np.maximum(s.drift.nu * (1 + s.drift.nu_spread * fab.standard_normal(n)), 0.0)
        self.stuck = fab.random(n) < s.faults.stuck
        where = fab.random(n)          # position of a stuck device, if stuck at random
        if s.faults.stuck_at != "random":
            where[:] = 0.0 if s.faults.stuck_at == "g_min" else 1.0
        position = np.where(self.stuck, where, s.initial)
        if s.family == "counter":
            self.tap = np.rint(position * (self.taps - 1)).astype(np.int64)
            self._g = self._counter_g(self.tap)
        else:
            self._g = self.g_min + position * (self.g_max - self.g_min)
        self.time = 0.0
        self._t_write = np.zeros(n)
        self._offset = np.zeros(n)
        self.pulses = 0            # pulses applied so far, summed over devices

    def __repr__(self) -> str:
        return f"DeviceArray({self.spec.name!r}, n={self.n}, family={self.spec.family!r})"

    @property
    def taps(self) -> int:
        return int(self.spec.shape["taps"])

    def _counter_g(self, tap: np.ndarray) -> np.ndarray:
        """Conductance (S) of counters at ``tap``: ``1/(r_series + r_wiper + r_total (1 - k/(taps - 1)))``."""
        sh = self.spec.shape
        return self.scale / (sh["r_series"] + sh["r_wiper"] + self.r_total * (1 - tap / (self.taps - 1)))

    def counter_tap(self, g: np.ndarray) -> np.ndarray:
        """The (real) tap at which counters would show conductances ``g``: the inverse of
        the tap's conductance."""
        sh = self.spec.shape
        return (self.taps - 1) * (1 - (self.scale / g - sh["r_series"] - sh["r_wiper"]) / self.r_total)

    def _drift_factor(self) -> np.ndarray:
        """``((t - t_w)/t0)^-nu`` once ``t - t_w > t0``, else 1."""
        age = np.maximum((self.time - self._t_write) / self.spec.drift.t0, 1.0)
        return age ** -self.nu

    @property
    def conductance(self) -> np.ndarray:
        """(n,) S each device shows now: its state after drift, plus its update-noise
        offset, within its bounds (no read noise; see :meth:`read`)."""
        g = np.clip(self._g * self._drift_factor() + self._offset, self.g_min, self.g_max)
        return np.where(self.stuck, self._g, g)

    def read(self) -> np.ndarray:
        """(n,) S as a measurement sees them: :attr:`conductance` plus read noise
        (``read_noise (g_max - g_min) xi``), at least 0."""
        g = self.conductance
        if self.spec.read_noise:
            g = np.maximum(g + self.spec.read_noise * (self.g_max - self.g_min) * self.rng.standard_normal(self.n), 0.0)
        return g

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds`` (>= 0): drift proceeds."""
        if not seconds >= 0:
            raise DeviceError(f"time only runs forward, got {seconds!r} s")
        self.time += float(seconds)

    def pulse(self, counts) -> np.ndarray:
        """Apply ``counts[i]`` pulses to device ``i`` (up if positive, down if negative);
        return the conductances reached (S, as :attr:`conductance`). Stuck devices do not
        move; a pulsed device's drift restarts from its state when pulsed."""
        counts = np.asarray(counts)
        if counts.shape != (self.n,) or not (np.issubdtype(counts.dtype, np.integer)
                                              or np.all(counts == np.rint(counts))):
            raise DeviceError(f"pulse counts must be {self.n} integers, got shape {counts.shape} "
                              f"of {counts.dtype}")
        counts = counts.astype(np.int64)
        move = (counts != 0) & ~self.stuck
        self.pulses += int(np.abs(counts[move]).sum())
        if not move.any():
            return self.conductance
        self._g[move] = np.clip(self._g[move] * self._drift_factor()[move], self.g_min[move], self.g_max[move])
        self._t_write[move] = self.time
        if self.spec.family == "counter":
            self.tap[move] = np.clip(self.tap[move] + counts[move], 0, self.taps - 1)
            self._g[move] = self._counter_g(self.tap)[move]
        else:
            self._pulse_train(counts, move)
        if self.spec.update_noise:
            idx = np.flatnonzero(move)
            self._offset[idx] = (self.spec.update_noise * (self.g_max - self.g_min)[idx]
                                 * self.rng.standard_normal(len(idx)))
        return self.conductance

    def set_exactly(self, target: np.ndarray) -> np.ndarray:
        """An ideal device's programming: every device that is not stuck is set to its
        ``target`` (S) within its bounds, a write with no pulses; returns the conductances."""
        if self.spec.family != "ideal":
            raise DeviceError(f"only an ideal device is set exactly; {self.spec.name} ({self.spec.family}) "
                              "moves by pulses")
        target = np.broadcast_to(np.asarray(target, dtype=float), (self.n,))
        free = ~self.stuck
        self._g[free] = np.clip(target[free], self.g_min[free], self.g_max[free])
        self._t_write[free] = self.time
        return self.conductance

    def _pulse_train(self, counts: np.ndarray, move: np.ndarray) -> None:
        """One pulse at a time to every device with pulses left (see docs/devices.md)."""
        s = self.spec
        direction, left = np.sign(counts), np.abs(counts) * move
        for p in range(int(left.max())):
            idx = np.flatnonzero(left > p)
            d, lo, hi = direction[idx], self.g_min[idx], self.g_max[idx]
            g, dg, alpha = self._g[idx], self.dg[idx], self.alpha[idx]
            up, down = step_sizes(s.family, s.shape, g, lo, hi, dg, alpha)
            step = np.where(d > 0, up, down)
            if s.write_noise:
                xi = self.rng.standard_normal(len(idx))
                if s.write_noise_kind == "multiplicative":
                    step = step * (1 + s.write_noise * xi)
                else:
                    step = step + s.write_noise * dg * xi
            self._g[idx] = np.clip(g + d * step, lo, hi)

    def pulse_sequence(self, counts_per_step: np.ndarray) -> np.ndarray:
        """Apply rows of pulse counts one after another; return (steps + 1, n) S: the
        conductances before the first row and after each row."""
        out = [self.conductance]
        for row in np.asarray(counts_per_step):
            out.append(self.pulse(row))
        return np.array(out)


#: The stream of a run's root seed that fabricates its devices (``[seed, DEVICE_STREAM]``).
DEVICE_STREAM = 5


def device_seed(seed: int) -> list[int]:
    """The fabrication seed of the devices of a run or command with root seed ``seed``: the
    same fabrication for ``train``, ``emulate``, ``gradient``, ``calibrate`` and
    ``board-emulator``."""
    return [int(seed), DEVICE_STREAM]


def fabricate(spec: DeviceSpec, n: int, seed: int | np.random.SeedSequence = 0,
              rng: np.random.Generator | None = None,
              scale: float | np.ndarray = 1.0) -> DeviceArray:
    """``n`` devices of ``spec`` drawn from the fabrication ``seed``, conductances times
    ``scale`` (see :class:`DeviceArray`)."""
    return DeviceArray(spec, n, seed, rng, scale)


def up_down_train(array: DeviceArray, up: int, down: int) -> np.ndarray:
    """(up + down + 1, n) S: every device of ``array`` before, then after each pulse of an
    up train of ``up`` pulses followed by a down train of ``down`` pulses."""
    ones = np.ones((1, array.n), dtype=np.int64)
    return array.pulse_sequence(np.concatenate([np.repeat(ones, up, 0), np.repeat(-ones, down, 0)]))
