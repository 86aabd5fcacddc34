// Threadgroup arrays in sibling blocks (each 20 KiB: together over the 32 KiB a threadgroup has, but never in
// scope at once), one with an initialiser (dropped: threadgroup memory starts undefined), one after a label.
#include <metal_stdlib>
using namespace metal;

template <int N>
void reverse_through(threadgroup float* buffer, device float* out, uint lid, uint size) {
    buffer[lid] = out[lid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[lid] = buffer[size - 1 - lid] + N;
}

kernel void threadgroup_scopes(device float* out [[buffer(0)]],
                               constant uint& mode [[buffer(1)]],
                               uint lid [[thread_position_in_threadgroup]],
                               uint size [[threads_per_threadgroup]]) {
    switch (mode) {
        case 0: {
            threadgroup float first[5120] = {0};
            reverse_through<0>(first, out, lid, size);
            break;
        }
        case 1: {
            threadgroup float second[5120];
            reverse_through<100>(second, out, lid, size);
            break;
        }
        default:
            threadgroup float small[64];
            reverse_through<200>(small, out, lid, size);
            break;
    }
}
