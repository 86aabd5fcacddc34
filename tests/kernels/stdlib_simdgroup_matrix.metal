// SIMD-group matrices as production kernels use them: N x N products tiled by 8x8 matrices, mixed element types
// (half or bfloat inputs into a float accumulator), operator*, make_filled_simdgroup_matrix<T, 8>, and
// thread_elements() as an lvalue in Apple's lane layout (MLX's steel kernels compute the row and column of a
// lane's two elements themselves, with this formula).
#include <metal_stdlib>
using namespace metal;

// C = A * B + bias for N x N row-major matrices, one SIMD-group per 8x8 tile of C (a threadgroup of N / 8 x N / 8
// SIMD-groups). In holds A and B, Acc accumulates, Out is C's element type.
template <typename In, typename Acc, typename Out>
kernel void tiled_product(device const In* A [[buffer(0)]], device const In* B [[buffer(1)]],
                          device Out* C [[buffer(2)]], constant uint& N [[buffer(3)]],
                          constant float& bias [[buffer(4)]],
                          uint sg [[simdgroup_index_in_threadgroup]]) {
    const uint tiles = N / 8;
    const ulong2 tile = ulong2(8 * (sg % tiles), 8 * (sg / tiles));  // (column, row) of this SIMD-group's tile
    simdgroup_matrix<Acc, 8> acc = make_filled_simdgroup_matrix<Acc, 8>(Acc(bias));
    for (uint k = 0; k < N; k += 8) {
        simdgroup_matrix<In, 8, 8> a, b;
        simdgroup_load(a, A, N, ulong2(k, tile.y));
        simdgroup_load(b, B, N, ulong2(tile.x, k));
        simdgroup_multiply_accumulate(acc, a, b, acc);
    }
    simdgroup_store(acc, C, N, tile);
}

template [[host_name("product_float")]] kernel void tiled_product<float, float, float>(
    device const float*, device const float*, device float*, constant uint&, constant float&, uint);
template [[host_name("product_half")]] kernel void tiled_product<half, half, half>(
    device const half*, device const half*, device half*, constant uint&, constant float&, uint);
template [[host_name("product_bfloat")]] kernel void tiled_product<bfloat, bfloat, bfloat>(
    device const bfloat*, device const bfloat*, device bfloat*, constant uint&, constant float&, uint);
template [[host_name("product_half_into_float")]] kernel void tiled_product<half, float, float>(
    device const half*, device const half*, device float*, constant uint&, constant float&, uint);
template [[host_name("product_bfloat_into_float")]] kernel void tiled_product<bfloat, float, float>(
    device const bfloat*, device const bfloat*, device float*, constant uint&, constant float&, uint);

// Through thread_elements(): each lane writes its two elements of M (8x8) by the layout formula, then
// out = (M * M) and the lane's elements of M read back, by where the lane says they are.
kernel void thread_elements_layout(device const float* M [[buffer(0)]], device float* product [[buffer(1)]],
                                   device float* seen [[buffer(2)]], ushort lane [[thread_index_in_simdgroup]]) {
    const short quad = lane / 4;
    const short row = (quad & 4) + (lane / 2) % 4;
    const short column = (quad & 2) * 2 + (lane % 2) * 2;
    simdgroup_float8x8 m;
    m.thread_elements()[0] = M[row * 8 + column];
    m.thread_elements()[1] = M[row * 8 + column + 1];
    const simdgroup_float8x8 squared = m * m;
    simdgroup_store(squared, product, 8);
    thread float2& mine = m.thread_elements();
    mine *= 2.0f;
    simdgroup_store(m, seen, 8);
}
