"""A ctypes layer over ngspice's shared library (``libngspice.so.0``, Debian ``libngspice0``).

Why ctypes rather than a Python binding: the bindings (PySpice, InSpice) are not packaged
by Debian and bring a large dependency tree, while what is needed here is five functions
of ngspice's shared API: ``ngSpice_Init`` (with the callbacks that receive ngspice's
printed messages, its status line and its exit request), ``ngSpice_Circ`` (load a deck),
``ngSpice_Command`` (``op``, ``alter``, ``destroy``, ``remcirc``) and ``ngGet_Vec_Info``
(read a vector of the last analysis).

The library is a process-global singleton: one ngspice holds every loaded circuit, and one
of them is current. :func:`library` initialises it once per process (a second
``ngSpice_Init`` would reset what other circuits rely on) and serialises every use with a
lock. A :class:`SpiceCircuit` keeps one deck; when another circuit has been made current
since it last ran, it removes that one (``remcirc``), loads its own deck again and replays
its ``alter`` commands, so several circuits in one process never see each other's values.
Analyses run synchronously through ``ngSpice_Command("op")``, never ``bg_run``: no
ngspice background thread exists, and the callbacks run in the calling thread.

Errors: a missing library is one line saying how to install it; a deck ngspice refuses is
a :class:`~analog_ep.errors.NetlistError` with ngspice's own message and the deck line it
names; an ``op`` that does not converge (ngspice's error messages, a singular matrix, its
last-resort transient operating point, a missing or non-finite result) is a
:class:`~analog_ep.errors.ConvergenceError` carrying ngspice's messages, to which callers
add what they were doing. If ngspice asks to exit (its ``ControlledExit`` callback), the
library is unusable for the rest of the process and says so.
"""

from __future__ import annotations

import ctypes
import math
import re
import threading
from collections import deque
from typing import Iterable, Sequence

import numpy as np

from ..errors import ConvergenceError, NetlistError, SubstrateError

#: The shared library's file name (Debian package ``libngspice0``).
LIBRARY = "libngspice.so.0"
#: How to get it, in the one-line message of a missing library.
INSTALL = "apt-get install libngspice0"
#: ngspice messages kept for error reports (the messages of the current command are all kept).
HISTORY = 200
#: Messages of an ``op`` that mean it did not find a converged operating point. Dynamic
#: gmin or source stepping that ends in success is a converged point; a singular matrix or
#: the transient fallback after every stepping failed is not (it returns whatever the
#: pseudo-transient reached, 1e9 V on a singular node).
_OP_FAILURE = re.compile(r"\berror\b|singular matrix|transient op|iteration limit|no convergence|"
                         r"simulation\(s\) aborted|timestep too small", re.I)
_DECK_ERROR = re.compile(r"\berror\b", re.I)
_ERROR_LINE = re.compile(r"error on line (\d+)", re.I)
_NETLIST_LINE = re.compile(r"netlist line no\. (\d+)", re.I)

_SendChar = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p)
_SendStat = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p)
_ControlledExit = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_bool, ctypes.c_bool,
                                   ctypes.c_int, ctypes.c_void_p)
_BGThreadRunning = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_bool, ctypes.c_int, ctypes.c_void_p)


class _VectorInfo(ctypes.Structure):
    """``struct vector_info`` of ngspice's ``sharedspice.h``."""
    _fields_ = [("v_name", ctypes.c_char_p), ("v_type", ctypes.c_int), ("v_flags", ctypes.c_short),
                ("v_realdata", ctypes.POINTER(ctypes.c_double)), ("v_compdata", ctypes.c_void_p),
                ("v_length", ctypes.c_int)]


class SharedNgspice:
    """The process's ngspice shared library: load it with :func:`library`, not directly.

    ``command`` and ``load`` return the messages ngspice printed meanwhile (each line
    prefixed by ``stdout``/``stderr`` as ngspice sends them). Every method takes the lock;
    a caller that needs several calls to stay together (select a circuit, alter, run,
    read) holds :attr:`lock` around them (it is re-entrant).
    """

    def __init__(self, path: str = LIBRARY):
        try:
            self._lib = ctypes.CDLL(path)
        except OSError as exc:
            raise SubstrateError(f"ngspice's shared library {path} cannot be loaded ({exc}); "
                                 f"install it with: {INSTALL}") from None
        self.lock = threading.RLock()
        self.history: deque[str] = deque(maxlen=HISTORY)
        self._capture: list[str] | None = None
        self.exited: str | None = None
        self.owner: object | None = None          # the SpiceCircuit whose deck is current
        lib = self._lib
        lib.ngSpice_Init.argtypes = [_SendChar, _SendStat, _ControlledExit, ctypes.c_void_p,
                                     ctypes.c_void_p, _BGThreadRunning, ctypes.c_void_p]
        lib.ngSpice_Init.restype = ctypes.c_int
        lib.ngSpice_Circ.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.ngSpice_Circ.restype = ctypes.c_int
        lib.ngSpice_Command.argtypes = [ctypes.c_char_p]
        lib.ngSpice_Command.restype = ctypes.c_int
        lib.ngGet_Vec_Info.argtypes = [ctypes.c_char_p]
        lib.ngGet_Vec_Info.restype = ctypes.POINTER(_VectorInfo)
        # the callbacks must outlive every call into the library: keep them on the instance
        self._callbacks = (_SendChar(self._on_char), _SendStat(self._on_status),
                           _ControlledExit(self._on_exit), _BGThreadRunning(self._on_background))
        with self.lock:
            status = lib.ngSpice_Init(self._callbacks[0], self._callbacks[1], self._callbacks[2],
                                      None, None, self._callbacks[3], None)
        if status != 0:
            raise SubstrateError(f"ngSpice_Init failed with status {status}: {self.last_messages()}")

    # -- callbacks (run in the calling thread: the library has no background thread here) --
    def _record(self, text: str) -> None:
        self.history.append(text)
        if self._capture is not None:
            self._capture.append(text)

    def _on_char(self, text: bytes, ident: int, user) -> int:
        self._record((text or b"").decode(errors="replace"))
        return 0

    def _on_status(self, text: bytes, ident: int, user) -> int:
        # ngspice's status line (the analysis running, its progress): kept for error reports
        self.history.append("status " + (text or b"").decode(errors="replace"))
        return 0

    def _on_exit(self, status: int, immediate: bool, on_quit: bool, ident: int, user) -> int:
        self.exited = f"ngspice asked to exit (status {status})"
        self._record(f"stderr {self.exited}")
        return 0

    def _on_background(self, running: bool, ident: int, user) -> int:
        return 0

    # -- calls ---------------------------------------------------------------------------------
    def last_messages(self, k: int = 8) -> str:
        return " | ".join(list(self.history)[-k:])

    def _check_alive(self) -> None:
        if self.exited is not None:
            raise SubstrateError(f"{self.exited}; its shared library cannot be used again in this "
                                 f"process (last messages: {self.last_messages()})")

    def command(self, text: str) -> list[str]:
        """Run one ngspice command synchronously; returns the messages it printed."""
        if "\n" in text:
            raise ValueError("one ngspice command per call")
        with self.lock:
            self._check_alive()
            self._capture = captured = []
            try:
                self._lib.ngSpice_Command(text.encode())
            finally:
                self._capture = None
            self._check_alive()
            return captured

    def load(self, deck: Sequence[str]) -> list[str]:
        """Load a deck (title first, ``.end`` last) as the current circuit; returns its messages.

        Raises NetlistError with ngspice's message and the deck line it names when ngspice
        refuses the deck (no circuit is then loaded)."""
        lines = [ln.encode() for ln in deck]
        array = (ctypes.c_char_p * (len(lines) + 1))(*lines, None)
        with self.lock:
            self._check_alive()
            self._capture = captured = []
            try:
                self._lib.ngSpice_Circ(array)
            finally:
                self._capture = None
        errors = [m for m in captured if _DECK_ERROR.search(m)]
        if errors:
            start = captured.index(errors[0])
            detail = " ".join(_strip(m) for m in captured[start:start + 3])
            line = _ERROR_LINE.search(errors[0])
            if self.exited is not None:      # numparam errors end ngspice: report them, and that
                start = next(i for i, m in enumerate(captured) if _DECK_ERROR.search(m) or _NETLIST_LINE.search(m))
                detail = " ".join(_strip(m) for m in captured[start:start + 2])
                detail += "; ngspice stopped and cannot run another circuit in this process"
                line = _NETLIST_LINE.search(captured[start])
            where = None if line is None else int(line.group(1))
            text = f"; deck line {where}: {deck[where - 1].strip()!r}" if where and where <= len(deck) else ""
            raise NetlistError(f"ngspice refused the deck: {detail}{text}", line=where)
        self._check_alive()
        return captured

    def scalar(self, name: str) -> float | None:
        """The first real value of vector ``name`` of the current plot (an operating point's
        node voltage), or None if there is none."""
        with self.lock:
            self._capture = []
            try:
                info = self._lib.ngGet_Vec_Info(name.encode())
            finally:
                self._capture = None
            if not info or not info.contents.v_realdata or info.contents.v_length != 1:
                return None
            return info.contents.v_realdata[0]


def _strip(message: str) -> str:
    return message.split(" ", 1)[1].strip() if message.startswith(("stdout ", "stderr ")) else message.strip()


_LIBRARY: SharedNgspice | None = None
_LIBRARY_LOCK = threading.Lock()


def library() -> SharedNgspice:
    """The process's ngspice, loaded and initialised on first use (SubstrateError if absent)."""
    global _LIBRARY
    with _LIBRARY_LOCK:
        if _LIBRARY is None:
            _LIBRARY = SharedNgspice()
        return _LIBRARY


def library_unavailable() -> str | None:
    """None if the shared library loads and solves a tiny circuit, else why not (one line,
    with the install command)."""
    try:
        circuit = SpiceCircuit(["check", "V1 a 0 1", "R1 a b 1k", "R2 b 0 1k", ".end"])
        try:
            values = circuit.operating_point(["b"])
        finally:
            circuit.close()
    except (SubstrateError, NetlistError, ConvergenceError) as exc:
        return str(exc)
    if not abs(values[0] - 0.5) < 1e-9:
        return f"ngspice's shared library solved a 1 V divider to {values[0]!r} V, not 0.5 V"
    return None


def spice_number(x: float) -> str:
    """A float as ngspice reads it back exactly (``repr``: 17 significant digits at most)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{x!r} cannot be given to ngspice")
    return repr(x)


class SpiceCircuit:
    """One deck kept loaded in the process's ngspice, its values changed in place.

    ``alter(element, parameter, value)`` changes an instance parameter (``alter R1
    resistance = 1000``; ``dc`` of a source, ``gain`` of a controlled source); only
    changed values are sent. :meth:`operating_point` runs one ``op`` and returns the named
    node voltages; its plot is destroyed after reading, so memory does not grow with the
    number of points. Close the circuit (or use it as a context manager) to remove it from
    ngspice.
    """

    def __init__(self, deck: Sequence[str], lib: SharedNgspice | None = None):
        self.deck = list(deck)
        self.lib = lib if lib is not None else library()
        self._values: dict[tuple[str, str], float] = {}
        self.closed = False
        with self.lib.lock:
            self._activate()

    def __enter__(self) -> "SpiceCircuit":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _activate(self) -> None:
        """Make this deck ngspice's current circuit (reloading it and replaying its alters)."""
        lib = self.lib
        if lib.owner is self:
            return
        if self.closed:
            raise SubstrateError("this ngspice circuit is closed")
        if lib.owner is not None:
            lib.command("remcirc")
            lib.owner = None
        lib.load(self.deck)
        lib.owner = self
        for (element, parameter), value in self._values.items():
            self._send(element, parameter, value)

    def _send(self, element: str, parameter: str, value: float) -> None:
        messages = self.lib.command(f"alter {element} {parameter} = {spice_number(value)}")
        errors = [m for m in messages if _DECK_ERROR.search(m)]
        if errors:
            raise SubstrateError(f"ngspice refused 'alter {element} {parameter}': {_strip(errors[0])}")

    def alter(self, element: str, parameter: str, value: float) -> None:
        """Set ``parameter`` of ``element`` (an instance of the deck) to ``value``."""
        key = (element.lower(), parameter.lower())
        value = float(value)
        if self._values.get(key) == value and self.lib.owner is self:
            return
        with self.lib.lock:
            self._activate()
            self._send(*key, value)
            self._values[key] = value

    def operating_point(self, nodes: Iterable[str]) -> np.ndarray:
        """One ``op``; the voltages (V) of ``nodes`` (deck spellings). ConvergenceError
        (with ngspice's messages) when ngspice finds no converged operating point."""
        nodes = list(nodes)
        with self.lib.lock:
            self._activate()
            messages = self.lib.command("op")
            failed = [_strip(m) for m in messages if _OP_FAILURE.search(m)]
            out = np.empty(len(nodes))
            try:
                if not failed:
                    for k, node in enumerate(nodes):
                        v = self.lib.scalar(node)
                        if v is None or not math.isfinite(v):
                            failed = [f"no finite voltage of node {node} after op"]
                            break
                        out[k] = v
            finally:
                self.lib.command("destroy all")
        if failed:
            distinct = list(dict.fromkeys(failed))
            shown = distinct[0] + (f" ... {distinct[-1]}" if len(distinct) > 1 else "")
            raise ConvergenceError(f"ngspice op did not converge: {shown}")
        return out

    def close(self) -> None:
        """Remove the deck from ngspice (it can no longer be run)."""
        if self.closed:
            return
        with self.lib.lock:
            if self.lib.owner is self:
                self.lib.command("remcirc")
                self.lib.owner = None
            self.closed = True

    def __del__(self):
        try:
            self.close()
        except Exception:       # interpreter shutdown or an exited library: nothing to free
            pass
