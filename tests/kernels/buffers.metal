#include <metal_stdlib>
using namespace metal;

kernel void double_it(device const int* in [[buffer(0)]],
                      device int* out [[buffer(1)]],
                      uint id [[thread_position_in_grid]])
{
    out[id] = in[id] * 2;
}

kernel void increment(device int* data [[buffer(0)]],
                      uint id [[thread_position_in_grid]])
{
    data[id] += 1;
}
