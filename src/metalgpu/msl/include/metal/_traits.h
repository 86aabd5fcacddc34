// metal/_traits.h -- type traits, written on compiler builtins only: NVRTC has no C++ standard library.
// Metal's own (<metal_type_traits>) are defined in namespace metal, where kernels may specialise them; the
// internal ones live in mg::detail, which sees Metal's through using-declarations.
#pragma once

namespace mg {
namespace detail {
template <class To> void convert_to(To) noexcept;
template <class...> struct always_void { using type = void; };
}  // namespace detail
}  // namespace mg

namespace metal {
using bfloat = mg::detail::narrow_float<mg::detail::bf16_format>;
template <class T, int N> struct vec;
template <class T, int N> struct packed_vec;

template <class T, T v>
struct integral_constant {
    static constexpr T value = v;
    using value_type = T;
    using type = integral_constant;
    MG_FUNC constexpr operator T() const { return v; }
    MG_FUNC constexpr T operator()() const { return v; }
};
template <bool B> using bool_constant = integral_constant<bool, B>;
using true_type = bool_constant<true>;
using false_type = bool_constant<false>;

template <bool B, class T = void> struct enable_if {};
template <class T> struct enable_if<true, T> { using type = T; };
template <bool B, class T = void> using enable_if_t = typename enable_if<B, T>::type;

template <bool B, class T, class F> struct conditional { using type = T; };
template <class T, class F> struct conditional<false, T, F> { using type = F; };
template <bool B, class T, class F> using conditional_t = typename conditional<B, T, F>::type;

template <class A, class B> struct is_same : false_type {};
template <class A> struct is_same<A, A> : true_type {};

template <class T> struct remove_const { using type = T; };
template <class T> struct remove_const<const T> { using type = T; };
template <class T> struct remove_volatile { using type = T; };
template <class T> struct remove_volatile<volatile T> { using type = T; };
template <class T> struct remove_cv { using type = typename remove_volatile<typename remove_const<T>::type>::type; };
template <class T> struct remove_reference { using type = T; };
template <class T> struct remove_reference<T&> { using type = T; };
template <class T> struct remove_reference<T&&> { using type = T; };
template <class T> struct remove_pointer { using type = T; };
template <class T> struct remove_pointer<T*> { using type = T; };
template <class T> struct remove_pointer<T* const> { using type = T; };
template <class T> struct remove_pointer<T* volatile> { using type = T; };
template <class T> struct remove_pointer<T* const volatile> { using type = T; };
template <class T> using remove_const_t = typename remove_const<T>::type;
template <class T> using remove_volatile_t = typename remove_volatile<T>::type;
template <class T> using remove_cv_t = typename remove_cv<T>::type;
template <class T> using remove_reference_t = typename remove_reference<T>::type;
template <class T> using remove_pointer_t = typename remove_pointer<T>::type;
// Address spaces are erased on every target (a `device float` is a float), so removing one changes nothing.
template <class T> struct remove_addrspace { using type = T; };
template <class T> using remove_addrspace_t = typename remove_addrspace<T>::type;

template <class T> T&& declval() noexcept;

template <class T> struct is_void : is_same<remove_cv_t<T>, void> {};
template <class T> struct is_const : false_type {};
template <class T> struct is_const<const T> : true_type {};
template <class T> struct is_volatile : false_type {};
template <class T> struct is_volatile<volatile T> : true_type {};
template <class T> struct is_reference : false_type {};
template <class T> struct is_reference<T&> : true_type {};
template <class T> struct is_reference<T&&> : true_type {};
template <class T> struct is_pointer_base : false_type {};
template <class T> struct is_pointer_base<T*> : true_type {};
template <class T> struct is_pointer : is_pointer_base<remove_cv_t<T>> {};
template <class T> struct is_class : bool_constant<__is_class(T)> {};
template <class T> struct is_enum : bool_constant<__is_enum(T)> {};
template <class B, class D> struct is_base_of : bool_constant<__is_base_of(B, D)> {};
template <class T> struct is_trivially_copyable : bool_constant<__is_trivially_copyable(T)> {};

}  // namespace metal

namespace mg {
namespace detail {
// The compiler's own 16-bit float, the CPU's half (none on CUDA, where half is a class), and the conversions to it
// that Metal makes implicitly.
template <class T> struct is_builtin_float16 : metal::false_type {};
template <class From, class To> struct is_builtin_float16_from : metal::false_type {};
#if !defined(MG_TARGET_CUDA)
template <> struct is_builtin_float16<half_t> : metal::true_type {};
template <> struct is_builtin_float16_from<float, half_t> : metal::true_type {};
template <> struct is_builtin_float16_from<double, half_t> : metal::true_type {};
#endif
}  // namespace detail
}  // namespace mg

namespace metal {
// is_convertible<From, To>: copy-initialising a To from a From compiles. g++ 13 and later give _Float16 C++23's
// rules in every language mode: float and double convert to it only explicitly, and the test above fails, while
// Metal's half takes them implicitly (is_convertible_v<float, half> holds; MLX's complex_t converts through it).
template <class From, class To, class = void>
struct is_convertible : mg::detail::is_builtin_float16_from<remove_cv_t<typename remove_reference<From>::type>,
                                                            remove_cv_t<To>> {};
template <class From, class To>
struct is_convertible<From, To,
                      typename mg::detail::always_void<decltype(mg::detail::convert_to<To>(declval<From>()))>::type>
    : true_type {};

// The library-internal folds that Metal's own headers use (and kernels reach for: MLX's atomic.h).
template <class... B> struct _disjunction : bool_constant<(bool(B::value) || ...)> {};
template <class... B> struct _conjunction : bool_constant<(bool(B::value) && ...)> {};
template <class B> struct _negation : bool_constant<!bool(B::value)> {};
}  // namespace metal

namespace mg {
namespace detail {

template <class E, int... I> struct swizzle_ref;

using metal::integral_constant;
using metal::bool_constant;
using metal::true_type;
using metal::false_type;
using metal::enable_if;
using metal::enable_if_t;
using metal::conditional;
using metal::conditional_t;
using metal::is_same;
using metal::remove_const;
using metal::remove_volatile;
using metal::remove_cv;
using metal::remove_cv_t;
using metal::remove_reference;
using metal::declval;
using metal::is_convertible;
using metal::is_enum;
template <class T> using remove_cvref_t = remove_cv_t<typename remove_reference<T>::type>;
template <class... T> using void_t = typename always_void<T...>::type;

// ---- scalar classification ------------------------------------------------------------------------
template <class T> struct integral_base : false_type {};
#define MG_INTEGRAL(T) template <> struct integral_base<T> : true_type {};
MG_INTEGRAL(bool) MG_INTEGRAL(char) MG_INTEGRAL(signed char) MG_INTEGRAL(unsigned char)
MG_INTEGRAL(short) MG_INTEGRAL(unsigned short) MG_INTEGRAL(int) MG_INTEGRAL(unsigned int)
MG_INTEGRAL(long) MG_INTEGRAL(unsigned long) MG_INTEGRAL(long long) MG_INTEGRAL(unsigned long long)
#undef MG_INTEGRAL
template <class T> struct floating_base : false_type {};
template <> struct floating_base<float> : true_type {};
template <> struct floating_base<double> : true_type {};
template <class F> struct floating_base<narrow_float<F>> : true_type {};
#if !defined(MG_TARGET_CUDA)
template <> struct floating_base<half_t> : true_type {};
#endif

template <class T, bool = integral_base<T>::value> struct signed_base : bool_constant<T(-1) < T(0)> {};
template <class T> struct signed_base<T, false> : floating_base<T> {};

// Metal classifies a vector as its elements: PyTorch's UnaryKernel.metal takes its complex half2 and float2
// through enable_if_t<is_floating_point_v<T>> and tells scalars apart with is_scalar_v. is_arithmetic (so
// is_scalar) stays false for a vector.
template <class T> struct vector_base : false_type {};
template <class T, int N> struct vector_base<metal::vec<T, N>> : true_type {};
template <class T, int N> struct integral_base<metal::vec<T, N>> : integral_base<T> {};
template <class T, int N> struct floating_base<metal::vec<T, N>> : floating_base<T> {};
template <class T, int N> struct signed_base<metal::vec<T, N>, true> : signed_base<T> {};
template <class T, int N> struct signed_base<metal::vec<T, N>, false> : signed_base<T> {};

}  // namespace detail
}  // namespace mg

// Metal's classification traits, in namespace metal, where kernels specialise them (MLX: is_integral of its
// integral_constant).
namespace metal {
template <class T> struct is_integral : mg::detail::integral_base<remove_cv_t<T>> {};
template <class T> struct is_floating_point : mg::detail::floating_base<remove_cv_t<T>> {};
template <class T>
struct is_arithmetic : bool_constant<(is_integral<T>::value || is_floating_point<T>::value) &&
                                     !mg::detail::vector_base<remove_cv_t<T>>::value> {};
template <class T> struct is_signed : mg::detail::signed_base<remove_cv_t<T>> {};
template <class T> struct is_unsigned : bool_constant<is_integral<T>::value && !is_signed<T>::value> {};
}  // namespace metal

namespace mg {
namespace detail {
using metal::is_integral;
using metal::is_floating_point;
using metal::is_arithmetic;
using metal::is_signed;
using metal::is_unsigned;

template <class T> struct make_unsigned_base { using type = T; };
template <> struct make_unsigned_base<char> { using type = unsigned char; };
template <> struct make_unsigned_base<signed char> { using type = unsigned char; };
template <> struct make_unsigned_base<short> { using type = unsigned short; };
template <> struct make_unsigned_base<int> { using type = unsigned int; };
template <> struct make_unsigned_base<long> { using type = unsigned long; };
template <> struct make_unsigned_base<long long> { using type = unsigned long long; };
template <class T> struct make_signed_base { using type = T; };
template <> struct make_signed_base<char> { using type = signed char; };
template <> struct make_signed_base<unsigned char> { using type = signed char; };
template <> struct make_signed_base<unsigned short> { using type = short; };
template <> struct make_signed_base<unsigned int> { using type = int; };
template <> struct make_signed_base<unsigned long> { using type = long; };
template <> struct make_signed_base<unsigned long long> { using type = long long; };

// ---- vector classification: shape<X>::size is 0 for a scalar, N for a vector, -1 for anything else ----
template <class X, class = void> struct shape_base { static constexpr int size = -1; };
template <class X>
struct shape_base<X, enable_if_t<is_arithmetic<X>::value>> {
    static constexpr int size = 0;
    using elem = X;
};
template <class T, int N> struct shape_base<metal::vec<T, N>> {
    static constexpr int size = N;
    using elem = T;
};
template <class T, int N> struct shape_base<metal::packed_vec<T, N>> {
    static constexpr int size = N;
    using elem = T;
};
// A written swizzle (v.zy = ...) reads as the vector of its components.
template <class E, int... I> struct shape_base<swizzle_ref<E, I...>> {
    static constexpr int size = int(sizeof...(I));
    using elem = remove_cv_t<E>;
};
template <class X> struct shape : shape_base<remove_cvref_t<X>> {};

}  // namespace detail
}  // namespace mg

namespace metal {
template <class X> struct make_unsigned { using type = typename mg::detail::make_unsigned_base<remove_cv_t<X>>::type; };
template <class T, int N> struct make_unsigned<vec<T, N>> {
    using type = vec<typename mg::detail::make_unsigned_base<T>::type, N>;
};
template <class X> struct make_signed { using type = typename mg::detail::make_signed_base<remove_cv_t<X>>::type; };
template <class T, int N> struct make_signed<vec<T, N>> {
    using type = vec<typename mg::detail::make_signed_base<T>::type, N>;
};
}  // namespace metal

namespace mg {
namespace detail {
using metal::make_unsigned;
using metal::make_signed;

template <class E, class = void> struct is_simd_element : false_type {};
template <class E>
struct is_simd_element<E, enable_if_t<(is_integral<E>::value && sizeof(E) <= 4 && !is_same<E, bool>::value) ||
                                      is_same<E, float>::value || is_same<E, half_t>::value>> : true_type {};
template <class T, class = void> struct is_simd_value : false_type {};
template <class T> struct is_simd_value<T, void_t<typename shape<T>::elem>> : is_simd_element<typename shape<T>::elem> {};

// ---- result types of the element-wise functions ------------------------------------------------------
// Two scalar element types meet like C++'s usual arithmetic conversions. A 16-bit float class (bfloat; half on
// CUDA) takes part as a built-in type would: with an integer it stays itself, with double it becomes double, and
// with float or the other 16-bit float, float.
template <class T> struct is_narrow : false_type {};
template <class F> struct is_narrow<narrow_float<F>> : true_type {};
template <class N, class B> struct meet_with_narrow {
    using type = conditional_t<is_same<N, B>::value || is_integral<B>::value, N,
                               conditional_t<is_same<B, double>::value, double, float>>;
};
template <class A, class B> struct builtin_meet { using type = remove_cvref_t<decltype(true ? declval<A>() : declval<B>())>; };
template <class A, class B> struct meet
    : conditional_t<is_narrow<A>::value, meet_with_narrow<A, B>,
                    conditional_t<is_narrow<B>::value, meet_with_narrow<B, A>, builtin_meet<A, B>>> {};

// The common shape of arguments: all vectors the same size; the element type is the first vector's
// (scalars are converted to it, as Metal does with a vector and a literal), or the meet of the scalars.
template <class... X> struct common;
template <class X> struct common<X> {
    static constexpr int size = shape<X>::size;
    using elem = typename shape<X>::elem;
};
template <class X, class... Rest> struct common<X, Rest...> {
    using rest = common<Rest...>;
    static constexpr int a = shape<X>::size, b = rest::size;
    static constexpr bool ok = a >= 0 && b >= 0 && (a == 0 || b == 0 || a == b);
    static constexpr int size = !ok ? -1 : (a > b ? a : b);
    using elem = conditional_t<(a > 0), typename shape<X>::elem,
                 conditional_t<(b > 0), typename rest::elem, typename meet<typename shape<X>::elem, typename rest::elem>::type>>;
};

template <class T, int N> struct vec_or_scalar { using type = metal::vec<T, N>; };
template <class T> struct vec_or_scalar<T, 0> { using type = T; };

// result_t<X...>: the vector or scalar type an element-wise function of these arguments returns.
// Metal has no double: an unsuffixed literal is a float there (`metal::exp(0.5 * x)` is a float), so a double
// element, which such a literal makes in C++, gives float results.
template <class C, class = void> struct result_base {};
template <class C> struct result_base<C, enable_if_t<(C::size >= 0)>> {
    using type = typename vec_or_scalar<conditional_t<is_same<typename C::elem, double>::value, float,
                                                      typename C::elem>, C::size>::type;
};
template <class... X> using result_t = typename result_base<common<remove_cvref_t<X>...>>::type;
template <class... X> using float_result_t =
    enable_if_t<is_floating_point<typename shape<result_t<X...>>::elem>::value, result_t<X...>>;
// float for an integer or bool scalar: what a float math function makes of one (PyTorch's special_math.h takes
// trunc of a bool).
template <class X> using float_of_integer_t =
    enable_if_t<is_arithmetic<remove_cvref_t<X>>::value && is_integral<remove_cvref_t<X>>::value, float>;
template <class... X> using integer_result_t =
    enable_if_t<is_integral<typename shape<result_t<X...>>::elem>::value, result_t<X...>>;
// The same shape with bool elements (comparisons, isnan, ...).
template <class X> using bool_result_t = typename vec_or_scalar<bool, shape<X>::size>::type;

}  // namespace detail
}  // namespace mg

namespace metal {
template <class X> using make_unsigned_t = typename make_unsigned<X>::type;
template <class X> using make_signed_t = typename make_signed<X>::type;
template <class A, class B> constexpr bool is_same_v = is_same<A, B>::value;
template <class T> constexpr bool is_integral_v = is_integral<T>::value;
template <class T> constexpr bool is_floating_point_v = is_floating_point<T>::value;
template <class T> constexpr bool is_arithmetic_v = is_arithmetic<T>::value;
template <class T> constexpr bool is_signed_v = is_signed<T>::value;
template <class T> constexpr bool is_unsigned_v = is_unsigned<T>::value;
template <class From, class To> constexpr bool is_convertible_v = is_convertible<From, To>::value;
template <class T> constexpr bool is_void_v = is_void<T>::value;
template <class T> constexpr bool is_const_v = is_const<T>::value;
template <class T> constexpr bool is_volatile_v = is_volatile<T>::value;
template <class T> constexpr bool is_reference_v = is_reference<T>::value;
template <class T> constexpr bool is_pointer_v = is_pointer<T>::value;
template <class T> constexpr bool is_class_v = is_class<T>::value;
template <class T> constexpr bool is_enum_v = is_enum<T>::value;
template <class B, class D> constexpr bool is_base_of_v = is_base_of<B, D>::value;
template <class T> constexpr bool is_trivially_copyable_v = is_trivially_copyable<T>::value;

// Metal: a scalar is a bool, integer or floating type; a vector is one of the vec<T, N> (packed included).
template <class T> struct is_scalar : is_arithmetic<T> {};
template <class T> struct is_vector : bool_constant<(mg::detail::shape<T>::size > 0)> {};
template <class T> constexpr bool is_scalar_v = is_scalar<T>::value;
template <class T> constexpr bool is_vector_v = is_vector<T>::value;
// Whether the SIMD-group functions take T as Metal's own do (scalars and vectors of 8-, 16- and 32-bit integers,
// half and float); ours take any type, so this only steers kernels that choose a code path by it (candle).
template <class T> struct __is_valid_simdgroup_type
    : mg::detail::is_simd_value<T> {};
// The number of components of a vector type; 0 for anything else.
template <class T> struct vec_elements : integral_constant<int, (mg::detail::shape<T>::size > 0 ? mg::detail::shape<T>::size : 0)> {};

// What the launch code asks of a parameter type: its element type and number of elements.
template <class T> struct vec_traits {
    static constexpr int size = 1;
    using type = T;
};
template <class T, int N> struct vec_traits<vec<T, N>> {
    static constexpr int size = N;
    using type = T;
};
template <class T, int N> struct vec_traits<packed_vec<T, N>> {
    static constexpr int size = N;
    using type = T;
};
}  // namespace metal
