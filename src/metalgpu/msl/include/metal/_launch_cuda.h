// Launch support for the CUDA target, used by the wrappers that msl/translate.py emits after the user's code.
// One __global__ wrapper per kernel takes one parameter struct by value (packed once per binding plan on the
// host), computes Metal's builtins from blockIdx/threadIdx, skips threads outside the grid (Metal's
// non-uniform threadgroups) and calls the user's kernel.
#pragma once

// NVRTC has no <cstdint>; the wrappers need these three.
typedef int int32_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;

#define MG_EXPORT extern "C"
#define MG_KERNEL __forceinline__

namespace mg {

// Mirrors backends/cuda.py's _LAUNCH_DTYPE: 31 buffer addresses, grid, group, groups, the byte offsets of the
// [[threadgroup(i)]] parameters inside dynamic shared memory, and small constant arguments carried inline (slot
// i then holds an offset into `constants`, and bit i of inline_mask is set).
struct launch_t {
  void* slots[31];
  uint32_t grid[3];
  uint32_t group[3];
  uint32_t groups[3];
  uint32_t threadgroup_offset[31];
  uint32_t inline_mask;
  uint32_t reserved;
  alignas(16) unsigned char constants[1024];
};

// Every member is naturally aligned and only `constants` could be preceded by padding, so the size pins every
// offset (grid 248, threadgroup_offset 284, inline_mask 408, constants 416). NVRTC 13.0 has no __builtin_offsetof.
static_assert(sizeof(launch_t) == 416 + 1024 && alignof(launch_t) == 16,
              "launch_t must match _LAUNCH_DTYPE in backends/cuda.py");

// The launch record stays in parameter space (__grid_constant__), so inline constants are read from there.
__device__ __forceinline__ void* slot(const launch_t& d, int i) {
  if ((d.inline_mask >> i) & 1u) return const_cast<unsigned char*>(d.constants) + reinterpret_cast<uint64_t>(d.slots[i]);
  return d.slots[i];
}

enum binding_kind : int32_t { bind_buffer = 0, bind_threadgroup = 1, bind_builtin = 2 };
enum scalar_kind : int32_t { kind_other = 0, kind_signed = 1, kind_unsigned = 2, kind_float = 3, kind_bool = 4 };

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

template <class P> __device__ __forceinline__ P buffer_arg(void* slot) {
  if constexpr (is_pointer_v<P>) return static_cast<P>(slot);
  else return *static_cast<typename remove_ref<P>::type*>(slot);
}

template <class P> __device__ __forceinline__ P builtin(uint32_t x, uint32_t y, uint32_t z) {
  using T = typename const_info<typename remove_ref<P>::type>::bare;
  using E = typename metal::vec_traits<T>::type;
  constexpr int lanes = metal::vec_traits<T>::size;
  if constexpr (lanes == 1) return T(x);
  else if constexpr (lanes == 2) return T(E(x), E(y));
  else return T(E(x), E(y), E(z));
}

struct group_ctx {
  uint32_t id[3];
  uint32_t origin[3];
  uint32_t size[3];
};

__device__ __forceinline__ group_ctx current_group(const launch_t& d) {
  group_ctx g;
  const uint32_t id[3] = {blockIdx.x, blockIdx.y, blockIdx.z};
  for (int a = 0; a < 3; ++a) {
    g.id[a] = id[a];
    g.origin[a] = id[a] * d.group[a];
    const uint32_t left = d.grid[a] - g.origin[a];
    g.size[a] = left < d.group[a] ? left : d.group[a];
  }
  return g;
}

extern __shared__ unsigned char threadgroup_memory[];

// Where the [[threadgroup(i)]] parameter `index` starts in dynamic shared memory.
__device__ __forceinline__ void* threadgroup_parameter(const launch_t& d, int index) {
  return threadgroup_memory + d.threadgroup_offset[index];
}

// A thread's place among its block's threads in the order CUDA forms warps: x fastest, over the full block shape.
// thread_index_in_simdgroup and the other SIMD-group and quad-group builtins come from it, so that they name the
// lanes that the SIMD-group functions exchange values between (see _cooperative_cuda.h).
__device__ __forceinline__ uint32_t warp_order_index() {
  return (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
}
// The same index of the group's last thread: a partial group at the grid's edge has SIMD-groups up to this one's.
__device__ __forceinline__ uint32_t last_warp_order_index(const group_ctx& g) {
  return ((g.size[2] - 1) * blockDim.y + (g.size[1] - 1)) * blockDim.x + (g.size[0] - 1);
}

}  // namespace mg

#include "_cooperative_cuda.h"
