#include <metal_stdlib>
using namespace metal;

// A threadgroup parameter the kernel never touches (as ggml's quantised mat-vec kernels declare one whose host
// code sets its length to 0): a SIMD-group sum per 32 threads, written by the first lane.
kernel void simd_sums_unused_scratch(device const float* in [[buffer(0)]],
                                     device float* sums [[buffer(1)]],
                                     threadgroup char* unused [[threadgroup(0)]],
                                     uint gid [[thread_position_in_grid]],
                                     uint lane [[thread_index_in_simdgroup]])
{
    const float total = simd_sum(in[gid]);
    if (lane == 0) {
        sums[gid / 32] = total;
    }
}
