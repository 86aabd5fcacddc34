// Per-thread memory of the native runner that kernel modules borrow: fiber stacks for cooperative kernels and
// threadgroup memory arenas, each below a guard page. backends/cpu.py compiles this file after cpu_guard.cpp, as one
// translation unit, and loads the result into the global scope, where the modules'
// weak references (mg_fiber_stacks, mg_threadgroup_arenas) find it.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

// Fiber stacks for cooperative kernels (metal/_fibers_cpu.h), one pool per OS thread for every loaded module:
// each stack below an inaccessible guard page, so that two mappings a stack. Kept by each module, they grew with
// the modules times the threads and ran into the kernel's limit on mappings (vm.max_map_count) after a few hundred
// libraries.
namespace {

struct StackPool {
  unsigned char* base = nullptr;
  std::size_t count = 0;
  std::size_t stride = 0;
  ~StackPool() {
    if (base != nullptr) munmap(base, count * stride);
  }
};
thread_local StackPool t_stacks;

}  // namespace

// The base of at least `count` stacks of `stack_bytes` each, `*stride` apart (guard page first), or nullptr when
// they cannot be mapped. Valid until the next call on this thread.
extern "C" __attribute__((visibility("default"))) unsigned char* mg_fiber_stacks(uint32_t count,
                                                                                std::size_t stack_bytes,
                                                                                std::size_t* stride) {
  StackPool& pool = t_stacks;
  const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
  const std::size_t want_stride = page + (stack_bytes + page - 1) / page * page;
  if (pool.base == nullptr || pool.count < count || pool.stride != want_stride) {
    std::size_t want = pool.count != 0 && pool.stride == want_stride ? pool.count * 2 : 64;
    while (want < count) want *= 2;
    void* memory = mmap(nullptr, want * want_stride, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) return nullptr;
    unsigned char* bytes = static_cast<unsigned char*>(memory);
    for (std::size_t i = 0; i < want; ++i) mprotect(bytes + i * want_stride, page, PROT_NONE);
    if (pool.base != nullptr) munmap(pool.base, pool.count * pool.stride);
    pool.base = bytes;
    pool.count = want;
    pool.stride = want_stride;
  }
  *stride = pool.stride;
  return pool.base;
}

// Threadgroup memory arenas (metal/_launch_cpu.h's mg::threadgroup_arena): 31 slots per OS thread, each a
// {guard page, capacity} pair laid out as mg::threadgroup_arena_slot, unmapped when the thread ends.
namespace {

struct ArenaSlots {
  struct Slot {
    unsigned char* guard;
    std::size_t capacity;
  } slots[31] = {};
  ~ArenaSlots() {
    const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
    for (Slot& slot : slots)
      if (slot.guard != nullptr) munmap(slot.guard - slot.capacity, slot.capacity + page);
  }
};
thread_local ArenaSlots t_arenas;

}  // namespace

extern "C" __attribute__((visibility("default"))) void* mg_threadgroup_arenas() { return t_arenas.slots; }
