// metal/_math.h -- Metal's math functions over float, half, bfloat and their vectors.
//
// Each function is one template, in metal::precise and metal::fast; metal::NAME is the precise one, or the fast
// one when MG_FAST_MATH is defined. Scalars call the per-target layer in _target.h directly (so that
// metal::cos(float) is an inline ::cosf, which g++ vectorises through libmvec); half and bfloat compute in
// float; vectors apply the scalar function to each component. Vector and swizzle arguments may be mixed with
// scalars, which are broadcast.
#pragma once

namespace mg {
namespace detail {
// f applied to x (and y, z) converted to float (for float itself, no conversion at all).
#define MG_LIFT(FLAVOUR, NAME) [](auto... v) { return ::mg::detail::FLAVOUR::NAME(float(v)...); }

// ---- sinpi, cospi, tanpi: the argument is reduced exactly, then the C function is called on pi * r ----------
// x = k / 2 + r with k = rint(2 x) and |r| <= 1/4: both exact for |x| < 2**23; every float from 2**23 up is an
// integer. pi * r is computed with pi split into a float and its remainder, to about half an ulp.
MG_FUNC bool is_inf_or_nan(float x) { return (bit_cast<unsigned int>(x) & 0x7fffffffu) >= 0x7f800000u; }
MG_FUNC float quiet_nan() { return bit_cast<float>(0x7fc00000u); }
MG_FUNC float pi_times(float r) { return ::fmaf(r, 0x1.921fb6p+1f, r * -0x1.777a5cp-24f); }

namespace precise {
MG_FUNC float sinpi(float x) {
    if (is_inf_or_nan(x)) return quiet_nan();
    if (!(::fabsf(x) < 0x1p23f)) return ::copysignf(0.0f, x);  // an integer
    const float k = ::rintf(2.0f * x);
    const float r = x - 0.5f * k;
    if (r == 0.0f && (int(k) & 1) == 0) return ::copysignf(0.0f, x);  // sinpi(n) is a zero with n's sign
    const float t = pi_times(r);
    switch (int(k) & 3) {
        case 0: return ::sinf(t);
        case 1: return ::cosf(t);
        case 2: return -::sinf(t);
        default: return -::cosf(t);
    }
}
MG_FUNC float cospi(float x) {
    if (is_inf_or_nan(x)) return quiet_nan();
    const float ax = ::fabsf(x);
    if (!(ax < 0x1p23f)) return ax < 0x1p24f && (int(ax) & 1) ? -1.0f : 1.0f;  // an integer
    const float k = ::rintf(2.0f * x);
    const float r = x - 0.5f * k;
    if (r == 0.0f && (int(k) & 1)) return 0.0f;  // cospi(n + 1/2) is +0
    const float t = pi_times(r);
    switch (int(k) & 3) {
        case 0: return ::cosf(t);
        case 1: return -::sinf(t);
        case 2: return -::cosf(t);
        default: return ::sinf(t);
    }
}
// tanpi has period 1: x = k + r with |r| <= 1/2; beyond |r| = 1/4, tan(pi r) = sign(r) / tan(pi (1/2 - |r|)),
// where 1/2 - |r| is exact.
MG_FUNC float tanpi(float x) {
    if (is_inf_or_nan(x)) return quiet_nan();
    if (!(::fabsf(x) < 0x1p23f)) return ::copysignf(0.0f, x);
    const float r = x - ::rintf(x);
    if (r == 0.0f) return ::copysignf(0.0f, x);
    const float ar = ::fabsf(r);
    if (ar <= 0.25f) return ::tanf(pi_times(r));
    return ::copysignf(1.0f, r) / ::tanf(pi_times(0.5f - ar));
}
// asinpi, acospi, atanpi, atan2pi: the C function's result times 1/pi (rounded to float: 0.5 ulp), so about
// one ulp more than the C function.
MG_FUNC float asinpi(float x) { return ::asinf(x) * 0x1.45f306p-2f; }
MG_FUNC float acospi(float x) { return ::acosf(x) * 0x1.45f306p-2f; }
MG_FUNC float atanpi(float x) { return ::atanf(x) * 0x1.45f306p-2f; }
MG_FUNC float atan2pi(float y, float x) { return ::atan2f(y, x) * 0x1.45f306p-2f; }
// ilogb: the unbiased exponent, from the bits (the same on both targets): INT_MIN for 0 and NaN, INT_MAX for
// an infinity (glibc's and CUDA's FP_ILOGB0, FP_ILOGBNAN); subnormals give their true exponent.
MG_FUNC int ilogb(float x) {
    const unsigned int bits = bit_cast<unsigned int>(x) & 0x7fffffffu;
    const int biased = int(bits >> 23);
    if (biased == 0xff) return bits == 0x7f800000u ? 0x7fffffff : int(0x80000000u);
    if (biased != 0) return biased - 127;
    if (bits == 0) return int(0x80000000u);
    return (31 - clz32(bits)) - 149;
}
}  // namespace precise
}  // namespace detail
}  // namespace mg

// An integer or bool scalar argument of NAME is taken as a float, then given to CALL (PyTorch's UnaryKernel.metal
// calls precise::log(10) and precise::abs of its integer types), as C++ takes it as a double; the trailing empty
// pack makes this form rank below any template of the name a library declares itself.
#define MG_INTEGER_AS_FLOAT(NAME, CALL)                                                                \
    template <class X, class R = mg::detail::float_of_integer_t<X>, class... None>                     \
    MG_FUNC R NAME(const X& x, None...) {                                                              \
        static_assert(sizeof...(None) == 0, #NAME " takes one argument");                              \
        return CALL(float(x));                                                                         \
    }
#define MG_MATH_1(FLAVOUR, NAME)                                                                       \
    template <class X, class R = mg::detail::float_result_t<X>>                                        \
    MG_FUNC R NAME(const X& x) {                                                                       \
        return mg::detail::map<R>(MG_LIFT(FLAVOUR, NAME), mg::detail::value_of(x));                     \
    }                                                                                                  \
    MG_INTEGER_AS_FLOAT(NAME, NAME)
#define MG_MATH_2(FLAVOUR, NAME)                                                                       \
    template <class X, class Y, class R = mg::detail::float_result_t<X, Y>>                            \
    MG_FUNC R NAME(const X& x, const Y& y) {                                                           \
        return mg::detail::map<R>(MG_LIFT(FLAVOUR, NAME), mg::detail::value_of(x), mg::detail::value_of(y)); \
    }
#define MG_MATH_UNARY_ENTRY(NAME, CNAME) MG_MATH_1(FLAVOUR_NS, NAME)
#define MG_MATH_BINARY_ENTRY(NAME, CNAME) MG_MATH_2(FLAVOUR_NS, NAME)

#define MG_MATH_FAMILY                                                                                 \
    MG_FLOAT_UNARY_FUNCTIONS(MG_MATH_UNARY_ENTRY)                                                      \
    MG_FLOAT_BINARY_FUNCTIONS(MG_MATH_BINARY_ENTRY)                                                    \
    MG_MATH_1(FLAVOUR_NS, rsqrt)                                                                       \
    MG_MATH_1(FLAVOUR_NS, sqrt)                                                                        \
    MG_MATH_2(FLAVOUR_NS, divide)                                                                      \
    MG_MATH_2(FLAVOUR_NS, nextafter)                                                                   \
    MG_MATH_1(FLAVOUR_NS, sinpi)                                                                       \
    MG_MATH_1(FLAVOUR_NS, cospi)                                                                       \
    MG_MATH_1(FLAVOUR_NS, tanpi)                                                                       \
    MG_MATH_1(FLAVOUR_NS, asinpi)                                                                      \
    MG_MATH_1(FLAVOUR_NS, acospi)                                                                      \
    MG_MATH_1(FLAVOUR_NS, atanpi)                                                                      \
    MG_MATH_2(FLAVOUR_NS, atan2pi)                                                                     \
    /* ilogb: int, or an int vector of x's size */                                                     \
    template <class X, class R = mg::detail::float_result_t<X>>                                        \
    MG_FUNC auto ilogb(const X& x) {                                                                   \
        const R v = mg::detail::value_of(x);                                                           \
        if constexpr (mg::detail::shape<R>::size == 0) {                                               \
            return ::mg::detail::precise::ilogb(float(v));                                             \
        } else {                                                                                       \
            metal::vec<int, mg::detail::shape<R>::size> r;                                             \
            for (int i = 0; i < mg::detail::shape<R>::size; ++i)                                       \
                r.d[i] = ::mg::detail::precise::ilogb(float(v.d[i]));                                  \
            return r;                                                                                  \
        }                                                                                              \
    }                                                                                                  \
    /* abs of a floating-point value: fabs (Metal lists both among its fast:: and precise:: functions) */  \
    template <class X, class R = mg::detail::float_result_t<X>>                                        \
    MG_FUNC R abs(const X& x) { return ::metal::FLAVOUR_NS::fabs(x); }                                 \
    MG_INTEGER_AS_FLOAT(abs, ::metal::FLAVOUR_NS::fabs)                                                \
    /* powr: pow for x >= 0 (undefined below, as in Metal) */                                          \
    template <class X, class Y, class R = mg::detail::float_result_t<X, Y>>                            \
    MG_FUNC R powr(const X& x, const Y& y) { return pow(x, y); }                                        \
    template <class X, class Y, class Z, class R = mg::detail::float_result_t<X, Y, Z>>                \
    MG_FUNC R fma(const X& a, const Y& b, const Z& c) {                                                \
        if constexpr (mg::detail::is_same<typename mg::detail::shape<R>::elem, half>::value)           \
            return mg::detail::map<R>([](half x, half y, half z) { return mg::detail::fma_half(x, y, z); }, \
                                      mg::detail::value_of(a), mg::detail::value_of(b), mg::detail::value_of(c)); \
        else                                                                                           \
            return mg::detail::map<R>(MG_LIFT(FLAVOUR_NS, fma), mg::detail::value_of(a),                \
                                      mg::detail::value_of(b), mg::detail::value_of(c));                \
    }                                                                                                  \
    /* fract: x - floor(x), kept below 1; NaN for NaN, a signed zero for an infinity (tested on the bits,  */ \
    /* which hold under -ffast-math) */                                                                 \
    template <class X, class R = mg::detail::float_result_t<X>>                                        \
    MG_FUNC R fract(const X& x) {                                                                      \
        return mg::detail::map<R>([](auto v) {                                                         \
            const float f = float(v);                                                                  \
            const unsigned int bits = mg::detail::bit_cast<unsigned int>(f) & 0x7fffffffu;             \
            if (bits == 0x7f800000u) return ::mg::detail::FLAVOUR_NS::copysign(0.0f, f);               \
            const float r = f - ::mg::detail::FLAVOUR_NS::floor(f);                                    \
            return 0x1.fffffep-1f < r ? 0x1.fffffep-1f : r;                                            \
        }, mg::detail::value_of(x));                                                                   \
    }                                                                                                  \
    MG_INTEGER_AS_FLOAT(fract, fract)                                                                  \
    /* sincos: returns the sine, stores the cosine */                                                  \
    template <class X, class C, class R = mg::detail::float_result_t<X>>                               \
    MG_FUNC R sincos(const X& x, C& cosval) {                                                          \
        const R v = mg::detail::value_of(x);                                                           \
        cosval = mg::detail::map<R>(MG_LIFT(FLAVOUR_NS, cos), v);                                      \
        return mg::detail::map<R>(MG_LIFT(FLAVOUR_NS, sin), v);                                        \
    }                                                                                                  \
    /* ldexp(x, k): k an int or an int vector of x's size */                                           \
    template <class X, class K, class R = mg::detail::float_result_t<X>>                               \
    MG_FUNC R ldexp(const X& x, const K& k) {                                                          \
        const R v = mg::detail::value_of(x);                                                           \
        const auto kv = mg::detail::value_of(k);                                                       \
        if constexpr (mg::detail::shape<R>::size == 0) {                                               \
            return R(::mg::detail::FLAVOUR_NS::ldexp(float(v), int(kv)));                              \
        } else {                                                                                       \
            R r;                                                                                       \
            for (int i = 0; i < mg::detail::shape<R>::size; ++i)                                       \
                r.d[i] = ::mg::detail::FLAVOUR_NS::ldexp(float(v.d[i]), mg::detail::lane<int>(kv, i)); \
            return r;                                                                                  \
        }                                                                                              \
    }                                                                                                  \
    /* frexp(x, e): mantissa in [0.5, 1), exponent stored in e (int or int vector) */                  \
    template <class X, class E, class R = mg::detail::float_result_t<X>>                               \
    MG_FUNC R frexp(const X& x, E& e) {                                                                \
        const R v = mg::detail::value_of(x);                                                           \
        if constexpr (mg::detail::shape<R>::size == 0) {                                               \
            int ex = 0;                                                                                \
            const R m = R(::mg::detail::FLAVOUR_NS::frexp(float(v), &ex));                             \
            e = ex;                                                                                    \
            return m;                                                                                  \
        } else {                                                                                       \
            R r;                                                                                       \
            for (int i = 0; i < mg::detail::shape<R>::size; ++i) {                                     \
                int ex = 0;                                                                            \
                r.d[i] = ::mg::detail::FLAVOUR_NS::frexp(float(v.d[i]), &ex);                          \
                e[i] = ex;                                                                             \
            }                                                                                          \
            return r;                                                                                  \
        }                                                                                              \
    }                                                                                                  \
    /* modf(x, ip): fractional part returned, integral part stored in ip */                            \
    template <class X, class I, class R = mg::detail::float_result_t<X>>                               \
    MG_FUNC R modf(const X& x, I& ip) {                                                                \
        const R v = mg::detail::value_of(x);                                                           \
        const R whole = mg::detail::map<R>(MG_LIFT(FLAVOUR_NS, trunc), v);                             \
        ip = whole;                                                                                    \
        return mg::detail::map<R>([](auto a, auto w) {                                                 \
            const float f = float(a);                                                                  \
            /* inf - inf would be NaN; Metal returns a zero with x's sign */                           \
            return ::mg::detail::FLAVOUR_NS::copysign(f == float(w) ? 0.0f : f - float(w), f);         \
        }, v, whole);                                                                                  \
    }

namespace metal {
namespace precise {
#define FLAVOUR_NS precise
MG_MATH_FAMILY
#undef FLAVOUR_NS
}  // namespace precise
namespace fast {
#define FLAVOUR_NS fast
MG_MATH_FAMILY
#undef FLAVOUR_NS
}  // namespace fast

#if defined(MG_FAST_MATH)
#  define MG_DEFAULT_MATH fast
#else
#  define MG_DEFAULT_MATH precise
#endif
#define MG_USE_DEFAULT(NAME, CNAME) using MG_DEFAULT_MATH::NAME;
MG_FLOAT_UNARY_FUNCTIONS(MG_USE_DEFAULT)
MG_FLOAT_BINARY_FUNCTIONS(MG_USE_DEFAULT)
using MG_DEFAULT_MATH::rsqrt;
using MG_DEFAULT_MATH::sqrt;
using MG_DEFAULT_MATH::divide;
using MG_DEFAULT_MATH::nextafter;
using MG_DEFAULT_MATH::sinpi;
using MG_DEFAULT_MATH::cospi;
using MG_DEFAULT_MATH::tanpi;
using MG_DEFAULT_MATH::asinpi;
using MG_DEFAULT_MATH::acospi;
using MG_DEFAULT_MATH::atanpi;
using MG_DEFAULT_MATH::atan2pi;
using MG_DEFAULT_MATH::ilogb;
using MG_DEFAULT_MATH::powr;
using MG_DEFAULT_MATH::fma;
using MG_DEFAULT_MATH::fract;
using MG_DEFAULT_MATH::sincos;
using MG_DEFAULT_MATH::ldexp;
using MG_DEFAULT_MATH::frexp;
using MG_DEFAULT_MATH::modf;
#undef MG_USE_DEFAULT

// fmin3, fmax3, fmedian3: exact, so one version serves both flavours; NaNs are handled as fmin and fmax do.
template <class X, class Y, class Z, class R = mg::detail::float_result_t<X, Y, Z>>
MG_FUNC R fmin3(const X& x, const Y& y, const Z& z) { return fmin(fmin(R(x), R(y)), R(z)); }
template <class X, class Y, class Z, class R = mg::detail::float_result_t<X, Y, Z>>
MG_FUNC R fmax3(const X& x, const Y& y, const Z& z) { return fmax(fmax(R(x), R(y)), R(z)); }
template <class X, class Y, class Z, class R = mg::detail::float_result_t<X, Y, Z>>
MG_FUNC R fmedian3(const X& x, const Y& y, const Z& z) {
    return fmax(fmin(R(x), R(y)), fmin(fmax(R(x), R(y)), R(z)));
}
namespace precise {
using metal::fmin3;
using metal::fmax3;
using metal::fmedian3;
}  // namespace precise
namespace fast {
using metal::fmin3;
using metal::fmax3;
using metal::fmedian3;
}  // namespace fast
}  // namespace metal

#undef MG_MATH_FAMILY
#undef MG_MATH_UNARY_ENTRY
#undef MG_MATH_BINARY_ENTRY
#undef MG_MATH_1
#undef MG_INTEGER_AS_FLOAT
#undef MG_MATH_2
