"""SPICE-subset netlists <-> resistive network graphs (ngspice runs them: :mod:`analog_ep.spice`).

The subset (everything else is refused with the file name and line number):

* the first line is the title; ``*`` starts a comment line, ``;``, `` $ `` and ``//``
  start a comment inside a line, ``+`` continues the previous line; ``.end`` ends the deck
  and ``.control`` ... ``.endc`` blocks are skipped. Everything is case-insensitive (names
  keep the spelling of their first appearance); node ``0`` (alias ``gnd``) is ground.
* ``Rname a b VALUE`` (ohms), ``Dname anode cathode MODEL [AREA] [area=] [m=] [temp=]
  [dtemp=] [off]``, ``Vname n+ n- [DC] VALUE`` (one end grounded: a clamped node),
  ``Iname n+ n- [DC] VALUE`` (current from n+ through the source into n-, i.e. into the
  node ``n-``), ``Cname node 0 VALUE`` (a node capacitance to ground).
* ``.model NAME D(IS= N= EG= XTI= TNOM=)`` (capacitance parameters are accepted and
  ignored: they do not change the DC equilibrium), ``.temp T`` and ``.options temp= tnom=``
  (degrees C). Away from ``TNOM`` SPICE scales the saturation current as
  ``IS(T) = IS * area * m * exp((T/TNOM - 1) EG / (N k T/q) + XTI/N ln(T/TNOM))`` and
  uses the thermal voltage ``k T/q``; the graph stores the scaled ``i_s`` and ``vt``.
* numbers with SPICE scale factors ``f p n u m k meg g t mil`` (case-insensitive) and
  trailing unit letters ignored as SPICE does (``10kOhm`` is 1e4, ``1Mohm`` is 1e-3).
  The suffix ``a`` is refused: SPICE versions disagree on whether it means atto.
* directives in comments, so the file runs unchanged in ngspice:
  ``*@ input NODE ...`` (each needs a V source to ground, its clamp; its DC value is the
  default input), ``*@ output NODE ...``, ``*@ trainable NAME ... | all``,
  ``*@ bounds NAME_OR_GLOB GMIN GMAX`` (siemens). Other V sources make ``bias`` nodes.
  ``*@ trainable-gate MOSFET SOURCE ...`` (pairs; ngspice only: a gate-trained MOSFET edge,
  see :func:`read_spice`), whose bounds ``*@ bounds SOURCE VMIN VMAX`` are in volts
  (default :data:`GATE_BOUNDS`).
  Directive order sets the graph attributes ``input_order`` / ``output_order``;
  ``*@ graph KEY VALUE`` sets any other graph attribute (a float when it reads as one).

Elements, cards and models only ngspice runs (:data:`NGSPICE_ELEMENTS`,
:data:`NGSPICE_CARDS`, non-diode models, diode models beyond the parameters above,
resistors valued by expressions) are refused together, each named with its line, as
needing ``--substrate ngspice``; ``read_spice(path, ngspice=True)`` keeps them for ngspice
instead (see :func:`read_spice`).

ngspice adds a conductance ``gmin`` (1e-12 S by default) across every diode junction. The
default is not modelled (a relative effect of ``gmin / G`` on the node voltages); an explicit
``.options gmin=G`` becomes a fixed resistor ``<diode>_gmin`` of conductance ``G`` in
parallel with each diode, as ngspice has it. ``AC`` specifications of sources (small-signal
only) are ignored with a warning naming the file and line.
"""

from __future__ import annotations

import fnmatch
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from .errors import NetlistError, NetworkError
from .schema import K_OVER_Q, RESISTOR_DEFAULTS, T_NOMINAL, VT_NOMINAL, family, normalise_resistive

#: Default bounds (V) of a trainable gate voltage.
GATE_BOUNDS = (0.0, 5.0)
#: ngspice's default MOSFET channel width and length (m), ``.options defw defl``.
MOS_DEFAULT_WL = 100e-6
#: Level-1 MOSFET model parameters a gate-trained edge accepts: those of its square law
#: (``LEVEL=1``, ``VTO``, ``KP``, ``LD``; ``LAMBDA`` and ``GAMMA`` only at 0) and those that
#: only shape capacitances or the reverse-biased body junctions.
_MOS_PARAMS = {"level", "vto", "kp", "ld", "lambda", "gamma", "phi", "is", "js", "pb", "cbd", "cbs", "cj",
               "cjsw", "mj", "mjsw", "cgso", "cgdo", "cgbo", "fc", "tox", "rd", "rs"}
#: Degrees Celsius to kelvin.
CELSIUS = 273.15
#: SPICE diode defaults: saturation current (A), emission coefficient, band gap (eV),
#: saturation-current temperature exponent.
DIODE_MODEL_DEFAULTS = {"is": 1e-14, "n": 1.0, "eg": 1.11, "xti": 3.0}
#: Options with no effect on a DC operating point of this subset (tolerances, output).
_IGNORED_OPTIONS = {
    "reltol", "abstol", "vntol", "chgtol", "trtol", "pivtol", "pivrel", "itl1", "itl2",
    "itl3", "itl4", "itl5", "itl6", "method", "maxord", "numdgt", "acct", "noacct", "norefvalue",
    "noinit", "list", "nopage", "nomod", "node", "opts", "savecurrents", "klu", "sparse",
    "gminsteps", "srcsteps", "noopiter", "keepopinfo", "warn", "interp", "seed"}
#: Analysis and output cards: they do not change the network.
_IGNORED_CARDS = {"op", "dc", "tran", "ac", "noise", "tf", "disto", "pz", "sens", "print",
                  "plot", "probe", "save", "width", "four", "meas", "measure", "ic", "nodeset"}
#: Elements ngspice runs and the emulator does not model, by first letter.
NGSPICE_ELEMENTS = {
    "m": "a MOSFET", "q": "a BJT", "j": "a JFET", "z": "a MESFET", "x": "a subcircuit instance",
    "b": "a behavioural source", "e": "a voltage-controlled voltage source",
    "f": "a current-controlled current source", "g": "a voltage-controlled current source",
    "h": "a current-controlled voltage source", "l": "an inductor", "k": "an inductor coupling",
    "s": "a voltage-controlled switch", "w": "a current-controlled switch", "a": "an XSPICE model",
    "t": "a transmission line", "o": "a lossy transmission line", "u": "a distributed RC line"}
#: Dot cards ngspice reads and the emulator does not.
NGSPICE_CARDS = {"subckt", "ends", "include", "inc", "lib", "param", "func", "global", "csparam"}
#: Diode model parameters that only shape capacitances (no DC effect).
_CAPACITIVE_PARAMS = {"cjo", "cj0", "cj", "vj", "pb", "m", "mj", "tt", "fc", "kf", "af",
                      "cjp", "cjsw", "php", "mjsw", "fcs"}
#: Scale factors as powers of ten (``mil`` is 25.4e-6, handled apart).
_SCALES = (("meg", 6), ("mil", -6), ("t", 12), ("g", 9), ("k", 3), ("m", -3), ("u", -6),
           ("n", -9), ("p", -12), ("f", -15))
_NUMBER = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:[eEdD]([+-]?\d+))?([A-Za-z]*)")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:#<>\-]*")
#: Graph attributes a netlist carries by other means than ``*@ graph`` (or not at all).
_OWN_GRAPH_KEYS = {"family", "name", "input_order", "output_order", "source"}


def parse_value(token: str) -> float:
    """A SPICE number: ``1.5k`` -> 1500.0, ``10kOhm`` -> 1e4, ``2meg`` -> 2e6, ``1e-3u`` -> 1e-9.

    As in SPICE, a letter scale factor may follow the number and further letters are
    ignored; an exponent marker without digits (``1e``) is ignored too. Raises ValueError on
    anything else (``10k5``, ``1.2.3``, ``abc``) and on the ambiguous suffix ``a``.
    """
    m = _NUMBER.fullmatch(token.strip())
    if not m:
        raise ValueError(f"{token!r} is not a number")
    mantissa, exponent, suffix = m.groups()
    letters = suffix.lower()
    if letters[:1] in ("e", "d"):  # SPICE reads a bare exponent marker, then the scale
        letters = letters[1:]
    if letters.startswith("a"):
        raise ValueError(f"{token!r}: the suffix 'a' means atto in some SPICE versions and "
                         "nothing in others; write the number without it")
    power = next((p for prefix, p in _SCALES if letters.startswith(prefix)), 0)
    value = float(f"{mantissa}e{int(exponent or 0) + power}")  # correctly rounded
    return value * 25.4 if letters.startswith("mil") else value


# ----- reading ---------------------------------------------------------------------------------
@dataclass
class _Card:
    line: int
    tokens: list[str]
    text: str = ""


@dataclass
class _Deck:
    title: str = ""
    elements: list[_Card] = field(default_factory=list)
    dots: list[_Card] = field(default_factory=list)
    directives: list[_Card] = field(default_factory=list)
    #: the file's lines as ngspice is given them: no title, no .control blocks, nothing
    #: from .end on, relative .include/.lib paths made absolute
    spice: list[str] = field(default_factory=list)


_INCLUDE = re.compile(r"^(\.(?:include|inc|lib)\s+)([\"']?)([^\s\"']+)\2(.*)$", re.I)


def _spice_line(raw: str, directory: Path) -> str:
    """A line for ngspice: a relative ``.include``/``.lib`` path made absolute."""
    m = _INCLUDE.match(raw.strip())
    if m and not Path(m.group(3)).is_absolute():
        return f"{m.group(1)}{directory / m.group(3)}{m.group(4)}"
    return raw


def _strip_inline_comment(text: str) -> str:
    for pattern in (r";", r"(^|\s)\$", r"//"):
        m = re.search(pattern, text)
        if m:
            text = text[:m.start()]
    return text


def _tokenise(text: str) -> list[str]:
    text = re.sub(r"\s*=\s*", "=", text.replace("(", " ").replace(")", " ").replace(",", " "))
    return text.split()


def _split_deck(text: str, path: str) -> _Deck:
    lines = text.splitlines()
    if not lines:
        raise NetlistError("empty netlist (the first line is the title)", path, 1)
    deck = _Deck(title=lines[0].strip())
    cards: list[tuple[int, str, list]] = []   # (line, text, target list)
    in_control = in_subckt = False
    directory = Path(path).resolve().parent
    for number, raw in enumerate(lines[1:], start=2):
        stripped = raw.strip()
        low = stripped.lower()
        if in_control:
            if low.startswith(".endc"):
                in_control = False
            continue
        if low.startswith(".control"):
            in_control = True
            continue
        if low.split()[:1] == [".end"]:
            break
        deck.spice.append(_spice_line(raw, directory))
        if in_subckt:                  # a subcircuit's body is ngspice's to read
            in_subckt = not low.startswith(".ends")
            continue
        if low.startswith(".subckt"):
            in_subckt = True
        if not stripped:
            continue
        if stripped.startswith("*@"):
            cards.append((number, stripped[2:], deck.directives))
            continue
        if stripped.startswith("*"):
            continue
        body = _strip_inline_comment(stripped).strip()
        if not body:
            continue
        if body.startswith("+"):
            if not cards or cards[-1][2] is deck.directives:
                raise NetlistError("continuation line '+' with no card to continue", path, number)
            line, prev, target = cards[-1]
            cards[-1] = (line, prev + " " + body[1:], target)
            continue
        low = body.lower()
        if low.startswith(".endc"):
            raise NetlistError("'.endc' without '.control'", path, number)
        cards.append((number, body, deck.dots if body.startswith(".") else deck.elements))
    for number, body, target in cards:
        # directives are split on whitespace only: their values may hold any character
        tokens = body.split() if target is deck.directives else _tokenise(body)
        target.append(_Card(number, tokens, body))
    return deck


class _Reader:
    """Builds a graph from the cards of one file; every error names the file and line."""

    def __init__(self, deck: _Deck, path: str, ngspice: bool = False):
        self.deck, self.path, self.ngspice = deck, path, ngspice
        self.foreign: list[tuple[int, str]] = []    # what only ngspice runs: (line, "what (line N)")
        self.node_spelling: dict[str, str] = {"0": "0"}
        self.element_lines: dict[str, int] = {}
        self.models: dict[str, dict] = {}
        self.temp = T_NOMINAL
        self.tnom = T_NOMINAL
        self.gmin: float | None = None
        self.mos_models: dict[str, tuple[str, list[str], _Card]] = {}
        self.mosfets: dict[str, _Card] = {}          # MOSFET cards by lower-case name
        self.floating: dict[str, tuple[_Card, str, str, float]] = {}   # floating V sources
        self.channel_nodes: set[str] = set()

    def fail(self, message: str, card: _Card) -> NetlistError:
        return NetlistError(message, self.path, card.line)

    def needs_ngspice(self, what: str, card: _Card) -> None:
        """Note that ``what`` (an element, card or model) is ngspice's alone."""
        self.foreign.append((card.line, f"{what} (line {card.line})"))

    def refuse_foreign(self) -> None:
        """Unless reading for ngspice, refuse what only ngspice runs, naming all of it."""
        self.foreign.sort()
        if self.foreign and not self.ngspice:
            shown = "; ".join(t for _, t in self.foreign[:6])
            more = f"; ... ({len(self.foreign)} in all)" if len(self.foreign) > 6 else ""
            raise NetlistError(f"{shown}{more}: only ngspice runs this, use --substrate ngspice (the emulator "
                               "models R, D, V, I, C cards and diodes with IS, N, EG, XTI, TNOM)",
                               self.path, self.foreign[0][0])

    def value(self, token: str, card: _Card, what: str) -> float:
        try:
            return parse_value(token)
        except ValueError as exc:
            raise self.fail(f"{what}: {exc}", card) from None

    def node(self, token: str) -> str:
        key = token.lower()
        if key in ("0", "gnd"):
            return "0"
        return self.node_spelling.setdefault(key, token)

    def keyvalues(self, tokens: list[str], card: _Card, what: str) -> dict[str, float]:
        out = {}
        for tok in tokens:
            key, sep, val = tok.partition("=")
            if not sep or not key:
                raise self.fail(f"{what}: expected NAME=VALUE, got {tok!r}", card)
            out[key.lower()] = self.value(val, card, f"{what} {key}")
        return out

    # -- dot cards --------------------------------------------------------------------------
    def read_dots(self) -> None:
        for card in self.deck.dots:
            keyword = card.tokens[0][1:].lower()
            args = card.tokens[1:]
            if keyword == "model":
                self.read_model(card, args)
            elif keyword == "temp":
                if len(args) != 1:
                    raise self.fail("'.temp' takes exactly one temperature (degrees C)", card)
                self.temp = self.value(args[0], card, ".temp") + CELSIUS
            elif keyword in NGSPICE_CARDS:
                self.needs_ngspice(f"'.{keyword}'", card)
            elif keyword in ("options", "option", "opt"):
                for tok in args:
                    key, sep, val = tok.partition("=")
                    key = key.lower()
                    if key in ("temp", "tnom") and sep:
                        kelvin = self.value(val, card, f".options {key}") + CELSIUS
                        setattr(self, key, kelvin)
                    elif key == "gmin" and sep:
                        self.gmin = self.value(val, card, ".options gmin")
                        if not 0 < self.gmin < math.inf:
                            raise self.fail(f".options gmin must be a positive conductance, got {val}", card)
                    elif key not in _IGNORED_OPTIONS and not self.ngspice:
                        raise self.fail(f"unsupported option {key!r}", card)
            elif keyword not in _IGNORED_CARDS:
                raise self.fail(f"unsupported card '.{keyword}' (supported: .model, .temp, "
                                ".options, analysis and output cards, .end)", card)
        for name, (tokens, card) in list(self.models.items()):
            self.models[name] = self.model_params(tokens, card) if tokens is not None else None
        if self.temp <= 0 or self.tnom <= 0:
            raise NetlistError("temperatures must be above absolute zero", self.path)

    def read_model(self, card: _Card, args: list[str]) -> None:
        if len(args) < 2:
            raise self.fail("'.model' needs a name and a type", card)
        name, kind = args[0].lower(), args[1].lower()
        if name in self.models:
            raise self.fail(f"duplicate model {args[0]!r}", card)
        self.models[name] = (args[2:] if kind == "d" else None, card)
        if kind in ("nmos", "pmos"):
            self.mos_models[name] = (kind, args[2:], card)
        if kind != "d":
            self.needs_ngspice(f"model {args[0]} ({args[1].upper()})", card)

    def model_params(self, tokens: list[str], card: _Card) -> dict:
        params = dict(DIODE_MODEL_DEFAULTS)
        for key, val in self.keyvalues(tokens, card, ".model").items():
            key = "is" if key == "js" else key
            if key in ("is", "n", "eg", "xti"):
                params[key] = val
            elif key == "tnom":
                params["tnom"] = val + CELSIUS
            elif key == "level" and val == 1:
                continue
            elif key in ("rs", "isr", "ibv", "jsw") and val == 0:
                continue
            elif key not in _CAPACITIVE_PARAMS:     # ngspice's diode model: its elements are ngspice's
                params.setdefault("ngspice", key.upper())
        if not params["is"] > 0 or not params["n"] > 0:
            raise self.fail("diode model needs IS > 0 and N > 0", card)
        if params["eg"] < 0.1:
            raise self.fail(f"diode model EG = {params['eg']} eV is below SPICE's floor 0.1 eV", card)
        return params

    # -- elements -----------------------------------------------------------------------------
    def build(self) -> nx.MultiGraph:
        self.read_dots()
        G = nx.MultiGraph(family="resistive", name=self.deck.title or Path(self.path).stem)
        clamps: dict[str, tuple[float, _Card]] = {}
        currents: Counter = Counter()
        caps: Counter = Counter()
        for card in self.deck.elements:
            name = card.tokens[0]
            kind = name[0].lower()
            if name.lower() in self.element_lines:
                raise self.fail(f"duplicate element name {name!r} (first on line "
                                f"{self.element_lines[name.lower()]})", card)
            self.element_lines[name.lower()] = card.line
            if kind in NGSPICE_ELEMENTS:
                self.needs_ngspice(f"element {name} ({NGSPICE_ELEMENTS[kind]})", card)
                if kind == "m" and len(card.tokens) >= 6:
                    self.mosfets[name.lower()] = card
                continue
            if kind not in "rdvic":
                raise self.fail(f"unsupported element {name!r} (supported: R, D, V, I, C)", card)
            if len(card.tokens) < 3:
                raise self.fail(f"element {name} needs two nodes", card)
            a, b = self.node(card.tokens[1]), self.node(card.tokens[2])
            G.add_nodes_from((a, b))
            args = card.tokens[3:]
            if kind == "r":
                self.resistor(G, card, name, a, b, args)
            elif kind == "d":
                self.diode(G, card, name, a, b, args)
            else:
                value = self.source_value(card, name, args) if kind in "vi" else None
                if kind == "v":
                    self.voltage_source(card, name, a, b, value, clamps)
                elif kind == "i":
                    currents[a] -= value
                    currents[b] += value
                else:
                    self.capacitor(card, name, a, b, args, caps)
        self.refuse_foreign()
        if self.gmin is not None:
            self.junction_gmin(G)
        for node in G.nodes:
            G.nodes[node]["role"] = "ground" if node == "0" else "hidden"
        for node, value in currents.items():
            if node != "0" and value != 0.0:
                G.nodes[node]["current"] = float(value)
        for node, value in caps.items():
            G.nodes[node]["capacitance"] = float(value)
        self.apply_directives(G, clamps)
        if self.foreign:
            self.keep_for_ngspice(G, clamps)
        return G

    def keep_for_ngspice(self, G, clamps) -> None:
        """A netlist with ngspice-only parts: what ngspice needs to run it goes in the graph
        (``spice_deck``, ``spice_only``, each clamp's ``source`` and ``source_sign``); free
        nodes no parsed element touches are left out (ngspice alone knows them)."""
        G.graph["spice_only"] = "; ".join(t for _, t in self.foreign)
        G.graph["spice_deck"] = "\n".join(self.deck.spice)
        for node, (_, card) in clamps.items():
            G.nodes[node]["source"] = card.tokens[0]
            G.nodes[node]["source_sign"] = 1.0 if self.node(card.tokens[2]) == "0" else -1.0
        G.remove_nodes_from([n for n, d in G.nodes(data=True) if G.degree(n) == 0
                             and d["role"] in ("hidden",) and n not in self.channel_nodes])

    def gate_edge(self, G, card, mosfet: str, source: str) -> dict:
        """A gate-trained MOSFET edge (see :func:`read_spice`) as a dict of graph-attribute
        values; refuses anything its closed-form co-content does not describe."""
        if not self.ngspice:
            raise self.fail("'*@ trainable-gate' needs --substrate ngspice (ngspice runs the MOSFET)", card)
        mcard = self.mosfets.get(mosfet.lower())
        if mcard is None:
            raise self.fail(f"{mosfet!r} is not a MOSFET of the netlist (Mname drain gate source body model)", card)
        name = mcard.tokens[0]
        drain, gate, src = (self.node(t) for t in mcard.tokens[1:4])
        entry = self.floating.get(source.lower())
        if entry is None:
            raise self.fail(f"{source!r} is not a floating V source of the netlist: a trainable gate is set by a "
                            f"source from {name}'s gate to one of its channel nodes", card)
        vcard, plus, minus, volts = entry
        if plus != gate or minus not in (drain, src) or drain == src:
            raise self.fail(f"gate source {vcard.tokens[0]} must run from {name}'s gate {gate!r} (its + node) "
                            f"to its drain {drain!r} or source {src!r} (its - node): with the gate held above "
                            "a channel node the edge is a two-terminal resistor, a gradient system", card)
        model = self.mos_models.get(mcard.tokens[5].lower())
        if model is None or model[0] != "nmos":
            raise self.fail(f"{name}: a trainable gate needs an NMOS '.model {mcard.tokens[5]} NMOS(...)' "
                            "in the file", card)
        params = self.keyvalues(model[1], model[2], f".model {mcard.tokens[5]}")
        unknown = sorted(set(params) - _MOS_PARAMS)
        if unknown or params.get("level", 1) != 1:
            raise self.fail(f"{name}: a trainable gate needs a level-1 model given by VTO, KP (and LD); "
                            f"model {mcard.tokens[5]} has {', '.join(unknown) or 'LEVEL != 1'}", card)
        nonzero = [k.upper() for k in ("lambda", "gamma", "rd", "rs") if params.get(k, 0.0) != 0.0]
        if nonzero or ("tox" in params and "kp" not in params):
            raise self.fail(f"{name}: the closed-form co-content of a trainable gate needs LAMBDA = GAMMA = "
                            f"RD = RS = 0 and KP given (not derived from TOX); model {mcard.tokens[5]} has "
                            f"{', '.join(nonzero) or 'TOX without KP'}", card)
        inst = self.keyvalues(mcard.tokens[6:], mcard, f"MOSFET {name}")
        bad = sorted(set(inst) - {"w", "l", "m"})
        if bad:
            raise self.fail(f"MOSFET {name}: unsupported parameter(s) {', '.join(bad)} of a trainable gate", card)
        width, length = inst.get("w", MOS_DEFAULT_WL), inst.get("l", MOS_DEFAULT_WL) - 2 * params.get("ld", 0.0)
        if not width > 0 or not length > 0:
            raise self.fail(f"MOSFET {name}: W and L - 2 LD must be positive", card)
        k = params.get("kp", 2e-5) * width / length * inst.get("m", 1.0)
        for node in (drain, src):
            if node not in G:
                G.add_node(node, role="ground" if node == "0" else "hidden")
            self.channel_nodes.add(node)
        return {"name": name, "source": vcard.tokens[0], "a": src if minus == drain else drain, "b": minus,
                "k": k, "vto": params.get("vto", 0.0), "vg": float(volts),
                "vg_min": GATE_BOUNDS[0], "vg_max": GATE_BOUNDS[1]}

    def resistor(self, G, card, name, a, b, args) -> None:
        if len(args) != 1:
            raise self.fail(f"resistor {name} takes one value (ohms); got {' '.join(args) or 'none'}", card)
        token = args[0]
        if token.lower().startswith("r="):
            token = token[2:]
        if token.startswith(("{", "'")):
            self.needs_ngspice(f"resistor {name} (value {token})", card)
            return
        ohms = self.value(token, card, f"resistor {name}")
        if not ohms > 0 or math.isinf(ohms):
            raise self.fail(f"resistor {name}: resistance must be positive and finite, got {ohms}", card)
        if a == b:
            raise self.fail(f"resistor {name} connects node {a!r} to itself", card)
        G.add_edge(a, b, key=name, name=name, element="resistor", conductance=1.0 / ohms,
                   **RESISTOR_DEFAULTS)

    def junction_gmin(self, G) -> None:
        """ngspice's ``gmin`` as a fixed resistor ``<diode>_gmin`` across each diode junction."""
        for a, b, d in list(G.edges(data=True)):
            if d["element"] == "diode":
                name = f"{d['name']}_gmin"
                if name.lower() in self.element_lines:
                    raise NetlistError(f"cannot add gmin across {d['name']}: element {name!r} exists", self.path)
                G.add_edge(a, b, key=name, name=name, element="resistor", conductance=self.gmin,
                           **{**RESISTOR_DEFAULTS, "g_min": min(self.gmin, RESISTOR_DEFAULTS["g_min"])})

    def diode(self, G, card, name, a, b, args) -> None:
        if not args:
            raise self.fail(f"diode {name} needs a model name", card)
        if args[0].lower() not in self.models and self.ngspice:    # perhaps in an .include
            self.needs_ngspice(f"diode {name} (model {args[0]} not in the file)", card)
            return
        model = self.models.get(args[0].lower())
        if model is None:
            raise self.fail(f"diode {name}: no '.model {args[0]} D(...)' in the file", card)
        if "ngspice" in model:
            self.needs_ngspice(f"diode {name} (model {args[0]} with {model['ngspice']})", card)
            return
        if a == b:
            raise self.fail(f"diode {name} connects node {a!r} to itself", card)
        scale, inst = 1.0, {}
        rest = [t for t in args[1:] if t.lower() != "off"]
        if rest and "=" not in rest[0]:
            scale = self.value(rest.pop(0), card, f"diode {name} area")
        inst = self.keyvalues(rest, card, f"diode {name}")
        unknown = set(inst) - {"area", "m", "temp", "dtemp"}
        if unknown:
            raise self.fail(f"diode {name}: unsupported parameter(s) {', '.join(sorted(unknown))}", card)
        scale *= inst.get("area", 1.0) * inst.get("m", 1.0)
        if not scale > 0:
            raise self.fail(f"diode {name}: area and multiplier must be positive", card)
        T = inst["temp"] + CELSIUS if "temp" in inst else self.temp + inst.get("dtemp", 0.0)
        if not T > 0:
            raise self.fail(f"diode {name}: temperature below absolute zero", card)
        i_s, vt = saturation_current(model["is"] * scale, model["n"], model["eg"], model["xti"],
                                     T, model.get("tnom", self.tnom))
        G.add_edge(a, b, key=name, name=name, element="diode", anode=a, cathode=b,
                   i_s=i_s, n=float(model["n"]), vt=vt)

    def source_value(self, card, name, args) -> float:
        lowered = [a.lower() for a in args]
        if "ac" in lowered:  # small-signal only: no effect on the operating point
            warnings.warn(f"{self.path}:{card.line}: source {name}: AC specification ignored "
                          "(it has no effect on the operating point)", stacklevel=2)
            args = args[:lowered.index("ac")]
        if args and args[0].lower() == "dc":
            args = args[1:]
        if len(args) > 1:
            raise self.fail(f"source {name}: only a DC value is supported, got {' '.join(args)!r}", card)
        return self.value(args[0], card, f"source {name}") if args else 0.0

    def voltage_source(self, card, name, a, b, value, clamps) -> None:
        if a != "0" and b != "0" and self.ngspice:
            self.needs_ngspice(f"floating voltage source {name}", card)
            self.floating[name.lower()] = (card, a, b, value)
            return
        if a != "0" and b != "0":
            raise self.fail(f"voltage source {name} between {a!r} and {b!r}: one end must be "
                            "ground (0); a floating source cannot be a clamped node", card)
        if a == b:
            raise self.fail(f"voltage source {name} has both ends on ground", card)
        node, volts = (a, value) if b == "0" else (b, -value)
        if node in clamps:
            raise self.fail(f"node {node!r} is already clamped by the source on line "
                            f"{clamps[node][1].line}", card)
        clamps[node] = (volts, card)

    def capacitor(self, card, name, a, b, args, caps) -> None:
        if a != "0" and b != "0" and self.ngspice:
            return                          # no DC current: nothing for the graph, all for ngspice
        if a != "0" and b != "0":
            raise self.fail(f"capacitor {name} between {a!r} and {b!r}: only capacitances to "
                            "ground (0) are supported", card)
        if a == b:
            raise self.fail(f"capacitor {name} has both ends on ground", card)
        if len(args) != 1:
            raise self.fail(f"capacitor {name} takes one value (farads)", card)
        token = args[0][2:] if args[0].lower().startswith("c=") else args[0]
        farads = self.value(token, card, f"capacitor {name}")
        if not farads > 0:
            raise self.fail(f"capacitor {name}: capacitance must be positive, got {farads}", card)
        caps[a if b == "0" else b] += farads

    # -- directives ---------------------------------------------------------------------------
    def directive_nodes(self, G, card, names) -> list[str]:
        out = []
        for token in names:
            key = token.lower()
            node = "0" if key in ("0", "gnd") else self.node_spelling.get(key)
            if node is None or node not in G:
                raise self.fail(f"no node {token!r} in the netlist", card)
            if node in out:
                raise self.fail(f"node {token!r} listed twice", card)
            out.append(node)
        return out

    def apply_directives(self, G, clamps) -> None:
        inputs: list[str] = []
        outputs: list[str] = []
        resistors = {d["name"].lower(): (u, v, k) for u, v, k, d in G.edges(keys=True, data=True)
                     if d["element"] == "resistor"}
        gates = {}
        for card in self.deck.directives:       # gates first: their bounds may come earlier
            if card.tokens and card.tokens[0].lower() == "trainable-gate":
                args = card.tokens[1:]
                if not args or len(args) % 2:
                    raise self.fail("'*@ trainable-gate' takes pairs MOSFET GATE_SOURCE", card)
                for m, v in zip(args[::2], args[1::2]):
                    if v.lower() in gates:
                        raise self.fail(f"gate source {v!r} is already trainable", card)
                    gates[v.lower()] = self.gate_edge(G, card, m, v)
        for card in self.deck.directives:
            if not card.tokens:
                raise self.fail("empty '*@' directive", card)
            word, args = card.tokens[0].lower(), card.tokens[1:]
            if word in ("input", "output"):
                nodes = self.directive_nodes(G, card, args)
                for node in nodes:
                    if node in inputs or node in outputs:
                        raise self.fail(f"node {node!r} is already an input or output", card)
                    if word == "input" and node not in clamps:
                        raise self.fail(f"input {node!r} has no V source to ground (its clamp)", card)
                    if word == "output" and (node in clamps or node == "0"):
                        raise self.fail(f"output {node!r} is clamped; an output must be a free node", card)
                (inputs if word == "input" else outputs).extend(nodes)
            elif word == "trainable":
                if not args:
                    raise self.fail("'*@ trainable' needs element names or 'all'", card)
                names = list(resistors) if [a.lower() for a in args] == ["all"] else args
                for token in names:
                    edge = resistors.get(token.lower())
                    if edge is None:
                        what = "a diode: only resistors" if token.lower() in self.element_lines \
                            and token[0].lower() == "d" else "not a resistor of the netlist; only resistors"
                        raise self.fail(f"{token!r} is {what} can be trainable", card)
                    G.edges[edge]["trainable"] = True
            elif word == "trainable-gate":
                continue
            elif word == "bounds":
                if len(args) != 3:
                    raise self.fail("'*@ bounds' takes NAME_OR_GLOB GMIN GMAX (siemens; volts for a "
                                    "trainable gate's source)", card)
                lo = self.value(args[1], card, "bounds GMIN")
                hi = self.value(args[2], card, "bounds GMAX")
                matched = fnmatch.filter(resistors, args[0].lower())
                on_gates = fnmatch.filter(gates, args[0].lower())
                if not matched and not on_gates:
                    raise self.fail(f"'*@ bounds {args[0]}' matches no resistor or trainable gate", card)
                if matched and not 0 < lo <= hi:
                    raise self.fail(f"bounds must satisfy 0 < GMIN <= GMAX, got {lo}, {hi}", card)
                if on_gates and not lo <= hi:
                    raise self.fail(f"gate bounds must satisfy VMIN <= VMAX, got {lo}, {hi}", card)
                for key in matched:
                    G.edges[resistors[key]].update(g_min=lo, g_max=hi)
                for key in on_gates:
                    gates[key].update(vg_min=lo, vg_max=hi)
            elif word == "graph":
                if len(args) < 2:
                    raise self.fail("'*@ graph' takes KEY VALUE", card)
                G.graph[args[0]] = _graph_value(card.text.split(None, 2)[2].strip())
            else:
                raise self.fail(f"unknown directive '*@ {card.tokens[0]}' (known: input, output, "
                                "trainable, trainable-gate, bounds, graph)", card)
        for key, gate in gates.items():
            if not gate["vg_min"] <= gate["vg"] <= gate["vg_max"]:
                raise NetlistError(f"gate source {gate['source']}: its value {gate['vg']} V is outside its "
                                   f"bounds [{gate['vg_min']}, {gate['vg_max']}] V", self.path)
        if gates:
            G.graph["gate_edges"] = tuple(gates.values())
        for node, (volts, _) in clamps.items():
            G.nodes[node]["role"] = "input" if node in inputs else "bias"
            G.nodes[node]["voltage"] = float(volts)
        for node in outputs:
            G.nodes[node]["role"] = "output"
        if inputs:
            G.graph["input_order"] = " ".join(inputs)
        if outputs:
            G.graph["output_order"] = " ".join(outputs)


def _graph_value(text: str) -> str | float:
    """A graph attribute from a ``*@ graph`` directive: a float when it reads as one."""
    try:
        return float(text)
    except ValueError:
        return text


def saturation_current(i_s: float, n: float, eg: float, xti: float, temp: float,
                       tnom: float) -> tuple[float, float]:
    """SPICE's diode temperature scaling: ``(IS(T), k T/q)`` for ``IS`` given at ``tnom``.

    ``IS(T) = IS exp((T/Tnom - 1) EG / (N k T/q) + XTI/N ln(T/Tnom))``, temperatures in
    kelvin, ``EG`` in eV; ``k/q`` is SPICE's own (CODATA 2014) value.
    """
    vt = K_OVER_Q * temp
    ratio = temp / tnom
    return i_s * math.exp((ratio - 1.0) * eg / (n * vt) + xti / n * math.log(ratio)), vt


def read_spice(path: str | Path, ngspice: bool = False) -> nx.MultiGraph:
    """Read a SPICE-subset netlist (see the module docstring) into a resistive graph.

    Returns an ``nx.MultiGraph`` keyed by element name with the attributes of the resistive
    schema; validation of the whole network is left to :func:`analog_ep.graph.load_network`.
    Raises NetlistError naming the file and line of the first bad card; an element or card
    only ngspice runs (:data:`NGSPICE_ELEMENTS`, :data:`NGSPICE_CARDS`, a diode model
    beyond IS, N, EG, XTI, TNOM, a resistor valued by an expression) is named as needing
    ``--substrate ngspice``. With ``ngspice=True`` those are kept for ngspice instead: the
    graph holds the parsed part (nodes with roles, resistors, plain diodes, sources) and,
    when something was ngspice's alone, the graph attributes ``spice_only`` (what, and on
    which line) and ``spice_deck`` (the file's lines as ngspice runs them), which
    :class:`~analog_ep.substrates.ngspice.NgspiceNetwork` loads unchanged.

    Gate-trained MOSFET edges (``*@ trainable-gate M1 VG1``, ngspice only): ``M1`` an NMOS
    of a level-1 model with ``LAMBDA = GAMMA = RD = RS = 0`` (``VTO``, ``KP``, ``LD``; ``W``,
    ``L``, ``M`` on the card, ngspice's default 100 um each), ``VG1`` a V source from its gate
    (+) to one of its channel nodes (-), the reference node ``b``; the other channel node is
    ``a``. The graph attribute ``gate_edges`` holds one dict per edge (``name``, ``source``,
    ``a``, ``b``, ``k = KP W M / (L - 2 LD)`` in A/V^2, ``vto`` and ``vg`` in V, the bounds
    ``vg_min``, ``vg_max`` in V); both channel nodes stay in the graph.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise NetlistError(f"cannot read netlist: {exc}", str(path)) from None
    return _Reader(_split_deck(text, str(path)), str(path), ngspice=ngspice).build()


# ----- writing ---------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return repr(float(x))


def _spice_names(H: nx.MultiGraph) -> tuple[dict[str, str], dict[str, str]]:
    """SPICE spellings of the nodes (ground -> ``0``) and elements (R/D prefix added)."""
    nodes, seen = {}, {}
    for node, data in H.nodes(data=True):
        if data["role"] == "ground":
            nodes[node] = "0"
            continue
        if not _NAME.fullmatch(node) or node.lower() in ("0", "gnd"):
            raise NetlistError(f"node {node!r} cannot be written to SPICE: names are letters, "
                               "digits and _.:#<>- (and 0/gnd are ground)")
        if node.lower() in seen:
            raise NetlistError(f"nodes {seen[node.lower()]!r} and {node!r} differ only in case, "
                               "which SPICE does not distinguish")
        seen[node.lower()] = nodes[node] = node
    elements, seen = {}, {}
    for *_, data in H.edges(data=True):
        name = data["name"]
        letter = "R" if data["element"] == "resistor" else "D"
        spice = name if name[:1].upper() == letter else letter + name
        if not _NAME.fullmatch(spice):
            raise NetlistError(f"element {name!r} cannot be written to SPICE: names are letters, "
                               "digits and _.:#<>-")
        if spice.lower() in seen:
            raise NetlistError(f"elements {seen[spice.lower()]!r} and {name!r} have the same "
                               "SPICE name")
        seen[spice.lower()] = elements[name] = spice
    return nodes, elements


def _directive(word: str, items: list[str], per_line: int = 16) -> list[str]:
    return [f"*@ {word} " + " ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]


def spice_lines(G: nx.Graph, analysis: bool = True) -> list[str]:
    """The netlist of a resistive graph as lines of text (see :func:`write_spice`).

    With ``analysis=False`` the ``.op`` and ``.end`` cards are left out, so a caller can
    append its own options and control block.
    """
    try:
        if family(G) != "resistive":
            raise NetlistError(f"only resistive networks can be written to SPICE, not {family(G)}")
        H = normalise_resistive(G)
    except NetworkError as exc:
        raise NetlistError(str(exc)) from None
    nodes, elements = _spice_names(H)
    roles = {n: d["role"] for n, d in H.nodes(data=True)}
    lines = [(str(H.graph.get("name", "")).strip().splitlines() or ["analog-ep network"])[0]]
    order = H.graph.get("input_order")
    inputs = order.split() if order else sorted(n for n, r in roles.items() if r == "input")
    order = H.graph.get("output_order")
    outputs = order.split() if order else sorted(n for n, r in roles.items() if r == "output")
    lines += _directive("input", [nodes[n] for n in inputs])
    lines += _directive("output", [nodes[n] for n in outputs])
    resistors = [d for *_, d in H.edges(data=True) if d["element"] == "resistor"]
    diodes = [d for *_, d in H.edges(data=True) if d["element"] == "diode"]
    train = [elements[d["name"]] for d in resistors if d["trainable"]]
    if train and len(train) == len(resistors):
        lines.append("*@ trainable all")
    else:
        lines += _directive("trainable", train)
    pairs = Counter((d["g_min"], d["g_max"]) for d in resistors)
    common = pairs.most_common(1)[0][0] if pairs else None
    default = (RESISTOR_DEFAULTS["g_min"], RESISTOR_DEFAULTS["g_max"])
    if common is not None and common != default:
        lines.append(f"*@ bounds * {_fmt(common[0])} {_fmt(common[1])}")
    else:
        common = default
    lines += [f"*@ bounds {elements[d['name']]} {_fmt(d['g_min'])} {_fmt(d['g_max'])}"
              for d in resistors if (d["g_min"], d["g_max"]) != common]
    for key, value in H.graph.items():
        if key in _OWN_GRAPH_KEYS or not isinstance(value, (str, int, float)):
            continue
        text = str(float(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else str(value)
        if _NAME.fullmatch(key) and text.strip() and "\n" not in text:
            lines.append(f"*@ graph {key} {text}")
    for node in inputs + sorted(n for n, r in roles.items() if r == "bias"):
        lines.append(f"V{nodes[node]} {nodes[node]} 0 DC {_fmt(H.nodes[node].get('voltage', 0.0))}")
    for node, data in H.nodes(data=True):
        if data.get("current", 0.0) and roles[node] != "ground":
            lines.append(f"I{nodes[node]} 0 {nodes[node]} DC {_fmt(data['current'])}")
        cap = data.get("capacitance")
        if cap is not None and roles[node] != "ground" and math.isfinite(cap):
            lines.append(f"C{nodes[node]} {nodes[node]} 0 {_fmt(cap)}")
    for a, b, d in H.edges(data=True):
        if d["element"] == "resistor":
            if not d["conductance"] > 0:
                raise NetlistError(f"resistor {d['name']}: conductance must be positive")
            lines.append(f"{elements[d['name']]} {nodes[a]} {nodes[b]} {_fmt(1.0 / d['conductance'])}")
    models: dict[tuple, str] = {}
    for d in diodes:
        T = d["vt"] / K_OVER_Q
        nominal = abs(d["vt"] / VT_NOMINAL - 1.0) <= 1e-12
        key = (d["i_s"], d["n"], None if nominal else T)
        model = models.setdefault(key, f"dmod{len(models) + 1}")
        temp = "" if nominal else f" temp={_fmt(T - CELSIUS)}"
        lines.append(f"{elements[d['name']]} {nodes[d['anode']]} {nodes[d['cathode']]} {model}{temp}")
    for (i_s, n, T), model in models.items():
        tnom = "" if T is None else f" TNOM={_fmt(T - CELSIUS)}"
        lines.append(f".model {model} D(IS={_fmt(i_s)} N={_fmt(n)}{tnom})")
    if analysis:
        lines += [".op", ".end"]
    return lines


def file_deck(path: str | Path) -> tuple[list[str], list[str]]:
    """A SPICE file's lines as ngspice runs them without analysis (title, every card, those
    only ngspice runs included, relative ``.include`` paths made absolute, ``.op``,
    ``.control`` blocks and ``.end`` removed) and its node names as the file spells them
    first."""
    reader = _Reader(_split_deck(Path(path).read_text(), str(path)), str(path), ngspice=True)
    reader.build()
    deck = [reader.deck.title] + [ln for ln in reader.deck.spice if ln.strip().lower().split()[:1] != [".op"]]
    return deck, list(reader.node_spelling.values())


def write_spice(G: nx.Graph, path: str | Path) -> None:
    """Write a resistive graph as a SPICE netlist that ngspice runs unchanged (``.op``).

    Inputs and bias nodes become V sources to ground (``V<node>``), node currents I sources
    (``I<node>``), node capacitances C elements to ground (``C<node>``), resistors ``R``
    cards in ohms, diodes ``D`` cards with one ``.model`` per distinct ``(IS, N)``; a diode
    whose thermal voltage differs from SPICE's nominal gets ``temp=`` and its model
    ``TNOM=`` at the temperature ``vt q/k``, so ``IS`` is used unscaled. Roles, trainable
    flags and bounds ride in ``*@`` directives. Ground nodes are written as ``0``; element
    names lacking their SPICE letter get it prefixed.
    """
    text = "\n".join(spice_lines(G)) + "\n"
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise NetlistError(f"cannot write netlist: {exc}", str(path)) from None
