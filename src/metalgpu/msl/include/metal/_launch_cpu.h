// Launch support for the CPU target, used by the wrappers that msl/translate.py emits after the user's code:
// the dispatch record, the binding metadata Python reads, argument conversion and the thread loop.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#define MG_EXPORT extern "C" __attribute__((visibility("default")))
// What `kernel` becomes: the wrapper's thread loop should see the kernel's body, to vectorise it.
#define MG_KERNEL __attribute__((always_inline)) inline

#include "_launch_common.h"

namespace mg {

// The dispatch record backends/cpu.py packs (msl/abi.py's CPU_DISPATCH_FIELDS): sizes in threads or threadgroups.
struct dispatch_t {
  uint32_t grid[3];    // threads per grid
  uint32_t group[3];   // requested threads per threadgroup
  uint32_t groups[3];  // threadgroups per grid
  uint32_t threadgroup_bytes[31];  // sizes of [[threadgroup(i)]] parameters
};

// Threadgroup memory for [[threadgroup(i)]] parameters: one arena per OS thread, because an OS thread runs one
// threadgroup at a time.
inline void* threadgroup_arena(int index, uint32_t bytes) {
  static thread_local std::vector<unsigned char> arenas[31];
  std::vector<unsigned char>& arena = arenas[index];
  if (arena.size() < bytes) arena.resize(bytes);
  return arena.data();
}

// Threadgroup number g of the dispatch, x fastest.
inline group_ctx group_at(const dispatch_t& d, uint64_t g) {
  group_ctx ctx;
  ctx.id[0] = uint32_t(g % d.groups[0]);
  ctx.id[1] = uint32_t((g / d.groups[0]) % d.groups[1]);
  ctx.id[2] = uint32_t(g / (uint64_t(d.groups[0]) * d.groups[1]));
  place_group(ctx, d.grid, d.group);
  return ctx;
}

// Runs every thread of threadgroups [first, end) in order, x fastest. The body is inlined; with no barriers in the
// kernel the innermost loop is a plain counted loop that the compiler can vectorise.
template <class Body>
inline void for_each_thread(const dispatch_t& d, uint64_t first, uint64_t end, Body&& body) {
  for (uint64_t g = first; g < end; ++g) {
    const group_ctx ctx = group_at(d, g);
    const uint32_t x0 = ctx.origin[0], x1 = x0 + ctx.size[0];
    for (uint32_t z = ctx.origin[2]; z < ctx.origin[2] + ctx.size[2]; ++z)
      for (uint32_t y = ctx.origin[1]; y < ctx.origin[1] + ctx.size[1]; ++y)
        for (uint32_t x = x0; x < x1; ++x) body(ctx, x, y, z);
  }
}

}  // namespace mg

// Kernels with barriers, SIMD-group functions or threadgroup memory: mg::run_cooperative.
#include "_cooperative_cpu.h"

// Last, before the kernel's own code: the C library's names that Metal lacks are the kernel's.
#include "_c_names.h"
