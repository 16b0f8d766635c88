"""Network files: GraphML, node-link JSON and SPICE netlists (by suffix), and the bundled
examples by name. The schema, normalisation and validation are :mod:`analog_ep.schema`.

Graphs live only at the edges of the package (construction and io): ``analog_ep.models``
compiles them into arrays before any computation.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from .errors import NetlistError, NetworkError
from .netlist import read_spice, write_spice
from .resources import bundled_path
from .schema import family, normalise_resistive, validate_resistive

GRAPH_SUFFIXES = (".graphml", ".json")
SPICE_SUFFIXES = (".cir", ".sp", ".spice", ".net", ".ckt")


def resolve_network_path(path_or_name: str | Path) -> Path:
    """A file path, or the stem of a bundled example in ``netlists/`` (e.g. ``divider``)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    if path.suffix == "" and path.parent == Path("."):
        for suffix in GRAPH_SUFFIXES + SPICE_SUFFIXES:
            candidate = bundled_path("netlists", path.name + suffix)
            if candidate.is_file():
                return candidate
    known = ", ".join(sorted(available_networks()))
    raise NetlistError(f"no such network file or bundled example (bundled: {known})", str(path_or_name))


def available_networks() -> list[str]:
    """Stems of the bundled example networks."""
    folder = bundled_path("netlists", "")
    return sorted(p.stem for p in folder.iterdir()
                  if p.suffix in GRAPH_SUFFIXES + SPICE_SUFFIXES)


def load_network(path_or_name: str | Path, validate: bool = True, ngspice: bool = False) -> nx.Graph:
    """Read a network from GraphML, node-link JSON or a SPICE netlist (by extension).

    Resistive networks are normalised (defaults filled in, types coerced) and validated;
    other families are returned as read and validated when compiled. ``ngspice``: a
    netlist may hold what only ngspice runs (see :func:`~analog_ep.netlist.read_spice`).
    """
    path = resolve_network_path(path_or_name)
    suffix = path.suffix.lower()
    if suffix in SPICE_SUFFIXES:
        G = read_spice(path, ngspice=ngspice)
    elif suffix == ".graphml":
        try:
            G = nx.read_graphml(path, force_multigraph=False)
        except Exception as exc:  # networkx raises several types for malformed XML
            raise NetlistError(f"cannot read GraphML: {exc}", str(path)) from exc
        for key in ("node_default", "edge_default"):
            G.graph.pop(key, None)
        for *_, data in G.edges(data=True):  # GraphML's edge id is the element name
            if "id" in data:
                data.setdefault("name", data.pop("id"))
    elif suffix == ".json":
        G = _read_node_link(path)
    else:
        raise NetlistError(f"unknown network file type {suffix!r}; use .graphml, .json or "
                           + "/".join(SPICE_SUFFIXES), str(path))
    G.graph.setdefault("source", str(path))
    try:
        fam = family(G)
    except NetworkError as exc:
        raise NetlistError(str(exc), str(path)) from exc
    if fam == "resistive":
        try:
            G = normalise_resistive(G)
            if validate:
                validate_resistive(G)
        except NetworkError as exc:
            raise NetworkError(f"{path}: {exc}") from exc
    return G


def _read_node_link(path: Path) -> nx.Graph:
    """A node-link JSON file as a graph; NetlistError naming the file and what is malformed:
    the top level must be an object whose ``nodes`` is a list of objects with an ``id`` and
    whose ``edges`` (or ``links``) are objects whose ``source``/``target`` name listed nodes."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise NetlistError(f"cannot read node-link JSON: {exc}", str(path)) from None
    if not isinstance(data, dict):
        raise NetlistError(f"node-link JSON must be an object with 'nodes' and 'edges', "
                           f"not {'null' if data is None else 'a ' + type(data).__name__}", str(path))
    key = "edges" if "edges" in data else "links"
    nodes, edges = data.get("nodes"), data.get(key, [])
    if not isinstance(nodes, list):
        raise NetlistError("node-link JSON needs a list 'nodes'" + (
            "" if nodes is None else f", got a {type(nodes).__name__}"), str(path))
    if not isinstance(edges, list):
        raise NetlistError(f"node-link JSON: '{key}' must be a list, got a {type(edges).__name__}", str(path))
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or "id" not in node:
            raise NetlistError(f"node-link JSON: nodes[{i}] must be an object with an 'id', got {node!r:.60}", str(path))
        if not isinstance(node["id"], (str, int, float, bool)) or node["id"] is None:
            raise NetlistError(f"node-link JSON: nodes[{i}] has id {node['id']!r:.60}; ids are strings or numbers", str(path))
    ids = {node["id"] for node in nodes}
    for i, edge in enumerate(edges):
        if not isinstance(edge, dict) or "source" not in edge or "target" not in edge:
            raise NetlistError(f"node-link JSON: {key}[{i}] must be an object with 'source' and "
                               f"'target', got {edge!r:.60}", str(path))
        for end in ("source", "target"):
            if not isinstance(edge[end], (str, int, float, bool)) or edge[end] not in ids:
                raise NetlistError(f"node-link JSON: {key}[{i}] {end} {edge[end]!r:.60} is not a "
                                   "listed node", str(path))
    if not isinstance(data.get("graph", {}), dict):
        raise NetlistError("node-link JSON: 'graph' must be an object", str(path))
    try:
        return nx.node_link_graph(data, edges=key)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # what networkx raises for the rest
        raise NetlistError(f"cannot read node-link JSON: {exc}", str(path)) from None


def save_network(G: nx.Graph, path: str | Path) -> None:
    """Write a network as GraphML, node-link JSON or a SPICE netlist (by extension)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SPICE_SUFFIXES:
        write_spice(G, path)
        return
    H = G.copy()
    H.graph.pop("source", None)
    if suffix == ".graphml":
        nx.write_graphml(H, path)
    elif suffix == ".json":
        path.write_text(json.dumps(nx.node_link_data(H, edges="edges"), indent=1, default=float))
    else:
        raise NetlistError(f"unknown network file type {suffix!r}", str(path))
