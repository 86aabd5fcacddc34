#include <metal_stdlib>
using namespace metal;

// Each thread sums a[i] * b[i] over its own chunk of `chunk` elements (the last chunk may be short).
kernel void partial_dot(device const float* a [[buffer(0)]],
                        device const float* b [[buffer(1)]],
                        device float* partial [[buffer(2)]],
                        constant uint& chunk [[buffer(3)]],
                        constant uint& n [[buffer(4)]],
                        uint id [[thread_position_in_grid]])
{
    uint begin = id * chunk;
    uint end = min(begin + chunk, n);
    float sum = 0.0f;
    for (uint i = begin; i < end; ++i) {
        sum += a[i] * b[i];
    }
    partial[id] = sum;
}
