// Loop unroll hints in each spelling production MSL uses, before loops and elsewhere: they change no result.
#include <metal_stdlib>
using namespace metal;

#define UNROLL_FULL _Pragma("clang loop unroll(full)")

#pragma unroll
constant int weights[4] = {1, 2, 3, 4};

kernel void unrolled_sums(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    float acc = 0.0f;
    UNROLL_FULL
    for (int k = 0; k < 8; ++k) acc += float(k) * float(i);
#pragma unroll 4
    for (int k = 0; k < 16; ++k) acc += 1.0f;
#pragma clang loop unroll_count(2)
    for (int k = 0; k < 4; ++k) {
        acc += float(weights[k]);
    }
#pragma nounroll
    acc += 0.5f;
    out[i] = acc;
}
