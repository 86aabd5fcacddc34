// Conformance: the common family over float scalars, float4 vectors (scalar arguments broadcast) and half.
#include <metal_stdlib>
using namespace metal;

kernel void common_float(device const float* x [[buffer(0)]], device const float* y [[buffer(1)]],
                         device const float* t [[buffer(2)]], device float* out [[buffer(3)]],
                         uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float a = x[id], b = y[id], c = t[id];
    int k = 0;
    out[k++ * n + id] = clamp(a, -1.0f, 2.0f);
    out[k++ * n + id] = mix(a, b, c);
    out[k++ * n + id] = saturate(a);
    out[k++ * n + id] = sign(a);
    out[k++ * n + id] = smoothstep(-1.0f, 2.0f, a);
    out[k++ * n + id] = step(b, a);
    out[k++ * n + id] = min(a, b);
    out[k++ * n + id] = max(a, b);
    out[k++ * n + id] = min3(a, b, c);
    out[k++ * n + id] = max3(a, b, c);
    out[k++ * n + id] = median3(a, b, c);
}

// The same functions on float4 (with scalar edges) and on half: component j of vector i is input 4 * i + j.
kernel void common_vector(device const float4* x [[buffer(0)]], device const float4* y [[buffer(1)]],
                          device const float4* t [[buffer(2)]], device float4* out [[buffer(3)]],
                          uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 a = x[id], b = y[id], c = t[id];
    int k = 0;
    out[k++ * n + id] = clamp(a, -1.0f, 2.0f);
    out[k++ * n + id] = mix(a, b, c);
    out[k++ * n + id] = saturate(a);
    out[k++ * n + id] = sign(a);
    out[k++ * n + id] = smoothstep(-1.0f, 2.0f, a);
    out[k++ * n + id] = step(b, a);
    out[k++ * n + id] = min(a, b);
    out[k++ * n + id] = max(a, b);
    out[k++ * n + id] = min3(a, b, c);
    out[k++ * n + id] = max3(a, b, c);
    out[k++ * n + id] = median3(a, b, c);
}

kernel void common_half(device const half* x [[buffer(0)]], device const half* y [[buffer(1)]],
                        device const half* t [[buffer(2)]], device half* out [[buffer(3)]],
                        uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const half a = x[id], b = y[id], c = t[id];
    int k = 0;
    out[k++ * n + id] = clamp(a, -1.0h, 2.0h);
    out[k++ * n + id] = mix(a, b, c);
    out[k++ * n + id] = saturate(a);
    out[k++ * n + id] = sign(a);
    out[k++ * n + id] = smoothstep(-1.0h, 2.0h, a);
    out[k++ * n + id] = step(b, a);
    out[k++ * n + id] = min(a, b);
    out[k++ * n + id] = max(a, b);
    out[k++ * n + id] = min3(a, b, c);
    out[k++ * n + id] = max3(a, b, c);
    out[k++ * n + id] = median3(a, b, c);
}

// The fast:: and precise:: forms of clamp and saturate, on float, float4 (component i is input 4 * id + i)
// and half.
kernel void common_flavours(device const float4* x [[buffer(0)]], device float4* out [[buffer(1)]],
                            uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 v = x[id];
    out[0 * n + id] = float4(fast::clamp(v.x, -1.0f, 2.0f), precise::clamp(v.y, -1.0f, 2.0f),
                             fast::saturate(v.z), precise::saturate(v.w));
    out[1 * n + id] = fast::clamp(v, -1.0f, 2.0f);
    out[2 * n + id] = precise::clamp(v, float4(-1.0f), float4(2.0f));
    out[3 * n + id] = fast::saturate(v);
    out[4 * n + id] = precise::saturate(v);
    out[5 * n + id] = float4(fast::clamp(half4(v), -1.0h, 2.0h));
    out[6 * n + id] = float4(precise::saturate(half4(v)));
}
