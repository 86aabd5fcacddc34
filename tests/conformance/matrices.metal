// Conformance: matrices. Inputs are float4x4 and half4x4 (16 floats each, column-major); outputs are float4
// or float4x4 rows in the order of MATRIX_ROWS in test_conformance.py.
#include <metal_stdlib>
using namespace metal;

static_assert(sizeof(float2x2) == 16 && alignof(float2x2) == 8, "float2x2");
static_assert(sizeof(float3x3) == 48 && alignof(float3x3) == 16, "float3x3");
static_assert(sizeof(float4x3) == 64 && sizeof(float3x4) == 48 && sizeof(float2x3) == 32, "floatCxR");
static_assert(sizeof(half3x3) == 24 && sizeof(half4x4) == 32 && alignof(half2x2) == 4, "halfCxR");

kernel void matrix_ops(device const float4x4* ms [[buffer(0)]], device const float4* vs [[buffer(1)]],
                       device float4x4* mout [[buffer(2)]], device float4* vout [[buffer(3)]],
                       device float* sout [[buffer(4)]],
                       uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4x4 a = ms[2 * id], b = ms[2 * id + 1];
    const float4 v = vs[id];
    mout[0 * n + id] = a * b;
    mout[1 * n + id] = a + b;
    mout[2 * n + id] = a - 2.0f * b;
    mout[3 * n + id] = transpose(a);
    mout[4 * n + id] = float4x4(3.0f);
    mout[5 * n + id] = float4x4(v, v.yzwx, -v, float4(1.0f));
    float4x4 c = a;
    c *= b;
    c += a;
    c[1] = v;
    c[2][3] = 5.0f;
    mout[6 * n + id] = c;
    vout[0 * n + id] = a * v;
    vout[1 * n + id] = v * a;
    const float3x3 a3 = float3x3(a[0].xyz, a[1].xyz, a[2].xyz);
    const float2x2 a2 = float2x2(a[0][0], a[0][1], a[1][0], a[1][1]);
    vout[2 * n + id] = float4(a3 * v.xyz, 0.0f);
    const float2x3 r = float2x3(a[0].xyz, a[1].xyz);       // 2 columns, 3 rows
    const float3x2 t = transpose(r);
    const float2x2 rt = t * r;                              // 3x2 times 2x3: 2 columns of 2 rows
    vout[3 * n + id] = float4(rt[0], rt[1]);
    vout[4 * n + id] = float4(r * v.xy, 0.0f);
    vout[5 * n + id] = float4(v.xyz * r, 0.0f, 0.0f);
    sout[0 * n + id] = determinant(a);
    sout[1 * n + id] = determinant(a3);
    sout[2 * n + id] = determinant(a2);
}

kernel void matrix_half(device const half4x4* ms [[buffer(0)]], device const half4* vs [[buffer(1)]],
                        device half4* vout [[buffer(2)]], device half* sout [[buffer(3)]],
                        uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const half4x4 a = ms[id];
    const half4 v = vs[id];
    vout[0 * n + id] = a * v;
    vout[1 * n + id] = (a * half(2.0h))[3];
    vout[2 * n + id] = half4(float4x4(a) * float4(v));
    sout[id] = determinant(half2x2(a[0].xy, a[1].xy));
}
