// Conformance: the geometric family on float3 (packed in the buffers), float4 and half4.
#include <metal_stdlib>
using namespace metal;

// scalars[k * n + id], vectors[k * n + id]: the scalar and vector results, in the order of test_conformance.py.
kernel void geometric_float3(device const packed_float3* x [[buffer(0)]], device const packed_float3* y [[buffer(1)]],
                             device const float* eta [[buffer(2)]], device float* scalars [[buffer(3)]],
                             device packed_float3* vectors [[buffer(4)]],
                             uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float3 a = x[id], b = y[id];
    scalars[0 * n + id] = dot(a, b);
    scalars[1 * n + id] = length(a);
    scalars[2 * n + id] = length_squared(a);
    scalars[3 * n + id] = distance(a, b);
    scalars[4 * n + id] = distance_squared(a, b);
    vectors[0 * n + id] = cross(a, b);
    vectors[1 * n + id] = normalize(a);
    vectors[2 * n + id] = faceforward(a, b, a.zxy);
    vectors[3 * n + id] = reflect(a, normalize(b));
    vectors[4 * n + id] = refract(normalize(a), normalize(b), eta[id]);
}

kernel void geometric_float4(device const float4* x [[buffer(0)]], device const float4* y [[buffer(1)]],
                             device float* scalars [[buffer(2)]], device float4* vectors [[buffer(3)]],
                             uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 a = x[id], b = y[id];
    scalars[0 * n + id] = dot(a, b);
    scalars[1 * n + id] = length(a);
    scalars[2 * n + id] = distance(a.xyz, b.xyz);
    vectors[0 * n + id] = normalize(a);
    vectors[1 * n + id] = reflect(a, normalize(b));
}

kernel void geometric_half4(device const half4* x [[buffer(0)]], device const half4* y [[buffer(1)]],
                            device half* scalars [[buffer(2)]], device half4* vectors [[buffer(3)]],
                            uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const half4 a = x[id], b = y[id];
    scalars[0 * n + id] = dot(a, b);
    scalars[1 * n + id] = length(a);
    vectors[0 * n + id] = normalize(a);
}
