"""What a board offers an instrument driver, declared once from its profile and shared by
the PyMeasure and QCoDeS drivers: every settable quantity (an element's conductance in S,
an input's voltage in V, an output's nudge current in A) with its command, channel, unit
and the physical range the board can reach, and the measured node voltages (V).

Conversions are the profile's (``drivers/PROTOCOL.md`` section 2): a conductance goes to
the nearest level code, a voltage to the nearest DAC code, a current to the nearest signed
nudge code; a reading is the ``MEAS?`` sum of ``average`` ADC codes divided by
``average`` and mapped through the ADC range. The drivers speak VISA mode (untagged lines,
set commands silent, errors fetched with ``SYST:ERR?``), and every ``MEAS?`` block is
CRC-checked here before it is converted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..hardware import protocol as P
from ..hardware.errors import BoardCommandError, CorruptBlockError
from ..hardware.profile import BoardProfile, load_profile


@dataclass(frozen=True)
class Quantity:
    """One settable quantity of a board.

    ``name``: a Python identifier, the kind's prefix and the channel label (``g_R1``,
    ``v_in``, ``i_out``); ``label``: the board's channel label; ``kind``: ``element``,
    ``input`` or ``nudge``; ``channel``: its index among its kind; ``unit``: ``S``, ``V``
    or ``A``; ``low``, ``high``: the physical range the board reaches (inclusive);
    ``header``: the set command; ``query``: the read-back query, or None when the board has
    none (a driver then reports the value it last applied)."""

    name: str
    label: str
    kind: str
    channel: int
    unit: str
    low: float
    high: float
    header: str
    query: str | None


def identifier(prefix: str, label: str) -> str:
    """``prefix_label`` with every character that is not a letter, digit or ``_`` made ``_``."""
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_]', '_', label)}"


class BoardDeclaration:
    """The quantities and readings of a board with a bound ``profile``; ``identity`` is its
    ``*IDN?`` reply, ``maxavg`` the largest ``MEAS?`` average it takes."""

    def __init__(self, profile: BoardProfile, identity: str, maxavg: int):
        self.profile, self.identity, self.maxavg = profile, identity, maxavg
        levels = profile.levels
        q = [Quantity(identifier("g", n), n, "element", k, "S", float(levels.min()), float(levels.max()),
                      "ELEM:CODE", "ELEM:CODE?") for k, n in enumerate(profile.elements)]
        q += [Quantity(identifier("v", n), n, "input", k, "V", profile.inputs.lo, profile.inputs.hi,
                       "DAC:CODE", None) for k, n in enumerate(profile.inputs.names)]
        if profile.nudge is not None:
            q += [Quantity(identifier("i", n), n, "nudge", k, "A", -profile.nudge.hi, profile.nudge.hi,
                           "NUDG:CODE", None) for k, n in enumerate(profile.nudge.names)]
        self.quantities: dict[str, Quantity] = {x.name: x for x in q}
        #: Names of the readings (``read_<node>``), in ADC channel order.
        self.readings: tuple[str, ...] = tuple(identifier("read", n) for n in profile.measured.names)

    def __repr__(self) -> str:
        return f"BoardDeclaration({self.identity!r}, {self.profile!r}, {len(self.quantities)} quantities)"

    def code(self, q: Quantity, value: float) -> int:
        """The code that sets ``q`` nearest to ``value`` (its unit); ConfigError outside
        ``[q.low, q.high]``."""
        value = float(value)
        if not q.low <= value <= q.high:
            raise ConfigError(f"{q.name} = {value:g} {q.unit} is outside {q.low:g} .. {q.high:g} {q.unit}")
        p = self.profile
        if q.kind == "element":
            return int(p.element_codes(np.array([value]))[0])
        if q.kind == "input":
            return int(p.dac_codes(np.array([value]))[0])
        return int(p.nudge_codes(np.array([value]))[0])

    def value(self, q: Quantity, code: int) -> float:
        """The physical value (``q.unit``) of a code of ``q``."""
        p, c = self.profile, np.array([code])
        if q.kind == "element":
            return float(p.element_values(c)[0])
        if q.kind == "input":
            return float(p.dac_volts(c)[0])
        return float(p.nudge_currents(c)[0])

    def set_command(self, q: Quantity, value: float) -> str:
        return f"{q.header} {q.channel},{self.code(q, value)}"

    def measure_command(self, average: int) -> str:
        if not (isinstance(average, (int, np.integer)) and 1 <= average <= self.maxavg):
            raise ConfigError(f"average {average!r} must be an integer in 1 .. {self.maxavg}")
        return f"MEAS? {int(average)}"

    def volts(self, body: bytes, average: int) -> np.ndarray:
        """Node voltages (V, ADC channel order) from the block a VISA client read for
        ``MEAS? average`` (CRC inside); CorruptBlockError if its CRC or length is wrong."""
        try:
            data = P.split_crc(body)
        except P.ProtocolError as exc:
            raise CorruptBlockError(exc.message, f"MEAS? {average}") from None
        n = len(self.profile.measured.names)
        if len(data) != 4 * n:
            raise CorruptBlockError(f"block of {len(data)} bytes, expected {4 * n}", f"MEAS? {average}")
        sums = np.frombuffer(data, dtype=">u4").astype(float)
        return self.profile.adc_volts(sums / average)


def describe_board(write: Callable[[str], object], ask: Callable[[str], str],
                   profile: BoardProfile | str = "emulator") -> BoardDeclaration:
    """Put the board in VISA mode and declare it: ``write`` and ``ask`` are a VISA
    client's (untagged lines); ``profile`` a BoardProfile, file or bundled name, bound to
    the board's own channel labels (a template) or checked against them, and against its
    capabilities (ProfileError when they disagree)."""
    write("SYST:VISA 1")                    # never answered, whatever mode the board was in
    identity = ask("*IDN?")
    try:
        caps = P.parse_capabilities(ask("SYST:CAP?"))
    except P.ProtocolError as exc:
        raise ConfigError(f"board {identity}: {exc.message}") from None
    if caps.get("visa") != 1:
        raise ConfigError(f"board {identity} has no VISA mode (no capability visa=1)")
    labels = {kind: (ask(f"CHAN:MAP? {kind}").split(",") if caps[count] > 0 else [])
              for kind, count in P.CHANNEL_KINDS.items()}
    prof = profile if isinstance(profile, BoardProfile) else load_profile(profile)
    prof = prof.bind(labels["ELEM"], labels["DAC"], labels["NUDG"], labels["ADC"])
    prof.check_board(caps, identity, lambda kind: ",".join(labels[kind]))
    return BoardDeclaration(prof, identity, caps["maxavg"])


def read_block(read_bytes: Callable[[int], bytes], command: str) -> bytes:
    """Read the reply to ``command`` (already written) as a VISA-mode block with
    ``read_bytes(n)`` (exactly ``n`` bytes): the body a VISA client's
    ``query_binary_values`` would return, CRC not yet checked. An ``ERR`` line instead
    raises BoardCommandError, a malformed block CorruptBlockError; either way the whole
    reply has been read."""
    head = bytes(read_bytes(2))
    if head[:1] != b"#" or not 49 <= head[1] <= 57:
        line = head
        while not line.endswith(b"\n"):
            line += bytes(read_bytes(1))
        try:
            _, kind, value = P.parse_reply((line.rstrip(b"\r\n"), None, None))
        except P.ProtocolError as exc:
            raise CorruptBlockError(exc.message, command) from None
        if kind == P.R_ERR:
            raise BoardCommandError(value[0], value[1], command)
        raise CorruptBlockError(f"expected a block, got {line[:40]!r}", command)
    digits = bytes(read_bytes(head[1] - 48))
    n = P.parse_uint(digits)
    if n is None:
        raise CorruptBlockError(f"bad block length {digits!r}", command)
    body = bytes(read_bytes(n + 1))
    if body[-1:] != b"\n":
        raise CorruptBlockError("block not followed by LF", command)
    return body[:-1]


def raise_queued_error(ask: Callable[[str], str], command: str) -> None:
    """Read ``SYST:ERR?`` once; raise BoardCommandError naming ``command`` if the board
    queued an error (VISA mode answers set commands with silence, errors included)."""
    reply = ask("SYST:ERR?")
    code_text, _, message = reply.partition(",")
    code = P.parse_int(code_text.strip())
    if code is None:
        raise BoardCommandError(P.E_SYNTAX, f"malformed SYST:ERR? reply {reply!r}", command)
    if code != 0:
        raise BoardCommandError(code, message.strip('"'), command)
