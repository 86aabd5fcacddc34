"""The one timing rule of the benchmarks: warm up, then the median of `repeat` wall-clock samples."""
from __future__ import annotations

import statistics
import time


def median_seconds(call, repeat: int, warmup: int = 1) -> float:
    # warm-up: page faults, thread pools, fiber stacks, lazy loading
    return interleaved_medians({"call": call}, repeat, warmup)["call"]


def interleaved_medians(calls: dict, repeat: int, warmup: int = 1, between=None) -> dict:
    """Median seconds of each call, sampled round-robin so that drift in the machine (another process, clock
    changes) falls on every call alike rather than on whichever ran last. ``between``, untimed, runs before each
    sample: for instance a pass over a large array, so that no call finds the cache as another left it."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            if between is not None:
                between()
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}
