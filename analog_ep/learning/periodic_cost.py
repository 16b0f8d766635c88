"""Deprecated alias of :mod:`analog_ep.models.periodic_cost`, kept so that old imports keep
working; import from :mod:`analog_ep.models.periodic_cost`
instead."""

import warnings

from ..models.periodic_cost import PeriodicCost, class_targets, decode_nearest, require_periodic

__all__ = ['PeriodicCost', 'class_targets', 'decode_nearest', 'require_periodic']

warnings.warn("analog_ep.learning.periodic_cost is deprecated: import from analog_ep.models.periodic_cost",
              DeprecationWarning, stacklevel=2)
