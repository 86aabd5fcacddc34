#include <metal_stdlib>
using namespace metal;

// A kernel that needs threadgroup memory (4 bytes) and a struct to lay out: what tests of wrong arguments call.
struct Pair { float a; float b; };

kernel void fill(device float* out [[buffer(0)]], threadgroup float* scratch [[threadgroup(0)]],
                 uint i [[thread_position_in_grid]]) {
    scratch[0] = 2.0f;
    out[i] = scratch[0] + float(i);
}
