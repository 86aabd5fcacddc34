// A conditional whose operand is a threadgroup array indexed by a vector's component, inside a kernel template:
// the shape of MLX's all_reduce (`lid.x < n ? shared_vals[lid.x] : op.init`), which once crashed NVRTC's front end.
#include <metal_stdlib>
using namespace metal;

template <typename T>
struct Identity {
    static constexpr constant T init = T(-1);
};

template <typename T, typename Op>
kernel void first_half_of_tile(device T* out [[buffer(0)]], constant uint& half_size [[buffer(1)]],
                               uint3 lid [[thread_position_in_threadgroup]]) {
    threadgroup T tile[64];
    tile[lid.x] = T(lid.x) * T(2);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    Op op;
    out[lid.x] = lid.x < half_size ? tile[lid.x] : op.init;
}

template [[host_name("first_half_of_tile_float")]] kernel void first_half_of_tile<float, Identity<float>>(
    device float*, constant uint&, uint3);
template [[host_name("first_half_of_tile_half")]] kernel void first_half_of_tile<half, Identity<half>>(
    device half*, constant uint&, uint3);
