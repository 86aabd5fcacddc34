// metal/_target.h -- target selection, qualifier macros and the thin per-target layer.
//
// Everything above this file is written once for both targets. This file is the only place that
// knows whether it is compiled by a host C++ compiler (MG_TARGET_CPU) or by NVRTC (MG_TARGET_CUDA).
//
// Exported for the translator and the launch headers:
//   MG_FUNC                  qualifier of every header function (CPU: inline; CUDA: __host__ __device__ inline)
//   METAL_FUNC               Metal's own spelling, inline on every target
//   MG_THREADGROUP_STORAGE   a threadgroup-scope local  (CPU: static thread_local; CUDA: __shared__)
//   MG_CONSTANT_DATA         a program-scope `constant` (CPU: nothing; CUDA: __constant__)
//
// Name clash with CUDA's built-in vector types (CUDA only):
//   NVRTC predeclares CUDA's own ::float4, ::int2, ... (also with -minimal, checked with NVRTC 13.5), and
//   cuda_fp16.h, if someone includes it, adds ::half and ::half2. With `using namespace metal;` an unqualified
//   `float4` would then be ambiguous.
//   We keep the names apart with the preprocessor: after CUDA's declarations, every Metal vector name that
//   CUDA also uses is defined as a macro (`#define float4 mg_float4`), before this header declares anything.
//   Our types are therefore declared as metal::mg_float4 and so on, and every later use of the token `float4`
//   (user code, `metal::float4`, our own headers) names ours. CUDA's own types keep working under their
//   spelling inside CUDA's headers; the user cannot name them, which is what a Metal kernel expects.
//   Error messages from NVRTC show the mg_ spelling. (cuda_fp16.h is not needed: metal::half is our own type
//   on CUDA, see "16-bit floats" below; included after this header, its ::half would clash with metal::half.)
#pragma once

#if defined(MG_TARGET_CPU) && defined(MG_TARGET_CUDA)
#  error "metal_stdlib: define only one of MG_TARGET_CPU and MG_TARGET_CUDA"
#endif
#if !defined(MG_TARGET_CPU) && !defined(MG_TARGET_CUDA)
#  if defined(__CUDACC_RTC__) || defined(__CUDA_ARCH__)
#    define MG_TARGET_CUDA 1
#  else
#    define MG_TARGET_CPU 1
#  endif
#endif

#define METAL_FUNC inline

#if defined(MG_TARGET_CUDA)
#  define MG_FUNC __host__ __device__ __forceinline__
#  define MG_THREADGROUP_STORAGE __shared__ __align__(16)  // whole rows for ldmatrix (_simdgroup_mma.h)
#  define MG_CONSTANT_DATA __constant__
#  include "_cuda_names.h"
// Metal's fixed-width integer names. NVRTC has no <cstdint>; these are the choices of the CPU target (LP64, as
// glibc makes them), so that int64_t is Metal's long there and here alike.
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long int64_t;
typedef unsigned long uint64_t;
typedef long intptr_t;
typedef unsigned long uintptr_t;
// The C math.h constants that Metal kernels use. The CPU gets them from math.h; NVRTC has no math.h, nor
// __builtin_huge_valf or __builtin_nanf, but has a constexpr __builtin_bit_cast.
#  if !defined(INFINITY)
#    define INFINITY __builtin_bit_cast(float, 0x7f800000u)
#  endif
#  if !defined(HUGE_VALF)
#    define HUGE_VALF __builtin_bit_cast(float, 0x7f800000u)
#  endif
#  if !defined(NAN)
#    define NAN __builtin_bit_cast(float, 0x7fc00000u)
#  endif
#else
#  define MG_FUNC inline
#  define MG_THREADGROUP_STORAGE static thread_local __attribute__((aligned(16)))  // as on CUDA
#  define MG_CONSTANT_DATA
#  include "_libm_cpu.h"
#endif

namespace mg {
namespace detail {

// ---- bit casts -----------------------------------------------------------------------------------
// A constant expression on both targets (g++ >= 11, clang, NVRTC), so numeric_limits and constexpr half and
// bfloat values can be built from bits.
template <class To, class From>
MG_FUNC constexpr To bit_cast(const From& from) {
    static_assert(sizeof(To) == sizeof(From), "as_type: source and destination sizes differ");
    return __builtin_bit_cast(To, from);
}

// ---- bit counting in constant expressions -------------------------------------------------------------
// The highest set bit of x (x != 0), by halving: usable in constant expressions on every target.
MG_FUNC constexpr int highest_bit(unsigned long long x) {
    int n = 0;
    for (int step = 32; step > 0; step /= 2)
        if (x >> step) {
            x >>= step;
            n += step;
        }
    return n;
}
MG_FUNC constexpr int count_bits(unsigned long long x) {
    int n = 0;
    for (; x; x &= x - 1ull) ++n;
    return n;
}

}  // namespace detail
}  // namespace mg

#if defined(MG_TARGET_CUDA) && !__has_builtin(__builtin_ctz)
// GCC's bit-counting builtins, which Metal (clang) has and NVRTC lacks; kernels use them in constant expressions
// (`constexpr short log_n = __builtin_ctz(N);`). Undefined for 0 in GCC; here clz and ctz give the width.
#define MG_BIT_BUILTINS(SUFFIX, T, WIDTH, CLZ, POPC)                                                          \
    MG_FUNC constexpr int __builtin_clz##SUFFIX(T x) {                                                        \
        if (__builtin_is_constant_evaluated()) return x ? WIDTH - 1 - ::mg::detail::highest_bit(x) : WIDTH;   \
        return CLZ(x);                                                                                        \
    }                                                                                                         \
    MG_FUNC constexpr int __builtin_ctz##SUFFIX(T x) {                                                        \
        return x ? WIDTH - 1 - __builtin_clz##SUFFIX(static_cast<T>(x & (~x + 1u))) : WIDTH;                  \
    }                                                                                                         \
    MG_FUNC constexpr int __builtin_popcount##SUFFIX(T x) {                                                   \
        if (__builtin_is_constant_evaluated()) return ::mg::detail::count_bits(x);                            \
        return POPC(x);                                                                                       \
    }
MG_BIT_BUILTINS(, unsigned int, 32, __clz, __popc)
MG_BIT_BUILTINS(l, unsigned long, 64, __clzll, __popcll)
MG_BIT_BUILTINS(ll, unsigned long long, 64, __clzll, __popcll)
#undef MG_BIT_BUILTINS
#endif

namespace mg {
namespace detail {

// ---- 16-bit floats -----------------------------------------------------------------------------------
// narrow_float<Format> (defined in _scalar.h) stores 16 bits and computes in float; Format converts.
// bfloat is one on every target. half is the compiler's _Float16 on the CPU and one of these on CUDA, where
// converting takes one PTX instruction each way (no cuda_fp16.h needed, and no clash with its operators);
// _scalar.h uses these outside constant evaluation, and exact integer code inside it.
template <class Format> struct narrow_float;
struct bf16_format;

#if defined(MG_TARGET_CUDA)
MG_FUNC float f16_to_float_instruction(unsigned short b) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(b));
    return f;
}
MG_FUNC unsigned short f16_from_float_instruction(float f) {
    unsigned short b;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(b) : "f"(f));
    return b;
}
struct f16_format;
using half_t = narrow_float<f16_format>;
#else
using half_t = _Float16;  // IEEE binary16 with native arithmetic in g++ >= 12 and clang
#endif

// keep_bits(u): u, hidden from the optimiser. Under -ffast-math (-fno-signed-zeros) g++ rewrites a test of a
// float's sign bit as `x < 0`, which is false for -0.0; signbit passes its bits through this to stay exact.
#if defined(MG_TARGET_CUDA)
MG_FUNC unsigned int keep_bits(unsigned int u) { return u; }
#else
MG_FUNC unsigned int keep_bits(unsigned int u) {
    __asm__("" : "+r"(u));
    return u;
}
#endif

// ---- integer bit counting ------------------------------------------------------------------------
#if defined(MG_TARGET_CUDA)
MG_FUNC int popcount32(unsigned int x) { return __popc(x); }
MG_FUNC int popcount64(unsigned long long x) { return __popcll(x); }
MG_FUNC int clz32(unsigned int x) { return __clz(x); }
MG_FUNC int clz64(unsigned long long x) { return __clzll(x); }
MG_FUNC int ctz32(unsigned int x) { return x ? __ffs(x) - 1 : 32; }
MG_FUNC int ctz64(unsigned long long x) { return x ? __ffsll(x) - 1 : 64; }
#else
MG_FUNC int popcount32(unsigned int x) { return __builtin_popcount(x); }
MG_FUNC int popcount64(unsigned long long x) { return __builtin_popcountll(x); }
MG_FUNC int clz32(unsigned int x) { return x ? __builtin_clz(x) : 32; }
MG_FUNC int clz64(unsigned long long x) { return x ? __builtin_clzll(x) : 64; }
MG_FUNC int ctz32(unsigned int x) { return x ? __builtin_ctz(x) : 32; }
MG_FUNC int ctz64(unsigned long long x) { return x ? __builtin_ctzll(x) : 64; }
#endif

// ---- integer products and bit reversal -------------------------------------------------------------
#if defined(MG_TARGET_CUDA)
MG_FUNC int mulhi32(int a, int b) { return __mulhi(a, b); }
MG_FUNC unsigned int mulhi32(unsigned int a, unsigned int b) { return __umulhi(a, b); }
MG_FUNC long long mulhi64(long long a, long long b) { return __mul64hi(a, b); }
MG_FUNC unsigned long long mulhi64(unsigned long long a, unsigned long long b) { return __umul64hi(a, b); }
MG_FUNC unsigned int brev32(unsigned int x) { return __brev(x); }
MG_FUNC unsigned long long brev64(unsigned long long x) { return __brevll(x); }
#else
MG_FUNC int mulhi32(int a, int b) { return int((long long)a * b >> 32); }
MG_FUNC unsigned int mulhi32(unsigned int a, unsigned int b) { return (unsigned int)((unsigned long long)a * b >> 32); }
MG_FUNC long long mulhi64(long long a, long long b) { return (long long)((__int128)a * b >> 64); }
MG_FUNC unsigned long long mulhi64(unsigned long long a, unsigned long long b) {
    return (unsigned long long)((unsigned __int128)a * b >> 64);
}
MG_FUNC unsigned int brev32(unsigned int x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(x);
}
MG_FUNC unsigned long long brev64(unsigned long long x) {
    return (unsigned long long)brev32((unsigned int)x) << 32 | brev32((unsigned int)(x >> 32));
}
#endif

// The double functions the headers use (sRGB packing, the CPU's rsqrt): CUDA's builtins, or on the CPU the C
// library's, declared apart in mg::libm (_libm_cpu.h).
#if defined(MG_TARGET_CUDA)
MG_FUNC double libm_sqrt(double x) { return ::sqrt(x); }
MG_FUNC double libm_pow(double x, double y) { return ::pow(x, y); }
MG_FUNC double libm_rint(double x) { return ::rint(x); }
#else
MG_FUNC double libm_sqrt(double x) { return mg::libm::sqrt(x); }
MG_FUNC double libm_pow(double x, double y) { return mg::libm::pow(x, y); }
MG_FUNC double libm_rint(double x) { return mg::libm::rint(x); }
#endif

// keep_float(x): x, computed exactly as written. Under -ffast-math g++ replaces vectorised x / y, sqrtf and
// 1 / sqrtf by reciprocal estimates with one Newton step (about 2 ulp); metal::precise must not, so its
// divide, sqrt and rsqrt pass their result through this barrier, which also keeps such loops scalar.
#if defined(MG_TARGET_CPU) && defined(__FAST_MATH__)
MG_FUNC float keep_float(float x) {
    __asm__("" : "+x"(x));
    return x;
}
#else
MG_FUNC float keep_float(float x) { return x; }
#endif

// ---- float math, precise and fast flavours ---------------------------------------------------------
// The C names (cosf, ...) exist on both targets: glibc's math.h on the CPU (declared with
// __attribute__((simd)) so that g++ -ffast-math vectorises loops through libmvec), NVRTC's builtins on CUDA.
#define MG_FLOAT_UNARY_FUNCTIONS(X)                                                                       \
    X(sin, sinf) X(cos, cosf) X(tan, tanf) X(asin, asinf) X(acos, acosf) X(atan, atanf)                   \
    X(sinh, sinhf) X(cosh, coshf) X(tanh, tanhf) X(asinh, asinhf) X(acosh, acoshf) X(atanh, atanhf)       \
    X(exp, expf) X(exp2, exp2f) X(exp10, exp10f) X(log, logf) X(log2, log2f) X(log10, log10f)             \
    X(fabs, fabsf) X(floor, floorf) X(ceil, ceilf) X(round, roundf) X(rint, rintf) X(trunc, truncf)       \
    X(cbrt, cbrtf)
#define MG_FLOAT_BINARY_FUNCTIONS(X)                                                                      \
    X(atan2, atan2f) X(pow, powf) X(fmod, fmodf) X(fmin, fminf) X(fmax, fmaxf) X(copysign, copysignf)     \
    X(fdim, fdimf) X(remainder, remainderf)

#define MG_DEFINE_UNARY(NAME, CNAME) MG_FUNC float NAME(float x) { return ::CNAME(x); }
#define MG_DEFINE_BINARY(NAME, CNAME) MG_FUNC float NAME(float x, float y) { return ::CNAME(x, y); }

namespace precise {
MG_FLOAT_UNARY_FUNCTIONS(MG_DEFINE_UNARY)
MG_FLOAT_BINARY_FUNCTIONS(MG_DEFINE_BINARY)
MG_FUNC float fma(float a, float b, float c) { return ::fmaf(a, b, c); }
MG_FUNC float ldexp(float x, int k) { return ::ldexpf(x, k); }
MG_FUNC float frexp(float x, int* e) { return ::frexpf(x, e); }
MG_FUNC float modf(float x, float* i) { return ::modff(x, i); }
MG_FUNC float nextafter(float x, float y) { return ::nextafterf(x, y); }
#if defined(MG_TARGET_CUDA)  // the _rn intrinsics stay correctly rounded under --use_fast_math
MG_FUNC float divide(float x, float y) { return __fdiv_rn(x, y); }
MG_FUNC float sqrt(float x) { return __fsqrt_rn(x); }
MG_FUNC float rsqrt(float x) { return __frsqrt_rn(x); }
#else
MG_FUNC float divide(float x, float y) { return keep_float(keep_float(x) / keep_float(y)); }
MG_FUNC float sqrt(float x) { return keep_float(::sqrtf(keep_float(x))); }
// In double, then rounded once: correctly rounded (1 / sqrtf would round twice, 1.1 ulp found by the tests).
MG_FUNC float rsqrt(float x) { return keep_float(float(1.0 / libm_sqrt(double(keep_float(x))))); }
#endif
}  // namespace precise

namespace fast {
using namespace precise;
MG_FUNC float divide(float x, float y) { return x / y; }
MG_FUNC float sqrt(float x) { return ::sqrtf(x); }
#if defined(MG_TARGET_CUDA)
MG_FUNC float rsqrt(float x) { return ::rsqrtf(x); }
#else
MG_FUNC float rsqrt(float x) { return 1.0f / ::sqrtf(x); }
#endif
#if defined(MG_TARGET_CUDA)
// CUDA's hardware approximations where they meet Metal's fast-math bounds (exp, log, log2); everything else
// is the precise version: __sinf/__cosf/__tanf lose all relative accuracy for small and large arguments, and
// __exp10f, __log10f and __powf miss the bounds (found by tests/conformance on an H100).
MG_FUNC float exp(float x) { return __expf(x); }
MG_FUNC float log(float x) { return __logf(x); }
MG_FUNC float log2(float x) { return __log2f(x); }
#endif
}  // namespace fast

#undef MG_DEFINE_UNARY
#undef MG_DEFINE_BINARY

}  // namespace detail
}  // namespace mg
