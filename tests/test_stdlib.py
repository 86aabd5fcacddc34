"""Metal's standard library as production kernels use it (tests/kernels/stdlib_*.metal), on every backend.

References are exact: numpy's float16 (correctly rounded), a bfloat rounding computed here on Python integers and
fractions, integer arithmetic, and float32 products of exactly representable values. SIMD-group matrix products
are compared with numpy within the tolerance stated at each test.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from conftest import load_kernel

# ---- exact rounding to a 16-bit float --------------------------------------------------------------------------
BF16 = (8, 7)  # exponent and fraction bits
F16 = (5, 10)


def narrow_bits(value, format=BF16) -> int:
    """The bits of `value` (a finite float or an int, taken exactly) rounded once to nearest even into `format`:
    subnormals, and infinity past the largest finite value."""
    exponent_bits, fraction_bits = format
    bias = (1 << (exponent_bits - 1)) - 1
    infinity = ((1 << exponent_bits) - 1) << fraction_bits
    sign = 0x8000 if math.copysign(1.0, value) < 0 else 0
    if isinstance(value, float) and math.isinf(value):
        return sign | infinity
    x = abs(Fraction(value))
    if x == 0:
        return sign
    exponent = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** exponent > x:
        exponent -= 1
    last = max(exponent, 1 - bias) - fraction_bits  # weight of the last bit kept
    kept = round(x / Fraction(2) ** last)            # Python rounds a Fraction half to even
    bits = ((last + fraction_bits + bias - 1) << fraction_bits) + kept
    return sign | min(bits, infinity)


def narrow_value(bits: int, format=BF16) -> float:
    if format == F16:
        return float(np.array([bits], np.uint16).view(np.float16)[0])
    return float(np.array([int(bits) << 16], np.uint32).view(np.float32)[0])


def bf16(value) -> float:
    return narrow_value(narrow_bits(value))


def f16(value) -> float:
    return narrow_value(narrow_bits(value, F16), F16)


def test_reference_rounding_agrees_with_numpy():
    # the reference itself, against numpy's float16 over ties, subnormals and overflow
    x = np.concatenate([np.arange(-70000, 70000, 0.5), np.float32(2.0) ** np.arange(-30, 17),
                        np.arange(2048, 2060), np.random.default_rng(3).uniform(-1, 1, 2000) * 1e-6])
    x = x.astype(np.float32)
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).view(np.uint16)
    assert [narrow_bits(float(v), F16) for v in x] == list(want)


def _tie_floats(rng, count):
    """Floats at and around the rounding ties of half and bfloat, subnormals of both, and values near overflow."""
    bits = rng.integers(0, 2**32, count, dtype=np.uint64).astype(np.uint32)
    bits[: count // 4] = (bits[: count // 4] & 0xFFFF0000) | 0x8000      # bfloat ties
    bits[count // 4: count // 2] = (bits[count // 4: count // 2] & 0xFFFFE000) | 0x1000  # half ties
    x = bits.view(np.float32)
    special = np.array([0.0, -0.0, 65504, 65519.99, 65520, -65520, 2.0**-24, 2.0**-25, 3 * 2.0**-26, 1e-40,
                        3.3895314e38, 3.4e38, np.inf, -np.inf, 1.00390625, 1.01171875], np.float32)
    x[: len(special)] = special
    return x[np.isfinite(x) | np.isinf(x)]


def _tie_integers(rng, count, dtype):
    info = np.iinfo(dtype)
    values = rng.integers(info.min, info.max, count, dtype=dtype, endpoint=True)
    # values whose bfloat rounding a float in between would round twice: 2**25 + 2**17 + 1 and friends
    special = [0, 1, -1, 257, 2049, 2**24 + 1, 2**25 + 2**17 + 1, 2**25 + 2**17, 2**25 + 3 * 2**17 - 1,
               65519, 65520, info.max, info.min]
    special = [s for s in special if info.min <= s <= info.max]
    values[: len(special)] = special
    return values


def test_conversions_round_once_to_nearest_even(iface):
    load_kernel(iface, "stdlib_narrow.metal", "narrow_from_numbers")
    rng = np.random.default_rng(11)
    x = _tie_floats(rng, 4096)
    n = len(x)
    i = _tie_integers(rng, n, np.int32)
    u = _tie_integers(rng, n, np.uint32)
    long = _tie_integers(rng, n, np.int64)
    out = iface.create_buffer(8 * n, "ushort")
    iface.run_function(n, [iface.array_to_buffer(a) for a in (x, i, u, long)] + [out])
    rows = out.contents.reshape(8, n)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(rows[0], x.astype(np.float16).view(np.uint16))
    np.testing.assert_array_equal(rows[1], [narrow_bits(float(v)) for v in x])
    np.testing.assert_array_equal(rows[2], [narrow_bits(int(v), F16) for v in i])
    np.testing.assert_array_equal(rows[3], [narrow_bits(int(v)) for v in i])
    np.testing.assert_array_equal(rows[4], [narrow_bits(int(v)) for v in u])
    np.testing.assert_array_equal(rows[5], [narrow_bits(int(v)) for v in long])
    np.testing.assert_array_equal(rows[6], [narrow_bits(int(v), F16) for v in long])
    np.testing.assert_array_equal(rows[7], [narrow_bits(f16(float(v))) for v in x])


NARROW_CONSTANTS = [0.1, -0.1, 1.0 / 3.0, 65504.0, 65519.0, 65520.0, 1e-8, -2.98e-8, 6.1e-5, 1.00390625,
                    1.01171875, 3.3895314e38, 3.4e38, 1e-40, -0.0, 2049.0, 2051.0, math.nan, -math.nan, math.inf]


def test_constant_expressions_give_the_run_time_bits(iface):
    load_kernel(iface, "stdlib_narrow.metal", "narrow_constants")
    n = len(NARROW_CONSTANTS)
    out, back = iface.create_buffer(4 * n, "ushort"), iface.create_buffer(3, "float")
    iface.run_function(n, [out, back])
    rows = out.contents.reshape(4, n)
    x = np.array(NARROW_CONSTANTS, np.float32)
    number = ~np.isnan(x)  # a NaN's payload is the target's own, but the same in both
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(rows[0][number], x[number].astype(np.float16).view(np.uint16))
    np.testing.assert_array_equal(rows[1], rows[0])  # run time and constant expression: the same bits
    np.testing.assert_array_equal(rows[2][number], [narrow_bits(float(v)) for v in x[number]])
    np.testing.assert_array_equal(rows[3], rows[2])
    assert np.isnan(rows[0][~number].view(np.float16)).all() and np.isnan(narrow_value(rows[2][-2]))
    half_sum = np.float32(x[0].astype(np.float16)) + np.float32(x[7].astype(np.float16))
    np.testing.assert_array_equal(back.contents[:2], [half_sum, half_sum])
    assert back.contents[2] == bf16(1.0 + bf16(3 * 0.00390625))  # 1 + 3 * 2**-8, rounded once: 1.0078125


def test_usual_arithmetic_conversions(iface):
    load_kernel(iface, "stdlib_narrow.metal", "narrow_mixed")
    rng = np.random.default_rng(5)
    n = 512
    a = (rng.uniform(-300, 300, n)).astype(np.float32)
    b = (rng.uniform(-4, 4, n)).astype(np.float32)
    j = rng.integers(-5000, 5000, n).astype(np.int32)
    a[:4], j[:4] = [1, 1, 0.5, 300], [257, 2049, 4095, -4097]  # an int that only rounds as bfloat or half
    out = iface.create_buffer(13 * n, "float")
    iface.run_function(n, [iface.array_to_buffer(v) for v in (a, b, j)] + [out])
    rows = out.contents.reshape(13, n)
    ba = [bf16(float(v)) for v in a]
    ha = [f16(float(v)) for v in a]
    f32 = np.float32
    want = [
        [bf16(Fraction(p) + Fraction(bf16(int(q)))) for p, q in zip(ba, j)],
        [f16(Fraction(p) + Fraction(f16(int(q)))) for p, q in zip(ha, j)],
        f32(ba) * b,
        f32(ha) * b,
        f32(np.float64(ba) + np.float64(ha)),  # exact in float64, rounded once to float
        [float(p < bf16(int(q))) for p, q in zip(ba, j)],
        [bf16(Fraction(p) + Fraction(bf16(int(q)))) for p, q in zip(ba, j)],
        [bf16(float(v)) for v in b],
        [-bf16(float(v)) for v in b],
        [f16(Fraction(f16(float(p))) * Fraction(f16(float(q)))) for p, q in zip(a, b)],
        [bf16(Fraction(p) - Fraction(bf16(int(q)))) for p, q in zip(ba, j)],
        f32(ha) * b,
        b - f32(ba),
    ]
    for k, expected in enumerate(want):
        np.testing.assert_array_equal(rows[k], np.asarray(expected, np.float32), err_msg=f"row {k}")
    assert rows[0][0] == 256.0 and rows[1][1] == 2048.0  # 1 + 257 in bfloat; 1 + 2049 in half


# ---- names: traits, limits, containers, builtins ------------------------------------------------------------------
def test_library_names(iface):
    load_kernel(iface, "stdlib_names.metal", "stdlib_names")
    x = np.array([0.3, -1.75, 2.6, 7.0, -0.25, 1.0], np.float32)
    n = len(x)
    out = iface.create_buffer(14 * n, "float")
    iface.run_function(n, [iface.array_to_buffer(x), out])
    rows = out.contents.reshape(14, n)
    f32 = np.float32
    q, r = np.trunc(np.trunc(x * f32(10)) / 7), np.fmod(np.trunc(x * f32(10)), 7)
    want = [
        np.full(n, np.finfo(f32).max), np.full(n, 65504.0), np.full(n, -narrow_value(0x7F7F)),
        np.full(n, np.finfo(f32).eps), np.full(n, -65504.0), np.full(n, 6 + 24 + 20), np.full(n, 3 + 1 + 10),
        q * 100 + r + 2, np.trunc(x * f32(4)) * 3 + 1, np.minimum(x, f32(0.5)) + np.maximum(x, f32(-0.5)),
        np.abs(x) + np.maximum(x, f32(1)), x * f32(2) + f32(1) + np.floor(x),
        np.minimum(np.minimum(x, f32(0.25)), f32(2)),
        np.full(n, np.float32(np.pi)),
    ]
    for k, expected in enumerate(want):
        np.testing.assert_array_equal(rows[k], np.asarray(expected, np.float32), err_msg=f"row {k}")


def test_simd_builtins(iface):
    load_kernel(iface, "stdlib_names.metal", "stdlib_simd_builtins")
    x = np.arange(32, dtype=np.float32) - 7
    out = iface.create_buffer(4 * 32, "float")
    iface.run_function(32, [iface.array_to_buffer(x), out], threads_per_threadgroup=32)
    rows = out.contents.reshape(4, 32)
    np.testing.assert_array_equal(rows[0], np.full(32, x.sum()))
    np.testing.assert_array_equal(rows[1], x[::-1])
    np.testing.assert_array_equal(rows[2], np.concatenate([x[3:], -x[:3]]))
    np.testing.assert_array_equal(rows[3], x.max() + np.arange(32))


def test_kernel_functions_named_like_c_math(iface):
    load_kernel(iface, "stdlib_user_math.metal", "user_math")
    x = np.array([0.5, -1.25, 3.0, 0.0, 7.75], np.float32)
    n = len(x)
    out = iface.create_buffer(5 * n, "float")
    iface.run_function(n, [iface.array_to_buffer(x), out])
    rows = out.contents.reshape(5, n)
    f32 = np.float32
    np.testing.assert_array_equal(rows[0], (x + f32(1)) + x * f32(2) + (x - f32(1)) + x * x)
    # half: log1p(float) is taken (a half converts to float, not to bfloat), so the sum runs in float, then rounds
    hf = x.astype(np.float16).astype(f32)
    rounded = [(hf + f32(1)), (hf - f32(1)), hf * hf]
    a, c, d = (r.astype(np.float16).astype(f32) for r in rounded)
    np.testing.assert_array_equal(rows[1], (((a + hf * f32(2)) + c) + d).astype(np.float16).astype(f32))
    b = np.array([bf16(float(v)) for v in x], f32)
    want_bfloat = [bf16(Fraction(bf16(float(p + 1))) + Fraction(bf16(float(p * 3)))) for p in b]
    want_bfloat = [bf16(Fraction(w) + Fraction(bf16(float(p - 1)))) for w, p in zip(want_bfloat, b)]
    want_bfloat = [bf16(Fraction(w) + Fraction(bf16(float(f32(p) * f32(p))))) for w, p in zip(want_bfloat, b)]
    np.testing.assert_array_equal(rows[2], np.array(want_bfloat, f32))
    np.testing.assert_array_equal(rows[3], -x)
    np.testing.assert_array_equal(rows[4], (np.trunc(x) * f32(2) + x * f32(4)) + (x - f32(3)))


def test_vector_initialisation_and_conversions(iface):
    load_kernel(iface, "stdlib_vectors.metal", "vector_init")
    rng = np.random.default_rng(8)
    n = 64
    x = rng.uniform(-300, 300, (n, 4)).astype(np.float32)
    x[0] = [0.0, -0.0, 0.75, -2.5]
    i = rng.integers(-1000, 1000, (n, 4)).astype(np.int32)
    out = iface.create_buffer(10 * n, "float4")
    iface.run_function(n, [iface.array_to_buffer(x), iface.array_to_buffer(i), out])
    rows = out.contents.reshape(10, n, 4)
    f32, zeros = np.float32, np.zeros(n, np.float32)
    bfloat = np.vectorize(lambda v: bf16(float(v)))
    want = [
        np.c_[i[:, :3].astype(np.uint32).astype(f32), zeros],
        np.c_[x[:, :2], zeros, zeros],
        np.tile(np.array([1.5, -2.25, np.float16(0.1), 3.0], f32), (n, 1)),
        np.c_[x[:, 3] + f32(1.0) + f32(0.5), np.full(n, 0.5 + 0.5 + 0.25, f32), np.full(n, 3.0, f32),
              np.full(n, 5.0, f32)],
        np.trunc(x),
        (i & 0xFF).astype(f32),
        x.astype(np.float16).astype(f32),
        bfloat(x).astype(f32),
        (x != 0).astype(f32),
        (x.view(np.int32) & 0xFF).astype(f32),
    ]
    for k, expected in enumerate(want):
        np.testing.assert_array_equal(rows[k], expected, err_msg=f"row {k}")


# ---- SIMD-group matrices ----------------------------------------------------------------------------------------
# Each multiply-accumulate adds 8 products to the accumulator in float, in a fixed order, and rounds once to the
# accumulator's type. Against numpy's float64 product, the float additions cost at most 2**-24 of the running sum of
# |products| each (N of them), and a half or bfloat accumulator one rounding to its type (2**-11, 2**-8) per 8
# products. Half and bfloat inputs have exact float products (11 or 8 significant bits).
@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("kernel, in_type, out_type", [
    ("product_float", np.float32, np.float32),
    ("product_half", np.float16, np.float16),
    ("product_bfloat", "bfloat", "bfloat"),
    ("product_half_into_float", np.float16, np.float32),
    ("product_bfloat_into_float", "bfloat", np.float32),
])
def test_simdgroup_matrix_products(iface, size, kernel, in_type, out_type):
    load_kernel(iface, "stdlib_simdgroup_matrix.metal", kernel)
    rng = np.random.default_rng(size)
    a, b = (rng.uniform(-2, 2, (size, size)).astype(np.float32) for _ in range(2))
    bias = 0.75
    if in_type == "bfloat":
        a, b = (np.vectorize(lambda v: bf16(float(v)))(m).astype(np.float32) for m in (a, b))
        a_buf, b_buf = (iface.create_buffer(size * size, "bfloat") for _ in range(2))
        for buf, m in ((a_buf, a), (b_buf, b)):
            buf.contents.view(np.uint16)[:] = (m.view(np.uint32) >> 16).astype(np.uint16).ravel()
    else:
        a, b = a.astype(in_type).astype(np.float32), b.astype(in_type).astype(np.float32)
        a_buf, b_buf = (iface.array_to_buffer(m.astype(in_type).ravel()) for m in (a, b))
    c = iface.create_buffer(size * size, "bfloat" if out_type == "bfloat" else out_type)
    iface.run_function(size * size // 2, [a_buf, b_buf, c, np.uint32(size), np.float32(bias)],
                       threads_per_threadgroup=size * size // 2)
    exact = a.astype(np.float64) @ b.astype(np.float64) + bias
    magnitude = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + bias
    accumulator_rounding = {np.float32: 0.0, np.float16: 2.0**-11, "bfloat": 2.0**-8}[out_type]
    tolerance = magnitude * (2.0**-24 * size + accumulator_rounding * (size // 8 + 1))
    if out_type == "bfloat":
        got = (c.contents.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(size, size)
    else:
        got = c.contents.reshape(size, size).astype(np.float32)
    assert (np.abs(got - exact) <= tolerance).all(), np.abs(got - exact).max()


def test_thread_elements_in_apples_layout(iface):
    load_kernel(iface, "stdlib_simdgroup_matrix.metal", "thread_elements_layout")
    m = np.random.default_rng(2).integers(-4, 5, (8, 8)).astype(np.float32)
    product, seen = iface.create_buffer(64, "float"), iface.create_buffer(64, "float")
    iface.run_function(32, [iface.array_to_buffer(m.ravel()), product, seen], threads_per_threadgroup=32)
    np.testing.assert_array_equal(product.contents.reshape(8, 8), m @ m)  # small integers: exact
    np.testing.assert_array_equal(seen.contents.reshape(8, 8), m * 2)


def test_simd_builtin_called_alone(iface):
    load_kernel(iface, "stdlib_names.metal", "stdlib_simd_builtin_alone")
    x = iface.array_to_buffer(np.arange(64, dtype=np.float32))
    iface.run_function(64, [x], threads_per_threadgroup=64)
    sums = np.repeat([np.arange(32).sum(), np.arange(32, 64).sum()], 32).astype(np.float32)
    np.testing.assert_array_equal(x.contents, sums + np.tile(np.arange(32, dtype=np.float32), 2))


def test_simdgroup_matrix_store_completes_before_any_lane_reads(iface):
    """Two SIMD-groups each store a filled matrix to threadgroup memory; each lane then reads an element another lane
    stored, with no barrier (Apple's lanes run in lockstep)."""
    load_kernel(iface, "simdgroup_lockstep.metal", "store_then_read_other_lanes")
    out = iface.create_buffer(64, "float")
    iface.run_function(64, [out], threads_per_threadgroup=64)
    np.testing.assert_array_equal(out.contents, np.repeat([1.0, 2.0], 32))


def test_simdgroup_matrix_load_sees_earlier_writes_and_not_later_ones(iface):
    load_kernel(iface, "simdgroup_lockstep.metal", "write_load_overwrite")
    out = iface.create_buffer(64, "float")
    iface.run_function(32, [out], threads_per_threadgroup=32)
    lanes = np.arange(32)
    rows = (lanes // 16) * 4 + (lanes // 2) % 4  # Apple's layout of a lane's two elements
    columns = ((lanes // 8) % 2) * 4 + (lanes % 2) * 2
    expected = np.stack([rows * 8 + columns, rows * 8 + columns + 1], axis=1).ravel()
    np.testing.assert_array_equal(out.contents, expected.astype(np.float32))


def test_simd_bitwise_reductions_of_floats(iface):
    load_kernel(iface, "stdlib_names.metal", "stdlib_simd_float_bits")
    x = np.random.default_rng(4).uniform(-8, 8, 32).astype(np.float32)
    out = iface.create_buffer(4 * 32, "uint")
    iface.run_function(32, [iface.array_to_buffer(x), out], threads_per_threadgroup=32)
    rows = out.contents.reshape(4, 32)
    bits, half_bits = x.view(np.uint32), x.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(rows[0], np.full(32, np.bitwise_xor.reduce(bits)))
    np.testing.assert_array_equal(rows[1], np.full(32, np.bitwise_and.reduce(bits)))
    np.testing.assert_array_equal(rows[2], np.full(32, np.bitwise_or.reduce(half_bits)))
    np.testing.assert_array_equal(rows[3], np.full(32, np.bitwise_xor.reduce((-x).view(np.uint32))))
