"""The worker side of metalgpu.dask: what runs inside a task.

Each process keeps one Interface per (backend, device), made on first use and reused by every later task, and each
kernel compiled once per process, found again by its content hash (KernelSpec.digest). Binaries come from the
on-disk compile cache, which the processes of a machine share, so a worker compiles only what no process there
compiled before. Nothing here imports Dask: a task is a plain function call.
"""
from __future__ import annotations

import copy
import sys
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..buffer import Buffer
from ..dispatch import Allocation, ArrayAllocation
from ..errors import ArgumentError, MetalError
from ..interface import Interface
from ..library import Function, Library
from ..types import resolve_type
from .kernel import KernelSpec, Slot, default_grid

# Chunks at an address of this alignment are bound in place on the cpu backend (what the CPU's vector loads of
# float4 and the like want); others are copied once into a buffer.
IN_PLACE_ALIGNMENT = 16


@dataclass(frozen=True)
class BlockCall:
    """How one call of a kernel binds a block: ``arguments[i]`` says what slot ``slots[i]`` gets:
    ("chunk", k): the block's k-th chunked array; ("inout", k): an output that starts as a copy of it;
    ("output", None): an output, zeroed; ("value", v): a constant value, or a callable of the block's shape."""

    slots: tuple[Slot, ...]
    arguments: tuple[tuple[str, Any], ...]
    output_dtypes: tuple[np.dtype, ...]          # one per output, in slot order
    grid: Any = None                             # None, an int or tuple, or a callable of the block's shape
    threads_per_threadgroup: Any = None          # the same
    grid_dimensions: int = 1                     # of the default grid (kernel.grid_dimensions)
    output_size: Any = None                      # None: outputs take the block's shape; else elements (or callable)


class _DeviceArrayAllocation(Allocation):
    """The device memory of a CuPy (or other __cuda_array_interface__) chunk, bound in place on the cuda backend;
    it is device memory, so the managed-memory placement leaves it alone."""

    host = None
    managed = on_host = remote = touched_before_last_launch = keep_on_device = False

    def __init__(self, array: Any):
        self._array = array
        self.address = int(array.__cuda_array_interface__["data"][0])
        self.nbytes = int(array.nbytes)

    def free(self) -> None:
        self._array = None


def _is_device_array(chunk: Any) -> bool:
    return not isinstance(chunk, np.ndarray) and hasattr(chunk, "__cuda_array_interface__")


def _evaluate(value: Any, shape: tuple[int, ...]) -> Any:
    return value(shape) if callable(value) else value


class WorkerDevice:
    """One device of this process: its Interface, the kernels compiled for it, and the lock that lets one task
    drive it at a time (an Interface is not shared between threads; a CPU dispatch spreads over every core
    already, and a GPU runs one kernel of this queue at a time)."""

    def __init__(self, backend: str | None, device: int):
        self.interface = Interface(backend, device)
        self.lock = threading.Lock()
        self._functions: dict[str, Function | MetalError] = {}
        self._in_place = self.interface.backend == "cpu"  # the cpu backend reads any host memory

    def function(self, kernel: KernelSpec) -> Function:
        """The compiled kernel, once per process; a compile error is kept and raised again for later tasks."""
        found = self._functions.get(kernel.digest)
        if found is None:
            interface = self.interface
            try:
                library = Library(interface._backend, interface._cache, interface._options, kernel.source,
                                  kernel.filename, kernel.include_dirs)
                found = library.function(kernel.name, kernel.constants_dict)
            except MetalError as error:
                found = error
            self._functions[kernel.digest] = found
        if isinstance(found, MetalError):
            raise found
        return found

    def make_current(self) -> None:
        """A CUDA context is current per thread: make this Interface's current in the thread the task runs on."""
        backend = self.interface._backend
        context = getattr(backend, "context", None)
        if context is not None:
            backend.driver.cuCtxSetCurrent(context)

    # -- one block ---------------------------------------------------------------------------------------------
    def run(self, function: Function, call: BlockCall, chunks: tuple[Any, ...]) -> list[Any]:
        """Run the kernel over one block; its outputs, as arrays of the chunks' kind (numpy or CuPy)."""
        shape = tuple(np.shape(chunks[0]))
        on_device = any(_is_device_array(chunk) for chunk in chunks)
        if on_device and not self.interface._backend.cuda_array_interface:
            raise ArgumentError(f"a chunk is a CUDA array ({type(chunks[0]).__name__}), but this worker runs the "
                                f"{self.interface.backend} backend")
        if any(0 in np.shape(chunk) for chunk in chunks):  # Dask makes empty blocks; no grid is empty
            empty = shape if call.output_size is None else (0,)  # a reduction's empty block has no partials
            module = sys.modules["cupy"] if on_device else np
            return [module.zeros(empty, dtype) for dtype in call.output_dtypes]
        buffers: list[Any] = [None] * (max(slot.index for slot in call.slots) + 1)
        outputs: list[tuple[Buffer, Any, tuple[int, ...]]] = []  # (buffer, array bound in place or None, shape)
        temporary: list[Buffer] = []
        dtypes = iter(call.output_dtypes)
        try:
            for slot, (kind, value) in zip(call.slots, call.arguments):
                if kind == "chunk":
                    buffers[slot.index] = self._input(chunks[value], slot, temporary)
                elif kind == "value":
                    buffers[slot.index] = _evaluate(value, shape)
                else:
                    initial = chunks[value] if kind == "inout" else None
                    size = shape if call.output_size is None else (int(_evaluate(call.output_size,
                                                                                  int(np.prod(shape)))),)
                    buffer, array = self._output(size, next(dtypes), on_device, initial)
                    buffers[slot.index] = buffer
                    outputs.append((buffer, array, size))
            if on_device:  # CuPy made the blocks and zeroed the outputs on its own stream: let that finish first
                sys.modules["cupy"].cuda.get_current_stream().synchronize()
            grid = _evaluate(call.grid, shape) if call.grid is not None else default_grid(shape, call.grid_dimensions)
            group = _evaluate(call.threads_per_threadgroup, shape)
            self.interface._dispatch(function, grid, buffers, True, group, None)
            return [self._result(*output) for output in outputs]
        finally:
            for buffer in temporary:
                buffer.release()

    def _input(self, chunk: Any, slot: Slot, temporary: list[Buffer]) -> Buffer:
        mtype = resolve_type(slot.metal_type if slot.metal_type is not None else chunk.dtype)
        if _is_device_array(chunk):
            chunk = _contiguous_device_array(chunk)
            return Buffer(self.interface, _DeviceArrayAllocation(chunk), mtype, chunk.nbytes // mtype.itemsize,
                          "private")
        array = np.asarray(chunk)
        count = array.nbytes // mtype.itemsize
        if self._in_place and array.flags.c_contiguous and array.ctypes.data % IN_PLACE_ALIGNMENT == 0:
            return Buffer(self.interface, ArrayAllocation(array), mtype, count, "shared")
        buffer = self.interface.create_buffer(count, mtype)
        buffer.write(np.ascontiguousarray(array).view(mtype.scalar_dtype).reshape(-1))
        temporary.append(buffer)
        return buffer

    def _output(self, shape: tuple[int, ...], dtype: np.dtype, on_device: bool, initial: Any) -> tuple[Buffer, Any]:
        """A zeroed output (or a copy of ``initial``), and the array it is bound in place to: a CuPy array when the
        chunks are on the GPU, a numpy array on the cpu backend; None where the result must be copied out."""
        count = int(np.prod(shape))
        if on_device:
            cupy = sys.modules["cupy"]
            array = cupy.zeros(shape, dtype) if initial is None else cupy.array(initial, dtype=dtype, copy=True)
            allocation = _DeviceArrayAllocation(array)
            return Buffer(self.interface, allocation, resolve_type(dtype), count, "private"), array
        if self._in_place:  # a numpy array the kernel writes in place, returned as the block
            array = np.zeros(shape, dtype) if initial is None else np.array(initial, dtype=dtype, order="C")
            return Buffer(self.interface, ArrayAllocation(array), resolve_type(dtype), count, "shared"), array
        buffer = self.interface.create_buffer(count, dtype)
        buffer.write(np.zeros(count, dtype) if initial is None else np.asarray(initial, dtype=dtype).reshape(-1))
        return buffer, None

    def _result(self, buffer: Buffer, array: Any, shape: tuple[int, ...]) -> Any:
        if array is not None:  # the kernel wrote it in place
            return array
        result = buffer.read().reshape(shape)  # device memory: copied out, and freed now rather than by the GC
        buffer.release()
        return result


def _contiguous_device_array(chunk: Any) -> Any:
    """The chunk itself where its elements are contiguous (no strides given), else a contiguous copy."""
    if chunk.__cuda_array_interface__.get("strides") is None:
        return chunk
    return sys.modules["cupy"].ascontiguousarray(chunk)


_devices: dict[tuple[str | None, int], WorkerDevice] = {}
_devices_lock = threading.Lock()


def device_for(backend: str | None, device: int) -> WorkerDevice:
    """This process's WorkerDevice for (backend, device), made on first use. ``backend`` None is the process's best
    (``$METALGPU_BACKEND``, else cuda where a GPU is visible, else cpu); under dask-cuda each worker sees its own
    GPU as device 0 through CUDA_VISIBLE_DEVICES."""
    key = (backend, device)
    with _devices_lock:
        if key not in _devices:
            _devices[key] = WorkerDevice(backend, device)
        return _devices[key]


def run_block(kernel: KernelSpec, call: BlockCall, *chunks: Any, block_id: tuple[int, ...] | None = None) -> Any:
    """One task: the kernel over one block. One output is returned as an array, several as a tuple. A metalgpu error
    leaves as the same exception type with its fields, its message naming the block."""
    try:
        device = device_for(kernel.backend, kernel.device)
        with device.lock:
            device.make_current()
            results = device.run(device.function(kernel), call, chunks)
    except MetalError as error:
        raise in_chunk(error, f"kernel '{kernel.name}', block {block_id}", block_id) from None
    return results[0] if len(results) == 1 else tuple(results)


def run_flat(kernel: KernelSpec, call: BlockCall, values: Any, where: str) -> Any:
    """The kernel over ``values`` raveled (a reduction's step): its one output, flat."""
    flat = values.reshape(-1)
    try:
        device = device_for(kernel.backend, kernel.device)
        with device.lock:
            device.make_current()
            return device.run(device.function(kernel), call, (flat,))[0]
    except MetalError as error:
        raise in_chunk(error, f"kernel '{kernel.name}', {where}", None) from None


def in_chunk(error: MetalError, where: str, block_id: Any) -> MetalError:
    """A copy of ``error`` (same type, same fields) whose message starts with ``where``; ``block_id`` is kept as the
    field ``block``. Every metalgpu exception pickles with its fields and message, so it reaches the client whole."""
    annotated = copy.copy(error)
    annotated.args = (f"{where}: {error}", *error.args[1:])
    annotated.block = block_id
    return annotated
