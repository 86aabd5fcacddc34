// half and bfloat as built-in numbers: conversions from every arithmetic type rounded once to nearest even, the
// same bits in constant expressions as at run time, the usual arithmetic conversions, user conversion operators,
// and scalars of any type next to vectors of 16-bit floats.
#include <metal_stdlib>
using namespace metal;

// Conversions at run time, as bits. Row k of `out` holds conversion k of x[id] (or of the integers i[id], u[id],
// l[id]).
kernel void narrow_from_numbers(device const float* x [[buffer(0)]], device const int* i [[buffer(1)]],
                                device const uint* u [[buffer(2)]], device const long* l [[buffer(3)]],
                                device ushort* out [[buffer(4)]],
                                uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    int k = 0;
    out[k++ * n + id] = as_type<ushort>(half(x[id]));
    out[k++ * n + id] = as_type<ushort>(bfloat(x[id]));
    out[k++ * n + id] = as_type<ushort>(half(i[id]));
    out[k++ * n + id] = as_type<ushort>(bfloat(i[id]));
    out[k++ * n + id] = as_type<ushort>(bfloat(u[id]));
    out[k++ * n + id] = as_type<ushort>(bfloat(l[id]));
    out[k++ * n + id] = as_type<ushort>(half(l[id]));
    out[k++ * n + id] = as_type<ushort>(bfloat(half(x[id])));  // through half: exact, then rounded once
}

// The same conversions in constant expressions, over the constants below, next to the run-time ones.
#define NARROW_CONSTANTS(X)                                                                                      \
    X(0.1f) X(-0.1f) X(1.0f / 3.0f) X(65504.0f) X(65519.0f) X(65520.0f) X(1e-8f) X(-2.98e-8f) X(6.1e-5f)          \
    X(1.00390625f) X(1.01171875f) X(3.3895314e38f) X(3.4e38f) X(1e-40f) X(-0.0f) X(2049.0f) X(2051.0f)  \
    X(NAN) X(-NAN) X(INFINITY)
#define CONSTANT_HALF(V) half(V),
#define CONSTANT_BFLOAT(V) bfloat(V),
#define RUNTIME_VALUE(V) V,
constant half constant_halves[] = {NARROW_CONSTANTS(CONSTANT_HALF)};
constant bfloat constant_bfloats[] = {NARROW_CONSTANTS(CONSTANT_BFLOAT)};
constant float constant_floats[] = {NARROW_CONSTANTS(RUNTIME_VALUE)};
// Back to float in a constant expression, and arithmetic
constexpr constant float back_from_half = float(half(0.1f)) + float(half(-2.98e-8f));
constexpr constant bfloat bfloat_sum = bfloat(1.0f) + bfloat(0.00390625f) * 3;

kernel void narrow_constants(device ushort* out [[buffer(0)]], device float* back [[buffer(1)]],
                             uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const float f = constant_floats[id];
    out[0 * n + id] = as_type<ushort>(constant_halves[id]);
    out[1 * n + id] = as_type<ushort>(half(f));
    out[2 * n + id] = as_type<ushort>(constant_bfloats[id]);
    out[3 * n + id] = as_type<ushort>(bfloat(f));
    if (id == 0) {
        back[0] = back_from_half;
        back[1] = float(half(f)) + float(half(constant_floats[7]));  // the same at run time (f = 0.1f)
        back[2] = bfloat_sum;
    }
}

// Built-in-number behaviour, checked by the compiler.
static constexpr constant half zero_half = half(0);
constexpr constant bfloat one_bfloat = 1.0f;
static_assert(float(zero_half) == 0.0f && float(one_bfloat) == 1.0f, "constexpr construction");
static_assert(float(half(1) + half(2) * half(3)) == 7.0f, "constexpr half arithmetic");
static_assert(float(bfloat(3) * bfloat(1.5f) - 1) == 3.5f, "constexpr bfloat arithmetic");
static_assert(is_same_v<decltype(bfloat(1) * 2), bfloat> && is_same_v<decltype(half(1) + 2u), half>,
              "a 16-bit float with an integer stays itself");
static_assert(is_same_v<decltype(bfloat(1) * 2.0f), float> && is_same_v<decltype(half(1) * 2.0f), float>,
              "a 16-bit float with float is float");
static_assert(is_same_v<decltype(bfloat(1) + half(1)), float>, "bfloat with half is float");
static_assert(is_same_v<decltype(bfloat(1) < 2), bool>, "comparisons give bool");
static_assert(float(numeric_limits<half>::max()) == 65504.0f && float(numeric_limits<bfloat>::lowest()) < -3e38f,
              "limits are constant expressions");

struct through_float {  // converts to bfloat only through float
    float v;
    operator float() const { return v; }
};
struct with_bfloat {  // converts to bfloat directly too: that conversion is the one taken
    float v;
    operator float() const { return v; }
    operator bfloat() const { return bfloat(-v); }
};

// Mixed arithmetic: row k of `out` (as floats) for a[id], b[id] (ints j[id]).
kernel void narrow_mixed(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
                         device const int* j [[buffer(2)]], device float* out [[buffer(3)]],
                         uint id [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
    const bfloat ba = bfloat(a[id]);
    const half ha = half(a[id]);
    int k = 0;
    out[k++ * n + id] = ba + j[id];               // j rounded to bfloat first, then the sum rounded
    out[k++ * n + id] = ha + j[id];               // j rounded to half first
    out[k++ * n + id] = ba * b[id];               // float
    out[k++ * n + id] = ha * b[id];               // float
    out[k++ * n + id] = ba + ha;                  // float
    out[k++ * n + id] = ba < j[id] ? 1.0f : 0.0f;  // j as bfloat
    bfloat c = ba;
    c += j[id];
    out[k++ * n + id] = c;
    bfloat d = through_float{b[id]};
    out[k++ * n + id] = d;
    out[k++ * n + id] = bfloat(with_bfloat{b[id]});
    const half2 h2 = b[id] * half2(ha, half(1));  // a float next to a half2: converted to half
    out[k++ * n + id] = h2.x;
    const bfloat2 b2 = bfloat2(ba, ba) - j[id];
    out[k++ * n + id] = b2.y;
    const float2 f2 = ha * float2(b[id], 1.0f);  // a half next to a float2: converted to float
    out[k++ * n + id] = f2.x;
    const float2 g2 = float2(1.0f, b[id]) - ba;  // and a bfloat
    out[k++ * n + id] = g2.y;
}
