#include <metal_stdlib>
using namespace metal;

// Each thread counts itself at its grid position; the barrier makes the kernel cooperative. Also records the
// threadgroup's real size, which is smaller at the grid's edges.
kernel void visit(device atomic_uint* visits [[buffer(0)]],
                  device uint* sizes [[buffer(1)]],
                  uint3 gid [[thread_position_in_grid]],
                  uint3 grid [[threads_per_grid]],
                  uint3 size [[threads_per_threadgroup]],
                  uint3 lid [[thread_position_in_threadgroup]],
                  uint index [[thread_index_in_threadgroup]])
{
    threadgroup uint seen[256];
    seen[index] = 1;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    uint total = 0;
    for (uint i = 0; i < size.x * size.y * size.z; ++i) {
        total += seen[i];
    }
    const uint linear = (gid.z * grid.y + gid.y) * grid.x + gid.x;
    atomic_fetch_add_explicit(&visits[linear], 1u, memory_order_relaxed);
    sizes[linear] = total == size.x * size.y * size.z && index == (lid.z * size.y + lid.y) * size.x + lid.x ? total : 0;
}

// Threads that return before a barrier that the others wait at: a deadlock.
kernel void early_return(device float* out [[buffer(0)]],
                         uint lid [[thread_index_in_threadgroup]])
{
    if (lid % 4 == 0) {
        return;
    }
    threadgroup_barrier(mem_flags::mem_device);
    out[lid] = 1.0f;
}

kernel void twice(device float* data [[buffer(0)]], uint gid [[thread_position_in_grid]])
{
    data[gid] = 2.0f * data[gid];
}
