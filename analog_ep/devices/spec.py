"""Device specifications: what one kind of programmable conductance is, read from a TOML
file or a bundled preset (``analog_ep/resources/devices/*.toml``).

A file holds top-level keys (``name``, ``family``, the conductance range and step, noise)
and the tables ``[spread]`` (device-to-device, drawn once at fabrication), ``[drift]``,
``[faults]``, ``[fixed]`` (tolerances of the fixed resistors and diodes of the same
board) and one table named after the family for its shape parameters (``[linear-step]``,
``[exp-step]``, ``[counter]``). Every key, its unit and its formula: ``docs/devices.md``.
Anything the reader does not know, or a value out of its range, is a
:class:`~analog_ep.errors.DeviceError` naming the file and the key.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DeviceError
from ..resources import bundled_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Response families, in the order of docs/devices.md.
FAMILIES = ("ideal", "constant-step", "linear-step", "soft-bounds", "exp-step", "counter")

#: Families whose steps are exact: no asymmetry, no write or update noise.
EXACT_FAMILIES = ("ideal", "counter")

#: Shape parameters of the families that have a table of their own, with defaults.
SHAPE_DEFAULTS: dict[str, dict[str, float]] = {
    "linear-step": {"gamma_up": 0.0, "gamma_down": 0.0, "reference": 0.5},
    "exp-step": {"a": 0.0, "b": 0.0, "gamma_up": 0.0, "gamma_down": 0.0, "A_up": 0.0, "A_down": 0.0,
                 "reference": 0.5},
    "counter": {"taps": 100, "r_total": 1e4, "r_wiper": 0.0, "r_series": 0.0, "tolerance": 0.0},
}

#: States of an ideal device whose file gives neither ``dg_min`` nor ``states``.
IDEAL_STATES = 1000

NOISE_KINDS = ("multiplicative", "additive")
STUCK_AT = ("g_min", "g_max", "random")


@dataclass(frozen=True)
class Spread:
    """Device-to-device spread, drawn once at fabrication: relative standard deviations of
    ``dg_min``, ``g_min`` and ``g_max`` (each value times ``1 + spread xi``) and the absolute
    standard deviation of the asymmetry. All in [0, 1)."""

    dg_min: float = 0.0
    g_min: float = 0.0
    g_max: float = 0.0
    asymmetry: float = 0.0


@dataclass(frozen=True)
class Drift:
    """Power-law drift ``g(t) = g(t_w) ((t - t_w)/t0)^-nu`` for ``t - t_w > t0`` after a
    write at ``t_w`` (seconds); ``nu`` of each device is ``nu (1 + nu_spread xi)``, >= 0."""

    nu: float = 0.0
    nu_spread: float = 0.0
    t0: float = 1.0


@dataclass(frozen=True)
class Faults:
    """A fraction ``stuck`` of the devices, chosen at fabrication, never moves: stuck at
    its ``g_min``, its ``g_max`` or a uniform random conductance between them."""

    stuck: float = 0.0
    stuck_at: str = "random"


@dataclass(frozen=True)
class FixedSpread:
    """Fabrication spread of the board's fixed parts: resistors within ``resistor_tolerance``
    (uniform, relative), diode ``I_s`` log-normal with ``diode_i_s_spread`` the standard
    deviation of ``ln I_s``, diode ``n`` times ``1 + diode_n_spread xi``."""

    resistor_tolerance: float = 0.0
    diode_i_s_spread: float = 0.0
    diode_n_spread: float = 0.0


@dataclass(frozen=True)
class DeviceSpec:
    """One kind of device. Conductances in siemens, times in seconds, noise as fractions
    (see docs/devices.md).

    ``dg_min`` is the nominal step at the family's reference point (``g_min`` for constant
    step and soft bounds); ``asymmetry`` scales up steps by ``1 + asymmetry`` and down steps
    by ``1 - asymmetry``; ``write_noise`` is the cycle-to-cycle relative standard deviation
    of every step (``write_noise_kind``: the step times ``1 + write_noise xi``, or plus
    ``write_noise dg xi``); ``update_noise`` (fraction of the range) is an offset between the
    stored state and the conductance shown, redrawn each time the device is pulsed;
    ``read_noise`` (fraction of the range) is added to every read; ``initial`` is the
    fabricated conductance as a fraction of each device's range; ``energy_per_pulse`` (J)
    the energy one pulse costs, None when the file does not say. For a counter ``g_min``,
    ``g_max`` and ``dg_min`` follow from ``shape`` (taps and resistances)."""

    name: str
    family: str
    g_min: float
    g_max: float
    dg_min: float
    asymmetry: float = 0.0
    write_noise: float = 0.0
    write_noise_kind: str = "multiplicative"
    update_noise: float = 0.0
    read_noise: float = 0.0
    initial: float = 0.0
    energy_per_pulse: float | None = None
    spread: Spread = field(default_factory=Spread)
    drift: Drift = field(default_factory=Drift)
    faults: Faults = field(default_factory=Faults)
    fixed: FixedSpread = field(default_factory=FixedSpread)
    shape: dict = field(default_factory=dict)
    description: str = ""
    references: tuple[str, ...] = ()
    source: str = "<spec>"

    @property
    def states(self) -> int:
        """Number of conductance states: taps of a counter, else ``(g_max - g_min)/dg_min``
        rounded (the pulses from ``g_min`` to ``g_max`` at the nominal step, + 1)."""
        if self.family == "counter":
            return int(self.shape["taps"])
        return int(round((self.g_max - self.g_min) / self.dg_min)) + 1


def counter_range(shape: dict) -> tuple[float, float]:
    """(g_min, g_max) S of a nominal counter: all of ``r_total`` in series, then none."""
    fixed = shape["r_series"] + shape["r_wiper"]
    return 1.0 / (fixed + shape["r_total"]), (1.0 / fixed if fixed > 0 else math.inf)


# ----- reading ---------------------------------------------------------------------------------

def device_presets() -> list[str]:
    """Names of the bundled device presets."""
    return sorted(p.stem for p in bundled_path("devices", "").glob("*.toml"))


def device_path(name_or_path: str | Path) -> Path:
    """A device file's path: an existing file, else a bundled preset's name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = bundled_path("devices", f"{name_or_path}.toml")
    if str(name_or_path) and "/" not in str(name_or_path) and bundled.is_file():
        return bundled
    raise DeviceError(f"{name_or_path}: no such device file or preset (presets: {', '.join(device_presets())})")


def load_device(name_or_path: str | Path) -> DeviceSpec:
    """Read and validate a device file or bundled preset; errors name the file and the key."""
    path = device_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DeviceError(f"{path}: {exc}") from None
    return device_from_dict(data, str(path))


_TOP = ("name", "family", "description", "references", "g_min", "g_max", "dg_min", "states",
        "asymmetry", "write_noise", "write_noise_kind", "update_noise", "read_noise", "initial",
        "energy_per_pulse")
_TABLES = ("spread", "drift", "faults", "fixed")


def device_from_dict(data: dict, source: str = "<spec>") -> DeviceSpec:
    """Build a :class:`DeviceSpec` from parsed TOML tables (layout: docs/devices.md)."""
    def fail(key: str, message: str):
        raise DeviceError(f"{source}: {key}: {message}")

    family = data.get("family")
    if family not in FAMILIES:
        fail("family", f"expected one of {', '.join(FAMILIES)}, got {family!r}")
    shape_table = family if family in SHAPE_DEFAULTS else None
    for key, value in data.items():
        if key in _TABLES or key == shape_table:
            if not isinstance(value, dict):
                fail(key, "expected a table")
        elif key in SHAPE_DEFAULTS:
            fail(key, f"a [{key}] table does not apply to family {family!r}")
        elif key not in _TOP:
            fail(key, f"unknown key (known: {', '.join(_TOP + _TABLES)})")

    def num(table: dict, key: str, default, where: str = "", lo=-math.inf, hi=math.inf,
            lo_open=False, hi_open=False, integer=False) -> float:
        name = f"{where}.{key}" if where else key
        if key not in table:
            if default is None:
                fail(name, "is required")
            return default
        v = table[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            fail(name, f"expected {'an integer' if integer else 'a number'}, got {v!r}")
        if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
            if hi == math.inf:
                fail(name, f"{v!r} is outside the allowed values: must be {'>' if lo_open else '>='} {lo:g}")
            lo_s = "(" if lo_open else "["
            hi_s = ")" if hi_open else "]"
            fail(name, f"{v!r} is outside {lo_s}{lo:g}, {hi:g}{hi_s}")
        return int(v) if integer else float(v)

    def table(name: str, known: tuple[str, ...]) -> dict:
        t = data.get(name, {})
        for key in t:
            if key not in known:
                fail(f"{name}.{key}", f"unknown key (known: {', '.join(known)})")
        return t

    def choice(key: str, options: tuple[str, ...], default: str, t: dict | None = None, where="") -> str:
        v = (data if t is None else t).get(key, default)
        if v not in options:
            fail(f"{where}.{key}" if where else key, f"expected one of {', '.join(options)}, got {v!r}")
        return v

    def spreads(name: str, cls):
        keys = tuple(cls.__dataclass_fields__)
        t = table(name, keys)
        return {k: num(t, k, 0.0, name, 0.0, 1.0, hi_open=True) for k in keys if k in t}

    shape = dict(SHAPE_DEFAULTS.get(family, {}))
    if shape_table:
        t = table(shape_table, tuple(shape))
        for key, default in SHAPE_DEFAULTS[family].items():
            if family == "counter":
                limits = {"taps": dict(lo=2, integer=True), "r_total": dict(lo=0.0, lo_open=True),
                          "tolerance": dict(lo=0.0, hi=1.0, hi_open=True)}.get(key, dict(lo=0.0))
            elif key == "reference":
                limits = dict(lo=0.0, hi=1.0, lo_open=family == "linear-step", hi_open=family == "linear-step")
            else:
                limits = {}
            shape[key] = num(t, key, default, shape_table, **limits)

    if family == "counter":
        for key in ("g_min", "g_max", "dg_min", "states"):
            if key in data:
                fail(key, "does not apply to a counter (it follows from [counter] taps and resistances)")
        g_min, g_max = counter_range(shape)
        if not math.isfinite(g_max):
            fail("counter.r_wiper", "a counter needs r_wiper + r_series > 0 (its top tap would short)")
        dg_min = (g_max - g_min) / (shape["taps"] - 1)
    else:
        g_min = num(data, "g_min", None, lo=0.0, lo_open=True)
        g_max = num(data, "g_max", None, lo=0.0, lo_open=True)
        if g_min >= g_max:
            fail("g_min", f"must be below g_max ({g_min!r} >= {g_max!r})")
        if "dg_min" in data and "states" in data:
            fail("dg_min", "give dg_min or states, not both")
        if "states" in data:
            dg_min = (g_max - g_min) / (num(data, "states", None, lo=2, integer=True) - 1)
        elif "dg_min" in data or family != "ideal":
            dg_min = num(data, "dg_min", None, lo=0.0, lo_open=True)
        else:
            dg_min = (g_max - g_min) / (IDEAL_STATES - 1)

    exact = family in EXACT_FAMILIES
    for key in ("asymmetry", "write_noise", "update_noise", "write_noise_kind"):
        if exact and key in data:
            fail(key, f"does not apply to family {family!r} (its steps are exact)")
    spread = spreads("spread", Spread)
    if exact:
        for key in ("dg_min", "asymmetry"):
            if key in spread:
                fail(f"spread.{key}", f"does not apply to family {family!r} (its steps are exact)")
        if family == "counter" and spread:
            fail(f"spread.{next(iter(spread))}", "a counter's spread is [counter] tolerance")
    drift_t = table("drift", tuple(Drift.__dataclass_fields__))
    faults_t = table("faults", tuple(Faults.__dataclass_fields__))
    refs = data.get("references", [])
    if not (isinstance(refs, list) and all(isinstance(r, str) for r in refs)):
        fail("references", "expected a list of strings")
    return DeviceSpec(
        name=str(data.get("name", Path(source).stem)), family=family, g_min=g_min, g_max=g_max,
        dg_min=dg_min,
        asymmetry=num(data, "asymmetry", 0.0, lo=-1.0, hi=1.0, lo_open=True, hi_open=True),
        write_noise=num(data, "write_noise", 0.0, lo=0.0),
        write_noise_kind=choice("write_noise_kind", NOISE_KINDS, "multiplicative"),
        update_noise=num(data, "update_noise", 0.0, lo=0.0),
        read_noise=num(data, "read_noise", 0.0, lo=0.0),
        initial=num(data, "initial", 0.0, lo=0.0, hi=1.0),
        energy_per_pulse=num(data, "energy_per_pulse", None, lo=0.0) if "energy_per_pulse" in data else None,
        spread=Spread(**spread),
        drift=Drift(nu=num(drift_t, "nu", 0.0, "drift", lo=0.0),
                    nu_spread=num(drift_t, "nu_spread", 0.0, "drift", 0.0, 1.0, hi_open=True),
                    t0=num(drift_t, "t0", 1.0, "drift", lo=0.0, lo_open=True)),
        faults=Faults(stuck=num(faults_t, "stuck", 0.0, "faults", 0.0, 1.0),
                      stuck_at=choice("stuck_at", STUCK_AT, "random", faults_t, "faults")),
        fixed=FixedSpread(**spreads("fixed", FixedSpread)),
        shape=shape, description=str(data.get("description", "")), references=tuple(refs),
        source=source)
