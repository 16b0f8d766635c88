"""The reference board without hardware, served on a pseudo-terminal (CPython only).

:class:`SimulatedBoard` runs the firmware's handler and hardware layer (``main.make_core``)
under CPython on the bus-level chip simulation of ``simchips.py``. :class:`MicroPythonBoard`
runs the same firmware inside the real MicroPython VM (the WebAssembly port under Node,
``vm/bridge.mjs``) with only the ``machine`` module stubbed, and copies bytes between the
pty and the VM. Both are context managers with ``path``, the device a host opens.
"""

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from analog_ep.hardware.links import PtyLink

try:
    from . import boardcore, main, simchips
except ImportError:  # imported as a top-level module (drivers/firmware on sys.path)
    import boardcore
    import main
    import simchips

#: The MicroPython VM the firmware is tested in (npm package, pinned; .ci/run installs it).
MICROPYTHON_PACKAGE = "@micropython/micropython-webassembly-pyscript"
MICROPYTHON_VERSION = "1.27.0"
#: Where the package is installed (``npm install --prefix``): $ANALOG_EP_MICROPYTHON, else this.
DEFAULT_MICROPYTHON_PREFIX = "~/.cache/analog-ep/micropython"
BRIDGE = Path(__file__).resolve().parent / "vm" / "bridge.mjs"


def _ticks_us():
    return int(time.monotonic() * 1e6)


class SimulatedBoard:
    """The firmware on simulated chips, served on a pty; a context manager with ``path``.
    ``board``: "pico" (the reference board, ``chips`` a :class:`simchips.Chips`) or
    "pico-x9c" (``chips`` a :class:`simchips.X9CNetwork`); ``temperature``: the noise
    temperature (W) of the reference board's simulated noise source (0: none); ``seed``:
    of its generator."""

    def __init__(self, temperature=0.0, seed=0, board="pico"):
        sleep = lambda us: time.sleep(us * 1e-6)     # noqa: E731
        if board == "pico-x9c":
            self.chips = net = simchips.X9CNetwork()
            hal = main.make_x9c_hal(net.inc, net.ud, net.cs, net.pwm, net.adc, lambda us: None,
                                    _ticks_us, lambda a, b: a - b)
        else:
            self.chips = simchips.Chips(temperature, seed)
            cs = simchips.FakePin()
            hal = main.make_hal(simchips.FakeI2C(self.chips), simchips.FakeSPI(self.chips, cs), cs,
                                sleep, _ticks_us, lambda a, b: a - b)
        self.core = main.make_core(hal, board)
        self.link = PtyLink()
        self._running = False
        self._thread = None

    @property
    def path(self):
        return self.link.path

    def __enter__(self):
        self._running = True
        self._thread = threading.Thread(
            target=boardcore.serve, args=(self.core, self.link.read, self.link.write, lambda: self._running),
            daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._running = False
        self._thread.join(timeout=5)
        self.link.remove()


def micropython_prefix():
    """The npm prefix of the MicroPython VM: $ANALOG_EP_MICROPYTHON or the default."""
    return os.path.expanduser(os.environ.get("ANALOG_EP_MICROPYTHON", DEFAULT_MICROPYTHON_PREFIX))


def micropython_install_command():
    return "npm install --prefix %s %s@%s" % (micropython_prefix(), MICROPYTHON_PACKAGE, MICROPYTHON_VERSION)


def micropython_missing():
    """None if node and the pinned VM package are installed, else what is missing and the
    command that installs it."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm), then: " + micropython_install_command()
    package = Path(micropython_prefix()) / "node_modules" / MICROPYTHON_PACKAGE / "package.json"
    if not package.exists():
        return "the MicroPython VM is not installed: " + micropython_install_command()
    found = json.loads(package.read_text()).get("version")
    if found != MICROPYTHON_VERSION:
        return "MicroPython VM %s found, %s needed: %s" % (found, MICROPYTHON_VERSION, micropython_install_command())
    return None


class MicroPythonBoard:
    """The firmware in the MicroPython VM, served on a pty; a context manager with ``path``.

    One thread copies what the host writes to the pty into the VM's standard input, another
    the VM's replies back to the pty. ``memory()`` asks the VM for its GC heap (a dict of
    ``mem_free``, ``mem_alloc``, ``peak_alloc``, bytes); ``ready`` and, after exit,
    ``exited`` hold the same at start-up and when the VM stopped. Raises RuntimeError, with
    the install command, when node or the pinned package is missing."""

    def __init__(self, timeout=30.0):
        missing = micropython_missing()
        if missing:
            raise RuntimeError(missing)
        self.timeout = timeout
        self.link = PtyLink()
        self.proc = None
        self.ready = self.exited = None
        self._events = queue.Queue()
        self._log = []
        self._running = False
        self._threads = []

    @property
    def path(self):
        return self.link.path

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict) and "event" in event:
                self._events.put(event)
            else:
                self._log.append(line)

    def _event(self, name):
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                event = self._events.get(timeout=0.1)
            except queue.Empty:
                printed = "\n".join(self._log[-20:])
                if self.proc.poll() is not None and not self._threads[0].is_alive():
                    raise RuntimeError("the MicroPython VM exited (status %d) before sending %r; it printed: %s"
                                       % (self.proc.returncode, name, printed)) from None
                if time.monotonic() > deadline:
                    raise RuntimeError("the MicroPython VM sent no %r in %g s; it printed: %s"
                                       % (name, self.timeout, printed)) from None
                continue
            if event["event"] == "crash":
                raise RuntimeError("the firmware crashed in the MicroPython VM: %s" % event["error"])
            if event["event"] == name:
                return {k: v for k, v in event.items() if k != "event"}

    def _host_to_vm(self):
        while self._running:
            data = self.link.read()
            if data:
                try:
                    self.proc.stdin.write(data)
                    self.proc.stdin.flush()
                except (BrokenPipeError, ValueError):
                    return

    def _vm_to_host(self):
        out = self.proc.stdout.fileno()
        while True:
            data = os.read(out, 65536)
            if not data:
                return
            self.link.write(data)

    def memory(self):
        """The VM's GC heap now (after a collection)."""
        self.proc.send_signal(signal.SIGUSR2)
        return self._event("memory")

    def __enter__(self):
        self.proc = subprocess.Popen(["node", str(BRIDGE), micropython_prefix()], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        self._running = True
        self._threads = [threading.Thread(target=t, daemon=True)
                         for t in (self._read_stderr, self._host_to_vm, self._vm_to_host)]
        for t in self._threads:
            t.start()
        try:
            self.ready = self._event("ready")
        except BaseException as err:
            self.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def __exit__(self, *exc):
        """Stop the VM; a VM that crashed or did not exit cleanly raises RuntimeError
        (unless an exception is already on its way)."""
        self._running = False
        self._threads[1].join(timeout=5)
        problem = None
        try:
            self.proc.stdin.close()
            self.exited = self._event("exit")
        except RuntimeError as err:
            problem = err
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        self.link.remove()
        if problem is not None and exc[:1] in ((), (None,)):
            raise problem
