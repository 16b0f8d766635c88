"""Training tasks, one module per network family: the data encoding and the objective the
trainer is handed (docs/ARCHITECTURE.md, "Training").

Each family module declares ``FAMILY`` (the graph's ``family`` attribute), ``DEFAULT_RULE``
(the rule a run uses when none is given) and ``build(graph, n_features, n_classes,
options) -> Task``. Adding a family is one module and one line in :data:`FAMILIES`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import networkx as nx

from ..schema import family
from . import oscillator, quantum, resistive
from .base import Task

#: family name -> its task module.
FAMILIES: dict[str, ModuleType] = {m.FAMILY: m for m in (resistive, oscillator, quantum)}


def default_rule(graph: nx.Graph) -> str:
    """The rule a run on ``graph`` uses when none is given (its family's ``DEFAULT_RULE``)."""
    return FAMILIES[family(graph)].DEFAULT_RULE


def build_task(graph: nx.Graph, n_features: int, n_classes: int, options: dict[str, Any]) -> Task:
    """The task for ``graph`` (dispatching on its ``family``) on data of ``n_features``
    features and ``n_classes`` classes; ``options`` as accepted by the family."""
    return FAMILIES[family(graph)].build(graph, n_features, n_classes, options)


__all__ = ["FAMILIES", "Task", "build_task", "default_rule"]
