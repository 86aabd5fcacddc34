#include <metal_stdlib>
using namespace metal;

constant constexpr uint BINS = 256;  // 12-bit samples, 16 values a bin

// Counts samples into BINS bins. Each threadgroup counts its share of the samples into its own bins in
// threadgroup memory, where atomic adds are cheap and few threads contend for one bin, then adds its bins to
// the device's with one atomic add each. The loops step by the number of threads, so any grid and threadgroup
// size counts every sample once.
kernel void histogram(device const ushort* samples [[buffer(0)]],
                      device atomic_uint* counts [[buffer(1)]],
                      constant uint& count [[buffer(2)]],
                      uint thread_id [[thread_position_in_grid]],
                      uint threads [[threads_per_grid]],
                      uint lane [[thread_index_in_threadgroup]],
                      uint group_size [[threads_per_threadgroup]])
{
    threadgroup atomic_uint local_counts[BINS];
    for (uint bin = lane; bin < BINS; bin += group_size) {
        atomic_store_explicit(&local_counts[bin], 0u, memory_order_relaxed);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint i = thread_id; i < count; i += threads) {
        uint bin = min(uint(samples[i]) / (4096 / BINS), BINS - 1);  // values past 12 bits go to the last bin
        atomic_fetch_add_explicit(&local_counts[bin], 1u, memory_order_relaxed);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint bin = lane; bin < BINS; bin += group_size) {
        uint n = atomic_load_explicit(&local_counts[bin], memory_order_relaxed);
        if (n != 0) {
            atomic_fetch_add_explicit(&counts[bin], n, memory_order_relaxed);
        }
    }
}
