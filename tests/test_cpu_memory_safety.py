"""Memory safety of the cpu backend without debug=True: a write past a buffer's end (a read there gives zeros, as
production kernels need), an access past the threadgroup memory given, or past a thread's stack raises
DispatchError naming the kernel and reaches no other memory; buffers keep
their alignment; many live buffers stay within the process's mapping limit."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import metalgpu
from metalgpu.backends import cpu_memory

pytestmark = pytest.mark.skipif("cpu" not in metalgpu.backends(), reason="needs the cpu backend")

SOURCE = """
#include <metal_stdlib>
using namespace metal;

kernel void write_past(device float* data [[buffer(0)]], constant uint& extra [[buffer(1)]],
                       uint id [[thread_position_in_grid]])
{
    data[id + extra] = float(id);
}

kernel void read_past(device const float* data [[buffer(0)]], device float* out [[buffer(1)]],
                      constant uint& extra [[buffer(2)]], uint id [[thread_position_in_grid]])
{
    out[id] = data[id + extra];
}

kernel void add_one(device float* data [[buffer(0)]], uint id [[thread_position_in_grid]])
{
    data[id] += 1.0f;
}

kernel void fill_threadgroup(device float* out [[buffer(0)]], threadgroup float* scratch [[threadgroup(0)]],
                             uint tid [[thread_position_in_threadgroup]], uint id [[thread_position_in_grid]])
{
    scratch[tid] = float(id);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[id] = scratch[tid];
}

kernel void big_private(device float* out [[buffer(0)]], constant uint& n [[buffer(1)]],
                        uint tid [[thread_position_in_threadgroup]], uint id [[thread_position_in_grid]])
{
    volatile float values[65536];  // 256 KiB: more than a cooperative thread's stack
    for (uint i = 0; i < n; ++i) values[i] = float(id + i);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float sum = 0.0f;
    for (uint i = 0; i < n; ++i) sum += values[i];
    out[id] = sum;
}
"""


@pytest.fixture(scope="module")
def gpu():
    with metalgpu.Interface(backend="cpu") as interface:
        interface.load_shader_from_string(SOURCE)
        yield interface


def check_still_usable(gpu):
    data = gpu.array_to_buffer(np.arange(100, dtype=np.float32))
    gpu.run_function(100, [data], function_name="add_one")
    np.testing.assert_array_equal(data.contents, np.arange(100, dtype=np.float32) + 1)


@pytest.mark.parametrize("extra", [64, 1000])  # 256 bytes and about a page past the end of 256 bytes
def test_a_write_past_the_end_raises_and_reaches_no_other_buffer(gpu, extra):
    before = gpu.array_to_buffer(np.full(64, 7, dtype=np.float32))
    data = gpu.create_buffer(64, "float")
    after = gpu.array_to_buffer(np.full(64, 9, dtype=np.float32))
    with pytest.raises(metalgpu.DispatchError, match="write_past"):
        gpu.run_function(64, [data, extra], function_name="write_past")
    np.testing.assert_array_equal(before.contents, np.full(64, 7, dtype=np.float32))
    np.testing.assert_array_equal(after.contents, np.full(64, 9, dtype=np.float32))
    check_still_usable(gpu)


def test_a_read_within_a_page_past_the_end_gives_zeros_and_reaches_no_other_buffer(gpu):
    """Production kernels read past the ends of their operands and discard what they read (MLX's steel GEMM loads
    whole tiles at a matrix's edge), which Apple's GPUs allow: the page after a buffer reads as zeros. A read
    cannot harm other memory; writes there fault (above), and debug=True faults on reads too (below)."""
    neighbour = gpu.array_to_buffer(np.full(1024, 5, dtype=np.float32))
    data = gpu.array_to_buffer(np.arange(256, dtype=np.float32) + 1)
    out = gpu.create_buffer(256, "float")
    gpu.run_function(256, [data, out, 256], function_name="read_past")  # 1 KiB past a 1 KiB buffer
    np.testing.assert_array_equal(out.contents, np.zeros(256, dtype=np.float32))
    gpu.run_function(256, [data, out, 0], function_name="read_past")  # in bounds: the same kernel works
    np.testing.assert_array_equal(out.contents, np.arange(256, dtype=np.float32) + 1)
    np.testing.assert_array_equal(neighbour.contents, np.full(1024, 5, dtype=np.float32))


def test_with_debug_a_read_past_the_end_raises_naming_the_parameter():
    with metalgpu.Interface(backend="cpu", debug=True) as gpu:
        gpu.load_shader_from_string(SOURCE)
        data = gpu.array_to_buffer(np.arange(256, dtype=np.float32))
        out = gpu.create_buffer(256, "float")
        with pytest.raises(metalgpu.DispatchError, match="read_past.*'data'"):
            gpu.run_function(256, [data, out, 256], function_name="read_past")
        gpu.run_function(256, [data, out, 0], function_name="read_past")
        np.testing.assert_array_equal(out.contents, np.arange(256, dtype=np.float32))


@pytest.mark.parametrize("count", [1, 3, 5, 16, 100, 1024, 1025, 100_000])
def test_buffers_are_aligned_and_end_at_most_15_bytes_before_the_guard_page(gpu, count):
    buffer = gpu.create_buffer(count, "float")
    address = buffer.contents.ctypes.data
    assert address % cpu_memory.START_ALIGNMENT == 0
    if count * 4 % 64 == 0:
        assert address % 64 == 0
    end = address + count * 4
    assert 0 <= -end % cpu_memory.PAGE < 16
    assert not buffer.contents.any()  # fresh memory reads zero


def test_threadgroup_memory_smaller_than_the_kernel_uses_raises(gpu):
    out = gpu.create_buffer(64, "float")
    with pytest.raises(metalgpu.DispatchError, match="fill_threadgroup"):
        gpu.run_function(64, [out], function_name="fill_threadgroup", threads_per_threadgroup=64,
                         threadgroup_memory={0: 16})
    gpu.run_function(128, [gpu.create_buffer(128, "float")], function_name="fill_threadgroup",
                     threads_per_threadgroup=64, threadgroup_memory={0: 256})
    gpu.run_function(64, [out], function_name="fill_threadgroup", threads_per_threadgroup=64,
                     threadgroup_memory={0: 256})
    np.testing.assert_array_equal(out.contents, np.arange(64, dtype=np.float32))
    check_still_usable(gpu)


def test_a_private_array_larger_than_the_stack_of_a_cooperative_thread_raises(gpu):
    out = gpu.create_buffer(64, "float")
    with pytest.raises(metalgpu.DispatchError, match="big_private.*stack"):
        gpu.run_function(64, [out, 60000], function_name="big_private", threads_per_threadgroup=32)
    check_still_usable(gpu)


def test_past_the_mapping_budget_small_buffers_share_slabs_and_stay_exact(gpu, monkeypatch):
    memory = cpu_memory.HOST_MEMORY
    monkeypatch.setattr(memory, "budget", memory.live_mappings + 2 * 10)
    monkeypatch.setattr(memory, "_warned", False)
    with pytest.warns(RuntimeWarning, match="share guarded slabs"):
        buffers = [gpu.array_to_buffer(np.full(100, i, dtype=np.float32)) for i in range(50)]
    assert memory.live_mappings <= memory.budget + 2  # the slabs themselves are mappings too
    for buffer in buffers:
        gpu.run_function(100, [buffer], function_name="add_one")
    for i, buffer in enumerate(buffers):
        assert buffer.contents.ctypes.data % (64 if i >= 10 else 16) == 0  # slab items are cache-line aligned
        np.testing.assert_array_equal(buffer.contents, np.full(100, i + 1, dtype=np.float32))
    big = gpu.create_buffer(cpu_memory.SLAB_ITEM_BYTES // 4 + 1, "float")  # large ones keep their guard page
    with pytest.raises(metalgpu.DispatchError, match="write_past"):
        gpu.run_function(1, [big, big.count + 16], function_name="write_past")


def test_released_buffers_give_their_mappings_back(gpu):
    memory = cpu_memory.HOST_MEMORY
    gc.collect()  # buffers of earlier tests, whose mappings would go back during this one
    start = memory.live_mappings
    buffers = [gpu.create_buffer(10, "int") for _ in range(100)]
    assert memory.live_mappings == start + 2 * 100
    view = buffers[0].contents
    for buffer in buffers:
        buffer.release()
    assert memory.live_mappings == start + 2  # the view still holds its buffer's memory
    del view
    assert memory.live_mappings == start


def test_threadgroup_memory_smaller_than_one_element_is_an_argument_error(gpu):
    gpu.load_shader_from_string(SOURCE.replace("threadgroup float* scratch", "threadgroup float4* scratch")
                                .replace("scratch[tid] = float(id);", "scratch[tid] = float4(float(id));")
                                .replace("out[id] = scratch[tid];", "out[id] = scratch[tid].x;"))
    try:
        with pytest.raises(metalgpu.ArgumentError, match="less than one 16-byte element"):
            gpu.run_function(1, [gpu.create_buffer(1, "float")], function_name="fill_threadgroup",
                             threadgroup_memory={0: 8})
        out = gpu.create_buffer(1, "float")
        gpu.run_function(1, [out], function_name="fill_threadgroup", threadgroup_memory={0: 16})
        assert out.contents[0] == 0
    finally:
        gpu.load_shader_from_string(SOURCE)
