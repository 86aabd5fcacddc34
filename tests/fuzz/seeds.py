"""Seed kernels the source fuzzers start from: small kernels of our own that touch each part of the front end
(macros, includes of Metal's headers, templates and their instantiations, structs, function constants,
threadgroup memory, attributes, namespaces, vectors), and the project's own test kernels."""
from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent

OWN_SEEDS = {
    "elementwise": """#include <metal_stdlib>
using namespace metal;
kernel void add(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
                device float* out [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    out[i] = a[i] + b[i];
}
""",
    "macros": """#include <metal_stdlib>
using namespace metal;
#define STR(x) #x
#define CAT(a, b) a##b
#define TWICE(x) ((x) + (x))
#if defined(__METAL_VERSION__) && __METAL_VERSION__ >= 200
#define SCALE 3
#else
#define SCALE 2
#endif
kernel void CAT(mac, ro)(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = TWICE(int(i)) * SCALE + sizeof(STR(abc));
}
""",
    "template": """#include <metal_stdlib>
using namespace metal;
template <typename T, int N>
kernel void fill(device T* out [[buffer(0)]], constant T& value [[buffer(1)]],
                 uint i [[thread_position_in_grid]]) {
    out[i] = value + T(N);
}
template [[host_name("fill_float")]] kernel void fill<float, 1>(device float*, constant float&, uint);
template [[host_name("fill_int")]] kernel void fill<int, 2>(device int*, constant int&, uint);
""",
    "struct": """#include <metal_stdlib>
using namespace metal;
namespace params {
struct Scale { float factor; uint count; packed_float3 offset; };
}
kernel void scale(device float4* data [[buffer(0)]], constant params::Scale& p [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) {
    if (i < p.count) { data[i] = data[i] * p.factor + float4(p.offset.x, p.offset.y, p.offset.z, 0.0f); }
}
""",
    "function_constants": """#include <metal_stdlib>
using namespace metal;
constant bool use_bias [[function_constant(0)]];
constant float bias [[function_constant(1)]];
constant int steps = is_function_constant_defined(bias) ? 2 : 1;
kernel void biased(device float* out [[buffer(0)]],
                   device const float* extra [[buffer(1), function_constant(use_bias)]],
                   uint i [[thread_position_in_grid]]) {
    float v = float(i) * float(steps);
    if (use_bias) { v += extra[i] + bias; }
    out[i] = v;
}
""",
    "threadgroup": """#include <metal_stdlib>
using namespace metal;
kernel void block_sum(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                      threadgroup float* scratch [[threadgroup(0)]],
                      uint gid [[thread_position_in_grid]], uint lid [[thread_index_in_threadgroup]],
                      uint group [[threadgroup_position_in_grid]], uint size [[threads_per_threadgroup]])
    [[max_total_threads_per_threadgroup(256)]] {
    scratch[lid] = in[gid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint stride = size / 2; stride > 0; stride /= 2) {
        if (lid < stride) { scratch[lid] += scratch[lid + stride]; }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (lid == 0) { out[group] = scratch[0]; }
}
""",
    "atomics_simd": """#include <metal_stdlib>
#include <metal_atomic>
using namespace metal;
static inline __attribute__((always_inline)) uint square(uint x) { return x * x; }
kernel void count(device atomic_uint* total [[buffer(0)]], device float* lanes [[buffer(1)]],
                  uint i [[thread_position_in_grid]], uint lane [[thread_index_in_simdgroup]]) {
    atomic_fetch_add_explicit(total, square(i) & 1u, memory_order_relaxed);
    lanes[i] = simd_sum(float(lane));
}
""",
    "local_include": """#include <metal_stdlib>
#include "fuzz_helper.h"
using namespace metal;
kernel void helped(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = helper_twice(HELPER_SCALE * float(i));
}
""",
    "vectors_types": """#include <metal_stdlib>
using namespace metal;
typedef half4 pixel;
using index_t = uint;
enum class Mode : int { Copy = 0, Negate = 1 };
kernel void convert(device const pixel* in [[buffer(0)]], device float4* out [[buffer(1)]],
                    constant int& mode [[buffer(2)]], uint2 pos [[thread_position_in_grid]],
                    uint2 size [[threads_per_grid]]) {
    index_t i = pos.y * size.x + pos.x;
    float4 v = float4(in[i]);
    out[i] = Mode(mode) == Mode::Negate ? -v.wzyx : v;
}
""",
}


# The header next to every fuzzed source (the worker's folder, where includes of a source as a file or a string
# resolve), for the seeds that include it.
HELPER_HEADER = """#pragma once
#define HELPER_SCALE 3.0f
static inline float helper_twice(float v) { return v + v; }
"""


def project_seeds() -> dict[str, str]:
    """The project's own test kernels (tests/kernels and tests/conformance), by file name."""
    seeds = {}
    for folder in ("kernels", "conformance"):
        for path in sorted((TESTS / folder).glob("*.metal")):
            seeds[f"{folder}/{path.name}"] = path.read_text()
    return seeds


def all_seeds() -> dict[str, str]:
    return {**OWN_SEEDS, **project_seeds()}
