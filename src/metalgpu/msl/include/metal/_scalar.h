// metal/_scalar.h -- Metal's scalar type names, the 16-bit float class (bfloat; half on CUDA), numeric_limits.
#pragma once

namespace metal {

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
typedef decltype(sizeof(0)) size_t;
typedef decltype(static_cast<int*>(nullptr) - static_cast<int*>(nullptr)) ptrdiff_t;
typedef mg::detail::half_t half;

static_assert(sizeof(long) == 8, "Metal's long is 64 bits: this header needs an LP64 target");
static_assert(char(-1) < 0, "Metal's char is signed: compile with -fsigned-char");

}  // namespace metal

namespace mg {
namespace detail {

// ---- rounding to a 16-bit format, exactly --------------------------------------------------------------------
// (-1)^negative * m * 2^e rounded once, to nearest even, into a format with ExpBits exponent and ManBits fraction
// bits: subnormals, and infinity past the largest finite value. Integer arithmetic only, so it gives the same bits
// on every target and in constant expressions (where the GPU's conversion instructions cannot run).
template <int ExpBits, int ManBits>
MG_FUNC constexpr unsigned short round_to_narrow(bool negative, unsigned long long m, int e) {
    constexpr int bias = (1 << (ExpBits - 1)) - 1;
    constexpr unsigned long long infinity = ((1ull << ExpBits) - 1ull) << ManBits;
    const unsigned long long sign = negative ? 0x8000ull : 0ull;
    if (m == 0) return static_cast<unsigned short>(sign);
    const int exponent = highest_bit(m) + e;
    const int last = (exponent < 1 - bias ? 1 - bias : exponent) - ManBits;  // weight of the last bit kept
    const int dropped = last - e;                                            // bits of m below it
    unsigned long long kept = 0;
    if (dropped <= 0) {
        kept = m << -dropped;
    } else if (dropped <= 64) {
        const unsigned long long rest = dropped == 64 ? m : m & ((1ull << dropped) - 1ull);
        const unsigned long long half = 1ull << (dropped - 1);
        kept = dropped == 64 ? 0ull : m >> dropped;
        if (rest > half || (rest == half && (kept & 1ull))) ++kept;
    }  // else: below half the smallest subnormal, a zero
    // kept carries the leading bit of a normal number (none for a subnormal): added to the exponent field less one,
    // it completes the exponent, and a rounding that overflows the significand carries into it.
    const unsigned long long bits = (static_cast<unsigned long long>(last + ManBits + bias - 1) << ManBits) + kept;
    return static_cast<unsigned short>(sign | (bits < infinity ? bits : infinity));
}

// Any number to a format's bits. Floats and doubles are read from their bits, integers from their magnitude.
template <class Format>
MG_FUNC constexpr unsigned short narrow_from_double(double d) {
    constexpr int ExpBits = Format::exponent_bits, ManBits = Format::fraction_bits;
    const unsigned long long u = bit_cast<unsigned long long>(d);
    const int biased = static_cast<int>((u >> 52) & 0x7ffu);
    const unsigned long long fraction = u & ((1ull << 52) - 1ull);
    const bool negative = (u >> 63) != 0;
    if (biased == 0x7ff) {
        constexpr unsigned short infinity = static_cast<unsigned short>(((1u << ExpBits) - 1u) << ManBits);
        return fraction ? Format::nan_bits(negative) : static_cast<unsigned short>((negative ? 0x8000u : 0u) | infinity);
    }
    return round_to_narrow<ExpBits, ManBits>(negative, biased ? fraction | (1ull << 52) : fraction,
                                             (biased ? biased : 1) - 1075);
}
template <int ExpBits, int ManBits, class I>
MG_FUNC constexpr unsigned short narrow_from_integer(I i) {
    using U = unsigned long long;
    const bool negative = i < I(0);
    return round_to_narrow<ExpBits, ManBits>(negative, negative ? U(0) - U(i) : U(i), 0);
}

// bfloat: the top half of a binary32. From a float, rounded to nearest even by adding just under half of the
// dropped part (plus the last kept bit, for ties); a NaN stays a NaN, quiet.
struct bf16_format {
    static constexpr int exponent_bits = 8, fraction_bits = 7;
    static MG_FUNC constexpr unsigned short nan_bits(bool negative) { return negative ? 0xffc0 : 0x7fc0; }
    static MG_FUNC constexpr float to_float(unsigned short b) {
        return bit_cast<float>(static_cast<unsigned int>(b) << 16);
    }
    static MG_FUNC constexpr unsigned short from_float(float f) {
        const unsigned int u = bit_cast<unsigned int>(f);
        if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<unsigned short>((u >> 16) | 0x0040u);
        return static_cast<unsigned short>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
};

#if defined(MG_TARGET_CUDA)
// half on CUDA: IEEE binary16, converted by the GPU's instructions, or in a constant expression by integer code
// that gives the same bits (NaNs included: the instructions make every NaN the canonical 0x7fff / 0x7fffffff).
struct f16_format {
    static constexpr int exponent_bits = 5, fraction_bits = 10;
    static MG_FUNC constexpr unsigned short nan_bits(bool) { return 0x7fff; }
    static MG_FUNC constexpr float to_float(unsigned short b) {
        if (!__builtin_is_constant_evaluated()) return f16_to_float_instruction(b);
        const unsigned int sign = static_cast<unsigned int>(b & 0x8000u) << 16;
        const unsigned int biased = (b >> 10) & 0x1fu, fraction = b & 0x3ffu;
        if (biased == 0x1f) return bit_cast<float>(fraction ? 0x7fffffffu : sign | 0x7f800000u);
        if (biased != 0) return bit_cast<float>(sign | ((biased + 112u) << 23) | (fraction << 13));
        if (fraction == 0) return bit_cast<float>(sign);
        const int top = highest_bit(fraction);  // fraction * 2^-24, normalised
        return bit_cast<float>(sign | (static_cast<unsigned int>(top + 103) << 23) |
                               ((fraction << (23 - top)) & 0x7fffffu));
    }
    static MG_FUNC constexpr unsigned short from_float(float f) {
        if (!__builtin_is_constant_evaluated()) return f16_from_float_instruction(f);
        return narrow_from_double<f16_format>(static_cast<double>(f));
    }
};
#endif

// A number a 16-bit float converts from implicitly: an integer, bool, enum, float or double. From the other 16-bit
// float only explicitly, as in Metal (bfloat and half convert implicitly to float alone): otherwise a kernel's
// f(float) and f(bfloat) overloads would be ambiguous for a half.
template <class A> struct is_wide_float : bool_constant<is_same<A, float>::value || is_same<A, double>::value> {};
template <class A, class N> using narrow_source_t = enable_if_t<
    ((is_integral<A>::value && !vector_base<A>::value) || is_enum<A>::value || is_wide_float<A>::value) &&
        !is_same<A, N>::value, int>;
template <class A, class N> using other_narrow_t = enable_if_t<
    is_floating_point<A>::value && !vector_base<A>::value && !is_wide_float<A>::value && !is_same<A, N>::value,
    int>;
// A class that converts to float (operator float(), operator int(), ...) but not to N itself: converted through
// float, as Metal converts it to its built-in bfloat (a class here, so C++ would need two user conversions).
template <class S, class N, class = void> struct has_conversion_to : false_type {};
template <class S, class N>
struct has_conversion_to<S, N, void_t<decltype(declval<S>().operator N())>> : true_type {};
template <class S, class N, class C = remove_cvref_t<S>> using through_float_t =
    enable_if_t<__is_class(C) && !is_narrow<C>::value && !has_conversion_to<S, N>::value &&
                is_convertible<S, float>::value, int>;

// A 16-bit float that computes in float and rounds back (bfloat; half on CUDA). Every conversion to it rounds
// once, to nearest even, and is a constant expression. With itself or an integer it gives itself; with a wider
// float, that float (Metal: half * float is float).
template <class Format> struct narrow_float {
    unsigned short bits;

    narrow_float() = default;
    template <class A, narrow_source_t<A, narrow_float> = 0>
    MG_FUNC constexpr narrow_float(A a) : bits(convert(a)) {}
    template <class A, other_narrow_t<A, narrow_float> = 0>
    MG_FUNC constexpr explicit narrow_float(A a) : bits(convert(a)) {}
    template <class S, through_float_t<S, narrow_float> = 0>
    MG_FUNC constexpr narrow_float(S&& s) : bits(Format::from_float(static_cast<float>(static_cast<S&&>(s)))) {}
    MG_FUNC constexpr operator float() const { return Format::to_float(bits); }
#if defined(MG_TARGET_CPU) && defined(__FLT16_MAX__)
    // g++ 13 (C++23's extended floating types) converts float to _Float16 only explicitly, so a cast through the
    // conversion to float is refused: static_cast<half>(bfloat) needs its own.
    MG_FUNC constexpr explicit operator _Float16() const { return static_cast<_Float16>(Format::to_float(bits)); }
#endif

    static MG_FUNC constexpr narrow_float from_bits(unsigned short b) {
        narrow_float r{};
        r.bits = b;
        return r;
    }
    MG_FUNC constexpr narrow_float operator-() const { return from_bits(static_cast<unsigned short>(bits ^ 0x8000u)); }
    MG_FUNC constexpr narrow_float operator+() const { return *this; }
    template <class U> MG_FUNC constexpr narrow_float& operator+=(const U& u) { return *this = narrow_float(*this + u); }
    template <class U> MG_FUNC constexpr narrow_float& operator-=(const U& u) { return *this = narrow_float(*this - u); }
    template <class U> MG_FUNC constexpr narrow_float& operator*=(const U& u) { return *this = narrow_float(*this * u); }
    template <class U> MG_FUNC constexpr narrow_float& operator/=(const U& u) { return *this = narrow_float(*this / u); }
    MG_FUNC constexpr narrow_float& operator++() { return *this += 1; }
    MG_FUNC constexpr narrow_float& operator--() { return *this -= 1; }
    MG_FUNC constexpr narrow_float operator++(int) {
        const narrow_float old = *this;
        *this += 1;
        return old;
    }
    MG_FUNC constexpr narrow_float operator--(int) {
        const narrow_float old = *this;
        *this -= 1;
        return old;
    }

private:
    template <class A> static MG_FUNC constexpr unsigned short convert(A a) {
        if constexpr (is_same<A, float>::value) {
            return Format::from_float(a);
        } else if constexpr (is_same<A, double>::value || is_same<A, long double>::value) {
            return narrow_from_double<Format>(static_cast<double>(a));
        } else if constexpr (is_enum<A>::value) {
            return convert(static_cast<long long>(a));
        } else if constexpr (is_integral<A>::value && sizeof(A) > 2) {
            // a float holds every integer below 2**24 exactly; larger ones it would round, and then round again
            constexpr A exact = A(1) << 24;
            if (a < exact && (!is_signed<A>::value || a > A(-exact))) return Format::from_float(static_cast<float>(a));
            return narrow_from_integer<Format::exponent_bits, Format::fraction_bits>(a);
        } else {
            return Format::from_float(static_cast<float>(a));  // small integers, bool, the other 16-bit floats
        }
    }
};

// ---- arithmetic: in float, rounded once (float holds the exact +, -, *, / of two 16-bit floats to within what
// rounding to nearest even needs: 24 >= 2 * 11 + 2 bits) --------------------------------------------------------
// The type a 16-bit float meets U as (meet in _traits.h: integers as itself, other floats as float or double).
// With the other 16-bit float, only the left operand's template applies (one of them must).
template <class F, class U, class R> using narrow_left_t =
    enable_if_t<is_arithmetic<U>::value && !is_same<U, narrow_float<F>>::value, R>;
template <class F, class U, class R> using narrow_right_t = enable_if_t<is_arithmetic<U>::value && !is_narrow<U>::value, R>;
template <class F, class U> using narrow_result_t = typename meet<narrow_float<F>, U>::type;
template <class F, class U> using narrow_bool_t = bool;

// Mixed operands: both converted to the common type first (an integer rounded to the 16-bit type), as C++ does.
#define MG_NARROW_OPERATOR(OP, R, MIXED)                                                                      \
    template <class F> MG_FUNC constexpr R operator OP(narrow_float<F> a, narrow_float<F> b) {                \
        return R(float(a) OP float(b));                                                                       \
    }                                                                                                         \
    template <class F, class U>                                                                               \
    MG_FUNC constexpr narrow_left_t<F, U, MIXED<F, U>> operator OP(narrow_float<F> a, U b) {                  \
        using C = typename meet<narrow_float<F>, U>::type;                                                    \
        return C(a) OP C(b);                                                                                  \
    }                                                                                                         \
    template <class F, class U>                                                                               \
    MG_FUNC constexpr narrow_right_t<F, U, MIXED<F, U>> operator OP(U a, narrow_float<F> b) {                 \
        using C = typename meet<narrow_float<F>, U>::type;                                                    \
        return C(a) OP C(b);                                                                                  \
    }
#define MG_NARROW_ARITH(OP) MG_NARROW_OPERATOR(OP, narrow_float<F>, narrow_result_t)
#define MG_NARROW_COMPARE(OP) MG_NARROW_OPERATOR(OP, bool, narrow_bool_t)
MG_NARROW_ARITH(+) MG_NARROW_ARITH(-) MG_NARROW_ARITH(*) MG_NARROW_ARITH(/)
MG_NARROW_COMPARE(==) MG_NARROW_COMPARE(!=) MG_NARROW_COMPARE(<) MG_NARROW_COMPARE(<=)
MG_NARROW_COMPARE(>) MG_NARROW_COMPARE(>=)
#undef MG_NARROW_OPERATOR
#undef MG_NARROW_ARITH
#undef MG_NARROW_COMPARE

// half with half on CUDA: the GPU's own f16 instructions (what cuda_fp16.h's __hadd, __hsub, __hmul and __hfma
// are), one instruction instead of two conversions around a float one. Results are the same: both round once,
// correctly. In a constant expression, the float route.
#if defined(MG_TARGET_CUDA)
#define MG_HALF_INSTRUCTION(OP, NAME, PTX)                                                                    \
    MG_FUNC unsigned short NAME(unsigned short a, unsigned short b) {                                         \
        unsigned short r;                                                                                     \
        asm(PTX " %0, %1, %2;" : "=h"(r) : "h"(a), "h"(b));                                                   \
        return r;                                                                                             \
    }                                                                                                         \
    MG_FUNC constexpr half_t operator OP(half_t a, half_t b) {                                                \
        if (__builtin_is_constant_evaluated()) return half_t(float(a) OP float(b));                           \
        return half_t::from_bits(NAME(a.bits, b.bits));                                                       \
    }
MG_HALF_INSTRUCTION(+, half_add, "add.rn.f16")
MG_HALF_INSTRUCTION(-, half_sub, "sub.rn.f16")
MG_HALF_INSTRUCTION(*, half_mul, "mul.rn.f16")
#undef MG_HALF_INSTRUCTION
#endif

// fma of halves, rounded once as Metal's half table asks: an fma in float rounds twice (to float, then to half)
// and misses by one ulp for some inputs (tests/conformance has them). On CUDA one instruction; elsewhere in
// double, where a * b + c of halves is exact whenever the result is finite.
#if defined(MG_TARGET_CUDA)
MG_FUNC half_t fma_half(half_t a, half_t b, half_t c) {
    unsigned short r;
    asm("fma.rn.f16 %0, %1, %2, %3;" : "=h"(r) : "h"(a.bits), "h"(b.bits), "h"(c.bits));
    return half_t::from_bits(r);
}
#else
MG_FUNC half_t fma_half(half_t a, half_t b, half_t c) { return half_t(double(a) * double(b) + double(c)); }
#endif

}  // namespace detail
}  // namespace mg

namespace metal {

static_assert(sizeof(bfloat) == 2 && alignof(bfloat) == 2, "bfloat layout");
static_assert(sizeof(half) == 2 && alignof(half) == 2, "half layout");

// ---- numeric_limits -------------------------------------------------------------------------------------
// numeric_limits<T> derives from _numeric_limits_impl<T>, which kernels specialise for their own types (candle:
// `template <class T> struct _numeric_limits_impl<indexed<T>>`, written after `using namespace metal;`). That
// template is declared at global scope (and named in metal): NVRTC refuses a partial specialisation outside the
// namespace of its primary template, even where the name is found through a using-directive.
}  // namespace metal

template <class T> struct _numeric_limits_impl { static constexpr bool is_specialized = false; };

namespace metal {
using ::_numeric_limits_impl;
template <class T> struct numeric_limits : _numeric_limits_impl<T> {};
template <class T> struct numeric_limits<const T> : numeric_limits<T> {};
template <class T> struct numeric_limits<volatile T> : numeric_limits<T> {};
template <class T> struct numeric_limits<const volatile T> : numeric_limits<T> {};
}  // namespace metal

namespace mg {
namespace detail {
template <class T> struct integer_limits {
    using U = typename make_unsigned_base<T>::type;
    static constexpr bool is_specialized = true;
    static constexpr bool is_signed = mg::detail::is_signed<T>::value;
    static constexpr bool is_integer = true;
    static constexpr bool is_exact = true;
    static constexpr bool is_bounded = true;
    static constexpr bool is_modulo = !is_signed;
    static constexpr bool has_infinity = false;
    static constexpr bool has_quiet_NaN = false;
    static constexpr bool has_signaling_NaN = false;
    static constexpr bool is_iec559 = false;
    static constexpr int radix = 2;
    static constexpr int digits = int(sizeof(T) * 8) - (is_signed ? 1 : 0);
    static constexpr int digits10 = digits * 643 / 2136;  // floor(digits * log10(2))
    static MG_FUNC constexpr T max() { return T(is_signed ? U(~U(0)) >> 1 : U(~U(0))); }
    static MG_FUNC constexpr T min() { return is_signed ? T(-max() - 1) : T(0); }
    static MG_FUNC constexpr T lowest() { return min(); }
    // The floating-point members, zero for an integer as in C++ (PyTorch's scans ask every type for infinity()).
    static MG_FUNC constexpr T epsilon() { return T(0); }
    static MG_FUNC constexpr T round_error() { return T(0); }
    static MG_FUNC constexpr T infinity() { return T(0); }
    static MG_FUNC constexpr T quiet_NaN() { return T(0); }
    static MG_FUNC constexpr T signaling_NaN() { return T(0); }
    static MG_FUNC constexpr T denorm_min() { return T(0); }
};

// Floating types: values built from their bit patterns (constant expressions, identical on both targets).
template <class T, class Bits, Bits MaxBits, Bits MinBits, Bits EpsBits, Bits InfBits, Bits NanBits, int Digits,
          int MinExp, int MaxExp>
struct float_limits {
    static constexpr bool is_specialized = true;
    static constexpr bool is_signed = true;
    static constexpr bool is_integer = false;
    static constexpr bool is_exact = false;
    static constexpr bool is_bounded = true;
    static constexpr bool is_modulo = false;
    static constexpr bool is_iec559 = true;
    static constexpr bool has_infinity = true;
    static constexpr bool has_quiet_NaN = true;
    static constexpr bool has_denorm_loss = false;
    static constexpr int radix = 2;
    static constexpr int digits = Digits;
    static constexpr int digits10 = (Digits - 1) * 643 / 2136;
    static constexpr int min_exponent = MinExp;
    static constexpr int max_exponent = MaxExp;
    static MG_FUNC constexpr T max() { return bit_cast<T>(MaxBits); }
    static MG_FUNC constexpr T min() { return bit_cast<T>(MinBits); }
    static MG_FUNC constexpr T lowest() { return bit_cast<T>(Bits(MaxBits | (Bits(1) << (sizeof(Bits) * 8 - 1)))); }
    static MG_FUNC constexpr T epsilon() { return bit_cast<T>(EpsBits); }
    static MG_FUNC constexpr T infinity() { return bit_cast<T>(InfBits); }
    static MG_FUNC constexpr T quiet_NaN() { return bit_cast<T>(NanBits); }
    static MG_FUNC constexpr T denorm_min() { return bit_cast<T>(Bits(1)); }
};
}  // namespace detail
}  // namespace mg

#define MG_INTEGER_LIMITS(T) template <> struct _numeric_limits_impl<T> : mg::detail::integer_limits<T> {};
MG_INTEGER_LIMITS(char) MG_INTEGER_LIMITS(signed char) MG_INTEGER_LIMITS(unsigned char)
MG_INTEGER_LIMITS(short) MG_INTEGER_LIMITS(unsigned short) MG_INTEGER_LIMITS(int) MG_INTEGER_LIMITS(unsigned int)
MG_INTEGER_LIMITS(long) MG_INTEGER_LIMITS(unsigned long) MG_INTEGER_LIMITS(long long)
MG_INTEGER_LIMITS(unsigned long long)
#undef MG_INTEGER_LIMITS
template <> struct _numeric_limits_impl<bool> : mg::detail::integer_limits<bool> {
    static constexpr int digits = 1;
    static constexpr int digits10 = 0;
    static constexpr bool is_modulo = false;
    static MG_FUNC constexpr bool max() { return true; }
    static MG_FUNC constexpr bool min() { return false; }
    static MG_FUNC constexpr bool lowest() { return false; }
};
template <> struct _numeric_limits_impl<float> : mg::detail::float_limits<
    float, unsigned int, 0x7f7fffffu, 0x00800000u, 0x34000000u, 0x7f800000u, 0x7fc00000u, 24, -125, 128> {};
template <> struct _numeric_limits_impl<metal::half> : mg::detail::float_limits<
    metal::half, unsigned short, 0x7bff, 0x0400, 0x1400, 0x7c00, 0x7e00, 11, -13, 16> {};
template <> struct _numeric_limits_impl<metal::bfloat> : mg::detail::float_limits<
    metal::bfloat, unsigned short, 0x7f7f, 0x0080, 0x3c00, 0x7f80, 0x7fc0, 8, -125, 128> {};


namespace mg {
namespace detail {
template <class Bits, Bits Sign, Bits Exponent> struct fp_encoding {
    using encoding_type = Bits;
    static constexpr encoding_type sign_mask = Sign;
    static constexpr encoding_type exponent_mask = Exponent;
    static constexpr encoding_type inf_mask = Exponent;
    static constexpr encoding_type mantissa_mask = Bits(~Bits(Sign | Exponent));
};
}  // namespace detail
}  // namespace mg

namespace metal {
// The bit fields of a floating type, as Metal's library-internal trait names them (candle reads sign_mask and
// inf_mask of float).
template <class T> struct _fp_encoding_traits;
template <> struct _fp_encoding_traits<float> : mg::detail::fp_encoding<uint, 0x80000000u, 0x7f800000u> {};
template <> struct _fp_encoding_traits<half> : mg::detail::fp_encoding<ushort, 0x8000u, 0x7c00u> {};
template <> struct _fp_encoding_traits<bfloat> : mg::detail::fp_encoding<ushort, 0x8000u, 0x7f80u> {};
}  // namespace metal
