"""Builders of layered diode networks (deep resistive networks) for classification.

:func:`layered_diode_network` builds the shape of Kendall et al. (2020) and of Scellier's
"DRN" family: every feature drives two input nodes at ``+x`` and ``-x`` volts (conductances
are positive, so a signed weight is the difference of two conductances), trainable
resistors join consecutive layers, and each hidden node carries two diodes to bias
sources, one in each orientation::

    h --|>|-- D_up  (bias node at  V_up = +clip - V_on)    conducts when h > +clip
    D_dn --|>|-- h  (bias node at  V_dn = -clip + V_on)    conducts when h < -clip

so a hidden node is a soft clipping (hard-tanh-like) unit: linear between ``-clip`` and
``+clip``, clamped beyond. ``V_on = n V_t ln(1 + i_on / i_s)`` is the diode voltage at the
reference current ``i_on`` (1 % of the node's full-scale current), so the knee sits at
``+-clip`` whatever the diode's saturation current. Two bias inputs at ``+1 V`` and
``-1 V`` (nodes ``bp``, ``bm``) feed every hidden and output node through trainable
resistors: the learnable offsets. Outputs are single nodes (prediction ``argmax V_o``) or
differential pairs ``(o_kp, o_km)`` read as ``V_kp - V_km``.

Initial conductances: uniform in ``init * g_max`` (``output_init`` for the output layer),
except that a first layer with a large fan-in starts sparse (``strong_inputs`` strong
resistors per hidden node on average, the rest near ``g_min``). A resistive node averages
its inputs, so a dense random start over ``m`` inputs moves it by only about ``1/sqrt(m)``
V, below the diodes' knee and the 26 mV scale of their exponential: such a network starts,
and on MNIST stays, nearly linear. The default networks of the image data sets (see
:data:`DEFAULT_OPTIONS`) also put the knee at 0.1 V and start the output conductances
small, so that hidden nodes are driven by their inputs rather than by the outputs.

Physical limits: every resistor of a layer with fan-in ``m`` lies in
``[g_max/1000, g_max]`` with ``g_max = g_node / m``, so the total conductance at a node
is at most ``g_node`` (default 1 mS). With inputs within ``+-input_scale`` (1 V) every node
voltage lies within ``+-1 V`` (a convex combination of the clamped voltages, the diode
biases included), so every resistor current is below ``2 V * g_max`` and every node's total
current, hence every diode current, below ``2 V * g_node = 2 mA``: well under 10 mA.

Element names: ``R1, R2, ...`` for resistors in layer order (input pairs feature by
feature, then the offsets), ``D1, D2, ...`` for diodes; nodes ``x{i}p``/``x{i}m``,
``h{l}_{j}``, ``o{k}`` or ``o{k}p``/``o{k}m``, ``bp``, ``bm``, ``dup``, ``ddn``.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from .errors import ConfigError
from .models.oscillator import J_BOUND
from .physics.torus import OSCILLATOR_DEFAULT_TEMPERATURE
from .schema import DIODE_DEFAULTS, VT_NOMINAL, normalise_resistive

#: Hidden layer widths of the default network of each bundled data set.
DEFAULT_HIDDEN: dict[str, tuple[int, ...]] = {"xor": (8,), "iris": (20,), "digits": (100,),
                                              "mnist5k": (100,)}

#: Builder options of the default networks (measured in benchmarks/RESULTS.md): the images
#: need a lower diode knee and weak initial output conductances, so that the hidden nodes
#: start driven by their inputs rather than by the outputs.
DEFAULT_OPTIONS: dict[str, dict] = {"xor": {}, "iris": {},
                                    "digits": {"clip": 0.1, "output_init": (0.005, 0.05)},
                                    "mnist5k": {"clip": 0.1, "output_init": (0.005, 0.05)}}


def layered_diode_network(n_features: int, n_classes: int, hidden: tuple[int, ...] = (100,), *,
                          rng: np.random.Generator, differential: bool = True,
                          g_node: float = 1e-3, clip: float = 0.25, input_scale: float = 1.0,
                          init: tuple[float, float] = (0.05, 0.5),
                          output_init: tuple[float, float] | None = None, strong_inputs: int = 20,
                          i_s: float = DIODE_DEFAULTS["i_s"], target: float | None = None,
                          name: str = "") -> nx.MultiGraph:
    """A layered diode network ``2 n_features -> hidden... -> n_classes (x2)``.

    ``g_node`` (S) bounds the total conductance at a node; initial conductances are drawn
    by ``rng``, uniformly in ``init * g_max`` of each layer, except in a first layer whose
    fan-in exceeds ``strong_inputs``: there each input resistor starts strong
    (``U(0.5, 1) g_max``) with probability ``strong_inputs / fan_in`` and at ``2 g_min``
    otherwise. A resistive node averages its inputs, so with a dense start over ``m``
    inputs its voltage swings by only about ``1/sqrt(m)`` V (30 mV for MNIST's 1,568
    inputs), below the diodes' knee and the ``26 mV`` scale of their exponential: the
    network would start, and stay, nearly linear. ``clip`` (V) is where the hidden diodes
    turn on; ``target`` (V) is the output target of the true class (default
    ``clip / 2``; the other classes' outputs get ``-target``). The graph records its
    encoding in the graph attributes ``encoding="doubled"``, ``input_scale``, ``outputs``
    (``differential`` or ``single``), ``target_high`` and ``target_low``.
    """
    if n_features < 1 or n_classes < 2 or any(h < 1 for h in hidden):
        raise ConfigError(f"bad network shape: {n_features} features, hidden {hidden}, {n_classes} classes")
    if not 0 < clip < 1:
        raise ConfigError(f"clip must lie in (0, 1) V, got {clip}")
    nvt = DIODE_DEFAULTS["n"] * VT_NOMINAL
    v_on = nvt * math.log1p(0.01 * g_node * 1.0 / i_s)
    target = clip / 2 if target is None else float(target)
    G = nx.MultiGraph(family="resistive", name=name or f"drn-{2 * n_features}-{'-'.join(map(str, hidden))}-{n_classes}")
    inputs = [f"x{i}{sign}" for i in range(n_features) for sign in ("p", "m")]
    for node in inputs:
        G.add_node(node, role="input", voltage=0.0)
    G.add_node("bp", role="bias", voltage=1.0)
    G.add_node("bm", role="bias", voltage=-1.0)
    G.add_node("dup", role="bias", voltage=clip - v_on)
    G.add_node("ddn", role="bias", voltage=-clip + v_on)
    layers = [inputs]
    for l, width in enumerate(hidden):
        layers.append([f"h{l}_{j}" for j in range(width)])
    outputs = ([f"o{k}{sign}" for k in range(n_classes) for sign in ("p", "m")] if differential
               else [f"o{k}" for k in range(n_classes)])
    layers.append(outputs)
    counter = {"R": 0, "D": 0}

    def add(kind, a, b, **attrs):
        counter[kind] += 1
        key = f"{kind}{counter[kind]}"
        G.add_edge(a, b, key=key, name=key, **attrs)

    for l in range(1, len(layers)):
        role = "output" if l == len(layers) - 1 else "hidden"
        fan_in = len(layers[l - 1]) + 2
        g_max = g_node / fan_in
        g_min = g_max * 1e-3
        for node in layers[l]:
            G.add_node(node, role=role)
        p_strong = strong_inputs / fan_in if l == 1 and fan_in > strong_inputs else None
        for node in layers[l]:
            for src in layers[l - 1] + ["bp", "bm"]:
                if p_strong is None or src in ("bp", "bm"):
                    g = g_max * rng.uniform(*(output_init if role == "output" and output_init else init))
                elif rng.random() < p_strong:
                    g = g_max * rng.uniform(0.5, 1.0)
                else:
                    g = 2 * g_min
                add("R", src, node, element="resistor", conductance=float(min(max(g, g_min), g_max)),
                    trainable=True, g_min=g_min, g_max=g_max)
        if role == "hidden":
            for node in layers[l]:
                add("D", node, "dup", element="diode", anode=node, cathode="dup", i_s=i_s)
                add("D", "ddn", node, element="diode", anode="ddn", cathode=node, i_s=i_s)
    G.graph.update(input_order=" ".join(inputs), output_order=" ".join(outputs), encoding="doubled",
                   input_scale=float(input_scale), outputs="differential" if differential else "single",
                   target_high=target, target_low=-target)
    return normalise_resistive(G)


def default_network(dataset: str, n_features: int, n_classes: int, rng: np.random.Generator,
                    hidden: tuple[int, ...] | None = None) -> nx.MultiGraph:
    """The default network for a bundled data set (hidden widths in :data:`DEFAULT_HIDDEN`
    unless given, builder options in :data:`DEFAULT_OPTIONS`)."""
    hidden = tuple(hidden or DEFAULT_HIDDEN.get(dataset, (max(8, 2 * n_classes),)))
    return layered_diode_network(n_features, n_classes, hidden, rng=rng, name=f"default-{dataset}",
                                 **DEFAULT_OPTIONS.get(dataset, {}))


# ----- oscillator networks -------------------------------------------------------------------

#: Phase scale (rad) of the oscillator encoding: binary features land on +-pi/4.
INPUT_SCALE = np.pi / 4
#: Initial couplings and fields of oscillator networks are drawn from U(-J_INIT, J_INIT) and
#: U(-FIELD_INIT, FIELD_INIT) (coupling units).
J_INIT = 1.0
FIELD_INIT = 0.5


def layered_oscillator_network(n_inputs: int, hidden: tuple[int, ...], n_outputs: int, *,
                               rng: np.random.Generator, name: str = "",
                               input_scale: float = INPUT_SCALE) -> nx.Graph:
    """A layered oscillator network: inputs ``x0..``, hidden layers ``h{l}_{j}``, outputs
    ``o0..``; every pair of consecutive layers fully coupled (couplings ``J1, J2, ...`` in
    layer order, drawn ``U(-J_INIT, J_INIT)``), a trainable field on every free oscillator
    (drawn ``U(-FIELD_INIT, FIELD_INIT)``); ``input_scale`` (rad) is stored in the graph."""
    if n_inputs < 1 or n_outputs < 1 or any(h < 1 for h in hidden):
        raise ConfigError(f"bad network shape: {n_inputs} inputs, hidden {hidden}, {n_outputs} outputs")
    G = nx.Graph(family="oscillator", name=name or f"osc-{n_inputs}-{'-'.join(map(str, hidden))}-{n_outputs}",
                 temperature=OSCILLATOR_DEFAULT_TEMPERATURE, input_scale=float(input_scale))
    layers = [[f"x{i}" for i in range(n_inputs)]]
    for node in layers[0]:
        G.add_node(node, role="input", phase=0.0)
    for l, width in enumerate(hidden):
        layers.append([f"h{l}_{j}" for j in range(width)])
    layers.append([f"o{k}" for k in range(n_outputs)])
    for layer, role in zip(layers[1:], ["hidden"] * len(hidden) + ["output"]):
        for node in layer:
            a, c = rng.uniform(-FIELD_INIT, FIELD_INIT, 2)
            G.add_node(node, role=role, a=float(a), c=float(c), field_trainable=True)
    k = 0
    for lower, upper in zip(layers[:-1], layers[1:]):
        for p in lower:
            for q in upper:
                k += 1
                G.add_edge(p, q, name=f"J{k}", coupling=float(rng.uniform(-J_INIT, J_INIT)), trainable=True,
                           j_min=-J_BOUND, j_max=J_BOUND)
    G.graph["output_order"] = " ".join(layers[-1])
    G.graph["input_order"] = " ".join(layers[0])
    return G
