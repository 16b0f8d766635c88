"""Faults injected into the replies of a served board (``--fault KIND[:RATE],...``; RATE
is the probability per reply, default 0.1):

- ``drop``: a random span of the reply (possibly all of it) is not sent;
- ``corrupt``: one random bit of a block reply (header, payload, CRC or LF) is flipped;
- ``delay``: the reply is held back by ``delay_s`` seconds (the replies behind it wait);
- ``disconnect``: instead of replying, the link closes, waits ``reconnect_s`` and
  re-points its stable name to a new port (the board keeps its state).
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ConfigError
from .links import PtyLink, TcpLink


FAULT_KINDS = ("drop", "corrupt", "delay", "disconnect")
DEFAULT_FAULT_RATE = 0.1


def parse_faults(spec: str | None) -> dict[str, float]:
    """``"drop:0.1,corrupt"`` -> ``{"drop": 0.1, "corrupt": 0.1}``; bad kinds or rates
    raise ConfigError."""
    faults: dict[str, float] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        kind, sep, rate = item.partition(":")
        if kind not in FAULT_KINDS:
            raise ConfigError(f"--fault {item}: kind must be one of {', '.join(FAULT_KINDS)}")
        try:
            p = float(rate) if sep else DEFAULT_FAULT_RATE
        except ValueError:
            raise ConfigError(f"--fault {item}: rate {rate!r} is not a number") from None
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"--fault {item}: rate must be a probability in [0, 1]")
        faults[kind] = p
    return faults


class FaultyWriter:
    """Writes replies to a link, injecting the configured faults (see module docstring).
    ``counts`` records how many of each fault were injected."""

    def __init__(self, link: PtyLink | TcpLink, faults: dict[str, float], rng: np.random.Generator,
                 delay_s: float = 0.3, reconnect_s: float = 0.1):
        self.link, self.faults, self.rng = link, faults, rng
        self.delay_s, self.reconnect_s = delay_s, reconnect_s
        self.counts = {k: 0 for k in FAULT_KINDS}
        self.replies = 0

    def _roll(self, kind: str) -> bool:
        p = self.faults.get(kind, 0.0)
        hit = p > 0 and self.rng.random() < p
        self.counts[kind] += hit
        return hit

    def __call__(self, reply: bytes) -> None:
        self.replies += 1
        if self._roll("disconnect"):
            self.link.disconnect(self.reconnect_s)
            return
        if self._roll("delay"):
            time.sleep(self.delay_s)
        data = bytearray(reply)
        block_at = data.find(b"#")
        if block_at >= 0 and self._roll("corrupt"):
            i = int(self.rng.integers(block_at, len(data)))
            data[i] ^= 1 << int(self.rng.integers(8))
        if self._roll("drop"):
            start = int(self.rng.integers(len(data)))
            stop = int(self.rng.integers(start + 1, len(data) + 1))
            del data[start:stop]
        if data:
            self.link.write(bytes(data))
