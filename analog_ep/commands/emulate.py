"""``analog-ep emulate NETWORK``: node voltages at equilibrium."""

from __future__ import annotations

from ..errors import ConfigError
from ..graph import family, load_network
from ..models.resistive import ResistiveModel, compile_network
from ..substrates.emulated import EmulatedBoard
from .common import add_format_argument, add_network_argument, parse_assignments, print_json


def register(sub) -> None:
    p = sub.add_parser("emulate", help="compute every node voltage of a resistive network")
    add_network_argument(p)
    p.add_argument("--input", action="append", metavar="NODE=VOLTS",
                   help="override an input's voltage (repeatable)")
    add_format_argument(p)
    p.set_defaults(func=run)


def input_vector(model: ResistiveModel, assignments: dict[str, float]):
    """Default inputs with the named ones replaced; unknown names raise ConfigError."""
    u = model.default_inputs.copy()
    names = list(model.input_names)
    for name, value in assignments.items():
        if name not in names:
            raise ConfigError(f"--input {name}: not an input node (inputs: {', '.join(names) or 'none'})")
        u[names.index(name)] = value
    return u[None, :]


def run(args) -> int:
    G = load_network(args.network)
    if family(G) != "resistive":
        raise ConfigError(f"emulate handles resistive networks; {args.network} is {family(G)}")
    model = compile_network(G)
    board = EmulatedBoard(model)
    board.clamp(input_vector(model, parse_assignments(args.input, "--input")))
    volts = board.equilibrium()[0]
    nodes = dict(zip(model.node_names, map(float, volts)))
    if args.format == "json":
        print_json({"nodes": nodes})
    else:
        width = max(len(n) for n in nodes)
        for name, v in nodes.items():
            print(f"{name:<{width}}  {v: .9g} V")
    return 0
