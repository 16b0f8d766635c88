"""What this board is: identity, channel labels and capabilities. Must agree with its
profile, ``drivers/boards/pico.toml`` (the host checks every count and label). ``X9C``:
the same for the pico-x9c variant (``drivers/boards/pico-x9c.toml``); ``BOARD`` says
which of the two ``main.setup()`` serves."""

BOARD = "pico"

IDENTITY = ("ANALOG-EP", "PICO-DIVIDER", "0001", "1.0")

LABELS = {"ELEM": ["R1", "R2"], "DAC": ["in"], "ADC": ["out"], "NUDG": ["out"]}

CAPS = {
    "elements": 2, "levels": 257,        # MCP4251 wipers 0 and 1
    "dacs": 1, "dac_bits": 12,           # MCP4728 channel A
    "adcs": 1, "adc_bits": 15,           # ADS1115 AIN0, positive half of +-2.048 V
    "nudges": 1, "nudge_bits": 12,       # MCP4728 channel B into a Howland pump at out
    "maxline": 256, "maxblock": 4096, "maxavg": 256,
    "maxinterval": 1000000, "maxsettle": 1000000,
}

SETTLE_US = 2000

# MCP4728 channels: A drives the input, B the nudge source of each output in turn, D holds
# the Howland pumps' reference at mid-scale: nudge code c is DAC code NUDGE_ZERO + c.
NUDGE_DAC = 1
NUDGE_REFERENCE_DAC = 3
NUDGE_ZERO = 2048

# Pins (Raspberry Pi Pico): I2C0 for the DAC and the ADC, SPI0 for the potentiometers.
I2C_PINS = {"id": 0, "sda": 4, "scl": 5, "freq": 400000}
SPI_PINS = {"id": 0, "sck": 18, "mosi": 19, "miso": 16, "cs": 17, "baudrate": 1000000}

X9C = {
    "identity": ("ANALOG-EP", "PICO-X9C", "0001", "1.0"),
    "labels": {"ELEM": ["R1", "R2"], "DAC": ["in"], "ADC": ["out"], "NUDG": []},
    "caps": {
        "elements": 2, "levels": 100,        # two X9C103, 100 taps
        "dacs": 1, "dac_bits": 12,           # PWM on GP15, 12-bit duty resolution
        "adcs": 1, "adc_bits": 12,           # the RP2040's ADC0 (GP26)
        "nudges": 0, "nudge_bits": 0,
        "maxline": 256, "maxblock": 4096, "maxavg": 256,
        "maxinterval": 1000000, "maxsettle": 1000000,
    },
    "settle_us": 20000,
    # X9C103 INC and U/D shared, one CS per chip; PWM output; ADC input.
    "pins": {"inc": 10, "ud": 11, "cs": (12, 13), "pwm": 15, "pwm_freq": 30000, "adc": 26},
}
