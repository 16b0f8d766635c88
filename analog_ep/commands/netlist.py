"""``analog-ep netlist convert IN OUT``: convert between SPICE, GraphML and JSON."""

from __future__ import annotations

from ..graph import SPICE_SUFFIXES, load_network, save_network


def register(sub) -> None:
    p = sub.add_parser("netlist", help="network file utilities")
    nsub = p.add_subparsers(dest="netlist_command", metavar="ACTION")
    nsub.required = True
    formats = (f"SPICE netlist ({'/'.join(SPICE_SUFFIXES)}), GraphML (.graphml), "
               "networkx node-link JSON (.json)")
    c = nsub.add_parser("convert", help="convert a network file between formats",
                        description=f"Convert a network file. Formats: {formats}. Each file's "
                        "format is chosen by its suffix (case-insensitive); SOURCE may also be "
                        "the name of a bundled example (see 'analog-ep info').")
    c.add_argument("source", help="network file to read, or a bundled example's name")
    c.add_argument("target", help="file to write; its suffix chooses the format")
    c.set_defaults(func=run_convert)


def run_convert(args) -> int:
    save_network(load_network(args.source), args.target)
    print(f"wrote {args.target}")
    return 0
