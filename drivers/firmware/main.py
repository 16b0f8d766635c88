"""Reference firmware (MicroPython, Raspberry Pi Pico class boards): serves
``drivers/PROTOCOL.md`` on the USB serial port.

Copy to the board: ``main.py``, ``config.py``, ``chips.py``, ``hal_pico.py`` and the two
shared modules ``protocol.py`` and ``boardcore.py`` (symlinks here to
``analog_ep/hardware/``), e.g. ``mpremote cp drivers/firmware/*.py :``.
The keyboard interrupt is disabled (in :func:`setup`) so a 0x03 byte in a binary block
cannot stop the board; to get a REPL back, hold the BOOTSEL button while plugging in and
reflash, or delete ``main.py`` with ``mpremote`` before the board starts.
"""

try:
    from . import boardcore, chips, config, hal_pico
except ImportError:  # on the board the modules sit side by side
    import boardcore
    import chips
    import config
    import hal_pico


def make_core(hal):
    """The protocol handler of this board on a hardware layer."""
    return boardcore.BoardCore(hal, config.IDENTITY, config.CAPS, config.LABELS,
                               settle_us=config.SETTLE_US)


def make_hal(i2c, spi, cs, sleep_us, ticks_us, ticks_diff):
    """The board's hardware layer on its buses and clock."""
    caps = config.CAPS
    return hal_pico.PicoHAL(chips.MCP4251(spi, cs), chips.MCP4728(i2c), chips.ADS1115(i2c),
                            (caps["elements"], caps["dacs"], caps["adcs"], caps["nudges"]),
                            (config.NUDGE_DAC, config.NUDGE_REFERENCE_DAC, config.NUDGE_ZERO),
                            sleep_us, ticks_us, ticks_diff)


def setup():
    """The board as wired (``config``): keyboard interrupt off (0x03 is data, not Ctrl-C),
    buses from ``machine``, chips, hardware layer and protocol handler; returns the core."""
    import micropython
    import time
    from machine import I2C, SPI, Pin

    micropython.kbd_intr(-1)
    p = config.I2C_PINS
    i2c = I2C(p["id"], sda=Pin(p["sda"]), scl=Pin(p["scl"]), freq=p["freq"])
    p = config.SPI_PINS
    spi = SPI(p["id"], baudrate=p["baudrate"], polarity=0, phase=0,
              sck=Pin(p["sck"]), mosi=Pin(p["mosi"]), miso=Pin(p["miso"]))
    cs = Pin(p["cs"], Pin.OUT, value=1)
    return make_core(make_hal(i2c, spi, cs, time.sleep_us, time.ticks_us, time.ticks_diff))


def main():
    """Serve the protocol on the USB serial port, forever."""
    import select
    import sys

    core = setup()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)

    def read():
        return stdin.read(1) if poll.poll(20) else b""

    boardcore.serve(core, read, stdout.write)


if __name__ == "__main__":
    main()
