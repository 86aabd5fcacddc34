"""The emulation header (src/metalgpu/msl/include): compiled with the host C++ compiler and the CPU backend's
flags, checked against numpy.

tests/header/values.cpp prints one "expression: values" line per check; the expectations below are numpy
float32 (or float16, integer) computations of the same expressions. Tolerances:
  exact      integers, booleans, and float results that IEEE arithmetic gives exactly (+-*/, sqrt, rounding);
  TRANSCEND  rtol 4e-6 (glibc and its libmvec vector variants are within 4 ulp of the correctly rounded float);
  HALF       rtol 1e-3 (half results are float results rounded to binary16: within one half ulp, 2**-11).
"""

import math
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from metalgpu.msl.preprocess import preprocess
from metalgpu.msl.swizzles import rewrite as rewrite_swizzles

ROOT = pathlib.Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "src/metalgpu/msl/include"
HEADER_TESTS = ROOT / "tests/header"
CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")
CPU_FLAGS = ["-std=c++17", "-O3", "-march=native", "-ffast-math", "-fno-finite-math-only", "-D__FAST_MATH__=1"]

pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++ or clang++) found")

EXACT = dict(rtol=0.0, atol=0.0)
TRANSCEND = dict(rtol=4e-6, atol=1e-7)
HALF = dict(rtol=1e-3, atol=1e-4)

f32 = np.float32
inf, nan = np.inf, np.nan


def v(*xs):
    return np.array(xs, dtype=np.float64)


def fv(*xs):
    return np.array(xs, dtype=np.float32)


def compile_cpp(src, out, extra=()):
    """Compile a test source the way the translator would see it: preprocessed by metalgpu (so macros such as
    SHOW(v.zyx) print the expression as written) and with its swizzles rewritten (C++ has none)."""
    pre = preprocess(pathlib.Path(src).read_text(), str(src))
    texts = [t.text for t in pre.tokens]
    helpers = rewrite_swizzles(pre.tokens, texts)
    lines, line = [], None
    for tok, text in zip(pre.tokens, texts):
        if (tok.file, tok.line) != line:
            lines.append("")
            line = (tok.file, tok.line)
        lines[-1] += " " + text
    translated = pathlib.Path(out).with_suffix(".cpp")
    translated.write_text("#include <metal_stdlib>\n" + helpers + "\n".join(lines) + "\n")
    cmd = [CXX, *CPU_FLAGS, f"-I{INCLUDE}", *extra, str(translated), "-o", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def values(tmp_path_factory):
    exe = tmp_path_factory.mktemp("header") / "values"
    res = compile_cpp(HEADER_TESTS / "values.cpp", exe)
    assert res.returncode == 0, res.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        name, _, rest = line.rpartition(": ")
        # %.9g identifies a float32 uniquely: round back to it
        values = np.array([float(t) for t in rest.split()], dtype=np.float32)
        table.setdefault(name, []).append(values.astype(np.float64))
    return table


a = fv(1, 2, 3, 4)
ang = fv(0.0, 0.5, -1.25, 3.0)
r = fv(-1.5, -0.5, 0.5, 2.5)
i4 = np.array([7, -7, 12, 5], dtype=np.int32)
h4 = np.array([1.0, 2.0, 0.5, -4.0], dtype=np.float16)

with np.errstate(all="ignore"):
    CASES = [
        # constructors
        ("float4(2.5f)", v(2.5, 2.5, 2.5, 2.5), EXACT),
        ("float4(c3, 1.0f)", v(5, 6, 7, 1), EXACT),
        ("float4(1.0f, c3)", v(1, 5, 6, 7), EXACT),
        ("float4(c2, c2.yx)", v(8, 9, 9, 8), EXACT),
        ("float4(c2, 1, 2)", v(8, 9, 1, 2), EXACT),
        ("float4(1, c2, 2)", v(1, 8, 9, 2), EXACT),
        ("float4(1, 2, c2)", v(1, 2, 8, 9), EXACT),
        ("float3(a.xyz)", v(1, 2, 3), EXACT),
        ("float3(a.wzy)", v(4, 3, 2), EXACT),
        ("float4(int4(-1, 2, -3, 4))", v(-1, 2, -3, 4), EXACT),
        ("int4(float4(-1.75f, 1.75f, 2.5f, -2.5f))", v(-1, 1, 2, -2), EXACT),
        ("uint3(1u, 2u, 3u)", v(1, 2, 3), EXACT),
        ("ushort2(65535, 7)", v(65535, 7), EXACT),
        ("from_packed", v(5, 6, 7), EXACT),
        ("p + p", v(10, 12, 14), EXACT),
        ("float3(p)", v(5, 10, 11), EXACT),
        ("zero", v(0, 0, 0, 0), EXACT),
        # swizzles
        ("a.zyx", v(3, 2, 1), EXACT),
        ("a.xxxx", v(1, 1, 1, 1), EXACT),
        ("a.wy", v(4, 2), EXACT),
        ("a.bgra", v(3, 2, 1, 4), EXACT),
        ("a.xy + a.zw", v(4, 6), EXACT),
        ("a.xy * 2.0f", v(2, 4), EXACT),
        ("-a.zw", v(-3, -4), EXACT),
        # operators
        ("a + a.wzyx", a + a[::-1], EXACT),
        ("a - 1.0f", a - 1, EXACT),
        ("10.0f / a", f32(10) / a, EXACT),
        ("a * a", a * a, EXACT),
        ("i4 / 2", np.trunc(i4 / 2), EXACT),
        ("i4 % 3", np.fmod(i4, 3), EXACT),
        ("i4 & 6", i4 & 6, EXACT),
        ("i4 | 1", i4 | 1, EXACT),
        ("i4 ^ 3", i4 ^ 3, EXACT),
        ("i4 << 2", i4 << 2, EXACT),
        ("i4 >> 1", i4 >> 1, EXACT),
        ("~i4", ~i4, EXACT),
        ("-i4", -i4, EXACT),
        ("u2 >> 31", v(0, 1), EXACT),
        ("chsum", np.array([100, 100, -100, 1], dtype=np.int8) * np.int8(2), EXACT),
        ("uc + uchar2(10, 10)", np.array([250, 3], dtype=np.uint8) + np.uint8(10), EXACT),
        ("a < float4(2.0f)", a < 2, EXACT),
        ("a == a.xyzw", v(1, 1, 1, 1), EXACT),
        ("a >= 3.0f", a >= 3, EXACT),
        ("bool2(true, false) && bool2(true, true)", v(1, 0), EXACT),
        ("bool2(true, false) || bool2(false, false)", v(1, 0), EXACT),
        ("!bool2(true, false)", v(0, 1), EXACT),
        ("ic", (i4 + 1) << 1, EXACT),
        ("inc", a + 1, EXACT),
        # half and bfloat
        ("hf", v(3.0), EXACT),
        ("hh", v(2.25), EXACT),
        ("half(65504.0f) * half(2.0f)", v(inf), EXACT),
        ("half(0.1f)", v(float(np.float16(0.1))), EXACT),
        ("half(3) + 1", v(4), EXACT),
        ("h4 * half(2.0f)", h4 * np.float16(2), EXACT),
        ("float4(h4) + 0.25f", h4.astype(np.float32) + f32(0.25), EXACT),
        ("bfloat(1.0f / 3.0f)", v(0.333984375), EXACT),
        ("bfloat(3.0f) * bfloat(1.5f)", v(4.5), EXACT),
        ("bfloat(1.00390625f)", v(1.0), EXACT),
        ("bfloat(1.01171875f)", v(1.015625), EXACT),
        ("b2 * bfloat(0.5f)", v(1, 2), EXACT),
        # math
        ("cos(ang)", np.cos(ang), TRANSCEND),
        ("sin(ang)", np.sin(ang), TRANSCEND),
        ("tan(ang)", np.tan(ang), TRANSCEND),
        ("fast::cos(ang)", np.cos(ang), TRANSCEND),
        ("precise::sin(ang)", np.sin(ang), TRANSCEND),
        ("atan2(ang, float4(1.0f, -1.0f, 2.0f, -2.0f))", np.arctan2(ang, fv(1, -1, 2, -2)), TRANSCEND),
        ("exp(ang)", np.exp(ang), TRANSCEND),
        ("exp2(ang)", np.exp2(ang), TRANSCEND),
        ("exp10(ang)", np.power(f32(10), ang), TRANSCEND),
        ("log(float4(1.0f, 0.5f, 10.0f, 0.0f))", np.log(fv(1, 0.5, 10, 0)), TRANSCEND),
        ("log2(float4(1.0f, 8.0f, 0.25f, -1.0f))", np.log2(fv(1, 8, 0.25, -1)), TRANSCEND),
        ("log10(float4(1.0f, 1000.0f, 0.01f, inf))", np.log10(fv(1, 1000, 0.01, inf)), TRANSCEND),
        ("sqrt(float4(4.0f, 2.0f, 0.0f, -1.0f))", np.sqrt(fv(4, 2, 0, -1)), EXACT),
        ("rsqrt(float4(4.0f, 16.0f, 0.25f, 1.0f))", v(0.5, 0.25, 2, 1), TRANSCEND),
        ("pow(float4(2.0f, 9.0f, 0.5f, 0.0f), float4(10.0f, 0.5f, -2.0f, 0.0f))", v(1024, 3, 4, 1), TRANSCEND),
        ("powr(float2(2.0f, 4.0f), 0.5f)", np.sqrt(fv(2, 4)), TRANSCEND),
        ("asin(float3(0.5f, -1.0f, 0.0f))", np.arcsin(fv(0.5, -1, 0)), TRANSCEND),
        ("acos(float3(0.5f, -1.0f, 0.0f))", np.arccos(fv(0.5, -1, 0)), TRANSCEND),
        ("atan(float3(0.5f, -1.0f, inf))", np.arctan(fv(0.5, -1, inf)), TRANSCEND),
        ("sinh(float3(0.5f, -1.0f, 0.0f))", np.sinh(fv(0.5, -1, 0)), TRANSCEND),
        ("cosh(float3(0.5f, -1.0f, 0.0f))", np.cosh(fv(0.5, -1, 0)), TRANSCEND),
        ("tanh(float3(0.5f, -1.0f, 20.0f))", np.tanh(fv(0.5, -1, 20)), TRANSCEND),
        ("floor(r)", np.floor(r), EXACT),
        ("ceil(r)", np.ceil(r), EXACT),
        ("round(r)", v(-2, -1, 1, 3), EXACT),  # halfway cases away from zero, unlike numpy's round
        ("rint(r)", np.rint(r), EXACT),
        ("trunc(r)", np.trunc(r), EXACT),
        ("fract(r)", r - np.floor(r), EXACT),
        ("fract(float2(-1e-9f, 5.0f))", v(np.nextafter(f32(1), f32(0)), 0), EXACT),
        ("fabs(float4(-2.0f, negzero, inf, -inf))", v(2, 0, inf, inf), EXACT),
        ("abs(float4(-2.0f, 3.0f, -inf, 0.0f))", v(2, 3, inf, 0), EXACT),
        ("abs(int4(-5, 5, 0, -2147483647))", v(5, 5, 0, 2147483647), EXACT),
        ("fmod(float4(7.5f, -7.5f, 1.0f, 5.0f), float4(2.0f, 2.0f, 0.3f, inf))",
         np.fmod(fv(7.5, -7.5, 1, 5), fv(2, 2, 0.3, inf)), EXACT),
        ("fmin(float4(1.0f, nan, -1.0f, 2.0f), float4(2.0f, 3.0f, nan, 2.0f))", v(1, 3, -1, 2), EXACT),
        ("fmax(float4(1.0f, nan, -1.0f, 2.0f), float4(2.0f, 3.0f, nan, 2.0f))", v(2, 3, -1, 2), EXACT),
        ("fma(float2(2.0f, 3.0f), float2(4.0f, 5.0f), 1.0f)", v(9, 16), EXACT),
        ("copysign(float4(1.0f, 2.0f, 0.0f, inf), float4(-1.0f, 1.0f, -1.0f, -0.5f))", v(-1, 2, -0.0, -inf), EXACT),
        ("isnan(float4(nan, inf, 1.0f, -nan))", v(1, 0, 0, 1), EXACT),
        ("isinf(float4(nan, inf, -inf, 3.0f))", v(0, 1, 1, 0), EXACT),
        ("isfinite(float4(nan, inf, 0.0f, -3.0f))", v(0, 0, 1, 1), EXACT),
        ("signbit(float4(negzero, 0.0f, -inf, nan))", v(1, 0, 1, 1), EXACT),  # nan = 0/0 has the sign bit on x86
        ("isnan(nan)", v(1), EXACT),
        ("isinf(-inf)", v(1), EXACT),
        ("isnan(half(nan))", v(1), EXACT),
        ("isinf(half(inf))", v(1), EXACT),
        ("signbit(negzero)", v(1), EXACT),
        ("sincos(ang, cv)", np.sin(ang), TRANSCEND),
        ("cv", np.cos(ang), TRANSCEND),
        ("ldexp(float3(1.0f, 3.0f, 0.75f), int3(3, -1, 4))", v(8, 1.5, 12), EXACT),
        ("ldexp(5.0f, 2)", v(20), EXACT),
        ("frexp(float3(8.0f, 0.3f, -5.0f), ex)", np.frexp(fv(8, 0.3, -5))[0], EXACT),
        ("ex", np.frexp(fv(8, 0.3, -5))[1], EXACT),
        ("modf(float3(2.75f, -1.5f, inf), whole)", v(0.75, -0.5, 0), EXACT),
        ("whole", v(2, -1, inf), EXACT),
        ("cos(h4)", np.cos(h4.astype(np.float32)).astype(np.float16), HALF),
        ("sqrt(half(2.0f))", v(float(np.float16(math.sqrt(2)))), EXACT),
        ("exp(a.xy)", np.exp(a[:2]), TRANSCEND),
        ("sqrt(2.0f)", np.sqrt(fv(2)), EXACT),
        ("metal::cos(1.0f)", np.cos(fv(1)), TRANSCEND),
        # common
        ("min(a, 2.5f)", np.minimum(a, 2.5), EXACT),
        ("max(a, a.wzyx)", np.maximum(a, a[::-1]), EXACT),
        ("min(int3(1, -2, 3), int3(0, 0, 5))", v(0, -2, 3), EXACT),
        ("max(3u, 7u)", v(7), EXACT),
        ("clamp(float4(-1.0f, 0.5f, 2.0f, 0.9f), 0.0f, 1.0f)", np.clip(fv(-1, 0.5, 2, 0.9), 0, 1), EXACT),
        ("clamp(int2(-5, 50), int2(0, 0), int2(10, 10))", v(0, 10), EXACT),
        ("mix(float2(0.0f, 10.0f), float2(10.0f, 20.0f), 0.25f)", v(2.5, 12.5), EXACT),
        ("saturate(float3(-0.5f, 0.5f, 1.5f))", v(0, 0.5, 1), EXACT),
        ("sign(float4(-2.0f, 0.0f, 3.0f, nan))", v(-1, 0, 1, 0), EXACT),
        ("step(1.0f, float4(0.0f, 1.0f, 2.0f, -1.0f))", v(0, 1, 1, 0), EXACT),
        ("smoothstep(0.0f, 2.0f, float4(-1.0f, 0.5f, 1.0f, 3.0f))", v(0, 0.15625, 0.5, 1), EXACT),
        # geometric
        ("dot(a, a)", v(30), EXACT),
        ("dot(a.xyz, c3)", v(38), EXACT),
        ("length(float2(3.0f, 4.0f))", v(5), EXACT),
        ("length_squared(c3)", v(110), EXACT),
        ("distance(float3(1.0f, 1.0f, 1.0f), float3(4.0f, 5.0f, 1.0f))", v(5), EXACT),
        ("normalize(float3(3.0f, 0.0f, 4.0f))", v(0.6, 0, 0.8), TRANSCEND),
        ("cross(float3(1.0f, 0.0f, 0.0f), float3(0.0f, 1.0f, 0.0f))", v(0, 0, 1), EXACT),
        ("cross(a.xyz, c3)", np.cross(a[:3], fv(5, 6, 7)), EXACT),
        ("reflect(float2(1.0f, -1.0f), float2(0.0f, 1.0f))", v(1, 1), EXACT),
        ("dot(h4, h4)", v(21.25), EXACT),
        # relational, integer
        ("all(bool3(true, true, false))", v(0), EXACT),
        ("all(a > 0.0f)", v(1), EXACT),
        ("any(a > 3.5f)", v(1), EXACT),
        ("any(a > 9.0f)", v(0), EXACT),
        ("select(a, float4(-1.0f), bool4(true, false, true, false))", v(-1, 2, -1, 4), EXACT),
        ("select(1.0f, 2.0f, true)", v(2), EXACT),
        ("popcount(uint4(0u, 1u, 0xffu, 0xffffffffu))", v(0, 1, 8, 32), EXACT),
        ("clz(uint4(0u, 1u, 0x80000000u, 0x00010000u))", v(32, 31, 0, 15), EXACT),
        ("ctz(uint4(0u, 1u, 0x80000000u, 12u))", v(32, 0, 31, 2), EXACT),
        ("popcount(ulong(0xf0f0f0f0f0f0f0f0ul))", v(32), EXACT),
        ("clz(ushort(1))", v(15), EXACT),
        # as_type, limits
        ("as_type<uint>(1.0f)", v(0x3F800000), EXACT),
        ("as_type<float>(0x40490fdbu)", np.array([0x40490FDB], dtype=np.uint32).view(np.float32), EXACT),
        ("as_type<ushort>(half(1.0f))", v(0x3C00), EXACT),
        ("as_type<uint2>(float2(1.0f, -2.0f))", fv(1, -2).view(np.uint32), EXACT),
        ("numeric_limits<half>::max()", v(65504), EXACT),
        ("numeric_limits<half>::epsilon()", v(2.0**-10), EXACT),
        ("numeric_limits<float>::max()", v(np.finfo(np.float32).max), EXACT),
        ("numeric_limits<float>::lowest()", v(-np.finfo(np.float32).max), EXACT),
        ("numeric_limits<int>::min()", v(-(2**31)), EXACT),
        ("numeric_limits<ushort>::max()", v(65535), EXACT),
        ("numeric_limits<bfloat>::max()", np.array([0x7F7F0000], dtype=np.uint32).view(np.float32), EXACT),
        ("numeric_limits<half>::infinity()", v(inf), EXACT),
    ]

# Swizzle writes: the successive states of `w` in values.cpp.
W_STATES = [v(4, 3, 3, 4), v(4, 3, 4, 5), v(3, 4, 4, 5), v(4, 3, 2, 1), v(8, 3, 6, 1), v(8, -1, 6, -2)]


def as_printed(expected):
    """What values.cpp prints for an expected value: each component as float32."""
    return np.asarray(expected, dtype=np.float64).astype(np.float32).astype(np.float64).ravel()


@pytest.mark.parametrize("expr, expected, tol", CASES, ids=[c[0] for c in CASES])
def test_value(values, expr, expected, tol):
    assert expr in values, f"values.cpp printed no line for {expr!r}"
    got = values[expr][0]
    np.testing.assert_allclose(got, as_printed(expected), equal_nan=True, **tol)
    if tol is EXACT:  # signed zeros count too
        np.testing.assert_array_equal(np.signbit(got), np.signbit(as_printed(expected)))


def test_swizzle_writes(values):
    for got, want in zip(values["w"], W_STATES, strict=True):
        np.testing.assert_array_equal(got, want)


def test_layout_and_traits_compile(tmp_path):
    res = compile_cpp(HEADER_TESTS / "layout.cpp", tmp_path / "layout.o", extra=["-c"])
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("statement, message", [
    ("v.xx = float2(1.0f);", "repeats a component"),
    ("float4 w = int4(1);", "conversion from"),
])
def test_rejected(tmp_path, statement, message):
    src = tmp_path / "bad.cpp"
    src.write_text("#include <metal_stdlib>\nusing namespace metal;\n"
                   f"void f(float4 v) {{ {statement} (void)v; }}\n")
    res = compile_cpp(src, tmp_path / "bad.o", extra=["-c"])
    assert res.returncode != 0
    assert message in res.stderr


def test_math_loops_use_vector_library(tmp_path):
    """metal::cos and friends must be plain inline calls that g++ vectorises through glibc's libmvec."""
    if "g++" not in os.path.basename(CXX):
        pytest.skip("libmvec vectorisation is a g++ property")
    src = tmp_path / "loops.cpp"
    src.write_text("#include <metal_stdlib>\n" + "".join(
        f'extern "C" void k_{f}(float* o, const float* x, int n) '
        f"{{ for (int i = 0; i < n; ++i) o[i] = metal::{f}(x[i]); }}\n"
        for f in ("cos", "sin", "exp", "log")))
    lib = tmp_path / "loops.so"
    res = compile_cpp(src, lib, extra=["-fPIC", "-shared"])
    assert res.returncode == 0, res.stderr
    symbols = subprocess.run(["nm", "-D", str(lib)], capture_output=True, text=True, check=True).stdout
    for f in ("cosf", "sinf", "expf", "logf"):
        assert "_ZGV" in symbols and any(s.endswith(f"_{f}") or f"v_{f}@" in s for s in symbols.split()), f
