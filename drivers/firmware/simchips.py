"""The reference board's chips simulated at the bus level, for tests and bench work
without hardware. Plain MicroPython-compatible code: it runs under CPython (``sim.py``) and
inside the MicroPython VM behind the stub ``machine`` module of ``vm/``.

Fake I2C/SPI buses decode exactly the bytes ``chips.py`` sends (MCP4728 multi-write,
MCP4251 wiper writes, ADS1115 config/conversion registers) and an analog model of the
wired network (WIRING.md: the bundled ``divider``, R1 from ``in`` to ``out``, R2 from
``out`` to ground, each an MCP4251 rheostat of 10 kOhm plus 75 Ohm wiper in series with
1 kOhm; the Howland nudge current source on ``out``; the noise current injected at
``out``) turns DAC and wiper codes into the ADC reading.

The noise: a white current noise of two-sided density ``D = 2 T C`` (A^2 s) into ``out``
makes its voltage fluctuate with variance ``T / G`` (V^2), ``G = g1 + g2`` the node's
conductance to the clamped nodes (WIRING.md). The board's conversions are 1.16 ms apart,
several node time constants ``C / G``, so every conversion gets an independent Gaussian
draw of that variance. ``temperature`` (W) is the board's noise temperature: a property
of the noise hardware, set here, measured by the host (``analog-ep calibrate``).
"""

import math

R_AB, R_WIPER, R_SERIES = 10000.0, 75.0, 1000.0
#: Howland pump of the nudge source: I = (V_B - V_D) / R_HOWLAND (MCP4728 channels B, D).
R_HOWLAND = 100000.0
DAC_LSB = 2.048 / 4096


class Noise:
    """Standard normal draws from a seeded xorshift32 generator (Box-Muller): integer state,
    the same sequence under CPython and MicroPython."""

    def __init__(self, seed):
        self.state = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1
        self.spare = None

    def uniform(self):
        """A uniform draw in (0, 1)."""
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return (x + 0.5) / 4294967296.0

    def normal(self):
        if self.spare is not None:
            z, self.spare = self.spare, None
            return z
        r = math.sqrt(-2.0 * math.log(self.uniform()))
        phi = 2.0 * math.pi * self.uniform()
        self.spare = r * math.sin(phi)
        return r * math.cos(phi)


class Chips:
    """Register state of the simulated chips and the network they are wired to.
    ``temperature``: the injected noise temperature (W, 0: no noise); ``seed``: of its
    generator."""

    def __init__(self, temperature=0.0, seed=0):
        self.dac = [0] * 4          # MCP4728 codes
        self.wiper = [0] * 2        # MCP4251 codes
        self.config = 0             # ADS1115 config register
        self.log = []               # (bus, bytes) of every transfer
        self.temperature = temperature
        self.noise = Noise(seed)
        self._state = [-1, -1, -1, -1, -1, -1]   # (mux, dacs A B D, wipers) of the cached mean
        self._mean = 0.0
        self._code = 0

    def resistance(self, ch):
        return R_AB * self.wiper[ch] / 256 + R_WIPER + R_SERIES

    def nudge_current(self):
        """The Howland pump's current into ``out`` (A), from DAC channels B and D."""
        return (self.dac[1] - self.dac[3]) * DAC_LSB / R_HOWLAND

    def node_volts(self, ain):
        """The mean (noise-free) voltage at ADS1115 input ``ain``: Kirchhoff at ``out``."""
        v_in = self.dac[0] * DAC_LSB
        g1, g2 = 1 / self.resistance(0), 1 / self.resistance(1)
        return {0: (v_in * g1 + self.nudge_current()) / (g1 + g2)}.get(ain, 0.0)

    def conversion(self):
        """The ADS1115 conversion register (signed). Without noise the mean is recomputed
        only when the multiplexer, a DAC or a wiper changed (floats allocate in
        MicroPython; a repeated reading of an unchanged network allocates nothing)."""
        st, d, w = self._state, self.dac, self.wiper
        mux = (self.config >> 12) & 7
        if st[0] != mux or st[1] != d[0] or st[2] != d[1] or st[3] != d[3] or st[4] != w[0] or st[5] != w[1]:
            st[0], st[1], st[2], st[3], st[4], st[5] = mux, d[0], d[1], d[3], w[0], w[1]
            self._mean = self.node_volts(mux - 4)
            self._code = self.code(self._mean)
        if self.temperature and mux == 4:
            g = 1 / self.resistance(0) + 1 / self.resistance(1)
            return self.code(self._mean + math.sqrt(self.temperature / g) * self.noise.normal())
        return self._code

    @staticmethod
    def code(volts):
        return max(-32768, min(32767, round(volts / 2.048 * 32768)))


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


# -- the pico-x9c variant: X9C103 up/down potentiometers, PWM DAC, the RP2040's ADC --------

X9C_R_FULL, X9C_R_WIPER, X9C_TAPS = 10000.0, 40.0, 100
V_REF_PICO = 3.3


class WatchedPin(FakePin):
    """A pin that tells its ``listeners`` (callables of (old, new)) about every change."""

    def __init__(self):
        super().__init__()
        self.listeners = []

    def value(self, v=None):
        if v is None:
            return self.level
        old = self.level
        self.level = 1 if v else 0
        if old != self.level:
            for listen in self.listeners:
                listen(old, self.level)


class X9CChip:
    """One simulated X9C103, driven only by its pins: with CS low, a falling INC edge moves
    the tap one step (up if U/D is high), clamped to 0..99; CS rising with INC high stores
    the tap (``stores`` counts the writes to non-volatile memory, ``nvm`` holds it). The
    tap starts at ``nvm``, as after power-up: nothing but pulses ever changes it.
    ``pulses``: INC falling edges seen while selected."""

    def __init__(self, inc, ud, cs, nvm=0):
        self.inc, self.ud, self.cs = inc, ud, cs
        self.nvm = self.tap = nvm
        self.pulses = self.stores = 0
        inc.listeners.append(self._inc)
        cs.listeners.append(self._cs)

    def _inc(self, old, new):
        if new == 0 and self.cs.level == 0:
            self.pulses += 1
            self.tap = max(0, min(X9C_TAPS - 1, self.tap + (1 if self.ud.level else -1)))

    def _cs(self, old, new):
        if new == 1 and self.inc.level == 1:
            self.nvm = self.tap
            self.stores += 1

    def resistance(self):
        """Wiper to low terminal (rheostat) plus the 1 kOhm in series."""
        return X9C_R_FULL * self.tap / (X9C_TAPS - 1) + X9C_R_WIPER + R_SERIES


class FakePWM:
    def __init__(self):
        self.duty = 0

    def duty_u16(self, d=None):
        if d is None:
            return self.duty
        if not 0 <= d <= 65535:
            raise ValueError("duty_u16 out of range")
        self.duty = d


class X9CNetwork:
    """The pico-x9c board simulated: two X9C103 (R1 from ``in`` to ``out``, R2 from
    ``out`` to ground) on a shared INC and U/D and their own CS pins, ``in`` driven by a
    filtered PWM output (settled: ``V = 3.3 V * duty / 65535``), ``out`` read by the
    RP2040's ADC (12 bits over 0..3.3 V, scaled to 16 bits as ``read_u16`` does).
    ``stored``: the taps the chips wake at (non-volatile memory)."""

    def __init__(self, stored=(37, 62)):
        self.inc, self.ud = WatchedPin(), WatchedPin()
        self.cs = [WatchedPin() for _ in stored]
        self.pots = [X9CChip(self.inc, self.ud, cs, n) for cs, n in zip(self.cs, stored)]
        self.pwm = FakePWM()
        self.adc = FakeADC(self)

    def node_volts(self):
        v_in = V_REF_PICO * self.pwm.duty / 65535
        g1, g2 = 1 / self.pots[0].resistance(), 1 / self.pots[1].resistance()
        return v_in * g1 / (g1 + g2)


class FakeADC:
    def __init__(self, network):
        self.network = network

    def read_u16(self):
        code = max(0, min(4095, round(self.network.node_volts() / V_REF_PICO * 4095)))
        return (code << 4) | (code >> 8)
