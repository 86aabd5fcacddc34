// metal/_common.h -- abs, min, max, clamp, mix, saturate, sign, step, smoothstep, min3, max3, median3, as_type.
// Element-wise over scalars and vectors; a scalar argument next to a vector is broadcast, as in Metal.
// The arithmetic is done in the element type (half in half), as Metal does.
#pragma once

namespace metal {

// as_type<T>(x): the same bits, seen as T (both must have the same size).
template <class T, class X> MG_FUNC constexpr T as_type(const X& x) {
    static_assert(sizeof(T) == sizeof(X), "as_type: the two types differ in size");
    return mg::detail::bit_cast<T>(x);
}

template <class X, class R = mg::detail::result_t<X>> MG_FUNC R abs(const X& x) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E v) -> E {
        if constexpr (mg::detail::is_floating_point<E>::value) return E(::mg::detail::precise::fabs(float(v)));
        // negated in the unsigned type: abs of the most negative value wraps to itself, with no overflow
        else if constexpr (mg::detail::is_signed<E>::value) {
            using U = typename mg::detail::make_unsigned_base<E>::type;
            return v < E(0) ? E(U(U(0) - U(v))) : v;
        }
        else return v;
    }, mg::detail::value_of(x));
}

// Apple declares min and max once per type; a library's own templates of those names (PyTorch's
// c10::metal::min(T, U), visible beside metal::min through two using-directives) must rank as they do there. For
// two scalars of one type the plain functions at the end win over any template (on CUDA, NVRTC's own); otherwise
// a library's template wins over ours, which end in an empty parameter pack: of two function templates that tie,
// that makes ours the less specialised.
template <class X, class Y, class R = mg::detail::result_t<X, Y>, class... None>
MG_FUNC R min(const X& x, const Y& y, None...) {
    static_assert(sizeof...(None) == 0, "min takes two arguments");
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E a, E b) -> E { return b < a ? b : a; }, mg::detail::value_of(x),
                              mg::detail::value_of(y));
}
template <class X, class Y, class R = mg::detail::result_t<X, Y>, class... None>
MG_FUNC R max(const X& x, const Y& y, None...) {
    static_assert(sizeof...(None) == 0, "max takes two arguments");
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E a, E b) -> E { return a < b ? b : a; }, mg::detail::value_of(x),
                              mg::detail::value_of(y));
}
// NVRTC declares its own min and max for the common scalar types at global scope: there they play this part.
// Apple has none for bfloat (PyTorch's FusedOptimizerOps.metal declares `bfloat max(bfloat, bfloat)` beside
// `using metal::max;`), so neither do we.
#if !defined(MG_TARGET_CUDA)
#define MG_SCALAR_MIN_MAX(T)                                              \
    MG_FUNC T min(T x, T y) { return min<T, T, T>(x, y); }                \
    MG_FUNC T max(T x, T y) { return max<T, T, T>(x, y); }
MG_SCALAR_MIN_MAX(char)
MG_SCALAR_MIN_MAX(signed char)
MG_SCALAR_MIN_MAX(uchar)
MG_SCALAR_MIN_MAX(short)
MG_SCALAR_MIN_MAX(ushort)
MG_SCALAR_MIN_MAX(int)
MG_SCALAR_MIN_MAX(uint)
MG_SCALAR_MIN_MAX(long)
MG_SCALAR_MIN_MAX(ulong)
MG_SCALAR_MIN_MAX(half)
MG_SCALAR_MIN_MAX(float)
#undef MG_SCALAR_MIN_MAX
#endif
template <class X, class L, class H, class R = mg::detail::result_t<X, L, H>>
MG_FUNC R clamp(const X& x, const L& lo, const H& hi) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E v, E l, E h) -> E {
        const E m = v < l ? l : v;
        return h < m ? h : m;
    }, mg::detail::value_of(x), mg::detail::value_of(lo), mg::detail::value_of(hi));
}
// mix(x, y, a) = x + (y - x) * a
template <class X, class Y, class A, class R = mg::detail::float_result_t<X, Y, A>>
MG_FUNC R mix(const X& x, const Y& y, const A& a) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E p, E q, E t) -> E { return E(p + (q - p) * t); }, mg::detail::value_of(x),
                              mg::detail::value_of(y), mg::detail::value_of(a));
}
template <class X, class R = mg::detail::float_result_t<X>> MG_FUNC R saturate(const X& x) {
    return clamp(x, 0.0f, 1.0f);
}
// sign: 1 for x > 0, -1 for x < 0, x itself for +-0, 0 for NaN.
template <class X, class R = mg::detail::float_result_t<X>> MG_FUNC R sign(const X& x) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E v) -> E {
        return v > E(0) ? E(1) : v < E(0) ? E(-1) : v == E(0) ? v : E(0);
    }, mg::detail::value_of(x));
}
// step(edge, x): 0 where x < edge, else 1.
template <class Edge, class X, class R = mg::detail::float_result_t<Edge, X>>
MG_FUNC R step(const Edge& edge, const X& x) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E e, E v) -> E { return v < e ? E(0) : E(1); }, mg::detail::value_of(edge),
                              mg::detail::value_of(x));
}
// smoothstep(e0, e1, x): Hermite interpolation of x between e0 and e1, clamped to [0, 1].
template <class E0, class E1, class X, class R = mg::detail::float_result_t<E0, E1, X>>
MG_FUNC R smoothstep(const E0& e0, const E1& e1, const X& x) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E a, E b, E v) -> E {
        E t = E((v - a) / (b - a));
        t = t < E(0) ? E(0) : (E(1) < t ? E(1) : t);
        return E(t * t * (E(3) - E(2) * t));
    }, mg::detail::value_of(e0), mg::detail::value_of(e1), mg::detail::value_of(x));
}

// min3, max3, median3 over any scalar or vector type.
template <class X, class Y, class Z, class R = mg::detail::result_t<X, Y, Z>>
MG_FUNC R min3(const X& x, const Y& y, const Z& z) { return min(min(R(x), R(y)), R(z)); }
template <class X, class Y, class Z, class R = mg::detail::result_t<X, Y, Z>>
MG_FUNC R max3(const X& x, const Y& y, const Z& z) { return max(max(R(x), R(y)), R(z)); }
template <class X, class Y, class Z, class R = mg::detail::result_t<X, Y, Z>>
MG_FUNC R median3(const X& x, const Y& y, const Z& z) { return max(min(R(x), R(y)), min(max(R(x), R(y)), R(z))); }

// These are exact, so the fast:: and precise:: forms Metal declares are the same functions.
#define MG_EXACT_IN_BOTH_FLAVOURS using metal::clamp; using metal::saturate; using metal::min; using metal::max; \
    using metal::min3; using metal::max3; using metal::median3;
namespace precise {
MG_EXACT_IN_BOTH_FLAVOURS
}  // namespace precise
namespace fast {
MG_EXACT_IN_BOTH_FLAVOURS
}  // namespace fast
#undef MG_EXACT_IN_BOTH_FLAVOURS

}  // namespace metal
