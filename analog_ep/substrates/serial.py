"""A lab board behind a serial port, as a :class:`~analog_ep.substrates.base.Substrate`.

Values are converted with the board profile (``drivers/boards/*.toml``) and, when given,
the ADC calibration; the wire carries integer codes only (see ``drivers/PROTOCOL.md``).
A board clamps one input row at a time (``batch = False``): ``equilibrium`` and ``sample``
loop over the clamped rows, sending DAC and nudge codes only when they change.

Nudging. A board's nudge sources are fixed currents. ``nudge(beta, targets)`` is realised
to first order: per row, the free reading ``V_o`` of each output is taken and the current
``I_o = beta (d_o - V_o)`` injected, which differs from the exact nudge
``beta (d_o - V_o(beta))`` by ``O(beta^2)`` with the same sign for ``+beta`` and
``-beta``, so centred EP estimates keep their ``O(beta^2)`` bias. It needs the outputs to
be measured. A board without nudge sources refuses nudging with a ConfigError; the
unclamped thermal rule needs only ``clamp`` and ``sample``.

A lost port on a board with capability ``replay`` is reopened inside the call in progress
(:meth:`SerialBoard.reconnect`, bounded) and the command in flight sent again with its
original tag, so the board executes it once and the call returns as if nothing happened.
On other boards it raises :class:`~analog_ep.hardware.errors.BoardDisconnectedError` from
the call in progress; :meth:`SerialBoard.reconnect` reopens it (bounded) and re-applies
every setting, so a run can repeat the call or resume from its last checkpoint.
"""

from __future__ import annotations

import json

from collections.abc import Mapping

import numpy as np

from ..calibration.record import CalibrationRecord, calibration_path
from ..errors import ConfigError
from ..hardware import protocol as P
from ..hardware.client import BoardClient
from ..hardware.errors import BoardProtocolError, BoardTimeoutError
from ..hardware.profile import BoardProfile, load_profile
from ..models.resistive import ResistiveModel, compile_network
from .base import Capabilities



def load_adc_calibration(source) -> dict[str, tuple[float, float]]:
    """ADC calibration ``{node: (gain, offset)}`` (true volts = gain * read volts + offset)
    from a mapping, or a calibration record (:class:`~analog_ep.calibration.record.CalibrationRecord`,
    or its file) with an ``adc`` table ``{"node": {"gain": g, "offset": o, ...}}``; a record
    without one (or with ``"adc": null``) calibrates nothing."""
    if isinstance(source, Mapping):
        table = source
        where = "calibration"
    else:
        if isinstance(source, CalibrationRecord):
            where, data = source.source, source.data
        else:                       # a record's file, or a file holding only an ``adc`` table
            path = calibration_path(source)
            where = str(path)
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{where}: cannot read an ADC calibration: {exc}") from None
        table = (data.get("adc") if isinstance(data, Mapping) else None) or {}
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: 'adc' must map nodes to a gain and an offset")
    out = {}
    for node, v in table.items():
        try:
            gain, offset = (float(v["gain"]), float(v["offset"])) if isinstance(v, Mapping) else map(float, v)
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{where}: ADC calibration of node {node} needs a gain and an offset") from None
        out[str(node)] = (gain, offset)
    return out


class SerialBoard:
    """A board speaking ``drivers/PROTOCOL.md`` over ``port`` (a device path or a pyserial
    URL such as ``socket://host:4000``), driven as a Substrate.

    ``network``: the graph or compiled model wired on the board (gives the parameter,
    input and output order); ``profile``: a BoardProfile, a file or a bundled name;
    ``calibration``: ADC gain/offset per node (mapping or calibration record path);
    ``temperature``: the board's noise temperature in watts if known (else the profile's).
    ``transport``: an open port-like object instead of ``port`` (scripted tests).
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, port: str | None, network, profile: BoardProfile | str = "emulator", *,
                 calibration=None, temperature: float | None = None, transport=None):
        model = network if isinstance(network, ResistiveModel) else compile_network(network)
        self.param_names, self.input_names = model.param_names, model.input_names
        self.output_names = model.output_names
        prof = profile if isinstance(profile, BoardProfile) else load_profile(profile)
        self.profile = prof = prof.bind(model.param_names, model.input_names, model.output_names,
                                        model.node_names)
        self._param_ch = np.array([prof.elements.index(n) for n in self.param_names], dtype=np.intp)
        self._input_ch = np.array([prof.inputs.names.index(n) for n in self.input_names], dtype=np.intp)
        measured = prof.measured.names
        self._output_meas = np.array([measured.index(n) if n in measured else -1 for n in self.output_names],
                                     dtype=np.intp)
        self._nudge_ch = (None if prof.nudge is None else
                          np.array([prof.nudge.names.index(n) for n in self.output_names], dtype=np.intp))
        cal = {} if calibration is None else load_adc_calibration(calibration)
        unknown = [n for n in cal if n not in measured]
        if unknown:
            raise ConfigError(f"ADC calibration names unmeasured node(s) {', '.join(unknown)}")
        self._gain = np.array([cal.get(n, (1.0, 0.0))[0] for n in measured])
        self._offset = np.array([cal.get(n, (1.0, 0.0))[1] for n in measured])
        self.capabilities = Capabilities(
            measured=measured, nudge=prof.nudge is not None, batch=False,
            temperature=prof.temperature if temperature is None else float(temperature), quantised=True)
        self.client = BoardClient(port, transport=transport, baudrate=prof.baudrate, timeout=prof.timeout,
                                  open_settle=prof.open_settle, max_block=prof.max_block,
                                  retries=prof.retries,
                                  non_idempotent=prof.non_idempotent)
        # on a replay board a lost port is reopened inside the command, which is then sent
        # again with its tag: it takes effect once and no reading is taken twice
        self.client.on_lost = self.reconnect
        self._elem = np.zeros(len(prof.elements), dtype=np.int64)
        self._dac_rows = np.zeros((1, len(prof.inputs.names)), dtype=np.int64)
        self._nudge_rows = np.zeros((1, 0 if prof.nudge is None else len(prof.nudge.names)), dtype=np.int64)
        self._beta, self._targets = 0.0, None
        if transport is None:
            self.client.open()
        try:
            self._configure()
        except BaseException:
            self.client.close()
            raise

    def __repr__(self) -> str:
        return f"SerialBoard({self.client!r}, {self.profile!r}, identity={','.join(self.client.identity)!r})"

    @property
    def identity(self) -> str:
        """The board as its ``*IDN?`` names it (maker, model, serial number; not the
        firmware version) and its profile: what a checkpoint records instead of the port,
        which may change between runs."""
        maker, model, serial = (tuple(self.client.identity) + ("", "", ""))[:3]
        return f"{maker},{model},{serial} (profile {self.profile.name})"

    def __enter__(self) -> "SerialBoard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    # -- connection ----------------------------------------------------------------

    def _configure(self) -> None:
        """Check the board against the profile and apply every cached setting."""
        self.profile.check_board(self.client.caps, ",".join(self.client.identity),
                                 lambda kind: self.client.query_confirmed("CHAN:MAP?", kind))
        self.client.command("SETT:TIME", self.profile.settle_us)
        self.client.command("ELEM:BULK", 0, P.pack_codes("H", self._elem.tolist()))
        self._sent_dac: tuple | None = None
        self._sent_nudge: tuple | None = None

    def reconnect(self, tries: int = 5, backoff: float = 0.1) -> None:
        """Reopen the port and re-apply the parameters, settle time, inputs and nudge
        currents: at most ``tries`` attempts, waiting ``backoff * 2^k`` s before attempt
        ``k``; raises BoardDisconnectedError when every attempt fails."""
        self.client.reconnect(tries, backoff, then=self._configure)

    # -- Substrate -----------------------------------------------------------------

    def set_parameters(self, theta: np.ndarray) -> np.ndarray:
        """Round each conductance (S) to the nearest level of its element; returns the
        applied values, shape (P,)."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (len(self.param_names),) or not np.all(np.isfinite(theta)):
            raise ConfigError(f"parameters must be {len(self.param_names)} finite conductances "
                              f"({', '.join(self.param_names)}), got shape {theta.shape}")
        elem = self._elem.copy()
        elem[self._param_ch] = self.profile.element_codes(theta)
        self.client.command("ELEM:BULK", 0, P.pack_codes("H", elem.tolist()))
        self._elem = elem
        return self.profile.element_values(elem[self._param_ch])

    def pulse(self, counts) -> np.ndarray:
        """Apply ``counts[j]`` pulses (signed integers, up if > 0) to the element of
        parameter ``j`` with ``ELEM:PULS`` (PROTOCOL.md section 7), each element stopping at
        its ends; returns the conductances reached (S, shape (P,)), read back with
        ``ELEM:CODE?``.

        A count above the profile's ``max_pulse`` is split over several commands, never
        truncated. A pulse command is never retried blindly: after a lost reply the board's
        count of applied pulse commands (``ELEM:PULS?``) tells whether it was applied; only
        a command known not to have been applied is sent again."""
        if not self.client.caps.get("pulse", 0):
            raise ConfigError(f"board {self.profile.name} does not serve ELEM:PULS (no capability pulse=1)")
        c = np.asarray(counts)
        if c.shape != (len(self.param_names),) or not np.issubdtype(c.dtype, np.integer):
            raise ConfigError(f"pulse counts must be {len(self.param_names)} integers "
                              f"({', '.join(self.param_names)}), got {c.dtype} of shape {c.shape}")
        remaining = np.zeros(len(self._elem), dtype=np.int64)
        remaining[self._param_ch] = c
        step = self.profile.max_pulse
        applied = int(self.client.query("ELEM:PULS?"))
        while np.any(remaining):
            chunk = np.clip(remaining, -step, step)
            self._send_pulses(chunk, applied)
            applied += 1
            remaining -= chunk
        self._elem = np.array([int(self.client.query("ELEM:CODE?", ch)) for ch in range(len(self._elem))],
                              dtype=np.int64)
        return self.profile.element_values(self._elem[self._param_ch])

    def _send_pulses(self, chunk: np.ndarray, applied: int) -> None:
        """One ``ELEM:PULS``; ``applied``: the board's count of pulse commands before it."""
        block = P.pack_codes("h", chunk.tolist())
        for _ in range(1 + self.client.retries):
            try:
                self.client.command("ELEM:PULS", 0, block)
                return
            except (BoardTimeoutError, BoardProtocolError):
                now = int(self.client.query("ELEM:PULS?"))
                if now == applied + 1:
                    return                      # applied; only its reply was lost
                if now != applied:
                    raise BoardProtocolError(f"ELEM:PULS: the board counts {now} pulse commands, "
                                             f"expected {applied} or {applied + 1}") from None
        raise BoardTimeoutError(f"ELEM:PULS was not applied in {1 + self.client.retries} attempts")

    def clamp(self, inputs: np.ndarray) -> None:
        """Clamp input rows (B, n_inputs) volts; applied row by row when measuring."""
        u = np.atleast_2d(np.asarray(inputs, dtype=float))
        if u.ndim != 2 or u.shape[1] != len(self.input_names):
            raise ConfigError(f"inputs must have shape (B, {len(self.input_names)}) for "
                              f"{', '.join(self.input_names)}; got {np.shape(inputs)}")
        rows = np.repeat(self._dac_rows[:1], len(u), axis=0)
        rows[:, self._input_ch] = self.profile.dac_codes(u)
        self._dac_rows = rows

    def _require_nudge(self) -> None:
        if not self.capabilities.nudge:
            raise ConfigError(f"board {self.profile.name} has no nudge current sources, so nudged "
                              f"rules cannot run on it; the unclamped thermal rule needs only "
                              f"clamping and reading")

    def nudge(self, beta: float, targets: np.ndarray | None = None) -> None:
        """Nudge the outputs towards ``targets`` (B, n_outputs) with strength ``beta`` (S),
        to first order (module docstring); ``beta = 0`` releases them."""
        if beta == 0.0:
            self._beta, self._targets = 0.0, None
            return
        self._require_nudge()
        if targets is None:
            raise ConfigError("nudging needs targets")
        missing = [n for n, i in zip(self.output_names, self._output_meas) if i < 0]
        if missing:
            raise ConfigError(f"board {self.profile.name} does not measure output(s) {', '.join(missing)}, "
                              f"which nudging needs")
        d = np.atleast_2d(np.asarray(targets, dtype=float))
        if d.shape[1] != len(self.output_names):
            raise ConfigError(f"targets must have shape (B, {len(self.output_names)}); got {d.shape}")
        self._beta, self._targets = float(beta), d

    def nudge_currents(self, currents: np.ndarray) -> None:
        """Fixed output currents (A), shape (n_outputs,) or (B, n_outputs)."""
        self._require_nudge()
        i = np.atleast_2d(np.asarray(currents, dtype=float))
        if i.shape[1] != len(self.output_names):
            raise ConfigError(f"currents must have shape (n_outputs,) = ({len(self.output_names)},); "
                              f"got {np.shape(currents)}")
        rows = np.zeros((len(i), self._nudge_rows.shape[1]), dtype=np.int64)
        rows[:, self._nudge_ch] = self.profile.nudge_codes(i)
        self._nudge_rows = rows

    def equilibrium(self) -> np.ndarray:
        """Averaged reading of every measured node per clamped row, (B, n_measured) V."""
        return np.stack([self._row(b, self._measure) for b in range(self._rows())])

    def sample(self, n: int) -> np.ndarray:
        """``n`` readings of every measured node per clamped row, (B, n, n_measured) V,
        acquired in blocks of at most ``maxblock`` bytes."""
        if int(n) != n or n < 1:
            raise ConfigError(f"number of samples must be an integer >= 1, got {n}")
        return np.stack([self._row(b, lambda: self._acquire(int(n))) for b in range(self._rows())])

    # -- rows ----------------------------------------------------------------------

    def _rows(self) -> int:
        counts = {len(self._dac_rows), len(self._nudge_rows)}
        if self._targets is not None:
            counts.add(len(self._targets))
        b = max(counts)
        if any(c not in (1, b) for c in counts):
            raise ConfigError(f"inputs, targets and nudge currents have different batch sizes {sorted(counts)}")
        return b

    def _send(self, header: str, fmt: str, codes: np.ndarray, attr: str) -> None:
        key = tuple(codes.tolist())
        if key and getattr(self, attr) != key:
            self.client.command(header, 0, P.pack_codes(fmt, key))
            setattr(self, attr, key)

    def _row(self, b: int, read):
        self._send("DAC:BULK", "H", self._dac_rows[min(b, len(self._dac_rows) - 1)], "_sent_dac")
        fixed = self._nudge_rows[min(b, len(self._nudge_rows) - 1)]
        if self._beta != 0.0:
            self._send("NUDG:BULK", "h", fixed, "_sent_nudge")
            v_out = self._measure()[self._output_meas]
            d = self._targets[min(b, len(self._targets) - 1)]
            currents = self.profile.nudge_currents(fixed[self._nudge_ch]) + self._beta * (d - v_out)
            fixed = fixed.copy()
            fixed[self._nudge_ch] = self.profile.nudge_codes(currents)
        if fixed.size:
            self._send("NUDG:BULK", "h", fixed, "_sent_nudge")
        return read()

    def _volts(self, codes: np.ndarray) -> np.ndarray:
        return self._gain * self.profile.adc_volts(codes) + self._offset

    def _measure(self) -> np.ndarray:
        avg = self.profile.average
        n = len(self.capabilities.measured)
        payload = self.client.query_block("MEAS?", avg, expected_len=4 * n,
                                          timeout=self.profile.timeout + self.profile.settle_us * 1e-6)
        return self._volts(np.frombuffer(payload, ">u4") / avg)

    def _acquire(self, n: int) -> np.ndarray:
        m = len(self.capabilities.measured)
        per_block = max(1, self.client.block_limit // (2 * m))
        dt = self.profile.interval_us * 1e-6
        chunks = []
        for start in range(0, n, per_block):
            k = min(per_block, n - start)
            payload = self.client.query_block(
                "ACQ?", k, self.profile.interval_us, expected_len=2 * k * m,
                timeout=self.profile.timeout + k * dt + self.profile.settle_us * 1e-6)
            chunks.append(np.frombuffer(payload, ">u2").reshape(k, m))
        return self._volts(np.concatenate(chunks))
