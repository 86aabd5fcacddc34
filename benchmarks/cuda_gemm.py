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
    PYTHONPATH=src python benchmarks/cuda_gemm.py --kinds half,bfloat   # only those rows (and their cuBLAS)

The kernels (one for float, one for half and bfloat): a threadgroup computes a 128 x 128 tile of C, and per step
along k the blocks of A and B go through threadgroup memory, laid out so that the SIMD-groups' loads meet no bank
conflict. The next step's blocks are read from device memory while this one's are multiplied, without a branch
(past the end, the last block again). Pairs of product statements that read one B matrix (the tile's rows
innermost) run as one mma.sync on CUDA.

- Float: 8 SIMD-groups of 64 x 32 (8 x 4 accumulators), steps of 16; A's block transposed (the scalar loads of the
  tensor cores' layout then meet no bank conflict); one block of each, two barriers a step.
- Half and bfloat: 4 SIMD-groups of 64 x 64 (8 x 8 accumulators, so that each fragment loaded from threadgroup
  memory serves 8 products), steps of 32; one block of each, two barriers a step; device memory read in 64-byte
  rows of A. A step's loads are written first, in the order its products read them, so that each A fragment's
  four matrices and each B fragment's two take one hardware row load (msl/operand_loads.py). The kernel's comment
  gives the layouts; benchmarks/README.md what the other layouts and schedules measured.
"""
from __future__ import annotations

import argparse

import numpy as np
from cuda_backend import bfloat_bits, cublas_anchor, dispatch_sampler, kernel_medians

import metalgpu

SOURCE = """
#include <metal_stdlib>
using namespace metal;

// Both kernels: C = A * B for n x n row-major matrices, n a multiple of 128; a threadgroup computes 128 x 128 of C
// with float accumulators, and moves its blocks of A and B through threadgroup memory a step of BK along k.
constant constexpr uint BM = 128, BN = 128;

// The loops over a SIMD-group's fragments, written out (the compiler keeps the fragments in registers only when
// every index is a constant).
#define FOR_4(F) F(0) F(1) F(2) F(3)
#define FOR_8(F) FOR_4(F) F(4) F(5) F(6) F(7)
#define FOR_J4(F, i) F(i, 0) F(i, 1) F(i, 2) F(i, 3)
#define FOR_J8(F, i) FOR_J4(F, i) F(i, 4) F(i, 5) F(i, 6) F(i, 7)
#define ZERO(i, j) acc[i][j] = make_filled_simdgroup_matrix<float, 8>(0.0f);
#define MMA(i, j, a, b) simdgroup_multiply_accumulate(acc[i][j], a[i], b[j], acc[i][j]);
// The products into a column j of 8 accumulators (the tile's rows innermost: each pair reads one B matrix).
#define MMA_COLUMN(j, a, b) MMA(0, j, a, b) MMA(1, j, a, b) MMA(2, j, a, b) MMA(3, j, a, b) MMA(4, j, a, b)     \\
                            MMA(5, j, a, b) MMA(6, j, a, b) MMA(7, j, a, b)
#define MMA_COLUMN0(j) MMA_COLUMN(j, a0, b0)
#define MMA_COLUMN1(j) MMA_COLUMN(j, a1, b1)
// One accumulator to C, through threadgroup memory (float to C's type Out): a lane's two elements side by side,
// one store.
#define STORE(i, j)                                                                                           \\
    simdgroup_store(acc[i][j], staging[sg], 8);                                                               \\
    *reinterpret_cast<device vec<Out, 2>*>(C + (row0 + warp_row + 8 * i + lane / 4) * size + col0 + warp_col + \\
                                           8 * j + 2 * (lane % 4)) =                                          \\
        vec<Out, 2>(Out(staging[sg][2 * lane]), Out(staging[sg][2 * lane + 1]));

// Float: 8 SIMD-groups, each 64 x 32 of the tile (8 x 4 accumulators), the tile's rows innermost so that each pair
// of product statements reads one B matrix (one mma.sync on CUDA). A's block is kept transposed (the scalar loads
// of the tensor cores' layout then meet no bank conflict), rows padded to 4 banks past a multiple of 32 words; one
// block of each (two would pass Metal's 32 KiB), so two barriers a step.
[[max_total_threads_per_threadgroup(256)]]  // on CUDA: registers for 256 threads, not 1024
kernel void gemm_float(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                       device float* C [[buffer(2)]], constant uint& n [[buffer(3)]],
                       uint2 group [[threadgroup_position_in_grid]], uint index [[thread_index_in_threadgroup]],
                       uint sg [[simdgroup_index_in_threadgroup]], ushort lane [[thread_index_in_simdgroup]]) {
    using Out = float;
    constexpr uint THREADS = 256, BK = 16, WM = 64, WN = 32, LD = BM + 4;
    threadgroup float a_tile[BK * LD];
    threadgroup float b_tile[BK * LD];
    threadgroup float staging[8][64];
    const uint row0 = group.y * BM, col0 = group.x * BN;
    const uint warp_row = (sg / 4) * WM, warp_col = (sg % 4) * WN;
    const uint size = n;
    // Where this thread's vectors of 4 lie in the blocks: A's m, k (BK / 4 vectors a row) and B's k, column
    const uint a_m = index / (BK / 4), a_k = (index % (BK / 4)) * 4, a_m_step = THREADS / (BK / 4);
    const uint b_k = index / (BN / 4), b_c = (index % (BN / 4)) * 4, b_k_step = THREADS / (BN / 4);
    device const float* a_source = A + (row0 + a_m) * size + a_k;
    device const float* b_source = B + b_k * size + col0 + b_c;

    simdgroup_matrix<float, 8, 8> acc[8][4];
#define ZERO_ROW4(i) FOR_J4(ZERO, i)
    FOR_8(ZERO_ROW4)

    // The next block from device memory arrives in registers while this one is multiplied.
    float4 a_next[2], b_next[2];
#define FETCH_V(v, k0)                                                                                        \\
    a_next[v] = *reinterpret_cast<device const float4*>(a_source + v * a_m_step * size + (k0));              \\
    b_next[v] = *reinterpret_cast<device const float4*>(b_source + ((k0) + v * b_k_step) * size);
// FETCH and PUT are one block each: under an `if`, a macro of several statements would guard only its first.
#define FETCH(k0) { FETCH_V(0, k0) FETCH_V(1, k0) }
#define PUT_V(v)                                                                                              \\
    for (uint e = 0; e < 4; ++e) a_tile[(a_k + e) * LD + a_m + v * a_m_step] = a_next[v][e];                  \\
    *reinterpret_cast<threadgroup float4*>(b_tile + (b_k + v * b_k_step) * LD + b_c) = b_next[v];
#define PUT { PUT_V(0) PUT_V(1) }
#define LOAD_A0(i) simdgroup_load(a0[i], a_tile, LD, ulong2(warp_row + 8 * (i), kk), true);
#define LOAD_B0(j) simdgroup_load(b0[j], b_tile, LD, ulong2(warp_col + 8 * (j), kk));
    FETCH(0)
    PUT
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k0 = 0; k0 < size; k0 += BK) {
        FETCH(min(k0 + BK, size - BK))  // past the end, the last block again: no branch
#pragma unroll  // on CUDA, the products of each pair of depths into an accumulator run as one instruction
        for (uint kk = 0; kk < BK; kk += 8) {
            simdgroup_matrix<float, 8, 8> a0[8], b0[4];
            FOR_8(LOAD_A0)
            FOR_4(LOAD_B0)
            FOR_4(MMA_COLUMN0)
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        PUT
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
#define STORE_ROW4(i) FOR_J4(STORE, i)
    FOR_8(STORE_ROW4)
}

// Half and bfloat (T), C of type T: 4 SIMD-groups, each 64 x 64 of the tile (8 x 8 accumulators: each fragment
// of A and of B read from threadgroup memory serves 8 products), a step of BK = 32 along k (two of depth 16), one
// block of each in threadgroup memory (two would pass Metal's 32 KiB), two barriers a step. The next step's blocks
// are read from device memory, 16 bytes a thread at a time, while this one's are multiplied. Device memory is read
// in rows of 64 bytes (4 lanes a row of A's block), and every store to and load from threadgroup memory meets 8
// different groups of banks in each 8 lanes:
// - A's block lies in 4 columns of 8 elements (k / 8), each its 128 rows of 16 bytes then 32 bytes unused: a
//   fragment is 8 rows in a row, one hardware row load, and the 8 lanes storing 2 rows of 4 columns meet 8 groups;
// - B's block row by row, rows padded by 16 bytes (a fragment's rows 272 bytes apart meet 8 groups).
template <typename T>
[[max_total_threads_per_threadgroup(128)]]  // on CUDA: registers for 128 threads, not 1024
kernel void gemm_16bit(device const T* A [[buffer(0)]], device const T* B [[buffer(1)]], device T* C [[buffer(2)]],
                       constant uint& n [[buffer(3)]], uint2 group [[threadgroup_position_in_grid]],
                       uint sg [[simdgroup_index_in_threadgroup]], ushort lane [[thread_index_in_simdgroup]]) {
    using Out = T;
    constexpr uint BK = 32, WM = 64, WN = 64, VEC = 8, A_COLUMN = (BM + 2) * VEC, LD = BN + 8;
    threadgroup T a_tile[BK / VEC * A_COLUMN];
    threadgroup T b_tile[BK * LD];
    threadgroup float staging[4][64];
    const uint row0 = group.y * BM, col0 = group.x * BN;
    const uint warp_row = (sg / 2) * WM, warp_col = (sg % 2) * WN;
    const uint size = n;
    // This thread's 4 vectors of 8 in each block: A's rows a_m + 32 v, column a_c; B's rows b_k + 8 v, from b_c
    const uint a_m = 8 * sg + lane / 4, a_c = lane % 4;
    const uint b_k = 2 * sg + lane / 16, b_c = (lane % 16) * VEC;
    device const T* a_source = A + (row0 + a_m) * size + a_c * VEC;
    device const T* b_source = B + b_k * size + col0 + b_c;
    const uint a_put = a_c * A_COLUMN + a_m * VEC, b_put = b_k * LD + b_c;

    simdgroup_matrix<float, 8, 8> acc[8][8];
#define ZERO_ROW8(i) FOR_J8(ZERO, i)
    FOR_8(ZERO_ROW8)

    uint4 a_held[4], b_held[4];  // the next step's blocks, read from device memory, not yet put
#define FETCH_V(v, k0)                                                                                        \\
    a_held[v] = *reinterpret_cast<device const uint4*>(a_source + 32 * v * size + (k0));                      \\
    b_held[v] = *reinterpret_cast<device const uint4*>(b_source + ((k0) + 8 * v) * size);
#define FETCH(k0) { FETCH_V(0, k0) FETCH_V(1, k0) FETCH_V(2, k0) FETCH_V(3, k0) }
#define PUT_V(v)                                                                                              \\
    *reinterpret_cast<threadgroup uint4*>(a_tile + a_put + 32 * v * VEC) = a_held[v];                         \\
    *reinterpret_cast<threadgroup uint4*>(b_tile + b_put + 8 * v * LD) = b_held[v];
#define PUT { PUT_V(0) PUT_V(1) PUT_V(2) PUT_V(3) }
// Depth 16 of a step (kk = 0 or 16), written out: every load first, each A fragment's four (rows i and i + 1 at
// depths kk and kk + 8) and each B fragment's two in a row, then the products of depth kk and those of kk + 8. On
// CUDA a pair of products (rows innermost, reading one B) is one mma.sync, the products of both depths into the
// same accumulators one of depth 16, and the loads in a row that fill its operands one ldmatrix
// (msl/operand_loads.py). Each load names its column of A, and B's row, by a pointer: the compiler then tells
// that the rows are aligned for ldmatrix.
#define LOAD_A(m, i, kk) simdgroup_load(m, a_tile + (kk) / VEC * A_COLUMN, VEC, ulong2(0, warp_row + 8 * (i)));
#define LOAD_A4(kk, q) LOAD_A(a0[2 * q], 2 * q, kk) LOAD_A(a0[2 * q + 1], 2 * q + 1, kk)                        \\
                       LOAD_A(a1[2 * q], 2 * q, kk + 8) LOAD_A(a1[2 * q + 1], 2 * q + 1, kk + 8)
#define LOAD_B(m, j, kk) simdgroup_load(m, b_tile + (kk) * LD, LD, ulong2(warp_col + 8 * (j), 0));
#define LOAD_B2(kk, j) LOAD_B(b0[j], j, kk) LOAD_B(b1[j], j, kk + 8)
#define MULTIPLY16(kk) {                                                                                      \\
        simdgroup_matrix<T, 8, 8> a0[8], a1[8], b0[8], b1[8];  /* fragments at depths kk and kk + 8 */        \\
        FOR_J4(LOAD_A4, kk)                                                                                   \\
        FOR_J8(LOAD_B2, kk)                                                                                   \\
        FOR_8(MMA_COLUMN0)                                                                                    \\
        FOR_8(MMA_COLUMN1)                                                                                    \\
    }
    FETCH(0)
    PUT
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k0 = 0; k0 < size; k0 += BK) {
        FETCH(min(k0 + BK, size - BK))  // past the end, the last block again: no branch
        MULTIPLY16(0)
        MULTIPLY16(16)
        threadgroup_barrier(mem_flags::mem_threadgroup);
        PUT
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
#define STORE_ROW8(i) FOR_J8(STORE, i)
    FOR_8(STORE_ROW8)
}

"""

# element type: (the source's instantiation it needs, the kernel's name, a threadgroup's threads). The float kernel
# is plain, the 16-bit one a template: a library compiles it only for the type it is instantiated with.
KERNELS = {
    "float": ("", "gemm_float", 256),
    "half": ('template [[host_name("gemm_half")]] kernel void gemm_16bit<half>(device const half*, '
             'device const half*, device half*, constant uint&, uint2, uint, ushort);', "gemm_half", 128),
    "bfloat": ('template [[host_name("gemm_bfloat")]] kernel void gemm_16bit<bfloat>(device const bfloat*, '
               'device const bfloat*, device bfloat*, constant uint&, uint2, uint, ushort);', "gemm_bfloat", 128),
}

KINDS = {  # --kinds name: (row name, Interface mode, element type, cuBLAS anchor)
    "3xtf32": ("float 3xTF32", "3xtf32", "float", "FP32"),
    "tf32": ("float TF32", "tf32", "float", "FP32"),
    "exact": ("float exact (shuffles)", "exact", "float", "FP32"),
    "half": ("half", "3xtf32", "half", "FP16"),
    "bfloat": ("bfloat", "3xtf32", "bfloat", "BF16"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"the rows to measure, comma-separated (default: all of {', '.join(KINDS)})")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        parser.error(f"--kinds: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(KINDS)}")
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

    elements = {KINDS[kind][2] for kind in kinds}
    references = {}  # only for the element types measured: a float64 GEMM each
    for element in elements:
        a, b = inputs[element]
        da, db = values(element, a), values(element, b)
        references[element] = (da @ db, cp.abs(da) @ cp.abs(db))

    def errors(element: str, got) -> tuple[float, float]:
        exact, terms = references[element]
        error = cp.abs(cp.asarray(got, dtype=cp.float64) - exact)
        return float(error.max() / cp.abs(exact).max()), float((error / terms).max())

    anchors = {}  # cuBLAS: name -> (sampler, errors)
    for name, element in (("FP32", "float"), ("FP16", "half"), ("BF16", "bfloat")):
        if element not in elements:
            continue
        anchor = cublas_anchor(cp, torch, name, *inputs[element])
        if anchor is not None:
            anchors[name] = (anchor[0], errors(element, anchor[1]))

    def measure(mode: str, element: str, anchor) -> tuple[float, float | None, tuple[float, float]]:
        """(our median us, the anchor's, our errors) for one kind."""
        gpu = metalgpu.Interface("cuda", simdgroup_float=mode)
        try:
            instantiation, name, threads = KERNELS[element]
            gpu.load_shader_from_str(SOURCE + instantiation)
            gpu.set_function(name)
            a, b = inputs[element]
            if element == "bfloat":
                buffers = [gpu.create_buffer(size * size, "bfloat") for _ in range(3)]
                buffers[0].contents.view(np.uint16)[:] = a.ravel()
                buffers[1].contents.view(np.uint16)[:] = b.ravel()
            else:
                buffers = [gpu.array_to_buffer(a.ravel()), gpu.array_to_buffer(b.ravel()),
                           gpu.create_buffer(size * size, element)]
            grid = (size // 128 * threads, size // 128)
            samplers = {"ours": dispatch_sampler(gpu, grid, [*buffers, np.uint32(size)],
                                                 threads_per_threadgroup=(threads, 1))}
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
    for what, mode, element, anchor in (KINDS[kind] for kind in kinds):
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
