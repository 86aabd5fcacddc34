"""Conformance of the emulated Metal vectors, swizzles, matrices, as_type and pack/unpack on every backend, and
a CUDA view of every conformance kernel file.

Each family has one kernel file beside this one (vectors, matrices, astype_pack). A kernel writes row k of its
output for the k-th entry of the table here; the test runs it through the public API and compares with numpy:
bit patterns and conversions exactly, matrix products within a stated tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance_reference import CR, F32, HERE, N, check_ulp, run


# ---- vectors and swizzles (exact) ---------------------------------------------------------------------------
def _vector_rows(a, b):
    a, b = a.astype(F32), b.astype(F32)
    rows = [np.repeat(a[:, :1], 4, 1), np.c_[a[:, :2], b[:, 2:]], np.c_[a[:, 0], b[:, 1:3], np.full(len(a), 7, F32)],
            np.c_[a[:, [3, 2, 1]], b[:, 0]], np.trunc(a), a[:, ::-1], np.c_[a[:, :2], b[:, 2:]],
            a[:, [0, 0, 1, 1]] + b[:, [2, 2, 3, 3]]]
    w = a.copy()
    w[:, :2] = b[:, [1, 0]]
    rows.append(w.copy())
    w[:, 2:] += np.array([1, 2], F32)
    rows.append(w.copy())
    w[:, 2] = -w[:, 3]
    w[:, 1] *= F32(3)
    rows.append(w.copy())
    rows += [(((a + b) * F32(2)) - a) / F32(4), a + b, a - b, a * b, a / b, F32(2) * a - b, -a,
             (a < b), (a >= b), (a == b), (a != 1), (~(a > b)) & (a <= 2)]
    p = a[:, :3] + b[:, :3]
    rows += [np.c_[p, p[:, 1]], a + (a + 1)]
    return [np.asarray(r, dtype=F32) for r in rows]


def test_vectors(iface):
    rng = np.random.default_rng(17)
    count = 256
    a = np.round(rng.uniform(-8, 8, (count, 4)), 1).astype(F32)
    b = np.round(rng.uniform(-8, 8, (count, 4)), 1).astype(F32)
    a[0] = b[0] = [1, 2, 3, 4]  # equal components for == and >=
    rows = _vector_rows(a, b)
    (out,) = run(iface, "vectors.metal", "vector_ops", [a, b], [(len(rows) * count, "float4")], count)
    out = out.reshape(len(rows), count, 4)
    for k, want in enumerate(rows[:-1]):
        np.testing.assert_array_equal(out[k], want, err_msg=f"row {k}")
    # a + (a + 1): fast math may reassociate it into 2 * a + 1 (one rounding fewer)
    np.testing.assert_allclose(out[-1], rows[-1], rtol=0, atol=2.0 ** -18)  # 2 ulp of |x| < 32

    x = rng.integers(-2**31, 2**31, (count, 4)).astype(np.int32)
    y = rng.integers(-40, 40, (count, 4)).astype(np.int32)
    y[y == 0] = 7
    x[0], y[0] = [-2**31, 2**31 - 1, 5, -5], [-3, 33, 32, 64]  # shift counts at and past the width
    (iout,) = run(iface, "vectors.metal", "vector_int", [x, y], [(8 * count, "int4")], count)
    iout = iout.reshape(8, count, 4)
    x64, y64 = x.astype(np.int64), y.astype(np.int64)
    safe = ~((x64 == -2**31) & (y64 == -1))  # INT_MIN / -1 is undefined
    quotient = np.trunc(x64 / y64).astype(np.int64)
    np.testing.assert_array_equal(iout[0][safe], quotient[safe])
    np.testing.assert_array_equal(iout[1][safe], (x64 - quotient * y64)[safe])
    np.testing.assert_array_equal(iout[2], x.astype(np.int8))
    np.testing.assert_array_equal(iout[3], x.astype(np.uint16))
    np.testing.assert_array_equal(iout[4], np.c_[x[:, :2].astype(np.int16), y[:, 2:].astype(np.uint8)])
    np.testing.assert_array_equal(iout[5], (x64 * y64) >> 32)
    np.testing.assert_array_equal(iout[6], x[:, [1, 2, 3, 0]] & 0xFF)
    np.testing.assert_array_equal(iout[7], (x.view(np.uint32) >> (y.view(np.uint32) & 31)).view(np.int32))


def test_packed_swizzles_and_swizzle_components(iface):
    rng = np.random.default_rng(22)
    count = 128
    a = np.round(rng.uniform(-8, 8, (count, 4)), 1).astype(F32)
    (out,) = run(iface, "vectors.metal", "vector_swizzles_more", [a], [(5 * count, "float4")], count)
    out = out.reshape(5, count, 4)
    p = a[:, :3].copy()
    np.testing.assert_array_equal(out[0], np.c_[p[:, [2, 1, 0]], p[:, 0]])
    p[:, [2, 0]] = a[:, [3, 1]]
    p[:, :2] += F32(1)
    np.testing.assert_array_equal(out[1], np.c_[p, p[:, 1]])
    half_a = a.astype(np.float16).astype(F32)
    np.testing.assert_array_equal(out[2], np.c_[a[:, [1, 0]], half_a[:, [3, 2]]])
    w = a.copy()
    w[:, 2] = 5
    w[:, 0] += F32(2)
    np.testing.assert_array_equal(out[3], w)
    np.testing.assert_array_equal(out[4], np.c_[a[:, 3] * F32(2), a[:, 2] + a[:, 3], a[:, 2], half_a[:, 0]])


# ---- matrices -----------------------------------------------------------------------------------------------
def test_matrices(iface):
    rng = np.random.default_rng(18)
    count = 128
    ms = rng.uniform(-2, 2, (2 * count, 4, 4)).astype(F32)   # [matrix, column, row]
    vs = rng.uniform(-2, 2, (count, 4)).astype(F32)
    mout, vout, sout = run(iface, "matrices.metal", "matrix_ops", [ms, vs],
                           [(7 * 16 * count, "float"), (6 * count, "float4"), (3 * count, "float")], count)
    mout, vout, sout = mout.reshape(7, count, 4, 4), vout.reshape(6, count, 4), sout.reshape(3, count)
    # numpy with rows first: M[row, col] = stored[col, row]
    A = np.swapaxes(ms[0::2], 1, 2).astype(np.float64)
    B = np.swapaxes(ms[1::2], 1, 2).astype(np.float64)
    stored = lambda M: np.swapaxes(M, 1, 2)  # noqa: E731
    tol = dict(rtol=0, atol=4 * 4 * 4 * 2.0 ** -23)   # sums of 4 products of |x| <= 2, a few roundings
    np.testing.assert_allclose(mout[0], stored(A @ B), **tol)
    np.testing.assert_array_equal(mout[1], stored(A + B).astype(F32))
    np.testing.assert_allclose(mout[2], stored(A - 2 * B), **tol)
    np.testing.assert_array_equal(mout[3], ms[0::2].swapaxes(1, 2))
    np.testing.assert_array_equal(mout[4], np.broadcast_to(np.eye(4) * 3, (count, 4, 4)))
    v = vs.astype(np.float64)
    cols = np.stack([v, v[:, [1, 2, 3, 0]], -v, np.ones_like(v)], axis=1)
    np.testing.assert_array_equal(mout[5], cols)
    C = stored(A @ B + A).copy()
    C[:, 1] = v
    C[:, 2, 3] = 5
    np.testing.assert_allclose(mout[6], C, **tol)
    np.testing.assert_allclose(vout[0], np.einsum("nij,nj->ni", A, v), **tol)
    np.testing.assert_allclose(vout[1], np.einsum("ni,nij->nj", v, A), **tol)
    np.testing.assert_allclose(vout[2][:, :3], np.einsum("nij,nj->ni", A[:, :3, :3], v[:, :3]), **tol)
    R = A[:, :3, :2]                              # 3 rows, 2 columns
    RtR = np.swapaxes(R, 1, 2) @ R
    np.testing.assert_allclose(vout[3], np.c_[RtR[:, :, 0], RtR[:, :, 1]], **tol)
    np.testing.assert_allclose(vout[4][:, :3], np.einsum("nij,nj->ni", R, v[:, :2]), **tol)
    np.testing.assert_allclose(vout[5][:, :2], np.einsum("ni,nij->nj", v[:, :3], R), **tol)
    np.testing.assert_allclose(sout[0], np.linalg.det(A), rtol=0, atol=1e-3)   # 24 products of 4 factors <= 2
    np.testing.assert_allclose(sout[1], np.linalg.det(A[:, :3, :3]), rtol=0, atol=1e-4)
    np.testing.assert_allclose(sout[2], np.linalg.det(A[:, :2, :2]), rtol=0, atol=1e-5)

    mh = rng.uniform(-2, 2, (count, 4, 4)).astype(np.float16)
    vh = rng.uniform(-2, 2, (count, 4)).astype(np.float16)
    hv, hs = run(iface, "matrices.metal", "matrix_half", [mh, vh], [(3 * count, "half4"), (count, "half")], count)
    hv = hv.reshape(3, count, 4).astype(np.float64)
    H = np.swapaxes(mh, 1, 2).astype(np.float64)
    hvd = vh.astype(np.float64)
    np.testing.assert_allclose(hv[0], np.einsum("nij,nj->ni", H, hvd), rtol=0, atol=16 * 2.0 ** -10)
    np.testing.assert_array_equal(hv[1], mh[:, 3].astype(np.float64) * 2)
    np.testing.assert_allclose(hv[2], np.einsum("nij,nj->ni", H, hvd), rtol=0, atol=4 * 2.0 ** -10)
    np.testing.assert_allclose(hs.astype(np.float64), np.linalg.det(H[:, :2, :2]), rtol=0, atol=8 * 2.0 ** -10)


# ---- as_type and pack/unpack (exact) ------------------------------------------------------------------------
def _rne(x):
    return np.rint(x)  # numpy rounds half to even


def test_as_type_and_pack(iface):
    rng = np.random.default_rng(19)
    u = rng.integers(0, 2**32, N, dtype=np.uint32)
    u[:6] = [0x7F800000, 0xFF800000, 0x7FC00001, 0x00000001, 0x80000000, 0x3F800000]
    out, fout = run(iface, "astype_pack.metal", "as_type_ops", [u], [(8 * N, "uint"), (N, "float")], N)
    out = out.reshape(8, N)
    np.testing.assert_array_equal(fout.view(np.uint32), u)
    np.testing.assert_array_equal(out[0], u)
    np.testing.assert_array_equal(out[1], u)
    np.testing.assert_array_equal(out[2], (u >> 16) | (u << 16))
    np.testing.assert_array_equal(out[3], (u & 0xFF).astype(np.uint8).view(np.int8).astype(np.int64) + 128)
    np.testing.assert_array_equal(out[4], (u.view(np.int32) >> 4).view(np.uint32))
    np.testing.assert_array_equal(out[5], ~u)
    f = u.view(np.float32)
    finite = np.isfinite(f)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out[6][finite], f[finite].astype(np.float16).view(np.uint16))

    v = rng.uniform(-1.5, 1.5, (N, 4)).astype(F32)
    v[0] = [0.5 / 255, 1.5 / 255, np.nan, -0.0]        # ties round to even; NaN packs as 0
    v[1] = [2.0, -2.0, 0.5, -0.5]
    (packed,) = run(iface, "astype_pack.metal", "pack_ops", [v], [(6 * N, "uint")], N)
    packed = packed.reshape(6, N).astype(np.int64)
    vd = np.nan_to_num(v.astype(np.float64), nan=0.0)

    def pack(values, bits, signed):
        top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        # in float, as Metal converts: clamp, multiply (rounded to float32), round to nearest even
        scaled = np.clip(values, -1 if signed else 0, 1).astype(F32) * F32(top)
        c = _rne(scaled).astype(np.int64) & ((1 << bits) - 1)
        return sum(c[:, i] << (bits * i) for i in range(c.shape[1]))

    np.testing.assert_array_equal(packed[0], pack(vd, 8, False))
    np.testing.assert_array_equal(packed[1], pack(vd, 8, True))
    np.testing.assert_array_equal(packed[2], pack(vd[:, :2], 16, False))
    np.testing.assert_array_equal(packed[3], pack(vd[:, 2:], 16, True))
    vh = np.nan_to_num(v.astype(np.float16).astype(np.float64), nan=0.0)
    np.testing.assert_array_equal(packed[4], pack(vh, 8, False))
    np.testing.assert_array_equal(packed[5], pack(vh[:, :2], 16, True))

    (unpacked,) = run(iface, "astype_pack.metal", "unpack_ops", [u], [(5 * N, "float4")], N)
    unpacked = unpacked.reshape(5, N, 4).astype(np.float64)
    bytes_ = np.stack([(u >> (8 * i)) & 0xFF for i in range(4)], 1).astype(np.int64)
    shorts = np.stack([(u >> (16 * i)) & 0xFFFF for i in range(2)], 1).astype(np.int64)
    signed = lambda c, bits: np.where(c >= 1 << (bits - 1), c - (1 << bits), c)  # noqa: E731
    unorm8, snorm8 = bytes_ / 255.0, np.maximum(signed(bytes_, 8) / 127.0, -1)
    unorm16, snorm16 = shorts / 65535.0, np.maximum(signed(shorts, 16) / 32767.0, -1)
    f32 = lambda x: x.astype(F32).astype(np.float64)  # noqa: E731
    f16 = lambda x: x.astype(F32).astype(np.float16).astype(np.float64)  # noqa: E731
    np.testing.assert_array_equal(unpacked[0], f32(unorm8))      # c / 255 in float: correctly rounded
    np.testing.assert_array_equal(unpacked[1], f32(snorm8))
    np.testing.assert_array_equal(unpacked[2], f32(np.c_[unorm16, snorm16]))
    np.testing.assert_array_equal(unpacked[3], f16(unorm8))
    np.testing.assert_array_equal(unpacked[4], f16(np.c_[snorm16, unorm16]))


# ---- sRGB pack/unpack ------------------------------------------------------------------------------------------
# The linear <-> sRGB rules of the MSL specification's conversion chapter (IEC 61966-2-1's transfer function);
# alpha is plain unorm8. Computed here in float64.
def _srgb_to_linear(c):
    s = c / 255.0
    return np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x):
    x = np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)
    with np.errstate(invalid="ignore"):
        return np.where(x < 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def _pack_srgb(v):
    """The packed uint, and where a byte of it may be off by one: within 1e-4 of a rounding tie of 255 s."""
    scaled = np.c_[_linear_to_srgb(v[:, :3]) * 255.0, np.clip(np.nan_to_num(v[:, 3:], nan=0.0), 0, 1) * 255.0]
    codes = np.rint(scaled).astype(np.int64)
    near_tie = np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < 1e-4
    return sum(codes[:, i] << (8 * i) for i in range(4)), codes, near_tie


def test_srgb_pack_unpack(iface):
    rng = np.random.default_rng(21)
    v = rng.uniform(-0.2, 1.2, (N, 4)).astype(F32)
    v[0] = [np.nan, 0.0031308, 0.002, 1.0]
    v[1] = [0.5, 0.25, 0.75, 0.5 / 255]
    u = rng.integers(0, 2**32, N, dtype=np.uint32)
    u[:4] = [0x00000000, 0xFFFFFFFF, 0x0A0B0C0D, 0x80FF0B0A]  # codes 10 and 11 sit on each side of 0.04045
    packed, unpacked, unpacked_half = run(iface, "astype_pack.metal", "srgb_ops", [v, u],
                                          [(2 * N, "uint"), (N, "float4"), (N, "half4")], N)
    packed = packed.reshape(2, N).astype(np.int64)
    for row, values in ((0, v), (1, v.astype(np.float16))):
        want, codes, near_tie = _pack_srgb(values.astype(np.float64))
        got_codes = np.stack([(packed[row] >> (8 * i)) & 0xFF for i in range(4)], 1)
        exact = ~near_tie.any(axis=1)
        np.testing.assert_array_equal(packed[row][exact], want[exact], err_msg=f"row {row}")
        assert np.all(np.abs(got_codes - codes) <= 1), f"row {row}: a byte is off by more than one"

    codes = np.stack([(u >> (8 * i)) & 0xFF for i in range(4)], 1).astype(np.float64)
    linear = np.c_[_srgb_to_linear(codes[:, :3]), codes[:, 3:] / 255.0]
    # float: correctly rounded (the power runs in double); half: the float result rounded once more
    check_ulp("pack", "unpack_unorm4x8_srgb_to_float", unpacked.reshape(N, 4), linear, CR)
    want_half = linear.astype(F32).astype(np.float16)
    np.testing.assert_array_equal(unpacked_half.reshape(N, 4), want_half)


# ---- CUDA view: every conformance kernel compiles through NVRTC (no GPU needed) ----------------------------
@pytest.mark.parametrize("path", sorted(HERE.glob("*.metal")), ids=lambda p: p.stem)
def test_compiles_for_cuda(path):
    pytest.importorskip("cuda.bindings", reason="cuda.bindings (NVRTC) is not installed")
    from metalgpu.backends.base import CompileOptions
    from metalgpu.backends.nvrtc import nvrtc_compile
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess
    from metalgpu.msl.translate import translate

    pre = preprocess(path.read_text(), str(path))
    source = translate(pre, parse(pre.tokens), "cuda").source
    for options in (CompileOptions(), CompileOptions(fast_math=False)):
        assert nvrtc_compile(source, options, "sm_90")


# ---- unorm10a2 and unorm565 (exact) ----------------------------------------------------------------------------
def test_unequal_field_pack_unpack(iface):
    """x in the least significant bits; each field rint(clamp(f, 0, 1) * (2**bits - 1)), NaN as 0; back c / max."""
    rng = np.random.default_rng(23)
    v = rng.uniform(-0.3, 1.3, (N, 4)).astype(F32)
    v[0] = [np.nan, -0.0, 1.0, 0.5 / 3]   # 0.5 / 3 * 3 is a tie: to even (0)
    v[1] = [0.5 / 1023, 1.5 / 1023, 0.5 / 31, 2 / 3]
    u = rng.integers(0, 2**32, N, dtype=np.uint32)
    u[:2] = [0xFFFFFFFF, 0]
    packed, unpacked = run(iface, "astype_pack.metal", "field_pack_ops", [v, u], [(4 * N, "uint"),
                                                                                   (4 * N, "float4")], N)
    packed = packed.reshape(4, N).astype(np.int64)
    unpacked = unpacked.reshape(4, N, 4).astype(np.float64)

    def pack(values, widths):
        values = np.nan_to_num(values.astype(np.float64), nan=0.0)
        result, shift = 0, 0
        for i, bits in enumerate(widths):
            top = (1 << bits) - 1
            result = result + (_rne(np.clip(values[:, i], 0, 1).astype(F32) * F32(top)).astype(np.int64) << shift)
            shift += bits
        return result

    def unpack(words, widths):
        fields, shift = [], 0
        for bits in widths:
            fields.append(((words.astype(np.int64) >> shift) & ((1 << bits) - 1)) / ((1 << bits) - 1))
            shift += bits
        return np.stack(fields, 1)

    vh = v.astype(np.float16)
    np.testing.assert_array_equal(packed[0], pack(v, (10, 10, 10, 2)))
    np.testing.assert_array_equal(packed[1], pack(vh, (10, 10, 10, 2)))
    np.testing.assert_array_equal(packed[2], pack(v, (5, 6, 5)))
    np.testing.assert_array_equal(packed[3], pack(vh, (5, 6, 5)))
    f32 = lambda x: x.astype(F32).astype(np.float64)  # noqa: E731
    f16 = lambda x: x.astype(F32).astype(np.float16).astype(np.float64)  # noqa: E731
    np.testing.assert_array_equal(unpacked[0], f32(unpack(u, (10, 10, 10, 2))))
    np.testing.assert_array_equal(unpacked[1], f16(unpack(u, (10, 10, 10, 2))))
    short = u & 0xFFFF
    np.testing.assert_array_equal(unpacked[2][:, :3], f32(unpack(short, (5, 6, 5))))
    np.testing.assert_array_equal(unpacked[3][:, :3], f16(unpack(short, (5, 6, 5))))
