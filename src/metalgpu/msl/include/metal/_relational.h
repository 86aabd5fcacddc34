// metal/_relational.h -- isnan, isinf, isfinite, isnormal, isordered, isunordered, signbit, all, any, select.
// The floating-point tests read the bits, so they hold under -ffast-math and on every target.
#pragma once

namespace mg {
namespace detail {
// f applied to each component of a float, half or bfloat value (as float), giving bool or a bool vector.
template <class X, class F> MG_FUNC auto predicate(const X& x, F f) {
    const auto v = value_of(x);
    constexpr int n = shape<X>::size;
    if constexpr (n == 0) {
        return bool(f(bit_cast<unsigned int>(float(v))));
    } else {
        metal::vec<bool, n> r;
        for (int i = 0; i < n; ++i) r.d[i] = f(bit_cast<unsigned int>(float(v.d[i])));
        return r;
    }
}
template <class X> using float_predicate_t = enable_if_t<is_floating_point<typename shape<X>::elem>::value,
                                                         bool_result_t<X>>;
}  // namespace detail
}  // namespace mg

namespace metal {

template <class X> MG_FUNC mg::detail::float_predicate_t<X> isnan(const X& x) {
    return mg::detail::predicate(x, [](unsigned int b) { return (b & 0x7fffffffu) > 0x7f800000u; });
}
template <class X> MG_FUNC mg::detail::float_predicate_t<X> isinf(const X& x) {
    return mg::detail::predicate(x, [](unsigned int b) { return (b & 0x7fffffffu) == 0x7f800000u; });
}
template <class X> MG_FUNC mg::detail::float_predicate_t<X> isfinite(const X& x) {
    return mg::detail::predicate(x, [](unsigned int b) { return (b & 0x7fffffffu) < 0x7f800000u; });
}
// isnormal: neither zero, subnormal, infinite nor NaN, judged in the argument's own type (half's smallest normal
// is 2**-14, bits 0x38800000 as a float; float and bfloat share 2**-126).
template <class X> MG_FUNC mg::detail::float_predicate_t<X> isnormal(const X& x) {
    constexpr unsigned int smallest = mg::detail::is_same<typename mg::detail::shape<X>::elem, half>::value
        ? 0x38800000u : 0x00800000u;
    return mg::detail::predicate(x, [](unsigned int b) {
        const unsigned int a = b & 0x7fffffffu;
        return a >= smallest && a < 0x7f800000u;
    });
}
template <class X, class Y> MG_FUNC auto isunordered(const X& x, const Y& y) -> decltype(isnan(x) || isnan(y)) {
    return isnan(x) || isnan(y);
}
template <class X, class Y> MG_FUNC auto isordered(const X& x, const Y& y) -> decltype(!(isnan(x) || isnan(y))) {
    return !(isnan(x) || isnan(y));
}
template <class X> MG_FUNC mg::detail::float_predicate_t<X> signbit(const X& x) {
    return mg::detail::predicate(x, [](unsigned int b) { return (mg::detail::keep_bits(b) >> 31) != 0u; });
}

// all / any: over the components of a bool vector (a scalar bool is itself).
template <class X, mg::detail::enable_if_t<mg::detail::shape<X>::size >= 0, int> = 0>
MG_FUNC bool all(const X& x) {
    const auto v = mg::detail::value_of(x);
    if constexpr (mg::detail::shape<X>::size == 0) {
        return bool(v);
    } else {
        bool r = true;
        for (int i = 0; i < mg::detail::shape<X>::size; ++i) r = r && bool(v.d[i]);
        return r;
    }
}
template <class X, mg::detail::enable_if_t<mg::detail::shape<X>::size >= 0, int> = 0>
MG_FUNC bool any(const X& x) {
    const auto v = mg::detail::value_of(x);
    if constexpr (mg::detail::shape<X>::size == 0) {
        return bool(v);
    } else {
        bool r = false;
        for (int i = 0; i < mg::detail::shape<X>::size; ++i) r = r || bool(v.d[i]);
        return r;
    }
}

// select(a, b, c): b where c is true, else a; c is a bool or a bool vector of the same size.
template <class A, class B, class C, class R = mg::detail::result_t<A, B>,
          mg::detail::enable_if_t<mg::detail::shape<C>::size == 0 ||
                                  mg::detail::shape<C>::size == mg::detail::shape<R>::size, int> = 0>
MG_FUNC R select(const A& a, const B& b, const C& c) {
    const auto cv = mg::detail::value_of(c);
    const auto av = mg::detail::value_of(a);
    const auto bv = mg::detail::value_of(b);
    if constexpr (mg::detail::shape<R>::size == 0) {
        return cv ? R(bv) : R(av);
    } else {
        using E = typename mg::detail::shape<R>::elem;
        R r;
        for (int i = 0; i < mg::detail::shape<R>::size; ++i)
            r.d[i] = mg::detail::lane<bool>(cv, i) ? mg::detail::lane<E>(bv, i) : mg::detail::lane<E>(av, i);
        return r;
    }
}

}  // namespace metal
