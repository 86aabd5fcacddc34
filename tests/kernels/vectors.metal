#include <metal_stdlib>
using namespace metal;

// float3 has Metal's 16-byte stride; packed_float3 is 12 bytes with no padding.
kernel void weigh_float3(device const float3* v [[buffer(0)]],
                         device float* out [[buffer(1)]],
                         uint id [[thread_position_in_grid]])
{
    float3 p = v[id];
    out[id] = p.x + 10.0f * p.y + 100.0f * p.z;
}

kernel void weigh_packed_float3(device const packed_float3* v [[buffer(0)]],
                                device float* out [[buffer(1)]],
                                uint id [[thread_position_in_grid]])
{
    float3 p = float3(v[id]);
    out[id] = p.x + 10.0f * p.y + 100.0f * p.z;
}

kernel void scale_float4(device float4* v [[buffer(0)]],
                         uint id [[thread_position_in_grid]])
{
    v[id] = v[id] * float4(1.0f, 2.0f, 3.0f, 4.0f);
}
