"""A 4096 GEMM written in MSL with simdgroup_matrix tiles, on CUDA tensor cores (metal/_simdgroup_mma.h), against
cuBLAS, in one run on one GPU:

- float inputs and output, each float mode of the Interface (``simdgroup_float``): "3xtf32" (the default), "tf32",
  "exact" (warp shuffles), against cuBLAS FP32 (cupy.matmul; CuPy leaves TF32 off unless CUPY_TF32=1);
- half inputs and output with float accumulators, against cuBLAS FP16 (cupy.matmul);
- bfloat likewise, against cuBLAS BF16 (torch.matmul: CuPy has no bfloat16).

Kernel times are CUDA events (Dispatch.gpu_time; events around cuBLAS), medians of samples taken in turn, each
after an L2 flush. Errors are against float64 (cuBLAS DGEMM of the same input values): the largest error over the
largest |C|, and the largest error over the sum of the terms' sizes, sum_k |a_ik b_kj|.

    PYTHONPATH=src python benchmarks/cuda_gemm.py --repeat 10

The kernel: a threadgroup of 8 SIMD-groups computes a 128 x 128 tile of C, each SIMD-group 64 x 32 of it (8 x 4
accumulators), with the tile's rows innermost, so that each pair of product statements reads one B matrix (one
mma.sync on CUDA). Per step of BK = 16 along k, the blocks of A and B go to threadgroup memory: A's as rows of BK
for half and bfloat (one hardware row load a matrix) and transposed for float (the scalar loads of the tensor
cores' layout then meet no bank conflict), rows padded to 4 banks past a multiple of 32 words. Where two of each
fit (half and bfloat), a step multiplies one while the next step's blocks go to the other: one barrier a step. The
next step's blocks are read from device memory while this one's are multiplied, without a branch (past the end,
the last block again), so that the compiler issues the reads at the top of the step. For half and bfloat a step's
loads are written first, in the order its products read them, so that each A fragment's four matrices and each B
fragment's two take one hardware row load (msl/operand_loads.py): 8 a step instead of 24. BK = 32 took 149
registers a thread for half, room for one threadgroup an SM; this takes 128, room for two.
"""
from __future__ import annotations

import argparse

import numpy as np
from cuda_backend import bfloat_bits, cublas_anchor, dispatch_sampler, kernel_medians

import metalgpu

SOURCE = """
#include <metal_stdlib>
using namespace metal;

constant constexpr uint BM = 128, BN = 128;  // a threadgroup's tile of C
constant constexpr uint WM = 64, WN = 32;    // a SIMD-group's part of it (8 SIMD-groups, 2 x 4)
constant constexpr uint THREADS = 256;

// The loops over a SIMD-group's fragments, written out (the compiler keeps the fragments in registers only when
// every index is a constant).
#define FOR_4(F) F(0) F(1) F(2) F(3)
#define FOR_8(F) FOR_4(F) F(4) F(5) F(6) F(7)
#define FOR_J(F, i) F(i, 0) F(i, 1) F(i, 2) F(i, 3)

// C = A * B for n x n row-major matrices, n a multiple of 128. Out: C's element type; float accumulators.
template <typename T, typename Out, uint BK>
[[max_total_threads_per_threadgroup(THREADS)]]  // on CUDA: registers for 256 threads, not 1024
kernel void gemm(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]], device Out* C [[buffer(2)]],
                 constant uint& n [[buffer(3)]], uint2 group [[threadgroup_position_in_grid]],
                 uint index [[thread_index_in_threadgroup]], uint sg [[simdgroup_index_in_threadgroup]],
                 ushort lane [[thread_index_in_simdgroup]]) {
    // A's block is kept as rows of BK (16-bit elements: what one hardware row load reads) or, for float, transposed
    // (the tensor cores' layout of A then meets no bank conflict in scalar loads). Rows padded to 4 banks past a
    // multiple of 32 words.
    constexpr bool A_ROWS = sizeof(T) == 2;
    constexpr uint LD = BM + 16 / sizeof(T), LDK = BK + 16 / sizeof(T);
    constexpr uint A_SIZE = A_ROWS ? BM * LDK : BK * LD, B_SIZE = BK * LD;
    // Two of each block where they fit beside `staging` in Metal's 32 KiB: a step multiplies one while the next
    // step's is written to the other, so that one barrier a step separates the writes from the reads.
    constexpr uint BUFFERS = 2 * (A_SIZE + B_SIZE) * sizeof(T) <= 28 * 1024 ? 2 : 1;
    constexpr uint VECTORS = BM * BK / 4 / THREADS;  // vectors of 4 elements of each block a thread moves a step
    threadgroup T a_tiles[BUFFERS][A_SIZE];
    threadgroup T b_tiles[BUFFERS][B_SIZE];
    threadgroup float staging[8][64];
    const uint row0 = group.y * BM, col0 = group.x * BN;
    const uint warp_row = (sg / 4) * WM, warp_col = (sg % 4) * WN;
    const uint size = n;
    // Where this thread's vectors lie in the blocks: A's m, k (BK / 4 vectors a row) and B's k, column
    const uint a_m = index / (BK / 4), a_k = (index % (BK / 4)) * 4, a_m_step = THREADS / (BK / 4);
    const uint b_k = index / (BN / 4), b_c = (index % (BN / 4)) * 4, b_k_step = THREADS / (BN / 4);
    device const T* a_source = A + (row0 + a_m) * size + a_k;
    device const T* b_source = B + b_k * size + col0 + b_c;

    simdgroup_matrix<float, 8, 8> acc[8][4];
#define ZERO(i, j) acc[i][j] = make_filled_simdgroup_matrix<float, 8>(0.0f);
#define ZERO_ROW(i) FOR_J(ZERO, i)
    FOR_8(ZERO_ROW)

    // The next block from device memory arrives in registers while this one is multiplied.
    vec<T, 4> a_next[4], b_next[4];
#define FETCH_V(v, k0)                                                                                        \\
    if (v < VECTORS) {                                                                                        \\
        a_next[v] = *reinterpret_cast<device const vec<T, 4>*>(a_source + v * a_m_step * size + (k0));       \\
        b_next[v] = *reinterpret_cast<device const vec<T, 4>*>(b_source + ((k0) + v * b_k_step) * size);     \\
    }
// FETCH and PUT are one block each: under an `if`, a macro of several statements would guard only its first.
#define FETCH(k0) { FETCH_V(0, k0) FETCH_V(1, k0) FETCH_V(2, k0) FETCH_V(3, k0) }
#define PUT_V(v, buffer)                                                                                      \\
    if (v < VECTORS) {                                                                                        \\
        if (A_ROWS) {                                                                                         \\
            *reinterpret_cast<threadgroup vec<T, 4>*>(a_tiles[buffer] + (a_m + v * a_m_step) * LDK + a_k) =   \\
                a_next[v];                                                                                    \\
        } else {                                                                                              \\
            for (uint e = 0; e < 4; ++e) a_tiles[buffer][(a_k + e) * LD + a_m + v * a_m_step] = a_next[v][e];  \\
        }                                                                                                     \\
        *reinterpret_cast<threadgroup vec<T, 4>*>(b_tiles[buffer] + (b_k + v * b_k_step) * LD + b_c) =        \\
            b_next[v];                                                                                        \\
    }
#define PUT(buffer) { PUT_V(0, buffer) PUT_V(1, buffer) PUT_V(2, buffer) PUT_V(3, buffer) }
// 16-bit elements: a step of BK = 16 is two of depth 8 (kk = 0 and 8), written out: every load first, each A
// fragment's four (rows i and i + 1 at both depths) and each B fragment's two in a row, then the products of depth
// 0 and those of depth 8. On CUDA a pair of products (rows innermost, reading one B) is one mma.sync, the products
// of both depths into the same accumulators one of depth 16, and the loads in a row that fill its operands one
// ldmatrix. Float goes one depth at a time: all of a step's fragments at once take registers it needs.
#define LOAD_A(m, i, kk)                                                                                      \\
    simdgroup_load(m, A_ROWS ? a_tile + (warp_row + 8 * (i)) * LDK : a_tile, A_ROWS ? LDK : LD,                 \\
                   A_ROWS ? ulong2(kk, 0) : ulong2(warp_row + 8 * (i), kk), !A_ROWS);
#define LOAD_A4(q) LOAD_A(a0[2 * q], 2 * q, 0) LOAD_A(a0[2 * q + 1], 2 * q + 1, 0)                                \\
                   LOAD_A(a1[2 * q], 2 * q, 8) LOAD_A(a1[2 * q + 1], 2 * q + 1, 8)
#define LOAD_B(m, j, kk) simdgroup_load(m, b_tile, LD, ulong2(warp_col + 8 * (j), kk));
#define LOAD_B2(j) LOAD_B(b0[j], j, 0) LOAD_B(b1[j], j, 8)
#define MMA(i, j, a, b) simdgroup_multiply_accumulate(acc[i][j], a[i], b[j], acc[i][j]);
#define MMA_COLUMN(j, a, b) MMA(0, j, a, b) MMA(1, j, a, b) MMA(2, j, a, b) MMA(3, j, a, b) MMA(4, j, a, b)     \\
                            MMA(5, j, a, b) MMA(6, j, a, b) MMA(7, j, a, b)
#define MMA_COLUMN0(j) MMA_COLUMN(j, a0, b0)
#define MMA_COLUMN1(j) MMA_COLUMN(j, a1, b1)
#define LOAD_A0(i) LOAD_A(a0[i], i, kk)
#define LOAD_B0(j) LOAD_B(b0[j], j, kk)
    FETCH(0)
    PUT(0)
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k0 = 0, step = 0; k0 < size; k0 += BK, step = (step + 1) % BUFFERS) {
        FETCH(min(k0 + BK, size - BK))  // past the end, the last block again: no branch
        const threadgroup T* a_tile = a_tiles[step];
        const threadgroup T* b_tile = b_tiles[step];
        if (A_ROWS) {
            simdgroup_matrix<T, 8, 8> a0[8], a1[8], b0[4], b1[4];  // fragments at depths 0 and 8 of the step
            FOR_4(LOAD_A4)
            FOR_4(LOAD_B2)
            FOR_4(MMA_COLUMN0)
            FOR_4(MMA_COLUMN1)
        } else {
#pragma unroll  // on CUDA, the products of each pair of depths into an accumulator run as one instruction
            for (uint kk = 0; kk < BK; kk += 8) {
                simdgroup_matrix<T, 8, 8> a0[8], b0[4];
                FOR_8(LOAD_A0)
                FOR_4(LOAD_B0)
                FOR_4(MMA_COLUMN0)
            }
        }
        // The next blocks go to the others, last read a step ago (or, with one, to these once all are done).
        if (BUFFERS == 1) threadgroup_barrier(mem_flags::mem_threadgroup);
        PUT((step + 1) % BUFFERS)
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
#define STORE(i, j)                                                                                           \\
    simdgroup_store(acc[i][j], staging[sg], 8); /* through threadgroup memory: float to Out */               \\
    C[(row0 + warp_row + 8 * i + lane / 8) * size + col0 + warp_col + 8 * j + lane % 8] = Out(staging[sg][lane]);  \\
    C[(row0 + warp_row + 8 * i + 4 + lane / 8) * size + col0 + warp_col + 8 * j + lane % 8] =                    \\
        Out(staging[sg][lane + 32]);
#define STORE_ROW(i) FOR_J(STORE, i)
    FOR_8(STORE_ROW)
}

"""

# One instantiation per library, so that each Interface compiles only the kernel it runs. The last argument is BK.
INSTANTIATIONS = {
    "float": 'template [[host_name("gemm")]] kernel void gemm<float, float, 16>(device const float*, '
             'device const float*, device float*, constant uint&, uint2, uint, uint, ushort);',
    "half": 'template [[host_name("gemm")]] kernel void gemm<half, half, 16>(device const half*, '
            'device const half*, device half*, constant uint&, uint2, uint, uint, ushort);',
    "bfloat": 'template [[host_name("gemm")]] kernel void gemm<bfloat, bfloat, 16>(device const bfloat*, '
              'device const bfloat*, device bfloat*, constant uint&, uint2, uint, uint, ushort);',
}

KINDS = [  # (row name, Interface mode, element type, cuBLAS anchor)
    ("float 3xTF32", "3xtf32", "float", "FP32"),
    ("float TF32", "tf32", "float", "FP32"),
    ("float exact (shuffles)", "exact", "float", "FP32"),
    ("half", "3xtf32", "half", "FP16"),
    ("bfloat", "3xtf32", "bfloat", "BF16"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    import cupy as cp
    try:
        import torch
    except ImportError:
        torch = None

    size = args.size
    if size % 128:
        parser.error("--size must be a multiple of 128")
    rng = np.random.default_rng(3)
    a32, b32 = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    inputs = {  # element type: (A, B as the kernel's element values in float64, host arrays for the buffers)
        "float": (a32, b32),
        "half": (a32.astype(np.float16), b32.astype(np.float16)),
        "bfloat": (bfloat_bits(a32), bfloat_bits(b32)),
    }

    def values(element: str, x: np.ndarray):
        if element == "bfloat":
            return cp.asarray((x.astype(np.uint32) << 16).view(np.float32), dtype=cp.float64)
        return cp.asarray(x, dtype=cp.float64)

    references = {}
    for element, (a, b) in inputs.items():
        da, db = values(element, a), values(element, b)
        references[element] = (da @ db, cp.abs(da) @ cp.abs(db))

    def errors(element: str, got) -> tuple[float, float]:
        exact, terms = references[element]
        error = cp.abs(cp.asarray(got, dtype=cp.float64) - exact)
        return float(error.max() / cp.abs(exact).max()), float((error / terms).max())

    anchors = {}  # cuBLAS: name -> (sampler, errors)
    for name, element in (("FP32", "float"), ("FP16", "half"), ("BF16", "bfloat")):
        anchor = cublas_anchor(cp, torch, name, *inputs[element])
        if anchor is not None:
            anchors[name] = (anchor[0], errors(element, anchor[1]))

    def measure(mode: str, element: str, anchor) -> tuple[float, float | None, tuple[float, float]]:
        """(our median us, the anchor's, our errors) for one kind."""
        gpu = metalgpu.Interface("cuda", simdgroup_float=mode)
        try:
            gpu.load_shader_from_str(SOURCE + INSTANTIATIONS[element])
            gpu.set_function("gemm")
            a, b = inputs[element]
            if element == "bfloat":
                buffers = [gpu.create_buffer(size * size, "bfloat") for _ in range(3)]
                buffers[0].contents.view(np.uint16)[:] = a.ravel()
                buffers[1].contents.view(np.uint16)[:] = b.ravel()
            else:
                buffers = [gpu.array_to_buffer(a.ravel()), gpu.array_to_buffer(b.ravel()),
                           gpu.create_buffer(size * size, element)]
            grid = (size // 128 * 256, size // 128)
            samplers = {"ours": dispatch_sampler(gpu, grid, [*buffers, np.uint32(size)],
                                                 threads_per_threadgroup=(256, 1))}
            if anchor is not None:
                samplers["anchor"] = anchor[0]
            medians = kernel_medians(samplers, args.repeat)
            got = buffers[2].contents
            if element == "bfloat":
                got = (got.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            return medians["ours"], medians.get("anchor"), errors(element, got.reshape(size, size))
        finally:
            gpu.close()

    flops = 2 * size ** 3
    print(f"GEMM {size} x {size} x {size}; medians of {args.repeat} (CUDA events, each after an L2 flush)")
    print(f"{'kind':24} {'us':>9} {'TFLOP/s':>8} {'cuBLAS':>6} {'us':>9} {'TFLOP/s':>8} {'ratio':>6}   "
          f"{'err/max|C|':>10} {'err/terms':>10}   {'cuBLAS err/max|C|':>17} {'err/terms':>10}", flush=True)
    errors_over_terms = {}
    for what, mode, element, anchor in KINDS:
        try:
            ours_us, anchor_us, (ours_max, ours_terms) = measure(mode, element, anchors.get(anchor))
        except metalgpu.MetalError as error:  # report it and go on with the other kinds
            print(f"{what:24} failed: {type(error).__name__}: {error}", flush=True)
            continue
        errors_over_terms[what] = ours_terms
        ours_tflops = flops / (ours_us * 1e-6) / 1e12
        if anchor_us is None:
            anchor_text = f"{anchor:>6} {'(none)':>9} {'':>8} {'':>6}"
            anchor_errors = ""
        else:
            anchor_tflops = flops / (anchor_us * 1e-6) / 1e12
            anchor_text = f"{anchor:>6} {anchor_us:9.0f} {anchor_tflops:8.1f} {anchor_us / ours_us:6.2f}"
            anchor_max, anchor_terms = anchors[anchor][1]
            anchor_errors = f"{anchor_max:17.1e} {anchor_terms:10.1e}"
        print(f"{what:24} {ours_us:9.0f} {ours_tflops:8.1f} {anchor_text}   {ours_max:10.1e} {ours_terms:10.1e}   "
              f"{anchor_errors}", flush=True)
    if "float 3xTF32" in errors_over_terms and "float exact (shuffles)" in errors_over_terms:
        ratio = errors_over_terms["float 3xTF32"] / errors_over_terms["float exact (shuffles)"]
        print(f"float 3xTF32 error / the exact (shuffle) path's, over the terms: {ratio:.2f} (target: <= 2)")


if __name__ == "__main__":
    main()
