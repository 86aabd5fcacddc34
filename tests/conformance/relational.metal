// Conformance: the relational family on float, float4 and half; results stored as uchar (0 or 1).
#include <metal_stdlib>
using namespace metal;

kernel void relational_float(device const float* x [[buffer(0)]], device const float* y [[buffer(1)]],
                             device uchar* out [[buffer(2)]],
                             uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float a = x[id], b = y[id];
    int k = 0;
    out[k++ * n + id] = isnan(a);
    out[k++ * n + id] = isinf(a);
    out[k++ * n + id] = isfinite(a);
    out[k++ * n + id] = isnormal(a);
    out[k++ * n + id] = signbit(a);
    out[k++ * n + id] = isordered(a, b);
    out[k++ * n + id] = isunordered(a, b);
    out[k++ * n + id] = select(a, b, a < b) == b;
}

kernel void relational_half(device const half* x [[buffer(0)]], device uchar* out [[buffer(1)]],
                            uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const half a = x[id];
    int k = 0;
    out[k++ * n + id] = isnan(a);
    out[k++ * n + id] = isinf(a);
    out[k++ * n + id] = isfinite(a);
    out[k++ * n + id] = isnormal(a);
    out[k++ * n + id] = signbit(a);
}

// all, any and select on vectors: component j of vector i is input 4 * i + j.
kernel void relational_vector(device const float4* x [[buffer(0)]], device const float4* y [[buffer(1)]],
                              device uchar* flags [[buffer(2)]], device float4* chosen [[buffer(3)]],
                              device uchar4* masks [[buffer(4)]],
                              uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 a = x[id], b = y[id];
    flags[0 * n + id] = all(a < b);
    flags[1 * n + id] = any(a < b);
    flags[2 * n + id] = all(isfinite(a));
    flags[3 * n + id] = any(isnan(a.xy));
    chosen[0 * n + id] = select(a, b, a < b);
    chosen[1 * n + id] = select(a, 0.0f, isnan(a));
    masks[0 * n + id] = uchar4(isunordered(a, b));
    masks[1 * n + id] = uchar4(signbit(a));
}
