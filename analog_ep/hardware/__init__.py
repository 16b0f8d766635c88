"""Host side of the wire to lab boards (``drivers/PROTOCOL.md``): the protocol codec
shared with the firmware, the client, board profiles, and the board emulator on a pty.
``SerialBoard`` (the Substrate) is in :mod:`analog_ep.substrates.serial`."""

from .client import BoardClient, ScriptedPort
from .emulator import BoardEmulator
from .errors import (BoardCommandError, BoardDisconnectedError, BoardError, BoardProtocolError,
                     BoardTimeoutError, BoardVersionError, CorruptBlockError, ProfileError)
from .profile import BoardProfile, load_profile

__all__ = ["BoardClient", "ScriptedPort", "BoardEmulator", "BoardProfile", "load_profile",
           "BoardError", "BoardTimeoutError", "BoardProtocolError", "CorruptBlockError",
           "BoardCommandError", "BoardDisconnectedError", "BoardVersionError", "ProfileError"]
