"""The CUDA backend: the device, its memory and launches. MSL translated to CUDA C++ is compiled by NVRTC (nvrtc.py)
to a cubin for the device's own architecture, loaded and packed for launch by cuda_module.py, and launched through
NVIDIA's cuda-bindings (driver API) on one stream per Interface. Where buffers live is cuda_memory.py's business; a
batch runs as a CUDA graph (cuda_graph.py).

Asynchronous dispatches are ordered by the stream alone and carry no CUDA event: each is numbered in launch order,
and waiting for one synchronises the stream (so it waits for the dispatches launched before it, and for those
launched after it until the wait began), after which every number below the wait's is known done. Events are
recorded around each asynchronous dispatch only once ``done`` or ``gpu_time`` was asked of one (``tracking``), or
where the placement of its buffers needs its time.
"""
from __future__ import annotations

import ctypes
import itertools
import time
import weakref
from pathlib import Path

import numpy as np

from ..cache import CompileCache
from ..dispatch import Dispatch, LaunchPlan, RecordedBatch
from ..errors import BackendUnavailableError, DispatchError, OutOfMemoryError
from ..msl.abi import DEBUG_BYTES_COUNT, DEBUG_FAULT_FIELDS
from . import cuda_repeat
from .base import Allocation, Backend, Module
from .cuda_graph import DriverGraphs, GraphCache, PackedBatch
from .cuda_memory import ManagedAllocation, Placement
from .cuda_module import NEVER, REPEAT_PLACED_AT, CudaLaunch, CudaModule, pack_launch
from .nvrtc import NvrtcCompiler, cuda_bindings, start_compile_worker

_STICKY = {"CUDA_ERROR_ILLEGAL_ADDRESS", "CUDA_ERROR_LAUNCH_FAILED", "CUDA_ERROR_ILLEGAL_INSTRUCTION",
           "CUDA_ERROR_MISALIGNED_ADDRESS", "CUDA_ERROR_HARDWARE_STACK_ERROR", "CUDA_ERROR_ASSERT",
           "CUDA_ERROR_INVALID_PC", "CUDA_ERROR_INVALID_ADDRESS_SPACE", "CUDA_ERROR_LAUNCH_TIMEOUT"}


class CudaBackend(Backend):
    name = "cuda"
    target = "cuda"
    preferred_group_size = 256  # a full warp multiple that keeps several blocks per SM
    cuda_array_interface = True

    def __init__(self, device: int = 0, cache: CompileCache | None = None, debug: bool = False):
        self.driver, _ = cuda_bindings()
        self.poisoned: str | None = None  # the sticky error that made the context unusable
        self._cache = cache or CompileCache()
        self._launch_kernel, self._synchronize_stream = self.driver.cuLaunchKernel, self.driver.cuStreamSynchronize
        self.compiled_repeat = self.compiled_submit = None  # once cuda_repeat has them (see launch())
        self.stream = None
        driver = self.driver
        try:
            (err,) = driver.cuInit(0)
        except RuntimeError as error:  # libcuda is missing: no driver installed
            raise BackendUnavailableError(f"no NVIDIA driver: {error}") from None
        if err != driver.CUresult.CUDA_SUCCESS:
            raise BackendUnavailableError(f"no usable NVIDIA GPU: cuInit says {self._error_name(err)}")
        err, count = driver.cuDeviceGetCount()
        if err != driver.CUresult.CUDA_SUCCESS or count == 0:
            raise BackendUnavailableError("no NVIDIA GPU is visible")
        if not 0 <= device < count:
            raise BackendUnavailableError(f"there is no CUDA device {device}; this machine has {count}")
        err, self.device = driver.cuDeviceGet(device)
        self.check(err, "opening the device")
        start_compile_worker()  # NVRTC's worker loads while the context is made (not before: cuInit may fail)
        self.context = self._retain_context()
        major = self._device_attribute("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR")
        minor = self._device_attribute("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR")
        self.arch = f"sm_{major}{minor}"
        self.compiler = NvrtcCompiler(self.arch)
        self.max_threads_per_group = self._device_attribute("CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK")
        self.resident_threads = (self._device_attribute("CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT") *
                                 self._device_attribute("CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR"))
        err, name = driver.cuDeviceGetName(256, self.device)
        self.device_name = name.split(b"\0")[0].decode()
        err, self.stream = driver.cuStreamCreate(driver.CUstream_flags.CU_STREAM_NON_BLOCKING.value)
        self.check(err, "creating a stream")
        self.debug = debug
        self._unchecked: list = []     # bounds-checked dispatches whose record synchronize() still reads
        self._launches = 0             # bounds-checked launches so far: each one's number goes with its sizes
        self._events: list = []        # every event created, destroyed by close()
        self._spare_events: list = []  # events of finished dispatches, to reuse
        # Asynchronous dispatches in launch order: a dispatch numbered below _completed is known done.
        self._numbers = itertools.count(1)
        self._completed = 0
        self.tracking = False  # events around each asynchronous dispatch: done or gpu_time was asked for
        self.placement = Placement(self, device)
        self.graphs = GraphCache(DriverGraphs(driver, self.stream, self.check, lambda: cuda_repeat.extension,
                                              programmatic=major >= 9))
        self._entry_points = _driver_entry_points()
        if self._entry_points is not None:
            cuda_repeat.start(self._cache)

    def _retain_context(self):
        """The device's primary context, shared with CuPy and PyTorch for zero-copy exchange. After a kernel
        fault it stays unusable for the life of the process (a sticky error, which neither a reset nor a new context
        undoes), so a later Interface gets a context of its own instead."""
        driver = self.driver
        ok = driver.CUresult.CUDA_SUCCESS
        self._owns_context = False
        err, context = driver.cuDevicePrimaryCtxRetain(self.device)
        if err == ok and driver.cuCtxSetCurrent(context)[0] == ok and driver.cuCtxSynchronize()[0] == ok:
            return context
        if err == ok:
            driver.cuDevicePrimaryCtxRelease(self.device)
        err, context = driver.cuCtxCreate(None, 0, self.device)
        if err != ok:
            raise BackendUnavailableError(
                f"an earlier kernel fault ({self._error_name(err)}) left this GPU unusable for the rest of this "
                "process: CUDA cannot recover from such errors in-process (neither a context reset nor a new "
                "context works); restart the Python process to use the cuda backend again")
        self._owns_context = True
        return context

    # -- errors ----------------------------------------------------------------------------------------------
    def _error_name(self, err) -> str:
        return getattr(err, "name", str(err))

    def check(self, err, what: str) -> None:
        if err == self.driver.CUresult.CUDA_SUCCESS:
            return
        name = self._error_name(err)
        if name == "CUDA_ERROR_OUT_OF_MEMORY":
            raise OutOfMemoryError(f"{what}: the GPU is out of memory ({self._free_memory():,} bytes free)")
        if name in _STICKY:
            self.poisoned = name
            self.compiled_repeat = self.compiled_submit = None
            raise DispatchError(f"{what}: {name}. The CUDA context is now unusable (a sticky error); every later "
                                "call on this Interface fails. Create a new metalgpu.Interface to recover")
        raise DispatchError(f"{what}: {name}")

    def _ensure_usable(self) -> None:
        if self.poisoned:
            raise DispatchError(f"this Interface's CUDA context failed earlier ({self.poisoned}) and cannot run "
                                "anything more; create a new metalgpu.Interface to recover")

    def _device_attribute(self, name: str) -> int:
        err, value = self.driver.cuDeviceGetAttribute(getattr(self.driver.CUdevice_attribute, name), self.device)
        self.check(err, name)
        return value

    def function_attribute(self, function, name: str) -> int:
        err, value = self.driver.cuFuncGetAttribute(getattr(self.driver.CUfunction_attribute, name), function)
        self.check(err, name)
        return value

    # -- loading compiled modules ----------------------------------------------------------------------------
    def load(self, path: Path, kernels: tuple[int, ...]) -> Module:
        self._ensure_usable()
        return CudaModule(self, path.read_bytes(), kernels)

    # -- memory ----------------------------------------------------------------------------------------------
    def _free_memory(self) -> int:
        err, free, total = self.driver.cuMemGetInfo()
        return int(free) if err == self.driver.CUresult.CUDA_SUCCESS else -1

    def allocate(self, nbytes: int, storage: str) -> Allocation:
        self._ensure_usable()
        free = self._free_memory()
        # Over-subscribed managed memory can hang a shared GPU: refuse what does not fit.
        if 0 <= free < nbytes:
            raise OutOfMemoryError(f"cannot allocate {nbytes:,} bytes on {self.device_name}: {free:,} bytes free")
        return ManagedAllocation(self, nbytes, managed=(storage == "shared"))

    def free(self, allocation: ManagedAllocation) -> None:
        if self.stream is not None and not self.poisoned:  # a closed or failed context freed everything already
            # Buffer.release() waited for its dispatches; a buffer dropped while one ran did not, so wait here.
            self.driver.cuStreamSynchronize(self.stream)
            self.driver.cuMemFree(allocation.address)

    def copy_out(self, allocation: Allocation) -> np.ndarray:
        out = np.empty(allocation.nbytes, dtype=np.uint8)
        self.check(self.driver.cuMemcpyDtoH(out.ctypes.data, allocation.address, allocation.nbytes)[0], "read()")
        return out

    def copy_in(self, allocation: Allocation, data: np.ndarray) -> None:
        self.check(self.driver.cuMemcpyHtoD(allocation.address, data.ctypes.data, allocation.nbytes)[0], "write()")

    def host_access(self, allocation: Allocation) -> None:
        self.placement.host_access(allocation)

    # -- running ---------------------------------------------------------------------------------------------
    def launch(self, module: Module, kernel: int, plan: LaunchPlan, wait: bool) -> Dispatch:
        # Every line here runs on each dispatch: a repeated synchronous one costs two driver calls and a few tests.
        if self.poisoned:
            self._ensure_usable()
        launch = plan.packed
        if launch is None:
            launch = plan.packed = self._pack(plan, module, kernel)
        remote = None  # the host-kept buffers of this dispatch, for keep_on_device_if_slow() once it ran
        if launch.placed_at != self.placement.host_accesses:  # most dispatches: the host touched nothing since
            remote, launch.placed_at = self.placement.place_all(plan.allocations)
        bounds = None if module.debug_bytes is None else self._set_bounds(module, plan)
        # What the compiled repeat path may launch again: plans with nothing to place, check or free.
        repeatable = launch.placed_at >= 0 and bounds is None and not launch.device_constants
        launch.repeat_fields[REPEAT_PLACED_AT] = launch.placed_at if repeatable else NEVER
        if self.compiled_repeat is None and self._entry_points is not None and cuda_repeat.ready() is not None:
            host_accesses = self.placement.host_accesses_cell.ctypes.data
            extension = cuda_repeat.extension
            self.compiled_repeat = extension.bind_repeat(self._repeat_failed, *self._entry_points, host_accesses)
            if not self.tracking:
                self.compiled_submit = extension.bind_submit(self._repeat_failed, self._entry_points[0], host_accesses,
                                                             _CudaDispatch, self, self._numbers)
        if wait:  # no events, one synchronisation, messages built only on error
            started = time.perf_counter() if remote else 0.0
            err, = self._launch_kernel(*launch.arguments)
            if err:
                self.check(err, f"launching kernel '{plan.kernel_name}'")
            if launch.device_constants:
                self._free_after_launch(launch.device_constants)
            err, = self._synchronize_stream(self.stream)
            if err:
                self.check(err, f"kernel '{plan.kernel_name}'")
            if remote:
                self.placement.keep_on_device_if_slow(remote, time.perf_counter() - started)
            if bounds:
                self.check_bounds_record(bounds)
            return None
        driver = self.driver
        start = end = None
        if self.tracking or remote:  # remote: keep_on_device_if_slow() needs its time
            start, end = self._event(), self._event()
            driver.cuEventRecord(start, self.stream)
        err, = self._launch_kernel(*launch.arguments)
        self.check(err, f"launching kernel '{plan.kernel_name}'")
        if launch.device_constants:
            self._free_after_launch(launch.device_constants)
            plan.packed = None  # a batch's replay of this plan (debug=True) copies its constants again
        if end is not None:
            driver.cuEventRecord(end, self.stream)
        dispatch = (_CudaDispatch if end is None else _TimedCudaDispatch)(
            self, plan.kernel_name, next(self._numbers), start, end, launch, bounds, remote)
        if bounds:
            self._unchecked.append(dispatch)
        return dispatch

    def start_tracking(self) -> None:
        """done or gpu_time was asked of a dispatch without events: from now on each gets its own (the compiled
        path, which records none, leaves asynchronous dispatches to the Python path)."""
        self.tracking = True
        self.compiled_submit = None

    def wait_for(self, number: int, what: str) -> None:
        """Waits until the dispatch numbered ``number`` is done: synchronises the stream, unless that is known."""
        if number < self._completed:
            return
        mark = next(self._numbers)  # every dispatch numbered below it was launched before this wait
        self.check(self.driver.cuStreamSynchronize(self.stream)[0], what)
        self._completed = max(self._completed, mark)

    def finished(self, number: int) -> bool:
        """Whether the dispatch numbered ``number`` is known done, or the stream is idle."""
        if number < self._completed:
            return True
        mark = next(self._numbers)
        err, = self.driver.cuStreamQuery(self.stream)
        if err != self.driver.CUresult.CUDA_SUCCESS:
            return False
        self._completed = max(self._completed, mark)
        return True

    # -- batches ---------------------------------------------------------------------------------------------
    def submit_batch(self, batch: RecordedBatch, wait: bool) -> Dispatch:
        """A CUDA graph (cuda_graph.py); with bounds checks (debug=True), the dispatches one by one instead, each
        checked against its own buffers, so that an out-of-bounds access names its dispatch."""
        self._ensure_usable()
        packed = batch.packed  # made only for a batch without bounds checks: a replay need not look again
        if packed is None:
            if any(entry.module.debug_bytes is not None for entry in batch.entries):
                return super().submit_batch(batch, wait)
            packed = batch.packed = self._pack_batch(batch)
        accesses = self.placement.host_accesses
        if packed.placed_at != accesses:  # a replay after no host access skips this loop over every dispatch
            placed = accesses
            for entry, launch in zip(batch.entries, packed.launches):
                if launch.placed_at != accesses:  # as launch() places a plan's buffers
                    remote, launch.placed_at = self.placement.place_all(entry.plan.allocations)
                    repeatable = launch.placed_at >= 0 and not launch.device_constants
                    launch.repeat_fields[REPEAT_PLACED_AT] = launch.placed_at if repeatable else NEVER
                    if launch.placed_at != accesses:
                        placed = -1  # some buffers stay in host memory: placed again next time
            packed.placed_at = placed
        start = end = None
        if self.tracking:
            start, end = self._event(), self._event()
            self.driver.cuEventRecord(start, self.stream)
        self.graphs.submit(packed)
        if end is not None:
            self.driver.cuEventRecord(end, self.stream)
        dispatch = (_CudaDispatch if end is None else _TimedCudaDispatch)(
            self, f"batch of {len(packed.launches)} dispatches", next(self._numbers), start, end, what=packed.what)
        if wait:
            dispatch.wait()
        return dispatch

    def _pack_batch(self, batch: RecordedBatch) -> PackedBatch:
        launches, device_constants = [], []
        for entry in batch.entries:
            plan = entry.plan
            if plan.packed is None:
                plan.packed = self._pack(plan, entry.module, entry.kernel)
            launches.append(plan.packed)
            device_constants += plan.packed.device_constants
        names = [entry.plan.kernel_name for entry in batch.entries]
        shown = ", ".join(f"'{name}'" for name in dict.fromkeys(names))
        what = (f"a batch of {len(names)} dispatches (kernels {shown}; a CUDA graph does not say which of its "
                "kernels failed: under Interface(debug=True) a batch runs them one by one and names it)")
        packed = PackedBatch(launches, tuple(int(launch.repeat_fields[0]) for launch in launches), device_constants,
                             names, what)
        if device_constants:  # the graph reads them at every replay: freed, in stream order, with the batch
            finalizer = weakref.finalize(packed, _free_in_stream, weakref.ref(self), device_constants)
            finalizer.atexit = False  # the context goes with the process
        return packed

    def _repeat_failed(self, plan: LaunchPlan, code: int, waited: int) -> None:
        """The compiled repeat path's driver error, raised as the Python path raises it."""
        try:
            error = self.driver.CUresult(code)
        except ValueError:  # a code these bindings do not name
            error = f"CUDA error {code}"
        self.check(error, f"kernel '{plan.kernel_name}'" if waited else f"launching kernel '{plan.kernel_name}'")

    def _set_bounds(self, module: CudaModule, plan: LaunchPlan) -> tuple:
        """Before a bounds-checked launch: its buffer sizes and launch number, set in the stream so that a checked
        dispatch still running keeps its own. Returns what check_bounds_record() needs afterwards."""
        self._launches += 1
        sizes = np.zeros(DEBUG_BYTES_COUNT, dtype=np.uint64)  # mg_debug_bytes: each slot's bytes, the launch's number
        sizes[:len(plan.slot_bytes)], sizes[-1] = plan.slot_bytes, self._launches
        self.check(self.driver.cuMemcpyHtoDAsync(module.debug_bytes, sizes.ctypes.data, sizes.nbytes, self.stream)[0],
                   "setting the bounds checks")
        return module, plan, self._launches, sizes

    def check_bounds_record(self, bounds: tuple) -> None:
        """After a bounds-checked launch, given its (module, plan, launch number, sizes): raise DispatchError for
        the out-of-bounds access it recorded (and clear the record). The module keeps the first access of any of
        its launches; one that another launch made is left for that launch's own wait() or synchronize() to
        report. The access itself went to a scratch element, so the context is still sound."""
        module, plan, launch, _ = bounds
        driver = self.driver
        fault = np.zeros(len(DEBUG_FAULT_FIELDS), dtype=np.int64)  # mg_debug_fault
        self.check(driver.cuMemcpyDtoH(fault.ctypes.data, module.debug_fault, fault.nbytes)[0],
                   "reading the bounds checks")
        slot_plus_one, element, count, fault_launch = (int(value) for value in fault)
        if not slot_plus_one or fault_launch != launch:
            return
        self.check(driver.cuMemsetD8(module.debug_fault, 0, fault.nbytes)[0], "clearing the bounds checks")
        slot = slot_plus_one - 1
        where = plan.slot_params.get(slot, f"[[buffer({slot})]]")
        side = "past its end" if element >= count else "before its start"
        raise DispatchError(f"out-of-bounds access through {where}: element {element} is {side} (the buffer "
                            f"holds {count}); caught by debug=True, the kernel's other work was done and the "
                            "Interface stays usable")

    def _pack(self, plan: LaunchPlan, module: CudaModule, kernel: int) -> CudaLaunch:
        """The launch of a plan, built once: a plan without constants is reused by later dispatches."""
        return pack_launch(plan, module.functions[kernel], module.launch_layouts[kernel],
                           module.groups_per_block[kernel], module.static_shared[kernel], self.stream,
                           self.resident_threads, self._constant_copy)

    def _constant_copy(self, data: np.ndarray) -> int:
        """A device copy of a constant argument, in the stream (freed after the launch by _free_after_launch)."""
        driver = self.driver
        err, pointer = driver.cuMemAllocAsync(data.nbytes, self.stream)
        self.check(err, f"allocating {data.nbytes:,} bytes for a constant argument")
        self.check(driver.cuMemcpyHtoDAsync(pointer, data.ctypes.data, data.nbytes, self.stream)[0],
                   "copying a constant argument")
        return int(pointer)

    def _free_after_launch(self, device_constants: list) -> None:
        for pointer, _ in device_constants:
            self.driver.cuMemFreeAsync(pointer, self.stream)

    def _event(self):
        """Events live as long as the backend (destroyed by close()); finished dispatches hand theirs back."""
        if self._spare_events:
            return self._spare_events.pop()
        err, event = self.driver.cuEventCreate(0)
        self.check(err, "creating an event")
        self._events.append(event)
        return event

    def synchronize(self) -> None:
        self._ensure_usable()
        mark = next(self._numbers)
        self.check(self.driver.cuStreamSynchronize(self.stream)[0], "synchronize()")
        self._completed = max(self._completed, mark)
        unchecked, self._unchecked = self._unchecked, []
        for dispatch in unchecked:
            dispatch.wait()

    def describe(self) -> str:
        return f"cuda ({self.device_name}, {self.arch})"

    def close(self) -> None:
        self.compiled_repeat = self.compiled_submit = None
        if self.stream is None:
            return
        if not self.poisoned:  # a poisoned context can do nothing more, not even clean up
            self.driver.cuStreamSynchronize(self.stream)
            self.graphs.clear()
            for event in self._events:
                self.driver.cuEventDestroy(event)
            self.driver.cuStreamDestroy(self.stream)
        if self._owns_context:
            self.driver.cuCtxDestroy(self.context)
        elif not self.poisoned:
            self.driver.cuDevicePrimaryCtxRelease(self.device)
        self._events, self._spare_events = [], []
        self.stream = None


def _driver_entry_points() -> tuple[int, int] | None:
    """The addresses of cuLaunchKernel and cuStreamSynchronize in the driver cuda-bindings uses (Linux)."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
        return tuple(ctypes.cast(getattr(driver, name), ctypes.c_void_p).value
                     for name in ("cuLaunchKernel", "cuStreamSynchronize"))
    except (OSError, AttributeError):
        return None


def _free_in_stream(backend_ref: weakref.ref, device_constants: list) -> None:
    backend = backend_ref()
    if backend is not None and backend.stream is not None and not backend.poisoned:
        backend._free_after_launch(device_constants)


class _CudaDispatch(Dispatch):
    """An asynchronous dispatch (or batch): its number in launch order, and its events where it has them
    (_TimedCudaDispatch). The compiled path (cuda_repeat.cpp's numbered_dispatch) makes one without __init__,
    setting only its slots (_backend, kernel_name, _number), so that it allocates no attribute dict: everything
    else has its default here."""

    __slots__ = ("_backend", "kernel_name", "_number")
    _start = _end = _launch = _remote = _bounds = _error = _what = None
    _finished = False

    def __init__(self, backend: CudaBackend, kernel_name: str, number: int, start=None, end=None,
                 launch: CudaLaunch | None = None, bounds=None, remote=None, what: str | None = None):
        super().__init__(kernel_name)
        self._backend, self._number, self._start, self._end = backend, number, start, end
        self._launch = launch  # what the launch reads (its record, device copies of constants) lives until it ran
        self._remote = remote  # host-kept buffers it reached, for keep_on_device_if_slow() once it is done
        self._bounds = bounds  # (module, plan, launch number, sizes) of a checked dispatch, until its record is read
        self._error: DispatchError | None = None  # what the bounds checks found, raised by every wait()
        self._finished = False
        self._what = what

    @property
    def done(self) -> bool:
        backend = self._backend
        if self._finished or backend.stream is None:  # finished, or its Interface was closed
            return True
        if self._end is None:
            backend.start_tracking()
            return backend.finished(self._number)
        err, = backend.driver.cuEventQuery(self._end)
        return err == backend.driver.CUresult.CUDA_SUCCESS

    def wait(self) -> None:
        backend = self._backend
        if not self._finished and backend.stream is not None:
            what = self._what or f"kernel '{self.kernel_name}'"
            if self._end is None:
                backend.wait_for(self._number, what)
            else:
                backend.check(backend.driver.cuEventSynchronize(self._end)[0], what)
            self._finished = True
            if self._remote:
                seconds = self.gpu_time
                if seconds is not None:
                    backend.placement.keep_on_device_if_slow(self._remote, seconds)
        if self._bounds is not None:
            bounds, self._bounds = self._bounds, None
            try:
                backend.check_bounds_record(bounds)
            except DispatchError as error:
                self._error = error
        if self._error is not None:
            raise self._error

    @property
    def gpu_time(self) -> float | None:
        """Measured between events around the dispatch: a dispatch made before timing was asked for of any has
        none (None), and asking turns them on for the later ones (docs/api.md)."""
        backend = self._backend
        if self._end is None:
            backend.start_tracking()
            return None
        if not self.done or backend.stream is None:
            return None
        err, ms = backend.driver.cuEventElapsedTime(self._start, self._end)
        return ms / 1e3 if err == backend.driver.CUresult.CUDA_SUCCESS else None


class _TimedCudaDispatch(_CudaDispatch):
    """A dispatch with events (for gpu_time, done, or a host-kept buffer's timing): gives them back to the
    backend's pool when it dies. Only these have a finaliser, which would cost every dispatch a Python call."""

    def __del__(self):
        # No driver calls here: the garbage collector may run this at any point, even after close().
        if self._finished and self._backend.stream is not None:
            self._backend._spare_events += [self._start, self._end]
