"""Drivers of the chips the reference board uses, on injected MicroPython buses.

Only ``machine.I2C``/``machine.SPI``/``machine.Pin``/``machine.PWM``/``machine.ADC``
methods are called (``writeto``, ``writeto_mem``, ``readfrom_mem_into``, ``write``,
``value``, ``duty_u16``, ``read_u16``), so the same code runs on the
RP2040 and, under CPython or in the MicroPython VM, against the simulated chips of
``simchips.py``. Integer arithmetic only.
"""

import struct


class MCP4728:
    """Quad 12-bit I2C DAC. Internal 2.048 V reference, gain 1: V = 2.048 V * code / 4096
    (0 .. 2.0475 V, 0.5 mV per code), updated at once (UDAC = 0)."""

    ADDRESS = 0x60
    CHANNELS = 4
    BITS = 12

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address

    def write(self, channel, code):
        # Multi-write command: 0 1 0 0 0 DAC1 DAC0 UDAC | VREF PD1 PD0 GAIN D11..D8 | D7..D0
        self.i2c.writeto(self.address, bytes([0x40 | (channel << 1), 0x80 | (code >> 8), code & 0xFF]))


class MCP4251:
    """Dual 257-position SPI digital potentiometer, used as two rheostats (wiper W to
    terminal B): R_WB = R_AB * code / 256 + R_W, code 0..256."""

    CHANNELS = 2
    STEPS = 257

    def __init__(self, spi, cs):
        self.spi = spi
        self.cs = cs
        cs.value(1)

    def write(self, channel, code):
        # 16-bit command: address (4 bits: wiper 0 = 0, wiper 1 = 1), command 00 = write,
        # then the 10-bit data D9..D0.
        self.cs.value(0)
        self.spi.write(bytes([(channel << 4) | ((code >> 8) & 0x03), code & 0xFF]))
        self.cs.value(1)


class ADS1115:
    """4-channel 16-bit I2C ADC, single-ended, PGA +-2.048 V, 860 samples/s single shot.
    Returns 15-bit codes 0..32767 (0 .. 2.048 V, 62.5 uV per code); negative readings
    (a node below ground by noise) are clipped to 0.

    A conversion allocates nothing (config words formatted once, one buffer for every
    register read), so the garbage collector never runs inside an acquisition."""

    ADDRESS = 0x48
    CHANNELS = 4
    BITS = 15

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        # Config per channel: OS=1 (start), MUX=100+ch (AINch vs GND), PGA=010 (+-2.048 V),
        # MODE=1 (single shot), DR=111 (860 SPS), comparator off (11).
        self.configs = [struct.pack(">H", 0x8000 | ((4 + ch) << 12) | (2 << 9) | 0x0100 | (7 << 5) | 0x0003)
                        for ch in range(self.CHANNELS)]
        self.buf = bytearray(2)

    def read(self, channel):
        i2c, buf = self.i2c, self.buf
        i2c.writeto_mem(self.address, 1, self.configs[channel])
        i2c.readfrom_mem_into(self.address, 1, buf)
        while not buf[0] & 0x80:                 # OS bit: conversion done
            i2c.readfrom_mem_into(self.address, 1, buf)
        i2c.readfrom_mem_into(self.address, 0, buf)
        code = (buf[0] << 8) | buf[1]
        return 0 if code >= 0x8000 else code     # two's complement: negative clips to 0


class X9C103:
    """10 kOhm, 100-tap digital potentiometer with an up/down counter interface (pins
    ``inc``, ``ud``, ``cs``; ``inc`` and ``ud`` may be shared between chips, ``cs`` is
    each chip's own). With CS low, every falling edge of INC moves the wiper one tap, up if
    U/D is high, down if low, and it stops at taps 0 and 99. CS rising while INC is high
    stores the wiper in non-volatile memory, recalled at power-up; this driver never stores
    (it deselects with INC low), so the chip wakes at its stored tap, which the driver does
    not know until it homes.

    There is no absolute write: ``position`` is where the driver knows the wiper is (None
    before homing). :meth:`step` pulses from there; :meth:`write` homes first if needed
    (99 pulses down: the hard end makes the position certain) and then pulses the
    difference. A lost or repeated command is therefore not harmless, which is why the
    host never retries element writes to this chip."""

    TAPS = 100

    def __init__(self, inc, ud, cs, sleep_us):
        self.inc, self.ud, self.cs, self.sleep_us = inc, ud, cs, sleep_us
        self.position = None
        cs.value(1)
        inc.value(1)

    def pulse(self, count):
        """``count`` INC pulses (signed: up if > 0), then deselect without storing."""
        if count == 0:
            return
        self.ud.value(1 if count > 0 else 0)
        self.sleep_us(3)                      # U/D to INC setup, 2.9 us
        self.cs.value(0)
        for k in range(abs(count)):
            if k:
                self.inc.value(1)
                self.sleep_us(1)              # INC high time >= 1 us
            self.inc.value(0)                 # falling edge: one tap
            self.sleep_us(1)
        self.cs.value(1)                      # INC low: no store
        self.inc.value(1)

    def home(self):
        self.pulse(-(self.TAPS - 1))
        self.position = 0

    def step(self, count):
        """Move by ``count`` taps, stopping at the ends; returns the tap reached. Only the
        pulses that move the wiper are sent (beyond an end they would do nothing)."""
        if self.position is None:
            self.home()
        target = max(0, min(self.TAPS - 1, self.position + count))
        self.pulse(target - self.position)
        self.position = target
        return target

    def write(self, code):
        """Go to tap ``code`` by pulsing from the known position."""
        if self.position is None:
            self.home()
        self.step(code - self.position)


class X9CBank:
    """Several X9C103 as element channels 0, 1, ...: ``write(channel, code)`` and
    ``step(channel, count)`` of the chip on that channel."""

    def __init__(self, pots):
        self.pots = pots

    def write(self, channel, code):
        self.pots[channel].write(code)

    def step(self, channel, count):
        return self.pots[channel].step(count)


class PWMDAC:
    """Input DACs from ``machine.PWM`` outputs behind two-pole RC filters: a ``bits``-bit
    code sets the duty to code / (2^bits - 1) of full scale (``duty_u16``, rounded)."""

    def __init__(self, pwms, bits=12):
        self.pwms = pwms
        self.full = (1 << bits) - 1

    def write(self, channel, code):
        self.pwms[channel].duty_u16((code * 65535 + self.full // 2) // self.full)


class PicoADC:
    """The RP2040's own 12-bit ADC inputs (``machine.ADC``): ``read_u16`` scales the
    12-bit conversion to 16 bits, so the code is its top 12 bits."""

    BITS = 12

    def __init__(self, adcs):
        self.adcs = adcs

    def read(self, channel):
        return self.adcs[channel].read_u16() >> 4
