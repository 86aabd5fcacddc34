// metal/_vector.h -- vec<T, N>, packed_vec<T, N>, swizzles, vector operators and the Metal vector names.
//
// Layout: a vector's storage is an anonymous union of the element array `d` and the named components (x y z w
// and r g b a); vec aligns it as N elements (3 counted as 4), packed_vec as one element. Both are trivially
// copyable: kernel arguments, memcpy and bit casts see plain arrays.
//
// Swizzles are not members: the translator rewrites `v.zyx` into a call of swizzle_value<2, 1, 0>(v) (a vector
// value) and `v.zy = w` into swizzle_ref<2, 1>(v) = w (a proxy that writes through); see msl/swizzles.py. Members
// would cost every vector type hundreds of proxy types, about 0.1 s of compile time per type used.
#pragma once

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
// One scalar broadcasts; two or more arguments supply exactly N components, or (scalars only) fewer, the rest
// zero: Metal's braced form, `uint4 v = {a, b, c}` (a C++ constructor cannot tell it from the parenthesised one).
template <class T, int N, class... A> struct ctor_args {
    static constexpr int count = (ctor_part<T, A>::count + ... + 0);
    static constexpr bool scalars = ((shape<A>::size == 0) && ...);
    static constexpr bool value = sizeof...(A) == 1
        ? scalars
        : ((ctor_part<T, A>::ok && ...) && (count == N || (scalars && count < N)));
};

// ---- swizzles ----------------------------------------------------------------------------------------------
// swizzle_ref<E, I...>: the components I... of the vector whose elements start at d, written through. E is const
// for a const vector, and then nothing can be assigned.
template <class E, int... I> struct swizzle_ref {
    using V = metal::vec<remove_cv_t<E>, int(sizeof...(I))>;
    E* d;

    MG_FUNC operator V() const { return V(d[I]...); }
    template <class U> MG_FUNC const swizzle_ref& operator=(const U& u) const {
        static_assert(distinct<I...>(), "cannot assign to a swizzle that repeats a component");
        const V v(u);
        int k = 0;
        ((d[I] = v.d[k++]), ...);
        return *this;
    }
    MG_FUNC const swizzle_ref& operator=(const swizzle_ref& s) const { return *this = V(s); }
    MG_FUNC E& operator[](int i) const {
        const int idx[] = {I...};
        return d[idx[i]];
    }
};
#define MG_SWIZZLE_COMPOUND(OP)                                                                               \
    template <class E, int... I, class U>                                                                     \
    MG_FUNC const swizzle_ref<E, I...>& operator OP##=(const swizzle_ref<E, I...>& s, const U& u) {           \
        return s = typename swizzle_ref<E, I...>::V(s) OP u;                                                  \
    }
MG_SWIZZLE_COMPOUND(+) MG_SWIZZLE_COMPOUND(-) MG_SWIZZLE_COMPOUND(*) MG_SWIZZLE_COMPOUND(/)
MG_SWIZZLE_COMPOUND(%) MG_SWIZZLE_COMPOUND(&) MG_SWIZZLE_COMPOUND(|) MG_SWIZZLE_COMPOUND(^)
MG_SWIZZLE_COMPOUND(<<) MG_SWIZZLE_COMPOUND(>>)
#undef MG_SWIZZLE_COMPOUND
template <class E, int... I> MG_FUNC swizzle_ref<E, I...> operator++(const swizzle_ref<E, I...>& s) {
    s += 1;
    return s;
}
template <class E, int... I> MG_FUNC swizzle_ref<E, I...> operator--(const swizzle_ref<E, I...>& s) {
    s -= 1;
    return s;
}

// Component i of a vector, packed vector or written swizzle.
template <class X> MG_FUNC constexpr typename shape<X>::elem component(const X& x, int i) { return x.d[i]; }
template <class E, int... I> MG_FUNC constexpr remove_cv_t<E> component(const swizzle_ref<E, I...>& s, int i) {
    return s[i];
}

template <int Size, int... J> MG_FUNC constexpr bool in_range() { return ((J >= 0 && J < Size) && ...); }
template <int J, int... I> MG_FUNC constexpr int pick() {
    const int idx[] = {I...};
    return idx[J];
}

// v.zyx read: a value. One component (v.zw.x) is a scalar.
template <int... J, class X, enable_if_t<(shape<X>::size > 0), int> = 0>
MG_FUNC constexpr auto swizzle_value(const X& x) {
    static_assert(in_range<shape<X>::size, J...>(), "swizzle names a component the vector does not have");
    using E = typename shape<X>::elem;
    if constexpr (sizeof...(J) == 1) return E(component(x, J...));
    else return metal::vec<E, int(sizeof...(J))>(E(component(x, J))...);
}

// v.zy written: a proxy, or for one component a reference. A written swizzle of a written swizzle (v.xyz.zx = w)
// selects from the same vector.
template <class X> struct const_like { template <class E> using type = E; };
template <class X> struct const_like<const X> { template <class E> using type = const E; };
template <class X> struct is_swizzle_ref : false_type {};
template <class E, int... I> struct is_swizzle_ref<swizzle_ref<E, I...>> : true_type {};
template <int... J, class X, enable_if_t<(shape<X>::size > 0) && !is_swizzle_ref<remove_cv_t<X>>::value, int> = 0>
MG_FUNC decltype(auto) swizzle_ref_of(X& x) {
    static_assert(in_range<shape<X>::size, J...>(), "swizzle names a component the vector does not have");
    using E = typename const_like<X>::template type<typename shape<X>::elem>;
    if constexpr (sizeof...(J) == 1) return static_cast<E&>(x.d[pick<0, J...>()]);
    else return swizzle_ref<E, J...>{x.d};
}
template <int... J, class E, int... I> MG_FUNC decltype(auto) swizzle_ref_of(const swizzle_ref<E, I...>& s) {
    static_assert(in_range<int(sizeof...(I)), J...>(), "swizzle names a component the vector does not have");
    if constexpr (sizeof...(J) == 1) return static_cast<E&>(s.d[pick<pick<0, J...>(), I...>()]);
    else return swizzle_ref<E, pick<J, I...>()...>{s.d};
}

// ---- storage: the union, per size --------------------------------------------------------------------------
#define MG_STORAGE_CTORS(NAME, N)                                                                             \
    NAME() = default;                                                                                         \
    MG_FUNC constexpr explicit NAME(const carray<T, N>& c) : d{} {                                            \
        for (int i = 0; i < N; ++i) d[i] = c.v[i];                                                            \
    }

// One storage template serves vec (aligned as N elements, 3 counted as 4) and packed_vec (aligned as one
// element).
template <class T, int N, int Align> struct storage;
template <class T, int Align> struct alignas(Align) storage<T, 2, Align> {
    union { T d[2]; struct { T x, y; }; struct { T r, g; }; };
    MG_STORAGE_CTORS(storage, 2)
};
template <class T, int Align> struct alignas(Align) storage<T, 3, Align> {
    union { T d[3]; struct { T x, y, z; }; struct { T r, g, b; }; };
    MG_STORAGE_CTORS(storage, 3)
};
template <class T, int Align> struct alignas(Align) storage<T, 4, Align> {
    union { T d[4]; struct { T x, y, z, w; }; struct { T r, g, b, a; }; };
    MG_STORAGE_CTORS(storage, 4)
};
template <class T, int N> using vec_storage = storage<T, N, int((N == 3 ? 4 : N) * sizeof(T))>;
template <class T, int N> using packed_storage = storage<T, N, int(alignof(T))>;
#undef MG_STORAGE_CTORS

// ---- operators, as hidden friends of an empty base: found by argument-dependent lookup for vectors, packed
// vectors and swizzles alike. With two vector operands they are non-templates, so that they accept packed vectors
// and swizzles through implicit conversions. With a scalar operand, the scalar is converted to the element type,
// as Metal does. A conversion from or to a class (bfloat; half on CUDA) is a user conversion, as ambiguous as the
// vector's own broadcast from a scalar, so those operands get forms that take them as an exact match: vectors of a
// class element type take any scalar through templates (a float next to a half2), and the arithmetic and
// comparisons of other vectors take the classes through templates (a half next to a float2). Templates for every
// scalar of every vector would cost NVRTC a sixth more on a small kernel.
template <class V, class T, int N, bool ClassElement = is_narrow<T>::value> struct vec_ops;

// One operator: vector with vector, then SCALAR_FORMS(...): vector with scalar, scalar with vector, through
// MG_VEC_WITH(..., HEAD, PARAM). R is the result (V, or B for comparisons), E its element type, and RIGHT what the
// right operand goes through: itself, or for shifts its count modulo the element's width (C++ and Metal leave
// larger counts undefined; this is what OpenCL specifies and GPUs do), so char and short shift as 8- and 16-bit
// values on every target.
#define MG_VEC_WITH(OP, R, E, RIGHT, HEAD, PARAM)                                                             \
    HEAD R operator OP(const V& a, PARAM scalar) {                                                            \
        const T s = static_cast<T>(scalar);                                                                   \
        R r;                                                                                                  \
        for (int i = 0; i < N; ++i) r.d[i] = E(a.d[i] OP RIGHT(s));                                           \
        return r;                                                                                             \
    }                                                                                                         \
    HEAD R operator OP(PARAM scalar, const V& b) {                                                            \
        const T s = static_cast<T>(scalar);                                                                   \
        R r;                                                                                                  \
        for (int i = 0; i < N; ++i) r.d[i] = E(s OP RIGHT(b.d[i]));                                           \
        return r;                                                                                             \
    }
#define MG_VEC_OPERATOR(OP, R, E, RIGHT, FORMS)                                                               \
    friend MG_FUNC R operator OP(const V& a, const V& b) {                                                    \
        R r;                                                                                                  \
        for (int i = 0; i < N; ++i) r.d[i] = E(a.d[i] OP RIGHT(b.d[i]));                                      \
        return r;                                                                                             \
    }                                                                                                         \
    FORMS(OP, R, E, RIGHT)
// Arithmetic and comparisons take every scalar form; the integer-only operators the element type alone.
#define MG_VEC_ARITH(OP) MG_VEC_OPERATOR(OP, V, T, as_is, SCALAR_FORMS)
#define MG_VEC_COMPARE(OP) MG_VEC_OPERATOR(OP, B, bool, as_is, SCALAR_FORMS)
#define MG_VEC_BITWISE(OP) MG_VEC_OPERATOR(OP, V, T, as_is, ELEMENT_FORMS)
#define MG_VEC_SHIFT(OP) MG_VEC_OPERATOR(OP, V, T, shift_count, ELEMENT_FORMS)
#define MG_VEC_LOGICAL(OP) MG_VEC_OPERATOR(OP, B, bool, as_is, ELEMENT_FORMS)
#define MG_VEC_UNARY(OP, R, E)                                                                                \
    friend MG_FUNC R operator OP(const V& a) {                                                                \
        R r;                                                                                                  \
        for (int i = 0; i < N; ++i) r.d[i] = E(OP a.d[i]);                                                    \
        return r;                                                                                             \
    }
#define MG_VEC_OPERATORS                                                                                      \
    using B = metal::vec<bool, N>;                                                                            \
    static MG_FUNC constexpr T as_is(T x) { return x; }                                                       \
    static MG_FUNC constexpr T shift_count(T x) { return T(x & T(8 * sizeof(T) - 1)); }                       \
    MG_VEC_ARITH(+) MG_VEC_ARITH(-) MG_VEC_ARITH(*) MG_VEC_ARITH(/) MG_VEC_BITWISE(%)                         \
    MG_VEC_BITWISE(&) MG_VEC_BITWISE(|) MG_VEC_BITWISE(^) MG_VEC_SHIFT(<<) MG_VEC_SHIFT(>>)                   \
    MG_VEC_COMPARE(==) MG_VEC_COMPARE(!=) MG_VEC_COMPARE(<) MG_VEC_COMPARE(<=)                                \
    MG_VEC_COMPARE(>) MG_VEC_COMPARE(>=) MG_VEC_LOGICAL(&&) MG_VEC_LOGICAL(||)                                \
    MG_VEC_UNARY(-, V, T) MG_VEC_UNARY(+, V, T) MG_VEC_UNARY(~, V, T) MG_VEC_UNARY(!, B, bool)

// Built-in elements: a scalar converts to the element type as a parameter does.
template <class V, class T, int N> struct vec_ops<V, T, N, false> {
#define MG_CLASS_SCALAR template <class F> friend MG_FUNC
#define ELEMENT_FORMS(OP, R, E, RIGHT) MG_VEC_WITH(OP, R, E, RIGHT, friend MG_FUNC, T)
#define SCALAR_FORMS(OP, R, E, RIGHT)                                                                         \
    ELEMENT_FORMS(OP, R, E, RIGHT) MG_VEC_WITH(OP, R, E, RIGHT, MG_CLASS_SCALAR, narrow_float<F>)
    MG_VEC_OPERATORS
#undef SCALAR_FORMS
#undef ELEMENT_FORMS
#undef MG_CLASS_SCALAR
};
// Class elements: any scalar, a number or a class that converts to the element type (integral_constant, ...).
template <class V, class T, int N> struct vec_ops<V, T, N, true> {
    template <class S> using scalar_t = enable_if_t<
        shape<S>::size == 0 || (shape<S>::size == -1 && is_convertible<const S&, T>::value), int>;
#define MG_ANY_SCALAR template <class S, scalar_t<S> = 0> friend MG_FUNC
#define SCALAR_FORMS(OP, R, E, RIGHT) MG_VEC_WITH(OP, R, E, RIGHT, MG_ANY_SCALAR, const S&)
#define ELEMENT_FORMS SCALAR_FORMS
    MG_VEC_OPERATORS
#undef ELEMENT_FORMS
#undef SCALAR_FORMS
#undef MG_ANY_SCALAR
};
#undef MG_VEC_OPERATORS
#undef MG_VEC_WITH
#undef MG_VEC_ARITH
#undef MG_VEC_COMPARE
#undef MG_VEC_BITWISE
#undef MG_VEC_SHIFT
#undef MG_VEC_LOGICAL
#undef MG_VEC_OPERATOR
#undef MG_VEC_UNARY

}  // namespace detail
}  // namespace mg

namespace metal {

#define MG_VEC_COMPOUND(OP)                                                                                   \
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

    MG_FUNC operator vec<T, N>() const { return vec<T, N>(*this); }
    MG_FUNC constexpr T& operator[](int i) { return this->d[i]; }
    MG_FUNC constexpr const T& operator[](int i) const { return this->d[i]; }

    MG_VEC_COMPOUND(+) MG_VEC_COMPOUND(-) MG_VEC_COMPOUND(*) MG_VEC_COMPOUND(/) MG_VEC_COMPOUND(%)
    MG_VEC_COMPOUND(&) MG_VEC_COMPOUND(|) MG_VEC_COMPOUND(^) MG_VEC_COMPOUND(<<) MG_VEC_COMPOUND(>>)
};
#undef MG_VEC_COMPOUND

// ---- Metal's names -----------------------------------------------------------------------------------------
#define MG_VECTOR_NAMES(T)                                                                                    \
    typedef vec<T, 2> T##2;                                                                                   \
    typedef vec<T, 3> T##3;                                                                                   \
    typedef vec<T, 4> T##4;                                                                                   \
    typedef packed_vec<T, 2> packed_##T##2;                                                                   \
    typedef packed_vec<T, 3> packed_##T##3;                                                                   \
    typedef packed_vec<T, 4> packed_##T##4;
// The element types of Metal's vectors, for X(T) over each (_global_names.h uses it too, then undefines it).
#define MG_VECTOR_ELEMENTS(X) X(bool) X(char) X(uchar) X(short) X(ushort) X(int) X(uint) X(long) X(ulong) X(half) \
    X(bfloat) X(float)
MG_VECTOR_ELEMENTS(MG_VECTOR_NAMES)

// Layout rules. vec<T, N>: size and alignment N * sizeof(T), with 3 counted as 4. packed_vec: N * sizeof(T),
// aligned as T. Only the float vectors are checked here, in every kernel; tests/header checks metal_layout for
// every element type. (Checking all twelve here instantiates 72 vector types in every kernel: it doubled NVRTC's
// compile of a small kernel, 0.25 -> 0.5 s on a 2-core machine.)
template <class T> constexpr bool vec_layout() {
    return sizeof(vec<T, 2>) == 2 * sizeof(T) && alignof(vec<T, 2>) == 2 * sizeof(T) &&
           sizeof(vec<T, 3>) == 4 * sizeof(T) && alignof(vec<T, 3>) == 4 * sizeof(T) &&
           sizeof(vec<T, 4>) == 4 * sizeof(T) && alignof(vec<T, 4>) == 4 * sizeof(T) &&
           __is_trivially_copyable(vec<T, 3>);
}
template <class T> constexpr bool metal_layout() {
    return vec_layout<T>() &&
           sizeof(packed_vec<T, 2>) == 2 * sizeof(T) && alignof(packed_vec<T, 2>) == alignof(T) &&
           sizeof(packed_vec<T, 3>) == 3 * sizeof(T) && alignof(packed_vec<T, 3>) == alignof(T) &&
           sizeof(packed_vec<T, 4>) == 4 * sizeof(T) && alignof(packed_vec<T, 4>) == alignof(T) &&
           __is_trivially_copyable(packed_vec<T, 3>);
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
