// The conditional operator between 16-bit floats and other arithmetic types gives Metal's type.
#include <metal_stdlib>
using namespace metal;

template <int N> struct constant_int { static constexpr int value = N; };
constexpr constant int three = true ? 3 : 4;

struct Flags { uint low : 4; uint high : 4; };

template <typename T>
T pick(bool c, T a, float b) {
    return c ? a : b;  // float when T is half or bfloat, converted back on return
}

// out[8 * id + k]; half_in and bfloat_in hold 1.5 each, wide holds 1.0001 (not a half nor a bfloat)
kernel void conditional_types(device float* out [[buffer(0)]],
                              device const half* half_in [[buffer(1)]],
                              device const bfloat* bfloat_in [[buffer(2)]],
                              device const float* wide [[buffer(3)]],
                              uint id [[thread_position_in_grid]]) {
    const bool c = id % 2 == 0;
    half h = half_in[id];
    bfloat b = bfloat_in[id];
    float f = wide[id];
    device float* o = out + 8 * id;
    o[0] = c ? h : f;         // float: 1.0001 survives on the odd ids
    o[1] = c ? h : 2049;      // half: 2049 rounds to 2048
    Flags flags;
    flags.low = 5;
    flags.high = 9;
    o[1] += float(c ? flags.low : 7u) - (c ? 5.0f : 7.0f);  // a bit-field operand is read, not referenced: + 0
    o[2] = c ? b : f;         // float
    o[3] = c ? b : 257;       // bfloat: 257 rounds to 256
    o[4] = c ? h : id > 100 ? f : 4097;  // nested: half ? (float ? int) is float, 4097 exact
    int evaluated = 0;
    float chosen = c ? (evaluated += 1, f) : (evaluated += 10, h);  // only one side runs
    o[5] = chosen + evaluated;
    thread float& target = c ? o[6] : o[7];  // an lvalue stays an lvalue
    target = 7;
    (!c) ? (void)(o[6] = pick(c, h, f)) : (void)(o[7] = pick(c, b, f));
    switch (id % 3) {
        case 1: o[6] += c ? 0 : constant_int<true ? three : 4>::value; break;
        default: break;
    }
    int lengths[three > 2 ? 2 : 1] = {1, 2};
    o[7] += sizeof(lengths) == 2 * sizeof(int) ? [&] { return 0.5f; }() : 1.0f;
}
