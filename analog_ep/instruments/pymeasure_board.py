"""PyMeasure driver of a board in VISA mode (extra ``pymeasure``).

:class:`AnalogEPBoard` is a PyMeasure ``Instrument`` on any PyMeasure adapter (a VISA
resource name such as ``ASRL/dev/ttyACM0::INSTR`` opens a ``VISAAdapter``). At start it
puts the board in VISA mode and declares it from its profile
(:func:`~analog_ep.instruments.declaration.describe_board`). Every declared quantity is
a child :class:`BoardQuantity`, reachable by name (``board.g_R1``, ``board.v_in``,
``board.i_out``) and by kind and channel (``board.elements[0]``, ``board.inputs[0]``,
``board.nudges[0]``); its ``value`` is in its unit (S, V, A), validated against the range
the profile gives (``strict_range``) before any byte is sent, and every set is followed by
``SYST:ERR?`` so a refused command raises. ``board.voltages`` reads every measured node
(V) from one CRC-checked ``MEAS?`` block.
"""

from __future__ import annotations

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_range

from .declaration import Quantity, describe_board, raise_queued_error, read_block


class BoardQuantity(Channel):
    """One declared quantity; ``value`` in ``unit``. Elements read their code back from
    the board; inputs and nudge currents, which the board cannot report, read the value
    last applied (after rounding to a code), None before any set."""

    def __init__(self, parent, id, quantity: Quantity):
        super().__init__(parent, id)
        self.quantity = quantity
        self._applied: float | None = None

    @property
    def unit(self) -> str:
        return self.quantity.unit

    @property
    def value(self) -> float | None:
        q, d = self.quantity, self.parent.declaration
        if q.query is None:
            return self._applied
        return d.value(q, int(self.ask(f"{q.query} {q.channel}")))

    @value.setter
    def value(self, value: float) -> None:
        q, d = self.quantity, self.parent.declaration
        value = strict_range(value, (q.low, q.high))
        command = d.set_command(q, value)
        self.write(command)
        raise_queued_error(self.ask, command)
        self._applied = d.value(q, d.code(q, value))


class AnalogEPBoard(Instrument):
    """A board speaking ``drivers/PROTOCOL.md``, driven in VISA mode. ``profile``: a
    BoardProfile, file or bundled name (a template binds to the board's channel labels);
    ``average``: conversions summed per reading (default: the profile's)."""

    def __init__(self, adapter, name: str = "analog-ep board", profile="emulator",
                 average: int | None = None, **kwargs):
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 3000)
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.declaration = describe_board(self.write, self.ask, profile)
        self.average = self.declaration.profile.average if average is None else average
        self.declaration.measure_command(self.average)          # refuses a bad average now
        for q in self.declaration.quantities.values():
            self.add_child(BoardQuantity, q.channel, collection=q.kind + "s", attr_name=q.name, quantity=q)

    @property
    def voltages(self) -> dict[str, float]:
        """Every measured node's voltage (V) by node label, from one ``MEAS?`` block."""
        d = self.declaration
        command = d.measure_command(self.average)
        self.write(command)
        body = read_block(self.read_bytes, command)
        return dict(zip(d.profile.measured.names, d.volts(body, self.average).tolist()))

    def reset(self) -> None:
        """``*RST``: every code 0 (VISA mode stays on); applied values forgotten."""
        self.write("*RST")
        raise_queued_error(self.ask, "*RST")
        for collection in ("inputs", "nudges"):
            for child in getattr(self, collection, {}).values():
                child._applied = None
