"""A buffer's element type against the kernel parameter it binds: the pairs a user cannot mean raise ArgumentError
naming the parameter and both types; the reinterpretations production kernels rely on stay allowed; Buffer.view
reinterprets explicitly, without a copy; arrays of structs are checked element by element.
The kernels are tests/kernels/element_types.metal (test_cuda_translation.py compiles them for CUDA too)."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import metalgpu
from conftest import load_kernel

KERNELS = "element_types.metal"


def run(iface, kernel, buffers, grid=4):
    iface.run_function(grid, buffers, function_name=kernel)


@pytest.fixture
def gpu(iface):
    return load_kernel(iface, KERNELS)


# -- refused: another kind or width of scalar --------------------------------------------------------------------

@pytest.mark.parametrize("kernel, given, wanted", [
    ("plus_one", np.arange(4, dtype=np.int32), "float"),          # int for float, same width
    ("plus_one", np.arange(4, dtype=np.float16), "float"),        # half for float
    ("plus_one", np.arange(4, dtype=np.int64), "float"),
    ("negate_int", np.arange(4, dtype=np.int64), "int"),          # numpy's default int for an int*
    ("negate_int", np.arange(4, dtype=np.float32), "int"),
    ("half_to_float", np.arange(4, dtype=np.float32), "half"),
    ("bfloat_to_float", np.arange(4, dtype=np.float16), "bfloat"),  # both 2-byte floats, not the same format
])
def test_another_scalar_kind_or_width_is_refused(gpu, kernel, given, wanted):
    buffer = gpu.array_to_buffer(given)
    out = gpu.create_buffer(4, "float")
    held = metalgpu.types.metal_type_of_array(given).name
    with pytest.raises(metalgpu.ArgumentError) as caught:
        run(gpu, kernel, [buffer, out] if kernel != "negate_int" else [buffer])
    message = str(caught.value)
    assert f"kernel '{kernel}' parameter" in message
    assert f"points at {wanted} " in message and f"holds {held} " in message
    assert f"view('{wanted}')" in message


def test_refused_dispatch_leaves_the_interface_usable(gpu):
    out = gpu.create_buffer(4, "float")
    with pytest.raises(metalgpu.ArgumentError):
        run(gpu, "plus_one", [gpu.array_to_buffer(np.arange(4, dtype=np.int32)), out])
    run(gpu, "plus_one", [gpu.array_to_buffer(np.arange(4, dtype=np.float32)), out])
    assert out.contents.tolist() == [1, 2, 3, 4]


# -- allowed: lanes, signedness, bytes, bfloat bits ---------------------------------------------------------------

def test_scalar_buffer_for_a_vector_parameter_and_the_reverse(gpu):
    values = np.arange(16, dtype=np.float32)
    out = gpu.create_buffer(4, "float")
    run(gpu, "sum_lanes4", [gpu.array_to_buffer(values), out])
    assert out.contents.tolist() == values.reshape(4, 4).sum(axis=1).tolist()  # exact: small integers

    vectors = gpu.create_buffer(1, "float4")
    vectors.contents[:] = [[1, 2, 3, 4]]
    run(gpu, "plus_one", [vectors, out])
    assert out.contents.tolist() == [2, 3, 4, 5]


def test_signed_and_unsigned_of_one_width_pair(gpu):
    values = gpu.array_to_buffer(np.array([1, 2, 3, 4], dtype=np.uint32))
    run(gpu, "negate_int", [values])
    assert values.contents.tolist() == [2**32 - 1, 2**32 - 2, 2**32 - 3, 2**32 - 4]


def test_byte_buffers_bind_to_anything(gpu):
    raw = gpu.create_buffer(16, "uchar")
    raw.contents[:] = np.frombuffer(np.array([0.5, 1, 2, 3], np.float32).tobytes(), np.uint8)
    out = gpu.create_buffer(4, "float")
    run(gpu, "plus_one", [raw, out])
    assert out.contents.tolist() == [1.5, 2, 3, 4]


def test_one_byte_buffer_bound_to_slots_of_several_types(gpu):
    floats = np.array([1.5, -2, 0.25, 8], np.float32)
    raw = gpu.create_buffer(32, "char")  # four floats, then room for their four bit patterns
    raw.contents[:16] = np.frombuffer(floats.tobytes(), np.int8)
    values = gpu.create_buffer(4, "float")
    run(gpu, "bytes_to_words", [raw, raw, values])
    assert values.contents.tolist() == (floats * 2).tolist()
    assert raw.contents[16:].view(np.uint32).tolist() == floats.view(np.uint32).tolist()


def test_a_byte_parameter_takes_any_buffer(gpu):
    floats = gpu.array_to_buffer(np.array([1, 2, 3, 4], np.float32))
    bits = gpu.create_buffer(8, "uint")
    values = gpu.create_buffer(4, "float")
    run(gpu, "bytes_to_words", [floats, bits, values])
    assert values.contents.tolist() == [2, 4, 6, 8]


def test_bfloat_parameter_takes_its_bit_patterns_as_16_bit_integers(gpu):
    patterns = np.array([0x3F80, 0xC000, 0x3E80, 0x4310], dtype=np.uint16)  # 1, -2, 0.25, 144
    out = gpu.create_buffer(4, "float")
    for dtype in (np.uint16, np.int16):
        run(gpu, "bfloat_to_float", [gpu.array_to_buffer(patterns.view(dtype)), out])
        assert out.contents.tolist() == [1, -2, 0.25, 144]
    bfloats = gpu.create_buffer(4, "bfloat")
    bfloats.write(np.array([1, -2, 0.25, 144], np.float32))
    run(gpu, "bfloat_to_float", [bfloats, out])
    assert out.contents.tolist() == [1, -2, 0.25, 144]


# -- 3-lane vectors: Metal's float3 is 16 bytes -------------------------------------------------------------------

def test_rows_of_three_floats_for_a_float3_parameter_are_refused(gpu):
    out = gpu.create_buffer(4, "float")
    rows = gpu.array_to_buffer(np.ones((4, 3), np.float32))
    with pytest.raises(metalgpu.ArgumentError, match=r"parameter 'in'.*float3 takes 16 bytes.*rows of 3.*"
                                                     r"packed_float3"):
        run(gpu, "sum_lanes3", [rows, out])
    for refused in (gpu.create_buffer(16, "float"), gpu.create_buffer(4, "packed_float3")):
        with pytest.raises(metalgpu.ArgumentError, match="float3 takes 16 bytes"):
            run(gpu, "sum_lanes3", [refused, out])


def test_float3_parameter_takes_padded_elements(gpu):
    points = np.arange(12, dtype=np.float32).reshape(4, 3)
    expected = points.sum(axis=1).tolist()
    out = gpu.create_buffer(4, "float")
    vectors = gpu.create_buffer(4, "float3")
    vectors.contents[:] = points
    run(gpu, "sum_lanes3", [vectors, out])
    assert out.contents.tolist() == expected
    padded = np.zeros((4, 4), np.float32)
    padded[:, :3] = points
    for buffer in (gpu.array_to_buffer(padded), gpu.array_to_buffer(padded).view("float4")):
        out.contents[:] = 0
        run(gpu, "sum_lanes3", [buffer, out])
        assert out.contents.tolist() == expected
    out.contents[:] = 0
    run(gpu, "sum_lanes3", [points, out])  # a numpy array is converted to the parameter's type, padding included
    assert out.contents.tolist() == expected


def test_packed_float3_parameter_takes_rows_of_three_not_float3(gpu):
    points = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = gpu.create_buffer(4, "float")
    run(gpu, "sum_packed3", [gpu.array_to_buffer(points), out])
    assert out.contents.tolist() == points.sum(axis=1).tolist()
    with pytest.raises(metalgpu.ArgumentError, match=r"packed float3 elements of 12 bytes.*float3, 16 bytes"):
        run(gpu, "sum_packed3", [gpu.create_buffer(4, "float3"), out])


# -- Buffer.view ---------------------------------------------------------------------------------------------------

def test_view_shares_the_memory(gpu):
    ints = gpu.array_to_buffer(np.array([0x3F800000, 0x40000000, 0, 0xBF800000], dtype=np.uint32))
    floats = ints.view("float")
    assert floats.count == 4 and floats.dtype == np.float32 and floats.nbytes == ints.nbytes
    assert floats.contents.tolist() == [1, 2, 0, -1]
    floats.contents[2] = 0.5
    assert ints.contents[2] == 0x3F000000  # one memory: no copy
    out = gpu.create_buffer(4, "float")
    run(gpu, "plus_one", [floats, out])
    assert out.contents.tolist() == [2, 3, 1.5, 0]
    assert ints.view(np.uint8).count == 16 and ints.view("float4").count == 1


def test_view_errors(gpu):
    buffer = gpu.create_buffer(3, "float")
    with pytest.raises(metalgpu.ArgumentError, match=r"12 bytes are not a whole number of float4"):
        buffer.view("float4")
    with pytest.raises(metalgpu.ArgumentError, match="unknown Metal type"):
        buffer.view("flaot")
    buffer.release()
    with pytest.raises(metalgpu.BufferReleasedError):
        buffer.view("int")


def test_view_outlives_the_released_buffer_safely(gpu):
    base = gpu.array_to_buffer(np.arange(4, dtype=np.float32))
    view = base.view("float")
    base.release()
    assert view.contents.tolist() == [0, 1, 2, 3]  # the memory stays while a view of it lives
    out = gpu.create_buffer(4, "float")
    run(gpu, "plus_one", [view, out])
    assert out.contents.tolist() == [1, 2, 3, 4]
    with pytest.raises(metalgpu.BufferReleasedError):
        run(gpu, "plus_one", [base, out])
    view.release()
    view.release()  # idempotent, and nothing freed twice
    with pytest.raises(metalgpu.BufferReleasedError):
        _ = view.contents
    del base, view
    gc.collect()


def test_view_waits_for_the_dispatches_of_its_base(gpu):
    values = gpu.array_to_buffer(np.arange(1 << 16, dtype=np.int32))
    dispatch = gpu.run_function(1 << 16, [values], function_name="negate_int", wait_for_completion=False)
    as_uint = values.view("uint")
    assert as_uint.contents[-1] == 2**32 - ((1 << 16) - 1)  # contents waited for the dispatch on the base
    dispatch.wait()


# -- structs ---------------------------------------------------------------------------------------------------------

def records(gpu, count):
    data = np.zeros(count, gpu.struct_dtype("Record"))
    data["weight"], data["count"], data["offset"] = 0.5, np.arange(count), [[1, 2]]
    return data


def test_array_of_structs_of_the_right_size(gpu):
    data = records(gpu, 4)
    out = gpu.create_buffer(4, "float")
    for given in (gpu.array_to_buffer(data), data):  # a Buffer, and a numpy array for the constant parameter
        run(gpu, "weigh", [given, out])
        assert out.contents.tolist() == [3, 3.5, 4, 4.5]


def test_array_of_structs_of_another_size_is_refused(gpu):
    small = np.zeros(8, np.dtype([("weight", np.float32), ("count", np.int32)]))  # 64 bytes: 4 Records' worth
    out = gpu.create_buffer(4, "float")
    for given in (gpu.array_to_buffer(small), small):
        with pytest.raises(metalgpu.ArgumentError, match=r"parameter 'records'.*16-byte elements.*8 bytes each"):
            run(gpu, "weigh", [given, out])


def test_struct_buffer_for_a_scalar_parameter(gpu):
    pairs = np.zeros(2, np.dtype([("a", np.float32), ("b", np.float32)]))
    pairs["a"], pairs["b"] = [1, 3], [2, 4]
    out = gpu.create_buffer(4, "float")
    run(gpu, "plus_one", [gpu.array_to_buffer(pairs), out])  # fields of the parameter's own scalar: allowed
    assert out.contents.tolist() == [2, 3, 4, 5]
    for fields in ([("a", np.float32), ("b", np.int32)], [("a", np.float32), ("b", np.float64)]):
        with pytest.raises(metalgpu.ArgumentError, match=r"points at float elements.*holds structs"):
            run(gpu, "plus_one", [gpu.array_to_buffer(np.zeros(2, np.dtype(fields))), out])


def test_dict_for_a_struct_pointer_parameter(gpu):
    out = gpu.create_buffer(4, "float")
    run(gpu, "weigh_one", [{"weight": 2.0, "count": 3, "offset": [0, 1]}, out])
    assert out.contents.tolist() == [6, 7, 8, 9]
    with pytest.raises(metalgpu.ArgumentError, match=r"parameter 'record'.*'offset' are not given"):
        run(gpu, "weigh_one", [{"weight": 2.0, "count": 3}, out])
    with pytest.raises(metalgpu.ArgumentError, match="has no field 'scale'"):
        run(gpu, "weigh_one", [{"weight": 2.0, "count": 3, "offset": [0, 1], "scale": 1}, out])


def test_list_of_dicts_for_an_array_of_structs(gpu):
    out = gpu.create_buffer(4, "float")
    given = [{"weight": 0.5, "count": i, "offset": [1, 2]} for i in range(4)]
    run(gpu, "weigh", [given, out])
    assert out.contents.tolist() == [3, 3.5, 4, 4.5]
    with pytest.raises(metalgpu.ArgumentError, match=r"parameter 'records'.*\[2\]: fields 'offset' are not given"):
        run(gpu, "weigh", [given[:2] + [{"weight": 1.0, "count": 1}] + given[3:], out])
