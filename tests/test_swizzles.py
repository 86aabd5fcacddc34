"""Swizzles through the whole pipeline (the translator rewrites them, msl/swizzles.py): reads are values, writes go
through, chains compose, a struct's own member named like a swizzle keeps its meaning, and misuse is a compile
error on the user's line. Every result is checked against numpy."""
from __future__ import annotations

import numpy as np
import pytest

import metalgpu
from test_errors import assert_user_facing

SOURCE = """
#include <metal_stdlib>
using namespace metal;
#define FLIP(v) (v).yx
struct Pair { float2 xy; float rgb; };
float2 twice(float2 v) { return 2.0f * v; }
constexpr float2 kFlip = float2(5.0f, 6.0f).yx;             // swizzles in constant expressions
constant float2 kPair = float4(1.0f, 2.0f, 3.0f, 4.0f).wy;

kernel void swizzles(device const float4* in [[buffer(0)]], device float4* out [[buffer(1)]],
                     device Pair* pairs [[buffer(2)]], uint i [[thread_position_in_grid]],
                     uint n [[threads_per_grid]]) {
    const float4 a = in[i];
    float4 v = a;
    auto copy = v.xy;          // a value: later writes to v do not change it
    v.x = 100.0f;
    out[0 * n + i] = float4(copy, v.x, 0.0f);
    device float4* p = out + 1 * n + i;
    *p = a;
    p->zw = a.xy;              // through a pointer
    p->xyz.zx += float2(1.0f, 2.0f);   // a written swizzle of a written swizzle
    v = a;
    v.wzyx.x = 7.0f;           // one component of a written swizzle: v.w
    v.xyz.xy.y = -1.0f;        // three levels: v.y
    out[2 * n + i] = v;
    out[3 * n + i] = float4(FLIP(a.zw), twice(a.xy).yx + float4{1, 2, 3, 4}.zw);
    out[4 * n + i] = float4((a + a).wz, a.bg.r + a.rgba.a, float3(a.xyz).zyx.x);
    out[5 * n + i] = float4(kFlip, kPair);
    pairs[i].xy = pairs[i].xy.yx + float2(pairs[i].rgb);   // the struct's members, then a vector swizzle
}
"""


def test_swizzle_semantics(iface):
    iface.load_shader_from_str(SOURCE)
    n = 64
    rng = np.random.default_rng(5)
    a = np.round(rng.uniform(-8, 8, (n, 4)), 2).astype(np.float32)
    pairs = np.zeros(n, dtype=[("xy", np.float32, 2), ("rgb", np.float32), ("pad", np.float32)])
    pairs["xy"] = rng.uniform(-4, 4, (n, 2))
    pairs["rgb"] = rng.uniform(-4, 4, n)
    before = pairs.copy()
    inp = iface.array_to_buffer(a)
    out = iface.create_buffer(6 * n, "float4")
    pair_buffer = iface.array_to_buffer(pairs)
    iface.run_function(n, [inp, out, pair_buffer], "swizzles")
    got = out.contents.reshape(6, n, 4)
    f = np.float32
    np.testing.assert_array_equal(got[0], np.c_[a[:, :2], np.full(n, 100, f), np.zeros(n, f)])
    p = a.copy()
    p[:, 2:] = a[:, :2]
    p[:, 2] += f(1)
    p[:, 0] += f(2)
    np.testing.assert_array_equal(got[1], p)
    v = a.copy()
    v[:, 3] = 7
    v[:, 1] = -1
    np.testing.assert_array_equal(got[2], v)
    np.testing.assert_array_equal(got[3], np.c_[a[:, [3, 2]], (f(2) * a[:, :2])[:, ::-1] + np.array([3, 4], f)])
    np.testing.assert_array_equal(got[4], np.c_[(a + a)[:, [3, 2]], a[:, 2] + a[:, 3], a[:, 2]])
    np.testing.assert_array_equal(got[5], np.tile(np.array([6, 5, 4, 2], f), (n, 1)))
    after = pair_buffer.contents
    np.testing.assert_array_equal(after["xy"], before["xy"][:, ::-1] + before["rgb"][:, None])


@pytest.mark.parametrize("statement, message", [
    ("v.xx = float2(1.0f);", "repeats a component"),
    ("float2 w = v.xy; out[0] = w.yz.x;", "does not have"),
    ("float2 w = v.xy; out[0] = w.z;", "no member"),
    ("const float4 c = v; c.xy = float2(0.0f); out[0] = c.x;", None),
])
def test_swizzle_misuse_is_an_error_on_the_users_line(iface, statement, message):
    source = ("#include <metal_stdlib>\nusing namespace metal;\n"
              "kernel void bad(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n"
              f"    float4 v = float4(out[i]); {statement}\n"
              "}\n")
    with pytest.raises(metalgpu.ShaderCompileError, match=message) as info:
        iface.load_shader_from_str(source)
    assert_user_facing(info.value, "<string>", 4)
