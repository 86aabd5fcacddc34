#include <metal_stdlib>
using namespace metal;

#define TILE 16

// C (m x n) = A (m x k) * B (k x n), row-major, with 16x16 tiles in threadgroup memory. Edge tiles are partial:
// threads outside the matrices load zeros but still reach every barrier.
kernel void tiled_matmul(device const float* a [[buffer(0)]],
                         device const float* b [[buffer(1)]],
                         device float* c [[buffer(2)]],
                         constant uint3& dims [[buffer(3)]],
                         uint2 gid [[thread_position_in_grid]],
                         uint2 lid [[thread_position_in_threadgroup]])
{
    threadgroup float tile_a[TILE][TILE];
    threadgroup float tile_b[TILE][TILE];
    const uint m = dims.x, k = dims.y, n = dims.z;
    const uint row = gid.y, col = gid.x;
    float acc = 0.0f;
    for (uint t = 0; t < k; t += TILE) {
        const uint ak = t + lid.x, bk = t + lid.y;
        tile_a[lid.y][lid.x] = (row < m && ak < k) ? a[row * k + ak] : 0.0f;
        tile_b[lid.y][lid.x] = (bk < k && col < n) ? b[bk * n + col] : 0.0f;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint i = 0; i < TILE; ++i) {
            acc += tile_a[lid.y][i] * tile_b[i][lid.x];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (row < m && col < n) {
        c[row * n + col] = acc;
    }
}
