"""Network generators for the bundled examples and the equilibrium benchmark.

``python benchmarks/make_netlists.py`` rewrites, reproducibly (fixed seeds), the generated
bundled examples in ``analog_ep/resources/netlists/``:

* ``mesh_1000.cir``: a random 1,000-node resistive mesh (Delaunay triangulation of random
  points in the unit square, log-uniform conductances), two inputs on the left edge, ground
  on the right edge, three outputs inside;
* ``iris_diode.cir``: the layered diode classifier for Iris (4 features doubled to 8 inputs,
  20 clipping hidden units, 3 outputs) of :func:`analog_ep.networks.layered_diode_network`.

The divider and the diode XOR network are written by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.spatial import Delaunay

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analog_ep.schema import normalise_resistive  # noqa: E402
from analog_ep.netlist import write_spice  # noqa: E402
from analog_ep.networks import layered_diode_network  # noqa: E402

OUT = ROOT / "analog_ep" / "resources" / "netlists"


def _resistors(G: nx.MultiGraph, pairs, g, **attrs) -> None:
    """Resistors ``R1, R2, ...`` joining each pair of nodes, conductances ``g`` (S)."""
    G.add_edges_from((a, b, f"R{k}", dict(name=f"R{k}", element="resistor", conductance=float(gk), **attrs))
                     for k, ((a, b), gk) in enumerate(zip(pairs, g), start=1))


def random_mesh(n_nodes: int, rng: np.random.Generator, g_range=(1e-4, 1e-2)) -> nx.MultiGraph:
    """Delaunay mesh of ``n_nodes`` random points; conductances log-uniform in ``g_range`` (S).

    Nodes: ``in1``/``in2`` (inputs at 1 V and -0.5 V, the points nearest (0, 1/4) and
    (0, 3/4)), ``0`` (ground, nearest (1, 1/2)), ``out1..out3`` (nearest three interior
    points), the rest ``n1, n2, ...``. Every resistor is trainable within [1e-5, 1e-1] S.
    """
    pts = rng.uniform(0.0, 1.0, (n_nodes, 2))
    special = {"in1": (0, 0.25), "in2": (0, 0.75), "0": (1, 0.5),
               "out1": (0.5, 0.5), "out2": (0.75, 0.25), "out3": (0.75, 0.75)}
    names: dict[int, str] = {}
    for name, where in special.items():
        dist = np.linalg.norm(pts - np.array(where), axis=1)
        dist[list(names)] = np.inf
        names[int(np.argmin(dist))] = name
    k = 0
    for i in range(n_nodes):
        if i not in names:
            k += 1
            names[i] = f"n{k}"
    G = nx.MultiGraph(family="resistive", name=f"random {n_nodes}-node resistive mesh")
    roles = {"in1": ("input", 1.0), "in2": ("input", -0.5), "0": ("ground", None)}
    for i in range(n_nodes):
        role, volts = roles.get(names[i], ("output" if names[i].startswith("out") else "hidden", None))
        G.add_node(names[i], role=role, **({} if volts is None else {"voltage": volts}))
    edges = set()
    for tri in Delaunay(pts).simplices:
        for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[0], tri[2])):
            edges.add((min(a, b), max(a, b)))
    g = np.exp(rng.uniform(np.log(g_range[0]), np.log(g_range[1]), len(edges)))
    _resistors(G, [(names[a], names[b]) for a, b in sorted(edges)], g, trainable=True, g_min=1e-5, g_max=1e-1)
    G.graph.update(input_order="in1 in2", output_order="out1 out2 out3")
    return normalise_resistive(G)


def grid_network(rows: int, cols: int, rng: np.random.Generator, g_range=(1e-4, 1e-2)) -> nx.MultiGraph:
    """A ``rows x cols`` 2-D grid (nodes ``n{r}_{c}``), conductances log-uniform in ``g_range``.

    The left column nodes are inputs (default 1 V); each right-column node has a resistor
    to ground ``0``; the centre node is the output. ``rows * cols + 1`` nodes in all.
    """
    G = nx.MultiGraph(family="resistive", name=f"{rows}x{cols} grid")
    G.add_node("0", role="ground")
    for r in range(rows):
        for c in range(cols):
            G.add_node(f"n{r}_{c}", role="input" if c == 0 else "hidden",
                       **({"voltage": 1.0} if c == 0 else {}))
    G.nodes[f"n{rows // 2}_{cols // 2}"]["role"] = "output"
    pairs = [(f"n{r}_{c}", f"n{r}_{c + 1}") for r in range(rows) for c in range(cols - 1)]
    pairs += [(f"n{r}_{c}", f"n{r + 1}_{c}") for r in range(rows - 1) for c in range(1, cols)]
    pairs += [(f"n{r}_{cols - 1}", "0") for r in range(rows)]
    g = np.exp(rng.uniform(np.log(g_range[0]), np.log(g_range[1]), len(pairs)))
    _resistors(G, pairs, g, trainable=True, g_min=1e-5, g_max=1e-1)
    return normalise_resistive(G)


def layered_network(n_inputs: int, hidden: int, n_outputs: int, rng: np.random.Generator,
                    diodes: bool) -> nx.MultiGraph:
    """A layered (deep resistive) network ``n_inputs - hidden - n_outputs``, all pairs of
    adjacent layers connected: :func:`analog_ep.networks.layered_diode_network` with
    ``n_inputs / 2`` doubled features; ``diodes=False`` removes the hidden diodes (and
    their bias nodes), leaving a linear network of the same shape."""
    G = layered_diode_network(n_inputs // 2, n_outputs, (hidden,), rng=rng, differential=False,
                              name=f"layered {n_inputs}-{hidden}-{n_outputs}"
                                   + (" with diodes" if diodes else " linear"))
    if not diodes:
        G.remove_edges_from([(a, b, k) for a, b, k, d in G.edges(keys=True, data=True)
                             if d["element"] == "diode"])
        G.remove_nodes_from(["dup", "ddn"])
    return G


def main() -> None:
    write_spice(random_mesh(1000, np.random.default_rng(1000)), OUT / "mesh_1000.cir")
    iris = layered_diode_network(4, 3, (20,), rng=np.random.default_rng(4), differential=False,
                                 name="layered diode classifier for Iris: 4 features (8 doubled inputs), 20 hidden, 3 outputs")
    write_spice(iris, OUT / "iris_diode.cir")
    print(f"wrote {OUT / 'mesh_1000.cir'} and {OUT / 'iris_diode.cir'}")


if __name__ == "__main__":
    main()
