#include <metal_stdlib>
using namespace metal;

// C = A B, row-major: A is M x K, B is K x N, C is M x N. Thread (col, row) computes C[row][col].
// The threads of a 16 x 16 threadgroup load a 16 x 16 tile of A and one of B into threadgroup memory (one
// element each), wait, and each then reads a row of one tile and a column of the other from there: every
// element of A and B is read from device memory once per threadgroup instead of 16 times.
// Every thread of the threadgroup loads its element, so the threadgroup must be whole: the host rounds the grid
// up to whole tiles (with Metal's dispatchThreads an edge threadgroup would be partial, and the threads that
// should load its tiles' last columns would not exist). Loads past the matrices' edges read zeros; threads past
// C's edges store nothing.
kernel void matmul(device const float* A [[buffer(0)]],
                   device const float* B [[buffer(1)]],
                   device float* C [[buffer(2)]],
                   constant uint& M [[buffer(3)]],
                   constant uint& K [[buffer(4)]],
                   constant uint& N [[buffer(5)]],
                   uint2 position [[thread_position_in_grid]],
                   uint2 local [[thread_position_in_threadgroup]])
{
    constexpr uint TILE = 16;  // the host's TILE: the threadgroup is TILE x TILE
    threadgroup float a_tile[TILE][TILE];
    threadgroup float b_tile[TILE][TILE];
    uint row = position.y, col = position.x;
    float total = 0.0f;
    for (uint k0 = 0; k0 < K; k0 += TILE) {
        uint a_col = k0 + local.x, b_row = k0 + local.y;
        a_tile[local.y][local.x] = row < M && a_col < K ? A[row * K + a_col] : 0.0f;
        b_tile[local.y][local.x] = b_row < K && col < N ? B[b_row * N + col] : 0.0f;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint k = 0; k < TILE; ++k) {
            total += a_tile[local.y][k] * b_tile[k][local.x];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);  // all reads of the tiles done before the next loads
    }
    if (row < M && col < N) {
        C[row * N + col] = total;
    }
}
