"""Long steps on a terminal: while a compile or a build runs longer than a moment, one line on stderr says what
runs and for how long, and goes away when it ends. The steps come from the ``metalgpu`` logger (metalgpu.progress);
``--verbose`` prints every INFO record instead, terminal or not."""
from __future__ import annotations

import logging
import sys
import threading
import time

from ..progress import logger

SHOW_AFTER = 0.5   # seconds a step runs before its line appears: quick steps never flicker
TICK = 0.1         # seconds between updates of the line


class TerminalProgress(logging.Handler):
    """Draws the running steps on a terminal's stderr, from the records metalgpu.progress.long_step logs."""

    def __init__(self, stream=None, show_after: float = SHOW_AFTER, tick: float = TICK):
        super().__init__(logging.INFO)
        self.stream = stream if stream is not None else sys.stderr
        self.show_after, self.tick = show_after, tick
        self._running: dict[int, tuple[str, float]] = {}  # step id -> (description, start)
        self._drawn = False
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        step = getattr(record, "metalgpu_step", None)
        if step is None:
            return
        identity, phase = step
        with self.lock:
            if phase == "start":
                description = record.getMessage().removesuffix(" ...")
                self._running[identity] = (description, time.monotonic())
                if self._ticker is None:
                    self._ticker = threading.Thread(target=self._tick, name="metalgpu-progress", daemon=True)
                    self._ticker.start()
            else:
                self._running.pop(identity, None)
                if not self._running:
                    self._clear()

    def _tick(self) -> None:
        while not self._stop.wait(self.tick):
            with self.lock:
                if not self._running:
                    continue
                description, started = min(self._running.values(), key=lambda item: item[1])
                elapsed = time.monotonic() - started
                if elapsed < self.show_after:
                    continue
                others = len(self._running) - 1
                more = f" (and {others} more)" if others else ""
                self._write(f"\r\033[Kmetalgpu: {description}{more} ... {elapsed:.1f} s")
                self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self._write("\r\033[K")
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away
            self._stop.set()

    def close(self) -> None:
        self._stop.set()
        with self.lock:
            self._clear()
        super().close()


def show_progress(verbose: bool) -> logging.Handler | None:
    """Route metalgpu's INFO records for this command: every record as a line with ``verbose``, else the running
    steps drawn on a terminal's stderr, else nothing. Returns the handler to close at the end."""
    if verbose:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("metalgpu: %(message)s"))
    elif sys.stderr.isatty():
        handler = TerminalProgress()
    else:
        return None
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def stop_progress(handler: logging.Handler | None) -> None:
    if handler is not None:
        logger.removeHandler(handler)
        handler.close()
