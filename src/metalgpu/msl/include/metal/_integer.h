// metal/_integer.h -- popcount, clz, ctz over integer scalars and vectors (more of the family comes later).
#pragma once

namespace mg {
namespace detail {
template <class E> MG_FUNC E popcount_of(E v) {
    using U = typename make_unsigned_base<E>::type;
    return E(sizeof(E) == 8 ? popcount64((unsigned long long)(U)v) : popcount32((unsigned int)(U)v));
}
template <class E> MG_FUNC E clz_of(E v) {
    using U = typename make_unsigned_base<E>::type;
    return E(sizeof(E) == 8 ? clz64((unsigned long long)(U)v) : clz32((unsigned int)(U)v) - int(32 - 8 * sizeof(E)));
}
template <class E> MG_FUNC E ctz_of(E v) {
    using U = typename make_unsigned_base<E>::type;
    const int bits = int(8 * sizeof(E));
    const int n = sizeof(E) == 8 ? ctz64((unsigned long long)(U)v) : ctz32((unsigned int)(U)v);
    return E(n > bits ? bits : n);
}
}  // namespace detail
}  // namespace mg

namespace metal {
template <class X, class R = mg::detail::integer_result_t<X>> MG_FUNC R popcount(const X& x) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E v) { return mg::detail::popcount_of(v); }, mg::detail::value_of(x));
}
template <class X, class R = mg::detail::integer_result_t<X>> MG_FUNC R clz(const X& x) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E v) { return mg::detail::clz_of(v); }, mg::detail::value_of(x));
}
template <class X, class R = mg::detail::integer_result_t<X>> MG_FUNC R ctz(const X& x) {
    using E = typename mg::detail::shape<R>::elem;
    return mg::detail::map<R>([](E v) { return mg::detail::ctz_of(v); }, mg::detail::value_of(x));
}
}  // namespace metal
