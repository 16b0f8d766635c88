"""Errors of the host side of the wire (subclasses of the substrate-level errors in
:mod:`analog_ep.errors`, which the training loop handles without knowing of boards). Each names the command it happened in and, where
it helps, what arrived instead of the expected reply."""

from __future__ import annotations

from ..errors import ConfigError, SubstrateDisconnectedError, SubstrateError


def excerpt(data: bytes, n: int = 16) -> str:
    """A short, printable account of bytes that arrived: the first ``n`` as hex and the
    total length (``3f0a... (120 bytes)``); raw binary never reaches a message."""
    data = bytes(data)
    return f"{data[:n].hex(' ')}{' ...' if len(data) > n else ''} ({len(data)} bytes)"


class BoardError(SubstrateError):
    """Something went wrong talking to a board; ``command`` is the command line at fault."""

    def __init__(self, message: str, command: str | None = None):
        super().__init__(f"{command}: {message}" if command else message)
        self.command = command


class BoardTimeoutError(BoardError, TimeoutError):
    """No complete reply arrived in time; ``received`` holds the bytes that did arrive."""

    def __init__(self, message: str, command: str | None = None, received: bytes = b""):
        if received:
            message += f" (received {excerpt(received)})"
        super().__init__(message, command)
        self.received = received


class BoardProtocolError(BoardError):
    """The reply broke the protocol (garbled, unexpected, wrong kind)."""


class CorruptBlockError(BoardProtocolError):
    """A block's CRC or framing was wrong; its data was discarded."""


class BoardCommandError(BoardError):
    """The board refused the command: ``code`` and ``board_message`` from its ``ERR`` reply."""

    def __init__(self, code: int, board_message: str, command: str | None = None):
        super().__init__(f"board error {code}: {board_message}", command)
        self.code, self.board_message = code, board_message


class BoardDisconnectedError(BoardError, SubstrateDisconnectedError):
    """The port went away (or could not be reopened); call ``reconnect()``."""


class BoardVersionError(BoardError):
    """The board speaks no protocol version this driver speaks."""


class ProfileError(ConfigError):
    """A board profile is invalid or does not fit the board or the network."""
