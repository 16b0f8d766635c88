"""Deprecated alias of :mod:`analog_ep.tasks.oscillator`, kept so that old imports keep
working; import from :mod:`analog_ep.tasks.oscillator` instead."""

import warnings

from .networks import FIELD_INIT, INPUT_SCALE, J_INIT, layered_oscillator_network
from .tasks.oscillator import (DEFAULT_BETA, DEFAULT_SAMPLES, INPUT_OFFSET, NUDGED_RESTARTS,
    RULES, TARGET_PHASE, THERMAL, OscillatorObjective, decode_outputs, encode_inputs,
    encode_targets, make_objective)

__all__ = ['DEFAULT_BETA', 'DEFAULT_SAMPLES', 'FIELD_INIT', 'INPUT_OFFSET', 'INPUT_SCALE',
           'J_INIT', 'NUDGED_RESTARTS', 'OscillatorObjective', 'RULES', 'TARGET_PHASE',
           'THERMAL', 'decode_outputs', 'encode_inputs', 'encode_targets',
           'layered_oscillator_network', 'make_objective']

warnings.warn("analog_ep.oscillator_family is deprecated: import from analog_ep.tasks.oscillator",
              DeprecationWarning, stacklevel=2)
