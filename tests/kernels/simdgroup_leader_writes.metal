// Apple's SIMD-groups run in lockstep: every lane reads a threadgroup value before lane 0, the conventional
// leader, overwrites it, with no barrier between (ggml's flash attention does both of these).
#include <metal_stdlib>
using namespace metal;

// After a SIMD-group meeting: every lane reads slot 0, then lane 0 overwrites it.
kernel void read_then_leader_writes(device float* out [[buffer(0)]],
                                    threadgroup float* slot [[threadgroup(0)]],
                                    ushort lane [[thread_index_in_simdgroup]],
                                    ushort sg [[simdgroup_index_in_threadgroup]]) {
    slot[sg * 32 + lane] = float(100 * sg + lane);
    simdgroup_barrier(mem_flags::mem_threadgroup);
    const float first = slot[sg * 32];
    if (lane == 0) {
        slot[sg * 32] = -1.0f;
    }
    out[sg * 32 + lane] = first;
}

// After a threadgroup barrier: SIMD-group 0 combines its pair of partial results with SIMD-group 1's, every lane
// reading both, and its lane 0 stores the combination over its own pair.
kernel void combine_then_leader_writes(device float* out [[buffer(0)]],
                                       threadgroup float* pairs [[threadgroup(0)]],
                                       ushort lane [[thread_index_in_simdgroup]],
                                       ushort sg [[simdgroup_index_in_threadgroup]]) {
    if (lane == 0) {
        pairs[2 * sg] = float(sg + 1);
        pairs[2 * sg + 1] = float(10 * (sg + 1));
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (sg == 0) {
        const float sum = pairs[0] + pairs[2];
        const float scale = pairs[1] * pairs[3];
        if (lane == 0) {
            pairs[0] = sum;
            pairs[1] = scale;
        }
        out[lane] = sum + scale;
    }
}
