#include <metal_stdlib>
using namespace metal;

// p(x) = 3x^3 - 2x^2 + 0.5x + 1, in Horner form.
kernel void polynomial(device const float* in [[buffer(0)]],
                       device float* out [[buffer(1)]],
                       uint id [[thread_position_in_grid]])
{
    float x = in[id];
    out[id] = ((3.0f * x - 2.0f) * x + 0.5f) * x + 1.0f;
}
