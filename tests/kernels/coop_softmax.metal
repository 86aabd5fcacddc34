#include <metal_stdlib>
using namespace metal;

// One SIMD-group (32 threads) per row: each lane handles every 32nd column, then the row's max and sum come
// from simd_max and simd_sum.
kernel void softmax_rows(device const float* in [[buffer(0)]],
                         device float* out [[buffer(1)]],
                         constant uint& columns [[buffer(2)]],
                         uint2 gid [[thread_position_in_grid]],
                         uint lane [[thread_index_in_simdgroup]])
{
    const uint row = gid.y;
    device const float* x = in + row * columns;
    float m = -INFINITY;
    for (uint c = lane; c < columns; c += 32) {
        m = x[c] > m ? x[c] : m;
    }
    m = simd_max(m);
    float s = 0.0f;
    for (uint c = lane; c < columns; c += 32) {
        s += exp(x[c] - m);
    }
    s = simd_sum(s);
    for (uint c = lane; c < columns; c += 32) {
        out[row * columns + c] = exp(x[c] - m) / s;
    }
}
