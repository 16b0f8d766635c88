"""Host end of the wire: one command, one reply, never partial data.

:class:`BoardClient` opens a serial port (a device path or any pyserial URL such as
``socket://host:port``) exclusively, waits for the board to answer ``*IDN?``, negotiates
the protocol version and reads the capability table. Every command carries a sequence tag
``@<seq>``; the input buffer is flushed before each command and replies with another tag
(late replies to earlier commands) are discarded. A timeout, a garbled reply or a block
whose CRC fails raises a typed error naming the command; the link is then resynchronised
(``SYST:SYNC? <nonce>``, discarding input up to the nonce) before the next command.

Retries. The number of attempts of a command is sized to the failure fraction observed
on this link (:meth:`BoardClient.attempts`). On a board without capability ``replay``,
only idempotent commands are retried, each attempt with a new tag; on a board with it,
every command is, with its original tag, so the board executes it once and answers the
repetitions from its store. A lost port raises :class:`BoardDisconnectedError`;
:meth:`BoardClient.reconnect` reopens it with a bounded number of tries and exponential
backoff. Only ``on_lost`` (a callable reconnecting, set by the owner of the client) makes
a lost port recoverable inside a command, and only on a replay board: the command is sent
again with its tag once the port is back.
"""

from __future__ import annotations

import collections
import errno
import itertools
import math
import os
import time

import serial

from . import protocol as P
from .errors import (BoardCommandError, BoardDisconnectedError, BoardProtocolError,
                     BoardTimeoutError, BoardVersionError, CorruptBlockError, excerpt)

#: Longest single wait inside a read; the overall deadline is per command.
POLL_S = 0.05
#: Longest text reply line accepted (channel maps of large networks are long).
MAX_REPLY_LINE = 65536
#: Bytes of a reply besides its payload: tag, block header, CRC, LF.
REPLY_OVERHEAD = 32
#: Chance of giving up on a command that the retry budget aims below (see attempts()).
GIVE_UP = 1e-9
#: Most attempts of one command (or one resynchronisation), whatever the fault rate.
MAX_ATTEMPTS = 40
#: Attempts in a row with nothing at all received after which the board counts as gone.
SILENT_LIMIT = 8


class BoardClient:
    """A connection to a board speaking ``drivers/PROTOCOL.md``.

    ``port`` is a device path or pyserial URL; ``transport`` (instead of ``port``) is an
    already open port-like object (for scripted tests: :class:`ScriptedPort`). ``timeout``
    (s) is the reply timeout on top of the transfer time at ``baudrate`` (8N1: baud/10
    bytes per second); ``open_settle`` (s) how long the board may take to answer after
    the port opens; ``max_block`` (bytes) the longest block accepted, ``max_reply_line``
    the longest text reply.
    """

    def __init__(self, port: str | None = None, *, transport=None, baudrate: int = 115200,
                 timeout: float = 1.0, open_settle: float = 2.0, max_block: int = 65536,
                 max_reply_line: int = MAX_REPLY_LINE, retries: int = 2,
                 non_idempotent: tuple[str, ...] = (),
                 versions: tuple[int, int] = P.VERSIONS):
        if (port is None) == (transport is None):
            raise ValueError("give exactly one of port and transport")
        self.port_name = port if port is not None else repr(transport)
        self.baudrate, self.timeout, self.open_settle = baudrate, timeout, open_settle
        self.max_block, self.retries = max_block, retries
        self.non_idempotent = frozenset(h.upper() for h in non_idempotent)
        self.versions = versions
        self._port = transport
        self._framer = P.Framer(max_reply_line, max_block)
        self._frames: collections.deque = collections.deque()
        # a random start anywhere in the tag space: a replay board's stored tags from an
        # earlier session are then met again only by chance (~1e-9 per command)
        self._seq = itertools.count(int.from_bytes(os.urandom(4), "big") % 10 ** P.MAX_TAG_DIGITS)
        self.on_lost = None
        self._silent = 0
        self._stale = False
        self.identity: tuple[str, ...] = ()
        self.version = 0
        self.caps: dict[str, int] = {}
        self.stats = collections.Counter()
        if transport is not None:
            self._handshake()

    def __repr__(self) -> str:
        return f"BoardClient({self.port_name!r}, baudrate={self.baudrate}, protocol={self.version})"

    # -- connection ----------------------------------------------------------------

    def open(self) -> "BoardClient":
        """Open the port exclusively and handshake; returns self."""
        try:
            self._port = serial.serial_for_url(self.port_name, baudrate=self.baudrate,
                                               timeout=POLL_S, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            if "lock" in str(exc):
                raise BoardDisconnectedError(f"cannot open {self.port_name}: another program holds its lock "
                                             f"(ports are opened exclusively)") from None
            if getattr(exc, "errno", None) == errno.ENOENT:
                raise BoardDisconnectedError(f"cannot open {self.port_name}: no such device (is the board "
                                             f"connected, or the board emulator running?)") from None
            raise BoardDisconnectedError(f"cannot open {self.port_name}: {exc}") from None
        try:
            self._handshake()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                pass
            self._port = None

    def __enter__(self) -> "BoardClient":
        return self if self._port is not None else self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._port is not None

    def reconnect(self, tries: int = 5, backoff: float = 0.1, then=None) -> None:
        """Reopen the port: up to ``tries`` attempts, waiting ``backoff * 2^k`` s before
        attempt ``k``; ``then()`` (re-applying settings, say) is part of each attempt.
        Raises BoardDisconnectedError when every attempt fails."""
        self.close()
        last: Exception | None = None
        for k in range(tries):
            time.sleep(backoff * 2 ** k)
            try:
                self.open()
                if then is not None:
                    then()
                self.stats["reconnects"] += 1
                return
            except (BoardDisconnectedError, BoardTimeoutError, BoardProtocolError) as exc:
                self.close()
                last = exc
        raise BoardDisconnectedError(f"could not reconnect to {self.port_name} in {tries} tries: {last}")

    def _handshake(self) -> None:
        """Wait for ``*IDN?`` (boards may reset on open), negotiate the version, read caps."""
        deadline = time.monotonic() + self.open_settle
        while True:
            try:
                idn = self._exchange("*IDN?", (), P.R_VALUE, min(self.timeout, 0.25))
                break
            except (BoardTimeoutError, BoardProtocolError):
                # tags and the flush before each command discard whatever was in flight
                if time.monotonic() > deadline:
                    raise BoardTimeoutError(f"board did not answer within {self.open_settle:g} s of opening",
                                            "*IDN?") from None
        self._stale = False
        idn = self.query_confirmed("*IDN?")
        fields = idn.split(",")
        if len(fields) != 4:
            raise BoardProtocolError(f"identification must have 4 comma-separated fields, got {idn!r}", "*IDN?")
        self.identity = tuple(f.strip() for f in fields)
        prot = self.query_confirmed("SYST:PROT?").split(",")
        lo, hi = (P.parse_uint(x.strip()) for x in prot) if len(prot) == 2 else (None, None)
        if lo is None or hi is None:
            raise BoardProtocolError(f"malformed version range {','.join(prot)!r}", "SYST:PROT?")
        version = min(hi, self.versions[1])
        if version < max(lo, self.versions[0]):
            raise BoardVersionError(f"board speaks protocol {lo}..{hi}, this driver "
                                    f"{self.versions[0]}..{self.versions[1]}", "SYST:PROT?")
        self.command("SYST:PROT", version)
        self.version = version
        try:
            self.caps = P.parse_capabilities(self.query_confirmed("SYST:CAP?"))
        except P.ProtocolError as exc:
            raise BoardProtocolError(exc.message, "SYST:CAP?") from None
        missing = [k for k in P.CAPABILITY_KEYS if k not in self.caps]
        if missing:
            raise BoardProtocolError(f"capabilities lack {', '.join(missing)}", "SYST:CAP?")

    @property
    def block_limit(self) -> int:
        """Longest block both ends accept (bytes): chunk long transfers to this."""
        return min(self.caps.get("maxblock", 0), self.max_block)

    # -- commands ------------------------------------------------------------------

    def command(self, header: str, *args, timeout: float | None = None) -> None:
        """Send a set command; returns when the board answered OK."""
        self._transact(header, args, P.R_OK, timeout)

    def query(self, header: str, *args, timeout: float | None = None) -> str:
        """Send a query; returns its value line (tag removed)."""
        return self._transact(header, args, P.R_VALUE, timeout)

    def query_confirmed(self, header: str, *args, reads: int = 4) -> str:
        """A configuration query read until two consecutive replies agree (at most
        ``reads`` times): text replies carry no CRC, so a lost byte inside one could
        otherwise pass for a different value."""
        last = self.query(header, *args)
        for _ in range(reads - 1):
            value = self.query(header, *args)
            if value == last:
                return value
            last = value
        raise BoardProtocolError(f"{reads} readings of the reply disagree", header)

    def query_block(self, header: str, *args, timeout: float | None = None,
                    expected_len: int | None = None) -> bytes:
        """Send a query answered by a block; returns the CRC-checked payload. A payload of
        another length than ``expected_len`` is rejected like a corrupt block."""
        return self._transact(header, args, P.R_BLOCK, timeout, expected_len)

    @property
    def replay(self) -> bool:
        """True if the board answers a repeated tag from its store (capability ``replay``)."""
        return self.caps.get("replay", 0) == 1

    def attempts(self) -> int:
        """Attempts allowed for one command (and for one resynchronisation): the smallest
        ``n`` with ``p^n < GIVE_UP``, ``p = (failures + 1) / (exchanges + 2)`` the failure
        fraction observed so far (Laplace's rule, so a fresh link starts at 1/2), kept
        between ``1 + retries`` and :data:`MAX_ATTEMPTS`."""
        p = (self.stats["failures"] + 1) / (self.stats["exchanges"] + 2)
        n = math.ceil(math.log(GIVE_UP) / math.log(p)) if p < 1 else MAX_ATTEMPTS
        return max(1 + self.retries, min(MAX_ATTEMPTS, n))

    def _transact(self, header, args, kind, timeout, expected_len=None):
        header = header.upper()
        row = P.INDEX.get(header)
        if row is None:
            raise ValueError(f"{header} is not a protocol command")
        if row[2] != kind:
            raise ValueError(f"{header} replies with {row[2]}, not {kind}")
        replay = self.replay and header not in P.NOT_REPLAYED
        retryable = replay or (row[3] and header not in self.non_idempotent)
        seq = next(self._seq) % 10 ** P.MAX_TAG_DIGITS if replay else None
        attempts = self.attempts()          # fixed for the command, from the rate seen before it
        attempt = 0
        while True:
            attempt += 1
            try:
                if self._stale:
                    self._resync(header)
                return self._exchange(header, args, kind, timeout, expected_len, seq)
            except BoardDisconnectedError:
                if not (replay and self.on_lost is not None) or attempt >= attempts:
                    raise
                self.stats["retries"] += 1
                self._recover()
            except (BoardTimeoutError, BoardProtocolError) as exc:
                self._stale = True
                self.stats["failures"] += 1
                if not retryable:
                    exc.args = (f"{exc.args[0]}; not retried: {header} is not idempotent on this "
                                f"board, its effect is unknown",)
                    raise
                if self._silent >= SILENT_LIMIT:
                    raise BoardTimeoutError(f"the board stopped answering: nothing at all received in "
                                            f"{self._silent} attempts in a row", exc.command) from None
                if attempt >= attempts:
                    raise
                self.stats["retries"] += 1

    def _recover(self) -> None:
        """A lost port during a command on a replay board: ``on_lost()`` (reconnecting and
        re-applying settings); a loss inside it is left to its own bounded tries."""
        hook, self.on_lost = self.on_lost, None
        try:
            hook()
        finally:
            self.on_lost = hook

    def _exchange(self, header, args, kind, timeout, expected_len=None, seq=None):
        """Write one command tagged ``seq`` (None: the next tag) and read its reply. No
        retry, no resync."""
        if self._port is None:
            raise BoardDisconnectedError(f"not connected to {self.port_name}; call reconnect()", header)
        if seq is None:
            seq = next(self._seq) % 10 ** P.MAX_TAG_DIGITS
        self.stats["exchanges"] += 1
        line = P.format_command(header, args, seq)
        label = " ".join((header, ",".join(f"<block {len(a)} bytes>" if isinstance(a, bytes) else str(a)
                                           for a in args))).strip()
        if expected_len is not None:
            transfer = (expected_len + REPLY_OVERHEAD) * 10.0 / self.baudrate
        else:
            transfer = (len(line) + REPLY_OVERHEAD) * 10.0 / self.baudrate
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout) + 2 * transfer
        try:
            self._port.reset_input_buffer()
            self._port.write(line)
        except (serial.SerialException, OSError) as exc:
            self._lost(exc, label)
        self._framer.reset()
        self._frames.clear()
        self._heard = False
        while True:
            frame = self._next_frame(deadline, label)
            try:
                tag, got, value = P.parse_reply(frame)
            except P.ProtocolError as exc:
                if exc.tag is not None and exc.tag != seq:
                    self.stats["late"] += 1
                    continue
                cls = CorruptBlockError if exc.code in (P.E_BLOCK, P.E_BLOCK_CRC, P.E_TOO_MUCH_DATA) \
                    else BoardProtocolError
                raise cls(f"bad reply ({exc.message}); data discarded", label) from None
            if tag != seq:
                if tag is None:
                    raise BoardProtocolError(f"untagged reply {excerpt(frame[0])}", label)
                self.stats["late"] += 1
                continue
            if got == P.R_ERR:
                raise BoardCommandError(value[0], value[1], label)
            if got != kind:
                raise BoardProtocolError(f"expected a {kind} reply, got {got} {excerpt(frame[0])}", label)
            if kind == P.R_BLOCK and expected_len is not None and len(value) != expected_len:
                raise CorruptBlockError(f"block of {len(value)} bytes, expected {expected_len}", label)
            return value

    def _next_frame(self, deadline, label):
        while not self._frames:
            if time.monotonic() >= deadline:
                self._silent = 0 if self._heard else self._silent + 1
                raise BoardTimeoutError("no complete reply in time", label, self._framer.buffered())
            try:
                data = self._port.read(max(self._framer.need(), self._port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                self._lost(exc, label)
            if data:
                self._heard = True
            self._frames.extend(self._framer.feed(data))
        self._silent = 0
        return self._frames.popleft()

    def _lost(self, exc, label):
        self.close()
        self.stats["disconnects"] += 1
        raise BoardDisconnectedError(f"port {self.port_name} lost: {exc}", label) from None

    def resync(self) -> None:
        """Discard whatever is in flight: ask for a nonce and drop input up to it."""
        self._stale = True
        self._resync("SYST:SYNC?")

    def _resync(self, label) -> None:
        attempts = self.attempts()
        for _ in range(attempts):
            nonce = "S" + os.urandom(6).hex()
            try:
                self._port.write(b"\n")
                if self._exchange("SYST:SYNC?", (nonce,), P.R_VALUE, None) == nonce:
                    self._stale = False
                    self.stats["resyncs"] += 1
                    return
            except (BoardTimeoutError, BoardProtocolError, BoardCommandError):
                self.stats["failures"] += 1
                if self._silent >= SILENT_LIMIT:
                    raise BoardTimeoutError(f"the board stopped answering: nothing at all received in "
                                            f"{self._silent} attempts in a row", label) from None
                continue
            except (serial.SerialException, OSError) as exc:
                self._lost(exc, label)
        raise BoardTimeoutError(f"could not resynchronise in {attempts} tries", label)


class ScriptedPort:
    """A port-like object that plays a script of ``(command, reply)`` pairs, for driver
    tests without any port. ``command`` is the line without tag and LF; ``reply`` the
    board's reply without tag (str or bytes; a block from :func:`protocol.format_block`),
    or None for silence. The tag of each command is echoed. ``SYST:SYNC? <nonce>`` and
    empty lines are answered by protocol rules and do not consume the script. A command
    that differs from the script raises AssertionError."""

    def __init__(self, script):
        self.script = collections.deque(script)
        self.log: list[str] = []
        self._out = bytearray()
        self.timeout = POLL_S
        self.is_open = True

    @staticmethod
    def handshake(caps: dict[str, int], identity: str = "ANALOG-EP,SCRIPT,0,1") -> list:
        """The pairs of a version-1 handshake declaring ``caps`` (configuration queries
        are read twice, see :meth:`BoardClient.query_confirmed`)."""
        cap = P.format_capabilities(caps)
        return [("*IDN?", identity)] * 3 + [("SYST:PROT?", "1,1")] * 2 + [("SYST:PROT 1", "OK")] + \
            [("SYST:CAP?", cap)] * 2

    def write(self, data: bytes) -> int:
        for line in bytes(data).split(b"\n")[:-1]:
            if not line:
                continue
            tag, text = P.split_tag(line)
            command = text.decode("latin-1")
            self.log.append(command)
            if command.startswith("SYST:SYNC? "):
                reply = command.split(" ", 1)[1]
            else:
                if not self.script:
                    raise AssertionError(f"unscripted command {command!r}")
                expected, reply = self.script.popleft()
                if command != expected:
                    raise AssertionError(f"expected {expected!r}, host sent {command!r}")
            if reply is not None:
                reply = reply.encode() if isinstance(reply, str) else bytes(reply)
                self._out += P.tag_prefix(tag) + reply + (b"" if reply.endswith(b"\n") else b"\n")
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self._out)

    def read(self, n: int) -> bytes:
        if not self._out:
            time.sleep(min(self.timeout, 0.005))
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def reset_input_buffer(self) -> None:
        self._out.clear()

    def close(self) -> None:
        self.is_open = False

    def __repr__(self) -> str:
        return f"ScriptedPort({len(self.script)} pairs left)"
