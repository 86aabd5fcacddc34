// metal/_geometric.h -- dot, length, distance, normalize, cross, reflect, faceforward, refract, over float, half and bfloat vectors
// (swizzles and packed vectors accepted). Computed in the element type, as Metal does.
#pragma once

namespace mg {
namespace detail {
template <class X, class Y> using dot_t =
    enable_if_t<(shape<X>::size > 0) && shape<X>::size == shape<Y>::size &&
                    is_floating_point<typename shape<X>::elem>::value &&
                    is_same<typename shape<X>::elem, typename shape<Y>::elem>::value,
                typename shape<X>::elem>;
}  // namespace detail
}  // namespace mg

namespace metal {

template <class X, class Y> MG_FUNC mg::detail::dot_t<X, Y> dot(const X& x, const Y& y) {
    const auto a = mg::detail::value_of(x);
    const auto b = mg::detail::value_of(y);
    auto s = a.d[0] * b.d[0];
    for (int i = 1; i < mg::detail::shape<X>::size; ++i) s = s + a.d[i] * b.d[i];
    return mg::detail::dot_t<X, Y>(s);
}
template <class X> MG_FUNC mg::detail::dot_t<X, X> length_squared(const X& x) { return dot(x, x); }
template <class X> MG_FUNC mg::detail::dot_t<X, X> length(const X& x) { return sqrt(dot(x, x)); }
template <class X, class Y> MG_FUNC mg::detail::dot_t<X, Y> distance_squared(const X& x, const Y& y) {
    const auto d = mg::detail::value_of(x) - mg::detail::value_of(y);
    return dot(d, d);
}
template <class X, class Y> MG_FUNC mg::detail::dot_t<X, Y> distance(const X& x, const Y& y) {
    return sqrt(distance_squared(x, y));
}
template <class X, class R = mg::detail::result_t<X>, mg::detail::enable_if_t<(sizeof(mg::detail::dot_t<X, X>) > 0), int> = 0>
MG_FUNC R normalize(const X& x) {
    const R v = mg::detail::value_of(x);
    return v * rsqrt(dot(v, v));
}
template <class X, class Y, class R = mg::detail::result_t<X>,
          mg::detail::enable_if_t<mg::detail::shape<X>::size == 3 && (sizeof(mg::detail::dot_t<X, Y>) > 0), int> = 0>
MG_FUNC R cross(const X& x, const Y& y) {
    const R a = mg::detail::value_of(x);
    const R b = mg::detail::value_of(y);
    return R(a.d[1] * b.d[2] - a.d[2] * b.d[1], a.d[2] * b.d[0] - a.d[0] * b.d[2], a.d[0] * b.d[1] - a.d[1] * b.d[0]);
}
// reflect(i, n) = i - 2 dot(n, i) n, for a normalized n.
template <class I, class Nn, class R = mg::detail::result_t<I>, mg::detail::enable_if_t<(sizeof(mg::detail::dot_t<I, Nn>) > 0), int> = 0>
MG_FUNC R reflect(const I& i, const Nn& n) {
    const R iv = mg::detail::value_of(i);
    const R nv = mg::detail::value_of(n);
    return iv - nv * (dot(nv, iv) * 2);
}

// faceforward(n, i, nref): n if dot(nref, i) < 0, else -n.
template <class Nn, class I, class Ref, class R = mg::detail::result_t<Nn>,
          mg::detail::enable_if_t<(sizeof(mg::detail::dot_t<I, Ref>) > 0), int> = 0>
MG_FUNC R faceforward(const Nn& n, const I& i, const Ref& nref) {
    const R nv = mg::detail::value_of(n);
    return dot(nref, i) < 0 ? nv : -nv;
}
// refract(i, n, eta): the refraction of i through a surface of normal n (both normalized) with index ratio eta;
// zero on total internal reflection.
template <class I, class Nn, class Eta, class R = mg::detail::result_t<I>,
          mg::detail::enable_if_t<(sizeof(mg::detail::dot_t<I, Nn>) > 0), int> = 0>
MG_FUNC R refract(const I& i, const Nn& n, const Eta& eta) {
    using E = typename mg::detail::shape<R>::elem;
    const R iv = mg::detail::value_of(i);
    const R nv = mg::detail::value_of(n);
    const E e = E(eta);
    const E d = dot(nv, iv);
    const E k = E(1) - e * e * (E(1) - d * d);
    if (k < E(0)) return R(E(0));
    return iv * e - nv * E(e * d + E(sqrt(k)));
}

}  // namespace metal
