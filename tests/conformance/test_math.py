"""Conformance of the emulated Metal float functions on every backend: math, common, geometric, and half and
bfloat.

Each family has one kernel file beside this one (math, common, geometric, half_bfloat). A kernel writes row k
of its output for the k-th entry of the table here; the test runs it through the public API and compares with
numpy:

* IEEE-exact float operations and conversions: exactly;
* float functions: in ULPs of the float32 (or float16) reference, within the bound the MSL specification gives
  (chapter "Numerical compliance": the single-precision accuracy tables for fast math off (`precise::`) and on
  (`fast::`), and the half-precision table). "CR" (correctly rounded) is a bound of 0.5 ulp.
* Metal may flush subnormal inputs and results to zero, and with fast math NaN and infinity handling is
  undefined: fast functions are checked on finite inputs and results only.

Set METALGPU_CONFORMANCE_REPORT=<file> to append "family function max_ulp bound" lines (for the docs table).
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance_reference import CR, F32, N, check_ulp, float_inputs, flushed, report, run, ulp_error, widen


# ---- math ---------------------------------------------------------------------------------------------------
def _in(lo, hi):
    return lambda x: (x >= lo) & (x <= hi)


FINITE = np.isfinite
POSITIVE = lambda x: (x > 0) & np.isfinite(x)   # noqa: E731
NONNEG = lambda x: (x >= 0) & np.isfinite(x)    # noqa: E731


def _round_half_away(x):
    return np.where(np.isfinite(x), np.sign(x) * np.floor(np.abs(x) + 0.5), x)


def _fract(x):
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(x), 0.0, np.minimum(x - np.floor(x), np.nextafter(F32(1), F32(0))))


# name, numpy reference (float64), precise bound (ulp), domain where the bounds apply.
# Precise bounds: the MSL specification's Table 8.1 (single precision, fast math disabled; the same in MSL 3.x, 4
# and 4.1).
UNARY = [
    ("acos", np.arccos, 4, _in(-1, 1)), ("acosh", np.arccosh, 4, _in(1, np.inf)),
    ("asin", np.arcsin, 4, _in(-1, 1)), ("asinh", np.arcsinh, 4, FINITE),
    ("atan", np.arctan, 5, FINITE), ("atanh", np.arctanh, 5, _in(-1, 1)),
    ("cos", np.cos, 4, FINITE), ("cosh", np.cosh, 4, FINITE), ("sin", np.sin, 4, FINITE),
    ("sinh", np.sinh, 4, FINITE), ("tan", np.tan, 6, FINITE), ("tanh", np.tanh, 5, FINITE),
    ("exp", np.exp, 4, FINITE), ("exp2", np.exp2, 4, FINITE), ("exp10", lambda x: 10.0 ** x, 4, FINITE),
    ("log", np.log, 4, NONNEG), ("log2", np.log2, 4, NONNEG), ("log10", np.log10, 4, NONNEG),
    ("sqrt", np.sqrt, CR, NONNEG), ("rsqrt", lambda x: 1 / np.sqrt(x), CR, NONNEG),
    ("ceil", np.ceil, 0, None), ("floor", np.floor, 0, None), ("round", _round_half_away, 0, None),
    ("rint", np.rint, 0, None), ("trunc", np.trunc, 0, None), ("fract", _fract, CR, None), ("fabs", np.abs, 0, None),
]


def fast_bound(name, x, reference, precise_bound):
    """Per-element ULP bound and domain for fast:: (the MSL specification's Table 8.2: single precision, fast
    math enabled). Where that table gives only how the function is computed (acosh, asinh, atanh, sinh, cosh,
    tanh, exp10, log10, sqrt, tan), no bound, we hold fast:: to the precise bound, stricter than the spec."""
    ulp = np.spacing(np.abs(reference).astype(F32)).astype(np.float64)
    with np.errstate(all="ignore"):
        if name in ("sin", "cos"):   # max absolute error 2**-13 for x in [-pi, pi]
            return (2.0 ** -13) / ulp, _in(-np.pi, np.pi)(x)
        if name == "tan":            # spec: sin(x) * (1 / cos(x)), no bound; we check 4 * 2**-13 absolute on [-1, 1]
            return 4 * (2.0 ** -13) / ulp, _in(-1, 1)(x)
        if name in ("exp", "exp2"):  # 3 + floor(|2 x|) ulp
            return 3 + np.floor(np.abs(2 * x)), FINITE(x)
        # 2**-21 (log) / 2**-22 (log2) absolute on [0.5, 2]; 3 (log) / 2 (log2) ulp elsewhere
        if name in ("log", "log2"):
            absolute, elsewhere = (2.0 ** -21, 3) if name == "log" else (2.0 ** -22, 2)
            return np.where(_in(0.5, 2)(x), absolute / ulp, elsewhere), NONNEG(x)
        if name in ("acos", "asin"):  # 5 ulp
            return np.full_like(x, 5.0), _in(-1, 1)(x)
        if name == "rsqrt":          # 2 ulp
            return np.full_like(x, 2.0), NONNEG(x)
    return np.full_like(x, float(precise_bound)), None


def test_log_of_subnormal_arguments(iface):
    x = np.array([2.0 ** -149, 2.0 ** -127, 2.0 ** -130, 1e-40] * 4, dtype=F32)
    (out,) = run(iface, "math.metal", "math_unary_precise", [x], [(len(UNARY) * len(x), "float")], len(x))
    k = [u[0] for u in UNARY].index("log")
    got = out[k * len(x):(k + 1) * len(x)]
    exact = np.log(widen(x))
    assert np.all((ulp_error(got, exact) <= 4) | (got == -np.inf)), got


@pytest.mark.parametrize("flavour", ["precise", "fast"])
def test_math_unary(iface, flavour):
    x = float_inputs(N, seed=1)
    (out,) = run(iface, "math.metal", f"math_unary_{flavour}", [x], [(len(UNARY) * N, "float")], N)
    xd, xf = widen(x), flushed(x)
    for k, (name, ref, bound, domain) in enumerate(UNARY):
        with np.errstate(all="ignore"):
            expected, expected_flushed = ref(xd), ref(xf)
        got = out[k * N:(k + 1) * N]
        # Metal may flush a subnormal argument to zero: the result for the flushed argument is accepted too
        expected = np.where(ulp_error(got, expected_flushed) < ulp_error(got, expected), expected_flushed, expected)
        if flavour == "precise":
            mask = None if domain is None else (domain(xd) | np.isnan(xd) | np.isinf(xd))
            check_ulp("math.precise", name, got, expected, bound, mask)
        else:
            per_elem, fdomain = fast_bound(name, xd, expected, bound)
            mask = np.isfinite(xd) & np.isfinite(expected) & (fdomain if fdomain is not None else True)
            if domain is not None:
                mask &= domain(xd)
            err = np.where(mask, ulp_error(got, expected), 0.0)
            ratio = np.where(mask, err / np.maximum(per_elem, 1e-30), 0.0)
            report("math.fast", name, float(np.max(err)), "fast_bound")
            i = int(np.argmax(ratio))
            assert ratio[i] <= 1.0, f"fast::{name}({x[i]!r}) = {got[i]!r}, expected {expected[i]!r}"


def _atan2(a, b):
    return np.arctan2(a, b)


# name, reference, precise bound, domain of (a, b)
BINARY = [
    ("atan2", _atan2, 6, None), ("pow", np.power, 16, lambda a, b: a > 0), ("powr", np.power, 16, lambda a, b: a > 0),
    ("fmod", np.fmod, 0, None), ("fmin", np.fmin, 0, None), ("fmax", np.fmax, 0, None),
    ("copysign", np.copysign, 0, None),
    ("fdim", lambda a, b: np.where(np.isnan(a) | np.isnan(b), np.nan, np.where(a > b, a - b, 0.0)), CR, None),
    ("divide", np.divide, CR, None), ("nextafter", None, 0, None),
    ("fma", lambda a, b: a * b + a, CR, None),
    ("fmin3", lambda a, b: np.fmin(np.fmin(a, b), 1.0), 0, None),
    ("fmax3", lambda a, b: np.fmax(np.fmax(a, b), 1.0), 0, None),
    ("fmedian3", lambda a, b: np.fmax(np.fmin(a, b), np.fmin(np.fmax(a, b), 1.0)), 0, None),
]
FAST_BINARY = {"divide": 2.5}  # x / y: 2.5 ulp for |y| in [2**-126, 2**126]


@pytest.mark.parametrize("flavour", ["precise", "fast"])
def test_math_binary(iface, flavour):
    a = float_inputs(N, seed=2)
    b = np.random.default_rng(3).permutation(float_inputs(N, seed=4))
    (out,) = run(iface, "math.metal", f"math_binary_{flavour}", [a, b], [(len(BINARY) * N, "float")], N)
    ad, bd = widen(a), widen(b)
    for k, (name, ref, bound, domain) in enumerate(BINARY):
        got = out[k * N:(k + 1) * N]
        with np.errstate(all="ignore"):
            expected = np.nextafter(a, b).astype(np.float64) if ref is None else ref(ad, bd)
            if name in ("fma", "fdim", "divide"):  # the exact result rounded once
                expected = expected.astype(F32).astype(np.float64)
        mask = np.ones(N, bool) if domain is None else domain(ad, bd)
        if flavour == "fast":
            mask &= np.isfinite(ad) & np.isfinite(bd) & np.isfinite(expected)
            if name == "divide":
                mask &= (np.abs(bd) >= 2.0 ** -126) & (np.abs(bd) <= 2.0 ** 126)
            bound = FAST_BINARY.get(name, bound)
        # a flushed subnormal argument changes these results by more than an ulp of a tiny result: skip them
        mask &= ~((np.abs(ad) < 2.0 ** -126) & (ad != 0)) & ~((np.abs(bd) < 2.0 ** -126) & (bd != 0))
        check_ulp(f"math.{flavour}", name, got, expected, bound, mask)


def test_math_parts_and_vectors(iface):
    x = float_inputs(N, seed=5)
    e = np.random.default_rng(6).integers(-10, 10, N).astype(np.int32)
    out, iout = run(iface, "math.metal", "math_parts", [x, e], [(6 * N, "float"), (N, "int")], N)
    finite = np.isfinite(x)
    mant, ex = np.frexp(x)
    np.testing.assert_array_equal(out[0:N][finite], mant[finite])           # frexp: 0 ulp
    np.testing.assert_array_equal(iout[finite], ex[finite])
    frac, whole = np.modf(x)
    np.testing.assert_array_equal(out[N:2 * N][finite], frac[finite])       # modf: 0 ulp
    np.testing.assert_array_equal(out[2 * N:3 * N], whole)
    with np.errstate(over="ignore"):
        check_ulp("math", "ldexp", out[3 * N:4 * N], np.ldexp(x.astype(np.float64), e), CR)  # CR
    check_ulp("math", "sincos.sin", out[4 * N:5 * N], np.sin(x.astype(np.float64)), 4, finite)
    check_ulp("math", "sincos.cos", out[5 * N:6 * N], np.cos(x.astype(np.float64)), 4, finite)

    v = np.random.default_rng(7).uniform(-4, 4, 4 * N).astype(F32)
    (vout,) = run(iface, "math.metal", "math_vector", [v], [(6 * N, "float4")], N)
    vout = vout.reshape(6, N * 4)
    vd = v.astype(np.float64)
    check_ulp("math", "cos(float4)", vout[0], np.cos(vd), (2.0 ** -13) / 2.0 ** -24)  # fast default: 2**-13 abs
    check_ulp("math", "exp(float4.wzyx)", vout[1], np.exp(vd), 3 + np.floor(2 * 4))  # fast: 3 + floor(|2x|)
    np.testing.assert_array_equal(vout[2], np.fmax(v, F32(0.5)))
    check_ulp("math", "pow(float4)", vout[3], np.sqrt(np.abs(vd)), 16)
    sq = np.sqrt(np.abs(vd)).reshape(N, 4)
    expect = np.concatenate([sq[:, :2], 1 / sq[:, 2:]], axis=1).ravel()
    lanes, expect = vout[4].reshape(N, 4), expect.reshape(N, 4)
    check_ulp("math", "precise::sqrt(float2)", lanes[:, :2], expect[:, :2], CR)
    check_ulp("math", "rsqrt(float2)", lanes[:, 2:], expect[:, 2:], 2)  # default (fast) math: 2 ulp
    check_ulp("math", "fma(float4)", vout[5], (vd * 2 + vd).astype(F32), CR)


# ---- common --------------------------------------------------------------------------------------------------
def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


def _median3(a, b, c):
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


COMMON = [  # name, reference; mix and smoothstep are checked against the formula Metal defines them by
    ("clamp", lambda a, b, c: np.clip(a, -1, 2)), ("mix", lambda a, b, c: a + (b - a) * c),
    ("saturate", lambda a, b, c: np.clip(a, 0, 1)), ("sign", lambda a, b, c: np.sign(a)),
    ("smoothstep", lambda a, b, c: _smoothstep(-1.0, 2.0, a)), ("step", lambda a, b, c: np.where(a < b, 0.0, 1.0)),
    ("min", lambda a, b, c: np.minimum(a, b)), ("max", lambda a, b, c: np.maximum(a, b)),
    ("min3", lambda a, b, c: np.minimum(np.minimum(a, b), c)),
    ("max3", lambda a, b, c: np.maximum(np.maximum(a, b), c)), ("median3", _median3),
]


@pytest.mark.parametrize("kernel", ["common_float", "common_vector", "common_half"])
def test_common(iface, kernel):
    rng = np.random.default_rng(8)
    dtype, kind = (np.float16, "half") if kernel == "common_half" else (F32, "float")
    a, b = rng.uniform(-3, 3, N).astype(dtype), rng.uniform(-3, 3, N).astype(dtype)
    a[:4] = [0.0, -0.0, 1.0, -1.0]
    t = rng.uniform(0, 1, N).astype(dtype)
    count, out_kind = (N // 4, "float4") if kernel == "common_vector" else (N, kind)
    (out,) = run(iface, "common.metal", kernel, [a, b, t], [(len(COMMON) * count, out_kind)], count)
    out = out.reshape(len(COMMON), N).astype(np.float64)
    ad, bd, td = (v.astype(np.float64) for v in (a, b, t))
    eps = float(np.finfo(dtype).eps)
    for k, (name, ref) in enumerate(COMMON):
        expected = ref(ad, bd, td)
        if name == "mix":         # x + (y - x) * a: three roundings (two with a fused multiply-add)
            assert np.all(np.abs(out[k] - expected) <= 3 * eps * (np.abs(ad) + np.abs(bd - ad) * td)), name
        elif name == "smoothstep":  # t = (x - e0) / (e1 - e0), t * t * (3 - 2 t): a handful of roundings in [0, 1]
            assert np.all(np.abs(out[k] - expected) <= 8 * eps), name
        else:                     # exact
            check_ulp("common." + kind, name, out[k], expected, 0, dtype=dtype, flush_ok=False)


def test_clamp_and_saturate_flavours(iface):
    v = np.random.default_rng(10).uniform(-3, 3, (N, 4)).astype(F32)
    v[0] = [0.0, -0.0, 1.0, -1.0]
    (out,) = run(iface, "common.metal", "common_flavours", [v], [(7 * N, "float4")], N)
    out = out.reshape(7, N, 4)
    clamped, saturated = np.clip(v, -1, 2), np.clip(v, 0, 1)
    np.testing.assert_array_equal(out[0], np.c_[clamped[:, :2], saturated[:, 2:]])  # exact, in every flavour
    for k, want in enumerate([clamped, clamped, saturated, saturated], start=1):
        np.testing.assert_array_equal(out[k], want, err_msg=f"row {k}")
    vh = v.astype(np.float16).astype(F32)
    np.testing.assert_array_equal(out[5], np.clip(vh, -1, 2))
    np.testing.assert_array_equal(out[6], np.clip(vh, 0, 1))


# ---- geometric -----------------------------------------------------------------------------------------------
def _dot_tolerance(a, b, n_terms, eps):
    """Error of an n-term dot product: n * eps * sum |a_i b_i| (each product and sum rounds once)."""
    return n_terms * eps * np.sum(np.abs(a * b), axis=-1)


def test_geometric(iface):
    rng = np.random.default_rng(9)
    a = rng.uniform(-4, 4, (N, 3)).astype(F32)
    b = rng.uniform(-4, 4, (N, 3)).astype(F32)
    eta = rng.uniform(0.5, 1.5, N).astype(F32)
    scalars, vectors = run(iface, "geometric.metal", "geometric_float3", [a, b, eta],
                           [(5 * N, "float"), (5 * N, "packed_float3")], N)
    scalars, vectors = scalars.reshape(5, N), vectors.reshape(5, N, 3)
    ad, bd = a.astype(np.float64), b.astype(np.float64)
    eps = 2.0 ** -23
    dot = np.sum(ad * bd, axis=1)
    assert np.all(np.abs(scalars[0] - dot) <= _dot_tolerance(ad, bd, 3, eps))
    length = np.linalg.norm(ad, axis=1)
    check_ulp("geometric", "length", scalars[1], length, 4)                    # sqrt of a 3-term sum
    check_ulp("geometric", "length_squared", scalars[2], length ** 2, 3)
    check_ulp("geometric", "distance", scalars[3], np.linalg.norm(ad - bd, axis=1), 4)
    check_ulp("geometric", "distance_squared", scalars[4], np.sum((ad - bd) ** 2, axis=1), 4)
    cross = np.cross(ad, bd)
    assert np.all(np.abs(vectors[0] - cross) <= 2 * eps * (np.abs(ad[:, [1, 2, 0]] * bd[:, [2, 0, 1]])
                                                       + np.abs(ad[:, [2, 0, 1]] * bd[:, [1, 2, 0]])))
    unit_a = ad / length[:, None]
    np.testing.assert_allclose(vectors[1], unit_a, rtol=0, atol=8 * eps)       # rsqrt(dot) * x: a few ulp of 1
    ff = np.where((np.sum(ad[:, [2, 0, 1]] * bd, axis=1) < 0)[:, None], ad, -ad)
    np.testing.assert_array_equal(vectors[2], ff.astype(F32))
    unit_b = bd / np.linalg.norm(bd, axis=1)[:, None]
    reflect = ad - 2 * np.sum(unit_b * ad, axis=1)[:, None] * unit_b
    np.testing.assert_allclose(vectors[3], reflect, rtol=0, atol=64 * eps)    # |a| <= 7: a few ulp of 8
    d = np.sum(unit_b * unit_a, axis=1)
    k = 1 - eta ** 2 * (1 - d ** 2)
    refract = np.where((k < 0)[:, None], 0.0,
                       eta[:, None] * unit_a - (eta * d + np.sqrt(np.maximum(k, 0)))[:, None] * unit_b)
    near_critical = np.abs(k) < 1e-3   # sqrt(k) amplifies the rounding of k there
    np.testing.assert_allclose(vectors[4][~near_critical], refract[~near_critical], rtol=0, atol=16 * eps)

    a4 = rng.uniform(-4, 4, (N, 4)).astype(F32)
    b4 = rng.uniform(-4, 4, (N, 4)).astype(F32)
    s4, v4 = run(iface, "geometric.metal", "geometric_float4", [a4, b4], [(3 * N, "float"), (2 * N, "float4")], N)
    s4, v4 = s4.reshape(3, N), v4.reshape(2, N, 4)
    a4d, b4d = a4.astype(np.float64), b4.astype(np.float64)
    assert np.all(np.abs(s4[0] - np.sum(a4d * b4d, axis=1)) <= _dot_tolerance(a4d, b4d, 4, eps))
    check_ulp("geometric", "length(float4)", s4[1], np.linalg.norm(a4d, axis=1), 4)
    check_ulp("geometric", "distance(swizzles)", s4[2], np.linalg.norm(a4d[:, :3] - b4d[:, :3], axis=1), 4)
    np.testing.assert_allclose(v4[0], a4d / np.linalg.norm(a4d, axis=1)[:, None], rtol=0, atol=8 * eps)

    ah = rng.uniform(-2, 2, (N, 4)).astype(np.float16)
    bh = rng.uniform(-2, 2, (N, 4)).astype(np.float16)
    sh, vh = run(iface, "geometric.metal", "geometric_half4", [ah, bh], [(2 * N, "half"), (N, "half4")], N)
    sh = sh.reshape(2, N).astype(np.float64)
    ahd, bhd = ah.astype(np.float64), bh.astype(np.float64)
    # half: each of the 7 operations rounds to binary16 (eps 2**-10)
    assert np.all(np.abs(sh[0] - np.sum(ahd * bhd, axis=1)) <= _dot_tolerance(ahd, bhd, 4, 2.0 ** -10) + 2.0 ** -24)
    np.testing.assert_allclose(sh[1], np.linalg.norm(ahd, axis=1), rtol=4 * 2.0 ** -10, atol=2.0 ** -14)
    nz = np.linalg.norm(ahd, axis=1) > 0.1
    np.testing.assert_allclose(vh.reshape(N, 4)[nz], (ahd / np.linalg.norm(ahd, axis=1)[:, None])[nz],
                               rtol=0, atol=8 * 2.0 ** -10)


# ---- half and bfloat -------------------------------------------------------------------------------------------
def _bfloat_bits(x: np.ndarray) -> np.ndarray:
    """float32 to bfloat16 bits, round to nearest even, NaN kept quiet."""
    u = x.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF
    return np.where(np.isnan(x), (u >> 16) | 0x40, rounded).astype(np.uint16)


def test_half_and_bfloat(iface):
    x = float_inputs(N, seed=20)
    x[-8:] = [65504.0, 65520.0, 65519.99, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 1.00048828125, 1.0009765625 + 2**-12]
    h, b, back = run(iface, "half_bfloat.metal", "narrow_convert", [x], [(N, "half"), (N, "ushort"), (2 * N, "float")],
                     N)
    with np.errstate(over="ignore"):
        want_h = x.astype(np.float16)
    np.testing.assert_array_equal(h.view(np.uint16)[~np.isnan(x)], want_h.view(np.uint16)[~np.isnan(x)])
    assert np.all(np.isnan(h[np.isnan(x)]))
    np.testing.assert_array_equal(b[~np.isnan(x)], _bfloat_bits(x)[~np.isnan(x)])
    np.testing.assert_array_equal(back[:N].view(np.uint32)[~np.isnan(x)],
                                  want_h.astype(F32).view(np.uint32)[~np.isnan(x)])

    rng = np.random.default_rng(21)
    a = rng.uniform(-100, 100, N).astype(np.float16)
    c = rng.uniform(-100, 100, N).astype(np.float16)
    c[c == 0] = 1
    a[:4], c[:4] = [65504, -65504, 6e-5, 0.1], [65504, 1, 6e-5, 3]
    (ho,) = run(iface, "half_bfloat.metal", "half_arith", [a, c], [(7 * N, "half")], N)
    ho = ho.reshape(7, N)
    with np.errstate(over="ignore"):   # each operation rounds once to binary16, as numpy's float16 does
        for k, want in enumerate([a + c, a - c, a * c, a / c, -a, (a * np.float16(2.5)) + np.float16(1), a]):
            np.testing.assert_array_equal(ho[k], want, err_msg=f"half row {k}")

    ab = _bfloat_bits(rng.uniform(-100, 100, N).astype(F32))
    cb = _bfloat_bits(rng.uniform(1, 100, N).astype(F32))
    (bo,) = run(iface, "half_bfloat.metal", "bfloat_arith", [ab, cb], [(6 * N, "ushort")], N)
    bo = bo.reshape(6, N)
    af = (ab.astype(np.uint32) << 16).view(F32)
    cf = (cb.astype(np.uint32) << 16).view(F32)
    for k, want in enumerate([af + cf, af - cf, af * cf, af / cf, -af, cf]):
        np.testing.assert_array_equal(bo[k], _bfloat_bits(want.astype(F32)), err_msg=f"bfloat row {k}")

    hm = rng.uniform(0.05, 4, N).astype(np.float16)
    (mo,) = run(iface, "half_bfloat.metal", "half_math", [hm], [(16 * N, "half")], N)
    mo = mo.reshape(16, N)
    hd = hm.astype(np.float64)
    refs = [np.sin(hd), np.cos(hd), np.tan(hd), np.exp(hd), np.exp2(hd), np.log(hd), np.log2(hd), np.sqrt(hd),
            1 / np.sqrt(hd), np.arctan(hd), np.tanh(hd), np.floor(hd), hd - np.floor(hd), np.sqrt(hd), hd * hd + hd,
            np.cos(hd)]
    names = ["sin", "cos", "tan", "exp", "exp2", "log", "log2", "sqrt", "rsqrt", "atan", "tanh", "floor", "fract",
             "pow", "fma", "cos(half4)"]
    # The spec's half table (Table 8.3): 1 ulp for the transcendental functions, correctly rounded for sqrt,
    # rsqrt, floor, fract and fma. It has no row for pow: held to 1 ulp here.
    correctly_rounded = {"sqrt", "rsqrt", "floor", "fract", "fma"}
    for k, (name, ref) in enumerate(zip(names, refs)):
        check_ulp("half", name, mo[k], ref, CR if name in correctly_rounded else 1.0, dtype=np.float16)


# ---- sinpi, cospi, tanpi, ilogb ---------------------------------------------------------------------------------
def _sin_cos_pi(x):
    """sin(pi x) and cos(pi x) in float64, reduced exactly first (x = k / 2 + r, |r| <= 1/4; exact in float64
    for float32 and float16 x), so that integers and half-integers give exact zeros and ones."""
    with np.errstate(invalid="ignore"):
        k = np.round(2 * x)
        r = x - k / 2
        q = np.where(np.isfinite(k), k, 0).astype(np.int64) % 4
    s, c = np.sin(np.pi * r), np.cos(np.pi * r)
    sin_pi = np.choose(q, [s, c, -s, -c])
    cos_pi = np.choose(q, [c, -s, -c, s])
    return sin_pi, cos_pi


# Precise bounds 4, 4 and 6 ulp: the single-precision table's bounds for sinpi, cospi and tanpi (the same as
# OpenCL's). The fast forms are the same functions here, checked against the same bounds on finite inputs.
PI_FUNCTIONS = [("sinpi", 0, 4), ("cospi", 1, 4), ("tanpi", 2, 6)]


def _pi_references(x):
    sin_pi, cos_pi = _sin_cos_pi(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        tan_pi = sin_pi / cos_pi
    return [sin_pi, cos_pi, tan_pi], cos_pi != 0  # tanpi's poles (half-integers) are left out


def _ilogb(x):
    finite_nonzero = np.isfinite(x) & (x != 0)
    exponent = np.frexp(np.where(finite_nonzero, x, 1.0))[1] - 1
    int_min, int_max = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    return np.where(finite_nonzero, exponent, np.where(np.isinf(x), int_max, int_min))


def test_half_fma_rounds_once(iface):
    """fma of halves, correctly rounded (spec Table 8.3). The first rows are inputs where an fma in float followed
    by a rounding to half (two roundings) is one ulp off; numpy computes a * b + c exactly in float64 here."""
    hard = np.array([[0x3fa3, 0x300b, 0xc281], [0x4057, 0x2f67, 0xc0d6], [0x2a87, 0xb648, 0x3dff],
                     [0x3f13, 0xace5, 0xbdf9]], dtype=np.uint16).view(np.float16)
    rng = np.random.default_rng(24)
    a, b, c = (np.concatenate([hard[:, k], rng.uniform(-4, 4, N).astype(np.float16)]) for k in range(3))
    (out,) = run(iface, "half_bfloat.metal", "half_fma", [a, b, c], [(len(a), "half")], len(a))
    exact = a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)
    np.testing.assert_array_equal(out, exact.astype(np.float16))  # numpy's float64 -> float16 rounds once


def test_pi_functions_and_ilogb(iface):
    x = float_inputs(N, seed=11)
    x[-8:] = [0.25, -0.75, 1.5, 3.0, -4.0, 8388607.5, 2.0 ** 23 + 1, 0.5 + 2.0 ** -24]
    out, iout = run(iface, "math.metal", "math_pi", [x], [(10 * N, "float"), (N, "int")], N)
    out = out.reshape(10, N)
    xd = widen(x)
    refs, off_pole = _pi_references(xd)
    for name, k, bound in PI_FUNCTIONS:
        mask = off_pole if name == "tanpi" else None
        check_ulp("math.precise", name, out[k], refs[k], bound, mask)
        fast_mask = np.isfinite(xd) & (off_pole if name == "tanpi" else True)
        check_ulp("math.fast", name, out[3 + k], refs[k], bound, fast_mask)
    np.testing.assert_array_equal(iout, _ilogb(xd))  # ilogb: exact, subnormals included
    # asinpi, acospi, atanpi 5 ulp, atan2pi 6 ulp: the spec's tables have no rows for these; OpenCL's bounds
    with np.errstate(invalid="ignore"):
        inverse = [np.arcsin(xd), np.arccos(xd), np.arctan(xd), np.arctan2(xd, -0.5)]
    for k, (name, ref, bound) in enumerate(zip(["asinpi", "acospi", "atanpi", "atan2pi"], inverse, [5, 5, 5, 6])):
        mask = None if name in ("atanpi", "atan2pi") else ~(np.abs(xd) > 1)
        check_ulp("math", name, out[6 + k], ref / np.pi, bound, mask)

    v = np.random.default_rng(12).uniform(-4, 4, 4 * N).astype(F32)
    vout, viout = run(iface, "math.metal", "math_pi_vector", [v], [(3 * N, "float4"), (N, "int4")], N)
    vout = vout.reshape(3, 4 * N)
    vrefs, voff_pole = _pi_references(widen(v))
    for name, k, bound in PI_FUNCTIONS:
        check_ulp("math", f"{name}(float4)", vout[k], vrefs[k], bound, voff_pole if name == "tanpi" else None)
    np.testing.assert_array_equal(viout.ravel(), _ilogb(widen(v)))

    h = np.random.default_rng(13).uniform(-6, 6, N).astype(np.float16)
    h[:6] = [0.0, 0.5, -1.0, 2.5, 0.25, 1000.0]
    (hout,) = run(iface, "math.metal", "math_pi_half", [h], [(4 * N, "half")], N)
    hout = hout.reshape(4, N)
    hrefs, hoff_pole = _pi_references(h.astype(np.float64))
    # computed in float and rounded to half: within 1 ulp of binary16
    for name, k, _ in PI_FUNCTIONS:
        check_ulp("half", name, hout[k], hrefs[k], 1.0, hoff_pole if name == "tanpi" else None, dtype=np.float16)
    check_ulp("half", "sinpi(half4)", hout[3], hrefs[0], 1.0, dtype=np.float16)
