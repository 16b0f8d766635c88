"""The one timer the benchmarks share: the best wall time of repeated calls."""

from __future__ import annotations

import time


def best_of(fn, repeats: int = 3) -> tuple[float, object]:
    """Fewest seconds of ``repeats`` calls of ``fn()`` (the least disturbed by other load),
    and the last call's result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
