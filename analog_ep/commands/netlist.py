"""``analog-ep netlist convert IN OUT``: convert between SPICE, GraphML and JSON."""

from __future__ import annotations

from ..graph import load_network, save_network


def register(sub) -> None:
    p = sub.add_parser("netlist", help="network file utilities")
    nsub = p.add_subparsers(dest="netlist_command", metavar="ACTION")
    nsub.required = True
    c = nsub.add_parser("convert", help="convert a network file; formats by extension "
                        "(.cir/.sp/.spice SPICE, .graphml, .json)")
    c.add_argument("source")
    c.add_argument("target")
    c.set_defaults(func=run_convert)


def run_convert(args) -> int:
    save_network(load_network(args.source), args.target)
    print(f"wrote {args.target}")
    return 0
