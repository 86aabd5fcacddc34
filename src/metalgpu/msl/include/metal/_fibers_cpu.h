// metal/_fibers_cpu.h -- threadgroups as cooperative fibers on the CPU: the context switch, fiber stacks, the
// cooperative runner and threadgroup barriers. The SIMD-group and quad-group functions built on it are in
// _simdgroup_cpu.h.
//
// Kernels that use barriers, SIMD/quad functions or threadgroup memory (msl/analysis.py decides) run through
// mg::run_cooperative instead of mg::for_each_thread. One OS thread runs one threadgroup at a time; each thread of
// the group is a fiber with a stack of its own, and fibers switch only where a kernel waits:
//
//   threadgroup_barrier  the fiber counts itself in and switches to the next ready fiber of the group; the
//                        last one in releases all and carries on. A thread that returned counts as
//                        arrived, as on Apple's GPUs, where a barrier waits for the SIMD-groups still running:
//                        MLX's gemv returns whole SIMD-groups before a barrier that lane 0 of the others reaches.
//   simd_* / quad_*      a rendezvous of the SIMD-group's lanes at one call site (_simdgroup_cpu.h): each lane
//                        leaves a pointer to its argument and to its result slot; the lane that completes the set
//                        computes every lane's result. Active lanes are those that arrive. When no fiber of the
//                        group can run, the scheduler here releases waiting lanes with the lanes that did arrive
//                        (per call site): that is how divergent code (`if (lane < 16) simd_sum(x)`) and lanes that
//                        returned behave.
//
// Order: fibers run from the highest index down, and after a barrier releases them the highest goes first again;
// after a SIMD-group's rendezvous the other SIMD-groups go first, then its own lanes from the highest. So lane 0
// of each SIMD-group runs last between two meetings, and no SIMD-group runs far ahead of the others. Apple's SIMD-groups run in
// lockstep, and kernels count on it with no barrier where every lane reads a threadgroup value and then the
// leading lane (lane 0, by convention) overwrites it: ggml's flash attention reads the partial sums of its
// SIMD-group before lane 0 stores the combined ones in the same slots. Lanes as fibers cannot interleave
// statement by statement; running the writer last keeps that pattern right.
//
// The switch is a few lines of assembly (x86-64 System V, aarch64): callee-saved registers and the stack pointer,
// no signal mask, so a switch costs a few nanoseconds (ucontext's swapcontext makes a system call each time).
// Not saved: the x87 control word and MXCSR/FPCR, which kernels do not change.
//
// Stacks: kStackBytes each, below an inaccessible guard page, allocated once per OS thread (grown to the largest
// threadgroup seen) and reused, by the host for every module (mg_fiber_stacks in backends/cpu_thread_memory.cpp).
// A kernel overflowing its stack hits the guard page and faults, which the fault guard (backends/cpu_guard.cpp,
// running its handler on sigaltstack) reports as a DispatchError.
#pragma once
#include <cstdint>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

#include "_group.h"

namespace mg {
namespace coop {

constexpr uint32_t kMaxThreads = 1024;          // Metal's limit for a threadgroup
constexpr std::size_t kStackBytes = 64 * 1024;  // per thread of a cooperative kernel
using group::kSimdWidth;
using group::kNone;

// What a cooperative run returns through mg_run_<i>; backends/cpu.py turns these into DispatchError messages.
// Below 256: the signal number from the fault guard.
enum status : int { status_ok = 0, status_deadlock = 1001, status_no_stack = 1002 };

enum fiber_state : uint32_t { ready, at_barrier, at_simd, finished };

// Where a SIMD-group function was called: lanes meet only lanes at the same call site.
struct site {
    const char* file;
    uint32_t line_column;
    bool operator==(const site& o) const { return file == o.file && line_column == o.line_column; }
    bool operator!=(const site& o) const { return !(*this == o); }
};
#if defined(__has_builtin)
#  if __has_builtin(__builtin_COLUMN)
#    define MG_CALL_COLUMN __builtin_COLUMN()
#  endif
#endif
#if !defined(MG_CALL_COLUMN)
#  define MG_CALL_COLUMN 0u  // g++ has no __builtin_COLUMN: calls on one line count as one site
#endif
#define MG_CALL_SITE ::mg::coop::site{__builtin_FILE(), __builtin_LINE() * 4096u + MG_CALL_COLUMN}

struct group_state;
using complete_fn = void (*)(group_state& g, uint32_t simdgroup, uint32_t lanes);

struct fiber {
    void* sp;              // saved stack pointer while switched out
    fiber_state state;
    site where;            // at_simd: the call site
    complete_fn complete;  // at_simd: computes the results of every lane at this site
    const void* in;        // at_simd: this lane's argument
    void* out;             // at_simd: this lane's result
};

struct simdgroup_state {
    uint32_t live;     // lanes that have not returned
    uint32_t waiting;  // lanes blocked in a SIMD-group function
    site where;        // call site of the first waiting lane
    bool mixed;        // waiting lanes are at more than one call site
};

// Everything one OS thread needs to run one threadgroup (about 60 KB, on the stack of run_cooperative).
struct group_state {
    fiber fibers[kMaxThreads];
    simdgroup_state simd[kMaxThreads / kSimdWidth];
    uint32_t count;       // threads in this threadgroup
    uint32_t finished;    // threads that returned
    uint32_t at_barrier;  // threads waiting at the threadgroup barrier
    uint32_t current;     // the running fiber
    void* main_sp;        // the scheduler's context
    const void* ctx;      // the group_ctx of the launch header
    void (*invoke)(void* body, const void* ctx, uint32_t linear);
    void* body;
};

inline thread_local group_state* t_group = nullptr;  // set while a cooperative threadgroup runs on this thread

}  // namespace coop
}  // namespace mg

// ---- the context switch: mg_coop_switch(&save_sp, next_sp) saves the callee-saved registers on the current
// stack, stores the stack pointer to *save_sp, loads next_sp and restores what was saved there.
extern "C" void mg_coop_switch(void** save_sp, void* next_sp);

#if defined(__APPLE__)
#  define MG_ASM_SYMBOL "_mg_coop_switch"
#  define MG_ASM_HEADER ".private_extern _mg_coop_switch\n .globl _mg_coop_switch\n .p2align 4\n"
#  define MG_ASM_FOOTER ""
#else
#  define MG_ASM_SYMBOL "mg_coop_switch"
#  define MG_ASM_HEADER ".hidden mg_coop_switch\n .globl mg_coop_switch\n .type mg_coop_switch, %function\n .p2align 4\n"
#  define MG_ASM_FOOTER ".size mg_coop_switch, .-mg_coop_switch\n"
#endif

#if defined(__x86_64__)
// System V: rbx, rbp, r12-r15 are callee-saved; arguments in rdi (save_sp), rsi (next_sp).
asm(".text\n" MG_ASM_HEADER MG_ASM_SYMBOL ":\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n" MG_ASM_FOOTER);
namespace mg { namespace coop {
constexpr int kSavedWords = 6;  // registers pushed below the return address
} }
#elif defined(__aarch64__)
// AAPCS64: x19-x28, x29 (frame), x30 (link) and the low halves of v8-v15 are callee-saved; x0, x1 are arguments.
asm(".text\n" MG_ASM_HEADER MG_ASM_SYMBOL ":\n"
    "  sub sp, sp, #160\n"
    "  stp x19, x20, [sp, #0]\n  stp x21, x22, [sp, #16]\n  stp x23, x24, [sp, #32]\n"
    "  stp x25, x26, [sp, #48]\n  stp x27, x28, [sp, #64]\n  stp x29, x30, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n  stp d12, d13, [sp, #128]\n  stp d14, d15, [sp, #144]\n"
    "  mov x9, sp\n  str x9, [x0]\n"
    "  mov sp, x1\n"
    "  ldp x19, x20, [sp, #0]\n  ldp x21, x22, [sp, #16]\n  ldp x23, x24, [sp, #32]\n"
    "  ldp x25, x26, [sp, #48]\n  ldp x27, x28, [sp, #64]\n  ldp x29, x30, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n  ldp d12, d13, [sp, #128]\n  ldp d14, d15, [sp, #144]\n"
    "  add sp, sp, #160\n"
    "  ret\n" MG_ASM_FOOTER);
#else
#  error "metalgpu: cooperative kernels (barriers, SIMD-group functions) need x86-64 or aarch64 on the CPU backend"
#endif
#undef MG_ASM_SYMBOL
#undef MG_ASM_HEADER
#undef MG_ASM_FOOTER

namespace mg {
namespace coop {

// ---- fiber stacks ---------------------------------------------------------------------------------------------

}  // namespace coop
}  // namespace mg

// The host's stacks (backends/cpu_thread_memory.cpp), shared by every module on an OS thread; null where the module was
// loaded without it (then each module keeps stacks of its own). ELF only: Mach-O has no weak undefined symbols
// without extra link flags.
#if defined(__ELF__)
extern "C" __attribute__((weak, visibility("default"))) unsigned char* mg_fiber_stacks(uint32_t count,
                                                                                      std::size_t stack_bytes,
                                                                                      std::size_t* stride);
#define MG_HOST_FIBER_STACKS 1
#endif

namespace mg {
namespace coop {

struct stack_pool {
    unsigned char* base = nullptr;
    std::size_t capacity = 0;  // stacks mapped by this module (none while the host's are used)
    std::size_t stride = 0;    // guard page + stack

    bool reserve(uint32_t count) {
#ifdef MG_HOST_FIBER_STACKS
        if (mg_fiber_stacks != nullptr) {  // asked again each time: another module may have grown them
            base = mg_fiber_stacks(count, kStackBytes, &stride);
            return base != nullptr;
        }
#endif
        if (count <= capacity) return true;
        const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
        std::size_t want = capacity ? capacity * 2 : 64;
        while (want < count) want *= 2;
        if (want > kMaxThreads) want = kMaxThreads;
        const std::size_t new_stride = page + kStackBytes;
        void* memory = mmap(nullptr, want * new_stride, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (memory == MAP_FAILED) return false;
        unsigned char* bytes = static_cast<unsigned char*>(memory);
        for (std::size_t i = 0; i < want; ++i) mprotect(bytes + i * new_stride, page, PROT_NONE);
        release();
        base = bytes;
        capacity = want;
        stride = new_stride;
        return true;
    }
    // The highest address of stack i (stacks grow down towards their guard page).
    unsigned char* top(uint32_t i) const { return base + (std::size_t(i) + 1) * stride; }
    void release() {
        if (base != nullptr && capacity != 0) munmap(base, capacity * stride);
        base = nullptr;
        capacity = 0;
    }
};

// This OS thread's stacks. Trivially destructible on purpose: a thread_local with a destructor, like memory from
// operator new, makes the module refer to the C++ runtime, which a toolchain linking it statically would copy into
// every module with its malloc and stdio (the module check refuses those). With the host's stacks nothing is
// kept here; a module loaded without the host keeps its own until the process ends.
inline stack_pool& this_thread_stacks() {
    static thread_local stack_pool stacks;
    return stacks;
}

// ---- scheduling -----------------------------------------------------------------------------------------------

// The next ready fiber after `from`, in descending index order, wrapping around; kNone if there is none.
inline uint32_t next_ready(const group_state& g, uint32_t from) {
    for (uint32_t i = from < g.count ? from : g.count; i-- > 0;)
        if (g.fibers[i].state == ready) return i;
    for (uint32_t i = g.count; i-- > from;)
        if (g.fibers[i].state == ready) return i;
    return kNone;
}

// The ready fiber with the highest index; kNone if there is none.
inline uint32_t highest_ready(const group_state& g) { return next_ready(g, g.count); }

// Leaves the running fiber (its state already says why) for the next ready one, or for the scheduler.
inline void yield_from(group_state& g, uint32_t self) {
    const uint32_t next = next_ready(g, self);
    g.current = next;
    mg_coop_switch(&g.fibers[self].sp, next == kNone ? g.main_sp : g.fibers[next].sp);
}

// Every thread waiting at the threadgroup barrier goes on.
inline void release_barrier(group_state& g) {
    g.at_barrier = 0;
    for (uint32_t i = 0; i < g.count; ++i)
        if (g.fibers[i].state == at_barrier) g.fibers[i].state = ready;
}

// The fiber that released a barrier or a rendezvous (ready again, as every fiber it released) lets the highest
// ready fiber run first: the order of the top of this file, whichever lane arrived last.
inline void run_highest_first(group_state& g, uint32_t self) {
    const uint32_t next = highest_ready(g);
    if (next == self || next == kNone) return;
    g.current = next;
    mg_coop_switch(&g.fibers[self].sp, g.fibers[next].sp);
}

// After a SIMD-group's lanes meet (a SIMD-group function), the other SIMD-groups go first, from the next lower one
// down and round, each from its highest ready lane; this one's lanes last. Apple's SIMD-groups run side by side, so
// each reaches its next meeting before another runs far past its own: PyTorch's int8 matrix product loads a
// threadgroup tile in every SIMD-group before any of them stores over it, with no barrier between.
inline void run_other_simdgroups_first(group_state& g, uint32_t self) {
    const uint32_t next = next_ready(g, self / kSimdWidth * kSimdWidth);
    if (next == self || next == kNone) return;
    g.current = next;
    mg_coop_switch(&g.fibers[self].sp, g.fibers[next].sp);
}

[[noreturn]] inline void fiber_main() {
    group_state& g = *t_group;
    const uint32_t self = g.current;
    g.invoke(g.body, g.ctx, self);
    g.fibers[self].state = finished;
    g.finished += 1;
    g.simd[self / kSimdWidth].live -= 1;
    if (g.at_barrier > 0 && g.at_barrier + g.finished == g.count) {  // the last one out: the others go on,
        release_barrier(g);                                          // the highest first
        g.current = highest_ready(g);
        mg_coop_switch(&g.fibers[self].sp, g.fibers[g.current].sp);
        __builtin_unreachable();
    }
    yield_from(g, self);
    __builtin_unreachable();
}

// A fresh stack whose first switch "returns" into fiber_main.
inline void* initial_frame(unsigned char* top) {
    uintptr_t* sp = reinterpret_cast<uintptr_t*>(top);
#if defined(__x86_64__)
    *--sp = 0;                                          // fiber_main's return address: never used
    *--sp = reinterpret_cast<uintptr_t>(&fiber_main);   // where mg_coop_switch's `ret` goes
    for (int i = 0; i < kSavedWords; ++i) *--sp = 0;    // rbp rbx r12-r15
#else
    sp -= 20;                                           // the 160-byte frame of mg_coop_switch
    for (int i = 0; i < 20; ++i) sp[i] = 0;
    sp[11] = reinterpret_cast<uintptr_t>(&fiber_main);  // x30, the link register, at offset 88
#endif
    return sp;
}

// Every lane of simdgroup `sg` waiting in a SIMD-group function is released: lanes at the same call site form one
// set of active lanes. Used when nothing else in the threadgroup can run.
inline void release_waiting_lanes(group_state& g, uint32_t sg) {
    const uint32_t first = sg * kSimdWidth;
    const uint32_t end = first + kSimdWidth < g.count ? first + kSimdWidth : g.count;
    for (;;) {
        uint32_t leader = kNone;
        for (uint32_t i = first; i < end; ++i)
            if (g.fibers[i].state == at_simd) { leader = i; break; }
        if (leader == kNone) break;
        uint32_t lanes = 0;
        for (uint32_t i = first; i < end; ++i)
            if (g.fibers[i].state == at_simd && g.fibers[i].where == g.fibers[leader].where)
                lanes |= 1u << (i - first);
        g.fibers[leader].complete(g, sg, lanes);
    }
    g.simd[sg].waiting = 0;
    g.simd[sg].mixed = false;
}

// Runs the group's fibers until all have returned. Returns status_ok, or status_deadlock with the group stuck.
inline int schedule(group_state& g) {
    for (;;) {
        const uint32_t next = highest_ready(g);
        if (next != kNone) {
            g.current = next;
            mg_coop_switch(&g.main_sp, g.fibers[next].sp);
            continue;
        }
        if (g.finished == g.count) return status_ok;
        bool released = false;
        for (uint32_t sg = 0; sg * kSimdWidth < g.count; ++sg) {
            if (g.simd[sg].waiting > 0) {
                release_waiting_lanes(g, sg);
                released = true;
            }
        }
        if (!released) return status_deadlock;  // cannot happen while every wait ends once the others are in
    }
}

// ---- barriers -------------------------------------------------------------------------------------------------

inline void threadgroup_barrier() {
    group_state* g = t_group;
    if (g == nullptr) return;  // not in a cooperative run: one thread at a time, nothing to wait for
    const uint32_t self = g->current;
    if (g->at_barrier + 1 + g->finished == g->count) {  // the last thread still running: all go on
        release_barrier(*g);
        run_highest_first(*g, self);
        return;
    }
    g->at_barrier += 1;
    g->fibers[self].state = at_barrier;
    yield_from(*g, self);
}

}  // namespace coop
}  // namespace mg

namespace metal {

// ---- barriers -------------------------------------------------------------------------------------------------
// Every thread of the threadgroup that has not returned reaches the barrier before any passes it. Memory is shared
// by all fibers of an OS thread, so the flags need no action.
inline void threadgroup_barrier(mem_flags = mem_flags::mem_none) { mg::coop::threadgroup_barrier(); }

}  // namespace metal

namespace mg {

// Runs threadgroups [first, end) of the dispatch as cooperative fibers (see the top of this file). Returns
// coop::status_ok, or an error status with report = {returned threads, threads, group x, y, z}.
template <class Body>
inline int run_cooperative(const dispatch_t& d, uint64_t first, uint64_t end, Body&& body, uint32_t* report) {
    using B = std::remove_reference_t<Body>;
    coop::stack_pool& stacks = coop::this_thread_stacks();
    coop::group_state g;
    group_ctx ctx;
    g.ctx = &ctx;
    g.body = const_cast<void*>(static_cast<const void*>(&body));
    g.invoke = [](void* b, const void* c, uint32_t linear) {
        const group_ctx& gc = *static_cast<const group_ctx*>(c);
        const uint32_t x = linear % gc.size[0], rest = linear / gc.size[0];
        const uint32_t y = rest % gc.size[1], z = rest / gc.size[1];
        (*static_cast<B*>(b))(gc, gc.origin[0] + x, gc.origin[1] + y, gc.origin[2] + z);
    };
    for (uint64_t group = first; group < end; ++group) {
        ctx = group_at(d, group);
        const uint32_t count = ctx.size[0] * ctx.size[1] * ctx.size[2];
        if (count > coop::kMaxThreads || !stacks.reserve(count)) return coop::status_no_stack;
        g.count = count;
        g.finished = 0;
        g.at_barrier = 0;
        for (uint32_t i = 0; i < count; ++i) {
            g.fibers[i].sp = coop::initial_frame(stacks.top(i));
            g.fibers[i].state = coop::ready;
        }
        for (uint32_t sg = 0; sg * coop::kSimdWidth < count; ++sg) {
            const uint32_t left = count - sg * coop::kSimdWidth;
            g.simd[sg] = {left < coop::kSimdWidth ? left : coop::kSimdWidth, 0, {nullptr, 0}, false};
        }
        coop::t_group = &g;
        const int status = coop::schedule(g);
        coop::t_group = nullptr;
        if (status != coop::status_ok) {
            report[0] = g.finished;
            report[1] = g.count;
            report[2] = ctx.id[0];
            report[3] = ctx.id[1];
            report[4] = ctx.id[2];
            return status;
        }
    }
    return coop::status_ok;
}

}  // namespace mg
