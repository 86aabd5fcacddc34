#include <metal_stdlib>
using namespace metal;

struct Dims {
    uint M;  // rows of A and C
    uint N;  // columns of B and C
    uint K;  // columns of A, rows of B
};

// Naive C = A * B, one thread per element of C; the grid is (N, M): x runs over columns.
kernel void matmul(device const float* A [[buffer(0)]],
                   device const float* B [[buffer(1)]],
                   device float* C [[buffer(2)]],
                   constant Dims& dims [[buffer(3)]],
                   uint2 gid [[thread_position_in_grid]])
{
    uint row = gid.y;
    uint col = gid.x;
    if (row >= dims.M || col >= dims.N) {
        return;
    }
    float sum = 0.0f;
    for (uint k = 0; k < dims.K; ++k) {
        sum += A[row * dims.K + k] * B[k * dims.N + col];
    }
    C[row * dims.N + col] = sum;
}
