#include <metal_stdlib>
using namespace metal;

// A library's own log1p, for float and for a complex-like type that any number converts to (as MLX's complex64_t
// does, through a constructor template), called with a half from a template: Metal converts the half to float.
struct pair_like {
    float re;
    float im;
    template <typename U> pair_like(U x) : re(float(x)), im(0.0f) {}
};

inline float log1p(float x) { return metal::log(1.0f + x) + 100.0f; }  // + 100: this overload, not another
inline pair_like log1p(pair_like z) { return pair_like(-1.0f); }

struct Log1pOp {
    template <typename T> T operator()(T x) { return log1p(x); }
};

kernel void half_log1p(device const half* in [[buffer(0)]], device half* out [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) {
    out[i] = Log1pOp{}(in[i]);
}

// A library's own function template of such a name (candle's erf) takes the half as it is.
template <typename T> T erf(T x) { return x * T(2); }
inline float erf(float x) { return x * 3.0f; }  // a plain overload beside it

struct ErfOp {
    template <typename T> T operator()(T x) { return erf(x); }
};

kernel void half_erf_template(device const half* in [[buffer(0)]], device half* out [[buffer(1)]],
                              uint i [[thread_position_in_grid]]) {
    out[i] = ErfOp{}(in[i]);
}
