"""``analog-ep gradient NETWORK``: the loss and its gradient with respect to every trainable
parameter, for one input and target, at the network file's parameters."""

from __future__ import annotations

import contextlib
import importlib

import numpy as np

from ..errors import ConfigError
from ..graph import load_network
from ..schema import family
from .common import add_format_argument, add_network_argument, parse_assignments, print_json
from .train import add_rule_options

#: Gradient reports of the other families: family -> (module, function, {keyword: option}).
REPORTS = {"quantum": ("analog_ep.quantum_family", "quantum_gradient_report",
                       {"beta": "beta", "temperature": "temperature", "shots": "samples", "state": "state"}),
           "oscillator": ("analog_ep.oscillator_family", "gradient_report",
                          {"beta": "beta", "temperature": "temperature", "samples": "samples"})}
#: Options of the resistive substrates, refused for the other families when set.
SUBSTRATE_OPTIONS = ("profile", "calibration")


def register(sub) -> None:
    p = sub.add_parser("gradient", help="loss gradient with respect to every trainable parameter")
    add_network_argument(p)
    p.add_argument("--input", action="append", metavar="NAME=V", help="input value (repeatable; "
                   "inputs not named keep their default)")
    p.add_argument("--target", action="append", metavar="NAME=V",
                   help="target of an output (repeatable; the cost covers the named outputs)")
    add_rule_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the stochastic rules (default: 0)")
    add_format_argument(p)
    p.set_defaults(func=run)


def resistive_report(G, inputs: dict[str, float], targets: dict[str, float], args) -> dict:
    """``{"loss", "gradient": {name: dL/dG}}`` (V^2 and V^2/S) of a resistive network."""
    from ..families import ResistiveObjective
    obj = ResistiveObjective(G, rule=args.rule or "exact", beta=args.beta, symmetric=not args.one_sided,
                             samples=args.samples, temperature=args.temperature, order=args.order,
                             substrate=args.substrate, calibration=args.calibration, profile=args.profile,
                             rng=np.random.default_rng([args.seed, 3]))
    with contextlib.closing(obj):               # a serial board's port
        return _report(obj, inputs, targets, args.seed)


def _report(obj, inputs: dict[str, float], targets: dict[str, float], seed: int) -> dict:
    from ..models.cost import SquaredCost
    model = obj.model
    names = list(model.input_names)
    unknown = [n for n in inputs if n not in names]
    if unknown:
        raise ConfigError(f"--input {unknown[0]}: not an input node (inputs: {', '.join(names) or 'none'})")
    outputs = list(model.output_names)
    bad = [n for n in targets if n not in outputs]
    if bad:
        raise ConfigError(f"--target {bad[0]}: not an output node (outputs: {', '.join(outputs)})")
    if not targets:
        raise ConfigError(f"give at least one --target NAME=V (outputs: {', '.join(outputs)})")
    u = np.array([[inputs.get(n, v) for n, v in zip(names, model.default_inputs)]])
    order = [n for n in outputs if n in targets]
    obj.cost = SquaredCost(tuple(int(model.outputs[outputs.index(n)]) for n in order))
    if hasattr(obj.substrate, "cost"):
        obj.substrate.cost = obj.cost
    d = np.array([[targets[n] for n in order]])
    r = obj.gradient(model.default_theta, u, d, np.random.default_rng([seed, 1]))
    out = {"loss": float(r.loss), "gradient": dict(zip(model.param_names, map(float, r.gradient)))}
    if r.stderr is not None:
        out["stderr"] = dict(zip(model.param_names, map(float, r.stderr)))
    return out


def run(args) -> int:
    G = load_network(args.network)
    inputs = parse_assignments(args.input, "--input")
    targets = parse_assignments(args.target, "--target")
    fam = family(G)
    if fam == "resistive":
        if args.state is not None:
            raise ConfigError("--state (an eigenstate index) applies to quantum networks")
        report = resistive_report(G, inputs, targets, args)
    else:
        module, func, keywords = REPORTS[fam]
        refused = [o for o in SUBSTRATE_OPTIONS + ("state",) if getattr(args, o) is not None
                   and o not in keywords.values()]
        if refused or args.substrate != "emulator":
            raise ConfigError(f"--{(refused or ['substrate'])[0]} does not apply to {fam} networks")
        try:
            fn = getattr(importlib.import_module(module), func)
        except (ModuleNotFoundError, AttributeError):
            raise ConfigError(f"gradients of {fam} networks are not available in this version") from None
        given = {k: getattr(args, o) for k, o in keywords.items() if getattr(args, o) is not None}
        report = fn(G, inputs, targets, rule=args.rule or "exact", rng=np.random.default_rng(args.seed), **given)
    if args.format == "json":
        print_json(report)
        return 0
    print(f"loss  {report['loss']:.9g}")
    width = max((len(n) for n in report["gradient"]), default=4)
    for name, g in report["gradient"].items():
        se = report.get("stderr", {}).get(name)
        print(f"{name:<{width}}  {g: .9g}" + (f"  +- {se:.3g}" if se is not None else ""))
    return 0
