// A kernel's own functions named like C math functions (MLX's global log1p and erf, PyTorch's c10::metal::expm1f
// reached through a using-directive), called with float, half, bfloat and integer arguments: Metal has no C versions
// for them to be ambiguous with. No `using namespace metal;` here: as_type and the type names are available without
// it, as in Metal.
#include <metal_stdlib>

inline float log1p(float x) { return x * 2.0f; }
inline bfloat log1p(bfloat x) { return bfloat(float(x) * 3.0f); }
float erf(float a) { return a + 1.0f; }
float expm1(float a) { return a - 1.0f; }
float cbrt(float a) { return a * a; }
namespace lib {
inline float expm1f(float a) { return a * 4.0f; }
inline float lgamma(float a) { return a - 3.0f; }
}  // namespace lib
using namespace lib;

template <typename T> T apply(T x) {
    return static_cast<T>(erf(static_cast<float>(x))) + log1p(x) + T(expm1(x)) + T(cbrt(x));
}

kernel void user_math(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                      uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float v = x[id];
    out[0 * n + id] = apply(v);
    out[1 * n + id] = apply(half(v));
    out[2 * n + id] = apply(bfloat(v));
    out[3 * n + id] = as_type<float>(as_type<uint>(v) ^ 0x80000000u);
    out[4 * n + id] = log1p(int(v)) + expm1f(v) + lgamma(v);
}
