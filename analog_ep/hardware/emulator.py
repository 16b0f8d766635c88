"""The board emulator: the wire protocol served on a pseudo-terminal, backed by a substrate.

A :class:`PtyLink` opens a pty in raw mode (``tty.setraw``: no echo, no CR/LF mapping, no
signal or flow-control characters, so every byte value 0..255 passes unchanged) and closes
its own slave end; reading EIO from the master then means no host has the port open.
Its ``path`` is a stable symlink, re-pointed to a fresh pty after a simulated disconnect so
a host reconnects to the same name.

:class:`EmulatorHAL` is the hardware layer of :class:`boardcore.BoardCore` on top of any
:class:`~analog_ep.substrates.base.Substrate` (the in-process ``EmulatedBoard``): codes
become quantised conductances, DAC voltages and nudge currents through the board profile,
readings become ADC codes. Only the Substrate interface is used, so whatever the substrate
models (settling, thermal noise at a temperature in the model's energy units) reaches the
wire unchanged.

Faults (``--fault KIND[:RATE],...``; RATE is the probability per reply, default 0.1):

- ``drop``: a random span of the reply (possibly all of it) is not sent;
- ``corrupt``: one random bit of a block reply (header, payload, CRC or LF) is flipped;
- ``delay``: the reply is held back by ``delay_s`` seconds (the replies behind it wait);
- ``disconnect``: instead of replying, the emulator closes the pty, waits ``reconnect_s``
  and re-points the symlink to a new pty (the board keeps its state).

With ``baudrate`` the emulator paces its replies to the line rate baud/10 bytes/s (8N1)
against deadlines, chunk by chunk, and holds each command back by its own line time; a pty
itself ignores the baud rate. Without it, the link is as fast as the pty.
"""

from __future__ import annotations

import errno
import math
import os
import select
import shutil
import socket
import tempfile
import threading
import time
import tty

import numpy as np

from ..errors import AnalogEPError, ConfigError
from . import protocol as P
from .boardcore import BoardCore, serve
from .profile import BoardProfile, load_profile

FAULT_KINDS = ("drop", "corrupt", "delay", "disconnect")
DEFAULT_FAULT_RATE = 0.1


def parse_faults(spec: str | None) -> dict[str, float]:
    """``"drop:0.1,corrupt"`` -> ``{"drop": 0.1, "corrupt": 0.1}``; bad kinds or rates
    raise ConfigError."""
    faults: dict[str, float] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        kind, sep, rate = item.partition(":")
        if kind not in FAULT_KINDS:
            raise ConfigError(f"--fault {item}: kind must be one of {', '.join(FAULT_KINDS)}")
        try:
            p = float(rate) if sep else DEFAULT_FAULT_RATE
        except ValueError:
            raise ConfigError(f"--fault {item}: rate {rate!r} is not a number") from None
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"--fault {item}: rate must be a probability in [0, 1]")
        faults[kind] = p
    return faults


class _Link:
    """Pacing shared by the links: ``write`` sends chunk by chunk, each no earlier than
    the moment its last byte would have arrived at ``rate`` bytes/s; ``_send`` does I/O."""

    rate: float | None = None
    _wire_free = 0.0

    def write(self, data: bytes) -> bool:
        """Send ``data`` (paced if a baud rate is set); False if the host went away."""
        view = memoryview(data)
        if self.rate is None:
            return self._send(view)
        chunk = max(16, int(self.rate * 0.002))
        start = max(time.monotonic(), self._wire_free)
        sent = 0
        while sent < len(view):
            piece = view[sent:sent + chunk]
            due = start + (sent + len(piece)) / self.rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not self._send(piece):
                return False
            sent += len(piece)
        self._wire_free = start + sent / self.rate
        return True

    def _received(self, data: bytes) -> bytes:
        if self.rate is not None and data:
            time.sleep(len(data) / self.rate)  # the command's own line time
        return data

    def _send(self, view: memoryview) -> bool:
        raise NotImplementedError


class PtyLink(_Link):
    """A raw-mode pty with a stable symlink ``path``; ``read``/``write`` on the master.

    ``baudrate`` (None: unpaced) paces the bytes to the line rate of an 8N1 link.
    """

    def __init__(self, path: str | None = None, baudrate: int | None = None):
        if path is not None:
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise ConfigError(f"--link {path}: folder {folder} does not exist")
            if os.path.isdir(path) and not os.path.islink(path):
                raise ConfigError(f"--link {path}: is a folder; give the name of the link to create")
        self._tmpdir = None if path is not None else tempfile.mkdtemp(prefix="analog-ep-board-")
        self.path = path if path is not None else os.path.join(self._tmpdir, "board")
        self.rate = None if baudrate is None else baudrate / 10.0
        self.master = -1
        self.device = ""
        self.open()

    def open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.device = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        self.master = master
        tmp = f"{self.path}.{os.getpid()}.new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(self.device, tmp)
        os.replace(tmp, self.path)

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def remove(self) -> None:
        """Close and delete the symlink (and its folder if the link made one)."""
        self.close()
        if os.path.lexists(self.path):
            os.unlink(self.path)
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def disconnect(self, downtime: float) -> None:
        """Drop the host: close the pty, wait, open a new one behind the same path."""
        self.close()
        time.sleep(downtime)
        self.open()

    def read(self, timeout: float = 0.05) -> bytes | None:
        """Bytes from the host (b"" if none within ``timeout``), None if no host has the
        port open (EIO on the master)."""
        if self.master < 0:
            return None
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return b""
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            time.sleep(timeout)
            return None
        return self._received(data)

    def _send(self, view: memoryview) -> bool:
        while len(view):
            if self.master < 0:
                return False
            _, w, _ = select.select([], [self.master], [], 0.5)
            if not w:
                continue
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return False
                raise
            view = view[n:]
        return True


class TcpLink(_Link):
    """The same service on ``socket://127.0.0.1:PORT`` (pyserial's socket URL), for hosts
    without pseudo-terminals; one host at a time. ``port = 0`` picks a free port."""

    def __init__(self, port: int = 0, baudrate: int | None = None):
        try:
            self.server = socket.create_server(("127.0.0.1", port))
        except OSError as exc:
            raise ConfigError(f"--tcp {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})") from None
        self.path = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.rate = None if baudrate is None else baudrate / 10.0
        self.conn: socket.socket | None = None

    def read(self, timeout: float = 0.05) -> bytes | None:
        conn = self.conn
        if conn is None:
            r, _, _ = select.select([self.server], [], [], timeout)
            if r:
                self.conn, _ = self.server.accept()
                self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return None
        try:
            r, _, _ = select.select([conn], [], [], timeout)
            if not r:
                return b""
            data = conn.recv(65536)
        except (OSError, ValueError):   # closed meanwhile
            data = b""
        if not data:
            self._drop()
            return None
        return self._received(data)

    def _send(self, view: memoryview) -> bool:
        if self.conn is None:
            return False
        try:
            self.conn.sendall(view)
            return True
        except OSError:
            self._drop()
            return False

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def disconnect(self, downtime: float) -> None:
        self._drop()
        time.sleep(downtime)

    def remove(self) -> None:
        self._drop()
        self.server.close()


class EmulatorHAL:
    """The hardware layer of the board emulator, on top of a substrate.

    ``names``: the network's (param_names, input_names, output_names) so codes can be
    placed in the substrate's parameter, input and output order. Readings go through the
    ADC model of the profile (rounding to the nearest code, clipping at the rails).
    ``paced``: settle times and acquisition intervals are waited for real.
    """

    def __init__(self, substrate, profile: BoardProfile, names, paced: bool = False):
        params, inputs, outputs = names
        self.substrate, self.profile, self.paced = substrate, profile, paced
        self._param_ch = np.array([profile.elements.index(n) for n in params], dtype=np.intp)
        self._input_ch = np.array([profile.inputs.names.index(n) for n in inputs], dtype=np.intp)
        self._nudge_ch = (None if profile.nudge is None else
                          np.array([profile.nudge.names.index(n) for n in outputs], dtype=np.intp))
        self.reset()

    def reset(self) -> None:
        p = self.profile
        self.elem = np.zeros(len(p.elements), dtype=np.int64)
        self.dac = np.zeros(len(p.inputs.names), dtype=np.int64)
        self.nudges = np.zeros(0 if p.nudge is None else len(p.nudge.names), dtype=np.int64)
        self._dirty = {"elements", "dacs", "nudges"}

    def set_elements(self, start, codes):
        self.elem[start:start + len(codes)] = codes
        self._dirty.add("elements")

    def set_dacs(self, start, codes):
        self.dac[start:start + len(codes)] = codes
        self._dirty.add("dacs")

    def set_nudges(self, start, codes):
        self.nudges[start:start + len(codes)] = codes
        self._dirty.add("nudges")

    def sleep_us(self, us):
        if self.paced and us:
            time.sleep(us * 1e-6)

    def _apply(self) -> None:
        s, p = self.substrate, self.profile
        if "elements" in self._dirty:
            s.set_parameters(p.element_values(self.elem[self._param_ch]))
        if "dacs" in self._dirty:
            s.clamp(p.dac_volts(self.dac[self._input_ch])[None, :])
        if "nudges" in self._dirty and self._nudge_ch is not None:
            s.nudge_currents(p.nudge_currents(self.nudges[self._nudge_ch]))
        self._dirty.clear()

    def _read(self, fn):
        try:
            self._apply()
            return fn()
        except (AnalogEPError, NotImplementedError, ArithmeticError) as exc:
            raise P.ProtocolError(P.E_EXECUTION, f"measurement failed: {exc}") from None

    def measure(self, average):
        volts = self._read(lambda: self.substrate.equilibrium()[0])
        sums = self.profile.adc_codes(volts) * average
        return sums.astype(">u4").tobytes()

    def acquire(self, count, interval_us):
        t0 = time.monotonic()
        volts = self._read(lambda: self.substrate.sample(count)[0])
        if self.paced and interval_us:
            wait = t0 + count * interval_us * 1e-6 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        return self.profile.adc_codes(volts).astype(">u2").tobytes()


class FaultyWriter:
    """Writes replies to a link, injecting the configured faults (see module docstring).
    ``counts`` records how many of each fault were injected."""

    def __init__(self, link: PtyLink | TcpLink, faults: dict[str, float], rng: np.random.Generator,
                 delay_s: float = 0.3, reconnect_s: float = 0.1):
        self.link, self.faults, self.rng = link, faults, rng
        self.delay_s, self.reconnect_s = delay_s, reconnect_s
        self.counts = {k: 0 for k in FAULT_KINDS}
        self.replies = 0

    def _roll(self, kind: str) -> bool:
        p = self.faults.get(kind, 0.0)
        hit = p > 0 and self.rng.random() < p
        self.counts[kind] += hit
        return hit

    def __call__(self, reply: bytes) -> None:
        self.replies += 1
        if self._roll("disconnect"):
            self.link.disconnect(self.reconnect_s)
            return
        if self._roll("delay"):
            time.sleep(self.delay_s)
        data = bytearray(reply)
        block_at = data.find(b"#")
        if block_at >= 0 and self._roll("corrupt"):
            i = int(self.rng.integers(block_at, len(data)))
            data[i] ^= 1 << int(self.rng.integers(8))
        if self._roll("drop"):
            start = int(self.rng.integers(len(data)))
            stop = int(self.rng.integers(start + 1, len(data) + 1))
            del data[start:stop]
        if data:
            self.link.write(bytes(data))


class BoardEmulator:
    """A board on a pty, served by a background thread; a context manager.

    ``network``: a graph, a compiled resistive model, a file or a bundled name;
    ``temperature`` (model energy units; watts for resistive networks) of the backing
    ``EmulatedBoard``; ``profile``: a BoardProfile, a file or a bundled name (templates are
    bound to the network); ``faults``: ``{kind: rate}`` or a ``--fault`` string;
    ``baudrate``: pace the link (None: unpaced); ``seed``: one root seed, spawned into the
    substrate's and the faults' generators; ``versions``: the protocol versions served;
    ``tcp``: serve on ``socket://127.0.0.1:<tcp>`` instead of a pty (0: any free port).
    ``path`` is the stable device name (or URL) a host opens.
    """

    def __init__(self, network="divider", *, temperature: float = 0.0, profile="emulator",
                 faults: dict[str, float] | str | None = None, baudrate: int | None = None,
                 seed: int | None = None, delay_s: float = 0.3, reconnect_s: float = 0.1,
                 path: str | None = None, tcp: int | None = None,
                 versions: tuple[int, int] = P.VERSIONS):
        from ..graph import family, load_network
        from ..models.resistive import ResistiveModel, compile_network
        from ..substrates.emulated import EmulatedBoard

        if not (math.isfinite(temperature) and temperature >= 0):
            raise ConfigError(f"--temperature {temperature}: the injected noise temperature must be a "
                              f"finite number >= 0 (W for resistive networks)")
        if baudrate is not None and baudrate <= 0:
            raise ConfigError(f"--baud {baudrate}: the baud rate must be > 0")
        if not (math.isfinite(delay_s) and delay_s >= 0 and math.isfinite(reconnect_s) and reconnect_s >= 0):
            raise ConfigError(f"--fault-delay {delay_s}: delays must be finite and >= 0 s")
        if tcp is not None and not 0 <= tcp <= 65535:
            raise ConfigError(f"--tcp {tcp}: a TCP port is 0..65535 (0: any free port)")
        if isinstance(network, ResistiveModel):
            model = network
        else:
            graph = load_network(network) if isinstance(network, (str, os.PathLike)) else network
            if family(graph) != "resistive":
                raise ConfigError(f"{getattr(graph, 'name', '') or network}: the board emulator serves "
                                  f"resistive networks; this one is {family(graph)}")
            model = compile_network(graph)
        prof = profile if isinstance(profile, BoardProfile) else load_profile(profile)
        prof = prof.bind(model.param_names, model.input_names, model.output_names, model.node_names)
        board_rng, fault_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        self.substrate = EmulatedBoard(model, temperature=temperature, rng=board_rng,
                                       measured=prof.measured.names)
        self.profile = prof
        self.hal = EmulatorHAL(self.substrate, prof,
                               (model.param_names, model.input_names, model.output_names),
                               paced=baudrate is not None)
        name = getattr(model, "name", None) or "network"
        self.core = BoardCore(self.hal, ("ANALOG-EP", "BOARD-EMULATOR", P.clean_text(str(name)), "1.0"),
                              prof.capabilities(), prof.labels(), versions=versions,
                              settle_us=prof.settle_us)
        self.link = PtyLink(path, baudrate) if tcp is None else TcpLink(tcp, baudrate)
        self.faults = parse_faults(faults) if isinstance(faults, (str, type(None))) else dict(faults)
        self.writer = FaultyWriter(self.link, self.faults, fault_rng, delay_s, reconnect_s)
        self._running = False
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return (f"BoardEmulator({self.path!r}, {self.substrate!r}, {self.profile!r}, "
                f"faults={self.faults}, baud={None if self.link.rate is None else int(self.link.rate * 10)})")

    @property
    def path(self) -> str:
        return self.link.path

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (or KeyboardInterrupt)."""
        self._running = True
        try:
            serve(self.core, self.link.read, self.writer, lambda: self._running)
        finally:
            self._running = False

    def start(self) -> "BoardEmulator":
        self._thread = threading.Thread(target=self.serve_forever, name="board-emulator", daemon=True)
        self._running = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.link.remove()

    def __enter__(self) -> "BoardEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
