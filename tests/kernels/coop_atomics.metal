#include <metal_stdlib>
using namespace metal;

// Every thread adds to one of a few bins: heavily contended device atomics.
kernel void histogram(device const uint* values [[buffer(0)]],
                      device atomic_uint* bins [[buffer(1)]],
                      constant uint& bin_count [[buffer(2)]],
                      uint gid [[thread_position_in_grid]])
{
    atomic_fetch_add_explicit(&bins[values[gid] % bin_count], 1u, memory_order_relaxed);
}

// The same with a per-threadgroup histogram in threadgroup atomics, merged into device memory.
kernel void histogram_local(device const uint* values [[buffer(0)]],
                            device atomic_uint* bins [[buffer(1)]],
                            constant uint& bin_count [[buffer(2)]],
                            constant uint& n [[buffer(3)]],
                            uint gid [[thread_position_in_grid]],
                            uint lid [[thread_index_in_threadgroup]],
                            uint size [[threads_per_threadgroup]])
{
    threadgroup atomic_uint local[64];
    for (uint i = lid; i < bin_count; i += size) {
        atomic_store_explicit(&local[i], 0u, memory_order_relaxed);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (gid < n) {
        atomic_fetch_add_explicit(&local[values[gid] % bin_count], 1u, memory_order_relaxed);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint i = lid; i < bin_count; i += size) {
        uint count = atomic_load_explicit(&local[i], memory_order_relaxed);
        if (count != 0) {
            atomic_fetch_add_explicit(&bins[i], count, memory_order_relaxed);
        }
    }
}

// Stream compaction: each kept element takes a ticket (its output slot) from one counter.
kernel void compact(device const int* in [[buffer(0)]],
                    device int* out [[buffer(1)]],
                    device atomic_uint* counter [[buffer(2)]],
                    uint gid [[thread_position_in_grid]])
{
    const int value = in[gid];
    if (value % 3 == 0) {
        const uint ticket = atomic_fetch_add_explicit(counter, 1u, memory_order_relaxed);
        out[ticket] = value;
    }
}

// The other operations, one thread per case; 64-bit min/max and float add from many threads.
kernel void atomic_ops(device atomic_int* ints [[buffer(0)]],
                       device atomic_float* total [[buffer(1)]],
                       device atomic_ulong* extremes [[buffer(2)]],
                       device atomic_uint* flags [[buffer(3)]],
                       uint gid [[thread_position_in_grid]])
{
    atomic_fetch_add_explicit(total, 0.5f, memory_order_relaxed);
    atomic_fetch_min_explicit(&ints[0], int(gid) - 1000, memory_order_relaxed);
    atomic_fetch_max_explicit(&ints[1], int(gid), memory_order_relaxed);
    atomic_fetch_sub_explicit(&ints[2], 2, memory_order_relaxed);
    atomic_fetch_or_explicit(&flags[0], 1u << (gid % 32), memory_order_relaxed);
    atomic_fetch_xor_explicit(&flags[1], 1u, memory_order_relaxed);
    atomic_fetch_and_explicit(&flags[2], ~(1u << (gid % 32)), memory_order_relaxed);
    atomic_max_explicit(&extremes[0], ulong(gid) << 40, memory_order_relaxed);
    atomic_min_explicit(&extremes[1], (ulong(gid) << 40) + 7ul, memory_order_relaxed);
    int expected = atomic_load_explicit(&ints[3], memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&ints[3], &expected, expected + 3,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    if (gid == 0) {
        int old = atomic_exchange_explicit(&ints[4], 77, memory_order_relaxed);
        atomic_store_explicit(&ints[5], old, memory_order_relaxed);
    }
}
