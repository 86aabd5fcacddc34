// Launch support for the CUDA target, used by the wrappers that msl/translate.py emits after the user's code.
// One __global__ wrapper per kernel takes one parameter struct by value (packed once per binding plan on the
// host), computes Metal's builtins from blockIdx/threadIdx (and, for kernels whose threads never wait for each
// other, which of the block's threadgroups runs), skips threads outside the grid (Metal's non-uniform
// threadgroups) and calls the user's kernel.
#pragma once

#define MG_EXPORT extern "C"
#define MG_KERNEL __forceinline__

#include "_launch_common.h"

namespace mg {

// The launch record of one kernel, sized to it: launches are timed in microseconds and the driver copies the whole
// record each time, so a large record makes every launch slower (benchmarks/README.md). Slots covers the
// kernel's [[buffer(i)]] indices, Threadgroups its [[threadgroup(i)]] indices; ConstantBytes (0 or 1024) carries
// small constant arguments inline when the kernel has a `constant` or reference parameter (slot i then holds an
// offset into `constants`, and bit i of inline_mask is set). The fields every launch reads come first, in one
// cache line for kernels of a few buffers. msl/abi.py's CudaLaunchLayout gives the same offsets (tests/test_abi.py
// compares them), and each wrapper static_asserts the size it computes.
template <int Slots, int Threadgroups, int ConstantBytes>
struct launch_t {
  void* slots[Slots];
  uint64_t slot_bytes[Slots];  // bytes bound at each slot: a prefetch stays inside its buffer
  uint32_t grid[3];
  uint32_t group[3];
  uint32_t groups[3];
  uint32_t inline_mask;
  uint32_t groups_per_block;   // threadgroups along x that one block runs (mg::for_each_group): 1 or MG_GROUPS_PER_BLOCK
  uint32_t threadgroup_offset[Threadgroups > 0 ? Threadgroups : 1];
  alignas(16) unsigned char constants[ConstantBytes > 0 ? ConstantBytes : 1];
};

// The launch record stays in parameter space (__grid_constant__), so inline constants are read from there.
template <class L>
__device__ __forceinline__ void* slot(const L& d, int i) {
  if ((d.inline_mask >> i) & 1u) return const_cast<unsigned char*>(d.constants) + reinterpret_cast<uint64_t>(d.slots[i]);
  return d.slots[i];
}

// A slot that never holds an inline constant (msl/wrappers.py's cuda_launch_layout): a device address, and saying
// so lets the compiler emit global loads and stores rather than generic ones.
template <class L>
__device__ __forceinline__ void* global_slot(const L& d, int i) {
  void* p = d.slots[i];
  __builtin_assume(__isGlobal(p));
  return p;
}

// Asks L2 for the element at p, read from slot `slot`, unless the slot holds an inline constant (parameter space,
// not global memory) or p lies past the bytes bound there: a prefetch never leaves the buffer it names.
template <class L, class T>
__device__ __forceinline__ void prefetch_l2(const L& d, int slot, T* p) {
  const char* end = static_cast<const char*>(d.slots[slot]) + d.slot_bytes[slot];
  if (!((d.inline_mask >> slot) & 1u) && reinterpret_cast<const char*>(p + 1) <= end)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// Threadgroup (x, blockIdx.y, blockIdx.z) of the dispatch.
template <class L>
__device__ __forceinline__ group_ctx group_at(const L& d, uint32_t x) {
  group_ctx g;
  g.id[0] = x;
  g.id[1] = blockIdx.y;
  g.id[2] = blockIdx.z;
  place_group(g, d.grid, d.group);
  return g;
}
template <class L>
__device__ __forceinline__ group_ctx current_group(const L& d) { return group_at(d, blockIdx.x); }

// For kernels whose threads never wait for each other: the block runs d.groups_per_block threadgroups along x, one
// after the other, calling body(g, x, y, z) for each of its threads inside the grid; backends/cuda.py asks for
// several only when the grid still fills the GPU. A block whose threadgroups all lie whole inside the grid takes an
// unrolled path with no bounds test. Fewer, longer blocks alone still leave each thread one load in flight: the
// branches inside a body (cosf's slow path, say) keep the compiler from issuing the next threadgroups' loads before
// the current one's stores. So prefetch(x) first asks L2 for what the thread at grid position x of each next
// threadgroup will read of the inputs the kernel streams (msl/analysis.py's streamed_inputs); what each step gained
// is in benchmarks/README.md.
#define MG_GROUPS_PER_BLOCK 4
template <class L, class Body, class Prefetch>
__device__ __forceinline__ void for_each_group(const L& d, Body&& body, Prefetch&& prefetch) {
  const uint32_t per = d.groups_per_block;
  if (per == 1) {  // tested first: a small kernel's time is the chain of instructions before its first load
    const group_ctx g = current_group(d);
    const uint32_t x = g.origin[0] + threadIdx.x, y = g.origin[1] + threadIdx.y, z = g.origin[2] + threadIdx.z;
    if (x < d.grid[0] && y < d.grid[1] && z < d.grid[2]) body(g, x, y, z);  // Metal's partial edge threadgroups
    return;
  }
  const uint32_t first = blockIdx.x * per;
  if (per == MG_GROUPS_PER_BLOCK && uint64_t(first + MG_GROUPS_PER_BLOCK) * d.group[0] <= d.grid[0] &&
      (blockIdx.y + 1) * d.group[1] <= d.grid[1] && (blockIdx.z + 1) * d.group[2] <= d.grid[2]) {
#pragma unroll
    for (uint32_t k = 1; k < MG_GROUPS_PER_BLOCK; ++k) prefetch((first + k) * d.group[0] + threadIdx.x);
#pragma unroll
    for (uint32_t k = 0; k < MG_GROUPS_PER_BLOCK; ++k) {
      const group_ctx g = group_at(d, first + k);
      body(g, g.origin[0] + threadIdx.x, g.origin[1] + threadIdx.y, g.origin[2] + threadIdx.z);
    }
    return;
  }
#pragma unroll 1
  for (uint32_t k = 0; k < per && first + k < d.groups[0]; ++k) {
    const group_ctx g = group_at(d, first + k);
    const uint32_t x = g.origin[0] + threadIdx.x, y = g.origin[1] + threadIdx.y, z = g.origin[2] + threadIdx.z;
    if (x < d.grid[0] && y < d.grid[1] && z < d.grid[2]) body(g, x, y, z);  // Metal's partial edge threadgroups
  }
}

// Every kernel's first step: wait until the kernel before it in its stream or graph has finished and its writes are
// visible. A no-op for a launch that depends on its predecessor as usual; in a batch's graph (backends/cuda_graph.py)
// the edges are programmatic on sm_90 and later, so that the driver launches the next kernel while this one ends
// and the launch's own latency hides behind it. Nothing may come before it that reads or writes memory.
__device__ __forceinline__ void wait_for_predecessor() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

extern __shared__ unsigned char threadgroup_memory[];

// Where the [[threadgroup(i)]] parameter `index` starts in dynamic shared memory.
template <class L>
__device__ __forceinline__ void* threadgroup_parameter(const L& d, int index) {
  void* p = threadgroup_memory + d.threadgroup_offset[index];
  __builtin_assume(__isShared(p));  // shared loads and stores rather than generic ones
  return p;
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

// Last, before the kernel's own code: the C library's names that Metal lacks are the kernel's.
#include "_c_names.h"
