#include <metal_stdlib>
using namespace metal;

constant int multiplier [[function_constant(0)]];

kernel void times_k(device int* out [[buffer(0)]],
                    uint id [[thread_position_in_grid]])
{
    out[id] = int(id) * multiplier;
}
