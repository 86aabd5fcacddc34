#include <metal_stdlib>
using namespace metal;

#define UNARY_KERNEL(NAME, EXPR)                                  \
    kernel void NAME(device const float* in [[buffer(0)]],        \
                     device float* out [[buffer(1)]],             \
                     uint id [[thread_position_in_grid]])         \
    {                                                             \
        float x = in[id];                                         \
        out[id] = EXPR;                                           \
    }

UNARY_KERNEL(twice, x * 2.0f)
UNARY_KERNEL(plus_one, x + 1.0f)
