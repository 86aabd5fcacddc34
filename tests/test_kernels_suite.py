"""The original performance-suite kernels (tests/kernels/*.metal), checked against numpy.

Sizes are deliberately not multiples of common threadgroup sizes (1000, 37x23), so edge
threadgroups are partial. Integer-valued float data is used where it makes float sums exact.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

import metalgpu
from conftest import load_kernel

N = 1000
RNG_SEED = 1234

# Float32 has a 24-bit significand: 2**-23 ~= 1.19e-7 is one ulp relative to a value in [1, 2).
FLOAT32_ULP = float(np.finfo(np.float32).eps)


def random_floats(low: float, high: float, size=N, seed=RNG_SEED) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size).astype(np.float32)


def small_integer_floats(size, seed=RNG_SEED) -> np.ndarray:
    """Floats holding integers 0..7: products and sums of a few hundred of them are exact in float32."""
    return np.random.default_rng(seed).integers(0, 8, size).astype(np.float32)


def test_vector_add(iface):
    load_kernel(iface, "vector_add.metal", "vector_add")
    a = iface.array_to_buffer(random_floats(-100, 100, seed=1))
    b = iface.array_to_buffer(random_floats(-100, 100, seed=2))
    out = iface.create_buffer(N, "float")
    iface.run_function(N, [a, b, out])
    # One IEEE addition, correctly rounded on every backend: exact.
    np.testing.assert_array_equal(out.contents, a.contents + b.contents)


def test_sqrt(iface):
    load_kernel(iface, "sqrt.metal", "sqrt_kernel")
    x = random_floats(0, 1e6)
    x[:4] = [0.0, 1.0, 4.0, 2.0]
    src = iface.array_to_buffer(x)
    out = iface.create_buffer(N, np.float32)
    iface.run_function(N, [src, out])
    # Metal fast-math sqrt is allowed 3 ulp (x * rsqrt(x)); rtol 1e-6 is ~8 ulp.
    np.testing.assert_allclose(out.contents, np.sqrt(x), rtol=1e-6, atol=0)
    assert out.contents[0] == 0.0 and out.contents[2] == 2.0


def test_exp(iface):
    load_kernel(iface, "exp.metal", "exp_kernel")
    x = random_floats(-4, 4)
    src = iface.array_to_buffer(x)
    out = iface.create_buffer(N, "float")
    iface.run_function(N, [src, out])
    # Metal fast-math exp: 3 + floor(2|x|) ulp = 11 ulp for |x| <= 4; rtol 2e-6 is ~16 ulp.
    np.testing.assert_allclose(out.contents, np.exp(x.astype(np.float64)), rtol=2e-6, atol=0)


@pytest.mark.parametrize("scale", [2.5, np.float32(2.5)], ids=["python_float", "np_float32"])
def test_saxpy_scalar_constant(iface, scale):
    load_kernel(iface, "saxpy.metal", "saxpy")
    x = random_floats(0, 10, seed=3)
    y = random_floats(0, 10, seed=4)
    x_buf = iface.array_to_buffer(x)
    y_buf = iface.array_to_buffer(y)
    iface.run_function(N, [scale, x_buf, y_buf])
    # Positive terms, no cancellation; an fma contraction changes the result by <= 1 ulp: rtol 1e-6.
    expected = np.float32(2.5) * x + y
    np.testing.assert_allclose(y_buf.contents, expected, rtol=1e-6, atol=0)


MATMUL_M, MATMUL_N, MATMUL_K = 23, 37, 19
DIMS_DTYPE = np.dtype([("M", np.uint32), ("N", np.uint32), ("K", np.uint32)])


def dims_as(kind: str):
    values = (MATMUL_M, MATMUL_N, MATMUL_K)
    if kind == "structured_scalar":
        return np.array(values, dtype=DIMS_DTYPE)[()]
    if kind == "structured_array":
        return np.array([values], dtype=DIMS_DTYPE)
    if kind == "bytes":
        return struct.pack("=3I", *values)
    raise ValueError(kind)


@pytest.mark.parametrize("dims_kind", ["structured_scalar", "structured_array", "bytes"])
@pytest.mark.parametrize("grid_kind", ["tuple", "MetalSize"])
def test_matmul_struct_constant_2d_grid(iface, dims_kind, grid_kind):
    load_kernel(iface, "matmul.metal", "matmul")
    a = small_integer_floats((MATMUL_M, MATMUL_K), seed=5)
    b = small_integer_floats((MATMUL_K, MATMUL_N), seed=6)
    a_buf = iface.array_to_buffer(a)
    b_buf = iface.array_to_buffer(b)
    c_buf = iface.create_buffer(MATMUL_M * MATMUL_N, "float")
    c_buf.contents[:] = -1.0  # every element must be overwritten
    grid = (MATMUL_N, MATMUL_M) if grid_kind == "tuple" else metalgpu.MetalSize(MATMUL_N, MATMUL_M)
    iface.run_function(grid, [a_buf, b_buf, c_buf, dims_as(dims_kind)])
    # Integers 0..7, K = 19: every partial sum is an integer <= 931, exact in float32.
    expected = (a.astype(np.int64) @ b.astype(np.int64)).astype(np.float32)
    np.testing.assert_array_equal(c_buf.contents.reshape(MATMUL_M, MATMUL_N), expected)


def test_polynomial(iface):
    load_kernel(iface, "polynomial.metal", "polynomial")
    x = random_floats(-2, 2, seed=7)
    src = iface.array_to_buffer(x)
    out = iface.create_buffer(N, "float")
    iface.run_function(N, [src, out])
    x64 = x.astype(np.float64)
    expected = 3 * x64**3 - 2 * x64**2 + 0.5 * x64 + 1
    # Three Horner steps with intermediates up to ~35: each rounding (or fma) adds <= 35 * 6e-8
    # absolute, so atol 1e-5 covers values near the roots where a relative bound would not.
    np.testing.assert_allclose(out.contents, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("filename, function", [("conditional.metal", "conditional_ternary"),
                                                ("select.metal", "conditional_select")])
def test_conditional(iface, filename, function):
    load_kernel(iface, filename, function)
    x = random_floats(-50, 50, seed=8)
    x[:3] = [0.0, -0.0, 1.0]
    src = iface.array_to_buffer(x)
    out = iface.create_buffer(N, "float")
    iface.run_function(N, [src, out])
    # Doubling and negation are exact.
    np.testing.assert_array_equal(out.contents, np.where(x > 0, x * 2, -x))


def test_partial_dot(iface):
    load_kernel(iface, "partial_dot.metal", "partial_dot")
    n, chunk = 1000, 64
    threads = -(-n // chunk)  # 16 chunks, the last one holds 40 elements
    a = small_integer_floats(n, seed=9)
    b = small_integer_floats(n, seed=10)
    a_buf = iface.array_to_buffer(a)
    b_buf = iface.array_to_buffer(b)
    partial = iface.create_buffer(threads, "float")
    iface.run_function(threads, [a_buf, b_buf, partial, chunk, n])
    products = np.zeros(threads * chunk, dtype=np.int64)
    products[:n] = a.astype(np.int64) * b.astype(np.int64)
    # Integer products <= 49 summed 64 at a time (<= 3136): exact in float32.
    expected = products.reshape(threads, chunk).sum(axis=1).astype(np.float32)
    np.testing.assert_array_equal(partial.contents, expected)
    assert float(partial.contents.sum()) == float(np.dot(a.astype(np.int64), b.astype(np.int64)))
