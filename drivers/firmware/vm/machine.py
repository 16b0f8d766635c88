"""The ``machine`` module of the firmware inside the MicroPython VM (``bridge.mjs``): the
only stub. ``I2C``, ``SPI`` and ``Pin`` take the constructor arguments of the real
``machine`` module and talk to the simulated chips of ``simchips`` (one board: one
:class:`simchips.Chips`), wired as ``config.py`` says (the MCP4251's chip select is
``config.SPI_PINS["cs"]``). Everything above this module is the firmware's own code."""

import config
import simchips

CHIPS = simchips.Chips()
PINS = {}


class Pin(simchips.FakePin):
    IN = 0
    OUT = 1

    def __init__(self, id, mode=-1, value=None):
        super().__init__()
        self.id = id
        if value is not None:
            self.value(value)
        PINS[id] = self


class I2C(simchips.FakeI2C):
    def __init__(self, id, sda=None, scl=None, freq=400000):
        super().__init__(CHIPS, log=False)


class SPI:
    def __init__(self, id, baudrate=1000000, polarity=0, phase=0, sck=None, mosi=None, miso=None):
        self.id = id

    def write(self, buf):
        simchips.FakeSPI(CHIPS, PINS[config.SPI_PINS["cs"]], log=False).write(buf)
