"""``analog-ep gradient NETWORK``: the loss and its gradient with respect to every trainable
parameter, for one input and target, at the network file's parameters."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..graph import load_network
from ..schema import family
from .common import add_device_options, add_format_argument, add_network_argument, add_seed_option, parse_assignments, print_json
from .reports import gradient_report, quantum_gradient_report, resistive_report
from .train import add_rule_options

#: Gradient reports of the other families: family -> (function, {keyword: option}).
REPORTS = {"quantum": (quantum_gradient_report,
                       {"beta": "beta", "temperature": "temperature", "shots": "samples", "state": "state"}),
           "oscillator": (gradient_report, {"beta": "beta", "temperature": "temperature", "samples": "samples"})}
#: Options of the resistive substrates, refused for the other families when set.
SUBSTRATE_OPTIONS = ("profile", "calibration", "device", "program", "pulse_rounding")


def register(sub) -> None:
    p = sub.add_parser("gradient", help="loss gradient with respect to every trainable parameter")
    add_network_argument(p)
    p.add_argument("--input", action="append", metavar="NAME=V", help="input value (repeatable; "
                   "inputs not named keep their default)")
    p.add_argument("--target", action="append", metavar="NAME=V",
                   help="target of an output (repeatable; the cost covers the named outputs)")
    add_rule_options(p)
    add_seed_option(p, "seed of the stochastic rules and of the devices' fabrication (default: 0)")
    add_device_options(p, "the network file's conductances are programmed onto them and the gradient "
                          "is the fabricated network's")
    p.add_argument("--richardson", action="store_true",
                   help="symmetric ep: combine beta and beta/2 as (4 g(beta/2) - g(beta))/3, cancelling "
                        "the O(beta^2) bias, and report the bias estimate |g(beta) - g(beta/2)|")
    add_format_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    G = load_network(args.network, ngspice=args.substrate == "ngspice")
    inputs = parse_assignments(args.input, "--input")
    targets = parse_assignments(args.target, "--target")
    fam = family(G)
    if args.richardson and (fam != "resistive" or args.rule != "ep" or args.one_sided):
        raise ConfigError("--richardson applies to the symmetric ep rule on resistive networks "
                          "(--rule ep without --one-sided)")
    if fam == "resistive":
        if args.state is not None:
            raise ConfigError("--state (an eigenstate index) applies to quantum networks")
        report = resistive_report(G, inputs, targets, args)
    else:
        fn, keywords = REPORTS[fam]
        refused = [o for o in SUBSTRATE_OPTIONS + ("state", "eta_c") if getattr(args, o) is not None
                   and o not in keywords.values()]
        if args.sampler != "auto":
            refused.append("sampler")
        if refused or args.substrate != "emulator":
            raise ConfigError(f"--{(refused or ['substrate'])[0]} does not apply to {fam} networks")
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
