"""``analog-ep draw NETWORK [--params params.json] --out net.png``: a picture of a network,
its node roles and element strengths (see :mod:`analog_ep.drawing`)."""

from __future__ import annotations

import json
from pathlib import Path

from ..drawing import apply_parameters, draw_network
from ..errors import ConfigError
from ..graph import load_network


def register(sub) -> None:
    p = sub.add_parser("draw", help="draw a network: node roles, elements coloured by conductance",
                       description="Draw a network file or bundled example as a picture: inputs, "
                       "hidden, outputs, ground and bias nodes by marker; resistors coloured "
                       "and sized by conductance (couplings by signed value); diodes dashed with "
                       "an arrow from anode to cathode. The suffix of --out picks the format.")
    p.add_argument("network", help="network file (.graphml, .json, .cir) or the name of a bundled example")
    p.add_argument("--params", default=None, metavar="FILE",
                   help="params.json of a training run: draw its trained values")
    p.add_argument("--out", default="network.png", help="picture to write (default: network.png)")
    p.add_argument("--title", default=None, help="figure title (default: the network's name)")
    p.set_defaults(func=run)


def read_parameters(path: str) -> dict[str, float]:
    """The ``parameters`` table of a params.json; ConfigError naming the file otherwise."""
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read parameters ({exc})") from None
    table = data.get("parameters") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: expected an object with a 'parameters' table {{name: value}}")
    try:
        return {str(k): float(v) for k, v in table.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: every parameter must be a number") from None


def run(args) -> int:
    G = load_network(args.network)
    if args.params:
        apply_parameters(G, read_parameters(args.params), args.params)
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; name a picture file (e.g. {out / 'network.png'})")
    try:
        draw_network(G, out, title=args.title)
    except (OSError, ValueError) as exc:  # unwritable path, unknown picture format
        raise ConfigError(f"cannot write {out}: {exc}") from None
    print(f"wrote {out}")
    return 0
