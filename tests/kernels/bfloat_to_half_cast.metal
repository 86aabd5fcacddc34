// A cast from bfloat to half, as candle's cast kernels spell it (static_cast through a template), and a functional
// cast: g++ 13 refuses a float-to-_Float16 step after a user conversion unless the class converts to half itself.
#include <metal_stdlib>
using namespace metal;

template <typename T, typename U> U cast_one(T x) { return static_cast<U>(static_cast<T>(x)); }

kernel void bfloat_to_half(device const bfloat* in [[buffer(0)]], device half* out [[buffer(1)]],
                           device half* doubled [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    out[i] = cast_one<bfloat, half>(in[i]);
    doubled[i] = half(in[i]) * 2.0h;
}
