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

// Threads that return before a barrier the others wait at: the barrier waits only for the threads still running,
// as on Apple's GPUs. Each remaining thread reads what a neighbour stored before the barrier.
kernel void early_return(device float* out [[buffer(0)]],
                         uint lid [[thread_index_in_threadgroup]],
                         uint size [[threads_per_threadgroup]])
{
    threadgroup float stored[64];
    if (lid % 4 == 0) {
        return;
    }
    stored[lid] = float(lid);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    const uint neighbour = lid % 4 == 3 ? lid - 2 : lid + 1;
    out[lid] = stored[neighbour];
}

// The pattern of MLX's gemv: SIMD-groups past the data return at once, then only lane 0 of each other SIMD-group
// stores its partial result and waits at a barrier, while its other lanes go on and return; SIMD-group 0's lane 0
// then adds up what the others stored.
kernel void lane_zero_barrier(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                              constant uint& live_groups [[buffer(2)]],
                              uint lane [[thread_index_in_simdgroup]],
                              uint sg [[simdgroup_index_in_threadgroup]])
{
    threadgroup float partial[8];
    if (sg >= live_groups) {
        return;
    }
    const float sum = simd_sum(in[sg * 32 + lane]);
    if (lane == 0) {
        partial[sg] = sum;
        threadgroup_barrier(mem_flags::mem_none);
        if (sg == 0) {
            float total = 0.0f;
            for (uint g = 0; g < live_groups; ++g) {
                total += partial[g];
            }
            out[0] = total;
        }
    }
}

kernel void twice(device float* data [[buffer(0)]], uint gid [[thread_position_in_grid]])
{
    data[gid] = 2.0f * data[gid];
}
