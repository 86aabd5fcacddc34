// Launch support for the CPU target, used by the wrappers that msl/translate.py emits after the user's code:
// the dispatch record, the binding metadata Python reads, argument conversion and the thread loop.
#pragma once
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <vector>

#define MG_EXPORT extern "C" __attribute__((visibility("default")))
// What `kernel` becomes: the wrapper's thread loop should see the kernel's body, to vectorise it.
#define MG_KERNEL __attribute__((always_inline)) inline

namespace mg {

// Mirrors backends/cpu.py's DispatchRecord: sizes in threads or threadgroups, x/y/z.
struct dispatch_t {
  uint32_t grid[3];    // threads per grid
  uint32_t group[3];   // requested threads per threadgroup
  uint32_t groups[3];  // threadgroups per grid
  uint32_t threadgroup_bytes[31];  // sizes of [[threadgroup(i)]] parameters
};

enum binding_kind : int32_t { bind_buffer = 0, bind_threadgroup = 1, bind_builtin = 2 };
enum scalar_kind : int32_t { kind_other = 0, kind_signed = 1, kind_unsigned = 2, kind_float = 3, kind_bool = 4 };

// One record per bound kernel parameter; mirrors library.BindingInfo in Python.
struct binding_info {
  int32_t param, kind, index, elem_size, is_const, is_reference, scalar_kind, scalar_size, lanes;
};

template <class F> struct fn_traits;
template <class R, class... A> struct fn_traits<R (*)(A...)> {
  template <std::size_t I> using arg = std::tuple_element_t<I, std::tuple<A...>>;
};
template <class F, std::size_t I> using param_t = typename fn_traits<F>::template arg<I>;

// What a parameter points at (pointer), refers to (reference) or is (value).
template <class P> using pointee_t =
    std::conditional_t<std::is_pointer_v<P>, std::remove_pointer_t<P>, std::remove_reference_t<P>>;

template <class E> constexpr int32_t kind_of() {
  using S = typename metal::vec_traits<std::remove_cv_t<E>>::type;
  if constexpr (std::is_same_v<S, bool>) return kind_bool;
  else if constexpr (metal::is_floating_point_v<S>) return kind_float;
  else if constexpr (std::is_integral_v<S>) return std::is_signed_v<S> ? kind_signed : kind_unsigned;
  else return kind_other;
}

template <class P> constexpr binding_info describe(int32_t param, int32_t kind, int32_t index) {
  using E = pointee_t<P>;
  using bare = std::remove_cv_t<E>;
  if constexpr (std::is_void_v<bare>) {
    return {param, kind, index, 1, std::is_const_v<E>, 0, kind_other, 1, 1};
  } else {
    using S = typename metal::vec_traits<bare>::type;
    return {param, kind, index, int32_t(sizeof(bare)), std::is_const_v<E> || !std::is_pointer_v<P>,
            !std::is_pointer_v<P>, kind_of<bare>(), int32_t(sizeof(S)), metal::vec_traits<bare>::size};
  }
}

// A [[buffer(i)]] argument from its slot: the slot holds the address of the data.
template <class P> inline P buffer_arg(void* slot) {
  if constexpr (std::is_pointer_v<P>) return static_cast<P>(slot);
  else return *static_cast<std::remove_reference_t<P>*>(slot);
}

// Threadgroup memory for [[threadgroup(i)]] parameters: one arena per OS thread, because an OS thread runs one
// threadgroup at a time.
inline void* threadgroup_arena(int index, uint32_t bytes) {
  static thread_local std::vector<unsigned char> arenas[31];
  std::vector<unsigned char>& arena = arenas[index];
  if (arena.size() < bytes) arena.resize(bytes);
  return arena.data();
}

// A builtin such as [[thread_position_in_grid]] converted to the parameter's declared type (uint, ushort2, uint3...).
template <class P> inline P builtin(uint32_t x, uint32_t y, uint32_t z) {
  using T = std::remove_cv_t<std::remove_reference_t<P>>;
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

// Runs every thread of threadgroups [first, end) in order, x fastest. The body is inlined; with no barriers in the
// kernel the innermost loop is a plain counted loop that the compiler can vectorise.
template <class Body>
inline void for_each_thread(const dispatch_t& d, uint64_t first, uint64_t end, Body&& body) {
  const uint64_t per_layer = uint64_t(d.groups[0]) * d.groups[1];
  for (uint64_t g = first; g < end; ++g) {
    group_ctx ctx;
    ctx.id[0] = uint32_t(g % d.groups[0]);
    ctx.id[1] = uint32_t((g / d.groups[0]) % d.groups[1]);
    ctx.id[2] = uint32_t(g / per_layer);
    for (int a = 0; a < 3; ++a) {
      ctx.origin[a] = ctx.id[a] * d.group[a];
      const uint32_t left = d.grid[a] - ctx.origin[a];
      ctx.size[a] = left < d.group[a] ? left : d.group[a];
    }
    const uint32_t x0 = ctx.origin[0], x1 = x0 + ctx.size[0];
    for (uint32_t z = ctx.origin[2]; z < ctx.origin[2] + ctx.size[2]; ++z)
      for (uint32_t y = ctx.origin[1]; y < ctx.origin[1] + ctx.size[1]; ++y)
        for (uint32_t x = x0; x < x1; ++x) body(ctx, x, y, z);
  }
}

}  // namespace mg

// Kernels with barriers, SIMD-group functions or threadgroup memory: mg::run_cooperative.
#include "_cooperative_cpu.h"
