#include <metal_stdlib>
using namespace metal;

// Metal classifies a vector as its elements: a library picks complex values (float2) out with
// is_floating_point_v and tells scalars apart with is_scalar_v.
struct exp_of {
    template <typename T, enable_if_t<is_floating_point_v<T> && is_scalar_v<T>, bool> = true>
    T operator()(T x) { return precise::exp(x); }
    template <typename T, enable_if_t<is_floating_point_v<T> && !is_scalar_v<T>, bool> = true>
    T operator()(T z) { return T(precise::exp(z.x) * precise::cos(z.y), precise::exp(z.x) * precise::sin(z.y)); }
    template <typename T, enable_if_t<is_integral_v<T> && is_scalar_v<T>, bool> = true>
    float operator()(T n) { return precise::exp(float(n)); }
};

kernel void vector_traits(device const float2* z [[buffer(0)]], device float* out [[buffer(1)]],
                          uint i [[thread_position_in_grid]]) {
    exp_of f;
    const float2 e = f(z[i]);
    out[8 * i + 0] = e.x;
    out[8 * i + 1] = e.y;
    out[8 * i + 2] = f(z[i].x);
    out[8 * i + 3] = f(int(i));
    out[8 * i + 4] = float(is_floating_point_v<half2> && is_floating_point_v<const float4>);
    out[8 * i + 5] = float(is_integral_v<int3> && is_integral_v<uchar2> && !is_integral_v<float2>);
    out[8 * i + 6] = float(!is_scalar_v<float2> && !is_arithmetic_v<int4> && is_scalar_v<half>);
    out[8 * i + 7] = float(is_signed_v<int2> && is_unsigned_v<uint4> && !is_floating_point_v<bool2>);
}
