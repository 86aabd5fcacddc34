#include <metal_stdlib>
using namespace metal;

// abs among Metal's fast:: and precise:: math functions (PyTorch's Cdist.metal), on scalars and vectors.
kernel void flavoured_abs(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                          uint i [[thread_position_in_grid]]) {
    const float v = x[i];
    const float2 pair = precise::abs(float2(v, -2.0f * v));
    out[4 * i + 0] = precise::abs(v);
    out[4 * i + 1] = ::metal::fast::abs(v - 1.0f);
    out[4 * i + 2] = pair.x + pair.y;
    out[4 * i + 3] = float(precise::abs(half(v)));
}
