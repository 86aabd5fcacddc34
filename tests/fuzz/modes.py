"""The fuzz suite's modes.

``METALGPU_FUZZ`` unset (CI): the quick mode, derandomized (the same examples on every run) with few examples, so
the whole fuzz suite takes about a minute. ``METALGPU_FUZZ=long``: many more random examples, for a run by hand
(tests/fuzz/README.md); ``METALGPU_FUZZ_SCALE`` multiplies the long mode's counts.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("METALGPU_FUZZ", "").lower() == "long"
SCALE = float(os.environ.get("METALGPU_FUZZ_SCALE", "1"))

# examples per test: (quick, long)
EXAMPLES = {
    "front_tokens": (400, 20_000),
    "front_bytes": (200, 10_000),
    "compile": (8, 300),
    "arguments": (300, 20_000),
    "constants": (30, 1_000),
    "valid_kernels": (4, 200),
}

_COMMON = {"database": None, "deadline": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
QUICK = settings(derandomize=True, **_COMMON)
RANDOM = settings(derandomize=False, **_COMMON)


def fuzz_settings(name: str) -> settings:
    """The settings of one fuzz test: its mode and number of examples."""
    quick, long = EXAMPLES[name]
    return settings(RANDOM, max_examples=int(long * SCALE)) if LONG else settings(QUICK, max_examples=quick)
