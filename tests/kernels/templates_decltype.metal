#include <metal_stdlib>
using namespace metal;

template <typename T>
[[kernel]] void offset(device T* data [[buffer(0)]],
                       constant T& amount [[buffer(1)]],
                       uint id [[thread_position_in_grid]])
{
    data[id] = data[id] + amount;
}

// The instantiation idiom of MLX's kernels.
#define instantiate_kernel(name, func, ...) \
    template [[host_name(name)]] [[kernel]] decltype(func<__VA_ARGS__>) func<__VA_ARGS__>;

instantiate_kernel("offset_float", offset, float)
instantiate_kernel("offset_uint", offset, uint)
