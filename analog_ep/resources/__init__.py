"""Files that ship with the package: example networks, board profiles, data sets, device
presets and the emulator's default calibration record."""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent


def bundled_path(kind: str, name: str) -> Path:
    """Path of a bundled file, e.g. ``bundled_path("netlists", "divider.cir")``.

    ``kind`` is one of ``netlists``, ``boards``, ``datasets``, ``calibration``, ``devices``.
    """
    return _ROOT / kind / name
