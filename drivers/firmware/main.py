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


def make_core(hal, board="pico"):
    """The protocol handler of ``board`` ("pico" or "pico-x9c") on a hardware layer."""
    if board == "pico-x9c":
        x = config.X9C
        return boardcore.BoardCore(hal, x["identity"], x["caps"], x["labels"], settle_us=x["settle_us"])
    return boardcore.BoardCore(hal, config.IDENTITY, config.CAPS, config.LABELS,
                               settle_us=config.SETTLE_US)


def make_hal(i2c, spi, cs, sleep_us, ticks_us, ticks_diff):
    """The board's hardware layer on its buses and clock."""
    caps = config.CAPS
    return hal_pico.PicoHAL(chips.MCP4251(spi, cs), chips.MCP4728(i2c), chips.ADS1115(i2c),
                            (caps["elements"], caps["dacs"], caps["adcs"], caps["nudges"]),
                            (config.NUDGE_DAC, config.NUDGE_REFERENCE_DAC, config.NUDGE_ZERO),
                            sleep_us, ticks_us, ticks_diff)


def make_x9c_hal(inc, ud, cs_pins, pwm, adc, sleep_us, ticks_us, ticks_diff):
    """The pico-x9c variant's hardware layer on its pins (one CS per X9C103), PWM output
    and ADC input."""
    caps = config.X9C["caps"]
    pots = chips.X9CBank([chips.X9C103(inc, ud, cs, sleep_us) for cs in cs_pins])
    return hal_pico.X9CHAL(pots, chips.PWMDAC([pwm], caps["dac_bits"]), chips.PicoADC([adc]),
                           (caps["elements"], caps["dacs"], caps["adcs"], 0), sleep_us, ticks_us, ticks_diff)


def setup_x9c():
    """The pico-x9c variant as wired (``config.X9C``); returns the core."""
    import time
    from machine import ADC, PWM, Pin

    p = config.X9C["pins"]
    pwm = PWM(Pin(p["pwm"]))
    pwm.freq(p["pwm_freq"])
    hal = make_x9c_hal(Pin(p["inc"], Pin.OUT, value=1), Pin(p["ud"], Pin.OUT, value=0),
                       [Pin(n, Pin.OUT, value=1) for n in p["cs"]], pwm, ADC(Pin(p["adc"])),
                       time.sleep_us, time.ticks_us, time.ticks_diff)
    return make_core(hal, "pico-x9c")


def setup():
    """The board as wired (``config``): keyboard interrupt off (0x03 is data, not Ctrl-C),
    buses from ``machine``, chips, hardware layer and protocol handler; returns the core."""
    import micropython
    import time
    from machine import I2C, SPI, Pin

    micropython.kbd_intr(-1)
    if config.BOARD == "pico-x9c":
        return setup_x9c()
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
