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

// A 16-bit float that computes in float and rounds back (bfloat; half on CUDA). With itself or an integer it
// gives itself; with a wider float, that float (Metal: half * float is float).
template <class Format> struct narrow_float {
    unsigned short bits;

    narrow_float() = default;
    MG_FUNC narrow_float(float f) : bits(Format::from_float(f)) {}
    MG_FUNC operator float() const { return Format::to_float(bits); }

    static MG_FUNC constexpr narrow_float from_bits(unsigned short b) {
        narrow_float r{};
        r.bits = b;
        return r;
    }
    MG_FUNC narrow_float operator-() const { return from_bits(static_cast<unsigned short>(bits ^ 0x8000u)); }
    MG_FUNC narrow_float operator+() const { return *this; }
    template <class U> MG_FUNC narrow_float& operator+=(const U& u) { return *this = narrow_float(float(*this + u)); }
    template <class U> MG_FUNC narrow_float& operator-=(const U& u) { return *this = narrow_float(float(*this - u)); }
    template <class U> MG_FUNC narrow_float& operator*=(const U& u) { return *this = narrow_float(float(*this * u)); }
    template <class U> MG_FUNC narrow_float& operator/=(const U& u) { return *this = narrow_float(float(*this / u)); }
    MG_FUNC narrow_float& operator++() { return *this = narrow_float(float(*this) + 1.0f); }
    MG_FUNC narrow_float& operator--() { return *this = narrow_float(float(*this) - 1.0f); }
};

template <class U> using narrow_compute_t = conditional_t<is_same<U, double>::value, double, float>;
template <class F, class U> using narrow_mixed_t = enable_if_t<
    is_arithmetic<U>::value && !is_same<U, narrow_float<F>>::value, typename meet<narrow_float<F>, U>::type>;
template <class F, class U> using narrow_bool_t =
    enable_if_t<is_arithmetic<U>::value && !is_same<U, narrow_float<F>>::value, bool>;

#define MG_NARROW_OPERATOR(OP, R, MIXED)                                                                 \
    template <class F> MG_FUNC R operator OP(narrow_float<F> a, narrow_float<F> b) {                       \
        return R(float(a) OP float(b));                                                                   \
    }                                                                                                      \
    template <class F, class U> MG_FUNC MIXED<F, U> operator OP(narrow_float<F> a, U b) {                      \
        using C = narrow_compute_t<U>;                                                                     \
        return MIXED<F, U>(C(float(a)) OP C(b));                                                               \
    }                                                                                                      \
    template <class F, class U> MG_FUNC MIXED<F, U> operator OP(U a, narrow_float<F> b) {                      \
        using C = narrow_compute_t<U>;                                                                     \
        return MIXED<F, U>(C(a) OP C(float(b)));                                                               \
    }
#define MG_NARROW_ARITH(OP) MG_NARROW_OPERATOR(OP, narrow_float<F>, narrow_mixed_t)
#define MG_NARROW_COMPARE(OP) MG_NARROW_OPERATOR(OP, bool, narrow_bool_t)
MG_NARROW_ARITH(+) MG_NARROW_ARITH(-) MG_NARROW_ARITH(*) MG_NARROW_ARITH(/)
MG_NARROW_COMPARE(==) MG_NARROW_COMPARE(!=) MG_NARROW_COMPARE(<) MG_NARROW_COMPARE(<=)
MG_NARROW_COMPARE(>) MG_NARROW_COMPARE(>=)
#undef MG_NARROW_OPERATOR
#undef MG_NARROW_ARITH
#undef MG_NARROW_COMPARE

// half with half on CUDA: the GPU's own f16 instructions (what cuda_fp16.h's __hadd, __hsub, __hmul and __hfma
// are), one instruction instead of two conversions around a float one. Results are the same: both round once,
// correctly (float has the 2 * 11 + 2 bits that + - * of halves need for that).
#if defined(MG_TARGET_CUDA)
#define MG_HALF_INSTRUCTION(OP, PTX)                                                                     \
    MG_FUNC half_t operator OP(half_t a, half_t b) {                                                      \
        unsigned short r;                                                                                  \
        asm(PTX " %0, %1, %2;" : "=h"(r) : "h"(a.bits), "h"(b.bits));                                      \
        return half_t::from_bits(r);                                                                       \
    }
MG_HALF_INSTRUCTION(+, "add.rn.f16") MG_HALF_INSTRUCTION(-, "sub.rn.f16") MG_HALF_INSTRUCTION(*, "mul.rn.f16")
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
template <class T> struct numeric_limits { static constexpr bool is_specialized = false; };

template <class T> struct integer_limits {
    using U = typename mg::detail::make_unsigned_base<T>::type;
    static constexpr bool is_specialized = true;
    static constexpr bool is_signed = mg::detail::is_signed<T>::value;
    static constexpr bool is_integer = true;
    static constexpr bool is_exact = true;
    static constexpr bool has_infinity = false;
    static constexpr bool has_quiet_NaN = false;
    static constexpr int digits = int(sizeof(T) * 8) - (is_signed ? 1 : 0);
    static MG_FUNC constexpr T max() { return T(is_signed ? U(~U(0)) >> 1 : U(~U(0))); }
    static MG_FUNC constexpr T min() { return is_signed ? T(-max() - 1) : T(0); }
    static MG_FUNC constexpr T lowest() { return min(); }
};
#define MG_INTEGER_LIMITS(T) template <> struct numeric_limits<T> : integer_limits<T> {};
MG_INTEGER_LIMITS(char) MG_INTEGER_LIMITS(signed char) MG_INTEGER_LIMITS(unsigned char)
MG_INTEGER_LIMITS(short) MG_INTEGER_LIMITS(unsigned short) MG_INTEGER_LIMITS(int) MG_INTEGER_LIMITS(unsigned int)
MG_INTEGER_LIMITS(long) MG_INTEGER_LIMITS(unsigned long) MG_INTEGER_LIMITS(long long)
MG_INTEGER_LIMITS(unsigned long long)
#undef MG_INTEGER_LIMITS
template <> struct numeric_limits<bool> : integer_limits<unsigned char> {
    static constexpr int digits = 1;
    static MG_FUNC constexpr bool max() { return true; }
    static MG_FUNC constexpr bool min() { return false; }
    static MG_FUNC constexpr bool lowest() { return false; }
};

// Floating types: values built from their bit patterns, identical on both targets.
template <class T, class Bits, Bits MaxBits, Bits MinBits, Bits EpsBits, Bits InfBits, Bits NanBits, int Digits>
struct float_limits {
    static constexpr bool is_specialized = true;
    static constexpr bool is_signed = true;
    static constexpr bool is_integer = false;
    static constexpr bool is_exact = false;
    static constexpr bool has_infinity = true;
    static constexpr bool has_quiet_NaN = true;
    static constexpr int digits = Digits;
    static MG_FUNC T max() { return mg::detail::bit_cast<T>(MaxBits); }
    static MG_FUNC T min() { return mg::detail::bit_cast<T>(MinBits); }
    static MG_FUNC T lowest() { return mg::detail::bit_cast<T>(Bits(MaxBits | (Bits(1) << (sizeof(Bits) * 8 - 1)))); }
    static MG_FUNC T epsilon() { return mg::detail::bit_cast<T>(EpsBits); }
    static MG_FUNC T infinity() { return mg::detail::bit_cast<T>(InfBits); }
    static MG_FUNC T quiet_NaN() { return mg::detail::bit_cast<T>(NanBits); }
};
template <> struct numeric_limits<float>
    : float_limits<float, unsigned int, 0x7f7fffffu, 0x00800000u, 0x34000000u, 0x7f800000u, 0x7fc00000u, 24> {};
template <> struct numeric_limits<half>
    : float_limits<half, unsigned short, 0x7bff, 0x0400, 0x1400, 0x7c00, 0x7e00, 11> {};
template <> struct numeric_limits<bfloat>
    : float_limits<bfloat, unsigned short, 0x7f7f, 0x0080, 0x3c00, 0x7f80, 0x7fc0, 8> {};

}  // namespace metal
