"""The CPU backend: MSL translated to C++, compiled by the system C++ compiler into a shared object, run on all
cores. Threadgroups are shared out by a pool of native threads (cpu_guard.cpp), which also guards every call so that
a crashing kernel raises DispatchError instead of killing the interpreter."""
from __future__ import annotations

import ctypes
import hashlib
import mmap
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..cache import CompileCache
from ..dispatch import Dispatch, LaunchPlan
from ..errors import BackendUnavailableError, DispatchError, MetalError, OutOfMemoryError
from .base import Allocation, Backend, BindingInfo, CompileOptions, CompilerFailed, Module

INCLUDE_DIR = Path(__file__).resolve().parent.parent / "msl" / "include"
GUARD_SOURCE = Path(__file__).resolve().parent / "cpu_guard.cpp"
STATUS_DEADLOCK, STATUS_NO_STACK = 1001, 1002  # issue 5: mirrors mg::coop::status
PARALLEL_THRESHOLD = 1 << 15  # threads in a grid below which one OS thread is faster than waking the pool
ALIGNMENT = 64


def find_compiler() -> list[str]:
    """The C++ compiler command: $CXX, else g++/clang++/c++ on PATH, else the `ziglang` package."""
    if os.environ.get("CXX"):
        return shlex.split(os.environ["CXX"])
    for name in ("g++", "clang++", "c++"):
        path = shutil.which(name)
        if path:
            return [path]
    try:
        import ziglang  # noqa: F401  (the `compiler` extra: a C++ compiler from the package index)
        return [sys.executable, "-m", "ziglang", "c++"]
    except ImportError:
        pass
    raise BackendUnavailableError(
        "the cpu backend needs a C++17 compiler and found none: install g++ or clang++ "
        "(Debian/Ubuntu: apt install g++; macOS: xcode-select --install), set $CXX, "
        "or pip install 'metalgpu[compiler]' for one from the package index")


PRELUDE = "#include <metal_stdlib>\n#include <metal/_launch_cpu.h>\n"  # what every translation starts with


def _compile_flags(options: CompileOptions) -> list[str]:
    flags = ["-std=c++17", "-O3", "-fPIC", "-fvisibility=hidden", "-march=native", "-w", "-DMG_TARGET_CPU=1"]
    if platform.machine() in ("x86_64", "AMD64"):
        flags.append("-mprefer-vector-width=512")
    if options.fast_math:
        # Metal's default is fast math. NaN and infinity stay meaningful (isnan, isinf work) while glibc still
        # gets to offer its vectorised math (it checks __FAST_MATH__).
        flags += ["-ffast-math", "-fno-finite-math-only", "-D__FAST_MATH__=1", "-DMG_FAST_MATH=1"]
    return flags


@lru_cache(maxsize=1)
def _cpu_identity() -> str:
    """What -march=native depends on."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line for line in info if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return f"{platform.machine()} {platform.system()} {hashlib.sha256(flags.encode()).hexdigest()[:16]}"


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


class _BindingRecord(ctypes.Structure):
    """Mirrors mg::binding_info."""

    _fields_ = [(name, ctypes.c_int32) for name in
                ("param", "kind", "index", "elem_size", "is_const", "is_reference", "scalar_kind", "scalar_size",
                 "lanes")]


_KINDS = ("buffer", "threadgroup", "builtin")
_SCALAR_KINDS = ("other", "signed", "unsigned", "float", "bool")


class _CpuModule(Module):
    def __init__(self, path: Path, kernel_count: int):
        self._library = ctypes.CDLL(str(path))
        self.entry_points = [ctypes.cast(self._library[f"mg_run_{i}"], ctypes.c_void_p).value
                             for i in range(kernel_count)]
        self._bindings = [self._read_bindings(i) for i in range(kernel_count)]

    def _read_bindings(self, kernel: int) -> list[BindingInfo]:
        info = self._library[f"mg_info_{kernel}"]
        info.restype = ctypes.POINTER(_BindingRecord)
        info.argtypes = [ctypes.POINTER(ctypes.c_int32)]
        count = ctypes.c_int32(0)
        records = info(ctypes.byref(count))
        return [BindingInfo(r.param, _KINDS[r.kind], r.index, r.elem_size, bool(r.is_const), bool(r.is_reference),
                            _SCALAR_KINDS[r.scalar_kind], r.scalar_size, r.lanes)
                for r in (records[i] for i in range(count.value))]

    def bindings(self, kernel: int) -> list[BindingInfo]:
        return self._bindings[kernel]


class CpuBackend(Backend):
    name = "cpu"
    target = "cpu"

    def __init__(self, device: int = 0, cache: CompileCache | None = None, debug: bool = False):
        if device != 0:
            raise BackendUnavailableError(f"the cpu backend has one device (0), not {device}")
        self.compiler = find_compiler()
        self.threads = _thread_count()
        self._cache = cache or CompileCache()
        self._queue: ThreadPoolExecutor | None = None  # one thread: dispatches run in submission order
        self._pending: Future | None = None
        self._lock = threading.Lock()
        self._prelude_usable: bool | None = None  # GCC precompiled headers work with this compiler
        self._prelude_builds: dict[str, subprocess.Popen] = {}
        self._prelude_paths: dict[CompileOptions, tuple] = {}
        self._run_native = self._load_native_runner()
        self.debug = debug

    # -- compiling -------------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        binary = shutil.which(self.compiler[0]) or self.compiler[0]
        try:
            stat = os.stat(binary)
            identity = f"{os.path.realpath(binary)} {stat.st_size} {stat.st_mtime_ns}"
        except OSError:
            identity = binary
        return f"cpu {' '.join(self.compiler[1:])} {identity} {_cpu_identity()}"

    def compile(self, source: str, options: CompileOptions) -> bytes:
        prelude = self._precompiled_prelude(options)
        try:
            return self._compile(source, options, prelude)
        except CompilerFailed:
            if prelude is None:
                raise
        finally:
            if prelude is None:
                self._start_prelude_build(options)  # after this compile, so the two do not compete
        # GCC's precompiled headers are fragile (a .gch from another header version, or a compiler that crashes
        # loading it): a failure with one is retried without, and a success then stops using it.
        binary = self._compile(source, options, None)
        self._prelude_usable = False
        return binary

    def _compile(self, source: str, options: CompileOptions, prelude: Path | None = None) -> bytes:
        """Source to a shared object (pure). ``prelude`` is a header holding PRELUDE; when GCC finds its
        precompiled ``.gch`` beside it, the emulation headers are not parsed again (most of a small kernel's
        compile time)."""
        with tempfile.TemporaryDirectory(prefix="metalgpu-") as folder:
            folder = Path(folder)
            command = [*self.compiler, *_compile_flags(options), "-I", str(INCLUDE_DIR)]
            if prelude is not None:
                command += ["-include", str(prelude)]
            (folder / "module.cpp").write_text(source)
            command += ["-c", str(folder / "module.cpp"), "-o", str(folder / "module.o")]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise CompilerFailed(done.stderr + done.stdout, tuple(command))
            # Linked apart from the fast-math compile: a fast-math link adds crtfastmath.o, whose constructor
            # would switch the whole Python process to flushing subnormals to zero (numpy included).
            link = [*self.compiler, "-shared", "-pthread", str(folder / "module.o"), "-o", str(folder / "module.so")]
            done = subprocess.run(link, capture_output=True, text=True)
            if done.returncode != 0:
                raise CompilerFailed(done.stderr + done.stdout, tuple(link))
            return (folder / "module.so").read_bytes()

    def _precompiled_prelude(self, options: CompileOptions) -> Path | None:
        """The prelude header whose GCC precompiled form sits beside it, or None while there is none.

        The first compile on a machine goes on without it and then starts building it in the background (a few
        seconds, once per compiler, flags and header version), so no compile waits for it."""
        if self._prelude_usable is None:
            version = subprocess.run([*self.compiler, "--version"], capture_output=True, text=True).stdout
            self._prelude_usable = "clang" not in version and "zig" not in " ".join(self.compiler)
        if not self._prelude_usable:
            return None
        from ..library import headers_checksum

        key = CompileCache.key("cpu-prelude-pch", self.fingerprint(), repr(options), headers_checksum())
        try:
            folder = self._cache.artifact_folder()
        except OSError:
            return None
        header, precompiled = folder / f"{key}.h", folder / f"{key}.h.gch"
        self._prelude_paths[options] = (key, header, precompiled)
        return header if precompiled.exists() and header.exists() else None

    def _start_prelude_build(self, options: CompileOptions) -> None:
        """Build the precompiled headers in a detached compiler process, renamed into place only when complete
        so that a compile never sees half a file."""
        if options not in self._prelude_paths:
            return
        key, header, precompiled = self._prelude_paths[options]
        if key in self._prelude_builds or precompiled.exists():
            return
        temporary = header.with_name(f"{key}.{os.getpid()}.tmp")
        header_temporary = header.with_name(f"{key}.{os.getpid()}.h")
        header_temporary.write_text(PRELUDE)
        os.replace(header_temporary, header)
        command = [*self.compiler, *_compile_flags(options), "-I", str(INCLUDE_DIR), "-x", "c++-header",
                   str(header), "-o", str(temporary)]
        self._prelude_builds[key] = CompileCache.build_artifact(command, temporary, precompiled)

    def load(self, path: Path, kernel_count: int) -> Module:
        return _CpuModule(path, kernel_count)

    def _load_native_runner(self):
        source = GUARD_SOURCE.read_text()
        key = CompileCache.key("cpu-guard", self.fingerprint(), source)
        options = CompileOptions(fast_math=False)
        try:
            entry, _ = self._cache.get_or_build(key, lambda: (self._compile(source, options), {}))
        except CompilerFailed as failure:
            raise BackendUnavailableError(f"the C++ compiler {self.compiler[0]} does not work:\n{failure.log}")
        run = ctypes.CDLL(str(entry.path)).mg_parallel_run
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
            # Laid out as mg::dispatch_t (metal/_launch_cpu.h): grid, group, groups, threadgroup_bytes[31].
            plan.packed = (np.array((*plan.grid, *plan.group, *plan.groups, *plan.threadgroup_bytes), np.uint32),
                           np.array(plan.buffer_addresses, dtype=np.uint64))
        record, slots = plan.packed
        buffers = plan.live_buffers()  # held until the kernel has run: a buffer dropped meanwhile stays allocated

        def run() -> float:
            started = time.perf_counter()
            self._run_groups(entry, slots, record, plan, buffers)
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

    def _run_groups(self, entry: int, slots: np.ndarray, record: np.ndarray, plan: LaunchPlan, buffers: list) -> None:
        total_groups = plan.groups[0] * plan.groups[1] * plan.groups[2]
        total_threads = plan.grid[0] * plan.grid[1] * plan.grid[2]
        threads = 1 if total_threads < PARALLEL_THRESHOLD else min(self.threads, total_groups)
        # Several chunks per thread even out threadgroups of unequal cost; the native pool hands them out.
        chunks = min(total_groups, 4 * threads) if threads > 1 else 1
        address = ctypes.c_size_t(0)
        report = (ctypes.c_uint32 * 8)()  # issue 5: details of a cooperative run's status
        code = self._run_native(entry, slots.ctypes.data, record.ctypes.data, 0, total_groups, threads, chunks,
                                ctypes.byref(address), report)
        if code:
            raise DispatchError(self._describe_fault(plan, buffers, code, address.value, tuple(report)))

    def _describe_fault(self, plan: LaunchPlan, buffers: list, code: int, address: int,
                        report: tuple[int, ...] = ()) -> str:
        # issue 5: statuses of the cooperative runner (metal/_cooperative_cpu.h), not signals
        if code == STATUS_DEADLOCK:
            returned, total, gx, gy, gz = report[:5]
            return (f"kernel '{plan.kernel_name}': barrier deadlock: {returned} of {total} threads of threadgroup "
                    f"({gx},{gy},{gz}) returned while the others wait at a barrier. Every thread of a threadgroup "
                    "must reach each threadgroup_barrier; the interface is still usable")
        if code == STATUS_NO_STACK:
            return (f"kernel '{plan.kernel_name}': cannot allocate fiber stacks for a threadgroup of "
                    f"{plan.group[0] * plan.group[1] * plan.group[2]} threads on the cpu backend")
        name = signal.Signals(code).name if code in signal.Signals._value2member_map_ else f"signal {code}"
        for buffer, param in zip(buffers, plan.buffer_params):
            allocation = buffer._allocation
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
        return f"cpu ({platform.processor() or platform.machine()}, {self.threads} threads, {self.compiler[-1]})"

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
