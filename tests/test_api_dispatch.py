"""run_function: grids, builtin attributes, argument binding, async dispatch, kernel selection."""
from __future__ import annotations

import gc
import struct

import numpy as np
import pytest

import metalgpu
from conftest import load_kernel

# Room after the grid's cells: a thread outside the grid lands here (or aliases another cell).
PADDING = 1 << 16


def run_grid_ids(iface, grid, size3, **launch):
    width, height, depth = size3
    total = width * height * depth
    ids = iface.create_buffer(total + PADDING, "uint")
    hits = iface.create_buffer(total + PADDING, "uint")
    ids.contents[:] = 0xFFFFFFFF
    hits.contents[:] = 0
    iface.run_function(grid, [ids, hits, width, height], **launch)
    return ids.contents, hits.contents, total


def expected_ids(width, height, depth):
    z, y, x = np.meshgrid(np.arange(depth), np.arange(height), np.arange(width), indexing="ij")
    return (x + 1000 * y + 1000000 * z).astype(np.uint32).ravel()


GRIDS = [
    pytest.param(1000, (1000, 1, 1), id="int"),
    pytest.param((1000,), (1000, 1, 1), id="tuple1"),
    pytest.param((37, 23), (37, 23, 1), id="tuple2"),
    pytest.param((13, 7, 5), (13, 7, 5), id="tuple3"),
    pytest.param(metalgpu.MetalSize(1000), (1000, 1, 1), id="MetalSize1"),
    pytest.param(metalgpu.MetalSize(37, 23), (37, 23, 1), id="MetalSize2"),
    pytest.param(metalgpu.MetalSize(13, 7, 5), (13, 7, 5), id="MetalSize3"),
    pytest.param(1, (1, 1, 1), id="single_thread"),
]


@pytest.mark.parametrize("grid, size3", GRIDS)
def test_every_thread_runs_exactly_once(iface, grid, size3):
    load_kernel(iface, "dispatch.metal", "grid_ids")
    ids, hits, total = run_grid_ids(iface, grid, size3)
    np.testing.assert_array_equal(hits[:total], 1)
    np.testing.assert_array_equal(ids[:total], expected_ids(*size3))
    assert not hits[total:].any(), "a thread outside the grid ran"


@pytest.mark.parametrize("group", [1, 7, 64, (8, 4), (4, 2, 2), (13, 7, 5), (32, 32)])
def test_explicit_threadgroup_sizes_cover_the_grid(iface, group):
    load_kernel(iface, "dispatch.metal", "grid_ids")
    size3 = (13, 7, 5)
    ids, hits, total = run_grid_ids(iface, size3, size3, threads_per_threadgroup=group)
    np.testing.assert_array_equal(hits[:total], 1)
    np.testing.assert_array_equal(ids[:total], expected_ids(*size3))
    assert not hits[total:].any()


def cell_positions(grid):
    """thread_position_in_grid of every thread, in cell order (x fastest)."""
    width, height, depth = grid
    z, y, x = np.meshgrid(np.arange(depth), np.arange(height), np.arange(width), indexing="ij")
    return np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)


def builtin_model(grid, group):
    """What Metal reports for each thread of a dispatchThreads(grid, group), in cell order."""
    gid = cell_positions(grid)
    group = np.array(group)
    grid = np.array(grid)
    tid = gid % group
    group_pos = gid // group
    group_size = np.minimum(group, grid - group_pos * group)  # edge groups are partial
    return {
        "tid": tid,
        "group": group_pos,
        "group_size": group_size,
        "grid_size": np.broadcast_to(grid, gid.shape),
        "groups": np.broadcast_to(-(-grid // group), gid.shape),
    }


def run_builtins_3d(iface, grid, group):
    load_kernel(iface, "dispatch.metal", "builtins_3d")
    total = int(np.prod(grid))
    out = iface.create_buffer(total * 16, "uint")
    iface.run_function(grid, [out], threads_per_threadgroup=group)
    values = out.contents.reshape(total, 16).astype(np.int64)
    return {
        "tid": values[:, 0:3],
        "group": values[:, 3:6],
        "group_size": values[:, 6:9],
        "grid_size": values[:, 9:12],
        "groups": values[:, 12:15],
        "index": values[:, 15],
    }


def assert_thread_indices(reported, group):
    """thread_index_in_threadgroup: the linear index in full groups, unique and in range in every group."""
    tx, ty, tz = group
    tid = reported["tid"]
    full = np.all(reported["group_size"] == np.array(group), axis=1)
    linear = tid[:, 2] * tx * ty + tid[:, 1] * tx + tid[:, 0]
    np.testing.assert_array_equal(reported["index"][full], linear[full])
    assert reported["index"].max() < tx * ty * tz
    keys = [tuple(g) + (i,) for g, i in zip(reported["group"].tolist(), reported["index"].tolist())]
    assert len(set(keys)) == len(keys), "two threads of one threadgroup share a thread_index_in_threadgroup"


@pytest.mark.parametrize(
    "grid_arg, group_arg, grid, group",
    [
        ((37, 23), (8, 4), (37, 23, 1), (8, 4, 1)),
        ((13, 7, 5), (4, 2, 2), (13, 7, 5), (4, 2, 2)),
        (1000, 64, (1000, 1, 1), (64, 1, 1)),
    ],
    ids=["2d", "3d", "1d"],
)
def test_builtin_attributes_match_the_metal_model(iface, grid_arg, group_arg, grid, group):
    reported = run_builtins_3d(iface, grid_arg, group_arg)
    model = builtin_model(grid, group)
    for name, expected in model.items():
        np.testing.assert_array_equal(reported[name], expected, err_msg=name)
    assert_thread_indices(reported, group)


def test_builtins_with_default_threadgroup_are_consistent(iface):
    grid = (37, 23, 1)
    reported = run_builtins_3d(iface, (37, 23), None)
    gid = cell_positions(grid)
    nominal = reported["group_size"].max(axis=0)  # interior groups have the full size
    assert int(np.prod(nominal)) <= iface.maxThreadsPerGroup()
    np.testing.assert_array_equal(reported["group"] * nominal + reported["tid"], gid)
    assert np.all(reported["tid"] < reported["group_size"])
    np.testing.assert_array_equal(reported["grid_size"], np.broadcast_to(grid, gid.shape))
    assert_thread_indices(reported, tuple(int(n) for n in nominal))


def test_scalar_builtins_1d(iface):
    load_kernel(iface, "dispatch.metal", "builtins_1d")
    n, group = 1000, 64
    out = iface.create_buffer(n * 4, "uint")
    iface.run_function(n, [out], threads_per_threadgroup=group)
    values = out.contents.reshape(n, 4)
    gid = np.arange(n)
    np.testing.assert_array_equal(values[:, 0], gid % group)
    np.testing.assert_array_equal(values[:, 1], gid // group)
    np.testing.assert_array_equal(values[:, 2], np.minimum(group, n - (gid // group) * group))
    assert values[-1, 2] == 1000 - 960  # the last group has 40 threads
    np.testing.assert_array_equal(values[:, 3], n)


def test_none_skips_a_slot(iface):
    load_kernel(iface, "dispatch.metal", "skip_slot")
    a = iface.array_to_buffer(np.arange(100, dtype=np.int32))
    c = iface.create_buffer(100, "int")
    iface.run_function(100, [a, None, c])
    np.testing.assert_array_equal(c.contents, 3 * np.arange(100))


COEFFS = np.array([0.5, -1.25, 3.0], dtype=np.float32)
BIG = 2**40 + 3


def constant_args(kind):
    if kind == "python":
        return [7, 2.5, True, COEFFS, 3, BIG]
    if kind == "numpy":
        return [np.int32(7), np.float32(2.5), np.bool_(True), COEFFS, np.uint32(3), np.int64(BIG)]
    if kind == "bytes":
        return [struct.pack("=i", 7), struct.pack("=f", 2.5), b"\x01", COEFFS.tobytes(), struct.pack("=I", 3),
                struct.pack("=q", BIG)]
    if kind == "converted":  # each value converted to the parameter's declared type
        return [np.int64(7), np.float64(2.5), 1, COEFFS, np.int64(3), np.uint64(BIG)]
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["python", "numpy", "bytes", "converted"])
def test_constant_arguments(iface, kind):
    load_kernel(iface, "dispatch.metal", "echo_constants")
    out = iface.create_buffer(8, "float")
    big_out = iface.create_buffer(1, "long")
    i, f, b, coeffs, n, big = constant_args(kind)
    iface.run_function(1, [out, i, f, b, coeffs, n, big, big_out])
    np.testing.assert_array_equal(out.contents[:6], [7.0, 2.5, 1.0, 0.5, -1.25, 3.0])
    assert big_out.contents[0] == 2 * BIG


def test_constant_conversions(iface):
    load_kernel(iface, "dispatch.metal", "echo_constants")
    out = iface.create_buffer(8, "float")
    big_out = iface.create_buffer(1, "long")
    # int for a float&, float64 scalar for a float&, False for a bool&, a negative int for an int&.
    iface.run_function(1, [out, -7, 3, False, COEFFS, 1, np.int32(-5), big_out])
    np.testing.assert_array_equal(out.contents[:4], [-7.0, 3.0, 0.0, 0.5])
    assert big_out.contents[0] == -10
    iface.run_function(1, [out, 0, np.float64(0.25), np.bool_(False), COEFFS, 0, 0, big_out])
    assert out.contents[1] == 0.25


def test_constant_float_pointer_from_buffer(iface):
    load_kernel(iface, "dispatch.metal", "echo_constants")
    out = iface.create_buffer(8, "float")
    big_out = iface.create_buffer(1, "long")
    coeffs = iface.array_to_buffer(COEFFS)
    iface.run_function(1, [out, 1, 1.0, True, coeffs, 3, 0, big_out])
    np.testing.assert_array_equal(out.contents[3:6], COEFFS)


def test_async_dispatch_returns_a_handle(iface):
    load_kernel(iface, "buffers.metal", "double_it")
    src = iface.array_to_buffer(np.arange(1000, dtype=np.int32))
    out = iface.create_buffer(1000, "int")
    assert iface.run_function(1000, [src, out]) is None
    out.contents[:] = 0
    handle = iface.run_function(1000, [src, out], wait_for_completion=False)
    assert handle is not None
    handle.wait()
    assert handle.done
    assert handle.gpu_time is None or handle.gpu_time >= 0
    np.testing.assert_array_equal(out.contents, 2 * np.arange(1000))
    handle.wait()  # waiting again is harmless


def test_a_repeated_dispatch_refuses_a_buffer_released_since(iface):
    load_kernel(iface, "buffers.metal", "double_it")
    src = iface.array_to_buffer(np.arange(100, dtype=np.int32))
    out = iface.create_buffer(100, "int")
    iface.run_function(100, [src, out])
    out.release()
    with pytest.raises(metalgpu.BufferReleasedError):
        iface.run_function(100, [src, out])


def test_a_repeated_dispatch_writes_the_buffer_given_when_a_dropped_one_had_its_id(iface):
    """Repeated dispatches reuse a plan found by the ids of the buffers given. A buffer made right after another
    was dropped often gets the dropped one's id: the plan of the dropped one must be gone with it."""
    load_kernel(iface, "buffers.metal", "double_it")
    src = iface.array_to_buffer(np.arange(100, dtype=np.int32))
    for round_ in range(10):
        out = iface.create_buffer(100, "int")
        out.contents[:] = -1
        iface.run_function(100, [src, out])
        np.testing.assert_array_equal(out.contents, 2 * np.arange(100), err_msg=f"round {round_}")
        dropped = id(out)
        del out
        gc.collect()
        assert not any(dropped in key[4:] for key in iface._plans.table)


def test_values_for_device_and_constant_pointers_in_one_kernel(iface):
    """Constant values for a `device const` pointer and for `constant` parameters side by side (on cuda the first
    goes to device memory and the others inline in the launch record)."""
    iface.load_shader_from_str("""
    #include <metal_stdlib>
    using namespace metal;
    kernel void mix(device const float* table [[buffer(0)]], constant float& scale [[buffer(1)]],
                    constant float* offsets [[buffer(2)]], device float* out [[buffer(3)]],
                    uint i [[thread_position_in_grid]]) {
        out[i] = table[i] * scale + offsets[i % 2];
    }
    """)
    table = np.arange(8, dtype=np.float32)
    out = iface.create_buffer(8, "float")
    for scale in (2.0, 3.0):
        iface.run_function(8, [table, scale, np.array([10, 20], dtype=np.float32), out], function_name="mix")
        np.testing.assert_array_equal(out.contents, table * scale + np.tile([10, 20], 4))


@pytest.mark.parametrize("name", ["mix", "clamp", "dot", "abs", "max", "sqrt", "fma", "all"])
def test_a_kernel_may_be_named_like_a_metal_function(iface, name):
    # `using namespace metal;` makes metal::mix visible beside the user's ::mix, and NVRTC declares ::max, ::sqrt,
    # ::all: the wrappers must still find the kernel
    iface.load_shader_from_str(f"""
    #include <metal_stdlib>
    using namespace metal;
    kernel void {name}(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {{ out[i] = int(i) * 3; }}
    """)
    out = iface.create_buffer(16, "int")
    iface.run_function(16, [out], function_name=name)
    np.testing.assert_array_equal(out.contents, np.arange(16) * 3)


NO_INCLUDE = """
kernel void scale(device float4* v [[buffer(0)]], constant uint& n [[buffer(1)]], device half* h [[buffer(2)]],
                  uint i [[thread_position_in_grid]]) {
    packed_float3 p = packed_float3(1.0f, 2.0f, 3.0f);
    v[i] = v[i] * float(n) + float4(p[0], p[1], p[2], 0.0f);
    h[i] = half(float(i) * 0.5f);
}
"""


def test_a_kernel_needs_no_include_for_metal_type_names(iface):
    # Metal declares its scalar and vector type names globally: no #include, no using namespace metal
    iface.load_shader_from_str(NO_INCLUDE)
    v = iface.array_to_buffer(np.arange(16, dtype=np.float32).reshape(4, 4))
    h = iface.create_buffer(4, "half")
    iface.run_function(4, [v, 3, h], function_name="scale")
    np.testing.assert_array_equal(v.contents, np.arange(16).reshape(4, 4) * 3 + [1, 2, 3, 0])
    np.testing.assert_array_equal(h.contents, np.arange(4) * 0.5)


def test_fixed_width_integer_types(iface):
    load_kernel(iface, "fixed_width.metal", "fixed_width")
    n = 300
    record = np.dtype([("tail", np.int32), ("from", np.uint8), ("to", np.int8), ("delta", np.int16)])
    index = np.arange(n, dtype=np.uint16) * 211
    runs = iface.create_buffer(n, record)
    wide, signed_wide = iface.create_buffer(n, "ulong"), iface.create_buffer(n, "long")
    iface.run_function(n, [runs, iface.array_to_buffer(index), wide, signed_wide])
    ids = np.arange(n)
    out = runs.contents
    np.testing.assert_array_equal(out["tail"], -index.astype(np.int32))
    np.testing.assert_array_equal(out["from"], ((ids // 4 + 1) * 4).astype(np.uint8))  # wraps, as uint8_t does
    np.testing.assert_array_equal(out["to"], -(ids % 100))
    np.testing.assert_array_equal(out["delta"], (index.astype(np.int32) - 30000).astype(np.int16))
    np.testing.assert_array_equal(wide.contents, (ids.astype(np.uint64) << np.uint64(40)) | index)
    np.testing.assert_array_equal(signed_wide.contents, -(ids.astype(np.int64) << 33))


METAL_CONSTANTS = """
#include <metal_stdlib>
using namespace metal;
kernel void constants(device float* f [[buffer(0)]], device half* h [[buffer(1)]], device int* i [[buffer(2)]],
                      device uint* u [[buffer(3)]]) {
    f[0] = M_PI_F; f[1] = M_E_F; f[2] = M_SQRT2_F; f[3] = M_LN2_F; f[4] = FLT_MAX; f[5] = FLT_MIN; f[6] = FLT_EPSILON;
    h[0] = HALF_MAX; h[1] = HALF_MIN; h[2] = HALF_EPSILON; h[3] = M_PI_H;
    i[0] = INT_MAX; i[1] = INT_MIN; i[2] = SHRT_MIN; i[3] = CHAR_BIT;
    u[0] = UINT_MAX; u[1] = USHRT_MAX;
}
"""


def test_metal_math_and_limit_constants(iface):
    iface.load_shader_from_str(METAL_CONSTANTS)
    f, h = iface.create_buffer(7, "float"), iface.create_buffer(4, "half")
    i, u = iface.create_buffer(4, "int"), iface.create_buffer(2, "uint")
    iface.run_function(1, [f, h, i, u], function_name="constants")
    finfo, hinfo = np.finfo(np.float32), np.finfo(np.float16)
    np.testing.assert_array_equal(f.contents, np.array([np.pi, np.e, np.sqrt(2), np.log(2), finfo.max,
                                                        finfo.tiny, finfo.eps], dtype=np.float32))
    np.testing.assert_array_equal(h.contents, np.array([hinfo.max, hinfo.tiny, hinfo.eps, np.pi], dtype=np.float16))
    np.testing.assert_array_equal(i.contents, [2**31 - 1, -2**31, -2**15, 8])
    np.testing.assert_array_equal(u.contents, [2**32 - 1, 2**16 - 1])


SLOW_COPY = """
#include <metal_stdlib>
using namespace metal;
kernel void slow_copy(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                      constant uint& rounds [[buffer(2)]], uint id [[thread_position_in_grid]]) {
    float v = 0.0f;
    for (uint r = 0; r < rounds; ++r) v = fma(v, 0.5f, 1.0f);  // takes time: 1, 1.5, 1.75, ... exactly 2 from 25 on
    out[id] = in[id] + v;  // `in` is read at the end
}
"""


def test_a_buffer_dropped_during_an_asynchronous_dispatch_is_not_freed_under_it(iface):
    iface.load_shader_from_str(SLOW_COPY)
    n = 1 << 16
    values = iface.array_to_buffer(np.arange(n, dtype=np.float32))
    out = iface.create_buffer(n, "float")
    rounds = iface.array_to_buffer(np.array([1], dtype=np.uint32))
    iface.run_function(n, [values, out, rounds], function_name="slow_copy")  # a cached plan, as in a loop
    np.testing.assert_array_equal(out.contents, np.arange(n, dtype=np.float32) + 1)
    rounds.contents[0] = 5000
    dispatch = iface.run_function(n, [values, out, rounds], function_name="slow_copy", wait_for_completion=False)
    del values
    gc.collect()
    for _ in range(8):  # fresh allocations that would take the memory if it had been freed
        iface.array_to_buffer(np.full(n, -7.0, dtype=np.float32))
    dispatch.wait()
    np.testing.assert_array_equal(out.contents, np.arange(n, dtype=np.float32) + 2)


def test_synchronize_waits_for_every_dispatch(iface):
    load_kernel(iface, "buffers.metal", "increment")
    data = iface.array_to_buffer(np.zeros(1000, dtype=np.int32))
    handles = [iface.run_function(1000, [data], wait_for_completion=False) for _ in range(5)]
    iface.synchronize()
    assert all(handle.done for handle in handles)
    np.testing.assert_array_equal(data.contents, 5)


def test_function_name_argument_and_set_function(iface):
    load_kernel(iface, "buffers.metal")
    assert set(iface.function_names) == {"double_it", "increment"}
    src = iface.array_to_buffer(np.arange(50, dtype=np.int32))
    out = iface.create_buffer(50, "int")
    iface.set_function("increment")
    iface.run_function(50, [src, out], function_name="double_it")
    np.testing.assert_array_equal(out.contents, 2 * np.arange(50))
    iface.run_function(50, [src])  # the current function is still "increment"
    np.testing.assert_array_equal(src.contents, np.arange(50) + 1)
    iface.set_function("double_it")
    iface.run_function(50, [src, out])
    np.testing.assert_array_equal(out.contents, 2 * (np.arange(50) + 1))


def test_execution_width_and_max_threads(iface, backend):
    load_kernel(iface, "buffers.metal", "double_it")
    assert iface.threadExecutionWidth() == 32
    assert iface.maxThreadsPerGroup() >= 1
    if backend == "cpu":
        assert iface.maxThreadsPerGroup() == 1024


def test_context_manager(backend):
    with metalgpu.Interface(backend=backend) as gpu:
        load_kernel(gpu, "buffers.metal", "increment")
        data = gpu.array_to_buffer(np.arange(10, dtype=np.int32))
        gpu.run_function(10, [data])
        np.testing.assert_array_equal(data.read(), np.arange(10) + 1)


def test_close(backend):
    gpu = metalgpu.Interface(backend=backend)
    load_kernel(gpu, "buffers.metal", "increment")
    data = gpu.array_to_buffer(np.arange(10, dtype=np.int32))
    gpu.run_function(10, [data])
    gpu.close()


def test_two_interfaces_at_once(backend):
    first = metalgpu.Interface(backend=backend)
    second = metalgpu.Interface(backend=backend)
    try:
        load_kernel(first, "buffers.metal", "double_it")
        load_kernel(second, "buffers.metal", "increment")
        src = first.array_to_buffer(np.arange(100, dtype=np.int32))
        data = second.array_to_buffer(np.arange(100, dtype=np.int32))
        out = first.create_buffer(100, "int")
        second.run_function(100, [data])
        first.run_function(100, [src, out])
        second.run_function(100, [data])
        np.testing.assert_array_equal(out.contents, 2 * np.arange(100))
        np.testing.assert_array_equal(data.contents, np.arange(100) + 2)
        first.close()
        second.run_function(100, [data])  # closing one leaves the other working
        np.testing.assert_array_equal(data.contents, np.arange(100) + 3)
    finally:
        first.close()
        second.close()


def test_module_surface():
    names = metalgpu.backends()
    assert "cpu" in names
    assert all(isinstance(name, str) for name in names)
    assert isinstance(metalgpu.__version__, str) and metalgpu.__version__
    size = metalgpu.MetalSize(5)
    assert (size.width, size.height, size.depth) == (5, 1, 1)
    size = metalgpu.MetalSize(5, 6, 7)
    assert (size.width, size.height, size.depth) == (5, 6, 7)


def test_templated_kernel_by_host_name(iface):
    load_kernel(iface, "templates.metal")
    assert {"scale_float", "scale_int"} <= set(iface.function_names)
    floats = iface.array_to_buffer(np.arange(100, dtype=np.float32))
    ints = iface.array_to_buffer(np.arange(100, dtype=np.int32))
    iface.run_function(100, [floats, 2.5], function_name="scale_float")
    iface.set_function("scale_int")
    iface.run_function(100, [ints, 3])
    np.testing.assert_array_equal(floats.contents, np.arange(100, dtype=np.float32) * 2.5)  # exact: k * 2.5
    np.testing.assert_array_equal(ints.contents, np.arange(100) * 3)


def test_templated_kernel_decltype_instantiation(iface):
    load_kernel(iface, "templates_decltype.metal")
    assert {"offset_float", "offset_uint"} <= set(iface.function_names)
    floats = iface.array_to_buffer(np.arange(100, dtype=np.float32))
    uints = iface.array_to_buffer(np.arange(100, dtype=np.uint32))
    iface.run_function(100, [floats, 0.5], function_name="offset_float")
    iface.run_function(100, [uints, 7], function_name="offset_uint")
    np.testing.assert_array_equal(floats.contents, np.arange(100) + 0.5)
    np.testing.assert_array_equal(uints.contents, np.arange(100) + 7)


def test_macro_generated_kernels(iface):
    load_kernel(iface, "macros.metal")
    assert {"twice", "plus_one"} <= set(iface.function_names)
    src = iface.array_to_buffer(np.arange(100, dtype=np.float32))
    out = iface.create_buffer(100, "float")
    iface.run_function(100, [src, out], function_name="twice")
    np.testing.assert_array_equal(out.contents, np.arange(100) * 2)
    iface.run_function(100, [src, out], function_name="plus_one")
    np.testing.assert_array_equal(out.contents, np.arange(100) + 1)


HELPER_H = """
#pragma once
inline float helper_twice(float x) { return x * 2.0f; }
"""

INCLUDING_KERNEL = """
#include <metal_stdlib>
#include "helper.h"
using namespace metal;

kernel void use_helper(device float* data [[buffer(0)]], uint id [[thread_position_in_grid]])
{
    data[id] = helper_twice(data[id]);
}
"""


def test_include_next_to_the_shader_file(iface, tmp_path):
    (tmp_path / "helper.h").write_text(HELPER_H)
    shader = tmp_path / "kernel.metal"
    shader.write_text(INCLUDING_KERNEL)
    iface.load_shader(str(shader))
    iface.set_function("use_helper")
    data = iface.array_to_buffer(np.arange(10, dtype=np.float32))
    iface.run_function(10, [data])
    np.testing.assert_array_equal(data.contents, np.arange(10) * 2)


@pytest.mark.parametrize("constants, factor", [({0: 3}, 3), ({"multiplier": 5}, 5), ({0: -2}, -2)])
def test_function_constants(iface, constants, factor):
    load_kernel(iface, "function_constants.metal")
    iface.set_function("times_k", constants=constants)
    out = iface.create_buffer(100, "int")
    iface.run_function(100, [out])
    np.testing.assert_array_equal(out.contents, np.arange(100) * factor)


def test_function_constants_switch_between_specialisations(iface):
    load_kernel(iface, "function_constants.metal")
    out = iface.create_buffer(10, "int")
    for factor in (3, 4, 3):
        iface.set_function("times_k", constants={0: factor})
        iface.run_function(10, [out])
        np.testing.assert_array_equal(out.contents, np.arange(10) * factor)



SIXTEEN_BIT_SCALARS = """
#include <metal_stdlib>
using namespace metal;
kernel void widen(constant bfloat& b [[buffer(0)]], constant half& h [[buffer(1)]],
                  device float* out [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    out[0] = float(b);
    out[1] = float(h);
}
"""


def test_python_numbers_round_to_bfloat_and_half_by_the_parameters_type(iface):
    # 1.5 and 3.0 are exact in both; 1 + 2**-9 is 1.0 in bfloat (8 bits) but 1 + 2**-9 in half (11 bits)
    iface.load_shader_from_str(SIXTEEN_BIT_SCALARS)
    iface.set_function("widen")
    out = iface.create_buffer(2, "float")
    for value, as_bfloat in ((1.5, 1.5), (-3.0, -3.0), (1 + 2**-9, 1.0)):
        iface.run_function(1, [value, value, out])
        np.testing.assert_array_equal(out.contents, np.array([as_bfloat, np.float16(value)], np.float32))
