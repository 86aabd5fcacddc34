"""Long steps (a compile, a build of the cpu backend's runner or of precompiled headers), logged at INFO on the
``metalgpu`` logger when they start and when they end, with their duration.

A program sees them by configuring logging (``logging.basicConfig(level=logging.INFO)``); the command line shows
the steps that are running on a terminal (metalgpu.cli.progress). Each record of a step carries
``record.metalgpu_step``: ``(step id, "start" | "end")``.
"""
from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("metalgpu")
_ids = itertools.count(1)


@contextmanager
def long_step(description: str) -> Iterator[None]:
    """Log ``description`` at INFO as a step that starts now, and again when it ends (or fails)."""
    if not logger.isEnabledFor(logging.INFO):  # nobody listens: the common case costs one call
        yield
        return
    step = next(_ids)
    started = time.perf_counter()
    logger.info("%s ...", description, extra={"metalgpu_step": (step, "start")})
    outcome = "failed after"
    try:
        yield
        outcome = "done in"
    finally:
        logger.info("%s: %s %.2f s", description, outcome, time.perf_counter() - started,
                    extra={"metalgpu_step": (step, "end")})
