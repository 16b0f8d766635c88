"""The board's end of the MicroPython VM bridge (``bridge.mjs``): the firmware's own
set-up (``main.setup``, on the stub ``machine`` module) and a ``boardcore.Session`` fed
with the bytes the bridge reads from its standard input. Replies go back hex-encoded (the
VM hands str, not bytes, to JavaScript). ``memory()`` reports the GC heap."""

import binascii
import gc

import boardcore
import main

session = boardcore.Session(main.setup())
peak_alloc = 0


def feed(data):
    """Bytes from the host (any buffer) -> the replies they complete, as hex text."""
    global peak_alloc
    out = b"".join(session.feed(bytes(data)))
    used = gc.mem_alloc()
    if used > peak_alloc:
        peak_alloc = used
    return binascii.hexlify(out).decode()


def memory():
    """GC heap after a collection, as JSON: free and allocated bytes, and the most allocated
    seen right after a feed (garbage included) since the previous report."""
    global peak_alloc
    peak, peak_alloc = peak_alloc, 0
    gc.collect()
    return "{\"mem_free\": %d, \"mem_alloc\": %d, \"peak_alloc\": %d}" % (
        gc.mem_free(), gc.mem_alloc(), peak)
