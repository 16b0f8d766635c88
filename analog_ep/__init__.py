"""analog-ep: emulate, train and drive physical networks that compute by relaxing to
equilibrium, with classical, thermal and quantum Equilibrium Propagation.

The public API is re-exported here and imported on first use, so ``import analog_ep``
stays cheap (the command line and board-emulator subprocesses start fast).
"""

from __future__ import annotations

import importlib

from .version import __version__  # noqa: F401  (re-exported)

_EXPORTS = {
    # errors
    "AnalogEPError": "errors", "NetworkError": "errors", "NetlistError": "errors",
    "ConvergenceError": "errors", "ConfigError": "errors",
    # networks and files
    "load_network": "graph", "save_network": "graph", "validate_resistive": "schema",
    "available_networks": "graph", "read_spice": "netlist", "write_spice": "netlist",
    "layered_diode_network": "networks", "default_network": "networks",
    "draw_network": "drawing",
    # models
    "ResistiveModel": "models.resistive", "compile_network": "models.resistive",
    "OscillatorModel": "models.oscillator", "compile_oscillator": "models.oscillator",
    "QubitModel": "models.quantum", "compile_quantum": "models.quantum",
    "HarmonicModel": "models.harmonic", "compile_harmonic": "models.harmonic",
    # physics
    "solve_equilibrium": "physics.equilibrium", "Equilibrium": "physics.equilibrium",
    "factorize_spd": "physics.equilibrium", "solve_torus": "physics.torus",
    "sample_torus": "physics.torus", "sample_gaussian": "physics.sampling",
    "sample_mala": "physics.sampling", "MCMCSettings": "physics.sampling",
    "sample_gibbs": "physics.gibbs", "colour_free_nodes": "physics.gibbs",
    "effective_sample_size": "physics.sampling", "NoiseModel": "physics.noise",
    "stationary_covariance": "physics.noise", "settling_time": "physics.noise",
    # learning
    "SquaredCost": "models.cost", "PeriodicCost": "models.periodic_cost",
    "SubstrateError": "errors", "SubstrateDisconnectedError": "errors",
    "GradientResult": "learning.objective", "Objective": "learning.objective",
    "make_rule": "learning.registry", "RULES": "learning.registry",
    "load_sweep": "sweeps.spec", "run_sweep": "sweeps.engine", "config_from_options": "training",
    "state_from_readings": "learning.rules",
    "TrainConfig": "learning.config", "TrainResult": "learning.config", "train": "training",
    # data
    "Dataset": "datasets", "DATASETS": "datasets", "load_dataset": "datasets",
    # substrates and hardware
    "Capabilities": "substrates.base", "Substrate": "substrates.base",
    "EmulatedBoard": "substrates.emulated", "EmulatedOscillators": "substrates.oscillator",
    "SerialBoard": "substrates.serial", "NgspiceNetwork": "substrates.ngspice", "open_substrate": "substrates.factory",
    "require_nudge": "substrates.factory", "resolve_temperature": "substrates.factory",
    "BoardClient": "hardware", "ScriptedPort": "hardware", "BoardEmulator": "board_emulator",
    "BoardProfile": "hardware", "load_profile": "hardware", "BoardError": "hardware",
    "BoardTimeoutError": "hardware", "BoardDisconnectedError": "hardware",
    "BoardCommandError": "hardware", "CorruptBlockError": "hardware",
    "BoardVersionError": "hardware", "ProfileError": "hardware",
    # devices
    "DeviceSpec": "devices", "DeviceArray": "devices", "load_device": "devices",
    "fabricate": "devices", "device_presets": "devices", "DeviceError": "errors",
    "Programming": "devices",
    # instrument drivers (PyMeasure, QCoDeS: their modules, with the extras)
    "describe_board": "instruments", "BoardDeclaration": "instruments",
    # calibration
    "calibrate": "calibration", "load_calibration": "calibration",
    "calibration_for": "calibration", "CalibrationRecord": "calibration",
    "read_calibration": "calibration",
    "equipartition_temperature": "calibration", "fdt_temperature": "calibration",
    "fit_gain_offset": "calibration", "decompose_noise": "calibration",
    "TemperatureEstimate": "calibration",
    # quantum and oscillator training
    "QuantumObjective": "tasks.quantum", "HarmonicObjective": "tasks.quantum",
    "OscillatorObjective": "tasks.oscillator", "ResistiveObjective": "tasks.resistive",
    "build_task": "tasks", "Task": "tasks",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'analog_ep' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
