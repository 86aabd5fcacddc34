// What the kernel wrappers of every target share (msl/translate.py emits the wrappers): the binding metadata that
// Python reads from a compiled module, and the conversion of slots and builtins to the kernel's parameter types.
// Types stay C++'s job: everything here is derived from the kernel's own signature.
#pragma once

namespace mg {

enum binding_kind : int32_t { bind_buffer = 0, bind_threadgroup = 1, bind_builtin = 2 };
// bfloat apart from half: both are 2-byte floats, and a Python number must be rounded to the right one
enum scalar_kind : int32_t {
  kind_other = 0, kind_signed = 1, kind_unsigned = 2, kind_float = 3, kind_bool = 4, kind_bfloat = 5
};

// One record per bound kernel parameter; msl/abi.py describes it to Python (BINDING_FIELDS, BindingInfo).
struct binding_info {
  int32_t param, kind, index, elem_size, is_const, is_reference, scalar_kind, scalar_size, lanes;
};

// The few standard type traits the wrappers need (NVRTC has no <type_traits> of its own).
template <class T> struct remove_ref { using type = T; };
template <class T> struct remove_ref<T&> { using type = T; };
template <class T> struct remove_ref<T&&> { using type = T; };
template <class T> struct pointer_info { static constexpr bool is_pointer = false; using pointee = T; };
template <class T> struct pointer_info<T*> { static constexpr bool is_pointer = true; using pointee = T; };
template <class T> struct pointer_info<T* const> : pointer_info<T*> {};
template <class T> struct const_info { static constexpr bool is_const = false; using bare = T; };
template <class T> struct const_info<const T> { static constexpr bool is_const = true; using bare = T; };
template <class T> struct const_info<volatile T> : const_info<T> {};
template <class T> struct const_info<const volatile T> { static constexpr bool is_const = true; using bare = T; };
template <class T> struct is_void { static constexpr bool value = false; };
template <> struct is_void<void> { static constexpr bool value = true; };

template <class F> struct fn_traits;
template <class R, class... A> struct fn_traits<R (*)(A...)> {
  template <unsigned I, class Head, class... Tail> struct at { using type = typename at<I - 1, Tail...>::type; };
  template <class Head, class... Tail> struct at<0, Head, Tail...> { using type = Head; };
  template <unsigned I> using arg = typename at<I, A...>::type;
};
template <class F, unsigned I> using param_t = typename fn_traits<F>::template arg<I>;

template <class P> using pointee_t = typename pointer_info<typename remove_ref<P>::type>::pointee;
template <class P> constexpr bool is_pointer_v = pointer_info<P>::is_pointer;

template <class E> constexpr int32_t kind_of() {
  using S = typename metal::vec_traits<E>::type;
  if constexpr (metal::is_same_v<S, bool>) return kind_bool;
  else if constexpr (metal::is_same_v<S, metal::bfloat>) return kind_bfloat;
  else if constexpr (metal::is_floating_point_v<S>) return kind_float;
  else if constexpr (metal::is_integral_v<S>) return metal::is_signed_v<S> ? kind_signed : kind_unsigned;
  else return kind_other;
}

template <class P> constexpr binding_info describe(int32_t param, int32_t kind, int32_t index) {
  using E = pointee_t<P>;
  using bare = typename const_info<E>::bare;
  if constexpr (is_void<bare>::value) {
    return {param, kind, index, 1, const_info<E>::is_const, 0, kind_other, 1, 1};
  } else {
    using S = typename metal::vec_traits<bare>::type;
    return {param, kind, index, int32_t(sizeof(bare)), const_info<E>::is_const || !is_pointer_v<P>,
            !is_pointer_v<P>, kind_of<bare>(), int32_t(sizeof(S)), metal::vec_traits<bare>::size};
  }
}

// A [[buffer(i)]] argument from its slot: the slot holds the address of the data.
template <class P> MG_FUNC P buffer_arg(void* slot) {
  if constexpr (is_pointer_v<P>) return static_cast<P>(slot);
  else return *static_cast<typename remove_ref<P>::type*>(slot);
}

// A builtin such as [[thread_position_in_grid]] converted to the parameter's declared type (uint, ushort2, ...).
template <class P> MG_FUNC P builtin(uint32_t x, uint32_t y, uint32_t z) {
  using T = typename const_info<typename remove_ref<P>::type>::bare;
  using E = typename metal::vec_traits<T>::type;
  constexpr int lanes = metal::vec_traits<T>::size;
  if constexpr (lanes == 1) return T(x);
  else if constexpr (lanes == 2) return T(E(x), E(y));
  else return T(E(x), E(y), E(z));
}

// The threadgroup being run, as the builtins see it.
struct group_ctx {
  uint32_t id[3];      // threadgroup_position_in_grid
  uint32_t origin[3];  // first thread of the group, in grid coordinates
  uint32_t size[3];    // threads_per_threadgroup: smaller than requested at the grid's edges
};

// Fills in the origin and real size of the threadgroup at ctx.id (Metal's non-uniform threadgroups: the ones at
// the grid's edges are cut to what is left of it).
MG_FUNC void place_group(group_ctx& ctx, const uint32_t grid[3], const uint32_t group[3]) {
  for (int a = 0; a < 3; ++a) {
    ctx.origin[a] = ctx.id[a] * group[a];
    const uint32_t left = grid[a] - ctx.origin[a];
    ctx.size[a] = left < group[a] ? left : group[a];
  }
}

}  // namespace mg
