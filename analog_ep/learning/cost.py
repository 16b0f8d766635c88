"""Deprecated alias of :mod:`analog_ep.models.cost`, kept so that old imports keep working;
import from :mod:`analog_ep.models.cost` instead."""

import warnings

from ..models.cost import SquaredCost

__all__ = ['SquaredCost']

warnings.warn("analog_ep.learning.cost is deprecated: import from analog_ep.models.cost",
              DeprecationWarning, stacklevel=2)
