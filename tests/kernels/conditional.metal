#include <metal_stdlib>
using namespace metal;

// Ternary: doubles positive values, negates the others.
kernel void conditional_ternary(device const float* in [[buffer(0)]],
                                device float* out [[buffer(1)]],
                                uint id [[thread_position_in_grid]])
{
    float x = in[id];
    out[id] = x > 0.0f ? x * 2.0f : -x;
}
