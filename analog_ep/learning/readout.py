"""Deprecated alias of :mod:`analog_ep.models.readout`, kept so that old imports keep working;
import from :mod:`analog_ep.models.readout` instead."""

import warnings

from ..models.readout import SoftmaxCrossEntropyCost

__all__ = ['SoftmaxCrossEntropyCost']

warnings.warn("analog_ep.learning.readout is deprecated: import from analog_ep.models.readout",
              DeprecationWarning, stacklevel=2)
