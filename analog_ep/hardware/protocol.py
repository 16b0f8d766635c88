"""Wire protocol version 1: the command table and the codec, shared by host and board.

This module is plain data and pure functions. It does no I/O and imports only ``struct``
and ``binascii``, so the same file runs on the host (CPython) and on the reference
firmware (MicroPython): no dataclasses, enum, typing, f-strings or floats. Integers are
the only numbers on the wire. ``drivers/PROTOCOL.md`` is the normative description; the
tests check that document, this table and both ends of the wire against each other.

Framing: a message is one line ended by LF (a CR before the LF is ignored). A line may end
in one binary block ``#<d><len><payload><crc32>`` (IEEE 488.2 definite length, ``d`` in
1..9 digits of ``len``; ``len`` counts the payload only; the CRC-32 of the payload,
``binascii.crc32``, follows as 4 big-endian bytes) directly followed by the LF. A ``#``
starts a block only at the start of a line, or after a space or a comma; no other text on
the wire contains ``#``.

VISA mode (``SYST:VISA 1``) changes the framing of untagged lines only, so that a stock
VISA client stays in step: set commands get no reply, and a block carries its CRC-32
*inside* (``len`` counts the data and the 4 CRC bytes, the LF follows the block). Tagged
lines keep the framing above in either mode.
"""

import binascii
import struct

PROTOCOL_VERSION = 1
#: Versions this implementation speaks (inclusive range).
VERSIONS = (1, 1)

LF = 10
CR = 13
HASH = 35

# Error codes (SCPI numbering where SCPI has one; positive codes are this protocol's own).
E_NONE = 0
E_INVALID_CHAR = -101
E_SYNTAX = -102
E_DATA_TYPE = -104
E_PARAM_NOT_ALLOWED = -108
E_MISSING_PARAM = -109
E_UNDEFINED_HEADER = -113
E_NUMERIC = -120
E_BLOCK = -160
E_BLOCK_CRC = -161
E_EXECUTION = -200
E_OUT_OF_RANGE = -222
E_TOO_MUCH_DATA = -223
E_ILLEGAL_VALUE = -224
E_HARDWARE_MISSING = -241
E_QUEUE_OVERFLOW = -350
E_INPUT_OVERRUN = -363
E_VERSION = 101

ERROR_TEXT = {
    E_NONE: "No error",
    E_INVALID_CHAR: "Invalid character",
    E_SYNTAX: "Syntax error",
    E_DATA_TYPE: "Data type error",
    E_PARAM_NOT_ALLOWED: "Parameter not allowed",
    E_MISSING_PARAM: "Missing parameter",
    E_UNDEFINED_HEADER: "Undefined header",
    E_NUMERIC: "Numeric data error",
    E_BLOCK: "Block data error",
    E_BLOCK_CRC: "Block CRC mismatch",
    E_EXECUTION: "Execution error",
    E_OUT_OF_RANGE: "Data out of range",
    E_TOO_MUCH_DATA: "Too much data",
    E_ILLEGAL_VALUE: "Illegal parameter value",
    E_HARDWARE_MISSING: "Hardware missing",
    E_QUEUE_OVERFLOW: "Queue overflow",
    E_INPUT_OVERRUN: "Input buffer overrun",
    E_VERSION: "Unsupported protocol version",
}

# Reply kinds.
R_OK = "ok"
R_VALUE = "value"
R_BLOCK = "block"
R_ERR = "err"

# Parameter types: non-negative integer, signed integer, word of [A-Za-z0-9_], binary block.
P_UINT = "uint"
P_INT = "int"
P_WORD = "word"
P_BLOCK = "block"

#: Channel kinds of ``CHAN:MAP?`` and the capability key that counts them.
CHANNEL_KINDS = {"ELEM": "elements", "DAC": "dacs", "ADC": "adcs", "NUDG": "nudges"}

#: Capability keys reported by ``SYST:CAP?`` (all integers), in reply order.
CAPABILITY_KEYS = ("elements", "levels", "dacs", "dac_bits", "adcs", "adc_bits", "nudges",
                   "nudge_bits", "maxline", "maxblock", "maxavg", "maxinterval", "maxsettle")
#: Keys a board may add after those (a host ignores keys it does not know): ``visa`` = 1,
#: the board serves ``SYST:VISA``; ``pulse`` = 1, the board serves ``ELEM:PULS``; ``replay`` = 1, the board answers a repeated tagged
#: line with its stored reply instead of executing it again (see :data:`NOT_REPLAYED`).
OPTIONAL_CAPABILITY_KEYS = ("visa", "pulse", "replay")
#: Headers whose replies a ``replay`` board never stores (they have no effect to protect,
#: and the host's handshake and resynchronisation must always reach the board itself).
NOT_REPLAYED = ("*IDN?", "SYST:SYNC?")
#: Bytes of the CRC-32 of a block.
CRC_BYTES = 4

MAX_TAG_DIGITS = 9
MAX_WORD = 16

# The command table. Each row: header, parameters, reply kind, idempotent, capability
# needed (a key of the capability table that must be > 0, or None), summary.
# A parameter is (name, type, low, high); low and high are integers or capability
# expressions: "key" (the capability), "key-1" or "2^key-1" (from a bit count); the pair
# "-2^key-1", "2^key-1" is the symmetric signed range of a key-bit code. None: no bound.
COMMANDS = (
    ("*IDN?", (), R_VALUE, True, None,
     "Identification: maker,model,serial,firmware (four fields)"),
    ("*RST", (), R_OK, True, None,
     "Reset: element codes 0, DAC codes 0, nudge codes 0, default settle time"),
    ("*CLS", (), R_OK, True, None, "Clear the error queue"),
    ("SYST:ERR?", (), R_VALUE, False, None,
     "Pop the oldest queued error: <code>,\"<message>\" (0,\"No error\" when empty)"),
    ("SYST:PROT?", (), R_VALUE, True, None, "Supported protocol versions: <min>,<max>"),
    ("SYST:PROT", (("version", P_UINT, 0, None),), R_OK, True, None,
     "Select the protocol version for this session"),
    ("SYST:SYNC?", (("nonce", P_WORD, None, None),), R_VALUE, True, None,
     "Answer the nonce unchanged (resynchronisation)"),
    ("SYST:CAP?", (), R_VALUE, True, None,
     "Capabilities: key=value pairs, comma-separated, all integers"),
    ("SYST:VISA", (("on", P_UINT, 0, 1),), R_OK, True, None,
     "VISA mode for untagged lines: 1 on, 0 off (never answered when untagged)"),
    ("SYST:VISA?", (), R_VALUE, True, None, "VISA mode: 1 on, 0 off"),
    ("CHAN:MAP?", (("kind", P_WORD, None, None),), R_VALUE, True, None,
     "Channel labels of ELEM, DAC, ADC or NUDG, comma-separated, in channel order"),
    ("ELEM:CODE", (("channel", P_UINT, 0, "elements-1"), ("code", P_UINT, 0, "levels-1")),
     R_OK, True, None, "Set the conductance code of one element"),
    ("ELEM:CODE?", (("channel", P_UINT, 0, "elements-1"),), R_VALUE, True, None,
     "Conductance code of one element"),
    ("ELEM:BULK", (("start", P_UINT, 0, "elements-1"), ("codes", P_BLOCK, 0, "levels-1")),
     R_OK, True, None,
     "Set consecutive element codes from <start>; block of big-endian uint16"),
    ("ELEM:PULS", (("start", P_UINT, 0, "elements-1"), ("counts", P_BLOCK, "-levels-1", "levels-1")),
     R_OK, False, "pulse",
     "Pulse consecutive elements from <start> by signed counts (block of big-endian int16), "
     "each stopping at its end; never retried blindly"),
    ("ELEM:PULS?", (), R_VALUE, True, "pulse",
     "Number of ELEM:PULS commands applied since power-up"),
    ("DAC:CODE", (("channel", P_UINT, 0, "dacs-1"), ("code", P_UINT, 0, "2^dac_bits-1")),
     R_OK, True, None, "Set the code of one input DAC"),
    ("DAC:BULK", (("start", P_UINT, 0, "dacs-1"), ("codes", P_BLOCK, 0, "2^dac_bits-1")),
     R_OK, True, None, "Set consecutive DAC codes from <start>; block of big-endian uint16"),
    ("NUDG:CODE", (("channel", P_UINT, 0, "nudges-1"),
                   ("code", P_INT, "-2^nudge_bits-1", "2^nudge_bits-1")),
     R_OK, True, "nudges", "Set the signed code of one output current source"),
    ("NUDG:BULK", (("start", P_UINT, 0, "nudges-1"),
                   ("codes", P_BLOCK, "-2^nudge_bits-1", "2^nudge_bits-1")),
     R_OK, True, "nudges",
     "Set consecutive nudge codes from <start>; block of big-endian int16"),
    ("SETT:TIME", (("microseconds", P_UINT, 0, "maxsettle"),), R_OK, True, None,
     "Settle time waited after any change before the next measurement"),
    ("SETT:TIME?", (), R_VALUE, True, None, "Settle time in microseconds"),
    ("MEAS?", (("average", P_UINT, 1, "maxavg"),), R_BLOCK, True, None,
     "Averaged reading: block of big-endian uint32, the sum of <average> ADC codes per channel"),
    ("ACQ?", (("count", P_UINT, 1, None), ("interval", P_UINT, 0, "maxinterval")),
     R_BLOCK, True, None,
     "<count> readings of every ADC channel <interval> microseconds apart: block of "
     "big-endian uint16, reading-major; count*adcs*2 <= maxblock"),
)

#: Block element formats of the bulk commands (struct codes, big-endian).
BLOCK_FORMATS = {"ELEM:BULK": "H", "ELEM:PULS": "h", "DAC:BULK": "H", "NUDG:BULK": "h", "MEAS?": "I", "ACQ?": "H"}


def command_index():
    """Map header -> table row."""
    index = {}
    for row in COMMANDS:
        index[row[0]] = row
    return index


INDEX = command_index()


class ProtocolError(Exception):
    """A message that breaks the protocol: ``code`` (an ``E_*`` constant), ``message``
    (ASCII, never containing ``#`` or ``"``) and the tag of the offending line if known."""

    def __init__(self, code, message, tag=None):
        super().__init__(message)     # MicroPython's Exception has no __init__ attribute
        self.code = code
        self.message = message
        self.tag = tag


def clean_text(text):
    """ASCII printable text without ``#``, ``"`` or ``,`` (safe inside an error reply)."""
    out = []
    for ch in text:
        o = ord(ch)
        out.append(ch if 32 <= o < 127 and ch not in '#",' else "?")
    return "".join(out)


def limit(expr, caps):
    """Evaluate one bound of the command table: an int, None, or ``key``, ``key-1`` or
    ``2^key-1`` of the capability table, or ``-key-1`` (the negative of ``key-1``)."""
    if expr is None or isinstance(expr, int):
        return expr
    if expr[:1] == "-" and expr[1:2] != "2":
        return -limit(expr[1:], caps)
    if expr.startswith("2^") and expr.endswith("-1"):
        return (1 << caps[expr[2:-2]]) - 1
    if expr.endswith("-1"):
        return caps[expr[:-2]] - 1
    return caps[expr]


def bounds(param, caps):
    """(low, high) of a parameter for these capabilities. A signed bit-count bound
    ``-2^k-1`` / ``2^k-1`` means the symmetric range of a ``k``-bit two's-complement code
    without its most negative value: -(2^(k-1)-1) .. 2^(k-1)-1."""
    lo, hi = param[2], param[3]
    if isinstance(hi, str) and hi.startswith("2^") and isinstance(lo, str) and lo.startswith("-2^"):
        m = (1 << (caps[hi[2:-2]] - 1)) - 1
        return -m, m
    return limit(lo, caps), limit(hi, caps)


def parse_uint(text):
    """Strict decimal: 1 to 10 digits, nothing else (str or bytes). Returns int or None."""
    if isinstance(text, str):
        text = text.encode()
    n = len(text)
    if n == 0 or n > 10:
        return None
    value = 0
    for o in text:
        if o < 48 or o > 57:
            return None
        value = value * 10 + o - 48
    return value


def parse_int(text):
    """Strict signed decimal: optional ``-`` then 1 to 10 digits. Returns int or None."""
    if text[:1] == "-":
        v = parse_uint(text[1:])
        return None if v is None else -v
    return parse_uint(text)


def is_word(text):
    if len(text) == 0 or len(text) > MAX_WORD:
        return False
    for ch in text:
        o = ord(ch)
        if not (48 <= o <= 57 or 65 <= o <= 90 or 97 <= o <= 122 or o == 95):
            return False
    return True


def crc32(data):
    """CRC-32 of ``data`` as an unsigned 32-bit integer (``binascii.crc32``)."""
    return binascii.crc32(data) & 0xFFFFFFFF


def encode_block(payload, crc_inside=False):
    """``#<d><len><payload><crc32 big-endian>`` (no LF); with ``crc_inside`` (VISA mode)
    the CRC is part of the block, ``len`` counting it: ``#<d><len><payload><crc32>``
    with ``len = len(payload) + 4``."""
    crc = struct.pack(">I", crc32(payload))
    n = str(len(payload) + (CRC_BYTES if crc_inside else 0))
    return b"#" + str(len(n)).encode() + n.encode() + bytes(payload) + crc


def split_crc(body):
    """The data of a VISA-mode block (the payload a VISA client reads, CRC-32 in its last
    4 bytes), checked: ProtocolError(E_BLOCK_CRC) if the CRC does not match,
    ProtocolError(E_BLOCK) if the block is shorter than its CRC."""
    body = bytes(body)
    if len(body) < CRC_BYTES:
        raise ProtocolError(E_BLOCK, "block of %d bytes is shorter than its CRC" % len(body))
    data = body[:-CRC_BYTES]
    if struct.unpack(">I", body[-CRC_BYTES:])[0] != crc32(data):
        raise ProtocolError(E_BLOCK_CRC, "block CRC mismatch")
    return data


def pack_codes(fmt, codes):
    """Big-endian block payload of integer codes; ``fmt`` is a struct code (H, h, I)."""
    return struct.pack(">%d%s" % (len(codes), fmt), *codes)


def unpack_codes(fmt, payload):
    """Inverse of :func:`pack_codes`; a payload whose length is not a whole number of
    codes raises ProtocolError(E_BLOCK)."""
    size = struct.calcsize(fmt)
    if len(payload) % size:
        raise ProtocolError(E_BLOCK, "block length %d is not a multiple of %d" % (len(payload), size))
    return struct.unpack(">%d%s" % (len(payload) // size, fmt), payload)


def tag_prefix(tag):
    return b"" if tag is None else b"@" + str(tag).encode() + b" "


def format_command(header, args=(), tag=None):
    """One command line. ``args`` are ints, strs or bytes (bytes become a block, last)."""
    parts = []
    block = b""
    for a in args:
        if isinstance(a, (bytes, bytearray)):
            block = encode_block(a)
        else:
            parts.append(str(a))
    text = header.encode()
    if parts or block:
        text += b" " + ",".join(parts).encode()
        if block:
            text += (b"," if parts else b"") + block
    return tag_prefix(tag) + text + b"\n"


def format_value(text, tag=None):
    return tag_prefix(tag) + text.encode() + b"\n"


def format_ok(tag=None):
    return tag_prefix(tag) + b"OK\n"


def format_block(payload, tag=None, crc_inside=False):
    return tag_prefix(tag) + encode_block(payload, crc_inside) + b"\n"


def format_error(code, message, tag=None):
    return tag_prefix(tag) + ("ERR %d,\"%s\"" % (code, clean_text(message))).encode() + b"\n"


class Framer:
    """Split a byte stream into frames; pure state machine, no I/O.

    ``feed(data)`` returns the frames completed by ``data``. A frame is a tuple
    ``(head, block, error)``: ``head`` the line's bytes before its block (or the whole line)
    without CR/LF, ``block`` the payload bytes or None, ``error`` None or a
    ``(code, message)`` pair for a malformed line (too long, bad block header, missing LF
    after the block, CRC mismatch). After a malformed block header the rest of the line is
    discarded up to the next LF, so every line yields exactly one frame. ``need()`` is the
    number of bytes the current frame still needs at least (1 while reading text).

    ``crc_inside`` (VISA mode, board side): blocks of untagged lines carry their CRC inside
    (see :func:`encode_block`); ``frames(data)`` yields frames one at a time, so a caller
    may change it between two lines.
    """

    def __init__(self, maxline, maxblock):
        self.maxline = maxline
        self.maxblock = maxblock
        self.crc_inside = False
        self.reset()

    def reset(self):
        self.buf = bytearray()
        self.pos = 0          # scan position in the text part
        self.block_at = -1    # index of '#' of the block being read
        self.payload_at = 0   # index of the block payload
        self.length = 0       # payload length
        self.trailer = CRC_BYTES   # bytes between the payload and the LF (0: CRC inside)
        self.error = None     # error of a line being discarded up to its LF

    def need(self):
        if self.block_at >= 0:
            return max(1, self.payload_at + self.length + self.trailer + 1 - len(self.buf))
        return 1

    def buffered(self):
        return bytes(self.buf)

    def _head(self, end):
        head = bytes(self.buf[:end])
        if head[-1:] == b"\r":
            head = head[:-1]
        return head

    def _drop(self, n):
        # slicing rather than del or find on the bytearray: MicroPython's bytearray has
        # neither slice deletion nor find everywhere
        self.buf = self.buf[n:]
        self.pos = 0

    def _discard(self, code, message, end):
        """Start discarding the line: remember its head for the tag, drop to LF."""
        self.error = (code, message, bytes(self.buf[:min(end, MAX_TAG_DIGITS + 2)]))
        self._drop(end)
        self.block_at = -1

    def feed(self, data):
        return list(self.frames(data))

    def frames(self, data):
        self.buf.extend(data)
        while True:
            frame = self._step()
            if frame is None:
                return
            yield frame

    def _step(self):
        buf = self.buf
        if self.error is not None:
            i = bytes(buf).find(b"\n")
            if i < 0:
                self._drop(len(buf))
                return None
            code, message, head = self.error
            self.error = None
            self._drop(i + 1)
            return (head, None, (code, message))
        if self.block_at >= 0:
            end = self.payload_at + self.length
            lf = end + self.trailer
            if len(buf) < lf + 1:
                return None
            if buf[lf] != LF:
                self._discard(E_BLOCK, "block not followed by LF", lf)
                return self._step()
            head = bytes(buf[:self.block_at])
            body = bytes(buf[self.payload_at:lf])
            self._drop(lf + 1)
            self.block_at = -1
            if self.trailer == 0:               # CRC inside the block
                try:
                    return (head, split_crc(body), None)
                except ProtocolError as e:
                    return (head, None, (e.code, e.message))
            payload = body[:-CRC_BYTES]
            if struct.unpack(">I", body[-CRC_BYTES:])[0] != crc32(payload):
                return (head, None, (E_BLOCK_CRC, "block CRC mismatch"))
            return (head, payload, None)
        # text: find the LF, or a block start before it
        text = bytes(buf)
        lf = text.find(b"\n", self.pos)
        stop = lf if lf >= 0 else len(text)
        h = text.find(b"#", self.pos, stop)
        while h > 0 and text[h - 1] not in (32, 44):
            h = text.find(b"#", h + 1, stop)
        if h >= 0:
            if h > self.maxline:
                self._discard(E_INPUT_OVERRUN, "line longer than %d bytes" % self.maxline, h)
                return self._step()
            return self._block_header(h)
        if lf >= 0:
            if lf > self.maxline:
                self._discard(E_INPUT_OVERRUN, "line longer than %d bytes" % self.maxline, lf)
                return self._step()
            head = self._head(lf)
            self._drop(lf + 1)
            return (head, None, None)
        if len(text) > self.maxline:
            self._discard(E_INPUT_OVERRUN, "line longer than %d bytes" % self.maxline, len(text))
            return self._step()
        self.pos = len(text)
        return None

    def _block_header(self, h):
        buf = self.buf
        self.pos = h
        if len(buf) < h + 2:
            return None
        d = buf[h + 1] - 48
        if d == 0:
            self._discard(E_BLOCK, "indefinite-length block (digit count 0) is not allowed", h)
            return self._step()
        if d < 1 or d > 9:
            self._discard(E_BLOCK, "bad block header", h)
            return self._step()
        if len(buf) < h + 2 + d:
            return None
        n = parse_uint(bytes(buf[h + 2:h + 2 + d]))
        if n is None:
            self._discard(E_BLOCK, "bad block length", h)
            return self._step()
        inside = self.crc_inside and buf[0] != 64      # an untagged line in VISA mode
        if n > self.maxblock + (CRC_BYTES if inside else 0):
            self._discard(E_TOO_MUCH_DATA, "block of %d bytes exceeds %d" % (n, self.maxblock), h)
            return self._step()
        self.trailer = 0 if inside else CRC_BYTES
        self.block_at = h
        self.payload_at = h + 2 + d
        self.length = n
        return self._step()


def split_tag(head):
    """``(tag or None, rest)`` of a frame head. A tag is ``@`` + 1-9 digits + one space;
    a malformed tag raises ProtocolError(E_SYNTAX)."""
    if head[:1] != b"@":
        return None, head
    sp = head.find(b" ")
    digits = head[1:sp] if sp > 0 else head[1:]
    tag = parse_uint(digits) if len(digits) <= MAX_TAG_DIGITS else None
    if tag is None or sp < 0:
        raise ProtocolError(E_SYNTAX, "malformed tag")
    return tag, head[sp + 1:]


def ascii_text(raw, tag):
    for b in raw:
        if b < 32 or b > 126:
            if b != 9:
                raise ProtocolError(E_INVALID_CHAR, "byte 0x%02x in command" % b, tag)
    return raw.decode()


def parse_command(frame, caps, index=INDEX):
    """Board side: a frame -> ``(tag, row, args)`` with every parameter converted and
    range-checked against ``caps``; blocks are returned as tuples of codes. Anything else
    raises ProtocolError with the line's tag when it could be read."""
    head, block, error = frame
    try:
        tag, rest = split_tag(head)
    except ProtocolError:
        if error is not None:
            raise ProtocolError(error[0], error[1])
        raise
    if error is not None:
        raise ProtocolError(error[0], error[1], tag)
    text = ascii_text(rest, tag).strip()
    if block is not None:
        if not (text.endswith(",") or " " not in text):
            raise ProtocolError(E_SYNTAX, "block must be the last parameter", tag)
        text = text[:-1] if text.endswith(",") else text
    sp = text.find(" ")
    header = (text if sp < 0 else text[:sp]).upper()
    row = index.get(header)
    if row is None:
        raise ProtocolError(E_UNDEFINED_HEADER, "undefined header %s" % clean_text(header[:24]), tag)
    if row[4] is not None and caps.get(row[4], 0) <= 0:
        raise ProtocolError(E_HARDWARE_MISSING, "%s needs %s channels" % (header, row[4]), tag)
    params = row[1]
    raw = [] if sp < 0 else [p.strip() for p in text[sp + 1:].split(",")]
    if block is not None:
        raw.append(block)
    if len(raw) < len(params):
        raise ProtocolError(E_MISSING_PARAM, "%s needs %d parameters" % (header, len(params)), tag)
    if len(raw) > len(params):
        raise ProtocolError(E_PARAM_NOT_ALLOWED, "%s takes %d parameters" % (header, len(params)), tag)
    args = []
    for p, value in zip(params, raw):
        args.append(convert(header, p, value, caps, tag))
    return tag, row, args


def convert(header, param, value, caps, tag):
    name, kind = param[0], param[1]
    lo, hi = bounds(param, caps)
    if kind == P_BLOCK:
        if not isinstance(value, bytes):
            raise ProtocolError(E_DATA_TYPE, "%s %s must be a block" % (header, name), tag)
        try:
            codes = unpack_codes(BLOCK_FORMATS[header], value)
        except ProtocolError as e:
            raise ProtocolError(e.code, e.message, tag)
        for c in codes:
            if (lo is not None and c < lo) or (hi is not None and c > hi):
                raise ProtocolError(E_OUT_OF_RANGE, "%s code %d outside %d..%d" % (header, c, lo, hi), tag)
        return codes
    if isinstance(value, bytes):
        raise ProtocolError(E_DATA_TYPE, "%s %s must not be a block" % (header, name), tag)
    if kind == P_WORD:
        if not is_word(value):
            raise ProtocolError(E_ILLEGAL_VALUE, "%s %s must be 1-16 letters or digits" % (header, name), tag)
        return value
    # every number is -?[0-9]{1,10}; a negative one where only >= 0 is allowed is out of range
    v = parse_int(value)
    if v is None:
        raise ProtocolError(E_NUMERIC, "%s %s is not an integer" % (header, name), tag)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        allowed = "%d.." % lo if hi is None else "%d..%d" % (lo, hi)
        raise ProtocolError(E_OUT_OF_RANGE, "%s %s=%d outside %s" % (header, name, v, allowed), tag)
    return v


def parse_reply(frame):
    """Host side: a frame -> ``(tag, kind, value)``: kind R_OK (value None), R_VALUE
    (str), R_BLOCK (bytes) or R_ERR (value ``(code, message)``). A malformed frame or
    reply raises ProtocolError with the tag when it could be read."""
    head, block, error = frame
    tag, rest = split_tag(head)
    if error is not None:
        raise ProtocolError(error[0], error[1], tag)
    if block is not None:
        if rest:
            raise ProtocolError(E_SYNTAX, "text before a reply block", tag)
        return tag, R_BLOCK, block
    for b in rest:
        if b < 32 or b > 126:
            raise ProtocolError(E_INVALID_CHAR, "byte 0x%02x in reply" % b, tag)
    text = rest.decode()
    if text == "OK":
        return tag, R_OK, None
    if text.startswith("ERR "):
        code_text, sep, message = text[4:].partition(",")
        code = parse_int(code_text)
        if code is None or not sep or len(message) < 2 or message[0] != '"' or message[-1] != '"':
            raise ProtocolError(E_SYNTAX, "malformed error reply", tag)
        return tag, R_ERR, (code, message[1:-1])
    if not text:
        raise ProtocolError(E_SYNTAX, "empty reply", tag)
    return tag, R_VALUE, text


def parse_capabilities(text):
    """``key=value,...`` -> dict of ints; malformed text raises ProtocolError."""
    caps = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        v = parse_uint(value)
        if not sep or v is None or not is_word(key):
            raise ProtocolError(E_SYNTAX, "malformed capability item")
        caps[key] = v
    return caps


def format_capabilities(caps):
    """``key=value,...``: every key of CAPABILITY_KEYS, then the optional ones present."""
    keys = CAPABILITY_KEYS + tuple(k for k in OPTIONAL_CAPABILITY_KEYS if k in caps)
    return ",".join("%s=%d" % (k, caps[k]) for k in keys)


def line_header(head):
    """The header of a command line's head (after its tag, upper case; ``""`` if none),
    read without any check: what an error reply's framing depends on."""
    if head[:1] == b"@":
        sp = head.find(b" ")
        head = head[sp + 1:] if sp > 0 else b""
    text = bytes(b if 32 < b < 127 else 32 for b in head).decode().strip()
    sp = text.find(" ")
    return (text if sp < 0 else text[:sp]).upper()
