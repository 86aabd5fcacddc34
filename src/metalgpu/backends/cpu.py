"""The CPU backend: MSL translated to C++, compiled by the system C++ compiler into a shared object, run on all
cores. Threadgroups are shared out by a pool of native threads (cpu_guard.cpp), which also guards every call so that
a crashing kernel raises DispatchError instead of killing the interpreter, and stops a kernel that runs past its
timeout or is interrupted by Ctrl-C. Asynchronous dispatches and batches go to a native queue (cpu_queue.cpp,
cpu_queue.py). Buffer memory: cpu_memory.py."""
from __future__ import annotations

import atexit
import ctypes
import os
import platform
import signal
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..cache import CompileCache
from ..dispatch import Dispatch, LaunchPlan, RecordedBatch
from ..errors import BackendUnavailableError, DispatchError, MetalError, OutOfMemoryError
from ..msl.abi import BINDING_DTYPE, STATUS_DEADLOCK, STATUS_NO_STACK, BindingInfo, cpu_dispatch_record, read_bindings
from ..progress import long_step
from . import cpu_queue
from .base import Allocation, Backend, CompileOptions, CompilerFailed, Module
from .cpu_compiler import CpuCompiler
from .cpu_memory import HOST_MEMORY
from .cpu_queue import NativeQueue, QueuedRun

__all__ = ["CpuBackend"]

# The native runner, one translation unit in this order: the guarded thread pool, the per-thread memory modules
# borrow, the asynchronous queue
NATIVE_SOURCES = tuple(Path(__file__).resolve().parent / name
                       for name in ("cpu_guard.cpp", "cpu_thread_memory.cpp", "cpu_queue.cpp"))
PARALLEL_THRESHOLD = 1 << 15  # threads in a grid below which one OS thread is faster than waking the pool
# Statuses of cpu_guard.cpp's runner (beside signal numbers and the kernels' own, msl/abi.py)
STATUS_STACK_OVERFLOW, STATUS_INTERRUPTED, STATUS_TIMED_OUT = 1003, 1004, 1005
EXIT_GRACE_SECONDS = 5.0  # how long interpreter exit waits for asynchronous dispatches before abandoning them
_BACKENDS: weakref.WeakSet = weakref.WeakSet()  # open CpuBackends, for fork and exit
# Backends with queued work, held: native code reads the memory of their submissions (status records, plans) by
# address until it is done, so neither may go with a dropped Interface before then.
_BUSY: set = set()
TIMEOUT_SLOT = 6  # report[TIMEOUT_SLOT]: the timeout in milliseconds, read by mg_parallel_run
_NATIVE: ctypes.CDLL | None = None  # the native runner, loaded once per process
_NATIVE_LOCK = threading.Lock()


class _CpuModule(Module):
    def __init__(self, path: Path, kernels: Sequence[int]):
        self._library = ctypes.CDLL(str(path))
        self.kernels = tuple(kernels)
        self.entry_points = {i: ctypes.cast(self._library[f"mg_run_{i}"], ctypes.c_void_p).value for i in kernels}
        self._bindings = {i: self._read_bindings(i) for i in kernels}

    def max_threads(self, kernel: int) -> int | None:
        limit = self._library[f"mg_max_threads_{kernel}"]
        limit.restype = ctypes.c_uint32
        return limit() or None

    def _read_bindings(self, kernel: int) -> list[BindingInfo]:
        info = self._library[f"mg_info_{kernel}"]
        info.restype = ctypes.c_void_p
        info.argtypes = [ctypes.POINTER(ctypes.c_int32)]
        count = ctypes.c_int32(0)
        records = info(ctypes.byref(count))
        return read_bindings(ctypes.string_at(records, count.value * BINDING_DTYPE.itemsize), count.value)

    def bindings(self, kernel: int) -> list[BindingInfo]:
        return self._bindings[kernel]


class _CpuLaunch:
    """A plan as the native runner takes it, built once: its mg::dispatch_t, its slot array, and the same
    dispatch as an entry of the queue (cpu_queue.entry_record), with how many threads and chunks share it out."""

    __slots__ = ("run", "record", "slots", "record_address", "slots_address", "entry", "groups", "threads", "chunks")

    def __init__(self, entry_point: int, plan: LaunchPlan, threads: int, like: "_CpuLaunch | None" = None):
        self.run = entry_point
        if like is None:
            self.record = cpu_dispatch_record(plan.grid, plan.group, plan.groups, plan.threadgroup_bytes)
            self.groups = plan.groups[0] * plan.groups[1] * plan.groups[2]
            total_threads = plan.grid[0] * plan.grid[1] * plan.grid[2]
            self.threads = 1 if total_threads < PARALLEL_THRESHOLD else min(threads, self.groups)
            # Several chunks per thread even out threadgroups of unequal cost; the native pool hands them out.
            self.chunks = min(self.groups, 4 * self.threads) if self.threads > 1 else 1
        else:  # the same dispatch with other slots: the native runner only reads the record, which they share
            self.record, self.groups, self.threads, self.chunks = like.record, like.groups, like.threads, like.chunks
        self.slots = np.array(plan.buffer_addresses, dtype=np.uint64)
        self.record_address, self.slots_address = self.record.ctypes.data, self.slots.ctypes.data
        self.entry = cpu_queue.entry_record(entry_point, self.slots_address, self.record_address, self.groups,
                                            self.threads, self.chunks)

    @classmethod
    def of(cls, entry_point: int, plan: LaunchPlan, threads: int) -> "_CpuLaunch":
        """The launch of ``plan``; a plan that repeats its template with other constant values (constant_plans.py)
        shares the dispatch record of the first launch of that template."""
        template = plan.template
        launch = cls(entry_point, plan, threads, None if template is None else template.packed)
        if template is not None and template.packed is None:
            template.packed = launch
        return launch


class CpuBackend(Backend):
    name = "cpu"
    target = "cpu"

    def __init__(self, device: int = 0, cache: CompileCache | None = None, debug: bool = False):
        if device != 0:
            raise BackendUnavailableError(f"the cpu backend has one device (0), not {device}")
        self._cache = cache or CompileCache()
        self.compiler = CpuCompiler(self._cache)
        self.threads = _thread_count()
        self._queue: NativeQueue | None = None  # asynchronous dispatches and batches run there, in order
        self._pending: QueuedRun | None = None  # the last submission to the queue, until it is seen done
        self._in_flight: deque[QueuedRun] = deque()  # submissions not seen done: they hold their plans' memory
        self._in_flight_lock = threading.Lock()  # forget_done() runs from any waiting thread
        self._lock = threading.Lock()
        self._run_native = self._load_native_runner()
        self.native = _NATIVE
        # Kept for every dispatch (they never overlap: see launch): the fault address and the report of the native
        # runner, whose address also names this backend's dispatches to the native watchdog.
        self._address = ctypes.c_size_t(0)
        self._address_ref = ctypes.byref(self._address)
        self._report = (ctypes.c_uint32 * 8)()
        self.debug = debug
        self.host_memory = HOST_MEMORY  # where buffers live (Interface(isolate=True): memory a worker shares)
        _BACKENDS.add(self)

    # -- compiling -------------------------------------------------------------------------------------------
    def load(self, path: Path, kernels: tuple[int, ...]) -> Module:
        return _CpuModule(path, kernels)

    def _load_native_runner(self):
        source = "\n".join(f'#line 1 "{path.name}"\n{path.read_text()}' for path in NATIVE_SOURCES)
        key = CompileCache.key("cpu-guard", self.compiler.fingerprint(), source)
        options = CompileOptions(fast_math=False)
        def build() -> tuple[bytes, dict]:
            with long_step("building the cpu backend's native runner (once per compiler)"):
                return self.compiler.compile_plain(source, options), {}

        try:
            entry, _ = self._cache.get_or_build(key, build)
            self.native_runner_path = entry.path
        except CompilerFailed as failure:
            raise BackendUnavailableError(f"the C++ compiler {self.compiler.command[0]} does not work:\n"
                                          f"{failure.log}") from None
        # One copy per process, whichever cache folder built it: its signal handlers, watchdog and fiber stacks
        # are process-wide (copies from several cache folders would each install handlers and hook Ctrl-C).
        # RTLD_GLOBAL: kernel modules take their fiber stacks and threadgroup arenas from it (weak references:
        # mg_fiber_stacks, mg_threadgroup_arenas).
        global _NATIVE
        with _NATIVE_LOCK:
            if _NATIVE is None:
                _NATIVE = ctypes.CDLL(str(entry.path), mode=ctypes.RTLD_GLOBAL)
                cpu_queue.bind(_NATIVE)
        native = _NATIVE
        run = native.mg_parallel_run
        run.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_uint64] * 2 + [ctypes.c_uint32, ctypes.c_uint64,
                                                                       ctypes.POINTER(ctypes.c_size_t),
                                                                       ctypes.POINTER(ctypes.c_uint32)]
        run.restype = ctypes.c_int
        self._hook_interrupts = native.mg_hook_interrupts
        self._cancel = native.mg_cancel
        self._cancel.argtypes = [ctypes.c_void_p]
        return run

    # -- memory ----------------------------------------------------------------------------------------------
    def allocate(self, nbytes: int, storage: str) -> Allocation:
        # Reading /proc/meminfo costs more than mapping a small buffer: only large ones are checked first.
        available = _available_memory() if nbytes >= 1 << 20 else None
        if available is not None and nbytes > available:
            raise OutOfMemoryError(f"cannot allocate {nbytes:,} bytes on the cpu backend: {available:,} bytes of "
                                   "memory are available")
        try:
            return self.host_memory.allocate(nbytes, self.debug)
        except (MemoryError, ValueError) as error:
            raise OutOfMemoryError(f"cannot allocate {nbytes:,} bytes on the cpu backend: {error}") from None

    # -- running ---------------------------------------------------------------------------------------------
    supports_timeout = True

    def launch(self, module: Module, kernel: int, plan: LaunchPlan, wait: bool, timeout: float | None = None
               ) -> Dispatch | None:
        launch = plan.packed
        if launch is None:
            launch = plan.packed = _CpuLaunch.of(module.entry_points[kernel], plan, self.threads)
        # The plan holds its memory until the kernel has run: a buffer dropped meanwhile stays allocated.
        # Runs of one backend never overlap: a synchronous one runs under the lock, and only when the queue is idle;
        # the queue runs one submission at a time.
        with self._lock:
            if wait and self._queue_idle():
                self._run_groups(launch, plan, timeout)
                return None
            launch.entry[cpu_queue.TIMEOUT_FIELD] = _timeout_ms(timeout)  # the queue copies the entry
            run = self._submit(launch.entry, 1, [plan], [timeout], batch=False)
        if wait:
            self._wait_for_caller(run)
            return None
        return run

    def submit_batch(self, batch: RecordedBatch, wait: bool) -> Dispatch:
        """The batch's dispatches run back to back in native code (cpu_queue.cpp): queued as one submission, or, when
        the queue is idle and the caller waits, on the calling thread in one call."""
        if batch.packed is None:
            entries = []
            for entry in batch.entries:
                plan = entry.plan
                if plan.packed is None:
                    plan.packed = _CpuLaunch.of(entry.module.entry_points[entry.kernel], plan, self.threads)
                record = plan.packed.entry
                entries.append(record)
            batch.packed = cpu_queue.join_entries(entries)
            for index, entry in enumerate(batch.entries):
                batch.packed[index * cpu_queue.ENTRY_FIELDS + cpu_queue.TIMEOUT_FIELD] = _timeout_ms(entry.timeout)
        plans = [entry.plan for entry in batch.entries]
        timeouts = [entry.timeout for entry in batch.entries]
        with self._lock:
            if wait and self._queue_idle():
                run = QueuedRun(self, plans, timeouts, batch=True)
                self._prepare_interrupts()
                self.native.mg_run_entries(batch.packed, len(plans), run.status, self._report)
                run.status[cpu_queue.STATE] = 1
                run.wait()
                return run
            run = self._submit(batch.packed, len(plans), plans, timeouts, batch=True)
        if wait:
            self._wait_for_caller(run)
        return run

    def _queue_idle(self) -> bool:
        """Nothing of this backend is queued or running (called under the lock)."""
        pending = self._pending
        if pending is None:
            return True
        if not pending.done:
            return False
        self._pending = None
        return True

    def _submit(self, entries: ctypes.Array, count: int, plans: list[LaunchPlan], timeouts: list, batch: bool
                ) -> QueuedRun:
        """Queues ``count`` entries as one submission (called under the lock)."""
        run = QueuedRun(self, plans, timeouts, batch)
        self.forget_done()
        in_flight = self._in_flight
        if self._queue is None:
            self._queue = NativeQueue(self.native)
        if not self._queue.submit(entries, count, run.status):  # no thread for the queue: run it here
            self.native.mg_run_entries(entries, count, run.status, self._report)
            run.status[cpu_queue.STATE] = 1
            return run
        with self._in_flight_lock:
            in_flight.append(run)
            _BUSY.add(self)
        self._pending = run
        return run

    def forget_done(self) -> None:
        """Lets the submissions that have run go (in order: they finish in order)."""
        with self._in_flight_lock:
            in_flight = self._in_flight
            while in_flight and in_flight[0].done:  # what has run no longer needs its plans' memory
                in_flight.popleft()
            if not in_flight:
                _BUSY.discard(self)

    def wait_queued(self, run: QueuedRun) -> None:
        """Waits for a queued submission (QueuedRun.wait)."""
        queue = self._queue
        if queue is not None:
            queue.wait(run.status)

    def _wait_for_caller(self, run: QueuedRun) -> None:
        """A synchronous dispatch or batch that went to the queue: Ctrl-C while waiting stops the queue's work."""
        self._prepare_interrupts()
        try:
            run.wait()
        except KeyboardInterrupt:
            self._stop_queued()
            raise

    def _prepare_interrupts(self) -> None:
        # Ctrl-C must stop a kernel of the main thread (where KeyboardInterrupt is raised): cpu_guard.cpp's SIGINT
        # handler goes in front of Python's. Checked at the OS level before each run, not through Python's
        # getsignal: a library that sets Python's handler again (signal.signal(SIGINT, old)) removes ours while
        # getsignal still returns the same object.
        self._hook_interrupts()

    def _run_groups(self, launch: _CpuLaunch, plan: LaunchPlan, timeout: float | None = None) -> None:
        report = self._report
        self._prepare_interrupts()
        if timeout:
            report[TIMEOUT_SLOT] = _timeout_ms(timeout)
        code = self._run_native(launch.run, launch.slots_address, launch.record_address, 0, launch.groups,
                                launch.threads, launch.chunks, self._address_ref, report)
        if code:
            raise DispatchError(self.describe_fault(plan, code, self._address.value, tuple(report), timeout))

    def describe_fault(self, plan: LaunchPlan, code: int, address: int, report: tuple[int, ...] = (),
                       timeout: float | None = None) -> str:
        if code == STATUS_TIMED_OUT:
            return (f"kernel '{plan.kernel_name}' ran longer than its timeout of {timeout:g} s and was stopped on "
                    "the cpu backend. Buffers it wrote may hold partial results; the interface is still usable")
        if code == STATUS_INTERRUPTED:
            return (f"kernel '{plan.kernel_name}' was interrupted (Ctrl-C, or abandoned at exit). Buffers it wrote "
                    "may hold partial results; the interface is still usable")
        if code == STATUS_STACK_OVERFLOW:
            return (f"kernel '{plan.kernel_name}': stack overflow at address {address:#x}: a thread's private "
                    f"memory (local arrays, recursion) exceeds its stack on the cpu backend ({_STACK_LIMITS}). "
                    "Results are incomplete; the interface is still usable")
        # statuses of the cooperative runner (metal/_fibers_cpu.h), not signals
        if code == STATUS_DEADLOCK:
            returned, total, gx, gy, gz = report[:5]
            return (f"kernel '{plan.kernel_name}': barrier deadlock: {returned} of {total} threads of threadgroup "
                    f"({gx},{gy},{gz}) returned while the others wait at a barrier. Every thread of a threadgroup "
                    "must reach each threadgroup_barrier; the interface is still usable")
        if code == STATUS_NO_STACK:
            return (f"kernel '{plan.kernel_name}': cannot allocate fiber stacks for a threadgroup of "
                    f"{plan.group[0] * plan.group[1] * plan.group[2]} threads on the cpu backend")
        try:
            name = signal.Signals(code).name
        except ValueError:
            name = f"signal {code}"
        for allocation, param in zip(plan.allocations, plan.allocation_params):
            where = allocation.locate(address) if hasattr(allocation, "locate") else None
            if where:
                return (f"out-of-bounds access in kernel '{plan.kernel_name}': {param} was accessed {where}. "
                        "Buffers it wrote may hold partial results; the interface is still usable")
        hint = "" if self.debug else "; Interface(debug=True) names the buffer of an out-of-bounds access"
        return (f"kernel '{plan.kernel_name}' faulted ({name} at address {address:#x}) on the cpu backend. "
                f"Buffers it wrote may hold partial results; the interface is still usable{hint}")

    def synchronize(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        self._prepare_interrupts()
        try:
            self._wait_in_flight()
        except KeyboardInterrupt:
            self._stop_queued()
            raise
        for run in list(self._in_flight):  # the first fault of what was waited for
            run.wait()

    def _wait_in_flight(self) -> None:
        """Waits for every submission not seen done (they finish in order: the last one is usually enough)."""
        for run in list(self._in_flight):
            if not run.done:
                self.wait_queued(run)

    def describe(self) -> str:
        machine = platform.processor() or platform.machine()
        return f"cpu ({machine}, {self.threads} threads, {self.compiler.command[-1]})"

    def close(self) -> None:
        if self._queue is not None:
            try:
                self._wait_in_flight()  # faults were reported by wait() or synchronize()
            except KeyboardInterrupt:
                self._stop_queued()
                raise
            self._queue.close()
        self._queue, self._pending = None, None
        self._in_flight.clear()
        _BUSY.discard(self)
        _BACKENDS.discard(self)

    def _stop_queued(self) -> None:
        """Ctrl-C while waiting: the running kernel of this backend stops, and those queued behind it never run."""
        if self._queue is not None:
            self._queue.cancel()
        self._cancel(ctypes.addressof(self._report))

    def _abandon(self, deadline: float) -> bool:
        """At exit: waits for the queued work until ``deadline``; False if it still runs."""
        queue = self._queue
        if queue is None:
            return True
        for run in list(self._in_flight):
            while not run.done:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
        return True

    def _after_fork_in_child(self) -> None:
        # The parent's threads do not exist here: a lock one of them held would never be released, and its
        # dispatches never end.
        self._lock, self._in_flight_lock = threading.Lock(), threading.Lock()
        if self._queue is not None:
            self._queue.forget()
        self._queue, self._pending = None, None
        for run in self._in_flight:
            run.fail_after_fork()
        self._in_flight.clear()
        _BUSY.discard(self)


_STACK_LIMITS = "64 KiB per thread of a kernel with barriers or SIMD-group functions, the OS thread's stack otherwise"


def _timeout_ms(timeout: float | None) -> int:
    """A timeout as the native runner reads it: whole milliseconds, at least 1; 0 for none."""
    return min(max(1, round(timeout * 1000)), 0xFFFFFFFF) if timeout else 0


@atexit.register
def _abandon_at_exit() -> None:
    """Interpreter exit waits a while for asynchronous dispatches, then stops those still running, with a
    warning: a kernel that never ends must not keep the process alive."""
    deadline = time.monotonic() + EXIT_GRACE_SECONDS
    running = [backend for backend in list(_BACKENDS) if not backend._abandon(deadline)]
    if running:
        warnings.warn(f"metalgpu: {len(running)} asynchronous cpu dispatch(es) still running after "
                      f"{EXIT_GRACE_SECONDS:g} s at exit were abandoned", RuntimeWarning, stacklevel=1)
        for backend in running:
            backend._stop_queued()
        deadline = time.monotonic() + 1.0  # the kernels leave within milliseconds: before memory is torn down
        for backend in running:
            backend._abandon(deadline)


def _after_fork_in_child() -> None:
    for backend in list(_BACKENDS):
        backend._after_fork_in_child()
    HOST_MEMORY.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _thread_count() -> int:
    """$METALGPU_NUM_THREADS, else every core this process may run on."""
    given = os.environ.get("METALGPU_NUM_THREADS", "").strip()
    if not given:
        try:
            return max(1, len(os.sched_getaffinity(0)))  # a taskset or container limit, not the machine's count
        except (AttributeError, OSError):
            return os.cpu_count() or 1
    try:
        count = int(given)
    except ValueError:
        count = 0
    if count < 1:
        raise MetalError(f"METALGPU_NUM_THREADS must be a whole number of threads, 1 or more, not {given!r}")
    return count


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
