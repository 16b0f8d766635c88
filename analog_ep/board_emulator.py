"""The board emulator: the wire protocol served on a pseudo-terminal (or TCP), backed by an
emulated substrate.

:class:`EmulatorHAL` is the hardware layer of :class:`~analog_ep.hardware.boardcore.BoardCore`
on top of any :class:`~analog_ep.substrates.base.Substrate` (the in-process
``EmulatedBoard``): codes become quantised conductances, DAC voltages and nudge currents
through the board profile, readings become ADC codes. Only the Substrate interface is used,
so whatever the substrate models (settling, thermal noise at a temperature in the model's
energy units) reaches the wire unchanged. The link is a
:class:`~analog_ep.hardware.links.PtyLink` or :class:`~analog_ep.hardware.links.TcpLink`,
and :mod:`analog_ep.hardware.faults` injects faults into the replies.

This module sits above both the wire (``hardware/``) and the substrates it serves, so
neither imports the other.
"""

from __future__ import annotations

import math
import os
import threading
import time

import numpy as np

from .devices import device_seed, load_device
from .errors import AnalogEPError, ConfigError
from .graph import load_network
from .schema import family
from .hardware import protocol as P
from .hardware.boardcore import BoardCore, serve
from .hardware.faults import FaultyWriter, parse_faults
from .hardware.links import PtyLink, TcpLink
from .hardware.profile import BoardProfile, load_profile
from .models.resistive import ResistiveModel, compile_network
from .substrates.emulated import EmulatedBoard


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
        if getattr(substrate, "devices", None) is not None:
            # ELEM:PULS moves the emulated devices themselves (see pulse_elements)
            self.pulse_elements = self._pulse_devices
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

    def _pulse_devices(self, start, counts):
        """``ELEM:PULS`` on a board of devices: each element channel's count goes to the
        device of its parameter, and the codes reached are read back from the conductances
        the devices reached (the nearest code of the profile's element levels)."""
        self._apply()
        per_param = np.zeros(len(self._param_ch), dtype=np.int64)
        chans = np.arange(start, start + len(counts))
        for j, ch in enumerate(self._param_ch):
            hit = np.flatnonzero(chans == ch)
            if hit.size:
                per_param[j] = counts[int(hit[0])]
        g = self.substrate.pulse(per_param)
        self.elem[self._param_ch] = self.profile.element_codes(g)
        return [int(c) for c in self.elem[start:start + len(counts)]]

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


class BoardEmulator:
    """A board on a pty, served by a background thread; a context manager.

    ``network``: a graph, a compiled resistive model, a file or a bundled name;
    ``temperature`` (model energy units; watts for resistive networks) of the backing
    ``EmulatedBoard``; ``profile``: a BoardProfile, a file or a bundled name (templates are
    bound to the network); ``faults``: ``{kind: rate}`` or a ``--fault`` string;
    ``baudrate``: pace the link (None: unpaced); ``seed``: one root seed, spawned into the
    substrate's and the faults' generators; ``versions``: the protocol versions served;
    ``tcp``: serve on ``socket://127.0.0.1:<tcp>`` instead of a pty (0: any free port);
    ``device``: a device preset or file whose devices hold the trainable conductances,
    fabricated from ``seed`` as ``analog-ep train --seed`` fabricates them, and moved by
    ``ELEM:PULS``;
    ``replay``: announce capability ``replay`` and answer repeated tags from the store
    (False: a board without it, as version-1 firmware before it).
    ``path`` is the stable device name (or URL) a host opens.
    """

    def __init__(self, network="divider", *, temperature: float = 0.0, profile="emulator",
                 faults: dict[str, float] | str | None = None, baudrate: int | None = None,
                 seed: int | None = None, delay_s: float = 0.3, reconnect_s: float = 0.1,
                 path: str | None = None, tcp: int | None = None,
                 versions: tuple[int, int] = P.VERSIONS, replay: bool = True, device: str | None = None):
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
        # devices fabricated as the in-process emulator fabricates them from the same seed
        self.substrate = EmulatedBoard(model, temperature=temperature, rng=board_rng,
                                       measured=prof.measured.names,
                                       device=None if device is None else load_device(device),
                                       device_seed=device_seed(0 if seed is None else seed))
        self.profile = prof
        self.hal = EmulatorHAL(self.substrate, prof,
                               (model.param_names, model.input_names, model.output_names),
                               paced=baudrate is not None)
        name = getattr(model, "name", None) or "network"
        self.core = BoardCore(self.hal, ("ANALOG-EP", "BOARD-EMULATOR", P.clean_text(str(name)), "1.0"),
                              prof.capabilities(), prof.labels(), versions=versions,
                              settle_us=prof.settle_us, replay=replay)
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
