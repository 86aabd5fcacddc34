"""The one timing rule of the benchmarks: warm up, then the median of `repeat` wall-clock samples."""
from __future__ import annotations

import statistics
import time


def median_seconds(call, repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):  # page faults, thread pools, fiber stacks, lazy loading
        call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
