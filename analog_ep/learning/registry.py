"""Every gradient rule of the classical and thermal families, by name, and
:func:`make_rule`, which builds one (docs/ARCHITECTURE.md, "Gradient rules")."""

from __future__ import annotations

import inspect

from ..errors import ConfigError
from .rules import CLASSICAL_RULES
from .thermal_rules import THERMAL_RULES

#: Rule name -> rule class.
RULES: dict[str, type] = {**CLASSICAL_RULES, **THERMAL_RULES}


def rule_options(name: str) -> frozenset[str]:
    """The options the rule ``name`` takes (its constructor's keywords); ConfigError for an
    unknown rule, naming the known ones."""
    if name not in RULES:
        raise ConfigError(f"unknown rule {name!r}; known rules: {', '.join(sorted(RULES))}")
    return frozenset(inspect.signature(RULES[name]).parameters)


def make_rule(name: str, **options):
    """Build the rule ``name`` from :data:`RULES`. Options set to None are left at the rule's
    defaults; an option the rule does not take is refused with a ConfigError naming it, so a
    misspelt or misplaced option never passes silently."""
    allowed = rule_options(name)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ConfigError(f"the {name} rule takes no option {', '.join(unknown)} "
                          f"(its options: {', '.join(sorted(allowed)) or 'none'})")
    return RULES[name](**given)
