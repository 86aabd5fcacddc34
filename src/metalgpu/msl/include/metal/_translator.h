// metal/_translator.h -- what the translator's rewrites of user code call (msl/conditionals.py, msl/threadgroup.py).
#pragma once

namespace mg {

// Zero, but dependent on template arguments: a static_assert that adds it waits for the instantiation.
template <class...> constexpr unsigned long zero_for_types = 0;
template <auto...> constexpr unsigned long zero_for_values = 0;

// ---- the conditional operator ------------------------------------------------------------------------------
// `c ? a : b` is rewritten to `c ? static_cast<cond_t<A, B>>(a) : static_cast<cond_t<B, A>>(b)`, with A and B the
// decltype((operand)) of each side. Where a 16-bit float class (bfloat; half on CUDA) meets another arithmetic
// type, C++ finds conversions both ways and refuses the expression; Metal applies the usual arithmetic
// conversions (half ? float is float, half ? int is half): both sides become that type. Everywhere else cond_t
// leaves the result as C++ makes it (an lvalue stays an lvalue where both operands are lvalues of one type).
namespace detail {
template <class T> struct names_lvalue : false_type {};  // decltype((operand)) of an lvalue
template <class T> struct names_lvalue<T&> : true_type {};
template <class T> struct is_narrow_float : false_type {};
template <class F> struct is_narrow_float<narrow_float<F>> : true_type {};
// The two tests below are class templates, not variable templates: NVRTC's front end crashes on a variable template
// in a default template argument when the operand type is decltype((tile[v.x])), a threadgroup array indexed by a
// vector's component, inside a function template (MLX's all_reduce).
template <class A, class B> struct mixes_narrow_float {
    static constexpr bool value = !is_same<remove_cvref_t<A>, remove_cvref_t<B>>::value &&
                                  (is_narrow_float<remove_cvref_t<A>>::value ||
                                   is_narrow_float<remove_cvref_t<B>>::value) &&
                                  is_arithmetic<remove_cvref_t<A>>::value && is_arithmetic<remove_cvref_t<B>>::value;
};
// bfloat with half (two classes on CUDA): float, as their arithmetic gives
template <class A, class B, bool = is_narrow_float<A>::value && is_narrow_float<B>::value>
struct narrow_meet : meet<A, B> {};
template <class A, class B> struct narrow_meet<A, B, true> { using type = float; };
// Other arithmetic operands are read as values unless both are lvalues of one type (whose result is an lvalue):
// the conversion the operator applies anyway, and a bit-field operand then needs no reference to it.
template <class A, class B> struct read_as_value {
    static constexpr bool value = is_arithmetic<remove_cvref_t<A>>::value &&
                                  is_arithmetic<remove_cvref_t<B>>::value &&
                                  !(is_same<A, B>::value && names_lvalue<A>::value);
};
template <class A, class B, bool = mixes_narrow_float<A, B>::value, bool = read_as_value<A, B>::value>
struct conditional_operand { using type = A; };
template <class A, class B> struct conditional_operand<A, B, false, true> { using type = remove_cvref_t<A>; };
template <class A, class B, bool V>
struct conditional_operand<A, B, true, V> : narrow_meet<remove_cvref_t<A>, remove_cvref_t<B>> {};
}  // namespace detail
template <class A, class B> using cond_t = typename detail::conditional_operand<A, B>::type;

// The type of a rewritten conditional whose operands have types A and B (an operand that is itself a conditional
// is typed by this, not by decltype of its text). value_of<T>() is an expression of T's type and value category.
namespace detail {
template <class T> T value_of();
}  // namespace detail
template <class A, class B>
using cond_result_t = decltype(true ? detail::value_of<cond_t<A, B>>() : detail::value_of<cond_t<B, A>>());

// ---- loads that may be misaligned ----------------------------------------------------------------------------
// `*((device const uint32_t *) block->qh)` is rewritten to `load_unaligned(((device const uint32_t *) block->qh))`
// (msl/unaligned.py): a field of a packed block may sit at any byte offset, which Apple's GPUs load from and CUDA
// faults on. Aligned addresses take one load; others are read byte by byte.
template <class T>
MG_FUNC T load_unaligned(const T* p) {
    if (reinterpret_cast<decltype(sizeof(0))>(p) % alignof(T) == 0) return *p;
    struct alignas(T) bytes_of { unsigned char b[sizeof(T)]; } bytes;
    const unsigned char* from = reinterpret_cast<const unsigned char*>(p);
    for (decltype(sizeof(0)) k = 0; k < sizeof(T); ++k) bytes.b[k] = from[k];
    return *reinterpret_cast<const T*>(&bytes);
}
template <class T>
MG_FUNC T load_unaligned(const volatile T* p) { return load_unaligned(const_cast<const T*>(p)); }

}  // namespace mg
