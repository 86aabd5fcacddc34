// Launch support for the CPU target, used by the wrappers that msl/translate.py emits after the user's code:
// the dispatch record, the binding metadata Python reads, argument conversion and the thread loop.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

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

// Threadgroup memory for [[threadgroup(i)]] parameters: one arena per index and OS thread, because an OS thread runs
// one threadgroup at a time. Each arena ends where an inaccessible page begins, so a kernel that uses more than the
// threadgroup_memory it was given (rounded up to 16 bytes, as Metal asks) faults instead of overwriting other memory.
struct threadgroup_arena_slot {
  unsigned char* guard;  // the inaccessible page after the arena
  std::size_t capacity;
};

// Sets `slot` to an arena of at least `bytes` (a whole number of pages) followed by an inaccessible page, freeing
// the one it held; returns the guard page, or null when no memory is left (the kernel then faults on first use).
__attribute__((noinline)) inline unsigned char* grow_arena(threadgroup_arena_slot& slot, std::size_t bytes) {
  const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
  const std::size_t size = (bytes + page - 1) / page * page;
  void* memory = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return nullptr;
  unsigned char* guard = static_cast<unsigned char*>(memory) + size;
  if (mprotect(guard, page, PROT_NONE) != 0) {
    munmap(memory, size + page);
    return nullptr;
  }
  if (slot.guard != nullptr) munmap(slot.guard - slot.capacity, slot.capacity + page);
  slot.guard = guard;
  slot.capacity = size;
  return guard;
}

}  // namespace mg

// The host's arenas (backends/cpu_thread_memory.cpp): this OS thread's 31 slots, freed when the thread ends. A weak
// reference, as for the fiber stacks: a thread_local with a destructor here would make the module refer to the
// C++ runtime, which a toolchain linking it statically copies into every module (the module check refuses that).
#if defined(__ELF__)
extern "C" __attribute__((weak, visibility("default"))) mg::threadgroup_arena_slot* mg_threadgroup_arenas();
#define MG_HOST_THREADGROUP_ARENAS 1
#endif

namespace mg {

inline threadgroup_arena_slot* this_thread_arenas() {
#ifdef MG_HOST_THREADGROUP_ARENAS
  if (mg_threadgroup_arenas != nullptr) return mg_threadgroup_arenas();
#endif
  static thread_local threadgroup_arena_slot own[31];  // loaded without the host: kept until the process ends
  return own;
}

inline void* threadgroup_arena(int index, uint32_t bytes) {
  threadgroup_arena_slot& slot = this_thread_arenas()[index];
  const std::size_t used = (std::size_t(bytes) + 15) & ~std::size_t(15);
  unsigned char* guard = slot.capacity >= used ? slot.guard : grow_arena(slot, used);
  return guard != nullptr ? guard - used : nullptr;
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
