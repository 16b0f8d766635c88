"""Drivers of the chips the reference board uses, on injected MicroPython buses.

Only ``machine.I2C``/``machine.SPI``/``machine.Pin`` methods are called (``writeto``,
``writeto_mem``, ``readfrom_mem_into``, ``write``, ``value``), so the same code runs on the
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
