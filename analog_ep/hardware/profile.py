"""Board profiles (``drivers/boards/*.toml``): channel maps, ranges and levels of a board,
and the conversions between physical values and wire codes.

A profile names the network elements, inputs, measured nodes and nudged outputs wired to
each channel, in channel order. A section that omits ``names`` is a template: it is bound
to a network by :meth:`BoardProfile.bind` (elements = the trainable edges, inputs = the
input nodes, measured = every node, as the in-process emulator reads them, nudge = the
outputs). Conversions (all vectorised):

- conductance: the nearest of the element's ``levels`` (S), indexed by code;
- DAC: ``V = v_min + code (v_max - v_min) / (2^bits - 1)``, codes rounded to nearest;
- ADC: the same map from code to volts, then the ADC calibration ``V = gain V + offset``;
- nudge current: ``I = code i_max / (2^(bits-1) - 1)``, signed codes.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import ProfileError
from .protocol import INDEX

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Upper limits the board emulator declares for averaging, intervals and settle times.
MAX_AVERAGE = 65535
MAX_INTERVAL_US = 10_000_000
MAX_SETTLE_US = 10_000_000
#: Capability keys that must agree between a board and its profile.
CHECKED_CAPS = ("elements", "levels", "dacs", "dac_bits", "adcs", "adc_bits", "nudges", "nudge_bits")


@dataclass(frozen=True)
class Channels:
    """One kind of channel: names (None in a template), bit count, range (lo, hi)."""

    names: tuple[str, ...] | None
    bits: int
    lo: float
    hi: float

    @property
    def full_scale(self) -> int:
        return (1 << self.bits) - 1


@dataclass(frozen=True)
class BoardProfile:
    """A board: its channels, conversion ranges, conductance levels and link settings.

    Times in seconds unless suffixed ``_us``; conductances in siemens, volts, amperes.
    ``levels`` is the (L,) conductance of each element code; ``non_idempotent`` lists
    command headers that must never be retried (an up/down-counter potentiometer steps
    relative to where it is, so a repeated set is not harmless). ``max_pulse``: the largest
    pulse count per element in one ``ELEM:PULS`` (``[elements] max_pulse``; default and
    upper bound ``min(levels - 1, 32767)``); the host splits larger counts.
    """

    name: str
    source: str
    elements: tuple[str, ...] | None
    levels: np.ndarray
    inputs: Channels
    measured: Channels
    nudge: Channels | None
    baudrate: int = 115200
    timeout: float = 1.0
    open_settle: float = 2.0
    max_block: int = 65536
    max_line: int = 1024
    settle_us: int = 1000
    average: int = 16
    interval_us: int = 0
    retries: int = 2
    non_idempotent: tuple[str, ...] = ()
    temperature: float | None = None
    capacitance: dict[str, float] = field(default_factory=dict)
    max_pulse: int | None = None

    def __repr__(self) -> str:
        return (f"BoardProfile({self.name!r}, {len(self.levels)} levels, "
                f"DAC {self.inputs.bits} bit [{self.inputs.lo:g}, {self.inputs.hi:g}] V, "
                f"ADC {self.measured.bits} bit [{self.measured.lo:g}, {self.measured.hi:g}] V, "
                f"nudge={'none' if self.nudge is None else f'{self.nudge.bits} bit'})")

    @property
    def is_template(self) -> bool:
        return (self.elements is None or self.inputs.names is None or self.measured.names is None
                or (self.nudge is not None and self.nudge.names is None))

    def bind(self, param_names, input_names, output_names, node_names) -> "BoardProfile":
        """Fill the names a template leaves open from a network; check the ones it gives."""
        def pick(given, default):
            return tuple(default if given is None else given)
        p = dataclasses.replace(
            self,
            elements=pick(self.elements, param_names),
            inputs=dataclasses.replace(self.inputs, names=pick(self.inputs.names, input_names)),
            measured=dataclasses.replace(self.measured,
                                         names=pick(self.measured.names, node_names)),
            nudge=None if self.nudge is None else dataclasses.replace(
                self.nudge, names=pick(self.nudge.names, output_names)))
        p.check_network(param_names, input_names, output_names)
        return p

    def check_network(self, param_names, input_names, output_names) -> None:
        """Every trainable parameter needs an element channel, every input a DAC, and
        nudging needs a current source on every output."""
        for what, needed, have in (("trainable element", param_names, self.elements),
                                   ("input", input_names, self.inputs.names)):
            missing = [n for n in needed if n not in have]
            if missing:
                raise ProfileError(f"{self.source}: board has no channel for {what}(s) "
                                   f"{name_list(missing)} ({len(have)} {what} channels for "
                                   f"{len(needed)} in the network)")
        if self.nudge is not None:
            missing = [n for n in output_names if n not in self.nudge.names]
            if missing:
                raise ProfileError(f"{self.source}: board has no nudge source on output(s) "
                                   f"{name_list(missing)}")

    def capabilities(self) -> dict[str, int]:
        """The capability table (``SYST:CAP?``) a board with this profile declares."""
        if self.is_template:
            raise ProfileError(f"{self.source}: template profile must be bound to a network first")
        return {"elements": len(self.elements), "levels": len(self.levels),
                "dacs": len(self.inputs.names), "dac_bits": self.inputs.bits,
                "adcs": len(self.measured.names), "adc_bits": self.measured.bits,
                "nudges": 0 if self.nudge is None else len(self.nudge.names),
                "nudge_bits": 0 if self.nudge is None else self.nudge.bits,
                "maxline": self.max_line, "maxblock": self.max_block, "maxavg": MAX_AVERAGE,
                "maxinterval": MAX_INTERVAL_US, "maxsettle": MAX_SETTLE_US}

    def check_board(self, caps: dict[str, int], board: str, channel_map) -> None:
        """Refuse (ProfileError) a board whose capabilities ``caps`` (``SYST:CAP?``) or
        channel labels (``channel_map(kind)``: the ``CHAN:MAP?`` reply of a kind) disagree
        with this bound profile; ``board`` names it in the message."""
        want = self.capabilities()
        bad = [f"{k}={caps[k]} (profile: {want[k]})" for k in CHECKED_CAPS if caps[k] != want[k]]
        if bad:
            raise ProfileError(f"{self.source}: board {board} disagrees with this profile: {', '.join(bad)}; "
                               f"give the board's own profile (--profile FILE or a bundled name)")
        for kind, labels in self.labels().items():
            if not labels:
                continue
            got = channel_map(kind).split(",")
            if got != labels:
                raise ProfileError(f"{self.source}: board's {kind} channels are {','.join(got)}, "
                                   f"profile says {','.join(labels)}")

    def labels(self) -> dict[str, list[str]]:
        """Channel labels per kind (``CHAN:MAP?``)."""
        return {"ELEM": list(self.elements), "DAC": list(self.inputs.names),
                "ADC": list(self.measured.names),
                "NUDG": [] if self.nudge is None else list(self.nudge.names)}

    # -- conversions ---------------------------------------------------------------

    def element_codes(self, g: np.ndarray) -> np.ndarray:
        """Nearest level code of each conductance (S), any shape; O(n log L)."""
        g = np.asarray(g, dtype=float)
        order = np.argsort(self.levels, kind="stable")
        srt = self.levels[order]
        j = np.clip(np.searchsorted(srt, g), 1, len(srt) - 1)
        below = np.abs(g - srt[j - 1]) <= np.abs(srt[j] - g)
        return order[np.where(below, j - 1, j)]

    def element_values(self, codes: np.ndarray) -> np.ndarray:
        return self.levels[np.asarray(codes, dtype=np.intp)]

    def dac_codes(self, volts: np.ndarray) -> np.ndarray:
        """DAC codes of input voltages (..., n_inputs); out of range raises ProfileError
        naming the input."""
        return _codes(volts, self.inputs, "input")

    def dac_volts(self, codes: np.ndarray) -> np.ndarray:
        return _volts(codes, self.inputs)

    def adc_codes(self, volts: np.ndarray) -> np.ndarray:
        """What the ADC reads: codes rounded to nearest and clipped to the rails."""
        ch = self.measured
        x = (np.asarray(volts, dtype=float) - ch.lo) * (ch.full_scale / (ch.hi - ch.lo))
        return np.clip(np.rint(x), 0, ch.full_scale).astype(np.int64)

    def adc_volts(self, codes: np.ndarray) -> np.ndarray:
        return _volts(codes, self.measured)

    def nudge_codes(self, currents: np.ndarray) -> np.ndarray:
        """Signed codes of output currents (A); beyond ``i_max`` raises ProfileError."""
        ch = self._nudge_channels()
        m = (1 << (ch.bits - 1)) - 1
        i = np.asarray(currents, dtype=float)
        bad = np.flatnonzero(~(np.abs(i) <= ch.hi * (1 + 1e-9)))
        if bad.size:
            k = int(bad[0])
            raise ProfileError(f"{self.source}: nudge current {i.flat[k]:g} A on output "
                               f"{_channel_name(ch, k, i.shape)} exceeds the source's {ch.hi:g} A")
        return np.rint(i * (m / ch.hi)).astype(np.int64)

    def nudge_currents(self, codes: np.ndarray) -> np.ndarray:
        ch = self._nudge_channels()
        return np.asarray(codes, dtype=float) * (ch.hi / ((1 << (ch.bits - 1)) - 1))

    def _nudge_channels(self) -> Channels:
        if self.nudge is None:
            raise ProfileError(f"{self.source}: this board has no nudge current sources")
        return self.nudge


def name_list(names, shown: int = 8) -> str:
    """``a, b, c`` for a few names, ``a, ..., h and 2992 more`` for many."""
    names = list(names)
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def _codes(volts, ch: Channels, what: str) -> np.ndarray:
    v = np.asarray(volts, dtype=float)
    tol = 1e-9 * (ch.hi - ch.lo)
    bad = np.flatnonzero(~((v >= ch.lo - tol) & (v <= ch.hi + tol)))
    if bad.size:
        k = int(bad[0])
        raise ProfileError(f"{what} {_channel_name(ch, k, v.shape)}: {v.flat[k]:g} V is outside "
                           f"the DAC range [{ch.lo:g}, {ch.hi:g}] V")
    x = (np.clip(v, ch.lo, ch.hi) - ch.lo) * (ch.full_scale / (ch.hi - ch.lo))
    return np.rint(x).astype(np.int64)


def _channel_name(ch: Channels, flat_index: int, shape) -> str:
    k = flat_index % shape[-1] if len(shape) else 0
    return ch.names[k] if ch.names else f"channel {k}"


def _volts(codes, ch: Channels) -> np.ndarray:
    return ch.lo + np.asarray(codes, dtype=float) * ((ch.hi - ch.lo) / ch.full_scale)


# -- loading -------------------------------------------------------------------------

def profile_path(name_or_path: str | Path) -> Path:
    """A path, or the stem of a bundled profile (``emulator``, ``pico``, ...)."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise ProfileError(f"{p}: no such board profile")
        return p
    bundled = resources.files("analog_ep.resources") / "boards" / f"{name_or_path}.toml"
    if not bundled.is_file():
        names = sorted(f.name[:-5] for f in (resources.files("analog_ep.resources") / "boards").iterdir()
                       if f.name.endswith(".toml"))
        raise ProfileError(f"{name_or_path}: no such board profile (bundled: {', '.join(names)})")
    return Path(str(bundled))


def profile_reference(profile: BoardProfile) -> str:
    """How to load ``profile`` again: a bundled profile's name, else its file's absolute path."""
    path = Path(profile.source)
    bundled = Path(str(resources.files("analog_ep.resources") / "boards"))
    if path.suffix == ".toml" and path.parent.resolve() == bundled.resolve() \
            and (bundled / path.name).is_file():
        return path.stem
    return str(path.resolve()) if path.exists() else profile.source


def load_profile(name_or_path: str | Path) -> BoardProfile:
    """Read and validate a board profile; errors name the file and the key."""
    path = profile_path(name_or_path)
    src = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{src}: {exc}") from None
    return profile_from_dict(data, src)


def profile_from_dict(data: dict, source: str = "<profile>") -> BoardProfile:
    """Build a profile from the parsed TOML tables (see ``drivers/boards/emulator.toml``)."""
    def table(key, required=True):
        t = data.get(key)
        if t is None and not required:
            return None
        if not isinstance(t, dict):
            raise ProfileError(f"{source}: missing table [{key}]")
        return t

    def num(t, section, key, kind=float, default=None, positive=False):
        if key not in t:
            if default is None:
                raise ProfileError(f"{source}: [{section}] {key} is required")
            return default
        v = t[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
            raise ProfileError(f"{source}: [{section}] {key} must be {'an integer' if kind is int else 'a number'}")
        if not math.isfinite(v) or (positive and v <= 0):
            raise ProfileError(f"{source}: [{section}] {key} must be {'> 0' if positive else 'finite'}")
        return kind(v)

    def names(t, section):
        n = t.get("names")
        if n is None:
            return None
        if not isinstance(n, list) or not all(isinstance(x, str) and x for x in n) or len(set(n)) != len(n):
            raise ProfileError(f"{source}: [{section}] names must be a list of distinct strings")
        return tuple(n)

    def channels(section, lo_key, hi_key, required=True):
        t = table(section, required)
        if t is None:
            return None
        bits = num(t, section, "bits", int)
        if not 1 <= bits <= 16:
            raise ProfileError(f"{source}: [{section}] bits must be 1..16 (codes travel as 16-bit words)")
        lo = num(t, section, lo_key, default=0.0) if lo_key else 0.0
        hi = num(t, section, hi_key)
        if hi <= lo:
            raise ProfileError(f"{source}: [{section}] needs {lo_key} < {hi_key}")
        return Channels(names(t, section), bits, lo, hi)

    board = table("board")
    el = table("elements")
    levels = _levels(el, source, num)
    inputs = channels("inputs", "v_min", "v_max")
    measured = channels("measured", "v_min", "v_max")
    nudge = channels("nudge", None, "i_max", required=False)
    if nudge is not None and nudge.bits < 2:
        raise ProfileError(f"{source}: [nudge] bits must be >= 2 (signed codes)")
    non_idem = board.get("non_idempotent", [])
    if not isinstance(non_idem, list) or not all(isinstance(h, str) for h in non_idem):
        raise ProfileError(f"{source}: [board] non_idempotent must be a list of command headers")
    unknown = [h for h in non_idem if h.upper() not in INDEX]
    if unknown:
        raise ProfileError(f"{source}: [board] non_idempotent: unknown command(s) {', '.join(unknown)}")
    cap = data.get("capacitance", {})
    if not isinstance(cap, dict) or not all(isinstance(v, (int, float)) and v > 0 for v in cap.values()):
        raise ProfileError(f"{source}: [capacitance] must map node names to farads > 0")
    temperature = board.get("temperature")
    if temperature is not None:
        temperature = num(board, "board", "temperature")
    most = min(len(levels) - 1, 32767)      # counts travel as int16
    max_pulse = num(el, "elements", "max_pulse", int, most, True)
    if max_pulse > most:
        raise ProfileError(f"{source}: [elements] max_pulse must be at most {most} "
                           f"(levels - 1, and 32767: counts are 16-bit words)")
    return BoardProfile(
        name=str(board.get("name", Path(source).stem)), source=source,
        elements=names(el, "elements"), levels=levels, inputs=inputs, measured=measured,
        nudge=nudge,
        baudrate=num(board, "board", "baudrate", int, 115200, True),
        timeout=num(board, "board", "timeout", float, 1.0, True),
        open_settle=num(board, "board", "open_settle", float, 2.0, True),
        max_block=num(board, "board", "max_block", int, 65536, True),
        max_line=num(board, "board", "max_line", int, 1024, True),
        settle_us=num(board, "board", "settle_us", int, 1000),
        average=num(board, "board", "average", int, 16, True),
        interval_us=num(board, "board", "interval_us", int, 0),
        retries=num(board, "board", "retries", int, 2),
        non_idempotent=tuple(h.upper() for h in non_idem),
        temperature=temperature,
        capacitance={str(k): float(v) for k, v in cap.items()},
        max_pulse=max_pulse)


def _levels(el: dict, source: str, num) -> np.ndarray:
    """Conductance of each element code: ``levels`` is a list of siemens, or ``linear`` /
    ``log`` (``steps`` values from ``g_min`` to ``g_max``), or ``rheostat``
    (``G = 1 / (r_series + r_full code / (steps - 1))``, a potentiometer wiper in series
    with a fixed resistor)."""
    kind = el.get("levels")
    if isinstance(kind, list):
        g = np.array(kind, dtype=float) if all(isinstance(x, (int, float)) for x in kind) else None
    elif kind in ("linear", "log"):
        steps = num(el, "elements", "steps", int)
        lo, hi = num(el, "elements", "g_min", positive=True), num(el, "elements", "g_max", positive=True)
        if hi <= lo or steps < 2:
            raise ProfileError(f"{source}: [elements] needs g_min < g_max and steps >= 2")
        g = np.linspace(lo, hi, steps) if kind == "linear" else np.geomspace(lo, hi, steps)
    elif kind == "rheostat":
        steps = num(el, "elements", "steps", int)
        rs, rf = num(el, "elements", "r_series", positive=True), num(el, "elements", "r_full", positive=True)
        if steps < 2:
            raise ProfileError(f"{source}: [elements] steps must be >= 2")
        g = 1.0 / (rs + rf * np.arange(steps) / (steps - 1))
    else:
        raise ProfileError(f"{source}: [elements] levels must be a list of siemens, "
                           f"'linear', 'log' or 'rheostat'")
    if g is None or g.ndim != 1 or len(g) < 2 or len(g) > 65536 or not np.all(np.isfinite(g) & (g > 0)):
        raise ProfileError(f"{source}: [elements] levels must be 2..65536 conductances > 0")
    return g
