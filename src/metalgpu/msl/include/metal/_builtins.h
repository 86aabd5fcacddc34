// metal/_builtins.h -- the compiler builtins behind Metal's math functions (__metal_cos(x, fast), ...), which
// kernels call directly to define their own overloads (MLX's bf16_math.h), and the flags they take.
// The SIMD-group builtins (__metal_simd_sum, ...) are in _simd_builtins.h, after the functions they call.
#pragma once

// The last argument of a math builtin: whether the fast or the precise version is meant.
#define __METAL_FAST_MATH__ true
#define __METAL_PRECISE_MATH__ false
#if defined(MG_FAST_MATH)
#  define __METAL_MAYBE_FAST_MATH__ __METAL_FAST_MATH__
#else
#  define __METAL_MAYBE_FAST_MATH__ __METAL_PRECISE_MATH__
#endif

#define MG_BUILTIN_1(NAME)                                                                                    \
    template <class X> MG_FUNC auto __metal_##NAME(const X& x, bool fast) {                                   \
        return fast ? metal::fast::NAME(x) : metal::precise::NAME(x);                                         \
    }
#define MG_BUILTIN_2(NAME)                                                                                    \
    template <class X, class Y> MG_FUNC auto __metal_##NAME(const X& x, const Y& y, bool fast) {              \
        return fast ? metal::fast::NAME(x, y) : metal::precise::NAME(x, y);                                   \
    }
#define MG_BUILTIN_3(NAME)                                                                                            \
    template <class X, class Y, class Z> MG_FUNC auto __metal_##NAME(const X& x, const Y& y, const Z& z, bool fast) { \
        return fast ? metal::fast::NAME(x, y, z) : metal::precise::NAME(x, y, z);                                     \
    }
#define MG_BUILTIN_UNARY_ENTRY(NAME, CNAME) MG_BUILTIN_1(NAME)
#define MG_BUILTIN_BINARY_ENTRY(NAME, CNAME) MG_BUILTIN_2(NAME)
MG_FLOAT_UNARY_FUNCTIONS(MG_BUILTIN_UNARY_ENTRY)
MG_FLOAT_BINARY_FUNCTIONS(MG_BUILTIN_BINARY_ENTRY)
MG_BUILTIN_1(sqrt) MG_BUILTIN_1(rsqrt) MG_BUILTIN_1(fract) MG_BUILTIN_1(sinpi) MG_BUILTIN_1(cospi)
MG_BUILTIN_1(tanpi) MG_BUILTIN_2(divide) MG_BUILTIN_2(powr) MG_BUILTIN_2(ldexp)
MG_BUILTIN_3(fmin3) MG_BUILTIN_3(fmax3) MG_BUILTIN_3(fmedian3)
#undef MG_BUILTIN_UNARY_ENTRY
#undef MG_BUILTIN_BINARY_ENTRY
#undef MG_BUILTIN_1
#undef MG_BUILTIN_2
#undef MG_BUILTIN_3

// Correctly rounded in both versions, so they take no flag.
template <class X, class Y, class Z> MG_FUNC auto __metal_fma(const X& x, const Y& y, const Z& z) {
    return metal::fma(x, y, z);
}
template <class X, class Y> MG_FUNC auto __metal_nextafter(const X& x, const Y& y) { return metal::nextafter(x, y); }
template <class X, class E> MG_FUNC auto __metal_frexp(const X& x, E* exponent) { return metal::frexp(x, *exponent); }
