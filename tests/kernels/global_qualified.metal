// Explicit instantiations named from the global namespace (`void ::ops::fill<float>`), as PyTorch's
// c10/metal/indexing.h spells them, beside the usual relative spelling.
#include <metal_stdlib>
using namespace metal;

namespace ops {
template <typename T>
kernel void fill(device T* out [[buffer(0)]], constant T& value [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    out[i] = value + T(i);
}
}  // namespace ops

template [[host_name("fill_float")]] kernel void ::ops::fill<float>(device float*, constant float&, uint);
template [[host_name("fill_int")]] kernel void ops::fill<int>(device int*, constant int&, uint);
