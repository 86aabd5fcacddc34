#include <metal_stdlib>
using namespace metal;

// The same as conditional_ternary through Metal's select(a, b, c), which is c ? b : a.
kernel void conditional_select(device const float* in [[buffer(0)]],
                               device float* out [[buffer(1)]],
                               uint id [[thread_position_in_grid]])
{
    float x = in[id];
    out[id] = select(-x, x * 2.0f, x > 0.0f);
}
