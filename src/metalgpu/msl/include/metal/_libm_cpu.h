// metal/_libm_cpu.h -- CPU only: the C library's math functions that _target.h calls, declared here rather than
// through <math.h>. math.h also declares the double versions at global scope (log1p(double), erf(double), ...);
// Metal has none, and kernels define their own global float versions (MLX's log1p(float), erf(float)), which a
// half or an integer argument would then find ambiguous. With glibc, each float declaration carries the attribute
// its math.h gives it (bits/math-vector.h: a SIMD variant in libmvec), so that g++ -ffast-math still vectorises
// loops of metal::cos and friends. The few double functions are declared in mg::libm, out of the kernel's way.
#pragma once

#if defined(__has_include)
#  if __has_include(<bits/math-vector.h>) && __has_include(<features.h>)
#    include <features.h>
#    define _MATH_H 1  // math-vector.h accepts inclusion from math.h alone, which it recognises by this guard
#    include <bits/math-vector.h>
#    undef _MATH_H
#  endif
#endif
// Without glibc's declarations (another C library, or a glibc before 2.22, or before 2.35 for the second group),
// no SIMD variants.
#if !defined(__DECL_SIMD_cosf)
#  define __DECL_SIMD_sinf
#  define __DECL_SIMD_cosf
#  define __DECL_SIMD_expf
#  define __DECL_SIMD_logf
#  define __DECL_SIMD_powf
#endif
#if !defined(__DECL_SIMD_acosf)
#  define __DECL_SIMD_tanf
#  define __DECL_SIMD_asinf
#  define __DECL_SIMD_acosf
#  define __DECL_SIMD_atanf
#  define __DECL_SIMD_sinhf
#  define __DECL_SIMD_coshf
#  define __DECL_SIMD_tanhf
#  define __DECL_SIMD_asinhf
#  define __DECL_SIMD_acoshf
#  define __DECL_SIMD_atanhf
#  define __DECL_SIMD_exp2f
#  define __DECL_SIMD_exp10f
#  define __DECL_SIMD_log2f
#  define __DECL_SIMD_log10f
#  define __DECL_SIMD_cbrtf
#  define __DECL_SIMD_atan2f
#endif

#define MG_LIBM_1(NAME) __DECL_SIMD_##NAME float NAME(float) noexcept;
#define MG_LIBM_2(NAME) __DECL_SIMD_##NAME float NAME(float, float) noexcept;
extern "C" {
MG_LIBM_1(sinf) MG_LIBM_1(cosf) MG_LIBM_1(tanf) MG_LIBM_1(asinf) MG_LIBM_1(acosf) MG_LIBM_1(atanf)
MG_LIBM_1(sinhf) MG_LIBM_1(coshf) MG_LIBM_1(tanhf) MG_LIBM_1(asinhf) MG_LIBM_1(acoshf) MG_LIBM_1(atanhf)
MG_LIBM_1(expf) MG_LIBM_1(exp2f) MG_LIBM_1(exp10f) MG_LIBM_1(logf) MG_LIBM_1(log2f) MG_LIBM_1(log10f)
MG_LIBM_1(cbrtf) MG_LIBM_2(atan2f) MG_LIBM_2(powf)
float fabsf(float) noexcept;
float floorf(float) noexcept;
float ceilf(float) noexcept;
float roundf(float) noexcept;
float rintf(float) noexcept;
float truncf(float) noexcept;
float sqrtf(float) noexcept;
float fmodf(float, float) noexcept;
float fminf(float, float) noexcept;
float fmaxf(float, float) noexcept;
float copysignf(float, float) noexcept;
float fdimf(float, float) noexcept;
float remainderf(float, float) noexcept;
float nextafterf(float, float) noexcept;
float fmaf(float, float, float) noexcept;
float ldexpf(float, int) noexcept;
float frexpf(float, int*) noexcept;
float modff(float, float*) noexcept;
}
#undef MG_LIBM_1
#undef MG_LIBM_2

namespace mg {
namespace libm {
extern "C" double sqrt(double) noexcept;
extern "C" double pow(double, double) noexcept;
extern "C" double rint(double) noexcept;
}  // namespace libm
}  // namespace mg

// math.h's constants, which Metal has too.
#if !defined(INFINITY)
#  define INFINITY (__builtin_inff())
#endif
#if !defined(HUGE_VALF)
#  define HUGE_VALF (__builtin_huge_valf())
#endif
#if !defined(NAN)
#  define NAN (__builtin_nanf(""))
#endif
