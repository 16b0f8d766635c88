"""The substrate interface: what a trainer or a calibration talks to.

A substrate is a physical network, emulated in process or a board behind a serial port.
It holds parameters, clamps inputs, optionally nudges outputs, and measures node voltages
at equilibrium or as noisy samples. Costs and ``dE/dW`` are computed by the host from the
readings, so a board only has to measure node voltages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class Capabilities:
    """What a substrate can do.

    ``measured`` names the nodes whose voltages readings contain, in order; ``nudge`` says
    whether output currents can be applied; ``batch`` whether several inputs are clamped at
    once; ``temperature`` the noise temperature (model energy units, watts for resistive
    networks) when the substrate knows it, else None; ``quantised`` whether parameters are
    rounded to hardware levels; ``clamp_outputs`` whether the outputs can be held at fixed
    voltages (the optional ``clamp_outputs(volts)`` method, which coupled learning needs).
    """

    measured: tuple[str, ...]
    nudge: bool = True
    batch: bool = True
    temperature: float | None = None
    quantised: bool = False
    clamp_outputs: bool = False


@runtime_checkable
class Substrate(Protocol):
    """A physical network the host can drive. Voltages in volts, currents in amperes."""

    capabilities: Capabilities

    def set_parameters(self, theta: np.ndarray) -> np.ndarray:
        """Set the trainable conductances (S); return the values actually applied."""

    def clamp(self, inputs: np.ndarray) -> None:
        """Clamp the inputs, shape (B, n_inputs) volts (B = 1 where batch is unsupported)."""

    def nudge(self, beta: float, targets: np.ndarray | None = None) -> None:
        """Nudge towards ``targets`` (B, n_outputs) with strength ``beta`` (S): adds
        ``beta * C`` to the energy, a current ``beta (d_o - V_o)`` into each output.
        ``beta = 0`` releases the outputs."""

    def nudge_currents(self, currents: np.ndarray) -> None:
        """Inject fixed currents (A) into the outputs, shape (n_outputs,) or (B, n_outputs)."""

    def equilibrium(self) -> np.ndarray:
        """Equilibrium (T = 0) or mean readings, shape (B, n_measured) volts."""

    def sample(self, n: int) -> np.ndarray:
        """``n`` readings of every measured node, shape (B, n, n_measured) volts."""

    # Optional, where ``capabilities.clamp_outputs``:
    # clamp_outputs(volts) holds outputs at fixed voltages, (B or 1, n_outputs) V in the
    # model's output order, NaN for an output left free; None releases them all.


def measured_channels(model, measured: tuple[str, ...] | None) -> tuple[tuple[str, ...], np.ndarray]:
    """The names of the nodes a substrate reads (default: every node of ``model``) and their
    indices among ``model.node_names``; an unknown name is refused."""
    names = tuple(measured or model.node_names)
    index = {n: i for i, n in enumerate(model.node_names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ConfigError(f"cannot measure unknown nodes {unknown}")
    return names, np.array([index[n] for n in names], dtype=np.intp)
