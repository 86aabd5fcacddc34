#include <metal_stdlib>
using namespace metal;

// Two kernel templates of one name and the same template parameters, told apart only by their parameter lists
// (PyTorch's fused_sgd with and without a momentum buffer): each explicit instantiation names its overload by
// the parameter types it lists.
template <typename T>
kernel void descend(device T* x [[buffer(0)]], constant float& rate [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    x[i] -= T(rate);
}

template <typename T>
kernel void descend(device T* x [[buffer(0)]], device T* velocity [[buffer(1)]], constant float& rate [[buffer(2)]],
                    uint i [[thread_position_in_grid]]) {
    velocity[i] = velocity[i] * T(0.5f) + T(1);
    x[i] -= T(rate) * velocity[i];
}

#define INSTANTIATE_DESCEND(T)                                                                         \
    template [[host_name("descend_" #T)]] kernel void descend<T>(device T*, constant float&, uint);   \
    template [[host_name("descend_velocity_" #T)]] kernel void descend<T>(                            \
        device T* x [[buffer(0)]], device T* velocity [[buffer(1)]], constant float& rate [[buffer(2)]], \
        uint i [[thread_position_in_grid]]);

INSTANTIATE_DESCEND(float)
INSTANTIATE_DESCEND(half)
