"""QCoDeS driver of a board in VISA mode (extra ``qcodes``).

:class:`AnalogEPBoard` is a QCoDeS ``VisaInstrument`` (pyvisa-py by default,
``visalib="@py"``) on a serial resource such as ``ASRL/dev/ttyACM0::INSTR``. At start it
puts the board in VISA mode and declares it from its profile
(:func:`~analog_ep.instruments.declaration.describe_board`): one parameter per declared
quantity (``g_R1`` in S, ``v_in`` in V, ``i_out`` in A), with ``vals.Numbers`` over the
range the profile gives and ``SYST:ERR?`` checked after every set; one read-only
parameter per measured node (``read_out``, V), each get one CRC-checked ``MEAS?``; and
``average``, the conversions summed per reading. Inputs and nudge currents, which the
board cannot report, read back the value last set (QCoDeS's cache).
"""

from __future__ import annotations

from qcodes import validators as vals
from qcodes.instrument import VisaInstrument

from .declaration import Quantity, describe_board, raise_queued_error, read_block


class AnalogEPBoard(VisaInstrument):
    """A board speaking ``drivers/PROTOCOL.md``, driven in VISA mode. ``profile``: a
    BoardProfile, file or bundled name (a template binds to the board's channel labels)."""

    def __init__(self, name: str, address: str, profile="emulator", **kwargs):
        kwargs.setdefault("terminator", "\n")
        kwargs.setdefault("visalib", "@py")
        kwargs.setdefault("timeout", 3)
        kwargs.setdefault("device_clear", False)
        super().__init__(name, address, **kwargs)
        self.declaration = d = describe_board(self.write, self.ask, profile)
        self.add_parameter("average", label="conversions per reading", initial_value=d.profile.average,
                           vals=vals.Ints(1, d.maxavg), get_cmd=None, set_cmd=None)
        for q in d.quantities.values():
            self.add_parameter(q.name, label=f"{q.kind} {q.label}", unit=q.unit, vals=vals.Numbers(q.low, q.high),
                               set_cmd=lambda value, q=q: self._set(q, value),
                               get_cmd=(lambda q=q: d.value(q, int(self.ask(f"{q.query} {q.channel}"))))
                               if q.query else None)
        for k, (name_, node) in enumerate(zip(d.readings, d.profile.measured.names)):
            self.add_parameter(name_, label=f"voltage of node {node}", unit="V",
                               get_cmd=lambda k=k: float(self._voltages()[k]), set_cmd=False)

    def _set(self, q: Quantity, value: float) -> None:
        command = self.declaration.set_command(q, value)
        self.write(command)
        raise_queued_error(self.ask, command)

    def _voltages(self):
        d = self.declaration
        average = self.average()
        command = d.measure_command(average)
        self.visa_handle.write(command)
        return d.volts(read_block(self.visa_handle.read_bytes, command), average)
