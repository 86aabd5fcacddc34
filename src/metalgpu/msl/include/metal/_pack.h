// metal/_pack.h -- pack_float_to_{unorm,snorm}{4x8,2x16}, pack_half_to_..., unpack_..._to_{float,half}, the
// sRGB forms pack_{float,half}_to_srgb_unorm4x8, unpack_unorm4x8_srgb_to_{float,half}, and the unequal-field forms
// unorm10a2 (10, 10, 10, 2 bits in a uint) and unorm565 (5, 6, 5 bits in a ushort).
//
// Metal's conversion rules for normalized integers: a float f goes to unorm as rint(clamp(f, 0, 1) * max) and to
// snorm as rint(clamp(f, -1, 1) * max), rounding to nearest even (NaN gives 0); back, unorm c is c / max and
// snorm c is max(c / max, -1) (so both -128 and -127 give -1.0). max is 255 or 65535 (unorm), 127 or 32767
// (snorm); the division is correctly rounded, fast math or not. Component x is in the least significant bits.
#pragma once

namespace mg {
namespace detail {
MG_FUNC unsigned int to_unorm(float f, float scale) {
    const float c = f > 0.0f ? (f < 1.0f ? f : 1.0f) : 0.0f;  // NaN compares false: 0
    return (unsigned int)precise::rint(c * scale);
}
MG_FUNC unsigned int to_snorm(float f, float scale, unsigned int mask) {
    const float c = f > -1.0f ? (f < 1.0f ? f : 1.0f) : (f <= -1.0f ? -1.0f : 0.0f);
    return (unsigned int)(int)precise::rint(c * scale) & mask;
}
MG_FUNC float from_snorm(int c, float scale) {
    const float f = precise::divide(float(c), scale);
    return f < -1.0f ? -1.0f : f;
}
template <int N, int Bits, bool Signed, class V> MG_FUNC unsigned int pack_norm(const V& v) {
    constexpr unsigned int mask = (1u << Bits) - 1u;
    constexpr float scale = Signed ? float(mask >> 1) : float(mask);
    unsigned int r = 0;
    for (int i = 0; i < N; ++i) {
        const float f = float(v[i]);
        r |= (Signed ? to_snorm(f, scale, mask) : to_unorm(f, scale)) << (i * Bits);
    }
    return r;
}
template <class V, int N, int Bits, bool Signed> MG_FUNC V unpack_norm(unsigned int x) {
    constexpr unsigned int mask = (1u << Bits) - 1u;
    constexpr float scale = Signed ? float(mask >> 1) : float(mask);
    V r;
    for (int i = 0; i < N; ++i) {
        const unsigned int c = (x >> (i * Bits)) & mask;
        const int s = int(c << (32 - Bits)) >> (32 - Bits);  // sign-extended
        r[i] = typename metal::vec_traits<V>::type(Signed ? from_snorm(s, scale) : precise::divide(float(c), scale));
    }
    return r;
}

// Unequal fields, x first from the least significant bit: unorm10a2 (10, 10, 10 and 2 bits), unorm565 (5, 6, 5).
template <int B0, int B1, int B2, int B3, class V> MG_FUNC unsigned int pack_fields(const V& v) {
    constexpr int bits[4] = {B0, B1, B2, B3};
    unsigned int r = 0;
    for (int i = 0, shift = 0; i < 4 && bits[i]; shift += bits[i], ++i)
        r |= to_unorm(float(v[i]), float((1u << bits[i]) - 1u)) << shift;
    return r;
}
template <class V, int B0, int B1, int B2, int B3> MG_FUNC V unpack_fields(unsigned int x) {
    constexpr int bits[4] = {B0, B1, B2, B3};
    V r;
    for (int i = 0, shift = 0; i < 4 && bits[i]; shift += bits[i], ++i) {
        const unsigned int mask = (1u << bits[i]) - 1u;
        r[i] = typename metal::vec_traits<V>::type(precise::divide(float((x >> shift) & mask), float(mask)));
    }
    return r;
}

// sRGB (the MSL specification's conversion rules for sRGB pixel data, as the linear <-> sRGB transfer
// function of IEC 61966-2-1): an 8-bit sRGB code c is linear (c / 255) / 12.92 up to c / 255 = 0.04045, else
// ((c / 255 + 0.055) / 1.055) ** 2.4; linear l in [0, 1] (NaN as 0) is sRGB 12.92 l below 0.0031308, else
// 1.055 l ** (1 / 2.4) - 0.055, then stored as unorm8. Alpha is stored as plain unorm8.
// The powers run in double (float's 2.4f alone is off by 2 ulp of the result), so unpack is correctly rounded.
MG_FUNC float srgb_to_linear(unsigned int c) {
    if (c <= 10u) return precise::divide(float(50u * c), 164730.0f);  // 50 c / (50 * 255 * 12.92), one rounding
    return float(mg::detail::libm_pow(double(1000u * c + 14025u) / 269025.0, 2.4));  // (1000 c + 1000 * 255 * 0.055) / ...
}
MG_FUNC unsigned int linear_to_srgb_unorm8(float f) {
    const double l = f > 0.0f ? (f < 1.0f ? double(f) : 1.0) : 0.0;  // NaN compares false: 0
    const double s = l < 0.0031308 ? 12.92 * l : 1.055 * mg::detail::libm_pow(l, 1.0 / 2.4) - 0.055;
    return (unsigned int)mg::detail::libm_rint(255.0 * s);
}
template <class V> MG_FUNC unsigned int pack_srgb(const V& v) {
    unsigned int r = 0;
    for (int i = 0; i < 3; ++i) r |= linear_to_srgb_unorm8(float(v[i])) << (8 * i);
    return r | to_unorm(float(v[3]), 255.0f) << 24;
}
template <class V> MG_FUNC V unpack_srgb(unsigned int x) {
    using E = typename metal::vec_traits<V>::type;
    V r;
    for (int i = 0; i < 3; ++i) r[i] = E(srgb_to_linear((x >> (8 * i)) & 0xffu));
    r[3] = E(precise::divide(float(x >> 24), 255.0f));
    return r;
}
}  // namespace detail
}  // namespace mg

namespace metal {
// Templates, so that a kernel that packs nothing instantiates none of these vector types.
#define MG_PACK(FROM, KIND, SHAPE, N, BITS, SIGNED)                                                        \
    template <class V, mg::detail::enable_if_t<mg::detail::shape<V>::size == N, int> = 0>                 \
    MG_FUNC uint pack_##FROM##_to_##KIND##SHAPE(const V& v) {                                              \
        return mg::detail::pack_norm<N, BITS, SIGNED>(mg::detail::value_of(v));                             \
    }                                                                                                      \
    template <class T = FROM> MG_FUNC vec<T, N> unpack_##KIND##SHAPE##_to_##FROM(uint x) {                 \
        return mg::detail::unpack_norm<vec<T, N>, N, BITS, SIGNED>(x);                                     \
    }
MG_PACK(float, unorm, 4x8, 4, 8, false)
MG_PACK(float, snorm, 4x8, 4, 8, true)
MG_PACK(float, unorm, 2x16, 2, 16, false)
MG_PACK(float, snorm, 2x16, 2, 16, true)
MG_PACK(half, unorm, 4x8, 4, 8, false)
MG_PACK(half, snorm, 4x8, 4, 8, true)
MG_PACK(half, unorm, 2x16, 2, 16, false)
MG_PACK(half, snorm, 2x16, 2, 16, true)
#undef MG_PACK
#define MG_PACK_SRGB(FROM)                                                                                 \
    template <class V, mg::detail::enable_if_t<mg::detail::shape<V>::size == 4, int> = 0>                 \
    MG_FUNC uint pack_##FROM##_to_srgb_unorm4x8(const V& v) {                                              \
        return mg::detail::pack_srgb(mg::detail::value_of(v));                                             \
    }                                                                                                      \
    template <class T = FROM> MG_FUNC vec<T, 4> unpack_unorm4x8_srgb_to_##FROM(uint x) {                   \
        return mg::detail::unpack_srgb<vec<T, 4>>(x);                                                      \
    }
MG_PACK_SRGB(float)
MG_PACK_SRGB(half)
#undef MG_PACK_SRGB
#define MG_PACK_FIELDS(FROM, NAME, R, N, B0, B1, B2, B3)                                                \
    template <class V, mg::detail::enable_if_t<mg::detail::shape<V>::size == N, int> = 0>                 \
    MG_FUNC R pack_##FROM##_to_##NAME(const V& v) {                                                        \
        return R(mg::detail::pack_fields<B0, B1, B2, B3>(mg::detail::value_of(v)));                        \
    }                                                                                                      \
    template <class T = FROM> MG_FUNC vec<T, N> unpack_##NAME##_to_##FROM(R x) {                           \
        return mg::detail::unpack_fields<vec<T, N>, B0, B1, B2, B3>(x);                                    \
    }
MG_PACK_FIELDS(float, unorm10a2, uint, 4, 10, 10, 10, 2)
MG_PACK_FIELDS(half, unorm10a2, uint, 4, 10, 10, 10, 2)
MG_PACK_FIELDS(float, unorm565, ushort, 3, 5, 6, 5, 0)
MG_PACK_FIELDS(half, unorm565, ushort, 3, 5, 6, 5, 0)
#undef MG_PACK_FIELDS
}  // namespace metal
