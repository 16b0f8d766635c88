"""Deprecated alias of :mod:`analog_ep.tasks`, kept so that old imports keep working; import
from :mod:`analog_ep.tasks` instead."""

import warnings

from .tasks import FAMILIES, build_task
from .tasks.base import Task
from .tasks.resistive import DEFAULT_GAIN, DEFAULT_TARGET, EVAL_CHUNK, ResistiveObjective

__all__ = ['DEFAULT_GAIN', 'DEFAULT_TARGET', 'EVAL_CHUNK', 'FAMILIES', 'ResistiveObjective',
           'Task', 'build_task']

warnings.warn("analog_ep.families is deprecated: import from analog_ep.tasks (or from analog_ep)",
              DeprecationWarning, stacklevel=2)
