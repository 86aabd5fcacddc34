"""Buffers: types, zero-copy contents, explicit copies, storage modes, release, DLPack."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

import metalgpu
from conftest import load_kernel

COUNT = 37

METAL_SCALAR_TYPES = {
    "int": np.int32,
    "uint": np.uint32,
    "float": np.float32,
    "half": np.float16,  # a real float16 (the original mapped it to int16 by mistake)
    "char": np.int8,
    "uchar": np.uint8,
    "short": np.int16,
    "ushort": np.uint16,
    "long": np.int64,
    "ulong": np.uint64,
    "bool": np.bool_,
}

CTYPES = [ctypes.c_int, ctypes.c_uint, ctypes.c_float, ctypes.c_int8, ctypes.c_uint8, ctypes.c_int16,
          ctypes.c_uint16, ctypes.c_int32, ctypes.c_uint32, ctypes.c_int64, ctypes.c_uint64, ctypes.c_long,
          ctypes.c_bool]

NUMPY_TYPES = [np.float32, np.float16, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
               np.uint64, np.bool_, np.dtype("float32"), np.dtype("<i4")]


def assert_scalar_buffer(buffer, dtype, count=COUNT):
    dtype = np.dtype(dtype)
    assert buffer.dtype == dtype
    assert buffer.count == count
    assert len(buffer) == count
    assert buffer.nbytes == count * dtype.itemsize
    assert buffer.storage == "shared"
    assert buffer.contents.dtype == dtype
    assert buffer.contents.shape == (count,)


@pytest.mark.parametrize("name", list(METAL_SCALAR_TYPES))
def test_create_buffer_metal_type_name(iface, name):
    assert_scalar_buffer(iface.create_buffer(COUNT, name), METAL_SCALAR_TYPES[name])


@pytest.mark.parametrize("ctype", CTYPES, ids=lambda t: t.__name__)
def test_create_buffer_ctypes_type(iface, ctype):
    assert_scalar_buffer(iface.create_buffer(COUNT, ctype), np.dtype(ctype))


@pytest.mark.parametrize("dtype", NUMPY_TYPES, ids=lambda t: np.dtype(t).name)
def test_create_buffer_numpy_type(iface, dtype):
    assert_scalar_buffer(iface.create_buffer(COUNT, dtype), dtype)


@pytest.mark.parametrize(
    "name, component, width, stride",
    [
        ("float4", np.float32, 4, 16),
        ("float3", np.float32, 3, 16),  # Metal pads float3 to 16 bytes
        ("packed_float3", np.float32, 3, 12),
        ("float2", np.float32, 2, 8),
        ("int2", np.int32, 2, 8),
        ("uint4", np.uint32, 4, 16),
        ("half3", np.float16, 3, 8),
        ("half4", np.float16, 4, 8),
    ],
)
def test_create_buffer_vector_types(iface, name, component, width, stride):
    buffer = iface.create_buffer(COUNT, name)
    view = buffer.contents
    assert view.shape == (COUNT, width)
    assert view.dtype == np.dtype(component)
    assert view.strides == (stride, np.dtype(component).itemsize)
    assert buffer.nbytes == COUNT * stride
    assert buffer.count == COUNT and len(buffer) == COUNT


@pytest.mark.parametrize("name, kernel", [("float3", "weigh_float3"), ("packed_float3", "weigh_packed_float3")])
def test_vector3_layout_matches_the_kernel(iface, name, kernel):
    load_kernel(iface, "vectors.metal", kernel)
    points = iface.create_buffer(COUNT, name)
    values = np.arange(COUNT * 3, dtype=np.float32).reshape(COUNT, 3)
    points.contents[:] = values
    out = iface.create_buffer(COUNT, "float")
    iface.run_function(COUNT, [points, out])
    # Small integers: exact.
    np.testing.assert_array_equal(out.contents, values @ np.array([1, 10, 100], dtype=np.float32))


def test_float4_kernel_writes_components(iface):
    load_kernel(iface, "vectors.metal", "scale_float4")
    vectors = iface.create_buffer(COUNT, "float4")
    vectors.contents[:] = np.arange(COUNT * 4, dtype=np.float32).reshape(COUNT, 4)
    expected = vectors.contents * np.array([1, 2, 3, 4], dtype=np.float32)
    iface.run_function(COUNT, [vectors])
    np.testing.assert_array_equal(vectors.contents, expected)


def test_contents_is_zero_copy_both_ways(iface):
    load_kernel(iface, "buffers.metal", "double_it")
    src = iface.create_buffer(COUNT, "int")
    out = iface.create_buffer(COUNT, "int")
    out_view = out.contents  # taken before the kernel runs, never fetched again
    assert np.shares_memory(src.contents, src.contents)
    src.contents[:] = np.arange(COUNT)  # written through the view: the kernel must see it
    iface.run_function(COUNT, [src, out])
    np.testing.assert_array_equal(out_view, 2 * np.arange(COUNT))


def test_kernel_updates_in_place_visible_through_old_view(iface):
    load_kernel(iface, "buffers.metal", "increment")
    data = iface.array_to_buffer(np.arange(COUNT, dtype=np.int32))
    view = data.contents
    iface.run_function(COUNT, [data])
    iface.run_function(COUNT, [data])
    np.testing.assert_array_equal(view, np.arange(COUNT) + 2)


def test_read_returns_a_copy(iface):
    buffer = iface.array_to_buffer(np.arange(COUNT, dtype=np.int32))
    copy = buffer.read()
    assert not np.shares_memory(copy, buffer.contents)
    np.testing.assert_array_equal(copy, np.arange(COUNT))
    copy[0] = 999
    assert buffer.contents[0] == 0


def test_write_copies_in(iface):
    buffer = iface.create_buffer(COUNT, "float")
    source = np.linspace(0, 1, COUNT, dtype=np.float32)
    buffer.write(source)
    source[0] = 42.0  # the buffer holds its own copy
    np.testing.assert_array_equal(buffer.contents, np.linspace(0, 1, COUNT, dtype=np.float32))


@pytest.mark.parametrize("size", [COUNT - 1, COUNT + 1])
def test_write_wrong_size_is_argument_error(iface, size):
    buffer = iface.create_buffer(COUNT, "float")
    buffer.contents[:] = 7.0
    with pytest.raises(metalgpu.ArgumentError, match=rf"{size}|{COUNT}|{size * 4}|{COUNT * 4}"):
        buffer.write(np.zeros(size, dtype=np.float32))
    assert np.all(buffer.contents == 7.0), "a rejected write must leave the buffer untouched"


def test_private_storage(iface):
    load_kernel(iface, "buffers.metal", "double_it")
    src = iface.create_buffer(COUNT, "int", storage="private")
    out = iface.create_buffer(COUNT, "int", storage="private")
    assert src.storage == "private"
    assert src.count == COUNT and src.nbytes == COUNT * 4 and src.dtype == np.int32
    with pytest.raises(metalgpu.MetalError, match="private"):
        _ = src.contents
    src.write(np.arange(COUNT, dtype=np.int32))
    iface.run_function(COUNT, [src, out])
    np.testing.assert_array_equal(out.read(), 2 * np.arange(COUNT))
    np.testing.assert_array_equal(src.read(), np.arange(COUNT))


@pytest.mark.parametrize("storage", ["shared", "private"])
def test_a_new_buffer_reads_zero_where_released_ones_were(iface, storage):
    """Memory that released buffers held comes back (the CUDA driver hands it out again): a new buffer still reads
    zero, as a new MTLBuffer does."""
    for size in (3, 1000, 1 << 20):
        for _ in range(3):
            old = iface.create_buffer(size, "int", storage=storage)
            old.write(np.full(size, 0x3C003C00, dtype=np.int32))
            old.release()
        fresh = iface.create_buffer(size, "int", storage=storage)
        np.testing.assert_array_equal(fresh.read(), np.zeros(size, dtype=np.int32))


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8, np.float16, np.int64, np.bool_])
def test_array_to_buffer_keeps_dtype_and_values(iface, dtype):
    array = (np.arange(COUNT) % 5).astype(dtype)
    buffer = iface.array_to_buffer(array)
    assert buffer.dtype == np.dtype(dtype)
    assert buffer.count == COUNT
    assert buffer.storage == "shared"
    np.testing.assert_array_equal(buffer.contents, array)
    assert not np.shares_memory(buffer.contents, array)


def test_array_to_buffer_keeps_shape(iface):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    buffer = iface.array_to_buffer(array)
    assert buffer.count == 12 and buffer.nbytes == 48
    assert buffer.contents.shape == (3, 4)
    np.testing.assert_array_equal(buffer.contents, array)
    np.testing.assert_array_equal(buffer.read(), array)


def test_array_to_buffer_copies(iface):
    array = np.arange(COUNT, dtype=np.int32)
    buffer = iface.array_to_buffer(array)
    array[:] = -1
    np.testing.assert_array_equal(buffer.contents, np.arange(COUNT))


def test_array_to_buffer_from_non_contiguous_array(iface):
    array = np.arange(2 * COUNT, dtype=np.int32)[::2]
    buffer = iface.array_to_buffer(array)
    np.testing.assert_array_equal(buffer.contents, array)


def test_array_to_buffer_from_list(iface):
    buffer = iface.array_to_buffer([3, 1, 4, 1, 5])
    assert buffer.dtype.kind in "iu"
    np.testing.assert_array_equal(buffer.contents, [3, 1, 4, 1, 5])


def test_float64_array_is_argument_error(iface):
    with pytest.raises(metalgpu.ArgumentError, match="float64"):
        iface.array_to_buffer(np.zeros(4, dtype=np.float64))


@pytest.mark.parametrize("count", [0, -1])
def test_create_buffer_non_positive_count(iface, count):
    with pytest.raises(metalgpu.ArgumentError, match=str(count)):
        iface.create_buffer(count, "float")


def test_create_buffer_unknown_type_name(iface):
    with pytest.raises(metalgpu.ArgumentError, match="floot"):
        iface.create_buffer(4, "floot")


def test_release_is_idempotent(iface):
    buffer = iface.create_buffer(COUNT, "float")
    buffer.release()
    buffer.release()


def test_released_buffer_raises_everywhere(iface):
    load_kernel(iface, "buffers.metal", "increment")
    buffer = iface.create_buffer(COUNT, "int")
    buffer.release()
    with pytest.raises(metalgpu.BufferReleasedError):
        _ = buffer.contents
    with pytest.raises(metalgpu.BufferReleasedError):
        buffer.read()
    with pytest.raises(metalgpu.BufferReleasedError):
        buffer.write(np.zeros(COUNT, dtype=np.int32))
    with pytest.raises(metalgpu.BufferReleasedError):
        iface.run_function(COUNT, [buffer])
    # The interface is still usable.
    fresh = iface.array_to_buffer(np.zeros(COUNT, dtype=np.int32))
    iface.run_function(COUNT, [fresh])
    np.testing.assert_array_equal(fresh.contents, np.ones(COUNT))


def test_dlpack_shares_memory_with_numpy(iface):
    buffer = iface.array_to_buffer(np.arange(COUNT, dtype=np.float32))
    device_type, _ = buffer.__dlpack_device__()
    if device_type != 1:  # kDLCPU; a CUDA backend may export managed memory as a device array
        pytest.skip(f"buffer is exported as DLPack device type {device_type}, which numpy cannot import")
    array = np.from_dlpack(buffer)
    assert np.shares_memory(array, buffer.contents)
    np.testing.assert_array_equal(array, np.arange(COUNT))
    array[3] = 99.0
    assert buffer.contents[3] == 99.0


PLACEMENT_KERNELS = """
#include <metal_stdlib>
using namespace metal;
kernel void scale(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = 2.0f * x[i]; }
kernel void histogram(device const uint* values [[buffer(0)]], device atomic_uint* bins [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
    atomic_fetch_add_explicit(&bins[values[i] % 16], 1u, memory_order_relaxed);
}
"""


def test_usage_patterns_that_move_buffers_between_host_and_device(iface):
    """Round trips (host touches the buffer between dispatches), GPU-only loops, views held across dispatches and
    atomics, in the order that makes a GPU backend move the memory each way; every step checked against numpy."""
    iface.load_shader_from_str(PLACEMENT_KERNELS)
    n = 100_003
    rng = np.random.default_rng(7)
    x = iface.create_buffer(n, "float")
    for _ in range(4):  # round trips: numpy writes, kernel, numpy reads
        data = rng.random(n, dtype=np.float32)
        x.contents[:] = data
        iface.run_function(n, [x], "scale")
        np.testing.assert_array_equal(x.contents, 2 * data)
    if iface.backend == "cuda":  # what the round trips taught the backend: keep it in host memory
        assert x._allocation.remote
    expected = x.read()
    for _ in range(3):  # the GPU alone
        iface.run_function(n, [x], "scale")
        expected = 2 * expected
    np.testing.assert_array_equal(x.contents, expected)
    held = x.contents  # a view kept across dispatches, written and read without asking contents again
    for _ in range(3):
        data = rng.random(n, dtype=np.float32)
        held[:] = data
        iface.run_function(n, [x], "scale")
        np.testing.assert_array_equal(held, 2 * data)
    x.write(np.ones(n, dtype=np.float32))
    iface.run_function(n, [x], "scale")
    np.testing.assert_array_equal(x.read(), np.full(n, 2, dtype=np.float32))

    values = iface.create_buffer(n, "uint")
    bins = iface.create_buffer(16, "uint")
    for _ in range(4):  # atomics on a buffer the host resets and reads every time
        data = rng.integers(0, 2**32, n, dtype=np.uint32)
        values.contents[:] = data
        bins.contents[:] = 0
        iface.run_function(n, [values, bins], "histogram")
        np.testing.assert_array_equal(bins.contents, np.bincount(data % 16, minlength=16))
    # (atomics over the bus are slow: on cuda the histogram may have sent both buffers back to the GPU already)
    iface.run_function(n, [values, bins], "histogram")
    iface.run_function(n, [values, bins], "histogram")
    if iface.backend == "cuda":  # the GPU used them twice in a row: back on the device
        assert not bins._allocation.remote and not values._allocation.remote
    np.testing.assert_array_equal(bins.contents, 3 * np.bincount(data % 16, minlength=16))


SCATTERED_READS = """
#include <metal_stdlib>
using namespace metal;
kernel void gather_sum(device const float* big [[buffer(0)]], device float* out [[buffer(1)]],
                       constant uint& n [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    float s = 0.0f;
    for (uint k = 0; k < 64; ++k) s += big[(i * 64u + k * 1048573u) % n];
    out[i] = s;
}
"""


def test_a_kernel_that_rereads_a_host_written_buffer_gets_it_on_the_device(iface):
    """The host rewrites a 64 MB buffer before every dispatch, which on cuda first keeps it in host memory; this
    kernel then reads it scattered, 16M times, so over the bus it runs far longer than moving the buffer would
    take (about 10 ms): after that one dispatch the buffer lives on the GPU. Results are checked every time."""
    n, m = 16 << 20, 1 << 18
    iface.load_shader_from_str(SCATTERED_READS)
    big = iface.create_buffer(n, "float")
    out = iface.create_buffer(m, "float")
    rng = np.random.default_rng(11)
    index = (np.arange(m, dtype=np.int64)[:, None] * 64 + np.arange(64, dtype=np.int64)[None, :] * 1048573) % n
    for _ in range(3):
        data = rng.random(n, dtype=np.float32)
        big.contents[:] = data
        iface.run_function(m, [big, out, np.uint32(n)], "gather_sum")
        np.testing.assert_allclose(out.contents, data[index].sum(axis=1, dtype=np.float64), rtol=1e-5)
    if iface.backend == "cuda":
        assert big._allocation.keep_on_device and not big._allocation.remote


BFLOAT_KERNEL = """
#include <metal_stdlib>
using namespace metal;
kernel void widen(device const bfloat* in [[buffer(0)]], device float* out [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) { out[i] = float(in[i]); }
"""


def test_write_rounds_numbers_into_a_bfloat_buffer(iface):
    # 1 + 2**-8 is a tie between bfloat 1.0 and 1 + 2**-7 (to even: 1.0); 1 + 3 * 2**-8 rounds up to 1 + 2**-6
    values = np.array([1.5, 2.75, -3.0, 1 + 2**-8, 1 + 3 * 2**-8, 0.0], dtype=np.float64)
    expected = np.array([1.5, 2.75, -3.0, 1.0, 1 + 2**-6, 0.0], dtype=np.float32)
    buffer = iface.create_buffer(len(values), "bfloat")
    buffer.write(values)
    iface.load_shader_from_str(BFLOAT_KERNEL)
    iface.set_function("widen")
    out = iface.create_buffer(len(values), "float")
    iface.run_function(len(values), [buffer, out])
    np.testing.assert_array_equal(out.contents, expected)
    if buffer.dtype == np.uint16:  # no ml_dtypes: contents are the bit patterns, and patterns write as they are
        np.testing.assert_array_equal(buffer.contents, (expected.view(np.uint32) >> 16).astype(np.uint16))
        buffer.write(np.array([0x3F80] * len(values), dtype=np.uint16))
        iface.run_function(len(values), [buffer, out])
        np.testing.assert_array_equal(out.contents, np.ones(len(values), np.float32))
