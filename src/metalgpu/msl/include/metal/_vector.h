// metal/_vector.h -- vec<T, N>, packed_vec<T, N>, swizzles, vector operators and the Metal vector names.
//
// Layout: a vector's storage is an anonymous union of the element array `d`, the named components
// (x y z w and r g b a) and one swizzle proxy per swizzle name. Every proxy holds the same element array and
// only reinterprets it, so a proxy costs no space. Reading a proxy converts it to a vector value; assigning to
// one writes through to the selected components.
//
// Copies: a proxy must not be assigned by copying its whole array (v.xy = w.xy would copy all of w), so its
// copy assignment is deleted (declared for `const volatile`, which no ordinary argument prefers) and assignment
// goes through a template. The union's copy assignment is then deleted, and vec provides its own. So vec is
// trivially copy-constructible and trivially destructible (fine for kernel arguments, memcpy and bit casts) but
// not trivially copyable in the strict sense. Packed vectors have the same swizzle members (the same proxy types
// as vec<T, N>'s, since a proxy only names the element array it reads) and the same copy rules.
// A two-component swizzle's components are proxies too (v.zw.x), of one small type per element index; larger
// swizzles have none (v.xyz.x): members on all of them doubled the compile time of a kernel using many vectors.
#pragma once
#include "_swizzles.h"

namespace mg {
namespace detail {

template <class T, int N> struct carray { T v[N]; };

template <int... I> MG_FUNC constexpr bool distinct() {
    const int idx[] = {I...};
    for (int i = 0; i < int(sizeof...(I)); ++i)
        for (int j = i + 1; j < int(sizeof...(I)); ++j)
            if (idx[i] == idx[j]) return false;
    return true;
}

// ---- building a vector from a list of scalars and vectors ------------------------------------------------
template <class T, class X, enable_if_t<shape<X>::size == 0, int> = 0>
MG_FUNC constexpr void append(T* out, int& k, const X& x) { out[k++] = static_cast<T>(x); }
template <class T, class X, enable_if_t<(shape<X>::size > 0), int> = 0>
MG_FUNC constexpr void append(T* out, int& k, const X& x) {
    for (int i = 0; i < shape<X>::size; ++i) out[k++] = static_cast<T>(component(x, i));
}
template <class T, int N, class... A> MG_FUNC constexpr carray<T, N> flatten(const A&... a) {
    carray<T, N> r{};
    int k = 0;
    (append<T>(r.v, k, a), ...);
    if (k == 1)  // a single scalar: broadcast
        for (int i = 1; i < N; ++i) r.v[i] = r.v[0];
    return r;
}

// What a constructor argument contributes: a scalar of any type gives one component, a vector of the
// same element type gives all of its components, anything else is not allowed.
template <class T, class A, int S = shape<A>::size> struct ctor_part {
    static constexpr bool ok = is_same<typename shape<A>::elem, T>::value;
    static constexpr int count = S;
};
template <class T, class A> struct ctor_part<T, A, 0> {
    static constexpr bool ok = true;
    static constexpr int count = 1;
};
template <class T, class A> struct ctor_part<T, A, -1> {
    static constexpr bool ok = false;
    static constexpr int count = 0;
};
// One scalar broadcasts; two or more arguments must supply exactly N components.
template <class T, int N, class... A> struct ctor_args {
    static constexpr bool value = sizeof...(A) == 1
        ? ((shape<A>::size == 0) && ...)
        : ((ctor_part<T, A>::ok && ...) && (ctor_part<T, A>::count + ... + 0) == N);
};

// ---- swizzle proxy ----------------------------------------------------------------------------------------
// V: the vector type it reads as (vec<T, K>, an associated class, so V's operators are found for proxies);
// N: the size of the vector it lives in; I: the selected components.
// What a swizzle of type V accepts on the right of `=`. Swizzles of the same type are answered without
// is_convertible: the compiler asks that for every proxy of a vector when it checks the vector's copies,
// and the full test would cost seconds of compile time over all vector types.
template <class U, class V, class = void> struct assignable : is_convertible<const U&, V> {};
template <class V, int N, int... I> struct assignable<swizzle<V, N, I...>, V> : true_type {};

// swizzle_component<E, N, J>: one component of a swizzle (v.zw.x is component J = 3 of v's N elements).
template <class E, int N, int J> struct swizzle_component {
    E d[N];

    MG_FUNC operator E() const { return d[J]; }
    // float(h.xy.x) for a half h: on CUDA, half is a class and the two conversions would not chain
    template <class U, enable_if_t<is_convertible<const E&, U>::value, int> = 0>
    MG_FUNC explicit operator U() const { return U(d[J]); }
    swizzle_component& operator=(const volatile swizzle_component&) = delete;
    template <class U, enable_if_t<is_convertible<const U&, E>::value, int> = 0>
    MG_FUNC swizzle_component& operator=(const U& u) {
        d[J] = E(u);
        return *this;
    }
};

// The swizzle proxy, one partial specialization per size; the two-component one has its components as
// swizzle_component members. Reading and assignment are the same for every size: two functions and one macro.
template <class V, int... I, class E> MG_FUNC V swizzle_read(const E* d) { return V(d[I]...); }
template <int... I, class E, class V> MG_FUNC void swizzle_write(E* d, const V& v) {
    static_assert(distinct<I...>(), "cannot assign to a swizzle that repeats a component");
    int k = 0;
    ((d[I] = v.d[k++]), ...);
}
#define MG_SWIZZLE_ACCESS(...)                                                                   \
    template <int J> using part = swizzle_component<typename shape<V>::elem, N, J>;              \
    MG_FUNC operator V() const { return swizzle_read<V, __VA_ARGS__>(d); }                       \
    swizzle& operator=(const volatile swizzle&) = delete;                                        \
    template <class U, enable_if_t<assignable<U, V>::value, int> = 0>                            \
    MG_FUNC swizzle& operator=(const U& u) {                                                     \
        swizzle_write<__VA_ARGS__>(d, V(u));                                                     \
        return *this;                                                                            \
    }
template <class V, int N, int... I> struct swizzle;
template <class V, int N, int I0, int I1> struct swizzle<V, N, I0, I1> {
    MG_SWIZZLE_ACCESS(I0, I1)
    union { typename shape<V>::elem d[N]; part<I0> x, r; part<I1> y, g; };
};
template <class V, int N, int I0, int I1, int I2> struct swizzle<V, N, I0, I1, I2> {
    MG_SWIZZLE_ACCESS(I0, I1, I2)
    union { typename shape<V>::elem d[N]; };
};
template <class V, int N, int I0, int I1, int I2, int I3> struct swizzle<V, N, I0, I1, I2, I3> {
    MG_SWIZZLE_ACCESS(I0, I1, I2, I3)
    union { typename shape<V>::elem d[N]; };
};
#undef MG_SWIZZLE_ACCESS
// Kept out of the proxy class: every vector instantiates hundreds of proxies, and each member costs compile time.
#define MG_SWIZZLE_COMPOUND(OP)                                                                  \
    template <class V, int N, int... I, class U>                                                 \
    MG_FUNC swizzle<V, N, I...>& operator OP##=(swizzle<V, N, I...>& s, const U& u) {             \
        return s = V(s) OP u;                                                                    \
    }
MG_SWIZZLE_COMPOUND(+) MG_SWIZZLE_COMPOUND(-) MG_SWIZZLE_COMPOUND(*) MG_SWIZZLE_COMPOUND(/)
MG_SWIZZLE_COMPOUND(%) MG_SWIZZLE_COMPOUND(&) MG_SWIZZLE_COMPOUND(|) MG_SWIZZLE_COMPOUND(^)
MG_SWIZZLE_COMPOUND(<<) MG_SWIZZLE_COMPOUND(>>)
#undef MG_SWIZZLE_COMPOUND
#define MG_COMPONENT_COMPOUND(OP)                                                                \
    template <class E, int N, int J, class U>                                                    \
    MG_FUNC swizzle_component<E, N, J>& operator OP##=(swizzle_component<E, N, J>& c, const U& u) { \
        return c = E(E(c) OP u);                                                                 \
    }
MG_COMPONENT_COMPOUND(+) MG_COMPONENT_COMPOUND(-) MG_COMPONENT_COMPOUND(*) MG_COMPONENT_COMPOUND(/)
MG_COMPONENT_COMPOUND(%) MG_COMPONENT_COMPOUND(&) MG_COMPONENT_COMPOUND(|) MG_COMPONENT_COMPOUND(^)
MG_COMPONENT_COMPOUND(<<) MG_COMPONENT_COMPOUND(>>)
#undef MG_COMPONENT_COMPOUND

// Component i of a vector, packed vector or swizzle.
template <class X> MG_FUNC constexpr typename shape<X>::elem component(const X& x, int i) { return x.d[i]; }
template <class V, int N, int... I>
MG_FUNC constexpr typename shape<V>::elem component(const swizzle<V, N, I...>& s, int i) {
    const int idx[] = {I...};
    return s.d[idx[i]];
}

// ---- storage: the union, per size --------------------------------------------------------------------------
#define MG_STORAGE_CTORS(NAME, N)                                    \
    NAME() = default;                                                \
    MG_FUNC constexpr explicit NAME(const carray<T, N>& c) : d{} {   \
        for (int i = 0; i < N; ++i) d[i] = c.v[i];                   \
    }

// One storage template serves vec (aligned as N elements, 3 counted as 4) and packed_vec (aligned as one
// element): the swizzle member lists are parsed once, and both use the same proxy types.
template <class T, int N, int Align> struct storage;
template <class T, int Align> struct alignas(Align) storage<T, 2, Align> {
    template <int... I> using sw = swizzle<metal::vec<T, int(sizeof...(I))>, 2, I...>;
    union { T d[2]; struct { T x, y; }; struct { T r, g; }; MG_SWIZZLES_2 };
    MG_STORAGE_CTORS(storage, 2)
};
template <class T, int Align> struct alignas(Align) storage<T, 3, Align> {
    template <int... I> using sw = swizzle<metal::vec<T, int(sizeof...(I))>, 3, I...>;
    union { T d[3]; struct { T x, y, z; }; struct { T r, g, b; }; MG_SWIZZLES_3 };
    MG_STORAGE_CTORS(storage, 3)
};
template <class T, int Align> struct alignas(Align) storage<T, 4, Align> {
    template <int... I> using sw = swizzle<metal::vec<T, int(sizeof...(I))>, 4, I...>;
    union { T d[4]; struct { T x, y, z, w; }; struct { T r, g, b, a; }; MG_SWIZZLES_4 };
    MG_STORAGE_CTORS(storage, 4)
};
template <class T, int N> using vec_storage = storage<T, N, int((N == 3 ? 4 : N) * sizeof(T))>;
template <class T, int N> using packed_storage = storage<T, N, int(alignof(T))>;
#undef MG_STORAGE_CTORS

// ---- operators, as hidden friends of an empty base: found by argument-dependent lookup for vectors, packed
// vectors and swizzles alike, and, being non-templates, they accept those through implicit conversions.
template <class V, class T, int N> struct vec_ops {
    using B = metal::vec<bool, N>;
#define MG_VEC_BINARY(OP)                                                                          \
    friend MG_FUNC V operator OP(const V& a, const V& b) {                                         \
        V r;                                                                                       \
        for (int i = 0; i < N; ++i) r.d[i] = T(a.d[i] OP b.d[i]);                                   \
        return r;                                                                                  \
    }                                                                                              \
    friend MG_FUNC V operator OP(const V& a, T s) {                                                \
        V r;                                                                                       \
        for (int i = 0; i < N; ++i) r.d[i] = T(a.d[i] OP s);                                        \
        return r;                                                                                  \
    }                                                                                              \
    friend MG_FUNC V operator OP(T s, const V& b) {                                                \
        V r;                                                                                       \
        for (int i = 0; i < N; ++i) r.d[i] = T(s OP b.d[i]);                                        \
        return r;                                                                                  \
    }
// Shifts: the count is taken modulo the element's width (C++ and Metal leave larger counts undefined; this is
// what OpenCL specifies and GPUs do), so char and short shift as 8- and 16-bit values on every target.
#define MG_VEC_SHIFT(OP)                                                                           \
    friend MG_FUNC V operator OP(const V& a, const V& b) {                                         \
        V r;                                                                                       \
        for (int i = 0; i < N; ++i) r.d[i] = T(a.d[i] OP (b.d[i] & T(8 * sizeof(T) - 1)));           \
        return r;                                                                                  \
    }                                                                                              \
    friend MG_FUNC V operator OP(const V& a, T s) {                                                \
        V r;                                                                                       \
        for (int i = 0; i < N; ++i) r.d[i] = T(a.d[i] OP (s & T(8 * sizeof(T) - 1)));                \
        return r;                                                                                  \
    }                                                                                              \
    friend MG_FUNC V operator OP(T s, const V& b) {                                                \
        V r;                                                                                       \
        for (int i = 0; i < N; ++i) r.d[i] = T(s OP (b.d[i] & T(8 * sizeof(T) - 1)));               \
        return r;                                                                                  \
    }
#define MG_VEC_PREDICATE(OP)                                                                       \
    friend MG_FUNC B operator OP(const V& a, const V& b) {                                         \
        B r;                                                                                       \
        for (int i = 0; i < N; ++i) r.d[i] = bool(a.d[i] OP b.d[i]);                                \
        return r;                                                                                  \
    }                                                                                              \
    friend MG_FUNC B operator OP(const V& a, T s) {                                                \
        B r;                                                                                       \
        for (int i = 0; i < N; ++i) r.d[i] = bool(a.d[i] OP s);                                     \
        return r;                                                                                  \
    }                                                                                              \
    friend MG_FUNC B operator OP(T s, const V& b) {                                                \
        B r;                                                                                       \
        for (int i = 0; i < N; ++i) r.d[i] = bool(s OP b.d[i]);                                     \
        return r;                                                                                  \
    }
#define MG_VEC_UNARY(OP, R, E)                                                                     \
    friend MG_FUNC R operator OP(const V& a) {                                                     \
        R r;                                                                                       \
        for (int i = 0; i < N; ++i) r.d[i] = E(OP a.d[i]);                                          \
        return r;                                                                                  \
    }
    MG_VEC_BINARY(+) MG_VEC_BINARY(-) MG_VEC_BINARY(*) MG_VEC_BINARY(/) MG_VEC_BINARY(%)
    MG_VEC_BINARY(&) MG_VEC_BINARY(|) MG_VEC_BINARY(^) MG_VEC_SHIFT(<<) MG_VEC_SHIFT(>>)
    MG_VEC_PREDICATE(==) MG_VEC_PREDICATE(!=) MG_VEC_PREDICATE(<) MG_VEC_PREDICATE(<=)
    MG_VEC_PREDICATE(>) MG_VEC_PREDICATE(>=) MG_VEC_PREDICATE(&&) MG_VEC_PREDICATE(||)
    MG_VEC_UNARY(-, V, T) MG_VEC_UNARY(+, V, T) MG_VEC_UNARY(~, V, T) MG_VEC_UNARY(!, B, bool)
#undef MG_VEC_BINARY
#undef MG_VEC_SHIFT
#undef MG_VEC_PREDICATE
#undef MG_VEC_UNARY
};

}  // namespace detail
}  // namespace mg

namespace metal {

#define MG_VEC_COMPOUND(OP) \
    template <class U> MG_FUNC auto& operator OP##=(const U& u) { return *this = *this OP u; }

template <class T, int N>
struct vec : mg::detail::vec_storage<T, N>, mg::detail::vec_ops<vec<T, N>, T, N> {
    static_assert(N >= 2 && N <= 4, "Metal vectors have 2, 3 or 4 components");
    using value_type = T;
    using storage = mg::detail::vec_storage<T, N>;

    vec() = default;  // components undefined, as in Metal; vec{} gives zeros
    // vec(s) broadcasts; vec(a, b, ...) concatenates scalars and same-typed vectors into N components.
    template <class... A, mg::detail::enable_if_t<mg::detail::ctor_args<T, N, A...>::value, int> = 0>
    MG_FUNC constexpr vec(const A&... a) : storage(mg::detail::flatten<T, N>(a...)) {}
    // Element type conversion, and construction from a swizzle or packed vector of N components.
    template <class X, mg::detail::enable_if_t<mg::detail::shape<X>::size == N, int> = 0>
    MG_FUNC constexpr explicit vec(const X& x) : storage(mg::detail::flatten<T, N>(x)) {}

    // Swizzles and scalars convert to vec, so this one assignment serves them all.
    MG_FUNC vec& operator=(const vec& v) {
        for (int i = 0; i < N; ++i) this->d[i] = v.d[i];
        return *this;
    }

    MG_FUNC constexpr T& operator[](int i) { return this->d[i]; }
    MG_FUNC constexpr const T& operator[](int i) const { return this->d[i]; }

    MG_VEC_COMPOUND(+) MG_VEC_COMPOUND(-) MG_VEC_COMPOUND(*) MG_VEC_COMPOUND(/) MG_VEC_COMPOUND(%)
    MG_VEC_COMPOUND(&) MG_VEC_COMPOUND(|) MG_VEC_COMPOUND(^) MG_VEC_COMPOUND(<<) MG_VEC_COMPOUND(>>)
    MG_FUNC vec& operator++() { return *this = *this + T(1); }
    MG_FUNC vec& operator--() { return *this = *this - T(1); }
    MG_FUNC vec operator++(int) { const vec old = *this; ++*this; return old; }
    MG_FUNC vec operator--(int) { const vec old = *this; --*this; return old; }
};

// packed_vec: N elements with no padding, aligned as one element. Converts to and from vec<T, N> implicitly;
// arithmetic on it goes through vec<T, N> and gives vec<T, N>.
template <class T, int N>
struct packed_vec : mg::detail::packed_storage<T, N>, mg::detail::vec_ops<vec<T, N>, T, N> {
    using value_type = T;
    using storage = mg::detail::packed_storage<T, N>;

    packed_vec() = default;
    MG_FUNC constexpr packed_vec(const vec<T, N>& v) : storage(mg::detail::flatten<T, N>(v)) {}
    template <class A0, class A1, class... A,
              mg::detail::enable_if_t<mg::detail::ctor_args<T, N, A0, A1, A...>::value, int> = 0>
    MG_FUNC constexpr packed_vec(const A0& a0, const A1& a1, const A&... a)
        : storage(mg::detail::flatten<T, N>(a0, a1, a...)) {}
    // From a swizzle of the same element type implicitly (packed_float3 p = v.xyz), else explicitly.
    template <class X, mg::detail::enable_if_t<mg::detail::shape<X>::size == N &&
                                                   mg::detail::is_same<typename mg::detail::shape<X>::elem, T>::value,
                                               int> = 0>
    MG_FUNC constexpr packed_vec(const X& x) : storage(mg::detail::flatten<T, N>(x)) {}
    template <class X, mg::detail::enable_if_t<mg::detail::shape<X>::size == N &&
                                                   !mg::detail::is_same<typename mg::detail::shape<X>::elem, T>::value,
                                               int> = 0>
    MG_FUNC constexpr explicit packed_vec(const X& x) : storage(mg::detail::flatten<T, N>(x)) {}

    // The storage union's own copy assignment is deleted (see the top of this file).
    MG_FUNC packed_vec& operator=(const packed_vec& v) {
        for (int i = 0; i < N; ++i) this->d[i] = v.d[i];
        return *this;
    }

    MG_FUNC operator vec<T, N>() const { return vec<T, N>(*this); }
    MG_FUNC constexpr T& operator[](int i) { return this->d[i]; }
    MG_FUNC constexpr const T& operator[](int i) const { return this->d[i]; }

    MG_VEC_COMPOUND(+) MG_VEC_COMPOUND(-) MG_VEC_COMPOUND(*) MG_VEC_COMPOUND(/) MG_VEC_COMPOUND(%)
    MG_VEC_COMPOUND(&) MG_VEC_COMPOUND(|) MG_VEC_COMPOUND(^) MG_VEC_COMPOUND(<<) MG_VEC_COMPOUND(>>)
};
#undef MG_VEC_COMPOUND

// ---- Metal's names -----------------------------------------------------------------------------------------
#define MG_VECTOR_NAMES(T)                      \
    typedef vec<T, 2> T##2;                     \
    typedef vec<T, 3> T##3;                     \
    typedef vec<T, 4> T##4;                     \
    typedef packed_vec<T, 2> packed_##T##2;     \
    typedef packed_vec<T, 3> packed_##T##3;     \
    typedef packed_vec<T, 4> packed_##T##4;
MG_VECTOR_NAMES(bool) MG_VECTOR_NAMES(char) MG_VECTOR_NAMES(uchar) MG_VECTOR_NAMES(short)
MG_VECTOR_NAMES(ushort) MG_VECTOR_NAMES(int) MG_VECTOR_NAMES(uint) MG_VECTOR_NAMES(long)
MG_VECTOR_NAMES(ulong) MG_VECTOR_NAMES(half) MG_VECTOR_NAMES(bfloat) MG_VECTOR_NAMES(float)

// Layout rules. vec<T, N>: size and alignment N * sizeof(T), with 3 counted as 4. packed_vec: N * sizeof(T),
// aligned as T. Only the float vectors are checked here, in every kernel; tests/header checks metal_layout for
// every element type. (Each element type checked here would instantiate its vector types in every kernel, about
// 0.15 s of compile time each, and the packed ones as much again.)
template <class T> constexpr bool vec_layout() {
    return sizeof(vec<T, 2>) == 2 * sizeof(T) && alignof(vec<T, 2>) == 2 * sizeof(T) &&
           sizeof(vec<T, 3>) == 4 * sizeof(T) && alignof(vec<T, 3>) == 4 * sizeof(T) &&
           sizeof(vec<T, 4>) == 4 * sizeof(T) && alignof(vec<T, 4>) == 4 * sizeof(T) &&
           __is_trivially_constructible(vec<T, 3>, const vec<T, 3>&) && __has_trivial_destructor(vec<T, 3>);
}
template <class T> constexpr bool metal_layout() {
    return vec_layout<T>() &&
           sizeof(packed_vec<T, 2>) == 2 * sizeof(T) && alignof(packed_vec<T, 2>) == alignof(T) &&
           sizeof(packed_vec<T, 3>) == 3 * sizeof(T) && alignof(packed_vec<T, 3>) == alignof(T) &&
           sizeof(packed_vec<T, 4>) == 4 * sizeof(T) && alignof(packed_vec<T, 4>) == alignof(T) &&
           __is_trivially_constructible(packed_vec<T, 3>, const packed_vec<T, 3>&) &&
           __has_trivial_destructor(packed_vec<T, 3>);
}
static_assert(vec_layout<float>(), "float vector layout differs from Metal's");
#undef MG_VECTOR_NAMES

}  // namespace metal

namespace mg {
namespace detail {
// For the element-wise functions: an argument as a vector value (swizzles and packed vectors read out),
// and component i of it (a scalar is every component).
template <class X, enable_if_t<(shape<X>::size > 0), int> = 0>
MG_FUNC metal::vec<typename shape<X>::elem, shape<X>::size> value_of(const X& x) {
    return metal::vec<typename shape<X>::elem, shape<X>::size>(x);
}
template <class X, enable_if_t<shape<X>::size == 0, int> = 0>
MG_FUNC X value_of(const X& x) { return x; }
template <class E, class T, int N> MG_FUNC E lane(const metal::vec<T, N>& v, int i) { return E(v.d[i]); }
template <class E, class S, enable_if_t<shape<S>::size == 0, int> = 0> MG_FUNC E lane(const S& s, int) { return E(s); }

// map<R>(f, args...): f applied component by component; scalar arguments are broadcast.
template <class R, class F, class... A> MG_FUNC R map(F f, const A&... a) {
    if constexpr (shape<R>::size == 0) {
        return R(f(static_cast<R>(a)...));
    } else {
        using E = typename shape<R>::elem;
        R r;
        for (int i = 0; i < shape<R>::size; ++i) r.d[i] = f(lane<E>(a, i)...);
        return r;
    }
}
}  // namespace detail
}  // namespace mg
