"""The CUDA backend's Python logic without a GPU (backends/cuda_module.py): a plan packed into its kernel's launch
record and cuLaunchKernel's arguments, and a module's metadata read through stand-ins for the driver's calls."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest

from metalgpu.backends.cuda_module import NEVER, THREADGROUP_SLACK, CudaModule, pack_launch
from metalgpu.dispatch import Allocation, build_plan
from metalgpu.errors import ArgumentError
from metalgpu.msl.abi import BINDING_FIELDS, BINDING_KINDS, REPEAT_FIELDS, SCALAR_KINDS, BindingInfo, CudaLaunchLayout
from metalgpu.msl.parser import parse
from metalgpu.msl.preprocess import preprocess
from metalgpu.msl.wrappers import cuda_launch_layout


class Memory(Allocation):
    def __init__(self, nbytes: int):
        self.host = np.zeros(nbytes, dtype=np.uint8)
        self.address, self.nbytes = self.host.ctypes.data, nbytes

    def free(self) -> None:
        self.host = None


@dataclass
class Kernel:
    """A kernel as build_plan sees it: out (device float*, slot 0), scale (constant float&, slot 1), table
    (device const float*, slot 2), scratch (threadgroup float*, threadgroup 0)."""

    name: str = "k"
    max_threads: int = 1024
    preferred_threads: int = 256
    absent_slots: frozenset = frozenset()
    bindings: list = field(default_factory=lambda: [
        BindingInfo(0, "buffer", 0, 4, False, False, "float", 4, 1),
        BindingInfo(1, "buffer", 1, 4, True, True, "float", 4, 1),
        BindingInfo(2, "buffer", 2, 4, True, False, "float", 4, 1),
        BindingInfo(3, "threadgroup", 0, 4, False, False, "float", 4, 1)])

    def describe_param(self, binding) -> str:
        return f"parameter {binding.param}"


LAYOUT = CudaLaunchLayout(3, 1, inline_slots=0b010)  # only `scale` may go inline


def _plan(grid, table, group=256):
    out = Memory(4 * 4096)
    plan = build_plan(Kernel(), [out, 2.5, table], grid, group, {0: 100}, 32 * 1024)
    return plan, out


def _pack(plan, resident_threads=1 << 20, static_shared=0):
    copies = []

    def to_device(data):
        copies.append(bytes(data))
        return 0xD000 + len(copies)

    launch = pack_launch(plan, 0xF00, LAYOUT, 4, static_shared, 0x5, resident_threads, to_device)
    return launch, copies


def test_a_plan_is_packed_into_its_record_and_launch():
    table = Memory(64)
    plan, out = _plan(4096, table)
    launch, copies = _pack(plan)
    record = launch.memory[0]
    assert list(record["slots"]) == [out.address, 0, table.address]  # `scale` at offset 0 of the constants
    assert list(record["slot_bytes"]) == [out.nbytes, 4, 64]
    assert record["inline_mask"] == 0b010 and copies == [] and launch.device_constants == []
    assert record["constants"][:4].view(np.float32)[0] == 2.5
    assert (list(record["grid"]), list(record["group"]), list(record["groups"])) == ([4096, 1, 1], [256, 1, 1],
                                                                                    [16, 1, 1])
    assert list(record["threadgroup_offset"]) == [0]
    # a small grid keeps one threadgroup per block; threadgroup memory rounded up to 16 bytes, then the slack
    assert record["groups_per_block"] == 1
    function, bx, by, bz, tx, ty, tz, shared, stream, params, extra = launch.arguments
    assert (function, bx, by, bz, tx, ty, tz, shared, stream, extra) == (0xF00, 16, 1, 1, 256, 1, 1,
                                                                        112 + THREADGROUP_SLACK, 0x5, 0)
    assert ctypes.c_void_p.from_address(params).value == record.ctypes.data  # the kernel's one parameter
    fields = dict(zip(REPEAT_FIELDS, launch.repeat_fields.tolist(), strict=True))
    assert fields == {"function": 0xF00, "stream": 0x5, "params": params, "placed_at": NEVER, "grid_x": 16,
                      "grid_y": 1, "grid_z": 1, "block_x": 256, "block_y": 1, "block_z": 1,
                      "shared_bytes": 112 + THREADGROUP_SLACK}
    assert launch.repeat_address == launch.repeat_fields.ctypes.data and launch.placed_at == -1


def test_shared_memory_gets_slack_past_its_end_where_the_default_limit_allows():
    """Kernels read a few elements past their threadgroup arrays (and discard them); CUDA would fault there."""
    with_memory, _ = _plan(4096, Memory(64))  # 100 bytes of [[threadgroup(0)]]
    assert _pack(with_memory, static_shared=0)[0].arguments[7] == 112 + THREADGROUP_SLACK
    assert _pack(with_memory, static_shared=4096)[0].arguments[7] == 112 + THREADGROUP_SLACK
    # past 48 KiB a kernel would have to opt in: no slack then, the launch stays valid
    assert _pack(with_memory, static_shared=48 * 1024 - 112)[0].arguments[7] == 112
    out = Memory(4 * 4096)
    without = build_plan(Kernel(), [out, 2.5, Memory(64)], 4096, 256, {0: 0}, 32 * 1024)
    assert _pack(without, static_shared=0)[0].arguments[7] == 0  # no threadgroup memory at all: none added
    assert _pack(without, static_shared=64)[0].arguments[7] == THREADGROUP_SLACK


def test_a_large_grid_runs_several_threadgroups_per_block():
    plan, _ = _plan(1 << 22, Memory(64))
    launch, _ = _pack(plan, resident_threads=2048)
    assert launch.memory[0]["groups_per_block"] == 4 and launch.arguments[1] == (1 << 22) // 256 // 4


def test_a_constant_that_cannot_go_inline_is_copied_to_device_memory():
    table = np.arange(16, dtype=np.float32)  # a value for `device const float*`: its slot never holds inline data
    plan, _ = _plan(4096, table)
    launch, copies = _pack(plan)
    assert copies == [table.tobytes()]
    assert launch.memory[0]["slots"][2] == 0xD001 and launch.memory[0]["inline_mask"] == 0b010
    assert [pointer for pointer, _ in launch.device_constants] == [0xD001]


def test_grids_beyond_cudas_limits_are_refused():
    plan, _ = _plan((1, 70000), Memory(64), group=1)
    with pytest.raises(ArgumentError, match="at most 65535 in y and z"):
        _pack(plan)


SOURCE = """#include <metal_stdlib>
using namespace metal;
kernel void first(device float4* out [[buffer(0)]], constant half& h [[buffer(3)]],
                  threadgroup int* scratch [[threadgroup(1)]], uint i [[thread_position_in_grid]]) {}
kernel void second(device const bfloat* in [[buffer(1)]], device uint* out [[buffer(0)]]) {}
"""


class FakeDriver:
    """The driver calls CudaModule makes, over module globals held in numpy arrays."""

    CUresult = SimpleNamespace(CUDA_SUCCESS=0)

    def __init__(self, symbols: dict[str, np.ndarray]):
        self.symbols = symbols

    def cuModuleLoadData(self, cubin):
        return 0, "handle"

    def cuModuleGetFunction(self, handle, name):
        return 0, name.decode()

    def cuModuleGetGlobal(self, handle, name):
        array = self.symbols.get(name.decode())
        return (1, None, 0) if array is None else (0, array.ctypes.data, array.nbytes)

    def cuMemcpyDtoH(self, destination, source, nbytes):
        ctypes.memmove(destination, source, nbytes)
        return (0,)

    def cuOccupancyMaxPotentialBlockSize(self, function, *args):
        return 0, 0, 128


def test_module_metadata_is_read_as_the_module_holds_it():
    """The binding records and launch layouts of each kernel, served as the CUDA module's globals would be: the
    same records the CPU module of the same source gives (the shared mg::binding_info)."""
    import metalgpu

    pre = preprocess(SOURCE, "<metadata>")
    kernels = parse(pre.tokens, pre.sources).kernels
    with metalgpu.Interface("cpu") as gpu:
        gpu.load_shader_from_str(SOURCE)
        expected = {i: gpu._lookup(kernel.host_name).bindings for i, kernel in enumerate(kernels)}
    symbols = {}
    for i, kernel in enumerate(kernels):
        layout = cuda_launch_layout(kernel)
        rows = [[getattr(b, name) for name in BINDING_FIELDS] for b in expected[i]]
        for row in rows:
            row[1], row[6] = BINDING_KINDS.index(row[1]), SCALAR_KINDS.index(row[6])
        symbols[f"mg_info_{i}"] = np.array(rows + [[-1] * 9], dtype=np.int32)  # sized beyond its count, as NVRTC may
        symbols[f"mg_info_count_{i}"] = np.array([len(rows)], dtype=np.int32)
        symbols[f"mg_groups_per_block_{i}"] = np.array([4 - 3 * i], dtype=np.int32)
        symbols[f"mg_layout_{i}"] = np.array([layout.slots, layout.threadgroups, layout.inline_slots], np.int32)
    backend = SimpleNamespace(driver=FakeDriver(symbols), preferred_group_size=256,
                              check=lambda err, what: None if err == 0 else pytest.fail(what),
                              function_attribute=lambda function, name: 1024)
    module = CudaModule(backend, b"cubin", (0, 1))
    assert {i: module.bindings(i) for i in (0, 1)} == expected
    assert [module.launch_layouts[i] for i in (0, 1)] == [cuda_launch_layout(kernel) for kernel in kernels]
    assert module.launch_layouts[0] == CudaLaunchLayout(4, 2, inline_slots=0b1000)
    assert module.groups_per_block == {0: 4, 1: 1}
    assert (module.max_threads(0), module.preferred_threads(1)) == (1024, 128)
    assert module.functions == {0: "mg_run_0", 1: "mg_run_1"}
    assert module.debug_bytes is None  # compiled without bounds checks


class LaunchingDriver:
    """The driver calls CudaBackend.launch and its Placement make, recorded; memory is host memory."""

    CUresult = SimpleNamespace(CUDA_SUCCESS=0)
    CUmemLocationType = SimpleNamespace(CU_MEM_LOCATION_TYPE_DEVICE="device", CU_MEM_LOCATION_TYPE_HOST="host")
    CUmem_advise = SimpleNamespace(**{name: name for name in (
        "CU_MEM_ADVISE_SET_PREFERRED_LOCATION", "CU_MEM_ADVISE_SET_ACCESSED_BY",
        "CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION", "CU_MEM_ADVISE_UNSET_ACCESSED_BY")})
    CUmemAttach_flags = SimpleNamespace(CU_MEM_ATTACH_GLOBAL=SimpleNamespace(value=1))

    def __init__(self):
        self.calls, self.memory = [], []

    class CUmemLocation:
        type = id = None

    def _record(self, name, *args):
        self.calls.append((name, *args))
        return (0,)

    def cuLaunchKernel(self, *args):
        return self._record("launch", *args)

    def cuStreamSynchronize(self, stream):
        return self._record("sync", stream)

    def cuMemPrefetchAsync(self, address, nbytes, location, flags, stream):
        return self._record("prefetch", address, location.type)

    def cuMemAdvise(self, address, nbytes, advice, location):
        return self._record("advise", address, advice)

    def cuMemAllocManaged(self, nbytes, flags):
        self.memory.append(np.zeros(nbytes, dtype=np.uint8))
        return 0, self.memory[-1].ctypes.data

    def cuMemAllocAsync(self, nbytes, stream):
        self.memory.append(np.zeros(nbytes, dtype=np.uint8))
        return 0, self.memory[-1].ctypes.data

    def cuMemcpyHtoDAsync(self, destination, source, nbytes, stream):
        ctypes.memmove(destination, source, nbytes)
        return self._record("copy", destination)

    def cuMemFreeAsync(self, pointer, stream):
        return self._record("free", pointer)

    def cuMemFree(self, pointer):
        return (0,)

    def cuMemGetInfo(self):
        return 0, 1 << 30, 1 << 30


def _backend():
    """A CudaBackend over LaunchingDriver, with what its constructor would have set up."""
    from metalgpu.backends.cuda import CudaBackend
    from metalgpu.backends.cuda_memory import Placement

    backend = object.__new__(CudaBackend)
    driver = LaunchingDriver()
    backend.driver, backend.poisoned, backend.stream, backend.debug = driver, None, 0x5, False
    backend._launch_kernel, backend._synchronize_stream = driver.cuLaunchKernel, driver.cuStreamSynchronize
    backend.compiled_repeat, backend._entry_points, backend.resident_threads = None, None, 1 << 20
    backend._events, backend._spare_events, backend._unchecked, backend._launches = [], [], [], 0
    backend.placement = Placement(backend, 0)
    module = SimpleNamespace(functions={0: 0xF00}, launch_layouts={0: LAYOUT}, groups_per_block={0: 1},
                             static_shared={0: 0}, debug_bytes=None)
    return backend, driver, module


def _names(driver) -> list[str]:
    names, driver.calls[:] = [call[0] for call in driver.calls], []
    return names


def test_a_launch_places_buffers_once_and_arms_the_repeat_path():
    backend, driver, module = _backend()
    out, table = backend.allocate(4 * 4096, "shared"), backend.allocate(64, "shared")
    plan = build_plan(Kernel(), [out, 2.5, table], 4096, 256, {0: 100}, 32 * 1024)
    backend.launch(module, 0, plan, True)
    assert _names(driver) == ["prefetch", "prefetch", "launch", "sync"]  # new memory goes to the device once
    launch = plan.packed
    assert launch.placed_at == 0 and launch.repeat_fields[REPEAT_FIELDS.index("placed_at")] == 0
    backend.launch(module, 0, plan, True)
    assert _names(driver) == ["launch", "sync"]  # nothing touched since: nothing placed
    backend.host_access(out)  # numpy reads it: it comes back in one prefetch
    assert _names(driver) == ["prefetch", "sync"] and backend.placement.host_accesses == 1
    # touched by the host before its previous dispatch too: kept in host memory, so placed at every dispatch
    backend.launch(module, 0, plan, True)
    assert _names(driver) == ["advise", "advise", "launch", "sync"] and out.remote
    assert launch.placed_at == -1 and launch.repeat_fields[REPEAT_FIELDS.index("placed_at")] == NEVER
    backend.launch(module, 0, plan, True)  # the GPU used it twice with no host access between: back to the device
    assert _names(driver) == ["advise", "advise", "prefetch", "launch", "sync"] and not out.remote
    assert launch.placed_at == 1 and launch.repeat_fields[REPEAT_FIELDS.index("placed_at")] == 1


def test_a_launch_with_constants_in_device_memory_frees_them_and_never_repeats():
    backend, driver, module = _backend()
    out = backend.allocate(4 * 4096, "shared")
    plan = build_plan(Kernel(), [out, 2.5, np.arange(16, dtype=np.float32)], 4096, 256, {0: 100}, 32 * 1024)
    backend.launch(module, 0, plan, True)
    assert _names(driver) == ["copy", "prefetch", "launch", "free", "sync"]
    assert plan.packed.repeat_fields[REPEAT_FIELDS.index("placed_at")] == NEVER
