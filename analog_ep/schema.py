"""Network schema: node roles, circuit elements, their defaults, normalisation and validation.

A network is a networkx graph. Resistive networks are ``nx.MultiGraph`` objects whose edge
keys are the elements' stable names (``R1``, ``D3``); see ``docs/ARCHITECTURE.md`` for the
attribute schema. File io is :mod:`analog_ep.graph` (GraphML, node-link JSON) and
:mod:`analog_ep.netlist` (SPICE), both of which build on this module.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx

from .errors import NetworkError

ROLES = ("input", "output", "hidden", "ground", "bias")
CLAMPED_ROLES = ("input", "ground", "bias")
ELEMENTS = ("resistor", "diode")
FAMILIES = ("resistive", "oscillator", "quantum")

#: SPICE's nominal temperature, 27 degrees C, in kelvin.
T_NOMINAL = 300.15
#: Boltzmann constant over the elementary charge (V/K) as SPICE has it (ngspice uses the
#: CODATA 2014 values), so diode voltages agree with ngspice to the last digit.
K_OVER_Q = 1.38064852e-23 / 1.6021766208e-19
#: Thermal voltage k*T/q at SPICE's nominal temperature (volts).
VT_NOMINAL = K_OVER_Q * T_NOMINAL

RESISTOR_DEFAULTS = {"trainable": False, "g_min": 1e-7, "g_max": 1.0}
DIODE_DEFAULTS = {"i_s": 1e-14, "n": 1.0, "vt": VT_NOMINAL}


def family(G: nx.Graph) -> str:
    """The network family named by the graph attribute ``family`` (default ``resistive``)."""
    fam = str(G.graph.get("family", "resistive")).lower()
    if fam not in FAMILIES:
        raise NetworkError(f"unknown network family {fam!r}; expected one of {', '.join(FAMILIES)}")
    return fam


def as_bool(value: Any) -> bool:
    """A graph-file flag as a bool: the strings ``1``/``true``/``yes``/``on`` (any case) are true."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def normalise_resistive(G: nx.Graph) -> nx.MultiGraph:
    """A resistive network as a MultiGraph keyed by element name, with defaults filled in.

    Node names become strings (SPICE and GraphML both name nodes by strings); numeric
    attributes become floats; ``trainable`` becomes a bool.
    """
    M = nx.MultiGraph()
    M.graph.update(G.graph)
    M.graph["family"] = "resistive"
    for node, data in G.nodes(data=True):
        attrs = dict(data)
        attrs.setdefault("role", "hidden")
        attrs["role"] = str(attrs["role"]).lower()
        for key in ("voltage", "capacitance", "current"):
            if key in attrs:
                attrs[key] = as_float(attrs[key], f"node {node!r} attribute {key!r}")
        M.add_node(str(node), **attrs)
    edges = G.edges(keys=True, data=True) if G.is_multigraph() else (
        (a, b, None, data) for a, b, data in G.edges(data=True))
    for a, b, key, data in edges:
        attrs = dict(data)
        name = str(attrs.get("name", key if key is not None and not isinstance(key, int) else ""))
        if not name:
            raise NetworkError(f"edge {a!r}-{b!r} has no element name")
        attrs["name"] = name
        element = str(attrs.get("element", "resistor")).lower()
        attrs["element"] = element
        if element == "resistor":
            for k, v in RESISTOR_DEFAULTS.items():
                attrs.setdefault(k, v)
            attrs["trainable"] = as_bool(attrs["trainable"])
            for k in ("conductance", "g_min", "g_max"):
                if k in attrs:
                    attrs[k] = as_float(attrs[k], f"element {name} attribute {k!r}")
        elif element == "diode":
            for k, v in DIODE_DEFAULTS.items():
                attrs.setdefault(k, v)
            for k in ("i_s", "n", "vt"):
                attrs[k] = as_float(attrs[k], f"element {name} attribute {k!r}")
            attrs.setdefault("anode", str(a))
            attrs.setdefault("cathode", str(b))
            attrs["anode"], attrs["cathode"] = str(attrs["anode"]), str(attrs["cathode"])
        if M.has_edge(str(a), str(b), name):
            raise NetworkError(f"duplicate element name {name!r}")
        M.add_edge(str(a), str(b), key=name, **attrs)
    return M


def as_float(value: Any, what: str) -> float:
    """A graph-file number as a float; NetworkError naming ``what`` if it is not a number or is NaN."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise NetworkError(f"{what} must be a number, got {value!r}") from None
    if math.isnan(out):
        raise NetworkError(f"{what} is NaN")
    return out


def validate_resistive(G: nx.MultiGraph) -> None:
    """Check a normalised resistive network; raise NetworkError naming the node or edge.

    Rules: known roles and elements; bias nodes carry a voltage; positive conductances
    inside their bounds; diode parameters positive and endpoints matching the edge; unique
    element names; at least one clamped node; every free node has a path through
    resistors alone to a clamped node (a diode-only path leaves the system nearly
    singular); every output is reachable from some input. The last two are not checked on a
    netlist kept for ngspice (graph attribute ``spice_only``).
    """
    names: set[str] = set()
    for node, data in G.nodes(data=True):
        role = data.get("role")
        if role not in ROLES:
            raise NetworkError(f"node {node!r}: unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if role == "bias" and "voltage" not in data:
            raise NetworkError(f"bias node {node!r} has no 'voltage'")
        cap = data.get("capacitance")
        if cap is not None and not cap > 0:
            raise NetworkError(f"node {node!r}: capacitance must be positive, got {cap}")
    for a, b, key, data in G.edges(keys=True, data=True):
        name = data["name"]
        if name in names:
            raise NetworkError(f"duplicate element name {name!r}")
        names.add(name)
        if a == b:
            raise NetworkError(f"element {name} connects node {a!r} to itself")
        element = data["element"]
        if element not in ELEMENTS:
            raise NetworkError(f"element {name}: unknown element {element!r}; expected one of {', '.join(ELEMENTS)}")
        if element == "resistor":
            if "conductance" not in data:
                raise NetworkError(f"resistor {name} has no 'conductance'")
            g, lo, hi = data["conductance"], data["g_min"], data["g_max"]
            if not g > 0:
                raise NetworkError(f"resistor {name}: conductance must be positive, got {g} S")
            if not 0 < lo <= hi:
                raise NetworkError(f"resistor {name}: bounds must satisfy 0 < g_min <= g_max, got {lo}, {hi}")
            if data["trainable"] and not lo <= g <= hi:
                raise NetworkError(f"resistor {name}: conductance {g} S outside its bounds [{lo}, {hi}]")
        else:
            for k in ("i_s", "n", "vt"):
                if not data[k] > 0:
                    raise NetworkError(f"diode {name}: {k} must be positive, got {data[k]}")
            if {data["anode"], data["cathode"]} != {a, b}:
                raise NetworkError(f"diode {name}: anode/cathode {data['anode']!r}/{data['cathode']!r} "
                                   f"do not match its endpoints {a!r}, {b!r}")
    roles = nx.get_node_attributes(G, "role")
    clamped = [n for n, r in roles.items() if r in CLAMPED_ROLES]
    if not clamped:
        raise NetworkError("the network has no clamped node (input, ground or bias)")
    opaque = bool(G.graph.get("spice_only"))    # ngspice's devices connect what is parsed apart
    resistive = nx.Graph()
    resistive.add_nodes_from(G.nodes)
    resistive.add_edges_from((a, b) for a, b, d in G.edges(data=True) if d["element"] == "resistor")
    reached = set()
    for component in nx.connected_components(resistive):
        if any(roles[n] in CLAMPED_ROLES for n in component):
            reached |= component
    for node, role in roles.items():
        if role not in CLAMPED_ROLES and node not in reached and not opaque:
            raise NetworkError(f"free node {node!r} has no resistive path to a clamped node "
                               "(input, ground or bias); its voltage is undetermined")
    inputs = [n for n, r in roles.items() if r == "input"]
    if not inputs and any(r == "output" for r in roles.values()):
        raise NetworkError("no input node is declared (give a node the role 'input'; in a SPICE "
                           "netlist, '*@ input NODE' beside its V source)")
    if opaque:
        return
    # Current flows only through free nodes; clamped nodes cut the graph.
    free_graph = G.subgraph([n for n, r in roles.items() if r not in CLAMPED_ROLES]).copy()
    for node, role in roles.items():
        if role != "output":
            continue
        ok = any(G.has_edge(node, i) for i in inputs)
        if not ok:
            comp = nx.node_connected_component(free_graph, node)
            ok = any(G.has_edge(c, i) for c in comp for i in inputs)
        if not ok:
            raise NetworkError(f"output node {node!r} cannot be reached from any input")
