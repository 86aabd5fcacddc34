"""Buffer as an array-like: shape and indexing over its contents, operators and numpy ufuncs on the device
(reflected and unary forms, numpy arrays on either side), zero-copy np.asarray, host reductions."""
from __future__ import annotations

import numpy as np
import pytest

import metalgpu
from metalgpu.ops import binary_source, map_source
from metalgpu.types import resolve_type

N = 64


def values(low, high, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).uniform(low, high, N).astype(dtype)


# -- shape and indexing ----------------------------------------------------------------------------------------

def test_shape_ndim_size_and_len(iface):
    scalars = iface.create_buffer(10, "float")
    assert (scalars.shape, scalars.ndim, scalars.size, len(scalars)) == ((10,), 1, 10, 10)
    vectors = iface.create_buffer(5, "float4")
    assert (vectors.shape, vectors.ndim, vectors.size, len(vectors)) == ((5, 4), 2, 20, 5)
    padded = iface.create_buffer(5, "float3")  # 16 bytes an element, three values
    assert (padded.shape, padded.size) == ((5, 3), 15) and padded.contents.shape == padded.shape
    matrix = iface.array_to_buffer(np.zeros((3, 7), dtype=np.int32))
    assert (matrix.shape, matrix.ndim, matrix.size, len(matrix), matrix.count) == ((3, 7), 2, 21, 3, 21)
    private = iface.create_buffer(8, "half", storage="private")
    assert (private.shape, private.ndim, private.size, len(private)) == ((8,), 1, 8, 8)
    for buffer in (scalars, vectors, matrix):
        assert buffer.shape == buffer.contents.shape and len(buffer) == len(buffer.contents)


def test_indexing_reads_the_contents_as_numpy_values(iface):
    data = np.arange(N, dtype=np.float32) * 1.5
    buffer = iface.array_to_buffer(data)
    assert buffer[3] == data[3] and isinstance(buffer[3], np.float32)
    assert buffer[-1] == data[-1]
    np.testing.assert_array_equal(buffer[2:9:3], data[2:9:3])
    np.testing.assert_array_equal(buffer[[1, 5]], data[[1, 5]])
    assert [float(v) for v in buffer] == [float(v) for v in data]
    with pytest.raises(IndexError):
        buffer[N]


def test_a_slice_is_a_view_and_assignment_writes_the_buffer(iface):
    buffer = iface.array_to_buffer(np.zeros(N, dtype=np.int32))
    window = buffer[4:8]
    assert np.shares_memory(window, buffer.contents)
    window[:] = 7
    buffer[0] = 5
    buffer[10:12] = [1, 2]
    expected = np.zeros(N, dtype=np.int32)
    expected[4:8], expected[0], expected[10:12] = 7, 5, [1, 2]
    np.testing.assert_array_equal(buffer.read(), expected)
    vectors = iface.create_buffer(4, "float4")
    vectors[1] = [1, 2, 3, 4]
    np.testing.assert_array_equal(vectors[1], [1, 2, 3, 4])


def test_private_buffers_refuse_indexing_and_give_copies_to_numpy(iface):
    buffer = iface.create_buffer(4, "float", storage="private")
    buffer.write([1, 2, 3, 4])
    with pytest.raises(metalgpu.ArgumentError, match="private buffer has no CPU view.*read"):
        buffer[0]
    with pytest.raises(metalgpu.ArgumentError, match="private"):
        buffer[0] = 1.0
    copy = np.asarray(buffer)
    np.testing.assert_array_equal(copy, [1, 2, 3, 4])
    copy[0] = 100  # a copy: the buffer keeps its values
    np.testing.assert_array_equal(buffer.read(), [1, 2, 3, 4])
    with pytest.raises(ValueError, match="cannot avoid a copy"):
        np.asarray(buffer, copy=False)
    assert buffer.sum() == 10 and buffer.max() == 4


def test_asarray_is_zero_copy(iface):
    buffer = iface.array_to_buffer(np.arange(N, dtype=np.float32))
    array = np.asarray(buffer)
    assert np.shares_memory(array, buffer.contents)
    array[0] = -1.0
    assert buffer.read()[0] == -1.0
    assert np.asarray(buffer, copy=False) is not None
    assert not np.shares_memory(np.array(buffer, copy=True), buffer.contents)
    converted = np.asarray(buffer, dtype=np.float64)
    assert converted.dtype == np.float64 and not np.shares_memory(converted, buffer.contents)


def test_reductions_match_numpy(iface):
    data = values(-10, 10)
    buffer = iface.array_to_buffer(data)
    assert buffer.sum() == data.sum() and np.sum(buffer) == data.sum()
    assert buffer.min() == data.min() and buffer.max() == data.max() and buffer.mean() == data.mean()
    matrix = iface.array_to_buffer(data.reshape(8, 8))
    np.testing.assert_array_equal(matrix.sum(axis=0), data.reshape(8, 8).sum(axis=0))


# -- operators on the device ------------------------------------------------------------------------------------
# +, -, * and x * x round once, as numpy's float32 operations do: exact comparison. Metal's fast-math division is
# allowed 2.5 ulp: rtol 1e-6 (8 ulp). Fast-math pow is exp2(y * log2(x)); with |y * log2(x)| <= 4 here the
# relative error stays near 1e-6 on every backend: rtol 1e-5.

def test_reflected_and_unary_operators_on_floats(iface):
    data = values(-4, 4, seed=1)
    a = iface.array_to_buffer(data)
    two, one = np.float32(2), np.float32(1)
    results = {
        "2.0 * a": (2.0 * a, two * data), "a * 2": (a * 2, data * two), "1 - a": (1 - a, one - data),
        "a - 1": (a - 1, data - one), "3 + a": (3 + a, np.float32(3) + data), "-a": (-a, -data),
        "+a": (+a, data), "abs(a)": (abs(a), np.abs(data)), "a ** 2": (a ** 2, data * data),
    }
    for label, (result, expected) in results.items():
        assert isinstance(result, metalgpu.Buffer) and result.dtype == np.float32, label
        np.testing.assert_array_equal(result.read(), expected, err_msg=label)
    np.testing.assert_allclose((1 / a).read(), one / data, rtol=1e-6, err_msg="1 / a")
    np.testing.assert_allclose((a ** 3).read(), data.astype(np.float64) ** 3, rtol=1e-6, err_msg="a ** 3")
    np.testing.assert_allclose((a ** -2).read(), data.astype(np.float64) ** -2.0, rtol=1e-6, err_msg="a ** -2")
    np.testing.assert_array_equal(a.read(), data)  # the operand is untouched


def test_powers_with_float_exponents(iface):
    base = values(0.5, 4, seed=2)
    exponent = values(-2, 2, seed=3)
    a, b = iface.array_to_buffer(base), iface.array_to_buffer(exponent)
    exact = base.astype(np.float64) ** exponent.astype(np.float64)
    np.testing.assert_allclose((a ** b).read(), exact, rtol=1e-5)
    np.testing.assert_allclose((a ** 0.5).read(), np.sqrt(base.astype(np.float64)), rtol=1e-5)
    np.testing.assert_allclose((2 ** b).read(), 2.0 ** exponent.astype(np.float64), rtol=1e-5)


def test_operators_on_integers(iface):
    data = np.arange(-8, 8, dtype=np.int32)
    a = iface.array_to_buffer(data)
    exponents = iface.array_to_buffer(np.arange(16, dtype=np.int32) % 4)
    np.testing.assert_array_equal((-a).read(), -data)
    np.testing.assert_array_equal(abs(a).read(), np.abs(data))
    np.testing.assert_array_equal((3 - a).read(), 3 - data)
    np.testing.assert_array_equal((2 * a).read(), 2 * data)
    np.testing.assert_array_equal((a ** 3).read(), data ** 3)
    np.testing.assert_array_equal((a ** exponents).read(), data ** (np.arange(16) % 4))
    np.testing.assert_array_equal((2 ** exponents).read(), 2 ** (np.arange(16) % 4))
    # integer division's answer to x ** -n: 1 and -1 keep a value, every other base gives 0
    np.testing.assert_array_equal((a ** -1).read(), np.where(np.abs(data) == 1, data, 0))
    assert (a ** 2).dtype == np.int32
    with pytest.raises(metalgpu.ArgumentError, match="whole numbers only"):
        a * 2.5
    unsigned = iface.array_to_buffer(np.arange(4, dtype=np.uint32))
    with pytest.raises(metalgpu.ArgumentError, match="unsigned"):
        unsigned ** -1


def test_vector_buffers_with_numbers_and_arrays(iface):
    data = values(-2, 2, seed=4).reshape(16, 4)
    a = iface.create_buffer(16, "float4")
    a.write(data)
    np.testing.assert_array_equal((a * 3).read(), data * np.float32(3))
    np.testing.assert_array_equal((a ** 2).read(), data * data)
    np.testing.assert_array_equal((a + data).read(), data + data)
    np.testing.assert_array_equal((1 - a).read(), np.float32(1) - data)


def test_numpy_arrays_on_either_side_run_on_the_device(iface):
    data = values(1, 5, seed=5)
    other = values(1, 5, seed=6)
    a = iface.array_to_buffer(data)
    for result, expected in ((a + other, data + other), (other + a, other + data), (other - a, other - data),
                             (a * other, data * other), (other * a, other * data)):
        assert isinstance(result, metalgpu.Buffer)
        np.testing.assert_array_equal(result.read(), expected)
    np.testing.assert_allclose((other / a).read(), other / data, rtol=1e-6)
    # a float64 array takes the buffer's type, as a number does (Metal has no double)
    doubles = other.astype(np.float64)
    assert (a + doubles).dtype == np.float32 and isinstance(doubles + a, metalgpu.Buffer)
    np.testing.assert_array_equal((doubles + a).read(), data + other)
    assert isinstance(np.float32(2) * a, metalgpu.Buffer)
    with pytest.raises(metalgpu.ArgumentError, match="do not broadcast"):
        a + other[:10]
    with pytest.raises(metalgpu.ArgumentError, match="do not broadcast"):
        other[:10] + a
    ints = iface.array_to_buffer(np.arange(N, dtype=np.int32))
    with pytest.raises(metalgpu.ArgumentError, match="keeps the buffer's type"):
        ints + data


def test_numpy_ufuncs_run_on_the_device_or_raise(iface):
    data = values(0.5, 2, seed=7)
    a = iface.array_to_buffer(data)
    root = np.sqrt(a)
    assert isinstance(root, metalgpu.Buffer)
    np.testing.assert_allclose(root.read(), np.sqrt(data.astype(np.float64)), rtol=1e-6)
    np.testing.assert_array_equal(np.negative(a).read(), -data)
    np.testing.assert_array_equal(np.absolute(-a).read(), data)
    np.testing.assert_array_equal(np.power(a, 2).read(), data * data)
    np.testing.assert_array_equal(np.floor(a).read(), np.floor(data))
    with pytest.raises(metalgpu.ArgumentError, match="numpy.maximum does not run on metalgpu Buffers"):
        np.maximum(a, data)
    with pytest.raises(metalgpu.ArgumentError, match="buffer.contents"):
        np.add.reduce(a)
    with pytest.raises(metalgpu.ArgumentError, match="out="):
        np.add(a, a, out=np.empty(N, np.float32))
    with pytest.raises(metalgpu.ArgumentError, match="does not run on metalgpu Buffers"):
        a == data  # noqa: B015 (numpy's comparison is a ufunc metalgpu has no kernel for)


def test_operators_refuse_struct_buffers_and_other_objects(iface):
    records = iface.array_to_buffer(np.zeros(4, dtype=[("x", np.float32), ("n", np.int32)]))
    with pytest.raises(metalgpu.ArgumentError, match="struct"):
        records + 1
    a = iface.array_to_buffer(np.ones(4, np.float32))
    with pytest.raises(TypeError):
        a + "text"


def test_operations_compile_for_cuda():
    """The generated kernels, for every kind of operand, compile with NVRTC (no GPU needed)."""
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed")
    from test_cuda_translation import assert_compiles

    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess
    from metalgpu.msl.translate import translate

    sources = [binary_source("**", resolve_type("float"), "whole"),
               binary_source("**", resolve_type("half4"), "buffer"),
               binary_source("**", resolve_type("int"), "whole", reflected=True),
               binary_source("-", resolve_type("bfloat"), "scalar", reflected=True),
               map_source("negative", resolve_type("uchar")), map_source("copy", resolve_type("float3"))]
    for source in sources:
        pre = preprocess(source, "<metalgpu-op>")
        assert_compiles(translate(pre, parse(pre.tokens, pre.sources), "cuda"))
