"""Sweep files: ``[base]`` settings, ``[axes]`` (lists, or ``{start, stop, num, log}``
ranges) expanded as a full grid, and optional ``[[rows]]`` of explicit settings (each row
crossed with the grid). Keys are ``train``'s long option names with dashes as underscores
(:data:`~analog_ep.training.TRAIN_OPTIONS`). Every error names the file, the line
and the key, and is raised before anything runs."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: the same parser, packaged
    import tomli as tomllib

from ..errors import ConfigError
from ..training import TRAIN_OPTIONS

#: Settings a sweep sets itself for every cell.
RESERVED = ("out", "resume", "no_progress")
TABLES = ("base", "axes", "rows", "boards")


@dataclass(frozen=True)
class Cell:
    """One training run of a sweep: a stable, readable ``id`` (its directory name) and its
    settings (``train``'s option names)."""

    id: str
    settings: dict


@dataclass(frozen=True)
class Sweep:
    path: str
    base: dict
    axes: dict[str, list]
    cells: tuple[Cell, ...]
    #: Serial ports of a rack: a cell with ``substrate = "serial"`` gets one of them.
    boards: tuple[str, ...] = ()

    @property
    def keys(self) -> list[str]:
        """Every setting that appears in a cell, in file order."""
        seen: dict[str, None] = {}
        for c in self.cells:
            seen.update(dict.fromkeys(c.settings))
        return list(seen)


def _line(text: str, table: str, key: str | None, index: int = 0) -> int:
    """1-based line of ``key`` in the ``index``-th ``[table]`` (or of the header)."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\[?\s*" + re.escape(table) + r"\s*\]\]?\s*$")
    starts = [i for i, l in enumerate(lines) if header.match(l)]
    if not starts:
        return 1
    start = starts[min(index, len(starts) - 1)]
    if key is None:
        return start + 1
    pat = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("["):
            break
        if pat.match(lines[i]):
            return i + 1
    return start + 1


def _check(value, key: str, where: str):
    """The value of setting ``key`` as its option's type; ConfigError otherwise."""
    kind = TRAIN_OPTIONS[key][0]
    ok = {bool: isinstance(value, bool), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool),
          str: isinstance(value, str),
          list: isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)}[kind]
    if not ok:
        want = "a list of integers" if kind is list else f"a {kind.__name__}"
        raise ConfigError(f"{where}: {key} must be {want}, got {value!r}")
    return float(value) if kind is float else value


def _axis(values, key: str, where: str) -> list:
    if isinstance(values, dict):
        extra = set(values) - {"start", "stop", "num", "log"}
        if extra or not {"start", "stop", "num"} <= set(values):
            raise ConfigError(f"{where}: range {key} takes start, stop, num and log, got {sorted(values)}")
        num = values["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise ConfigError(f"{where}: {key}.num must be an integer >= 1, got {num!r}")
        start, stop = (_check(values[k], key, where) if TRAIN_OPTIONS[key][0] is float
                       else float(_check(values[k], key, where)) for k in ("start", "stop"))
        if values.get("log", False):
            if start <= 0 or stop <= 0:
                raise ConfigError(f"{where}: a log-spaced {key} needs start and stop > 0")
            grid = np.geomspace(start, stop, num)
        else:
            grid = np.linspace(start, stop, num)
        kind = TRAIN_OPTIONS[key][0]
        if kind is int and not np.allclose(grid, np.round(grid)):
            raise ConfigError(f"{where}: {key} must be an integer but the range gives {grid.tolist()}")
        return [int(round(v)) for v in grid] if kind is int else [float(v) for v in grid]
    if not isinstance(values, list):
        raise ConfigError(f"{where}: axis {key} must be a list or a {{start, stop, num}} range, got {values!r}")
    if not values:
        raise ConfigError(f"{where}: axis {key} is empty")
    return [_check(v, key, where) for v in values]


def _known(key: str, where: str) -> None:
    if key in RESERVED:
        raise ConfigError(f"{where}: {key} is set by the sweep for each cell; remove it")
    if key not in TRAIN_OPTIONS:
        raise ConfigError(f"{where}: unknown key {key!r}; keys are train's long options with "
                          f"dashes as underscores ({', '.join(k for k in TRAIN_OPTIONS if k not in RESERVED)})")


def _format(value) -> str:
    text = "-".join(map(str, value)) if isinstance(value, list) else (f"{value:g}" if isinstance(value, float) else str(value))
    return re.sub(r"[^A-Za-z0-9.+-]", "-", text)


def cell_id(varied: dict) -> str:
    """Directory name of a cell from the settings that vary across the sweep:
    ``key=value`` joined by ``_`` (``seed=0_lr=0.01``), ``base`` when nothing varies."""
    return "_".join(f"{k}={_format(v)}" for k, v in varied.items()) or "base"


def load_sweep(path: str | Path) -> Sweep:
    """Read and expand a sweep file; ConfigError naming file, line and key on bad input."""
    path = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read sweep file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    for table in data:
        if table not in TABLES:
            raise ConfigError(f"{path}:{_line(text, table, None)}: unknown table [{table}]; use {', '.join(TABLES)}")
    base, axes, rows = data.get("base", {}), data.get("axes", {}), data.get("rows", [])
    if not isinstance(rows, list):
        raise ConfigError(f"{path}:{_line(text, 'rows', None)}: rows must be an array of tables [[rows]]")
    for key in base:
        where = f"{path}:{_line(text, 'base', key)}"
        _known(key, where)
        base[key] = _check(base[key], key, where)
    for key in axes:
        where = f"{path}:{_line(text, 'axes', key)}"
        _known(key, where)
        axes[key] = _axis(axes[key], key, where)
    for i, row in enumerate(rows):
        for key in row:
            where = f"{path}:{_line(text, 'rows', key, i)}"
            _known(key, where)
            if key in axes:
                raise ConfigError(f"{where}: {key} is both an axis and set in a row")
            row[key] = _check(row[key], key, where)
    boards = data.get("boards", {})
    ports = boards.get("ports", []) if isinstance(boards, dict) else None
    if set(boards) - {"ports"} or not isinstance(ports, list) or not all(isinstance(p, str) for p in ports):
        raise ConfigError(f"{path}:{_line(text, 'boards', None)}: [boards] takes ports = [\"PORT\", ...]")
    row_keys = list(dict.fromkeys(k for row in rows for k in row))
    cells, seen = [], {}
    for row in rows or [{}]:
        for combo in itertools.product(*axes.values()):
            point = {**row, **dict(zip(axes, combo))}
            settings = {**base, **point}
            cid = cell_id({k: point[k] for k in (*row_keys, *axes) if k in point})
            if cid in seen:
                raise ConfigError(f"{path}: two cells share the id {cid!r}; make the rows differ")
            seen[cid] = None
            cells.append(Cell(cid, settings))
    return Sweep(path, dict(base), dict(axes), tuple(cells), tuple(ports))
