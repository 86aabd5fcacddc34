"""The CPU backend: MSL translated to C++, compiled by the system C++ compiler into a shared object, run on all
cores. Threadgroups are shared out by a pool of native threads (cpu_guard.cpp), which also guards every call so that
a crashing kernel raises DispatchError instead of killing the interpreter, and stops a kernel that runs past its
timeout or is interrupted by Ctrl-C. Buffer memory: cpu_memory.py."""
from __future__ import annotations

import _signal
import atexit
import ctypes
import os
import platform
import queue
import signal
import threading
import time
import warnings
import weakref
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from ..cache import CompileCache
from ..dispatch import Dispatch, LaunchPlan
from ..errors import BackendUnavailableError, DispatchError, MetalError, OutOfMemoryError
from ..msl.abi import BINDING_DTYPE, STATUS_DEADLOCK, STATUS_NO_STACK, BindingInfo, cpu_dispatch_record, read_bindings
from .base import Allocation, Backend, CompileOptions, CompilerFailed, Module
from .cpu_compiler import CpuCompiler
from .cpu_memory import HOST_MEMORY

__all__ = ["CpuBackend"]

GUARD_SOURCE = Path(__file__).resolve().parent / "cpu_guard.cpp"
PARALLEL_THRESHOLD = 1 << 15  # threads in a grid below which one OS thread is faster than waking the pool
# Statuses of cpu_guard.cpp's runner (beside signal numbers and the kernels' own, msl/abi.py)
STATUS_STACK_OVERFLOW, STATUS_INTERRUPTED, STATUS_TIMED_OUT = 1003, 1004, 1005
EXIT_GRACE_SECONDS = 5.0  # how long interpreter exit waits for asynchronous dispatches before abandoning them
# Per dispatch: signal.getsignal itself costs microseconds (it converts the handler to an enum); _signal's is direct.
_sigint_handler, _SIGINT = _signal.getsignal, int(signal.SIGINT)
_BACKENDS: weakref.WeakSet = weakref.WeakSet()  # open CpuBackends, for fork and exit
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


class CpuBackend(Backend):
    name = "cpu"
    target = "cpu"

    def __init__(self, device: int = 0, cache: CompileCache | None = None, debug: bool = False):
        if device != 0:
            raise BackendUnavailableError(f"the cpu backend has one device (0), not {device}")
        self._cache = cache or CompileCache()
        self.compiler = CpuCompiler(self._cache)
        self.threads = _thread_count()
        self._queue: _Queue | None = None  # one thread: dispatches run in submission order
        self._pending: Future | None = None
        self._lock = threading.Lock()
        self._run_native = self._load_native_runner()
        self._hooked_handler = None  # Python's SIGINT handler when ours was put in front of it
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
        source = GUARD_SOURCE.read_text()
        key = CompileCache.key("cpu-guard", self.compiler.fingerprint(), source)
        options = CompileOptions(fast_math=False)
        try:
            entry, _ = self._cache.get_or_build(key, lambda: (self.compiler.compile_plain(source, options), {}))
            self.native_runner_path = entry.path
        except CompilerFailed as failure:
            raise BackendUnavailableError(f"the C++ compiler {self.compiler.command[0]} does not work:\n"
                                          f"{failure.log}") from None
        # One copy per process, whichever cache folder built it: its signal handlers, watchdog and fiber stacks
        # are process-wide (copies from several cache folders would each install handlers and hook Ctrl-C).
        # RTLD_GLOBAL: kernel modules take their fiber stacks from it (mg_fiber_stacks, metal/_fibers_cpu.h).
        global _NATIVE
        with _NATIVE_LOCK:
            if _NATIVE is None:
                _NATIVE = ctypes.CDLL(str(entry.path), mode=ctypes.RTLD_GLOBAL)
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
               ) -> Dispatch:
        entry = module.entry_points[kernel]
        if plan.packed is None:
            plan.packed = self._pack(plan)
        packed = plan.packed
        # The plan holds its memory until the kernel has run: a buffer dropped meanwhile stays allocated.

        def run() -> float:
            started = time.perf_counter()
            self._run_groups(entry, packed, plan, timeout)
            return time.perf_counter() - started

        # Runs of one backend never overlap: a synchronous one runs under the lock, and only when the queue is idle;
        # the queue runs one at a time.
        with self._lock:
            previous = self._pending
            if wait and (previous is None or previous.done()):
                run()
                return None
            if self._queue is None:
                self._queue = _Queue()
            future = self._queue.submit(run)
            self._pending = future
        dispatch = Dispatch(plan.kernel_name, future)
        if wait:
            try:
                dispatch.wait()
            except KeyboardInterrupt:  # Ctrl-C while waiting behind the queue
                self._stop_queued()
                raise
            return None
        return dispatch

    def _pack(self, plan: LaunchPlan):
        """The launch record of a plan, built on its first launch: the dispatch sizes and the slots' addresses."""
        return (cpu_dispatch_record(plan.grid, plan.group, plan.groups, plan.threadgroup_bytes),
                np.array(plan.buffer_addresses, dtype=np.uint64))

    def _run_groups(self, entry: int, packed, plan: LaunchPlan, timeout: float | None = None) -> None:
        record, slots = packed
        total_groups = plan.groups[0] * plan.groups[1] * plan.groups[2]
        total_threads = plan.grid[0] * plan.grid[1] * plan.grid[2]
        threads = 1 if total_threads < PARALLEL_THRESHOLD else min(self.threads, total_groups)
        # Several chunks per thread even out threadgroups of unequal cost; the native pool hands them out.
        chunks = min(total_groups, 4 * threads) if threads > 1 else 1
        report = self._report
        # Ctrl-C must stop a kernel of the main thread (where KeyboardInterrupt is raised): cpu_guard.cpp's SIGINT
        # handler goes in front of Python's, and again after Python's was set anew.
        handler = _sigint_handler(_SIGINT)
        if handler is not self._hooked_handler:
            self._hook_interrupts()
            self._hooked_handler = handler
        if timeout:
            report[TIMEOUT_SLOT] = min(max(1, round(timeout * 1000)), 0xFFFFFFFF)
        code = self._run_native(entry, slots.ctypes.data, record.ctypes.data, 0, total_groups, threads, chunks,
                                self._address_ref, report)
        if code:
            raise DispatchError(self._describe_fault(plan, code, self._address.value, tuple(report), timeout))

    def _describe_fault(self, plan: LaunchPlan, code: int, address: int, report: tuple[int, ...] = (),
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
        if pending is not None:
            try:
                pending.result()
            except KeyboardInterrupt:
                self._stop_queued()
                raise

    def describe(self) -> str:
        machine = platform.processor() or platform.machine()
        return f"cpu ({machine}, {self.threads} threads, {self.compiler.command[-1]})"

    def close(self) -> None:
        pending = self._pending
        if pending is not None:
            try:
                pending.exception()  # waits; the fault was reported by wait() or synchronize()
            except KeyboardInterrupt:
                self._stop_queued()
                raise
        if self._queue is not None:
            self._queue.shutdown()
        self._queue = None
        _BACKENDS.discard(self)

    def _stop_queued(self) -> None:
        """Ctrl-C while waiting: the running kernel of this backend stops, and those queued behind it never run."""
        if self._queue is not None:
            self._queue.cancel_waiting()
        self._cancel(ctypes.addressof(self._report))

    def _abandon(self, deadline: float) -> bool:
        """At exit: waits for the pending dispatch until ``deadline``; False if it still runs."""
        pending = self._pending
        if pending is None:
            return True
        try:
            pending.exception(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return False
        return True

    def _after_fork_in_child(self) -> None:
        # The parent's threads do not exist here: a lock one of them held would never be released, and its
        # dispatch never ends.
        self._lock = threading.Lock()
        self._queue = None
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.set_exception(DispatchError("the dispatch was running in the parent process when it forked; "
                                                "this child process does not have its results"))


_STACK_LIMITS = "64 KiB per thread of a kernel with barriers or SIMD-group functions, the OS thread's stack otherwise"


class _Queue:
    """One daemon thread running the asynchronous dispatches in order: unlike a ThreadPoolExecutor's, it does not
    keep the interpreter from exiting when a kernel never ends (see _abandon_at_exit)."""

    def __init__(self):
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="metalgpu-queue", daemon=True)
        self._thread.start()

    def submit(self, function) -> Future:
        future: Future = Future()
        self._items.put((function, future))
        return future

    def shutdown(self) -> None:
        self._items.put(None)

    def cancel_waiting(self) -> None:
        """The dispatches not yet started never run: their waiters get DispatchError."""
        while True:
            try:
                item = self._items.get_nowait()
            except queue.Empty:
                return
            if item is None:  # shut down meanwhile: keep it so
                self._items.put(None)
                return
            function, future = item
            if future.set_running_or_notify_cancel():
                future.set_exception(DispatchError("the dispatch was cancelled by Ctrl-C before it ran"))

    def _serve(self) -> None:
        while (item := self._items.get()) is not None:
            function, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as error:  # noqa: BLE001  (the waiter gets it)
                future.set_exception(error)


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
            backend._cancel(ctypes.addressof(backend._report))
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
