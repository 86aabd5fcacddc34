"""The cpu backend with kernels run in a sandboxed worker process: Interface(backend="cpu", isolate=True).

Everything else is the cpu backend's (cpu.py): the compiler and its limits run here, in this process, and so do
the binding checks and the fault messages. What differs:

- Buffers live in a memory file this process and the worker both map (cpu_shared_memory.py): ``contents`` is still
  a numpy view of the memory the kernels write, and it outlives any worker.
- A compiled module is never loaded here. The worker loads it (cpu_sandbox_worker.py), seals itself
  (cpu_sandbox.cpp: resource limits and a seccomp filter), and only then calls its code: the binding records it
  reports, and the kernels. A sealed worker cannot load modules: loading one starts a new worker with every module
  so far (their descriptors were kept open).
- A dispatch is one message to the worker and one reply (cpu_sandbox.py). A kernel that faults, runs past its
  timeout, hits a limit or makes a forbidden system call, and Ctrl-C, end the worker and raise DispatchError or
  KeyboardInterrupt here; the next dispatch starts a new worker, which maps the same buffers.
- Asynchronous dispatches and batches run in order on a Python thread of their own (cpu_isolated_queue.py), one
  message each, instead of cpu.py's native queue: a batch stops at its first failing dispatch, as on cpu.py's.
"""
from __future__ import annotations

import os
import platform
import struct
import sys
import threading
import time

from ..cache import CompileCache
from ..dispatch import Dispatch, LaunchPlan, RecordedBatch, name_batch_dispatch
from ..errors import ArgumentError, BackendUnavailableError, DispatchError, MetalError
from ..msl.abi import BINDING_DTYPE, STATUS_NO_STACK, BindingInfo, cpu_dispatch_record, read_bindings
from .base import CompileOptions, CompilerFailed, Module
from .cpu import PARALLEL_THRESHOLD, CpuBackend
from .cpu_isolated_queue import OrderedQueue
from .cpu_sandbox import (
    CONSTANTS_AT,
    MAP_ENTRY,
    MAP_HEADER,
    MAX_MESSAGE,
    MESSAGE_MAP,
    MESSAGE_RUN,
    MESSAGE_SELF_TEST,
    MESSAGE_UNMAP,
    RUN,
    SANDBOX_MEMORY,
    SANDBOX_SOURCE,
    SELF_TEST,
    SELF_TESTS,
    SLOTS,
    START_SECONDS,
    STATUS_BAD_MESSAGE,
    STATUS_FORBIDDEN_CALL,
    STATUS_MAP_FAILED,
    TIMEOUT_OFFSET,
    UNBOUND,
    UNMAP_HEADER,
    Worker,
    WorkerEnded,
    cpu_limit_seconds,
    describe_call,
    memory_limit_bytes,
)
from .cpu_shared_memory import SharedAllocation, SharedArena

__all__ = ["IsolatedCpuBackend"]

INLINE_CONSTANT_BYTES = 16 * 1024  # constant arguments up to this much travel in the run message itself
GRACE_SECONDS = 1.0  # after a timeout, how long the worker has to stop the kernel itself before it is ended


class IsolatedModule(Module):
    """A module the worker loaded: its kernels' bindings as the worker read them, and each kernel's number in the
    worker's table of entry points (``entry_points``)."""

    def __init__(self, kernels: tuple[int, ...], first_entry: int, described: list[tuple[int, int, bytes]]):
        self.kernels = tuple(kernels)
        self.entry_points = {kernel: first_entry + i for i, kernel in enumerate(kernels)}
        self._bindings = {kernel: checked_bindings(kernel, count, records)
                          for kernel, (_, count, records) in zip(kernels, described)}
        self._max_threads = {kernel: limit for kernel, (limit, _, _) in zip(kernels, described)}

    def bindings(self, kernel: int) -> list[BindingInfo]:
        return self._bindings[kernel]

    def max_threads(self, kernel: int) -> int | None:
        return self._max_threads[kernel] or None


def checked_bindings(kernel: int, count: int, records: bytes) -> list[BindingInfo]:
    """The binding records a worker sent, which a kernel's code made: whatever they say stays within what a
    binding can be, or the module is refused."""
    try:
        if len(records) != count * BINDING_DTYPE.itemsize:
            raise ValueError(f"{len(records)} bytes for {count} records")
        bindings = read_bindings(records, count)
    except (ValueError, IndexError, KeyError) as error:
        raise DispatchError(f"the sandboxed worker described kernel {kernel} wrongly: {error}") from None
    for binding in bindings:
        if binding.param < 0 or (binding.kind != "builtin" and not 0 <= binding.index < SLOTS) or \
                (binding.kind == "buffer" and binding.elem_size <= 0):
            raise DispatchError(f"the sandboxed worker described kernel {kernel} wrongly: {binding}")
    return bindings


class _PackedRun:
    """A plan's run message, the segments it binds, and constants too large for the message (kept alive here)."""

    __slots__ = ("message", "segments", "mapped_in", "held")

    def __init__(self, message: bytearray, segments: tuple, held: list):
        self.message, self.segments, self.held = message, segments, held
        self.mapped_in: Worker | None = None  # a worker known to map every segment of the plan


class IsolatedCpuBackend(CpuBackend):
    def __init__(self, device: int = 0, cache: CompileCache | None = None, debug: bool = False):
        if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"):
            raise BackendUnavailableError("Interface(isolate=True) needs Linux on x86-64 or ARM64 (seccomp); "
                                          f"this is {sys.platform} on {platform.machine()}")
        super().__init__(device, cache, debug)
        self.host_memory = SharedArena()
        # cpu.py's native queue runs kernels in this process: asynchronous work goes to a thread of ours instead,
        # and the methods of cpu.py that use its queue are overridden below.
        self._dispatches: OrderedQueue | None = None
        self._worker_lock = threading.Lock()  # one thread at a time talks to the worker or replaces it
        self._worker: Worker | None = None
        self._module_files: list[tuple[int, tuple[int, ...]]] = []  # descriptor and kernels, in load order
        self._modules: dict[tuple, IsolatedModule] = {}  # by the file's identity and kernels
        self._entry_count = 0
        self._forked = False
        self._runner_fd = self._sandbox_fd = -1
        try:
            self._runner_fd = os.open(self.native_runner_path, os.O_RDONLY | os.O_CLOEXEC)
            self._sandbox_fd = os.open(self._build_sandbox(), os.O_RDONLY | os.O_CLOEXEC)
            with self._worker_lock:  # seccomp and the limits are tried now, so that a missing one fails here
                self._worker = self._start_worker()
        except BaseException:
            self.close()
            raise

    def _build_sandbox(self):
        source = SANDBOX_SOURCE.read_text()
        key = CompileCache.key("cpu-sandbox", self.compiler.fingerprint(), source)
        try:
            entry, _ = self._cache.get_or_build(
                key, lambda: (self.compiler.compile_plain(source, CompileOptions(fast_math=False)), {}))
        except CompilerFailed as failure:
            raise BackendUnavailableError(f"cannot build the sandbox of Interface(isolate=True):\n{failure.log}") \
                from None
        return entry.path

    # -- the worker ------------------------------------------------------------------------------------------------
    def _start_worker(self) -> Worker:
        """A new worker with every module loaded so far; called with the worker lock held."""
        order = {"runner": self._runner_fd, "sandbox": self._sandbox_fd, "arena": self.host_memory.fd,
                 "modules": self._module_files, "record_bytes": BINDING_DTYPE.itemsize,
                 "threads": self.threads, "memory_bytes": memory_limit_bytes(self.threads),
                 "cpu_seconds": cpu_limit_seconds(self.threads)}
        fds = (self._runner_fd, self._sandbox_fd, self.host_memory.fd, *(fd for fd, _ in self._module_files))
        self.host_memory.take_unmapped()  # a new worker maps none of them
        return Worker.start(order, fds)

    def _current_worker(self) -> Worker:
        if self._worker is None:
            self._worker = self._start_worker()
        return self._worker

    def _end_worker(self) -> None:
        """Ends the worker (called with the worker lock held); the next dispatch starts another."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def _kill_worker(self, owner=None) -> None:
        """Ctrl-C while waiting, or interpreter exit: the running dispatch ends now (from any thread, no lock: the
        thread that waits for the worker holds it)."""
        worker = self._worker
        if worker is not None:
            worker.kill("the dispatch was interrupted (Ctrl-C, or abandoned at exit)")

    def self_test(self, test: str, deadline: float | None = None) -> tuple:
        """Has the worker attempt something for the tests (SELF_TESTS: calls the filter refuses, a hang); returns
        its reply, or raises DispatchError where that ended the worker. Not reachable from shaders."""
        with self._worker_lock:
            worker = self._current_worker()
            try:
                reply = worker.exchange(SELF_TEST.pack(MESSAGE_SELF_TEST, SELF_TESTS[test]), deadline)
            except WorkerEnded as ended:
                self._end_worker()
                raise DispatchError(f"self test '{test}': {ended}") from None
            if reply[0] != 0:
                self._end_worker()
                raise DispatchError(f"self test '{test}': {self._describe_sandbox_status(reply)}")
            return reply

    @property
    def worker_pid(self) -> int | None:
        worker = self._worker
        return worker.pid if worker is not None else None

    # -- compiling -------------------------------------------------------------------------------------------------
    def load(self, path, kernels: tuple[int, ...]) -> Module:
        self._check_not_forked()
        with self._worker_lock:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            stat = os.fstat(fd)
            identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, tuple(kernels))
            if identity in self._modules:
                os.close(fd)
                return self._modules[identity]
            # A sealed worker cannot load a module: a new one loads them all, and describes this one's kernels.
            self._end_worker()
            self._module_files.append((fd, tuple(kernels)))
            try:
                self._worker = self._start_worker()
                deadline = time.monotonic() + START_SECONDS
                module = IsolatedModule(tuple(kernels), self._entry_count,
                                        [self._worker.describe(self._entry_count + i, deadline)
                                         for i in range(len(kernels))])
            except WorkerEnded as ended:
                self._forget_last_module()
                raise DispatchError(f"the sandboxed worker could not describe the kernels of a module: {ended}") \
                    from None
            except BaseException:
                self._forget_last_module()
                raise
            self._entry_count += len(kernels)
            self._modules[identity] = module
        return module

    def _forget_last_module(self) -> None:
        """A module that failed to load: no worker loads it again."""
        self._end_worker()
        fd, _ = self._module_files.pop()
        os.close(fd)

    # -- running ---------------------------------------------------------------------------------------------------
    def _pack(self, plan: LaunchPlan) -> _PackedRun:
        """The plan as a run message: each slot a segment of the shared memory and an offset in it, or bytes of the
        message itself (small constants)."""
        self._check_not_forked()
        total_groups = plan.groups[0] * plan.groups[1] * plan.groups[2]
        total_threads = plan.grid[0] * plan.grid[1] * plan.grid[2]
        threads = 1 if total_threads < PARALLEL_THRESHOLD else min(self.threads, total_groups)
        chunks = min(total_groups, 4 * threads) if threads > 1 else 1
        by_address = {allocation.address: (allocation, param)
                      for allocation, param in zip(plan.allocations, plan.allocation_params)}
        slot_segments, slot_offsets = [0] * SLOTS, [UNBOUND] * SLOTS
        constants, segments, held = bytearray(), {}, []
        for slot, address in enumerate(plan.buffer_addresses):
            if not address:
                continue
            if slot in plan.constants:
                data = plan.constants[slot].tobytes()
                start = -(-len(constants) // 64) * 64  # as aligned as cpu.py's constants
                if start + len(data) <= INLINE_CONSTANT_BYTES:
                    constants += bytes(start - len(constants)) + data
                    slot_offsets[slot] = start
                    continue
                allocation = self.host_memory.allocate(len(data), False)
                allocation.host[:] = memoryview(data)
                held.append(allocation)
            else:
                allocation, param = by_address[address]
                if not isinstance(allocation, SharedAllocation):
                    raise ArgumentError(f"{param}: this buffer is another library's memory (from_dlpack), which the "
                                        "sandboxed worker of Interface(isolate=True) cannot map; copy it into a "
                                        "buffer of the Interface (array_to_buffer)")
            slot_segments[slot], slot_offsets[slot] = allocation.segment.id, allocation.offset
            segments[allocation.segment.id] = allocation.segment
        record = cpu_dispatch_record(plan.grid, plan.group, plan.groups, plan.threadgroup_bytes)
        message = bytearray(RUN.pack(MESSAGE_RUN, 0, total_groups, threads, chunks, 0, len(constants),
                                     *slot_segments, *slot_offsets, *record.tolist()))
        message += bytes(CONSTANTS_AT - len(message)) + constants
        return _PackedRun(message, tuple(segments.values()), held)

    def launch(self, module: Module, kernel: int, plan: LaunchPlan, wait: bool, timeout: float | None = None
               ) -> Dispatch | None:
        packed = plan.packed
        if packed is None:
            packed = plan.packed = self._pack(plan)
        entry = module.entry_points[kernel]
        # The plan holds its memory until the kernel has run: a buffer dropped meanwhile stays allocated.

        def run() -> float:
            started = time.perf_counter()
            self._run_in_worker(entry, packed, plan, timeout)
            return time.perf_counter() - started

        dispatch = self._run_or_queue(run, plan.kernel_name, wait)
        return None if wait else dispatch

    def submit_batch(self, batch: RecordedBatch, wait: bool) -> Dispatch:
        """The batch's dispatches, one message each, in order; the first that fails ends the batch, named."""
        steps = []
        for item in batch.entries:
            plan = item.plan
            try:
                if plan.packed is None:
                    plan.packed = self._pack(plan)
            except Exception as error:
                raise name_batch_dispatch(error, item.index, plan.kernel_name) from None
            steps.append((item.module.entry_points[item.kernel], plan.packed, plan, item.timeout, item.index))

        def run() -> float:
            started = time.perf_counter()
            for entry, packed, plan, timeout, index in steps:
                try:
                    self._run_in_worker(entry, packed, plan, timeout)
                except Exception as error:
                    raise name_batch_dispatch(error, index, plan.kernel_name) from None
            return time.perf_counter() - started

        return self._run_or_queue(run, f"batch of {len(steps)} dispatches", wait)

    def _run_or_queue(self, run, name: str, wait: bool) -> Dispatch:
        """Runs ``run`` here when the caller waits and nothing is queued, else queues it behind what is; returns
        its Dispatch (done when ``wait``). Runs of one backend never overlap."""
        self._check_not_forked()
        with self._lock:
            if wait and (self._dispatches is None or self._dispatches.idle):
                return Dispatch(name, seconds=run())
            if self._dispatches is None:
                self._dispatches = OrderedQueue()
            dispatch = Dispatch(name, self._dispatches.submit(run))
        if wait:
            try:
                dispatch.wait()
            except KeyboardInterrupt:  # Ctrl-C while waiting behind the queue
                self._stop_queued()
                raise
        return dispatch

    def _run_in_worker(self, entry: int, packed: _PackedRun, plan: LaunchPlan, timeout: float | None = None
                       ) -> None:
        message = packed.message
        struct.pack_into("<I", message, 4, entry)
        struct.pack_into("<I", message, TIMEOUT_OFFSET, min(max(1, round(timeout * 1000)), 0xFFFFFFFF)
                         if timeout else 0)
        with self._worker_lock:
            worker = self._current_worker()
            if packed.mapped_in is not worker or self.host_memory.unmapped:
                self._send_mappings(worker, packed.segments)
                packed.mapped_in = worker
            deadline = time.monotonic() + timeout + GRACE_SECONDS if timeout else None
            try:
                reply = worker.exchange(message, deadline)
            except WorkerEnded as ended:
                self._end_worker()
                raise DispatchError(self._describe_ended(plan, ended, timeout)) from None
            except BaseException:  # Ctrl-C while it runs: the kernel cannot be left running
                self._end_worker()
                raise
            if reply[0] != 0:
                self._end_worker()  # a kernel that failed may have harmed the worker: the next one is fresh
                raise DispatchError(self._describe_failure(plan, reply, timeout))
            if reply[-1] > cpu_limit_seconds(self.threads) * 500_000_000:
                self._end_worker()  # half its CPU limit used: a fresh one, so that no kernel meets it midway

    def _send_mappings(self, worker: Worker, segments: tuple) -> None:
        """Tells the worker which segments went away and which of ``segments`` to map."""
        gone = [segment for segment in self.host_memory.take_unmapped() if segment in worker.mapped]
        per_message = (MAX_MESSAGE - UNMAP_HEADER.size) // 8
        for start in range(0, len(gone), per_message):
            ids = gone[start:start + per_message]
            worker.send(UNMAP_HEADER.pack(MESSAGE_UNMAP, len(ids)) + struct.pack(f"<{len(ids)}Q", *ids))
        worker.mapped.difference_update(gone)
        missing = [segment for segment in segments if segment.id not in worker.mapped]
        per_message = (MAX_MESSAGE - MAP_HEADER.size) // MAP_ENTRY.size
        for start in range(0, len(missing), per_message):
            batch = missing[start:start + per_message]
            worker.send(MAP_HEADER.pack(MESSAGE_MAP, len(batch)) + b"".join(
                MAP_ENTRY.pack(s.id, s.file_offset, s.pages, s.leading_guard) for s in batch))
        worker.mapped.update(segment.id for segment in missing)

    # -- what went wrong -------------------------------------------------------------------------------------------
    def _describe_failure(self, plan: LaunchPlan, reply: tuple, timeout: float | None) -> str:
        status, fault_segment, fault_offset, fault_address, report = reply[0], reply[2], reply[3], reply[4], \
            reply[5:13]
        if status >= STATUS_FORBIDDEN_CALL:
            return f"kernel '{plan.kernel_name}': {self._describe_sandbox_status(reply)}"
        segment = self.host_memory.segments.get(fault_segment) if fault_segment else None
        address = segment.address + fault_offset if segment is not None else fault_address
        message = self.describe_fault(plan, status, address, tuple(report), timeout)
        if status == STATUS_NO_STACK:
            message += (f" (the sandbox's memory limit is {memory_limit_bytes(self.threads) >> 20} MiB: "
                        f"{SANDBOX_MEMORY.how_to_raise()})")
        return message

    def _describe_sandbox_status(self, reply: tuple) -> str:
        status, report = reply[0], reply[5:13]
        if status == STATUS_FORBIDDEN_CALL:
            return (f"the worker process attempted a system call the sandbox forbids, {describe_call(*report[:2])}, "
                    "and was ended before it ran. Buffers it wrote may hold partial results; the next dispatch "
                    "starts a new worker")
        if status == STATUS_MAP_FAILED:
            return (f"the sandboxed worker could not map a buffer ({os.strerror(report[0])}); the next dispatch "
                    "starts a new worker")
        if status == STATUS_BAD_MESSAGE:
            return "the sandboxed worker did not understand a message (a bug of metalgpu)"
        return f"the sandboxed worker answered with status {status}"

    def _describe_ended(self, plan: LaunchPlan, ended: WorkerEnded, timeout: float | None) -> str:
        if str(ended) == "it did not answer in time":
            return (f"kernel '{plan.kernel_name}' did not stop within {GRACE_SECONDS:g} s after its timeout of "
                    f"{timeout:g} s: its worker process was ended. Buffers it wrote may hold partial results; the "
                    "next dispatch starts a new worker")
        return (f"kernel '{plan.kernel_name}': {ended}. Buffers it wrote may hold partial results; the next "
                "dispatch starts a new worker")

    # -- lifetime --------------------------------------------------------------------------------------------------
    def describe(self) -> str:
        return f"{super().describe()[:-1]}, kernels isolated in a sandboxed process)"

    def synchronize(self) -> None:
        dispatches = self._dispatches
        if dispatches is None:
            return
        try:
            dispatches.wait_all()
        except KeyboardInterrupt:
            self._stop_queued()
            raise

    def close(self) -> None:
        dispatches, self._dispatches = self._dispatches, None
        if dispatches is not None:
            try:
                dispatches.wait_all(raise_fault=False)  # faults were reported by wait() or synchronize()
            except KeyboardInterrupt:
                self._dispatches = dispatches
                self._stop_queued()
                raise
            dispatches.shutdown()
        super().close()
        with self._worker_lock:
            if not self._forked:
                self._end_worker()
            for fd in (self._runner_fd, self._sandbox_fd, *(fd for fd, _ in self._module_files)):
                if fd >= 0:
                    os.close(fd)
            self._runner_fd = self._sandbox_fd = -1
            self._module_files = []
            self._modules = {}

    def _stop_queued(self) -> None:
        """Ctrl-C while waiting: the running dispatch ends with its worker, and those queued never run."""
        if self._dispatches is not None:
            self._dispatches.cancel_waiting()
        self._kill_worker()

    def _abandon(self, deadline: float) -> bool:
        """At exit: waits for the queued work until ``deadline``; False if it still runs."""
        dispatches = self._dispatches
        return dispatches is None or dispatches.wait_until(deadline)

    def _check_not_forked(self) -> None:
        if self._forked:
            raise MetalError("this isolated Interface was made before the process forked: its worker belongs to "
                             "the parent. Make a new Interface in this process")

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        # The worker and its socket are the parent's: forgotten here, not ended.
        self._worker_lock = threading.Lock()
        self._worker = None
        self._forked = True
        if self._dispatches is not None:  # its thread is the parent's
            self._dispatches.fail_after_fork()
            self._dispatches = None
        self.host_memory.after_fork_in_child()
