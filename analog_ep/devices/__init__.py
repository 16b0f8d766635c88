"""How a parameter is physically stored and changed: programmable conductances that move
only by signed integer pulse counts (response families, fabrication spread, drift, stuck
devices), the spread of fixed parts, and presets shipped as TOML data files
(``analog_ep/resources/devices``). Formulas: docs/devices.md."""

from .array import DeviceArray, device_seed, fabricate, up_down_train, without_noise
from .fixed import fabricate_fixed
from .program import METHODS, ROUNDINGS, Programming, program
from .response import step_sizes
from .spec import (FAMILIES, DeviceSpec, Drift, Faults, FixedSpread, Spread, device_from_dict,
                   device_presets, load_device)

__all__ = ["DeviceArray", "device_seed", "DeviceSpec", "Drift", "FAMILIES", "Faults", "FixedSpread", "Spread",
           "METHODS", "Programming", "ROUNDINGS", "device_from_dict", "device_presets", "fabricate",
           "fabricate_fixed", "load_device", "program", "step_sizes", "up_down_train", "without_noise"]
