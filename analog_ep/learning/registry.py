"""Every gradient rule of the classical and thermal families, by name, and
:func:`make_rule`, which builds one (docs/ARCHITECTURE.md, "Gradient rules")."""

from __future__ import annotations

from ..errors import ConfigError
from .rules import CLASSICAL_RULES
from .thermal_rules import THERMAL_RULES

#: Rule name -> rule class.
RULES: dict[str, type] = {**CLASSICAL_RULES, **THERMAL_RULES}


def make_rule(name: str, **options):
    """Build the rule ``name`` from :data:`RULES`; options (``beta``, ``symmetric``,
    ``samples``, ``temperature``, ``order``, ...) set to None are left at their defaults."""
    if name not in RULES:
        raise ConfigError(f"unknown rule {name!r}; known rules: {', '.join(sorted(RULES))}")
    return RULES[name](**{k: v for k, v in options.items() if v is not None})
