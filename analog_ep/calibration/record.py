"""Calibration records: JSON (schema ``analog-ep/calibration`` version 1) with the headline
``"temperature": {"value", "stderr", "units"}``, read once per run and checked against the
substrate in use (board identity, profile, units, age). Substrates and the training tasks
read records through this module; nothing here drives a substrate."""

from __future__ import annotations

import datetime as _dt
import json
import math
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

SCHEMA = "analog-ep/calibration"
SCHEMA_VERSION = 1
#: Units of T per network family.
TEMPERATURE_UNITS = {"resistive": "W", "oscillator": "coupling units", "quantum": "Hamiltonian units"}
METHODS = ("equipartition", "fdt", "both")


@dataclass(frozen=True)
class CalibrationRecord:
    """A calibration record (see the module docstring for the JSON schema). ``data`` is the
    validated JSON object; the headline is ``temperature``, ``stderr`` and ``units``."""

    data: dict
    source: str = "<record>"

    @property
    def temperature(self) -> float:
        return float(self.data["temperature"]["value"])

    @property
    def stderr(self) -> float:
        return float(self.data["temperature"]["stderr"])

    @property
    def units(self) -> str:
        return self.data["temperature"]["units"]

    @property
    def board_id(self) -> str:
        return self.data["board"]["id"]

    @property
    def profile(self) -> str | None:
        return self.data["profile"]

    @property
    def profile_file(self) -> str | None:
        """The profile the board was calibrated with, as a bundled name or a file path."""
        return self.data.get("profile_file")

    @property
    def verdict(self) -> str:
        return self.data["consistency"]["verdict"]

    def __repr__(self) -> str:
        return (f"CalibrationRecord({self.source}: T = {self.temperature:.4g} +- {self.stderr:.2g} "
                f"{self.units}, board {self.board_id!r}, verdict {self.verdict})")

    def to_json(self) -> str:
        return json.dumps(self.data, indent=1, default=json_default) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = "<record>") -> "CalibrationRecord":
        validate_record(data, source)
        return cls(data, source)


def json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} to a calibration record")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate_record(data: Any, source: str = "<record>") -> None:
    """Raise ConfigError naming the file and the field if ``data`` is not a version-1 record."""
    def fail(field_, why):
        raise ConfigError(f"{source}: invalid calibration record: {field_} {why}")

    if not isinstance(data, dict):
        fail("the file", "must hold a JSON object")
    if data.get("schema") != SCHEMA:
        fail("'schema'", f"must be {SCHEMA!r}")
    if data.get("version") != SCHEMA_VERSION:
        fail("'version'", f"must be {SCHEMA_VERSION} (this package reads version {SCHEMA_VERSION})")
    t = data.get("temperature")
    if not isinstance(t, dict):
        fail("'temperature'", 'must be {"value": T, "stderr": se, "units": ...}')
    if not _number(t.get("value")) or t["value"] <= 0:
        fail("'temperature.value'", "must be a positive number")
    if not _number(t.get("stderr")) or t["stderr"] < 0:
        fail("'temperature.stderr'", "must be a number >= 0")
    if not isinstance(t.get("units"), str) or not t["units"]:
        fail("'temperature.units'", "must be a non-empty string")
    board = data.get("board")
    if not isinstance(board, dict) or not isinstance(board.get("id"), str) or not isinstance(board.get("idn"), str):
        fail("'board'", 'must be {"idn": "*IDN? reply", "id": "maker,model,serial"}')
    for key in ("profile", "profile_file"):
        if data.get(key) is not None and not isinstance(data[key], str):
            fail(f"'{key}'", "must be a string or null")
    if data.get("method") not in METHODS:
        fail("'method'", f"must be one of {', '.join(METHODS)}")
    for key in ("created", "expires"):
        value = data.get(key)
        if key == "expires" and value is None:
            continue
        try:
            _parse_time(value)
        except (TypeError, ValueError):
            fail(f"'{key}'", "must be an ISO 8601 time with a time zone" + (" or null" if key == "expires" else ""))
    per = data.get("per_node")
    if not isinstance(per, dict) or not all(isinstance(v, dict) and _number(v.get("value")) and _number(v.get("stderr"))
                                            for v in per.values()):
        fail("'per_node'", 'must map node names to {"value": ..., "stderr": ...}')
    cons = data.get("consistency")
    if not isinstance(cons, dict) or not isinstance(cons.get("verdict"), str) or not isinstance(cons.get("message"), str):
        fail("'consistency'", "must hold a 'verdict' and a 'message'")
    if "adc" in data and data["adc"] is not None and not isinstance(data["adc"], dict):
        fail("'adc'", "must be an object or null")
    if not isinstance(data.get("command"), str):
        fail("'command'", "must be the command line that produced the record")


def _parse_time(value: str) -> _dt.datetime:
    if not isinstance(value, str):
        raise TypeError(value)
    t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(value)
    return t


def board_identity(idn: str) -> str:
    """The board identity in an ``*IDN?`` reply: its first three fields (maker, model, serial
    number); the firmware version may change without recalibration."""
    return ",".join(f.strip() for f in str(idn).split(",")[:3])


def calibration_path(name_or_path: str | Path) -> Path:
    """A record's path: an existing file, or the name of a record shipped with the package
    (``emulator-default``, with or without ``.json``), found wherever the package is installed.
    A name that is neither raises ConfigError listing the shipped records."""
    path = Path(name_or_path)
    if path.exists() or path.parent != Path("."):
        return path
    folder = resources.files("analog_ep.resources") / "calibration"
    bundled = folder / (path.name if path.suffix == ".json" else f"{path.name}.json")
    if bundled.is_file():
        return Path(str(bundled))
    names = sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".json"))
    raise ConfigError(f"{name_or_path}: no such calibration record (shipped: {', '.join(names)})")


def read_calibration(path: str | Path) -> CalibrationRecord:
    """Read and validate a calibration record (a file, or a shipped record's name, see
    :func:`calibration_path`), without checking it against a board: a run reads its record
    once, then checks it with :func:`check_calibration` or :func:`calibration_for`."""
    path = calibration_path(path)
    src = str(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{src}: cannot read calibration record ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{src}: invalid calibration record: not JSON ({exc.msg} at line {exc.lineno})") from None
    return CalibrationRecord.from_dict(data, src)


def check_calibration(rec: CalibrationRecord, board_id: str | None = None, profile: str | None = None,
                      units: str | None = None, now: _dt.datetime | None = None) -> CalibrationRecord:
    """``rec`` if it applies, else ConfigError naming the file and what to do.

    ``board_id`` is the ``*IDN?`` reply (or its first three fields) of the board in use and
    ``profile`` its profile name: a record made on another board or with another profile is
    refused, as is one past its ``expires`` time or in other ``units``.
    """
    src, data = rec.source, rec.data
    redo = "; recalibrate with `analog-ep calibrate`"
    if board_id is not None and board_identity(board_id) != rec.board_id:
        raise ConfigError(f"{src}: calibration record is for board {rec.board_id!r}, not "
                          f"{board_identity(board_id)!r}{redo}")
    if profile is not None and rec.profile != profile:
        raise ConfigError(f"{src}: calibration record was made with profile {rec.profile!r}, not "
                          f"{profile!r}{redo}")
    if units is not None and rec.units != units:
        raise ConfigError(f"{src}: calibration record gives T in {rec.units}, this network needs {units}")
    if data.get("expires") is not None:
        now = now or _dt.datetime.now(_dt.timezone.utc)
        if now > _parse_time(data["expires"]):
            raise ConfigError(f"{src}: calibration record expired on {data['expires']} (stale){redo}")
    return rec


def load_calibration(path: str | Path, board_id: str | None = None, profile: str | None = None,
                     units: str | None = None, now: _dt.datetime | None = None) -> CalibrationRecord:
    """:func:`read_calibration`, then :func:`check_calibration` against the given board."""
    return check_calibration(read_calibration(path), board_id, profile, units, now)


#: Identity of the in-process emulator (any network: its noise is set, not drifting).
EMULATOR_IDN = "ANALOG-EP,EMULATOR,in-process,1"


def substrate_identity(substrate) -> tuple[str, str | None]:
    """``(idn, profile)`` of a substrate: a serial board's ``*IDN?`` reply and profile name,
    or :data:`EMULATOR_IDN` and None for the in-process emulator. Pass them to
    :func:`load_calibration` to refuse a record made on another board."""
    client = getattr(substrate, "client", None)
    if client is not None and getattr(client, "identity", None):
        prof = getattr(substrate, "profile", None)
        return ",".join(client.identity), getattr(prof, "name", None)
    return EMULATOR_IDN, None


def calibration_for(record: CalibrationRecord | str | Path, substrate,
                    units: str | None = "W") -> CalibrationRecord:
    """The record (read already, or a path read now) checked against the substrate in use:
    refused (ConfigError) when made on another board, with another profile, in other
    ``units`` or when stale; a warning when its verdict says the noise is not Boltzmann.
    The substrate factory calls this once per run, and ``T = record.temperature`` follows."""
    rec = record if isinstance(record, CalibrationRecord) else read_calibration(record)
    idn, profile = substrate_identity(substrate)
    check_calibration(rec, board_id=idn, profile=profile, units=units)
    if rec.verdict != "boltzmann":
        warnings.warn(f"{rec.source}: {rec.data['consistency']['message']}", stacklevel=2)
    return rec
