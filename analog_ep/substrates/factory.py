"""Open a substrate from a ``--substrate`` string, and check what a rule needs of it.

(A rule's refusal of unmeasured nodes is :func:`analog_ep.learning.rules.state_from_readings`.)"""

from __future__ import annotations

import os

import numpy as np

from ..errors import ConfigError
from .base import Capabilities


def open_substrate(spec: str, graph, temperature: float | None = None,
                   rng: np.random.Generator | None = None, *, profile: str | None = None,
                   calibration=None):
    """``emulator`` -> :class:`EmulatedBoard` of ``graph`` at ``temperature`` (W, default 0);
    ``serial:PORT_OR_URL`` -> :class:`SerialBoard` on that port (a device path or a pyserial
    URL such as ``socket://localhost:4000``), with the board ``profile`` (default: the one
    the ``calibration`` record was made with, else the bundled ``emulator`` template) and ADC
    ``calibration``; ``temperature`` then states the
    board's noise temperature (the board sets it, the host cannot). A ``calibration`` record
    (a file or a shipped record's name) made on another board or with another profile, or
    stale, is refused with a ConfigError. The caller closes a SerialBoard (it is a context
    manager)."""
    kind, sep, where = spec.partition(":")
    if kind == "emulator" and not sep:
        from .emulated import EmulatedBoard
        board = EmulatedBoard(graph, temperature=0.0 if temperature is None else temperature, rng=rng)
    elif kind == "serial" and where:
        from .serial import SerialBoard
        if isinstance(calibration, (str, os.PathLike)):
            from ..calibration import calibration_path, load_calibration
            calibration = calibration_path(calibration)
            if profile is None:     # the profile the board was calibrated with
                profile = load_calibration(calibration).profile_file
        board = SerialBoard(where, graph, profile or "emulator", calibration=calibration,
                            temperature=temperature)
    else:
        raise ConfigError(f"--substrate {spec}: expected 'emulator' or 'serial:PORT_OR_URL' "
                          f"(a device such as /dev/ttyACM0, or a URL such as socket://host:port)")
    if isinstance(calibration, (str, os.PathLike)):
        from ..calibration import calibration_for
        try:                        # a record made on another board or profile is refused
            calibration_for(calibration, board, units=None)
        except BaseException:
            getattr(board, "close", lambda: None)()
            raise
    return board


def require_nudge(capabilities: Capabilities, purpose: str) -> None:
    """Refuse a nudged rule on a substrate without nudge sources."""
    if not capabilities.nudge:
        raise ConfigError(f"{purpose} nudges the outputs, but this substrate has no nudge current "
                          f"sources; use the unclamped thermal rule, which needs only clamping and reading")
