// Prints computed values, one "name: v0 v1 ..." line each; tests/test_header.py checks them against numpy.
// It goes through metalgpu's preprocessor and swizzle rewriting first (swizzles are no C++), so it includes
// nothing but Metal's headers: printf is the compiler's builtin.
#include <metal_stdlib>
using namespace metal;

static void put(const char* name, const float* v, int n) {
    __builtin_printf("%s:", name);
    for (int i = 0; i < n; ++i) __builtin_printf(" %.9g", double(v[i]));
    __builtin_printf("\n");
}
template <class T> static void show(const char* name, const T& x) {
    constexpr int n = mg::detail::shape<T>::size;
    float v[4];
    if constexpr (n == 0) {
        v[0] = float(x);
        put(name, v, 1);
    } else {
        const auto value = mg::detail::value_of(x);  // swizzles read out as vectors
        for (int i = 0; i < n; ++i) v[i] = float(value[i]);
        put(name, v, n);
    }
}
#define SHOW(expr) show(#expr, expr)

// Kept opaque to the optimiser, so that edge values are computed at run time, not folded.
static volatile float vol_inf = __builtin_huge_valf();
static volatile float vol_zero = 0.0f;
static volatile unsigned vol_negzero_bits = 0x80000000u;  // -0.0: under -ffast-math, -x may not give it

int main() {
    const float inf = vol_inf;
    const float nan = vol_zero / vol_zero;
    const float negzero = as_type<float>(uint(vol_negzero_bits));

    // ---- constructors
    const float4 a(1.0f, 2.0f, 3.0f, 4.0f);
    const float3 c3(5.0f, 6.0f, 7.0f);
    const float2 c2(8.0f, 9.0f);
    SHOW(float4(2.5f));
    SHOW(float4(c3, 1.0f));
    SHOW(float4(1.0f, c3));
    SHOW(float4(c2, c2.yx));
    SHOW(float4(c2, 1, 2));
    SHOW(float4(1, c2, 2));
    SHOW(float4(1, 2, c2));
    SHOW(float3(a.xyz));
    SHOW(float3(a.wzy));
    SHOW(float4(int4(-1, 2, -3, 4)));
    SHOW(int4(float4(-1.75f, 1.75f, 2.5f, -2.5f)));
    SHOW(uint3(1u, 2u, 3u));
    SHOW(ushort2(65535, 7));
    packed_float3 p = c3;
    float3 from_packed = p;
    SHOW(from_packed);
    SHOW(p + p);
    p.y = 10.0f;
    p[2] = 11.0f;
    SHOW(float3(p));
    float4 zero{};
    SHOW(zero);

    // ---- swizzles
    SHOW(a.zyx);
    SHOW(a.xxxx);
    SHOW(a.wy);
    SHOW(a.bgra);
    float4 w = a;
    w.xy = a.wz;
    SHOW(w);
    w.zw += 1.0f;
    SHOW(w);
    w.yx = w.xy;
    SHOW(w);
    w.wzyx = a;
    SHOW(w);
    w.xz *= float2(2.0f, 3.0f);
    SHOW(w);
    w[1] = -1.0f;
    w.w = -2.0f;
    SHOW(w);
    SHOW(a.xy + a.zw);
    SHOW(a.xy * 2.0f);
    SHOW(-a.zw);

    // ---- operators
    SHOW(a + a.wzyx);
    SHOW(a - 1.0f);
    SHOW(10.0f / a);
    SHOW(a * a);
    const int4 i4(7, -7, 12, 5);
    SHOW(i4 / 2);
    SHOW(i4 % 3);
    SHOW(i4 & 6);
    SHOW(i4 | 1);
    SHOW(i4 ^ 3);
    SHOW(i4 << 2);
    SHOW(i4 >> 1);
    SHOW(~i4);
    SHOW(-i4);
    const uint2 u2(1u, 0x80000000u);
    SHOW(u2 >> 31);
    const char4 ch(100, 100, -100, 1);
    const char4 chsum = ch + ch;  // wraps in char, as in Metal
    SHOW(chsum);
    const uchar2 uc(250, 3);
    SHOW(uc + uchar2(10, 10));
    SHOW(a < float4(2.0f));
    SHOW(a == a.xyzw);
    SHOW(a >= 3.0f);
    SHOW(bool2(true, false) && bool2(true, true));
    SHOW(bool2(true, false) || bool2(false, false));
    SHOW(!bool2(true, false));
    int4 ic = i4;
    ic += 1;
    ic <<= 1;
    SHOW(ic);
    float4 inc = a;
    ++inc;
    SHOW(inc);

    // ---- half and bfloat
    const half h = half(1.5f);
    const float hf = h * 2.0f;  // half * float is float
    SHOW(hf);
    const half hh = h * h;
    SHOW(hh);
    SHOW(half(65504.0f) * half(2.0f));   // overflows to inf in half
    SHOW(half(0.1f));                     // rounded to binary16
    SHOW(half(3) + 1);
    const half4 h4(1.0f, 2.0f, 0.5f, -4.0f);
    SHOW(h4 * half(2.0f));
    SHOW(float4(h4) + 0.25f);
    SHOW(bfloat(1.0f / 3.0f));
    SHOW(bfloat(3.0f) * bfloat(1.5f));
    SHOW(bfloat(1.00390625f));            // tie: rounds to even (1.0)
    SHOW(bfloat(1.01171875f));            // tie: rounds to even (1.015625)
    const bfloat2 b2(bfloat(2.0f), bfloat(4.0f));
    SHOW(b2 * bfloat(0.5f));

    // ---- math on float, edge values included
    const float4 ang(0.0f, 0.5f, -1.25f, 3.0f);
    SHOW(cos(ang));
    SHOW(sin(ang));
    SHOW(tan(ang));
    SHOW(fast::cos(ang));
    SHOW(precise::sin(ang));
    SHOW(atan2(ang, float4(1.0f, -1.0f, 2.0f, -2.0f)));
    SHOW(exp(ang));
    SHOW(exp2(ang));
    SHOW(exp10(ang));
    SHOW(log(float4(1.0f, 0.5f, 10.0f, 0.0f)));
    SHOW(log2(float4(1.0f, 8.0f, 0.25f, -1.0f)));
    SHOW(log10(float4(1.0f, 1000.0f, 0.01f, inf)));
    SHOW(sqrt(float4(4.0f, 2.0f, 0.0f, -1.0f)));
    SHOW(rsqrt(float4(4.0f, 16.0f, 0.25f, 1.0f)));
    SHOW(pow(float4(2.0f, 9.0f, 0.5f, 0.0f), float4(10.0f, 0.5f, -2.0f, 0.0f)));
    SHOW(powr(float2(2.0f, 4.0f), 0.5f));
    SHOW(asin(float3(0.5f, -1.0f, 0.0f)));
    SHOW(acos(float3(0.5f, -1.0f, 0.0f)));
    SHOW(atan(float3(0.5f, -1.0f, inf)));
    SHOW(sinh(float3(0.5f, -1.0f, 0.0f)));
    SHOW(cosh(float3(0.5f, -1.0f, 0.0f)));
    SHOW(tanh(float3(0.5f, -1.0f, 20.0f)));
    const float4 r(-1.5f, -0.5f, 0.5f, 2.5f);
    SHOW(floor(r));
    SHOW(ceil(r));
    SHOW(round(r));
    SHOW(rint(r));
    SHOW(trunc(r));
    SHOW(fract(r));
    SHOW(fract(float2(-1e-9f, 5.0f)));
    SHOW(fabs(float4(-2.0f, negzero, inf, -inf)));
    SHOW(abs(float4(-2.0f, 3.0f, -inf, 0.0f)));
    SHOW(abs(int4(-5, 5, 0, -2147483647)));
    SHOW(fmod(float4(7.5f, -7.5f, 1.0f, 5.0f), float4(2.0f, 2.0f, 0.3f, inf)));
    SHOW(fmin(float4(1.0f, nan, -1.0f, 2.0f), float4(2.0f, 3.0f, nan, 2.0f)));
    SHOW(fmax(float4(1.0f, nan, -1.0f, 2.0f), float4(2.0f, 3.0f, nan, 2.0f)));
    SHOW(fma(float2(2.0f, 3.0f), float2(4.0f, 5.0f), 1.0f));
    SHOW(copysign(float4(1.0f, 2.0f, 0.0f, inf), float4(-1.0f, 1.0f, -1.0f, -0.5f)));
    SHOW(isnan(float4(nan, inf, 1.0f, -nan)));
    SHOW(isinf(float4(nan, inf, -inf, 3.0f)));
    SHOW(isfinite(float4(nan, inf, 0.0f, -3.0f)));
    SHOW(signbit(float4(negzero, 0.0f, -inf, nan)));
    SHOW(isnan(nan));
    SHOW(isinf(-inf));
    SHOW(isnan(half(nan)));
    SHOW(isinf(half(inf)));
    SHOW(signbit(negzero));
    float4 cv;
    SHOW(sincos(ang, cv));
    SHOW(cv);
    SHOW(ldexp(float3(1.0f, 3.0f, 0.75f), int3(3, -1, 4)));
    SHOW(ldexp(5.0f, 2));
    int3 ex;
    SHOW(frexp(float3(8.0f, 0.3f, -5.0f), ex));
    SHOW(ex);
    float3 whole;
    SHOW(modf(float3(2.75f, -1.5f, inf), whole));
    SHOW(whole);
    SHOW(cos(h4));
    SHOW(sqrt(half(2.0f)));
    SHOW(exp(a.xy));
    SHOW(sqrt(2.0f));
    SHOW(metal::cos(1.0f));

    // ---- common
    SHOW(min(a, 2.5f));
    SHOW(max(a, a.wzyx));
    SHOW(min(int3(1, -2, 3), int3(0, 0, 5)));
    SHOW(max(3u, 7u));
    SHOW(clamp(float4(-1.0f, 0.5f, 2.0f, 0.9f), 0.0f, 1.0f));
    SHOW(clamp(int2(-5, 50), int2(0, 0), int2(10, 10)));
    SHOW(mix(float2(0.0f, 10.0f), float2(10.0f, 20.0f), 0.25f));
    SHOW(saturate(float3(-0.5f, 0.5f, 1.5f)));
    SHOW(sign(float4(-2.0f, 0.0f, 3.0f, nan)));
    SHOW(step(1.0f, float4(0.0f, 1.0f, 2.0f, -1.0f)));
    SHOW(smoothstep(0.0f, 2.0f, float4(-1.0f, 0.5f, 1.0f, 3.0f)));

    // ---- geometric
    SHOW(dot(a, a));
    SHOW(dot(a.xyz, c3));
    SHOW(length(float2(3.0f, 4.0f)));
    SHOW(length_squared(c3));
    SHOW(distance(float3(1.0f, 1.0f, 1.0f), float3(4.0f, 5.0f, 1.0f)));
    SHOW(normalize(float3(3.0f, 0.0f, 4.0f)));
    SHOW(cross(float3(1.0f, 0.0f, 0.0f), float3(0.0f, 1.0f, 0.0f)));
    SHOW(cross(a.xyz, c3));
    SHOW(reflect(float2(1.0f, -1.0f), float2(0.0f, 1.0f)));
    SHOW(dot(h4, h4));

    // ---- relational and integer
    SHOW(all(bool3(true, true, false)));
    SHOW(all(a > 0.0f));
    SHOW(any(a > 3.5f));
    SHOW(any(a > 9.0f));
    SHOW(select(a, float4(-1.0f), bool4(true, false, true, false)));
    SHOW(select(1.0f, 2.0f, true));
    SHOW(popcount(uint4(0u, 1u, 0xffu, 0xffffffffu)));
    SHOW(clz(uint4(0u, 1u, 0x80000000u, 0x00010000u)));
    SHOW(ctz(uint4(0u, 1u, 0x80000000u, 12u)));
    SHOW(popcount(ulong(0xf0f0f0f0f0f0f0f0ul)));
    SHOW(clz(ushort(1)));

    // ---- as_type and limits
    SHOW(as_type<uint>(1.0f));
    SHOW(as_type<float>(0x40490fdbu));
    SHOW(as_type<ushort>(half(1.0f)));
    SHOW(as_type<uint2>(float2(1.0f, -2.0f)));
    SHOW(numeric_limits<half>::max());
    SHOW(numeric_limits<half>::epsilon());
    SHOW(numeric_limits<float>::max());
    SHOW(numeric_limits<float>::lowest());
    SHOW(numeric_limits<int>::min());
    SHOW(numeric_limits<ushort>::max());
    SHOW(numeric_limits<bfloat>::max());
    SHOW(numeric_limits<half>::infinity());
    return 0;
}
