"""What a family hands the trainer: a :class:`Task` (an objective with its data encoding),
and the adapter shared by the families whose objectives take their own option names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import networkx as nx
import numpy as np

from ..errors import ConfigError
from ..learning.objective import Objective
from ..schema import family


@dataclass(frozen=True, eq=False)
class Task:
    """An objective with its data encoding: ``encode_inputs(x (N, F)) -> (N, n_inputs)``,
    ``encode_targets(y (N,)) -> (N, n_targets)``, ``decode(readout) -> (N,)`` labels."""

    objective: Objective
    encode_inputs: Callable[[np.ndarray], np.ndarray]
    encode_targets: Callable[[np.ndarray], np.ndarray]
    decode: Callable[[np.ndarray], np.ndarray]


def mapped_options(graph: nx.Graph, options: dict[str, Any], allowed: dict[str, str]) -> dict[str, Any]:
    """The trainer's ``options`` renamed to a family's own (``allowed``: trainer name ->
    family name); an option that is set but does not apply raises ConfigError naming it.
    ``substrate = "emulator"`` is the default of every family and always passes."""
    given = {k: v for k, v in options.items() if v is not None}
    extra = sorted(k for k in given if k not in allowed and not (k == "substrate" and given[k] == "emulator"))
    if extra:
        raise ConfigError(f"option(s) {', '.join(extra)} do not apply to {family(graph)} networks")
    return {allowed[k]: v for k, v in given.items() if k in allowed}


def objective_task(objective, n_features: int, n_classes: int, encode_inputs, encode_targets,
                   decode_outputs) -> Task:
    """A task around a ready ``objective`` of a family whose encoders take the number of
    classes and outputs; the input and output counts are checked against the data."""
    n_in = len(getattr(objective, "input_names", ()) or ()) or None
    if n_in is not None and n_in != n_features:
        raise ConfigError(f"the network has {n_in} inputs; the data set has {n_features} features")
    n_out = len(getattr(objective, "output_names", ()) or ()) or None
    # an objective may carry its network's own input encoding (e.g. a phase scale)
    return Task(objective, getattr(objective, "encode_inputs", encode_inputs),
                lambda y: encode_targets(y, n_classes, n_out), decode_outputs)
