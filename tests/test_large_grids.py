"""Grids of millions of threads, with partial threadgroups at the edges: every thread runs once and sees its own
builtins. On CUDA such grids take the launch where one block runs several threadgroups of a kernel whose threads
never wait for each other (mg::for_each_group), so these are its tests; smaller grids elsewhere take the other."""
from __future__ import annotations

import numpy as np
import pytest

SOURCE = """
#include <metal_stdlib>
using namespace metal;

kernel void builtins_1d(device uint4* out [[buffer(0)]],
                        uint id [[thread_position_in_grid]], uint group [[threadgroup_position_in_grid]],
                        uint local [[thread_position_in_threadgroup]], uint size [[threads_per_threadgroup]])
{
    out[id] = uint4(id, group, local, size);
}

kernel void builtins_2d(device uint4* out [[buffer(0)]], constant uint& width [[buffer(1)]],
                        uint2 id [[thread_position_in_grid]], uint2 group [[threadgroup_position_in_grid]],
                        uint2 local [[thread_position_in_threadgroup]], uint2 size [[threads_per_threadgroup]])
{
    const uint row = id.y * width + id.x;
    out[2 * row] = uint4(id, group);
    out[2 * row + 1] = uint4(local, size);
}

// Reads its inputs at the grid position, so the CUDA wrapper prefetches them (msl/analysis.py's streamed_inputs),
// yet the grid runs far past both: the prefetches must stay inside the buffers, and out of the inline constant.
kernel void short_inputs(device const float* in [[buffer(0)]], device const float* k [[buffer(1)]],
                         device float* out [[buffer(2)]], constant uint& n [[buffer(3)]],
                         uint id [[thread_position_in_grid]])
{
    if (id >= n) return;
    out[id] = in[id] + (id < 4 ? k[id] : 0.0f);
}

kernel void every_third_returns(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                                uint id [[thread_position_in_grid]])
{
    if (id % 3 == 0) return;
    out[id] = in[id] * 2.0f + 1.0f;
}
"""

SENTINEL = np.uint32(0xFFFFFFFF)


@pytest.fixture
def gpu(iface):
    iface.load_shader_from_string(SOURCE)
    return iface


def expected_axis(n: int, group: int):
    position = np.arange(n, dtype=np.uint32)
    group_id = position // group
    size = np.minimum(group, n - group_id * group).astype(np.uint32)  # Metal's partial edge threadgroups
    return position, group_id, position % group, size


@pytest.mark.parametrize("group", [None, 96, 1024])
def test_one_dimensional_grid_of_three_million(gpu, group):
    n = 3_000_007
    out = gpu.create_buffer(4 * n, "uint")
    out.contents[:] = SENTINEL
    gpu.run_function(n, [out], function_name="builtins_1d", threads_per_threadgroup=group)
    got = out.contents.reshape(n, 4)
    size = group or int(got[0, 3])  # the default threadgroup is the backend's choice; its first group is whole
    position, group_id, local, sizes = expected_axis(n, size)
    np.testing.assert_array_equal(got[:, 0], position)
    np.testing.assert_array_equal(got[:, 1], group_id)
    np.testing.assert_array_equal(got[:, 2], local)
    np.testing.assert_array_equal(got[:, 3], sizes)


def test_two_dimensional_grid_with_partial_groups_on_both_axes(gpu):
    width, height, group = (1 << 20) + 3, 3, (128, 2)
    out = gpu.create_buffer(8 * width * height, "uint")
    out.contents[:] = SENTINEL
    gpu.run_function((width, height), [out, width], function_name="builtins_2d", threads_per_threadgroup=group)
    got = out.contents.reshape(height, width, 2, 4)
    along_x, along_y = expected_axis(width, group[0]), expected_axis(height, group[1])
    expected = np.empty_like(got)
    # Record 0: position x, y and threadgroup x, y; record 1: position in the threadgroup x, y and its size x, y.
    for record, column, axis, value in [(0, 0, "x", 0), (0, 1, "y", 0), (0, 2, "x", 1), (0, 3, "y", 1),
                                        (1, 0, "x", 2), (1, 1, "y", 2), (1, 2, "x", 3), (1, 3, "y", 3)]:
        expected[:, :, record, column] = along_x[value][None, :] if axis == "x" else along_y[value][:, None]
    np.testing.assert_array_equal(got, expected)


def test_a_return_ends_only_its_own_thread(gpu):
    n = 4_000_001
    data = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    source, out = gpu.array_to_buffer(data), gpu.create_buffer(n, "float")
    out.contents[:] = -7.0
    gpu.run_function(n, [source, out], function_name="every_third_returns")
    expected = data * np.float32(2) + np.float32(1)
    expected[::3] = -7.0
    np.testing.assert_array_equal(out.contents, expected)


def test_inputs_shorter_than_the_grid(gpu):
    grid, n = 6_000_000, 1000
    data = np.arange(n, dtype=np.float32)
    extra = np.array([10, 20, 30, 40], dtype=np.float32)  # a constant argument: inline in the CUDA launch record
    source, out = gpu.array_to_buffer(data), gpu.create_buffer(n, "float")
    gpu.run_function(grid, [source, extra, out, np.uint32(n)], function_name="short_inputs")
    expected = data.copy()
    expected[:4] += extra
    np.testing.assert_array_equal(out.contents, expected)


def test_cuda_runs_several_threadgroups_per_block_only_for_large_grids(gpu, backend):
    """White-box: the tests above must reach the launch they are for, and a small grid must keep one threadgroup
    per block (fewer blocks would leave SMs idle)."""
    if backend != "cuda":
        pytest.skip("threadgroups per block belong to the cuda backend")
    chosen = {}
    for n in (3_000_007, 4096):
        out = gpu.create_buffer(4 * n, "uint")
        gpu.run_function(n, [out], function_name="builtins_1d", threads_per_threadgroup=256)
        plan = next(plan for plan in gpu._plans.plans() if plan.grid[0] == n)
        record, blocks_x = plan.packed.memory[0], plan.packed.arguments[1]
        chosen[n] = (int(record["groups_per_block"]), blocks_x)
    assert chosen[3_000_007] == (4, -(-3_000_007 // (256 * 4))), chosen
    assert chosen[4096] == (1, 4096 // 256), chosen
