"""Batches: dispatches recorded together and submitted as one, the command buffer of this library.

    with gpu.batch():                 # records; nothing runs yet
        gpu.run_function(n, [a, b])   # checked now (errors name the dispatch), run later
        gpu.run_function(n, [b, a])
    # here the batch has run (batch(wait=False): submitted, not waited for)

A backend runs a batch as one submission (``Backend.submit_batch``): a CUDA graph, replayed from its cache when the
same kernels are recorded again and updated in place when only their arguments changed; one native call on the cpu,
whose dispatches run back to back on the thread pool; one command buffer with one encoder on Metal. The rules of
what may happen while a batch records are in docs/api.md ("Batches")."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Sequence

from .buffer import Buffer
from .dispatch import BatchEntry, Dispatch, RecordedBatch, name_batch_dispatch
from .errors import BufferReleasedError, MetalError

if TYPE_CHECKING:
    from .interface import Interface
    from .library import Function


class Batch:
    """Dispatches recorded in a ``with`` block and run as one submission when it ends (``Interface.batch``).

    Afterwards the batch is the handle of what it submitted: ``wait()``, ``done``, ``gpu_time`` (of the whole batch),
    and ``replay()`` runs the same dispatches again, with the same buffers and argument values, without recording
    them anew."""

    def __init__(self, interface: "Interface", wait: bool = True):
        if not isinstance(wait, bool):
            raise MetalError(f"batch(wait=...) takes a bool, not {type(wait).__name__}")
        self._interface = interface
        self._wait = wait
        self._recorded = RecordedBatch()
        self._buffers: dict[int, Buffer] = {}  # every Buffer given, held as a command buffer holds its resources
        self._uses: dict[int, tuple[list, bool]] = {}  # id(pending box) -> (the box, whether a dispatch writes it)
        self._thread: int | None = None  # the thread that records
        self._state = "new"  # then "recording", and "recorded" or "discarded"
        self._submission: Dispatch | None = None

    # -- recording -------------------------------------------------------------------------------------------
    def __enter__(self) -> "Batch":
        if self._state != "new":
            raise MetalError("a batch is recorded once; replay() runs it again, gpu.batch() records a new one")
        self._interface._start_batch(self)
        self._thread = threading.get_ident()
        self._state = "recording"
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._interface._end_batch(self)
        if kind is not None:  # nothing of a batch left by an exception runs
            self._state = "discarded"
            self._recorded, self._uses, self._buffers = RecordedBatch(), {}, {}
            return
        self._state = "recorded"
        self._submit(self._wait)

    def records(self) -> bool:
        """Whether a dispatch made now, on this thread, belongs to this batch (another thread's runs at once)."""
        return self._thread == threading.get_ident()

    def record(self, function: "Function", grid: Any, buffers: Sequence[Any], wait: bool, threads_per_threadgroup: Any,
               threadgroup_memory: dict[int, int] | None, timeout: float | None) -> Dispatch | None:
        """Checks and packs one dispatch (Interface._dispatch, inside the with block) and appends it; returns its
        handle when ``wait`` is False. Errors name the dispatch: its index in the batch and its kernel."""
        interface = self._interface
        index = len(self._recorded.entries)
        try:
            key, plan = interface._plans.find(function, grid, threads_per_threadgroup, threadgroup_memory, buffers)
            if plan is None:
                plan = interface._new_plan(key, function, buffers, grid, threads_per_threadgroup, threadgroup_memory)
        except Exception as error:
            name_batch_dispatch(error, index, function.name)
            raise
        self._recorded.entries.append(BatchEntry(index, function.module, function.index, plan, timeout))
        written, uses = _written_slots(function), self._uses
        for slot, value in enumerate(buffers):
            if isinstance(value, Buffer):
                self._buffers[id(value)] = value
                box = value._pending_box
                use = uses.get(id(box))
                if use is None or not use[1]:
                    uses[id(box)] = (box, slot in written)
        return None if wait else _Member(self, index, function.name)

    def check_host_access(self, buffer: Buffer, writes: bool, what: str) -> None:
        """Raises MetalError for a host access that the rules of a recording batch forbid (docs/api.md): any
        access to a buffer it writes, and a write to one it reads."""
        use = self._uses.get(id(buffer._pending_box))
        if use is None or not (use[1] or writes):
            return
        uses = "writes" if use[1] else "reads"
        raise MetalError(f"{what} of a buffer that the batch being recorded {uses}: the batch runs when its with block "
                         "ends, so the host would see the buffer as it was before the batch (or change what the "
                         "batch reads). Use the buffer after the with block")

    # -- running ---------------------------------------------------------------------------------------------
    def replay(self, wait: bool = True) -> "Batch":
        """Runs the recorded dispatches again, with the same buffers and argument values; returns the batch."""
        if self._state != "recorded":
            raise MetalError(f"only a recorded batch can be replayed; this one is {self._state}")
        self._submit(wait)
        return self

    def _submit(self, wait: bool) -> None:
        interface = self._interface
        interface._check_open()
        for buffer in self._buffers.values():
            if buffer.released:
                raise BufferReleasedError("a buffer this batch uses was released since it was recorded; record the "
                                          "batch again with live buffers")
        if not self._recorded.entries:
            self._submission = None
            return
        submission = interface._backend.submit_batch(self._recorded, wait)
        self._submission = submission
        if not wait:  # host access to what the batch uses waits for it, as for an asynchronous dispatch
            for box, _ in self._uses.values():
                box[0] = submission

    # -- the handle of the last submission ------------------------------------------------------------------
    def wait(self) -> None:
        """Waits for the last submission; raises the DispatchError of the dispatch that failed, naming it."""
        if self._state == "recording":
            raise MetalError("a batch cannot be waited for while it records: it runs when its with block ends")
        if self._submission is not None:
            self._submission.wait()

    @property
    def done(self) -> bool:
        return self._state != "recording" and (self._submission is None or self._submission.done)

    @property
    def gpu_time(self) -> float | None:
        """Seconds the last submission ran, all its dispatches together, once it is done (see Dispatch.gpu_time)."""
        return None if self._submission is None else self._submission.gpu_time

    @property
    def kernel_names(self) -> list[str]:
        return [entry.plan.kernel_name for entry in self._recorded.entries]

    def __len__(self) -> int:
        return len(self._recorded.entries)

    def __repr__(self) -> str:
        return f"<metalgpu.Batch of {len(self)} dispatches, {self._state}>"


class _Member(Dispatch):
    """What run_function(..., wait_for_completion=False) returns inside a batch: its batch's handle, usable once
    the batch was submitted."""

    def __init__(self, batch: Batch, index: int, kernel_name: str):
        super().__init__(kernel_name)
        self._batch, self.batch_index = batch, index

    @property
    def done(self) -> bool:
        return self._batch.done

    def wait(self) -> None:
        if self._batch._state == "recording":
            raise MetalError(f"dispatch {self.batch_index} (kernel '{self.kernel_name}') belongs to a batch that is "
                             "still recording: it runs when the with block ends")
        self._batch.wait()

    @property
    def gpu_time(self) -> float | None:
        return None  # a batch is timed as a whole: Batch.gpu_time


def _written_slots(function: "Function") -> frozenset[int]:
    """The [[buffer(i)]] slots through which a kernel may write (its non-const pointers), found once per function."""
    slots = getattr(function, "_written_slots", None)
    if slots is None:
        slots = frozenset(binding.index for binding in function.bindings
                          if binding.kind == "buffer" and not binding.is_const)
        function._written_slots = slots
    return slots
