"""Deprecated alias of :mod:`analog_ep.tasks.quantum`, kept so that old imports keep working;
import from :mod:`analog_ep.tasks.quantum` instead."""

import warnings

from .tasks.quantum import (FIELD_BOUND, J_INIT, K_MAX, MIN_SKIPS_TO_STOP, U_MAX, U_MIN,
    HarmonicObjective, QuantumObjective, decode_outputs, encode_inputs, encode_targets,
    make_objective)

__all__ = ['FIELD_BOUND', 'HarmonicObjective', 'J_INIT', 'K_MAX', 'MIN_SKIPS_TO_STOP',
           'QuantumObjective', 'U_MAX', 'U_MIN', 'decode_outputs', 'encode_inputs',
           'encode_targets', 'make_objective']

warnings.warn("analog_ep.quantum_family is deprecated: import from analog_ep.tasks.quantum",
              DeprecationWarning, stacklevel=2)
