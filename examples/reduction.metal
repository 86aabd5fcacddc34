#include <metal_stdlib>
using namespace metal;

// One sum per threadgroup of count floats. Each thread first adds its share of the values (thread t takes
// t, t + threads, t + 2 threads, ...: neighbouring threads read neighbouring floats); then the 32 lanes of each
// SIMD-group add their sums with simd_sum, which exchanges registers and needs no memory or barrier; then the
// first SIMD-group adds the SIMD-groups' sums, kept in threadgroup memory. Run it again over the partial sums
// with one threadgroup to get the total.
kernel void sum_partials(device const float* values [[buffer(0)]],
                         device float* partial_sums [[buffer(1)]],
                         constant uint& count [[buffer(2)]],
                         uint thread_id [[thread_position_in_grid]],
                         uint threads [[threads_per_grid]],
                         uint group [[threadgroup_position_in_grid]],
                         uint lane [[thread_index_in_simdgroup]],
                         uint simdgroup [[simdgroup_index_in_threadgroup]],
                         uint simdgroups [[simdgroups_per_threadgroup]])
{
    threadgroup float simdgroup_sums[32];  // a threadgroup holds at most 1024 threads: 32 SIMD-groups
    float total = 0.0f;
    for (uint i = thread_id; i < count; i += threads) {
        total += values[i];
    }
    total = simd_sum(total);
    if (lane == 0) {
        simdgroup_sums[simdgroup] = total;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (simdgroup == 0) {
        total = simd_sum(lane < simdgroups ? simdgroup_sums[lane] : 0.0f);
        if (lane == 0) {
            partial_sums[group] = total;
        }
    }
}
