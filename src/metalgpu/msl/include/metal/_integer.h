// metal/_integer.h -- Metal's integer functions over integer scalars and vectors: popcount, clz, ctz,
// reverse_bits, rotate, extract_bits, insert_bits, absdiff, addsat, subsat, hadd, rhadd, mulhi, madhi, madsat,
// mul24, mad24 (abs, min, max and clamp are in _common.h). Vector and scalar arguments may be mixed.
// Every result is defined by the element type's width, so char and short never see C++'s promotion to int.
#pragma once

namespace mg {
namespace detail {

template <class E> constexpr int bits_of = int(8 * sizeof(E));
template <class E> using unsigned_of = typename make_unsigned_base<E>::type;
// A type that holds the exact sum or product of two Es of 8 to 32 bits.
template <class E> using wide_of = conditional_t<is_signed<E>::value, long long, unsigned long long>;

template <class E> MG_FUNC E popcount_of(E v) {
    using U = unsigned_of<E>;
    return E(sizeof(E) == 8 ? popcount64((unsigned long long)(U)v) : popcount32((unsigned int)(U)v));
}
template <class E> MG_FUNC E clz_of(E v) {
    using U = unsigned_of<E>;
    return E(sizeof(E) == 8 ? clz64((unsigned long long)(U)v) : clz32((unsigned int)(U)v) - (32 - bits_of<E>));
}
template <class E> MG_FUNC E ctz_of(E v) {
    using U = unsigned_of<E>;
    const int n = sizeof(E) == 8 ? ctz64((unsigned long long)(U)v) : ctz32((unsigned int)(U)v);
    return E(n > bits_of<E> ? bits_of<E> : n);
}
template <class E> MG_FUNC E reverse_bits_of(E v) {
    using U = unsigned_of<E>;
    if constexpr (sizeof(E) == 8) return E(brev64((unsigned long long)(U)v));
    else return E(U(brev32((unsigned int)(U)v) >> (32 - bits_of<E>)));
}
// rotate(v, n): v rotated left by n modulo the width (a negative n rotates right).
template <class E> MG_FUNC E rotate_of(E v, E n) {
    using U = unsigned_of<E>;
    const int s = int((unsigned long long)n & (unsigned long long)(bits_of<E> - 1));
    const U u = U(v);
    return s == 0 ? v : E(U(U(u << s) | U(u >> (bits_of<E> - s))));
}
// extract_bits: `bits` bits from `offset`, zero-extended (unsigned) or sign-extended (signed); 0 when bits is 0.
template <class E> MG_FUNC E extract_bits_of(E v, unsigned int offset, unsigned int bits) {
    using U = unsigned_of<E>;
    if (bits == 0) return E(0);
    const unsigned int up = unsigned(bits_of<E>) - offset - bits;  // bits above the field
    const unsigned int down = unsigned(bits_of<E>) - bits;
    const U left = U(U(v) << up);
    if constexpr (is_signed<E>::value) return E(E(left) >> down);  // arithmetic shift
    else return E(left >> down);
}
template <class E> MG_FUNC E insert_bits_of(E base, E insert, unsigned int offset, unsigned int bits) {
    using U = unsigned_of<E>;
    if (bits == 0) return base;
    const U ones = bits >= unsigned(bits_of<E>) ? U(~U(0)) : U((U(1) << bits) - U(1));
    const U mask = U(ones << offset);
    return E(U((U(base) & U(~mask)) | (U(U(insert) << offset) & mask)));
}
// |x - y| without overflow: the difference of the larger and the smaller, in the unsigned type, seen as E.
template <class E> MG_FUNC E absdiff_of(E x, E y) {
    using U = unsigned_of<E>;
    return x < y ? E(U(U(y) - U(x))) : E(U(U(x) - U(y)));
}
template <class E> MG_FUNC E addsat_of(E x, E y) {
    using U = unsigned_of<E>;
    const E hi = metal::numeric_limits<E>::max(), lo = metal::numeric_limits<E>::min();
    if constexpr (!is_signed<E>::value) return U(x + y) < x ? hi : E(x + y);
    else if (y > 0) return x > E(hi - y) ? hi : E(x + y);
    else return x < E(lo - y) ? lo : E(x + y);
}
template <class E> MG_FUNC E subsat_of(E x, E y) {
    const E hi = metal::numeric_limits<E>::max(), lo = metal::numeric_limits<E>::min();
    if constexpr (!is_signed<E>::value) return x < y ? E(0) : E(x - y);
    else if (y > 0) return x < E(lo + y) ? lo : E(x - y);
    else return x > E(hi + y) ? hi : E(x - y);
}
// hadd: (x + y) >> 1 and rhadd: (x + y + 1) >> 1, computed without overflow.
template <class E> MG_FUNC E hadd_of(E x, E y) { return E((x >> 1) + (y >> 1) + (x & y & E(1))); }
template <class E> MG_FUNC E rhadd_of(E x, E y) { return E((x >> 1) + (y >> 1) + ((x | y) & E(1))); }
// mulhi: the high half of the full product.
template <class E> MG_FUNC E mulhi_of(E x, E y) {
    if constexpr (sizeof(E) == 8) {
        using W = conditional_t<is_signed<E>::value, long long, unsigned long long>;
        return E(mulhi64(W(x), W(y)));
    } else if constexpr (sizeof(E) == 4) {
        using W = conditional_t<is_signed<E>::value, int, unsigned int>;
        return E(mulhi32(W(x), W(y)));
    } else {
        return E(wide_of<E>(x) * wide_of<E>(y) >> bits_of<E>);
    }
}
// madsat: x * y + z, saturated to E's range.
template <class E> MG_FUNC E madsat_of(E x, E y, E z) {
    const E hi = metal::numeric_limits<E>::max(), lo = metal::numeric_limits<E>::min();
    if constexpr (sizeof(E) < 8) {
        const wide_of<E> r = wide_of<E>(x) * wide_of<E>(y) + wide_of<E>(z);
        return r > wide_of<E>(hi) ? hi : r < wide_of<E>(lo) ? lo : E(r);
    } else {
        // x * y + z exactly, as a 128-bit (high, low) pair, then saturated: it fits when high is the sign
        // extension of low (signed) or zero (unsigned).
        using U = unsigned long long;
        const U low_product = U(x) * U(y);
        const U low = low_product + U(z);
        const U carry = low < low_product ? 1u : 0u;
        const U high = U(mulhi_of(x, y)) + (is_signed<E>::value && z < E(0) ? ~U(0) : U(0)) + carry;
        const bool negative = is_signed<E>::value && (high >> 63) != 0;
        const U extension = is_signed<E>::value && (low >> 63) != 0 ? ~U(0) : U(0);
        if (high != extension) return negative ? lo : hi;
        return E(low);
    }
}
// mul24: the product of the low 24 bits of x and y (sign-extended for int), modulo 2**32.
template <class E> MG_FUNC E low24(E v) {
    if constexpr (is_signed<E>::value) return E(int((unsigned int)v << 8) >> 8);
    else return E(v & 0xffffffu);
}
#if defined(MG_TARGET_CUDA)
MG_FUNC int mul24_of(int x, int y) { return __mul24(x, y); }
MG_FUNC unsigned int mul24_of(unsigned int x, unsigned int y) { return __umul24(x, y); }
#else
template <class E> MG_FUNC E mul24_of(E x, E y) {
    return E((unsigned int)((long long)low24(x) * (long long)low24(y)));
}
#endif
template <class X> using int32_result_t =
    enable_if_t<sizeof(typename shape<result_t<X>>::elem) == 4, integer_result_t<X>>;

}  // namespace detail
}  // namespace mg

// Each function: a template over scalars and vectors, applying the per-element version above.
#define MG_INTEGER_1(NAME)                                                                              \
    template <class X, class R = mg::detail::integer_result_t<X>> MG_FUNC R NAME(const X& x) {          \
        using E = typename mg::detail::shape<R>::elem;                                                  \
        return mg::detail::map<R>([](E v) { return mg::detail::NAME##_of(v); }, mg::detail::value_of(x)); \
    }
#define MG_INTEGER_2(NAME)                                                                              \
    template <class X, class Y, class R = mg::detail::integer_result_t<X, Y>>                           \
    MG_FUNC R NAME(const X& x, const Y& y) {                                                            \
        using E = typename mg::detail::shape<R>::elem;                                                  \
        return mg::detail::map<R>([](E a, E b) { return mg::detail::NAME##_of(a, b); },                  \
                                  mg::detail::value_of(x), mg::detail::value_of(y));                     \
    }

namespace metal {
MG_INTEGER_1(popcount)
MG_INTEGER_1(clz)
MG_INTEGER_1(ctz)
MG_INTEGER_1(reverse_bits)
MG_INTEGER_2(rotate)
MG_INTEGER_2(absdiff)
MG_INTEGER_2(addsat)
MG_INTEGER_2(subsat)
MG_INTEGER_2(hadd)
MG_INTEGER_2(rhadd)
MG_INTEGER_2(mulhi)

template <class X, class Y, class Z, class R = mg::detail::integer_result_t<X, Y, Z>>
MG_FUNC R madhi(const X& x, const Y& y, const Z& z) { return mulhi(R(x), R(y)) + R(z); }
template <class X, class Y, class Z, class R = mg::detail::integer_result_t<X, Y, Z>>
MG_FUNC R madsat(const X& x, const Y& y, const Z& z) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E a, E b, E c) { return mg::detail::madsat_of(a, b, c); },
                              mg::detail::value_of(x), mg::detail::value_of(y), mg::detail::value_of(z));
}
// mul24, mad24: int and uint only (Metal leaves the result undefined when x or y needs more than 24 bits).
template <class X, class Y, class R = mg::detail::int32_result_t<X>>
MG_FUNC R mul24(const X& x, const Y& y) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E a, E b) { return E(mg::detail::mul24_of(a, b)); }, mg::detail::value_of(x),
                              mg::detail::value_of(y));
}
template <class X, class Y, class Z, class R = mg::detail::int32_result_t<X>>
MG_FUNC R mad24(const X& x, const Y& y, const Z& z) { return mul24(x, y) + R(z); }

// extract_bits(x, offset, bits), insert_bits(base, insert, offset, bits): offset and bits are uint, the same
// for every component; the result is undefined when offset + bits exceeds the width, as in Metal.
template <class X, class R = mg::detail::integer_result_t<X>>
MG_FUNC R extract_bits(const X& x, uint offset, uint bits) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([offset, bits](E v) { return mg::detail::extract_bits_of(v, offset, bits); },
                              mg::detail::value_of(x));
}
template <class X, class Y, class R = mg::detail::integer_result_t<X, Y>>
MG_FUNC R insert_bits(const X& base, const Y& insert, uint offset, uint bits) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>(
        [offset, bits](E b, E i) { return mg::detail::insert_bits_of(b, i, offset, bits); },
        mg::detail::value_of(base), mg::detail::value_of(insert));
}
}  // namespace metal

#undef MG_INTEGER_1
#undef MG_INTEGER_2
