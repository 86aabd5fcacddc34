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

#include "_launch_common.h"

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

__device__ __forceinline__ group_ctx current_group(const launch_t& d) {
  group_ctx g;
  g.id[0] = blockIdx.x;
  g.id[1] = blockIdx.y;
  g.id[2] = blockIdx.z;
  place_group(g, d.grid, d.group);
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
#if defined(MG_DEBUG_BOUNDS)
#include "_debug_cuda.h"
#endif
