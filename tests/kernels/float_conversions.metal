#include <metal_stdlib>
using namespace metal;

// A byte that decodes to a power of two and converts to float only, and a pair whose conversion to scalars is a
// template constrained by is_convertible_v: the two ways kernel libraries write number-like classes.
struct power_of_two {
    uchar bits;
    operator float() thread { return exp2(float(int(bits) - 127)); }
};

struct pair_value {
    float real;
    float imag;
    template <typename U, typename = typename enable_if<is_convertible_v<float, U>>::type>
    constexpr operator U() const thread { return static_cast<U>(real); }
};

static_assert(is_convertible_v<float, half>, "float converts to half implicitly");
static_assert(is_convertible_v<pair_value, half>, "so the pair converts to half too");

kernel void float_conversions(device const uchar* bits [[buffer(0)]], device const float2* pairs [[buffer(1)]],
                              device half* out [[buffer(2)]], device int* whole [[buffer(3)]],
                              uint i [[thread_position_in_grid]]) {
    power_of_two p{bits[i]};
    const pair_value c{pairs[i].x, pairs[i].y};
    half from_byte = p;
    half from_pair = c;
    out[5 * i] = static_cast<half>(p);
    out[5 * i + 1] = half(p);
    out[5 * i + 2] = from_byte;
    out[5 * i + 3] = static_cast<half>(c);
    out[5 * i + 4] = from_pair;
    whole[2 * i] = static_cast<int>(p);  // conversions to other types are what they were
    whole[2 * i + 1] = static_cast<int>(c);
}
