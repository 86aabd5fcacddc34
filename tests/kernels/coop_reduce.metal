#include <metal_stdlib>
using namespace metal;

// Tree reduction in a declared threadgroup array: one partial sum per threadgroup.
kernel void tree_sum(device const float* in [[buffer(0)]],
                     device float* partial [[buffer(1)]],
                     uint gid [[thread_position_in_grid]],
                     uint lid [[thread_index_in_threadgroup]],
                     uint group [[threadgroup_position_in_grid]],
                     uint size [[threads_per_threadgroup]])
{
    threadgroup float scratch[1024];
    scratch[lid] = in[gid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint stride = 512; stride > 0; stride >>= 1) {
        if (lid < stride && lid + stride < size) {
            scratch[lid] += scratch[lid + stride];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (lid == 0) {
        partial[group] = scratch[0];
    }
}

// The same through a [[threadgroup(0)]] parameter sized by the caller, and a helper that takes the pointer.
static void fold_half(threadgroup float* data, uint lid, uint stride)
{
    if (lid < stride) {
        data[lid] += data[lid + stride];
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
}

kernel void tree_sum_param(device const float* in [[buffer(0)]],
                           device float* partial [[buffer(1)]],
                           threadgroup float* scratch [[threadgroup(0)]],
                           uint gid [[thread_position_in_grid]],
                           uint lid [[thread_index_in_threadgroup]],
                           uint group [[threadgroup_position_in_grid]],
                           uint size [[threads_per_threadgroup]])
{
    scratch[lid] = in[gid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint stride = size / 2; stride > 0; stride >>= 1) {
        fold_half(scratch, lid, stride);
    }
    if (lid == 0) {
        partial[group] = scratch[0];
    }
}

// Two levels: simd_sum within each SIMD-group, then the first SIMD-group adds the SIMD-groups' sums.
kernel void simd_two_level(device const float* in [[buffer(0)]],
                           device float* partial [[buffer(1)]],
                           uint gid [[thread_position_in_grid]],
                           uint lane [[thread_index_in_simdgroup]],
                           uint simdgroup [[simdgroup_index_in_threadgroup]],
                           uint simdgroups [[simdgroups_per_threadgroup]],
                           uint group [[threadgroup_position_in_grid]])
{
    threadgroup float sums[32];
    float s = simd_sum(in[gid]);
    if (lane == 0) {
        sums[simdgroup] = s;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (simdgroup == 0) {
        float t = lane < simdgroups ? sums[lane] : 0.0f;
        t = simd_sum(t);
        if (lane == 0) {
            partial[group] = t;
        }
    }
}
