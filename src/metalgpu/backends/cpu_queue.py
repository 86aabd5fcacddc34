"""The cpu backend's asynchronous queue, the Python side of cpu_queue.cpp: an asynchronous dispatch, or a batch, is
one native call that appends it to the Interface's queue; a native thread runs it on the thread pool and writes its
outcome into a status record (msl/abi.py's CPU_QUEUE_STATUS_FIELDS) that its ``QueuedRun`` reads. No Python thread
takes part, and the dispatches of a batch run one after the other without coming back to Python."""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Sequence

from ..dispatch import Dispatch, LaunchPlan, name_batch_dispatch
from ..errors import DispatchError
from ..msl.abi import CPU_QUEUE_ENTRY_FIELDS, CPU_QUEUE_STATUS_FIELDS, STATUS_CANCELLED

if TYPE_CHECKING:
    from .cpu import CpuBackend

ENTRY_FIELDS = len(CPU_QUEUE_ENTRY_FIELDS)
TIMEOUT_FIELD = CPU_QUEUE_ENTRY_FIELDS.index("timeout_ms")
STATE, STATUS, FAILED_INDEX, ADDRESS, NANOSECONDS, REPORT = (
    CPU_QUEUE_STATUS_FIELDS.index(name) for name in ("state", "status", "failed_index", "address", "nanoseconds",
                                                      "report0"))
StatusRecord = ctypes.c_uint64 * len(CPU_QUEUE_STATUS_FIELDS)
WAIT_SLICE_MS = 50  # a wait returns to Python this often, where Ctrl-C raises KeyboardInterrupt


def bind(native: ctypes.CDLL) -> None:
    """Declares the queue's functions of the loaded native runner (once per process)."""
    pointer, u64p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64)
    for name, argtypes, restype in (("mg_queue_create", [], pointer),
                                    ("mg_queue_submit", [pointer, u64p, ctypes.c_uint64, u64p], ctypes.c_int),
                                    ("mg_queue_wait", [pointer, u64p, ctypes.c_uint32], ctypes.c_int),
                                    ("mg_queue_is_done", [u64p], ctypes.c_int),
                                    ("mg_queue_cancel", [pointer], ctypes.c_int),
                                    ("mg_queue_close", [pointer], None),
                                    ("mg_run_entries", [u64p, ctypes.c_uint64, u64p, ctypes.POINTER(ctypes.c_uint32)],
                                     None),
                                    ("mg_queue_layout", [ctypes.POINTER(ctypes.c_int64)], None)):
        function = native[name]
        function.argtypes, function.restype = argtypes, restype
        setattr(native, name, function)


def entry_record(run: int, slots: int, record: int, groups: int, threads: int, chunks: int) -> ctypes.Array:
    """One dispatch as the queue runs it (CPU_QUEUE_ENTRY_FIELDS), its timeout 0 (none)."""
    return (ctypes.c_uint64 * ENTRY_FIELDS)(run, slots, record, groups, threads, chunks, 0)


def join_entries(entries: Sequence[ctypes.Array]) -> ctypes.Array:
    """The entries of a batch, one after the other in one array."""
    joined = (ctypes.c_uint64 * (ENTRY_FIELDS * len(entries)))()
    for index, entry in enumerate(entries):
        ctypes.memmove(ctypes.byref(joined, index * ctypes.sizeof(entry)), entry, ctypes.sizeof(entry))
    return joined


class NativeQueue:
    """One Interface's queue (cpu_queue.cpp's Queue): submissions run in order on its native thread."""

    def __init__(self, native: ctypes.CDLL):
        self._native = native
        self._handle = native.mg_queue_create()

    def submit(self, entries: ctypes.Array, count: int, status: ctypes.Array) -> bool:
        """False where no thread could be started: the caller then runs the entries itself."""
        return self._handle is not None and self._native.mg_queue_submit(self._handle, entries, count, status) == 0

    def wait(self, status: ctypes.Array) -> None:
        """Until ``status`` is done, returning to Python between slices so that Ctrl-C is seen."""
        wait, handle = self._native.mg_queue_wait, self._handle
        while not wait(handle, status, WAIT_SLICE_MS):
            pass

    def cancel(self) -> int:
        return self._native.mg_queue_cancel(self._handle) if self._handle is not None else 0

    def close(self) -> None:
        """Its thread ends once what was submitted has run; nothing may be submitted or waited for afterwards."""
        handle, self._handle = self._handle, None
        if handle is not None:
            self._native.mg_queue_close(handle)

    def forget(self) -> None:
        """In a forked child: the parent's thread does not exist here, and its lock may be held forever."""
        self._handle = None


class QueuedRun(Dispatch):
    """One submission to the queue (an asynchronous dispatch, or a batch), read from its status record. It holds the
    plans it runs, so their memory stays allocated until it is done."""

    def __init__(self, backend: "CpuBackend", plans: Sequence[LaunchPlan], timeouts: Sequence[float | None],
                 batch: bool):
        super().__init__(plans[0].kernel_name if not batch else f"batch of {len(plans)} dispatches")
        self.status = StatusRecord()
        self._backend = backend
        self._plans = plans
        self._timeouts = timeouts
        self._batch = batch
        self._error: BaseException | None = None
        self._checked = False  # the status was read: it is final

    @property
    def done(self) -> bool:
        return self._checked or bool(self._backend.native.mg_queue_is_done(self.status))

    def wait(self) -> None:
        if not self._checked:
            if not self._backend.native.mg_queue_is_done(self.status):
                self._backend.wait_queued(self)
            self._error = self.outcome()
            self._checked = True
            self._backend.forget_done()
        if self._error is not None:
            raise self._error

    def outcome(self) -> BaseException | None:
        """The error of a finished submission, naming the dispatch of a batch that failed, or None."""
        status = self.status
        code = int(status[STATUS])
        if code == 0:
            return None
        index = int(status[FAILED_INDEX])
        plan = self._plans[index]
        if code == STATUS_CANCELLED:
            error = DispatchError("the dispatch was cancelled by Ctrl-C before it ran")
        elif code == FORKED:
            error = DispatchError("the dispatch was running in the parent process when it forked; this child process "
                                  "does not have its results")
        else:
            report = tuple(int(value) for value in status[REPORT:REPORT + 8])
            error = DispatchError(self._backend.describe_fault(plan, code, int(status[ADDRESS]), report,
                                                               self._timeouts[index]))
        return name_batch_dispatch(error, index, plan.kernel_name) if self._batch else error

    @property
    def gpu_time(self) -> float | None:
        """Seconds it ran (the whole batch, for a batch), once it is done; None before, or if it failed."""
        if not self.done or self.outcome() is not None:
            return None
        return int(self.status[NANOSECONDS]) / 1e9

    def fail_after_fork(self) -> None:
        """In a forked child, where the parent's queue does not run: it ends as not run here."""
        if not self.done:
            self.status[STATUS] = FORKED
            self.status[FAILED_INDEX] = 0
            self.status[STATE] = 1


FORKED = 1007  # a status only Python writes (fail_after_fork)
