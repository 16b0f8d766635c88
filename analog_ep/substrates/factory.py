"""Open a substrate from a ``--substrate`` string, resolve its noise temperature, and check
what a rule needs of it.

(A rule's refusal of unmeasured nodes is :func:`analog_ep.learning.rules.state_from_readings`.)"""

from __future__ import annotations

import os

import numpy as np

from ..calibration.record import CalibrationRecord, calibration_for, read_calibration
from ..devices import Programming, load_device
from ..errors import ConfigError
from .base import Capabilities
from .emulated import EmulatedBoard
from .ngspice import NgspiceNetwork
from .serial import SerialBoard


def resolve_temperature(flag: float | None, record: CalibrationRecord | None, stated: float | None,
                        default: float | None) -> float | None:
    """The noise temperature of a run (model energy units), from the first of: the
    ``--temperature`` flag, the calibration record (checked against the substrate), what the
    substrate states (a board profile's ``temperature``), and the family's default (which
    only the emulator has: a board's noise is what it is). None when none applies."""
    for value in (flag, None if record is None else record.temperature, stated, default):
        if value is not None:
            return float(value)
    return None


def open_substrate(spec: str, graph, temperature: float | None = None,
                   rng: np.random.Generator | None = None, *, profile: str | None = None,
                   calibration: CalibrationRecord | str | os.PathLike | None = None,
                   default_temperature: float | None = None, device: str | None = None,
                   program: str | None = None, pulse_rounding: str | None = None, device_seed=0, sampler: str = "auto"):
    """``emulator`` -> :class:`EmulatedBoard` of ``graph``; ``ngspice`` -> :class:`NgspiceNetwork`
    of ``graph`` (noiseless: no temperature, record or default temperature; a thermal rule
    is refused here); ``serial:PORT_OR_URL`` ->
    :class:`SerialBoard` on that port (a device path or a pyserial URL such as
    ``socket://localhost:4000``), with the board ``profile`` (default: the one the
    ``calibration`` record was made with, else the bundled ``emulator`` template).

    The ``calibration`` record (a file, a shipped record's name, or a record already read)
    is read once and checked against the opened substrate: one made on another board or
    with another profile, or stale, is refused with a ConfigError. Its ADC table corrects a
    board's readings. The substrate's ``capabilities.temperature`` is then
    :func:`resolve_temperature` of ``temperature``, the record, the board profile's, and
    ``default_temperature`` (emulator only; without any, the emulator is noiseless).
    With a ``device`` (a preset name or device file), the emulator's trainable conductances
    are devices fabricated from ``device_seed``, written by ``program`` (``pulses`` or
    ``verify``; default ``pulses``) with open-loop counts rounded as ``pulse_rounding``
    says (:class:`~analog_ep.devices.Programming`); a serial board has its own parts.

    ``sampler`` chooses how the emulator draws thermal readings (see
    :func:`~analog_ep.substrates.emulated.choose_sampler`); a board's noise is physical, so
    on a serial substrate anything but ``auto`` is refused.
    The caller closes a SerialBoard (it is a context manager)."""
    record = read_calibration(calibration) if isinstance(calibration, (str, os.PathLike)) else calibration
    kind, sep, where = spec.partition(":")
    if kind == "emulator" and not sep:
        T = resolve_temperature(temperature, record, None, default_temperature)
        spec = None if device is None else load_device(device)
        programming = Programming(method=program or "pulses", rounding=pulse_rounding or "deterministic")
        board = EmulatedBoard(graph, temperature=0.0 if T is None else T, rng=rng, device=spec,
                              device_seed=device_seed, programming=programming, sampler=sampler)
    elif kind == "ngspice" and not sep:
        if temperature is not None or record is not None or default_temperature is not None:
            raise ConfigError("--substrate ngspice computes noiseless operating points: it takes no "
                              "temperature or calibration record, and the thermal rules need a noisy "
                              "substrate (use --rule ep, exact or fd, or --substrate emulator)")
        if device is not None or sampler != "auto":
            raise ConfigError("--device and --sampler apply to the in-process emulator; --substrate ngspice "
                              "runs the netlist's own parts, noiseless")
        board = NgspiceNetwork(graph)
    elif kind == "serial" and where:
        if device is not None:
            raise ConfigError(f"--device {device} gives the emulator's devices; the board at {where} "
                              "has its own parts")
        if sampler != "auto":
            raise ConfigError(f"--sampler {sampler} chooses the emulator's sampler; a board's readings "
                              "come from its own physics")
        if profile is None and record is not None:      # the profile the board was calibrated with
            profile = record.profile_file
        board = SerialBoard(where, graph, profile or "emulator", calibration=record,
                            temperature=resolve_temperature(temperature, record, None, None))
    else:
        raise ConfigError(f"--substrate {spec}: expected 'emulator', 'ngspice' or 'serial:PORT_OR_URL' "
                          f"(a device such as /dev/ttyACM0, or a URL such as socket://host:port)")
    if record is not None:
        try:                        # a record made on another board or profile is refused
            calibration_for(record, board, units=None)
        except BaseException:
            getattr(board, "close", lambda: None)()
            raise
    return board


def require_output_clamp(capabilities: Capabilities, purpose: str) -> None:
    """Refuse a rule that holds the outputs at fixed voltages on a substrate that cannot."""
    if not capabilities.clamp_outputs:
        raise ConfigError(f"{purpose} holds the outputs at fixed voltages, but this substrate cannot clamp "
                          f"its outputs (the in-process emulator can); use ep, which nudges them with currents")


def require_nudge(capabilities: Capabilities, purpose: str) -> None:
    """Refuse a nudged rule on a substrate without nudge sources."""
    if not capabilities.nudge:
        raise ConfigError(f"{purpose} nudges the outputs, but this substrate has no nudge current "
                          f"sources; use the unclamped thermal rule, which needs only clamping and reading")
