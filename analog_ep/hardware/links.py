"""Links that carry the wire protocol for a board served in process: a pseudo-terminal
(:class:`PtyLink`) or a TCP socket (:class:`TcpLink`).

A :class:`PtyLink` opens a pty in raw mode (``tty.setraw``: no echo, no CR/LF mapping, no
signal or flow-control characters, so every byte value 0..255 passes unchanged) and closes
its own slave end; reading EIO from the master then means no host has the port open.
Its ``path`` is a stable symlink, re-pointed to a fresh pty after a simulated disconnect so
a host reconnects to the same name.

With ``baudrate`` a link paces its replies to the line rate baud/10 bytes/s (8N1)
against deadlines, chunk by chunk, and holds each command back by its own line time; a pty
itself ignores the baud rate. Without it, the link is as fast as the pty.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import socket
import tempfile
import time
import tty

from ..errors import ConfigError


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
        """Drop the host: close the pty, wait, open a new one behind the same path. The link
        is gone while the board is down, as a USB device node is: pointing at the closed pty,
        it could lead a reconnecting host to whatever process is given that pty next."""
        self.close()
        if os.path.lexists(self.path):
            os.unlink(self.path)
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
