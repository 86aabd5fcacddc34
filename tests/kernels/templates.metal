#include <metal_stdlib>
using namespace metal;

template <typename T>
kernel void scale(device T* data [[buffer(0)]],
                  constant T& factor [[buffer(1)]],
                  uint id [[thread_position_in_grid]])
{
    data[id] = data[id] * factor;
}

template [[host_name("scale_float")]] kernel void scale<float>(device float*, constant float&, uint);
template [[host_name("scale_int")]] kernel void scale<int>(device int*, constant int&, uint);
