// Conformance: the math family (metal::precise, metal::fast and the default), float scalars and vectors.
// Each kernel writes row k of `out` (out[k * n + id]) for the k-th function of its list; the order of the
// lists is the order of the tables in test_conformance.py.
#include <metal_stdlib>
using namespace metal;

#define UNARY_FUNCTIONS(F)                                                                  \
    F(acos) F(acosh) F(asin) F(asinh) F(atan) F(atanh) F(cos) F(cosh) F(sin) F(sinh) F(tan) F(tanh) \
    F(exp) F(exp2) F(exp10) F(log) F(log2) F(log10) F(sqrt) F(rsqrt)                  \
    F(ceil) F(floor) F(round) F(rint) F(trunc) F(fract) F(fabs)

#define BINARY_FUNCTIONS(F)                                                                 \
    F(atan2) F(pow) F(powr) F(fmod) F(fmin) F(fmax) F(copysign) F(fdim) F(divide) F(nextafter)

#define MATH_KERNELS(NS)                                                                    \
kernel void math_unary_##NS(device const float* x [[buffer(0)]], device float* out [[buffer(1)]], \
                            uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) { \
    const float v = x[id];                                                                  \
    int k = 0;                                                                              \
    UNARY_FUNCTIONS(EMIT_UNARY_##NS)                                                        \
}                                                                                           \
kernel void math_binary_##NS(device const float* x [[buffer(0)]], device const float* y [[buffer(1)]], \
                             device float* out [[buffer(2)]],                               \
                             uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) { \
    const float a = x[id], b = y[id];                                                       \
    int k = 0;                                                                              \
    BINARY_FUNCTIONS(EMIT_BINARY_##NS)                                                      \
    out[k++ * n + id] = NS::fma(a, b, a);                                                   \
    out[k++ * n + id] = NS::fmin3(a, b, 1.0f);                                              \
    out[k++ * n + id] = NS::fmax3(a, b, 1.0f);                                              \
    out[k++ * n + id] = NS::fmedian3(a, b, 1.0f);                                           \
}

#define EMIT_UNARY_precise(NAME) out[k++ * n + id] = precise::NAME(v);
#define EMIT_UNARY_fast(NAME) out[k++ * n + id] = fast::NAME(v);
#define EMIT_BINARY_precise(NAME) out[k++ * n + id] = precise::NAME(a, b);
#define EMIT_BINARY_fast(NAME) out[k++ * n + id] = fast::NAME(a, b);

MATH_KERNELS(precise)
MATH_KERNELS(fast)

// The parts functions, and the default namespace (fast, as Metal compiles by default) on float4 vectors:
// component i of the vector computes input 4 * id + i.
kernel void math_parts(device const float* x [[buffer(0)]], device const int* e [[buffer(1)]],
                       device float* out [[buffer(2)]], device int* iout [[buffer(3)]],
                       uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float v = x[id];
    int ex = 0;
    float whole = 0.0f, c = 0.0f;
    out[0 * n + id] = frexp(v, ex);
    iout[id] = ex;
    out[1 * n + id] = modf(v, whole);
    out[2 * n + id] = whole;
    out[3 * n + id] = ldexp(v, e[id]);
    out[4 * n + id] = sincos(v, c);
    out[5 * n + id] = c;
}

kernel void math_vector(device const float4* x [[buffer(0)]], device float4* out [[buffer(1)]],
                        uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 v = x[id];
    out[0 * n + id] = cos(v);
    out[1 * n + id] = exp(v.wzyx).wzyx;
    out[2 * n + id] = fmax(v, 0.5f);
    out[3 * n + id] = pow(fabs(v), float4(0.5f));
    out[4 * n + id] = float4(precise::sqrt(fabs(v.xy)), rsqrt(fabs(v.zw)));
    out[5 * n + id] = fma(v, 2.0f, v);
}

// sinpi, cospi, tanpi in both flavours, asinpi, acospi, atanpi, atan2pi and ilogb, on float; then on float4 (component i computes input
// 4 * id + i), on half and on half4.
kernel void math_pi(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                    device int* iout [[buffer(2)]],
                    uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float v = x[id];
    out[0 * n + id] = precise::sinpi(v);
    out[1 * n + id] = precise::cospi(v);
    out[2 * n + id] = precise::tanpi(v);
    out[3 * n + id] = fast::sinpi(v);
    out[4 * n + id] = fast::cospi(v);
    out[5 * n + id] = fast::tanpi(v);
    out[6 * n + id] = asinpi(v);
    out[7 * n + id] = acospi(v);
    out[8 * n + id] = atanpi(v);
    out[9 * n + id] = precise::atan2pi(v, -0.5f);
    iout[id] = ilogb(v);
}

kernel void math_pi_vector(device const float4* x [[buffer(0)]], device float4* out [[buffer(1)]],
                           device int4* iout [[buffer(2)]],
                           uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float4 v = x[id];
    out[0 * n + id] = sinpi(v);
    out[1 * n + id] = cospi(v.wzyx).wzyx;
    out[2 * n + id] = tanpi(v);
    iout[id] = ilogb(v);
}

kernel void math_pi_half(device const half* x [[buffer(0)]], device half* out [[buffer(1)]],
                         uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const half h = x[id];
    out[0 * n + id] = sinpi(h);
    out[1 * n + id] = cospi(h);
    out[2 * n + id] = tanpi(h);
    out[3 * n + id] = half4(sinpi(half4(h))).z;
}
