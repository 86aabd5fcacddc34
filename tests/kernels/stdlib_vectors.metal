// Vector initialisation as production kernels write it: braced lists with fewer components (the rest zero),
// unsuffixed floating literals in braces, and the conversions Metal allows between vector types.
#include <metal_stdlib>
using namespace metal;

struct pair_of_vectors {
    float2 a;
    packed_float3 b;
};
float2 unit_pair() { return {1.0, 0.5}; }
constant float4 table[2] = {{1.0, 2.0, 3.0, 4.0}, {0.5, 0.25}};

// Row k of `out` (as float4) for x[id], i[id].
kernel void vector_init(device const float4* x [[buffer(0)]], device const int4* i [[buffer(1)]],
                        device float4* out [[buffer(2)]],
                        uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 v = x[id];
    const int4 j = i[id];
    int k = 0;
    const uint4 three = {uint(j.x), uint(j.y), uint(j.z)};
    out[k++ * n + id] = float4(three);
    const float4 two = {v.x, v.y};
    const float4 zeros = {0.0h};  // a 16-bit float in braces (candle)
    out[k++ * n + id] = two + zeros;
    const float2 literals = {1.5, -2.25};
    const half2 half_literals = {0.1, 3.0};
    out[k++ * n + id] = float4(literals, float2(half_literals));
    pair_of_vectors p = {{1.0, 2.0}, {3.0, 4.0, 5.0}};
    p.a = {v.w, 0.5};
    out[k++ * n + id] = float4(p.a, p.b.x, p.b.z) + float4(unit_pair(), 0, 0) + table[1];
    out[k++ * n + id] = float4(int4(v));                  // toward zero
    out[k++ * n + id] = float4(uchar4(j));                // modulo 256
    out[k++ * n + id] = float4(half4(v));                 // rounded to half
    out[k++ * n + id] = float4(bfloat4(v));               // rounded to bfloat
    out[k++ * n + id] = float4(bool4(v));                 // zero or one
    out[k++ * n + id] = float4(as_type<int4>(v) & 0xff);  // the same bits
}
