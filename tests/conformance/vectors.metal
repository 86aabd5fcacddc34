// Conformance: vector layouts, constructors, component access, swizzle reads and writes, operators.
#include <metal_stdlib>
using namespace metal;

// Metal's sizes and alignments (3-component vectors are padded to 4; packed vectors are not).
static_assert(sizeof(char3) == 4 && alignof(char3) == 4, "char3");
static_assert(sizeof(short3) == 8 && alignof(short3) == 8, "short3");
static_assert(sizeof(int2) == 8 && alignof(int2) == 8, "int2");
static_assert(sizeof(uint3) == 16 && alignof(uint3) == 16, "uint3");
static_assert(sizeof(long3) == 32 && alignof(long3) == 32, "long3");
static_assert(sizeof(half3) == 8 && alignof(half3) == 8, "half3");
static_assert(sizeof(bfloat4) == 8, "bfloat4");
static_assert(sizeof(float3) == 16 && alignof(float3) == 16, "float3");
static_assert(sizeof(packed_float3) == 12 && alignof(packed_float3) == 4, "packed_float3");
static_assert(sizeof(packed_half3) == 6 && alignof(packed_half3) == 2, "packed_half3");
static_assert(sizeof(bool4) == 4, "bool4");

// One float4 per row of the result table (the order of VECTOR_ROWS in test_conformance.py).
kernel void vector_ops(device const float4* x [[buffer(0)]], device const float4* y [[buffer(1)]],
                       device float4* out [[buffer(2)]],
                       uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 a = x[id], b = y[id];
    int k = 0;
    out[k++ * n + id] = float4(a.x);                       // broadcast
    out[k++ * n + id] = float4(a.xy, b.zw);                // vector + vector
    out[k++ * n + id] = float4(a.x, b.yz, 7.0f);           // scalar + vector + scalar
    out[k++ * n + id] = float4(float3(a.wzy), b[0]);       // swizzle + element
    out[k++ * n + id] = float4(int4(a));                   // conversion (truncation toward zero)
    out[k++ * n + id] = a.wzyx;
    out[k++ * n + id] = float4(a.rg, b.ba);
    out[k++ * n + id] = a.xxyy + b.zzww;
    float4 w = a;
    w.xy = b.yx;                                           // swizzle write
    out[k++ * n + id] = w;
    w.zw += float2(1.0f, 2.0f);                            // compound assignment through a swizzle
    out[k++ * n + id] = w;
    w[2] = -w[3];
    w.y *= 3.0f;
    out[k++ * n + id] = w;
    w = a;
    w += b;
    w *= 2.0f;
    w -= a;
    w /= 4.0f;
    out[k++ * n + id] = w;
    out[k++ * n + id] = a + b;
    out[k++ * n + id] = a - b;
    out[k++ * n + id] = a * b;
    out[k++ * n + id] = a / b;
    out[k++ * n + id] = 2.0f * a - b;  // 2 * a is exact: the same with or without a fused multiply-add
    out[k++ * n + id] = -a;
    out[k++ * n + id] = float4(a < b);
    out[k++ * n + id] = float4(a >= b);
    out[k++ * n + id] = float4(a == b.xyzw);
    out[k++ * n + id] = float4(a != 1.0f);
    out[k++ * n + id] = float4(!(a > b) && (a <= 2.0f));
    packed_float3 p = a.xyz;                               // packed vectors: storage only, arithmetic as float3
    p = p + float3(b.xyz);
    out[k++ * n + id] = float4(float3(p), p[1]);
    float4 m = a;
    const float4 q = m++;
    out[k++ * n + id] = q + m;
}

// Integer vectors of every width: component j of vector i is input 4 * i + j.
kernel void vector_int(device const int4* x [[buffer(0)]], device const int4* y [[buffer(1)]],
                       device int4* out [[buffer(2)]],
                       uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const int4 a = x[id], b = y[id];
    int k = 0;
    out[k++ * n + id] = a / b;
    out[k++ * n + id] = a % b;
    out[k++ * n + id] = int4(char4(a));                    // narrowing wraps
    out[k++ * n + id] = int4(ushort4(a));
    out[k++ * n + id] = int4(int2(short2(a.xy)), int2(uchar2(b.zw)));
    out[k++ * n + id] = int4(long4(a) * long4(b) >> 32);
    out[k++ * n + id] = a.yzwx & 0xff;
    out[k++ * n + id] = int4(uint4(a) >> uint4(b));        // logical shift, count modulo 32
}

// Swizzles of packed vectors, and one component of a two-component swizzle (v.zw.x), read and written.
kernel void vector_swizzles_more(device const float4* x [[buffer(0)]], device float4* out [[buffer(1)]],
                                 uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 a = x[id];
    int k = 0;
    packed_float3 p = a.xyz;
    out[k++ * n + id] = float4(p.zyx, p.x);
    p.zx = a.wy;
    p.xy += 1.0f;
    out[k++ * n + id] = float4(float3(p), p.g);
    packed_float2 p2 = a.xy;
    packed_half4 ph = half4(a);
    out[k++ * n + id] = float4(p2.yx, float2(ph.wz));
    float4 w = a;
    w.zw.x = 5.0f;
    w.yx.y += 2.0f;
    out[k++ * n + id] = w;
    out[k++ * n + id] = float4(a.zw.y * 2.0f, a.bg.r + a.ar.r, a.xz.y, float(half4(a).yx.g));
}
