"""The board side of the protocol: command execution over an injected hardware layer.

Shared by the reference firmware (MicroPython) and the board emulator (CPython): plain
classes and integers only, no I/O of its own. The hardware-abstraction layer (HAL) is any
object with these methods (codes are integers, channels 0-based):

- ``reset()``: power-on state (all codes 0, nudge sources off).
- ``set_elements(start, codes)``, ``set_dacs(start, codes)``, and ``set_nudges(start,
  codes)`` on boards with nudge sources: apply consecutive channel codes (already
  range-checked).
- optionally ``pulse_elements(start, counts) -> codes``: pulse consecutive elements by
  signed counts and return the codes reached (boards whose elements move by pulses);
  without it, ``ELEM:PULS`` moves each code by its count, stopping at 0 and levels-1,
  through ``set_elements``.
- ``measure(average) -> bytes``: one averaged reading, big-endian uint32 per ADC channel,
  the sum of ``average`` conversions.
- ``acquire(count, interval_us) -> bytes``: ``count`` readings of every ADC channel,
  ``interval_us`` apart, big-endian uint16, reading-major.
- ``sleep_us(us)``: wait (the settle time).

The transport is injected too: :func:`serve` takes ``read()`` (bytes, possibly empty; None
when the host hung up) and ``write(reply)``.
"""

try:
    from . import protocol as P
except ImportError:  # MicroPython: the firmware's modules sit side by side, not in a package
    import protocol as P

ERROR_QUEUE = 8
DEFAULT_SETTLE_US = 1000


class BoardCore:
    """Executes frames, one reply per frame. ``identity``: the four ``*IDN?`` fields;
    ``caps``: the capability table (``protocol.CAPABILITY_KEYS``); ``labels``: channel
    labels per kind (``ELEM``, ``DAC``, ``ADC``, ``NUDG``); ``versions``: the (min, max)
    protocol versions this board speaks.

    VISA mode (``visa``, set by ``SYST:VISA``, kept by ``*RST``): untagged set commands
    and their errors get no reply (errors are queued), untagged queries answer as usual
    (an error inline), and untagged block replies carry their CRC inside. An untagged
    ``SYST:VISA`` is never answered, in either mode. Tagged lines are served the same in
    both modes. The core reports capability ``visa=1``.

    ``ELEM:PULS`` (capability ``pulse=1``): the whole command is checked before anything
    moves; ``pulses`` counts the pulse commands applied since power-up (``ELEM:PULS?``,
    not cleared by ``*RST``), so a host that lost a reply can tell whether it was applied.

    Replay (capability ``replay=1``): for each header but ``protocol.NOT_REPLAYED`` the
    core keeps the last tagged, well-framed line it served (its head and block) and the
    reply it made, errors included, in ``replies``; the same line again (the host retrying with
    the same tag after a lost or garbled reply) gets that reply without being executed,
    so every command takes effect once (``replayed`` counts those). The store lives in
    the core, so it survives a link reconnect. ``replay=False`` makes a board without it."""

    def __init__(self, hal, identity, caps, labels, versions=P.VERSIONS,
                 settle_us=DEFAULT_SETTLE_US, replay=True):
        for key in P.CAPABILITY_KEYS:
            if key not in caps:
                raise ValueError("capability %s missing" % key)
        for kind in P.CHANNEL_KINDS:
            if len(labels.get(kind, ())) != caps[P.CHANNEL_KINDS[kind]]:
                raise ValueError("%s labels do not match the channel count" % kind)
        self.hal = hal
        self.identity = ",".join(identity)
        self.caps = dict(caps)
        self.caps["visa"] = 1
        self.caps["pulse"] = 1
        self.pulses = 0
        if replay:
            self.caps["replay"] = 1
        self.replies = {}
        self.replayed = 0
        self.labels = labels
        self.versions = versions
        self.default_settle_us = settle_us
        self.errors = []
        self.version = versions[1]
        self.visa = False
        self.reset()

    def reset(self):
        self.hal.reset()
        self.elements = [0] * self.caps["elements"]
        self.settle_us = self.default_settle_us
        self.dirty = True

    def push_error(self, code, message):
        if len(self.errors) >= ERROR_QUEUE:
            self.errors[-1] = (P.E_QUEUE_OVERFLOW, P.ERROR_TEXT[P.E_QUEUE_OVERFLOW])
        else:
            self.errors.append((code, message))

    def handle(self, frame):
        """One frame (from :class:`protocol.Framer`) -> the reply bytes. Empty lines get
        no reply (they are not commands). A tagged line equal (tag, text and block) to the
        last one of its header is answered with the stored reply, not executed again."""
        if frame[0] == b"" and frame[1] is None and frame[2] is None:
            return b""
        tag = None
        header = P.line_header(frame[0])
        kept = "replay" in self.caps and frame[0][:1] == b"@" and frame[2] is None \
            and header in P.INDEX and header not in P.NOT_REPLAYED
        if kept:
            last = self.replies.pop(header, None)   # freed before the new reply is made
            if last is not None and last[0] == frame[0] and last[1] == frame[1]:
                self.replies[header] = last
                self.replayed += 1
                return last[2]
        try:
            tag, row, args = P.parse_command(frame, self.caps)
            reply = self.execute(header, args, tag)
            if kept:
                self.replies[header] = (frame[0], frame[1], reply)
            return b"" if self.silent(tag, header) else reply
        except P.ProtocolError as e:
            code, message, tag = e.code, e.message, (e.tag if e.tag is not None else tag)
        except Exception as e:  # a bus error must not stop the board: answer it
            code, message = P.E_EXECUTION, "hardware error %s" % P.clean_text(repr(e))[:80]
        self.push_error(code, message)
        if self.silent(tag, header):
            return b""
        reply = P.format_error(code, message, tag)
        if kept:            # a command that failed: its error is its reply
            self.replies[header] = (frame[0], frame[1], reply)
        return reply

    def silent(self, tag, header):
        """True if the reply to this line is not sent (VISA mode, see the class)."""
        return tag is None and (header == "SYST:VISA" or (self.visa and not header.endswith("?")))

    def settle(self):
        if self.dirty:
            self.hal.sleep_us(self.settle_us)
            self.dirty = False

    def execute(self, header, args, tag):
        if header == "*IDN?":
            return P.format_value(self.identity, tag)
        if header == "*RST":
            self.reset()
            return P.format_ok(tag)
        if header == "*CLS":
            self.errors = []
            return P.format_ok(tag)
        if header == "SYST:ERR?":
            code, message = self.errors.pop(0) if self.errors else (0, P.ERROR_TEXT[0])
            return P.format_value("%d,\"%s\"" % (code, message), tag)
        if header == "SYST:PROT?":
            return P.format_value("%d,%d" % self.versions, tag)
        if header == "SYST:PROT":
            if not self.versions[0] <= args[0] <= self.versions[1]:
                raise P.ProtocolError(P.E_VERSION, "protocol %d unsupported; this board speaks %d..%d"
                                      % (args[0], self.versions[0], self.versions[1]), tag)
            self.version = args[0]
            return P.format_ok(tag)
        if header == "SYST:SYNC?":
            return P.format_value(args[0], tag)
        if header == "SYST:VISA":
            self.visa = args[0] == 1
            return P.format_ok(tag)
        if header == "SYST:VISA?":
            return P.format_value("1" if self.visa else "0", tag)
        if header == "SYST:CAP?":
            return P.format_value(P.format_capabilities(self.caps), tag)
        if header == "CHAN:MAP?":
            kind = args[0].upper()
            if kind not in P.CHANNEL_KINDS:
                raise P.ProtocolError(P.E_ILLEGAL_VALUE, "channel kind must be ELEM, DAC, ADC or NUDG", tag)
            if not self.labels[kind]:
                raise P.ProtocolError(P.E_HARDWARE_MISSING, "no %s channels" % kind, tag)
            return P.format_value(",".join(self.labels[kind]), tag)
        if header == "ELEM:CODE?":
            return P.format_value(str(self.elements[args[0]]), tag)
        if header == "ELEM:PULS?":
            return P.format_value(str(self.pulses), tag)
        if header == "ELEM:PULS":
            return self.pulse(args[0], args[1], tag)
        if header == "SETT:TIME?":
            return P.format_value(str(self.settle_us), tag)
        if header == "SETT:TIME":
            self.settle_us = args[0]
            return P.format_ok(tag)
        if header == "MEAS?":
            self.settle()
            return P.format_block(self.hal.measure(args[0]), tag, self.visa and tag is None)
        if header == "ACQ?":
            size = args[0] * self.caps["adcs"] * 2
            if size > self.caps["maxblock"]:
                raise P.ProtocolError(P.E_TOO_MUCH_DATA, "ACQ? %d readings make %d bytes > maxblock %d"
                                      % (args[0], size, self.caps["maxblock"]), tag)
            self.settle()
            return P.format_block(self.hal.acquire(args[0], args[1]), tag, self.visa and tag is None)
        return self.set_codes(header, args, tag)

    def pulse(self, start, counts, tag):
        n, top = self.caps["elements"], self.caps["levels"] - 1
        if start + len(counts) > n:
            raise P.ProtocolError(P.E_OUT_OF_RANGE, "ELEM:PULS channels %d..%d exceed %d channels"
                                  % (start, start + len(counts) - 1, n), tag)
        if hasattr(self.hal, "pulse_elements"):
            reached = self.hal.pulse_elements(start, counts)
        else:
            reached = [max(0, min(top, self.elements[start + i] + counts[i])) for i in range(len(counts))]
            self.hal.set_elements(start, reached)
        for i in range(len(counts)):
            self.elements[start + i] = reached[i]
        self.pulses += 1
        self.dirty = True
        return P.format_ok(tag)

    def set_codes(self, header, args, tag):
        start = args[0]
        codes = args[1] if header.endswith("BULK") else (args[1],)
        count = self.caps[P.CHANNEL_KINDS[header.split(":")[0]]]
        if start + len(codes) > count:
            raise P.ProtocolError(P.E_OUT_OF_RANGE, "%s channels %d..%d exceed %d channels"
                                  % (header, start, start + len(codes) - 1, count), tag)
        if header.startswith("ELEM"):
            self.hal.set_elements(start, codes)
            for i in range(len(codes)):
                self.elements[start + i] = codes[i]
        elif header.startswith("DAC"):
            self.hal.set_dacs(start, codes)
        else:
            self.hal.set_nudges(start, codes)
        self.dirty = True
        return P.format_ok(tag)


class Session:
    """One byte stream into a board: ``feed(data)`` frames the bytes and returns the
    replies they complete (a list of bytes, one per command line); ``hangup()`` drops a
    partial line when the host goes away."""

    def __init__(self, core):
        self.core = core
        self.framer = P.Framer(core.caps["maxline"], core.caps["maxblock"])

    def feed(self, data):
        replies = []
        for frame in self.framer.frames(data):
            reply = self.core.handle(frame)
            self.framer.crc_inside = self.core.visa     # from the next line on
            if reply:
                replies.append(reply)
        return replies

    def hangup(self):
        self.framer.reset()


def serve(core, read, write, running=None):
    """Serve the protocol until ``running()`` is false: bytes from ``read()`` go through a
    :class:`Session` and every reply goes to ``write``. ``read`` returning None (the host
    hung up) drops any partial line."""
    session = Session(core)
    while running is None or running():
        data = read()
        if data is None:
            session.hangup()
        elif data:
            for reply in session.feed(data):
                write(reply)
