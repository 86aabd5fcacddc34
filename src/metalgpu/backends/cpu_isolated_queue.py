"""The ordered queue of Interface(isolate=True): asynchronous dispatches and batches run one after another on a
Python thread that talks to the sandboxed worker. The in-process cpu backend's native queue (cpu_queue.cpp) cannot
serve it: its kernels run in this process, while the isolated backend's run in the worker, one message each."""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Callable

from ..errors import DispatchError

__all__ = ["OrderedQueue"]


class OrderedQueue:
    """One daemon thread running submitted functions in order: unlike a ThreadPoolExecutor's, it does not keep the
    interpreter from exiting when a kernel never ends (cpu.py's _abandon_at_exit). It keeps the futures not yet seen
    done, so that a wait for everything raises the first fault among them."""

    def __init__(self):
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._in_flight: deque[Future] = deque()
        self._in_flight_lock = threading.Lock()  # submit and the waits may come from different threads
        self._thread = threading.Thread(target=self._serve, name="metalgpu-isolated-queue", daemon=True)
        self._thread.start()

    def submit(self, function: Callable[[], float]) -> Future:
        future: Future = Future()
        with self._in_flight_lock:
            while self._in_flight and self._in_flight[0].done():  # what has run is no longer waited for
                self._in_flight.popleft()
            self._in_flight.append(future)
        self._items.put((function, future))
        return future

    def _pending(self) -> list[Future]:
        with self._in_flight_lock:
            return list(self._in_flight)

    @property
    def idle(self) -> bool:
        return all(future.done() for future in self._pending())

    def wait_all(self, raise_fault: bool = True) -> None:
        """Waits for every submission not seen done; raises the first fault among them when ``raise_fault``."""
        futures = self._pending()
        for future in futures:
            future.exception()
        with self._in_flight_lock:
            while self._in_flight and self._in_flight[0].done():
                self._in_flight.popleft()
        if raise_fault:
            for future in futures:
                if future.exception() is not None:
                    raise future.exception()

    def wait_until(self, deadline: float) -> bool:
        """Waits for every submission until ``deadline``; False if one still runs."""
        try:
            for future in self._pending():
                future.exception(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return False
        return True

    def cancel_waiting(self) -> None:
        """The submissions not yet started never run: their waiters get DispatchError."""
        while True:
            try:
                item = self._items.get_nowait()
            except queue.Empty:
                return
            if item is None:  # shut down meanwhile: keep it so
                self._items.put(None)
                return
            _, future = item
            if future.set_running_or_notify_cancel():
                future.set_exception(DispatchError("the dispatch was cancelled by Ctrl-C before it ran"))

    def shutdown(self) -> None:
        self._items.put(None)

    def fail_after_fork(self) -> None:
        """In a forked child, where the parent's thread does not run: what was pending ends as not run here."""
        for future in self._in_flight:  # the lock may have been held by a parent's thread: not taken
            if not future.done():
                future.set_exception(DispatchError("the dispatch was running in the parent process when it forked; "
                                                   "this child process does not have its results"))
        self._in_flight.clear()

    def _serve(self) -> None:
        while (item := self._items.get()) is not None:
            function, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as error:  # noqa: BLE001  (the waiter gets it)
                future.set_exception(error)
