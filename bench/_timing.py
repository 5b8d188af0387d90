"""Timing shared by the benchmarks: the wall time of each of ``n`` calls, after a warm-up."""

from __future__ import annotations

import time
from typing import Any, Callable


def timed(fn: Callable[[], Any], n: int, warmup: int = 1) -> list[float]:
    """Seconds each of ``n`` calls of ``fn`` took, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out
