"""The CPU backend: MSL translated to C++, compiled by the system C++ compiler into a shared object, run on all
cores. Threadgroups are shared out by a pool of native threads (cpu_guard.cpp), which also guards every call so that
a crashing kernel raises DispatchError instead of killing the interpreter."""
from __future__ import annotations

import ctypes
import mmap
import os
import platform
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..cache import CompileCache
from ..dispatch import Dispatch, LaunchPlan
from ..errors import BackendUnavailableError, DispatchError, MetalError, OutOfMemoryError
from ..msl.abi import BINDING_DTYPE, STATUS_DEADLOCK, STATUS_NO_STACK, BindingInfo, cpu_dispatch_record, read_bindings
from .base import Allocation, Backend, CompileOptions, CompilerFailed, Module
from .cpu_compiler import CpuCompiler

__all__ = ["CpuBackend"]

GUARD_SOURCE = Path(__file__).resolve().parent / "cpu_guard.cpp"
PARALLEL_THRESHOLD = 1 << 15  # threads in a grid below which one OS thread is faster than waking the pool
ALIGNMENT = 64


class _HostAllocation(Allocation):
    def __init__(self, nbytes: int):
        self._storage = np.zeros(nbytes + ALIGNMENT, dtype=np.uint8)
        start = -self._storage.ctypes.data % ALIGNMENT
        self.host = self._storage[start:start + nbytes]
        self.address = self.host.ctypes.data
        self.nbytes = nbytes

    def free(self) -> None:
        # Views the user still holds keep numpy's memory alive, so an old `contents` never reads freed memory.
        self.host = None
        self._storage = None


class _GuardedAllocation(Allocation):
    """Debug mode: the buffer's last byte touches an inaccessible page and another one precedes its first page,
    so an access past the end (exactly) or before the start (beyond the page's slack) faults and is reported
    with the parameter it went through, instead of silently reading a neighbour's memory."""

    PAGE = mmap.PAGESIZE

    def __init__(self, nbytes: int):
        data_pages = -(-nbytes // self.PAGE)
        self._map = mmap.mmap(-1, (data_pages + 2) * self.PAGE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        self.end_guard = self.base + (data_pages + 1) * self.PAGE
        libc = ctypes.CDLL(None, use_errno=True)
        for guard in (self.base, self.end_guard):
            if libc.mprotect(ctypes.c_void_p(guard), ctypes.c_size_t(self.PAGE), 0) != 0:
                raise OutOfMemoryError(f"cannot protect a guard page: errno {ctypes.get_errno()}")
        offset = (data_pages + 1) * self.PAGE - nbytes
        self.host = np.frombuffer(self._map, dtype=np.uint8, count=nbytes, offset=offset)
        self.address = self.base + offset
        self.nbytes = nbytes

    def locate(self, address: int) -> str | None:
        """Where a faulting address lies relative to this buffer, if in one of its guard pages."""
        if self.base <= address < self.base + self.PAGE:
            return f"{self.address - address} bytes before its start"
        if self.end_guard <= address < self.end_guard + self.PAGE:
            return f"{address - self.end_guard} bytes past its end ({self.nbytes} bytes)"
        return None

    def free(self) -> None:
        self.host = None  # the mapping goes when no numpy view of it is left


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
        self._queue: ThreadPoolExecutor | None = None  # one thread: dispatches run in submission order
        self._pending: Future | None = None
        self._lock = threading.Lock()
        self._run_native = self._load_native_runner()
        self.debug = debug

    # -- compiling -------------------------------------------------------------------------------------------
    def load(self, path: Path, kernels: tuple[int, ...]) -> Module:
        return _CpuModule(path, kernels)

    def _load_native_runner(self):
        source = GUARD_SOURCE.read_text()
        key = CompileCache.key("cpu-guard", self.compiler.fingerprint(), source)
        options = CompileOptions(fast_math=False)
        try:
            entry, _ = self._cache.get_or_build(key, lambda: (self.compiler.compile_plain(source, options), {}))
        except CompilerFailed as failure:
            raise BackendUnavailableError(f"the C++ compiler {self.compiler.command[0]} does not work:\n"
                                          f"{failure.log}") from None
        # In the global scope: the kernels' modules take their fiber stacks from it (mg_fiber_stacks).
        run = ctypes.CDLL(str(entry.path), mode=os.RTLD_GLOBAL).mg_parallel_run
        run.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_uint64] * 2 + [ctypes.c_uint32, ctypes.c_uint64,
                                                                       ctypes.POINTER(ctypes.c_size_t),
                                                                       ctypes.POINTER(ctypes.c_uint32)]
        run.restype = ctypes.c_int
        return run

    # -- memory ----------------------------------------------------------------------------------------------
    def allocate(self, nbytes: int, storage: str) -> Allocation:
        available = _available_memory()
        if available is not None and nbytes > available:
            raise OutOfMemoryError(f"cannot allocate {nbytes:,} bytes on the cpu backend: {available:,} bytes of "
                                   "memory are available")
        try:
            return _GuardedAllocation(nbytes) if self.debug else _HostAllocation(nbytes)
        except (MemoryError, ValueError) as error:
            raise OutOfMemoryError(f"cannot allocate {nbytes:,} bytes on the cpu backend: {error}") from None

    # -- running ---------------------------------------------------------------------------------------------
    def launch(self, module: Module, kernel: int, plan: LaunchPlan, wait: bool) -> Dispatch:
        entry = module.entry_points[kernel]
        if plan.packed is None:
            plan.packed = (cpu_dispatch_record(plan.grid, plan.group, plan.groups, plan.threadgroup_bytes),
                           np.array(plan.buffer_addresses, dtype=np.uint64))
        record, slots = plan.packed
        # The plan holds its memory until the kernel has run: a buffer dropped meanwhile stays allocated.

        def run() -> float:
            started = time.perf_counter()
            self._run_groups(entry, slots, record, plan)
            return time.perf_counter() - started

        with self._lock:
            previous = self._pending
            if wait and (previous is None or previous.done()):
                run()
                return None
            if self._queue is None:
                self._queue = ThreadPoolExecutor(1, thread_name_prefix="metalgpu-queue")
            future = self._queue.submit(run)
            self._pending = future
        dispatch = Dispatch(plan.kernel_name, future)
        if wait:
            dispatch.wait()
            return None
        return dispatch

    def _run_groups(self, entry: int, slots: np.ndarray, record: np.ndarray, plan: LaunchPlan) -> None:
        total_groups = plan.groups[0] * plan.groups[1] * plan.groups[2]
        total_threads = plan.grid[0] * plan.grid[1] * plan.grid[2]
        threads = 1 if total_threads < PARALLEL_THRESHOLD else min(self.threads, total_groups)
        # Several chunks per thread even out threadgroups of unequal cost; the native pool hands them out.
        chunks = min(total_groups, 4 * threads) if threads > 1 else 1
        address = ctypes.c_size_t(0)
        report = (ctypes.c_uint32 * 8)()  # details of a cooperative run's status
        code = self._run_native(entry, slots.ctypes.data, record.ctypes.data, 0, total_groups, threads, chunks,
                                ctypes.byref(address), report)
        if code:
            raise DispatchError(self._describe_fault(plan, code, address.value, tuple(report)))

    def _describe_fault(self, plan: LaunchPlan, code: int, address: int, report: tuple[int, ...] = ()) -> str:
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
            where = allocation.locate(address) if isinstance(allocation, _GuardedAllocation) else None
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
            pending.result()

    def describe(self) -> str:
        machine = platform.processor() or platform.machine()
        return f"cpu ({machine}, {self.threads} threads, {self.compiler.command[-1]})"

    def close(self) -> None:
        if self._queue is not None:
            self._queue.shutdown(wait=True)
        self._queue = None


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
