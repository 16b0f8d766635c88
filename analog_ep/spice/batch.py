"""``ngspice -b`` as a process per deck: the independent cross-check of the emulator (and of
the shared-library substrate, :mod:`analog_ep.spice.shared`). Each call writes the deck to
a temporary folder, runs the ngspice binary there and reads its ASCII raw file, so nothing
of one run survives into the next; it costs a process start per operating point (tens of
milliseconds), which is what the shared library avoids."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable

import networkx as nx

from ..errors import NetlistError
from ..netlist import file_deck, spice_lines
from ..schema import normalise_resistive

#: ngspice's tight tolerances for the cross-check (its defaults are good to about 1e-3).
NGSPICE_OPTIONS = ".options reltol=1e-9 vntol=1e-12 abstol=1e-18"


def ngspice_unavailable(executable: str = "ngspice") -> str | None:
    """None if ``executable`` runs a tiny deck, else the reason it cannot be used."""
    if shutil.which(executable) is None:
        return f"{executable} is not installed (apt-get install ngspice)"
    try:
        run_ngspice(["check", "V1 a 0 1", "R1 a 0 1k"], ["op"], executable=executable, timeout=60)
    except NetlistError as exc:
        return f"{executable} cannot run: {exc}"
    return None


def run_ngspice(deck: Iterable[str], control: Iterable[str], *, executable: str = "ngspice",
                timeout: float | None = 600.0, options: str = NGSPICE_OPTIONS,
                raw: bool = False) -> tuple[str, dict[str, float] | None]:
    """Run ``ngspice -b`` on ``deck`` (lines without ``.end``) with ``options`` and a control
    block (``set numdgt=15`` then ``control``). With ``raw=True`` an ASCII raw file of the
    last analysis is written and returned as ``{vector name: value}`` (e.g. ``v(out)``).
    Returns ``(stdout, values)``; raises NetlistError if ngspice fails or is missing."""
    with tempfile.TemporaryDirectory(prefix="analog-ep-ngspice-") as tmp:
        raw_path = Path(tmp) / "result.raw"
        lines = list(deck) + [options, ".control", "set numdgt=15", "set filetype=ascii"]
        lines += list(control)
        if raw:
            lines.append(f"write {raw_path}")
        lines += [".endc", ".end"]
        deck_path = Path(tmp) / "deck.cir"
        deck_path.write_text("\n".join(lines) + "\n")
        try:
            proc = subprocess.run([executable, "-b", str(deck_path)], capture_output=True,
                                  text=True, timeout=timeout, cwd=tmp)
        except FileNotFoundError:
            raise NetlistError(f"{executable} not found") from None
        except subprocess.TimeoutExpired:
            raise NetlistError(f"{executable} ran past {timeout} s") from None
        errors = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines()
                  if re.search(r"\berror\b", ln, re.I)]
        values = None
        if raw:
            if not raw_path.is_file():
                detail = "; ".join(errors[:3]) or proc.stderr.strip()[-300:]
                raise NetlistError(f"{executable} produced no result: {detail}")
            values = _read_raw(raw_path.read_text())
        elif errors:
            raise NetlistError(f"{executable}: {'; '.join(errors[:3])}")
        return proc.stdout, values


def _read_raw(text: str) -> dict[str, float]:
    """Vectors of a one-point ASCII raw file, ``{name: value}``."""
    names, values, section = [], [], None
    for line in text.splitlines():
        if line.startswith("Variables:"):
            section = "vars"
        elif line.startswith("Values:"):
            section = "values"
        elif section == "vars" and line.strip():
            names.append(line.split()[1].lower())
        elif section == "values" and line.strip():
            values.append(float(line.split()[-1]))
    return dict(zip(names, values))


def ngspice_operating_point(G: nx.Graph | None = None, *, path: str | Path | None = None,
                            executable: str = "ngspice", timeout: float | None = 600.0) -> dict[str, float]:
    """Node voltages (V) of a DC operating point computed by ngspice with tight tolerances
    (:data:`NGSPICE_OPTIONS`, 15 digits).

    Either a graph (written with :func:`spice_lines`, keys are its node names; ground
    nodes read 0) or the ``path`` of a SPICE file, run as it is (its ``.op``, ``.control``
    blocks and ``.end`` removed, relative ``.include`` paths made absolute; keys are the
    node names of its R, D, V, I, C cards as the file spells them first).
    """
    if (G is None) == (path is None):
        raise ValueError("give either a graph or a path")
    if G is not None:
        deck = spice_lines(G, analysis=False)
        H = normalise_resistive(G)
        names = {n: ("0" if d["role"] == "ground" else n) for n, d in H.nodes(data=True)}
    else:
        deck, spelled = file_deck(path)
        names = {n: n for n in spelled} | {"0": "0"}
    _, values = run_ngspice(deck, ["op"], executable=executable, timeout=timeout, raw=True)
    out = {}
    for node, spice in names.items():
        out[node] = 0.0 if spice == "0" else values[f"v({spice.lower()})"]
    return out
