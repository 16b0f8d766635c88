"""Host side of the wire to lab boards (``drivers/PROTOCOL.md``): the protocol codec
shared with the firmware, the client, board profiles, and the links and fault injection a
served board uses. ``SerialBoard`` (the Substrate) is in :mod:`analog_ep.substrates.serial`;
the board emulator, which serves an emulated substrate, is :mod:`analog_ep.board_emulator`."""

from .client import BoardClient, ScriptedPort
from .errors import (BoardCommandError, BoardDisconnectedError, BoardError, BoardProtocolError,
                     BoardTimeoutError, BoardVersionError, CorruptBlockError, ProfileError)
from .profile import BoardProfile, load_profile

__all__ = ["BoardClient", "ScriptedPort", "BoardProfile", "load_profile",
           "BoardError", "BoardTimeoutError", "BoardProtocolError", "CorruptBlockError",
           "BoardCommandError", "BoardDisconnectedError", "BoardVersionError", "ProfileError"]
