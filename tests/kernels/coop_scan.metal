#include <metal_stdlib>
using namespace metal;

// Hillis-Steele inclusive scan of each threadgroup's slice, double-buffered in threadgroup memory.
kernel void hillis_steele(device const int* in [[buffer(0)]],
                          device int* out [[buffer(1)]],
                          uint gid [[thread_position_in_grid]],
                          uint lid [[thread_index_in_threadgroup]],
                          uint size [[threads_per_threadgroup]])
{
    threadgroup int buffers[2][1024];
    uint source = 0;
    buffers[0][lid] = in[gid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint offset = 1; offset < size; offset <<= 1) {
        const int value = buffers[source][lid];
        buffers[1 - source][lid] = lid >= offset ? value + buffers[source][lid - offset] : value;
        source = 1 - source;
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    out[gid] = buffers[source][lid];
}
