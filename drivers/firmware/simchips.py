"""The reference board's chips simulated at the bus level, for tests and bench work
without hardware. Plain MicroPython-compatible code: it runs under CPython (``sim.py``) and
inside the MicroPython VM behind the stub ``machine`` module of ``vm/``.

Fake I2C/SPI buses decode exactly the bytes ``chips.py`` sends (MCP4728 multi-write,
MCP4251 wiper writes, ADS1115 config/conversion registers) and an analog model of the
wired network (the bundled ``divider``: R1 from ``in`` to ``out``, R2 from ``out`` to
ground, each an MCP4251 rheostat of 10 kOhm plus 75 Ohm wiper in series with 1 kOhm)
turns DAC and wiper codes into the ADC reading.
"""


R_AB, R_WIPER, R_SERIES = 10000.0, 75.0, 1000.0


class Chips:
    """Register state of the simulated chips and the divider they are wired to."""

    def __init__(self):
        self.dac = [0] * 4          # MCP4728 codes
        self.wiper = [0] * 2        # MCP4251 codes
        self.config = 0             # ADS1115 config register
        self.log = []               # (bus, bytes) of every transfer
        self._state = [-1, -1, -1, -1]   # (mux, dac 0, wipers) of the cached conversion
        self._code = 0

    def resistance(self, ch):
        return R_AB * self.wiper[ch] / 256 + R_WIPER + R_SERIES

    def node_volts(self, ain):
        v_in = 2.048 * self.dac[0] / 4096
        g1, g2 = 1 / self.resistance(0), 1 / self.resistance(1)
        return {0: v_in * g1 / (g1 + g2)}.get(ain, 0.0)

    def conversion(self):
        """The ADS1115 conversion register (signed), recomputed only when the multiplexer,
        the DAC or a wiper changed (floats allocate in MicroPython; a repeated reading of
        an unchanged network allocates nothing)."""
        st = self._state
        mux = (self.config >> 12) & 7
        if st[0] != mux or st[1] != self.dac[0] or st[2] != self.wiper[0] or st[3] != self.wiper[1]:
            st[0], st[1], st[2], st[3] = mux, self.dac[0], self.wiper[0], self.wiper[1]
            code = round(self.node_volts(mux - 4) / 2.048 * 32768)
            self._code = max(-32768, min(32767, code))
        return self._code


class FakeI2C:
    """The I2C bus of the MCP4728 (0x60) and the ADS1115 (0x48); ``log``: keep a record of
    every transfer in ``chips.log`` (off for long runs, where it would only grow)."""

    def __init__(self, chips, log=True):
        self.chips = chips
        self.keep_log = log

    def writeto(self, address, buf):
        buf = bytes(buf)
        if self.keep_log:
            self.chips.log.append(("i2c", address, buf))
        if address != 0x60 or len(buf) != 3 or buf[0] & 0xF8 != 0x40 or not buf[1] & 0x80:
            raise OSError(5, "MCP4728: unexpected transfer %r" % buf)
        self.chips.dac[(buf[0] >> 1) & 3] = ((buf[1] & 0x0F) << 8) | buf[2]

    def writeto_mem(self, address, register, buf):
        if self.keep_log:
            self.chips.log.append(("i2c", address, bytes([register]) + bytes(buf)))
        if address != 0x48 or register != 1 or len(buf) != 2:
            raise OSError(5, "ADS1115: unexpected write")
        self.chips.config = (buf[0] << 8) | buf[1]

    def readfrom_mem_into(self, address, register, buf):
        if address != 0x48 or len(buf) != 2 or register not in (0, 1):
            raise OSError(5, "ADS1115: unexpected read")
        if register == 1:
            value = self.chips.config | 0x8000          # conversion done
        else:
            value = self.chips.conversion() & 0xFFFF    # two's complement
        buf[0] = value >> 8
        buf[1] = value & 0xFF


class FakePin:
    def __init__(self):
        self.level = 1

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0


class FakeSPI:
    """The SPI bus of the MCP4251, whose chip select is the pin ``cs``."""

    def __init__(self, chips, cs, log=True):
        self.chips, self.cs = chips, cs
        self.keep_log = log

    def write(self, buf):
        buf = bytes(buf)
        if self.keep_log:
            self.chips.log.append(("spi", self.cs.level, buf))
        if self.cs.level != 0 or len(buf) != 2 or buf[0] & 0xEC or (buf[0] >> 4) > 1:
            raise OSError(5, "MCP4251: unexpected transfer %r" % buf)
        self.chips.wiper[buf[0] >> 4] = min(256, ((buf[0] & 3) << 8) | buf[1])
