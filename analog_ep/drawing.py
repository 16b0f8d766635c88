"""Pictures of networks: node roles and element strengths, drawn with matplotlib's Agg backend
(no display needed).

Layout: nodes carrying ``x``/``y`` attributes are drawn there (grids, boards); otherwise a
layered layout puts inputs (and bias nodes) in the first column, every other node at its
graph distance from them (ground left out), and outputs in the last column; networks of
more than :data:`LAYERED_LIMIT` nodes get a seeded force-directed layout instead.

Element strength: resistors by conductance (siemens, log colour scale, width growing with
log conductance); couplings of oscillator and qubit networks by their signed value
(``coupling``, ``J`` or ``k``, diverging colour scale). Diodes are drawn as dashed dark-red
lines with an arrowhead pointing from anode to cathode (the forward direction).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import networkx as nx
import numpy as np

from .errors import ConfigError

#: Above this many nodes a layered layout is unreadable; use a force-directed one.
LAYERED_LIMIT = 150
#: Marker, colour and legend label of each role.
ROLE_STYLE = {
    "input": ("s", "#2b7bba", "input"),
    "hidden": ("o", "#d9d9d9", "hidden"),
    "output": ("D", "#e6550d", "output"),
    "bias": ("^", "#555555", "bias"),
    "ground": ("v", "#000000", "ground"),
}
#: Edge attributes that carry an element's strength, by family.
STRENGTH_KEYS = ("conductance", "coupling", "J", "k")


def apply_parameters(G: nx.Graph, parameters: dict[str, float], source: str) -> int:
    """Set the element values of ``G`` from a ``{name: value}`` table (``params.json``'s
    ``parameters``): resistors and couplings by their ``name``, qubit and oscillator couplings
    named ``KEY[a,b]``, gate-trained MOSFET edges by their gate source (``vg`` of the graph's
    ``gate_edges``, copied, never shared with another graph). Returns how many elements were
    set; ConfigError naming ``source`` when the table names no element of the network."""
    by_name = {str(d.get("name")): d for *_, d in G.edges(data=True) if d.get("name") is not None}
    gates = {g["source"]: dict(g) for g in G.graph.get("gate_edges", ())}
    count = 0
    for name, value in parameters.items():
        if name in gates:
            gates[name]["vg"] = float(value)
            count += 1
            continue
        data = by_name.get(name)
        match = re.fullmatch(r"(\w+)\[([^,\]]+),([^\]]+)\]", name)
        if data is None and match and G.has_edge(match[2], match[3]):
            data = next(iter(G.get_edge_data(match[2], match[3]).values())) if G.is_multigraph() \
                else G.edges[match[2], match[3]]
        if data is None:
            continue
        key = match[1] if data.get("name") != name and match else next(
            (k for k in STRENGTH_KEYS if k in data), "conductance")
        data[key] = float(value)
        count += 1
    if gates:
        G.graph["gate_edges"] = tuple(gates.values())
    if parameters and not count:
        raise ConfigError(f"{source}: no parameter names an element of the network "
                          f"(first: {next(iter(parameters))!r})")
    return count


def layout(G: nx.Graph) -> dict:
    """Node positions: the file's ``x``/``y``, else layered by role and depth, else spring."""
    if G.number_of_nodes() and all("x" in d and "y" in d for _, d in G.nodes(data=True)):
        return {n: (float(d["x"]), float(d["y"])) for n, d in G.nodes(data=True)}
    roles = {n: str(d.get("role", "hidden")) for n, d in G.nodes(data=True)}
    if G.number_of_nodes() > LAYERED_LIMIT:
        return nx.spring_layout(G, seed=0)
    H = nx.Graph(G.subgraph(n for n, r in roles.items() if r != "ground"))
    sources = [n for n, r in roles.items() if r in ("input", "bias")] or list(H.nodes)[:1]
    depth = nx.multi_source_dijkstra_path_length(H, sources, weight=None) if sources else {}
    last = max([depth.get(n, 0) for n, r in roles.items() if r not in ("output", "ground")] + [0]) + 1
    column: dict = {}
    for n, r in roles.items():
        column[n] = last if r == "output" else depth.get(n, last / 2)
    columns: dict = {}
    for n in G.nodes:
        if roles[n] != "ground":
            columns.setdefault(column[n], []).append(n)
    pos = {}
    for c, nodes in columns.items():
        nodes.sort(key=lambda n: (roles[n] != "input", _natural(str(n))))
        for i, n in enumerate(nodes):
            pos[n] = (float(c), (len(nodes) - 1) / 2 - i)
    low = min((y for _, y in pos.values()), default=0.0)
    for n, r in roles.items():
        if r == "ground":
            pos[n] = (last / 2, low - 1.5)
    return pos


def _natural(name: str) -> list:
    """Sort key that orders ``h2`` before ``h10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _strength(data: dict) -> float | None:
    for key in STRENGTH_KEYS:
        if key in data:
            return float(data[key])
    return None


def draw_network(G: nx.Graph, path: str | Path, title: str | None = None) -> Path:
    """Draw ``G`` to ``path`` (PNG by default; the suffix picks the format) and return it."""
    # imported here: matplotlib costs about 0.6 s of start-up that most commands never need
    import matplotlib
    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.colors import LogNorm, TwoSlopeNorm
    from matplotlib.lines import Line2D
    path = Path(path)
    pos = layout(G)
    n = G.number_of_nodes()
    big = n > LAYERED_LIMIT
    fig, ax = plt.subplots(figsize=(7.5, 5.5) if not big else (8, 8), dpi=150)
    lines, values, diodes = [], [], []
    for a, b, d in G.edges(data=True):
        if d.get("element") == "diode":
            diodes.append((d.get("anode", a), d.get("cathode", b)))
            continue
        value = _strength(d)
        if value is not None:
            lines.append((pos[a], pos[b]))
            values.append(value)
    values = np.asarray(values, dtype=float)
    signed = values.size and values.min() < 0
    if values.size:
        if signed:
            span = float(np.abs(values).max()) or 1.0
            norm, cmap, label = TwoSlopeNorm(0.0, -span, span), plt.get_cmap("RdBu_r"), "coupling"
            widths = 0.6 + 2.4 * np.abs(values) / span
        else:
            positive = values[values > 0]
            lo, hi = (positive.min(), positive.max()) if positive.size else (1.0, 1.0)
            norm = LogNorm(lo, hi if hi > lo else lo * 10)
            cmap, label = plt.get_cmap("viridis"), "conductance (S)" if any(
                "conductance" in d for *_, d in G.edges(data=True)) else "coupling"
            logs = np.log10(np.clip(values, lo, None))
            spread = math.log10(norm.vmax) - math.log10(norm.vmin)
            widths = 0.5 + 2.5 * (logs - math.log10(norm.vmin)) / spread
        if big:
            widths = widths * 0.3
        coll = LineCollection(lines, colors=cmap(norm(values)), linewidths=widths, zorder=1,
                              alpha=0.9 if not big else 0.5)
        ax.add_collection(coll)
        sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(sm, ax=ax, fraction=0.04, pad=0.02, label=label)
    faint = 0.45 if len(diodes) > 12 else 1.0
    for anode, cathode in diodes:
        (x0, y0), (x1, y1) = pos[anode], pos[cathode]
        ax.plot([x0, x1], [y0, y1], ls="--", color="#8b0000", lw=0.9, zorder=2, alpha=faint)
        ax.annotate("", xy=(x0 + 0.55 * (x1 - x0), y0 + 0.55 * (y1 - y0)),
                    xytext=(x0 + 0.45 * (x1 - x0), y0 + 0.45 * (y1 - y0)), zorder=2,
                    arrowprops={"arrowstyle": "-|>", "color": "#8b0000", "lw": 0.9, "alpha": faint})
    roles = {node: str(d.get("role", "hidden")) for node, d in G.nodes(data=True)}
    handles = []
    for role, (marker, colour, label) in ROLE_STYLE.items():
        nodes = [node for node, r in roles.items() if r == role]
        if not nodes:
            continue
        xy = np.array([pos[node] for node in nodes])
        ax.scatter(xy[:, 0], xy[:, 1], marker=marker, s=(60 if role != "hidden" else 14) if big else (140 if n <= 20 else 70), c=colour,
                   edgecolors="black", linewidths=0.3 if big else 0.8, zorder=3)
        handles.append(Line2D([], [], ls="", marker=marker, markerfacecolor=colour,
                              markeredgecolor="black", markersize=8, label=f"{label} ({len(nodes)})"))
        if n <= 20 or (not big and role != "hidden"):  # beside the marker, away from the wires
            side = 1 if role == "output" else -1
            for node in nodes:
                ax.annotate(str(node), pos[node], xytext=(8 * side, 0), textcoords="offset points",
                            fontsize=7, ha="left" if side > 0 else "right", va="center", zorder=4)
    if diodes:
        handles.append(Line2D([], [], ls="--", color="#8b0000", label=f"diode ({len(diodes)}, anode to cathode)"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3,
              fontsize=7, frameon=False)
    name = str(G.graph.get("description") or G.graph.get("name", ""))
    ax.set_title(title or name.split(":")[0], fontsize=10)
    ax.set_axis_off()
    ax.autoscale_view()
    ax.margins(0.06)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
