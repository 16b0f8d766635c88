"""``analog-ep info [NETWORK]``: roles, elements and trainable parameters of a network; with
no argument, the bundled example networks, one line each."""

from __future__ import annotations

from collections import Counter

from ..graph import available_networks, load_network
from ..learning.config import network_settings
from ..schema import family
from .common import add_format_argument, print_json


def register(sub) -> None:
    p = sub.add_parser("info", help="summarise a network's roles, elements and parameters; "
                       "with no NETWORK, list the bundled examples")
    p.add_argument("network", nargs="?", default=None,
                   help="network file (.graphml, .json, .cir) or the name of a bundled example "
                   "(omit it to list them)")
    add_format_argument(p)
    p.set_defaults(func=run)


def summarise(G) -> dict:
    """Roles, elements, trainable parameters and recommended training settings of a graph of
    any family."""
    roles: dict[str, list[str]] = {}
    for node, data in G.nodes(data=True):
        roles.setdefault(str(data.get("role", "hidden")), []).append(str(node))
    elements = Counter(str(d.get("element", "coupling")) for *_, d in G.edges(data=True))
    trainable = [str(d.get("name", f"{a}-{b}")) for a, b, d in G.edges(data=True)
                 if str(d.get("trainable", False)).lower() in ("true", "1")]
    gates = [str(g["source"]) for g in G.graph.get("gate_edges", ())]
    if gates:                                   # gate-trained MOSFET edges, by their gate source
        elements["mosfet"] = len(gates)
        trainable += gates
    return {"family": family(G), "nodes": G.number_of_nodes(), "edges": G.number_of_edges(),
            "roles": {r: sorted(v) for r, v in sorted(roles.items())},
            "elements": dict(sorted(elements.items())), "trainable": trainable,
            "training": network_settings(G.graph)}


def bundled() -> list[dict]:
    """Name, family, size and purpose (the file's description or title, to its first colon)
    of each bundled example network."""
    rows = []
    for name in available_networks():
        G = load_network(name, validate=False, ngspice=True)   # listed, not run: every part may be ngspice's
        text = str(G.graph.get("description") or G.graph.get("name") or "")
        rows.append({"name": name, "family": family(G), "nodes": G.number_of_nodes(),
                     "edges": G.number_of_edges(), "description": text.split(":")[0].strip()})
    return rows


def run_list(fmt: str) -> int:
    rows = bundled()
    if fmt == "json":
        print_json(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        size = f"{r['nodes']} nodes, {r['edges']} edges"
        print(f"{r['name']:<{width}}  {r['family']:<10} {size:<24} {r['description']}")
    return 0


def run(args) -> int:
    if args.network is None:
        return run_list(args.format)
    info = summarise(load_network(args.network, ngspice=True))   # described, not run
    if args.format == "json":
        print_json(info)
        return 0
    print(f"family     {info['family']}")
    print(f"nodes      {info['nodes']}   edges {info['edges']}")
    for role, nodes in info["roles"].items():
        shown = ", ".join(nodes[:12]) + (f", ... ({len(nodes)} in all)" if len(nodes) > 12 else "")
        print(f"{role:<10} {shown}")
    for element, count in info["elements"].items():
        print(f"{element:<10} {count}")
    shown = ", ".join(info["trainable"][:12])
    more = f", ... ({len(info['trainable'])} in all)" if len(info["trainable"]) > 12 else ""
    print(f"trainable  {len(info['trainable'])}: {shown}{more}")
    if info["training"]:
        print("training   " + ", ".join(f"{k} {v}" for k, v in info["training"].items()) + " (recommended by the file)")
    return 0
