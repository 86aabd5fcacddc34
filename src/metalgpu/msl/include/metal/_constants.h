// metal/_constants.h -- Metal's math and limit constants (M_PI_F, FLT_MAX, HALF_EPSILON, INT_MAX, ...), as the
// macros Metal's headers define. Where the host C library defines the same name (the CPU target's <cfloat>,
// <climits>), its value is the same and is kept.
#pragma once

#define M_E_F 2.71828182845904523536f
#define M_LOG2E_F 1.44269504088896340736f
#define M_LOG10E_F 0.434294481903251827651f
#define M_LN2_F 0.693147180559945309417f
#define M_LN10_F 2.30258509299404568402f
#define M_PI_F 3.14159265358979323846f
#define M_PI_2_F 1.57079632679489661923f
#define M_PI_4_F 0.785398163397448309616f
#define M_1_PI_F 0.318309886183790671538f
#define M_2_PI_F 0.636619772367581343076f
#define M_2_SQRTPI_F 1.12837916709551257390f
#define M_SQRT2_F 1.41421356237309504880f
#define M_SQRT1_2_F 0.707106781186547524401f

// The same in half: the float value rounded once.
#define M_E_H ::metal::half(M_E_F)
#define M_LOG2E_H ::metal::half(M_LOG2E_F)
#define M_LOG10E_H ::metal::half(M_LOG10E_F)
#define M_LN2_H ::metal::half(M_LN2_F)
#define M_LN10_H ::metal::half(M_LN10_F)
#define M_PI_H ::metal::half(M_PI_F)
#define M_PI_2_H ::metal::half(M_PI_2_F)
#define M_PI_4_H ::metal::half(M_PI_4_F)
#define M_1_PI_H ::metal::half(M_1_PI_F)
#define M_2_PI_H ::metal::half(M_2_PI_F)
#define M_2_SQRTPI_H ::metal::half(M_2_SQRTPI_F)
#define M_SQRT2_H ::metal::half(M_SQRT2_F)
#define M_SQRT1_2_H ::metal::half(M_SQRT1_2_F)

#ifndef FLT_MAX
#  define FLT_DIG 6
#  define FLT_MANT_DIG 24
#  define FLT_RADIX 2
#  define FLT_MAX_10_EXP 38
#  define FLT_MAX_EXP 128
#  define FLT_MIN_10_EXP (-37)
#  define FLT_MIN_EXP (-125)
#  define FLT_MAX 0x1.fffffep+127f
#  define FLT_MIN 0x1p-126f
#  define FLT_EPSILON 0x1p-23f
#endif
#define HALF_DIG 2
#define HALF_MANT_DIG 11
#define HALF_MAX_10_EXP 4
#define HALF_MAX_EXP 16
#define HALF_MIN_10_EXP (-4)
#define HALF_MIN_EXP (-13)
#define HALF_RADIX 2
#define HALF_MAX ::metal::half(65504.0f)
#define HALF_MIN ::metal::half(0x1p-14f)
#define HALF_EPSILON ::metal::half(0x1p-10f)

// The largest finite values and the infinities, as in Metal's metal_math.
#ifndef MAXFLOAT
#  define MAXFLOAT 0x1.fffffep+127f
#endif
#define MAXHALF ::metal::half(65504.0f)
#define HUGE_VALH ::metal::half(INFINITY)

#ifndef INT_MAX
#  define CHAR_BIT 8
#  define SCHAR_MAX 127
#  define SCHAR_MIN (-128)
#  define UCHAR_MAX 255
#  define CHAR_MAX SCHAR_MAX
#  define CHAR_MIN SCHAR_MIN
#  define SHRT_MAX 32767
#  define SHRT_MIN (-32767 - 1)
#  define USHRT_MAX 65535
#  define INT_MAX 2147483647
#  define INT_MIN (-2147483647 - 1)
#  define UINT_MAX 4294967295u
#  define LONG_MAX 9223372036854775807l
#  define LONG_MIN (-9223372036854775807l - 1)
#  define ULONG_MAX 18446744073709551615ul
#endif
