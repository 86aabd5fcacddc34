"""What the CUDA backend knows of a compiled module and of one launch: the metadata it reads from a loaded cubin
(each kernel's bindings, launch record layout, threadgroups per block and limits), and the launch of a plan
packed once (the kernel's mg::launch_t record, cuLaunchKernel's arguments, and the same launch as
cuda_repeat.cpp reads it). Packing needs no GPU: pack_launch takes the driver's part (copying a constant to
device memory) as a function, so tests/test_cuda_launch.py runs it on any machine.
"""
from __future__ import annotations

import ctypes
import math
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..dispatch import LaunchPlan
from ..errors import ArgumentError
from ..msl.abi import BINDING_DTYPE, REPEAT_FIELDS, BindingInfo, CudaLaunchLayout, read_bindings
from .base import Module

if TYPE_CHECKING:
    from .cuda import CudaBackend

REPEAT_PLACED_AT = REPEAT_FIELDS.index("placed_at")
NEVER = 2**64 - 1  # a count of host accesses never reached: the compiled repeat path leaves the plan to Python
MAX_BLOCKS_YZ = 65535  # CUDA's limit on a grid's y and z blocks
# Shared memory past a kernel's last threadgroup array. Production MSL reads a few elements past the end of its
# threadgroup arrays and discards them (a merge step loading its next candidate), which Apple's GPUs allow; past the
# end of a block's shared memory CUDA faults instead, losing the context.
THREADGROUP_SLACK = 256
DEFAULT_SHARED_LIMIT = 48 * 1024  # a block's shared memory without opting in to more


class CudaModule(Module):
    """A cubin loaded into the backend's context, with the metadata of each kernel it holds."""

    def __init__(self, backend: CudaBackend, cubin: bytes, kernels: tuple[int, ...]):
        driver = backend.driver
        err, self.handle = driver.cuModuleLoadData(cubin)
        backend.check(err, "loading the compiled module")
        self.kernels = tuple(kernels)
        self.functions, self._bindings, self.groups_per_block, self.launch_layouts = {}, {}, {}, {}
        self.static_shared = {}
        self._max_threads, self._preferred = {}, {}
        for i in kernels:
            err, function = driver.cuModuleGetFunction(self.handle, f"mg_run_{i}".encode())
            backend.check(err, f"finding kernel {i} in the module")
            self.functions[i] = function
            self._bindings[i] = self._read_bindings(backend, i)
            # How many threadgroups one block may run (mg::for_each_group): 1 for kernels whose threads cooperate.
            self.groups_per_block[i] = self._read_ints(backend, f"mg_groups_per_block_{i}", 1)[0]
            # Each kernel's launch record is sized to it (metal/_launch_cuda.h).
            self.launch_layouts[i] = CudaLaunchLayout(*self._read_ints(backend, f"mg_layout_{i}", 3))
            # Threadgroup arrays declared in the kernel's body (__shared__ in the translation).
            self.static_shared[i] = backend.function_attribute(function, "CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES")
            # Its __launch_bounds__ ([[max_total_threads_per_threadgroup]]) and registers limit it.
            self._max_threads[i] = backend.function_attribute(function, "CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK")
            # The occupancy calculator's block size, at most the backend's preferred size: larger blocks reach the
            # same occupancy for light kernels but run streaming kernels slower (benchmarks/README.md); kernels
            # heavy on registers or shared memory get smaller ones.
            err, _, block = driver.cuOccupancyMaxPotentialBlockSize(function, None, 0, backend.preferred_group_size)
            self._preferred[i] = block if err == driver.CUresult.CUDA_SUCCESS and block > 0 else None
        # Compiled with bounds checks (debug=True): where the buffer sizes go and where a fault is recorded.
        self.debug_bytes = self.debug_fault = None
        err, pointer, _ = driver.cuModuleGetGlobal(self.handle, b"mg_debug_bytes")
        if err == driver.CUresult.CUDA_SUCCESS:
            self.debug_bytes = pointer
            err, self.debug_fault, _ = driver.cuModuleGetGlobal(self.handle, b"mg_debug_fault")
            backend.check(err, "reading the bounds-check record")

    def max_threads(self, kernel: int) -> int | None:
        return self._max_threads[kernel]

    def preferred_threads(self, kernel: int) -> int | None:
        return self._preferred[kernel]

    def bindings(self, kernel: int) -> list[BindingInfo]:
        return self._bindings[kernel]

    def _read_global(self, backend: CudaBackend, name: str, nbytes: int | None = None) -> bytes:
        """The bytes of the module's global ``name`` (all of them, or its first ``nbytes``)."""
        driver = backend.driver
        err, pointer, size = driver.cuModuleGetGlobal(self.handle, name.encode())
        backend.check(err, "reading kernel metadata")
        out = np.zeros(size if nbytes is None else nbytes, dtype=np.uint8)
        backend.check(driver.cuMemcpyDtoH(out.ctypes.data, pointer, out.nbytes)[0], "reading kernel metadata")
        return out.tobytes()

    def _read_ints(self, backend: CudaBackend, name: str, count: int) -> list[int]:
        return np.frombuffer(self._read_global(backend, name, 4 * count), dtype=np.int32).tolist()

    def _read_bindings(self, backend: CudaBackend, kernel: int) -> list[BindingInfo]:
        count = self._read_ints(backend, f"mg_info_count_{kernel}", 1)[0]
        if count == 0:
            return []
        return read_bindings(self._read_global(backend, f"mg_info_{kernel}", count * BINDING_DTYPE.itemsize), count)


class CudaLaunch:
    """One plan's launch, built once: cuLaunchKernel's ``arguments``, the ``memory`` they point into (kept alive
    with them), ``device_constants`` (pointer, bytes) of constant arguments that did not fit inline (the stream
    frees them after the launch: a plan with constant values is never cached, so it launches once), and the same
    launch as the compiled repeat path reads it (``repeat_fields``, uint64 in msl/abi.py's REPEAT_FIELDS order, at
    ``repeat_address``).
    ``placed_at`` is the backend's count of host accesses when the plan's buffers were last placed (-1: never)."""

    __slots__ = ("arguments", "device_constants", "memory", "repeat_fields", "repeat_address", "placed_at")

    def __init__(self, arguments: tuple, device_constants: list, memory: tuple, repeat_fields: np.ndarray):
        self.arguments, self.device_constants, self.memory = arguments, device_constants, memory
        self.repeat_fields = repeat_fields
        self.repeat_address = repeat_fields.ctypes.data
        self.placed_at = -1


def pack_launch(plan: LaunchPlan, function, layout: CudaLaunchLayout, groups_per_block: int, static_shared: int,
                stream, resident_threads: int, to_device: Callable[[np.ndarray], int]) -> CudaLaunch:
    """The launch of ``plan`` with the kernel ``function`` (its record laid out by ``layout``, ``static_shared``
    bytes of threadgroup arrays in its body) on ``stream``.
    ``to_device(data)`` copies a constant argument that cannot go inline to device memory and returns its
    address; ``resident_threads`` is how many threads the GPU keeps resident at once."""
    if max(plan.groups[1], plan.groups[2]) > MAX_BLOCKS_YZ:
        raise ArgumentError(f"grid {plan.grid} needs {plan.groups} threadgroups; CUDA allows at most {MAX_BLOCKS_YZ} "
                            "in y and z: use larger threadgroups or put the long dimension first")
    record = np.zeros((), dtype=layout.dtype)
    slots = plan.buffer_addresses[:layout.slots]  # build_plan binds no slot beyond the kernel's parameters
    device_constants = _place_constants(plan, record, slots, layout, to_device)
    record["slots"] = slots
    record["slot_bytes"] = plan.slot_bytes[:layout.slots]
    record["grid"], record["group"], record["groups"] = plan.grid, plan.group, plan.groups
    shared = 0
    offsets = record["threadgroup_offset"]
    for index, nbytes in enumerate(plan.threadgroup_bytes[:layout.threadgroups]):
        if nbytes:
            offsets[index] = shared
            shared += -(-nbytes // 16) * 16
    if (static_shared or shared) and static_shared + shared + THREADGROUP_SLACK <= DEFAULT_SHARED_LIMIT:
        shared += THREADGROUP_SLACK
    # Several threadgroups per block (kernels whose threads never wait for each other) keep more loads in flight,
    # but only pay while the fewer blocks still fill every SM twice over; a smaller grid keeps one.
    per = groups_per_block
    blocks_x = -(-plan.groups[0] // per)
    if blocks_x * plan.groups[1] * plan.groups[2] * math.prod(plan.group) < 2 * resident_threads:
        per, blocks_x = 1, plan.groups[0]
    record["groups_per_block"] = per
    params = (ctypes.c_void_p * 1)(record.ctypes.data)
    arguments = (function, blocks_x, plan.groups[1], plan.groups[2], *plan.group, shared, stream,
                 ctypes.addressof(params), 0)
    repeat_fields = np.array([int(function), int(stream), arguments[9], NEVER, *arguments[1:8]], dtype=np.uint64)
    return CudaLaunch(arguments, device_constants, (record, params), repeat_fields)


def _place_constants(plan: LaunchPlan, record: np.ndarray, slots: list[int], layout: CudaLaunchLayout,
                     to_device: Callable[[np.ndarray], int]) -> list:
    """Constant arguments go inline in the launch record when their slot may hold one and they fit, else into
    device memory (``to_device``). Returns the (pointer, bytes) of those."""
    used, mask, device_constants = 0, 0, []
    for index, data in plan.constants.items():
        start = -(-used // 16) * 16
        if (layout.inline_slots >> index) & 1 and start + data.nbytes <= layout.constant_bytes:
            record["constants"][start:start + data.nbytes] = data
            slots[index] = start
            mask |= 1 << index
            used = start + data.nbytes
            continue
        pointer = to_device(data)
        slots[index] = pointer
        device_constants.append((pointer, data))
    record["inline_mask"] = mask
    return device_constants
