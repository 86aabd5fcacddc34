#include <metal_stdlib>
using namespace metal;

// A packed block of 22 bytes, as quantised weights are stored: `bits` is 4-byte aligned in every other block.
struct packed_block {
    half scale;
    uchar bits[4];
    uchar codes[16];
};

// Each thread reads its block's four bytes of `bits` as one uint through a cast (a misaligned address for odd
// blocks on CUDA), its two-byte code pairs through another, and writes a sum through a cast to an aligned address.
kernel void unaligned_block_fields(device const packed_block* blocks [[buffer(0)]],
                                   device uint* out [[buffer(1)]],
                                   device uchar* bytes_out [[buffer(2)]],
                                   uint i [[thread_position_in_grid]]) {
    const uint word = *((device const uint32_t *) blocks[i].bits);
    const ushort pair = *((device const ushort *)(blocks[i].codes + 1));
    out[2 * i] = word;
    out[2 * i + 1] = pair + uint(float(blocks[i].scale));
    *((device uint *)(bytes_out + 4 * i)) = word ^ 0xFFFFFFFFu;
}

// The same through threadgroup memory: bytes copied in, then read as a uint at an odd offset.
kernel void unaligned_threadgroup_read(device const uchar* in [[buffer(0)]],
                                       device uint* out [[buffer(1)]],
                                       uint i [[thread_position_in_threadgroup]]) {
    threadgroup uchar staged[40];
    staged[i] = in[i];
    if (i < 8) staged[32 + i] = in[32 + i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[i] = *((threadgroup const uint *)(staged + i + 1));
}
