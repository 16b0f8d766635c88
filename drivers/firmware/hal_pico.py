"""Hardware layers of the reference board (see WIRING.md): elements on an MCP4251, input
DACs and the nudge current sources' control voltages on an MCP4728, measured nodes on an
ADS1115 (:class:`PicoHAL`); and of its pico-x9c variant (:class:`X9CHAL`). Chips and clock are injected, so the
layer runs on the RP2040 and, under CPython or in the MicroPython VM, on the simulated
chips of ``simchips.py``. Implements the HAL interface of ``boardcore`` with integer
arithmetic only."""

import struct


class PicoHAL:
    """``pots``: an MCP4251; ``dac``: an MCP4728; ``adc``: an ADS1115; ``channels``:
    (elements, dacs, adcs, nudges) in use; ``nudge``: (first MCP4728 channel of the nudge
    sources, the channel holding the Howland reference, the DAC code of zero current);
    ``sleep_us``, ``ticks_us``, ``ticks_diff``: the clock (``time`` on MicroPython).

    A nudge code ``c`` (signed) sets its DAC channel to ``zero + c``: the Howland pump
    drives ``(V_c - V_ref) / R`` into its output node (WIRING.md)."""

    def __init__(self, pots, dac, adc, channels, nudge, sleep_us, ticks_us, ticks_diff):
        self.pots, self.dac, self.adc = pots, dac, adc
        self.n_elements, self.n_dacs, self.n_adcs, self.n_nudges = channels
        self.nudge_dac, self.reference_dac, self.nudge_zero = nudge
        self.sleep_us, self.ticks_us, self.ticks_diff = sleep_us, ticks_us, ticks_diff

    def reset(self):
        self.set_elements(0, [0] * self.n_elements)
        self.set_dacs(0, [0] * self.n_dacs)
        if self.n_nudges:
            self.dac.write(self.reference_dac, self.nudge_zero)
            self.set_nudges(0, [0] * self.n_nudges)

    def set_elements(self, start, codes):
        for i in range(len(codes)):
            self.pots.write(start + i, codes[i])

    def set_dacs(self, start, codes):
        for i in range(len(codes)):
            self.dac.write(start + i, codes[i])

    def set_nudges(self, start, codes):
        for i in range(len(codes)):
            self.dac.write(self.nudge_dac + start + i, self.nudge_zero + codes[i])

    def measure(self, average):
        sums = [0] * self.n_adcs
        for _ in range(average):
            for ch in range(self.n_adcs):
                sums[ch] += self.adc.read(ch)
        return struct.pack(">%dI" % self.n_adcs, *sums)

    def acquire(self, count, interval_us):
        n = self.n_adcs
        out = bytearray(2 * count * n)
        t0 = self.ticks_us()
        for k in range(count):
            if interval_us:
                while self.ticks_diff(self.ticks_us(), t0) < k * interval_us:
                    pass
            for ch in range(n):
                struct.pack_into(">H", out, 2 * (k * n + ch), self.adc.read(ch))
        return bytes(out)


class X9CHAL(PicoHAL):
    """The pico-x9c variant: elements on X9C103 up/down potentiometers (``chips.X9CBank``),
    inputs on a PWM DAC, nodes on the RP2040's ADC, no nudge sources. Element codes are
    reached by pulsing from the position the driver knows; :meth:`pulse_elements` sends
    the pulses themselves (``ELEM:PULS``)."""

    def __init__(self, pots, dac, adc, channels, sleep_us, ticks_us, ticks_diff):
        PicoHAL.__init__(self, pots, dac, adc, channels, (0, 0, 0), sleep_us, ticks_us, ticks_diff)

    def pulse_elements(self, start, counts):
        """Pulse element ``start + i`` by ``counts[i]`` taps; returns the taps reached."""
        return [self.pots.step(start + i, counts[i]) for i in range(len(counts))]
