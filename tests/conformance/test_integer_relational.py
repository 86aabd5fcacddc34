"""Conformance of the emulated Metal relational and integer functions on every backend.

Each family has one kernel file beside this one (relational, integer). A kernel writes row k of its output for
the k-th entry of the table here; the test runs it through the public API and compares with numpy exactly:
booleans bit for bit, integers with the two's complement semantics of the type's width (conformance_reference).
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance_reference import F32, INT_TYPES, N, float_inputs, int_inputs, run, wrap


# ---- relational ---------------------------------------------------------------------------------------------
def test_relational(iface):
    x = float_inputs(N, seed=10)
    y = np.random.default_rng(11).permutation(x)
    (out,) = run(iface, "relational.metal", "relational_float", [x, y], [(8 * N, "uchar")], N)
    out = out.reshape(8, N).astype(bool)
    normal = np.isfinite(x) & (np.abs(x) >= np.finfo(F32).tiny)
    with np.errstate(invalid="ignore"):
        expected = [np.isnan(x), np.isinf(x), np.isfinite(x), normal, np.signbit(x),
                    ~(np.isnan(x) | np.isnan(y)), np.isnan(x) | np.isnan(y), np.where(x < y, y, x) == y]
    for k, want in enumerate(expected):
        np.testing.assert_array_equal(out[k], want, err_msg=f"row {k}")

    h = x.astype(np.float16)
    h[:8] = np.array([np.float16(2.0 ** -24), np.float16(2.0 ** -14), np.float16(-2.0 ** -15), 65504,
                      np.inf, np.nan, -0.0, 1.0], dtype=np.float16)
    (hout,) = run(iface, "relational.metal", "relational_half", [h], [(5 * N, "uchar")], N)
    hout = hout.reshape(5, N).astype(bool)
    hnormal = np.isfinite(h) & (np.abs(h) >= np.finfo(np.float16).tiny)
    for k, want in enumerate([np.isnan(h), np.isinf(h), np.isfinite(h), hnormal, np.signbit(h)]):
        np.testing.assert_array_equal(hout[k], want, err_msg=f"half row {k}")

    flags, chosen, masks = run(iface, "relational.metal", "relational_vector", [x, y],
                               [(4 * (N // 4), "uchar"), (2 * (N // 4), "float4"), (2 * (N // 4), "uchar4")], N // 4)
    xs, ys = x.reshape(-1, 4), y.reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        less = xs < ys
        np.testing.assert_array_equal(flags.reshape(4, -1).astype(bool),
                                      [less.all(1), less.any(1), np.isfinite(xs).all(1), np.isnan(xs[:, :2]).any(1)])
        np.testing.assert_array_equal(chosen.reshape(2, -1, 4), [np.where(less, ys, xs), np.where(np.isnan(xs), 0, xs)])
    np.testing.assert_array_equal(masks.reshape(2, -1, 4).astype(bool),
                                  [np.isnan(xs) | np.isnan(ys), np.signbit(xs)])


# ---- integer (exact) ----------------------------------------------------------------------------------------
def _integer_reference(a: int, b: int, c: int, bits: int, signed: bool, offset: int, width: int) -> list[int]:
    """The rows of integer_ops for one component, as Python ints (wrapped by the caller)."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    mask = (1 << bits) - 1
    ua = a & mask
    sat = lambda v: max(lo, min(hi, v))  # noqa: E731
    field = (ua >> offset) & ((1 << width) - 1)
    if signed and field >> (width - 1):
        field -= 1 << width
    ins_mask = ((1 << width) - 1) << offset
    s = b & (bits - 1)
    return [
        abs(a), abs(a - b), sat(a + b), sat(a - b), max(min(a, b, c), min(max(a, min(b, c)), max(b, c))),
        bits - ua.bit_length(), (ua & -ua).bit_length() - 1 if ua else bits, bin(ua).count("1"),
        field, (ua & ~ins_mask) | ((b << offset) & ins_mask),
        (a + b) >> 1, (a + b + 1) >> 1, (a * b) >> bits, ((a * b) >> bits) + c, sat(a * b + c),
        int(format(ua, f"0{bits}b")[::-1], 2), ((ua << s) | (ua >> (bits - s))) if s else ua,
        min(a, b), max(a, b), min(a, b, c), max(a, b, c), sorted([a, b, c])[1],
        a << s, a >> s, a << (9 & (bits - 1)), a + b, a - b, a * b, (a & b) | (c ^ a), ~a,
    ]


INTEGER_ROWS = 32  # the rows of integer_ops: 30 per component above, then the scalar forms


@pytest.mark.parametrize("type_name", list(INT_TYPES))
def test_integer(iface, type_name):
    dtype = INT_TYPES[type_name]
    info = np.iinfo(dtype)
    count = 64  # vectors
    a = int_inputs(dtype, 4 * count, seed=12)
    b = np.random.default_rng(13).permutation(int_inputs(dtype, 4 * count, seed=14))
    c = int_inputs(dtype, 4 * count, seed=15)
    (out,) = run(iface, "integer.metal", f"integer_{type_name}", [a, b, c],
                 [(INTEGER_ROWS * count, f"{type_name}4")], count)
    out = out.reshape(INTEGER_ROWS, count, 4)
    for i in range(count):
        offset, width = i % 5, i % 3 + 2
        rows = [_integer_reference(int(a[4 * i + j]), int(b[4 * i + j]), int(c[4 * i + j]), info.bits,
                                   info.min < 0, offset, width) for j in range(4)]
        expected = wrap([r[k] for k in range(30) for r in rows], dtype).reshape(30, 4)
        expected_scalar = wrap([rows[0][0], rows[1][2], rows[2][3], rows[3][12], rows[0][7]], dtype)
        for k in range(30):
            assert np.array_equal(out[k, i], expected[k]), (k, i, a[4 * i:4 * i + 4], b[4 * i:4 * i + 4],
                                                            out[k, i], expected[k])
        assert out[30, i, 0] == expected_scalar[0]
        np.testing.assert_array_equal(out[31, i], expected_scalar[1:])


def test_integer_24(iface):
    rng = np.random.default_rng(16)
    a = rng.integers(-(1 << 23), 1 << 23, N).astype(np.int32)
    b = rng.integers(-(1 << 23), 1 << 23, N).astype(np.int32)
    a[:4], b[:4] = [-(1 << 23), (1 << 23) - 1, 0, -1], [(1 << 23) - 1, -(1 << 23), 5, -1]
    out, uout = run(iface, "integer.metal", "integer_24", [a, b], [(2 * N, "int"), (2 * N, "uint")], N)
    prod = a.astype(np.int64) * b
    np.testing.assert_array_equal(out[:N], wrap(prod, np.int32))
    np.testing.assert_array_equal(out[N:], wrap(prod + a, np.int32))
    ua, ub = a.astype(np.int64) & 0xFFFFFF, b.astype(np.int64) & 0xFFFFFF
    np.testing.assert_array_equal(uout[:N], wrap(ua * ub, np.uint32))
    np.testing.assert_array_equal(uout[N:], wrap(ua * ub + (b.astype(np.int64) & 0xFFFFFFFF), np.uint32))
