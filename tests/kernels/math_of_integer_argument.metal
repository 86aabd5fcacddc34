#include <metal_stdlib>
using namespace metal;

// An integer argument to a float math function is taken as a float: the result is a float, in each flavour.
kernel void math_of_integer(device const int* n [[buffer(0)]], device float* out [[buffer(1)]],
                            uint i [[thread_position_in_grid]]) {
    out[6 * i + 0] = precise::log(n[i]) + precise::abs(-n[i]);  // abs too
    out[6 * i + 1] = fast::sqrt(n[i]);
    out[6 * i + 2] = exp2(short(n[i] - 3));
    auto ln4 = precise::log(4);  // a literal, as PyTorch's UnaryKernel.metal writes it
    out[6 * i + 3] = ln4 * float(is_same_v<decltype(ln4), float>);
    out[6 * i + 4] = metal::trunc(n[i]) + metal::fract(n[i]);  // PyTorch's special_math.h on an integer
    out[6 * i + 5] = metal::trunc(n[i] > 8) + float(is_same_v<decltype(metal::fract(n[i])), float>);  // a bool too
}
