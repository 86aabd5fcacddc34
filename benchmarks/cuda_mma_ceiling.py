"""What the tensor cores can give a kernel built of 8 x 8 SIMD-group matrix products, on one GPU in one run:

- our products alone: a loop of ``simdgroup_multiply_accumulate`` on operands held in registers (no memory
  traffic, 16 independent accumulators per SIMD-group), for half, bfloat and float (TF32, 3xTF32); half and bfloat
  also with two products into each accumulator a step, which metal/_simdgroup_mma.h runs as one m16n8k16, and with
  the accumulators' rows innermost, so that each pair of statements reads one B matrix and runs as one instruction
  with both halves used (m16n8k8, or with two a step m16n8k16);
- the same loop written in CUDA C++ with ``mma.sync`` (CuPy RawKernel) at its full shapes, m16n8k16 and m16n8k8,
  and each with only rows 0-7 of A set: what the instructions our products map to give, used whole and used as
  Metal products use them;
- cuBLAS on a 4096 GEMM (FP16, BF16 through PyTorch, FP32), the anchor of ``cuda_gemm.py``'s targets.

A product of two 8 x 8 matrices alone fills half an ``m16n8k8`` (rows 0-7), a pair of them into one accumulator half an
``m16n8k16``, and two pairs into two accumulators that read the same B matrices the whole of it (useful TFLOP/s: the
8 x 8 x 8 products only); cuBLAS uses Hopper's warp-group instructions (wgmma), which no single SIMD-group's
product can reach. Products held back to run with the next need NVRTC 13.5 or later (``metalgpu info`` names the
one in use).

    PYTHONPATH=src python benchmarks/cuda_mma_ceiling.py --repeat 10
"""
from __future__ import annotations

import argparse

import numpy as np
from cuda_backend import bfloat_bits, cublas_anchor, dispatch_sampler, event_sampler, kernel_medians

import metalgpu

STEPS = 4096        # products per accumulator
ACCUMULATORS = 16   # per SIMD-group (4 x 4), independent, so that the products overlap
THREADS = 256       # 8 SIMD-groups (warps) a threadgroup

SOURCE = """
#include <metal_stdlib>
using namespace metal;

#define FOR_4(F) F(0) F(1) F(2) F(3)
#define FOR_J(F, i) F(i, 0) F(i, 1) F(i, 2) F(i, 3)

// 4 x 4 accumulators, each steps x PER_STEP products of a[p][i] and b[p][j]; the operands are loaded once, the
// results stored once.
template <typename T, uint PER_STEP, bool ROWS_INNERMOST>
[[max_total_threads_per_threadgroup(256)]]
kernel void products(device const T* operands [[buffer(0)]], device float* out [[buffer(1)]],
                     constant uint& steps [[buffer(2)]], uint group [[threadgroup_position_in_grid]],
                     uint sg [[simdgroup_index_in_threadgroup]]) {
    simdgroup_matrix<T, 8, 8> a[PER_STEP][4], b[PER_STEP][4];
    simdgroup_matrix<float, 8, 8> acc[4][4];
#define LOAD(i)                                                                                 \
    for (uint p = 0; p < PER_STEP; ++p) {                                                       \
        simdgroup_load(a[p][i], operands + 64 * (8 * p + i), 8);                                \
        simdgroup_load(b[p][i], operands + 64 * (8 * p + 4 + i), 8);                            \
    }
#define ZERO(i, j) acc[i][j] = make_filled_simdgroup_matrix<float, 8>(0.0f);
#define ZERO_ROW(i) FOR_J(ZERO, i)
#define MMA(i, j) simdgroup_multiply_accumulate(acc[i][j], a[p][i], b[p][j], acc[i][j]);
#define MMA_ROW(i) FOR_J(MMA, i)
#define MMA_COLUMN(j) MMA(0, j) MMA(1, j) MMA(2, j) MMA(3, j)
#define STORE(i, j) simdgroup_store(acc[i][j], result + 64 * (4 * i + j), 8);
#define STORE_ROW(i) FOR_J(STORE, i)
    FOR_4(LOAD)
    FOR_4(ZERO_ROW)
    for (uint s = 0; s < steps; ++s) {
#pragma unroll
        for (uint p = 0; p < PER_STEP; ++p) {
            if (ROWS_INNERMOST) {
                FOR_4(MMA_COLUMN)
            } else {
                FOR_4(MMA_ROW)
            }
        }
    }
    device float* result = out + (group * 8 + sg) * 16 * 64;
    FOR_4(STORE_ROW)
}
"""
def instantiation(element: str, per_step: int, rows_innermost: bool) -> str:
    return (f'template [[host_name("products")]] kernel void products<{element}, {per_step}, '
            f'{str(rows_innermost).lower()}>(device const {element}*, device float*, constant uint&, uint, uint);')


# The same loop in CUDA C++: 16 accumulators of one mma.sync shape, operands read once from random halves (the
# tensor cores' power, and so the clock they keep, depends on the data). `bottom` masks A's registers of rows 8-15:
# 0 leaves only rows 0-7, as a Metal product does.
CUDA_SOURCE = r"""
extern "C" __global__ void mma_SHAPE(const unsigned* operands, float* out, unsigned steps, unsigned bottom) {
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned a[4], b[2];
    for (int r = 0; r < 4; ++r) a[r] = operands[(6 * t + r) % 4096] & (r % 2 ? bottom : ~0u);
    for (int r = 0; r < 2; ++r) b[r] = operands[(6 * t + 4 + r) % 4096];
    float acc[16][4] = {};
    for (unsigned s = 0; s < steps; ++s) {
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            asm("mma.sync.aligned.SHAPE.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, A, B, {%0,%1,%2,%3};"
                : "+f"(acc[i][0]), "+f"(acc[i][1]), "+f"(acc[i][2]), "+f"(acc[i][3])
                : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
        }
    }
    float sum = 0.0f;
    for (int i = 0; i < 16; ++i) sum += acc[i][0] + acc[i][1] + acc[i][2] + acc[i][3];
    out[t] = sum;
}
"""
CUDA_ROWS = [  # (row name, shape, its A and B registers in the asm template, mask of rows 8-15, useful flops each)
    ("mma.sync m16n8k16 (CUDA C++)", "m16n8k16", "{%4,%5,%6,%7}", "{%8,%9}", ~0, 2 * 16 * 8 * 16),
    ("mma.sync m16n8k8 (CUDA C++)", "m16n8k8", "{%4,%5}", "{%8}", ~0, 2 * 16 * 8 * 8),
    ("  the same, rows 0-7 only", "m16n8k8", "{%4,%5}", "{%8}", 0, 2 * 8 * 8 * 8),
    ("m16n8k16, rows 0-7 only", "m16n8k16", "{%4,%5,%6,%7}", "{%8,%9}", 0, 2 * 8 * 8 * 16),
]

KINDS = [  # (row name, element type, simdgroup_float mode, products into an accumulator a step, rows innermost,
    #         cuBLAS anchor)
    ("simdgroup_half8x8", "half", "3xtf32", 1, False, "FP16"),
    ("  half, two a step, in pairs", "half", "3xtf32", 2, False, "FP16"),
    ("  half, rows innermost", "half", "3xtf32", 1, True, "FP16"),
    ("  half, two a step, rows innermost", "half", "3xtf32", 2, True, "FP16"),
    ("simdgroup_bfloat8x8", "bfloat", "3xtf32", 1, False, "BF16"),
    ("  bfloat, two a step, in pairs", "bfloat", "3xtf32", 2, False, "BF16"),
    ("  bfloat, two a step, rows innermost", "bfloat", "3xtf32", 2, True, "BF16"),
    ("simdgroup_float8x8 TF32", "float", "tf32", 1, False, "FP32"),
    ("simdgroup_float8x8 3xTF32", "float", "3xtf32", 1, False, "FP32"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--gemm-size", type=int, default=4096)
    args = parser.parse_args()
    import cupy as cp
    try:
        import torch
    except ImportError:
        torch = None

    groups = cp.cuda.Device().attributes["MultiProcessorCount"] * 4
    warps = groups * THREADS // 32
    product_flops = warps * ACCUMULATORS * STEPS * 2 * 8 * 8 * 8  # what the kernel computes: 8x8x8 products

    size = args.gemm_size
    rng = np.random.default_rng(5)
    a32, b32 = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    gemm_inputs = {"FP32": (a32, b32), "FP16": (a32.astype(np.float16), b32.astype(np.float16)),
                   "BF16": (bfloat_bits(a32), bfloat_bits(b32))}
    samplers, flops = {}, {}
    for name, pair in gemm_inputs.items():
        anchor = cublas_anchor(cp, torch, name, *pair)
        if anchor is not None:
            samplers[f"cuBLAS {name} GEMM {size}"] = anchor[0]
            flops[f"cuBLAS {name} GEMM {size}"] = 2 * size ** 3

    out = cp.empty(groups * THREADS, dtype=cp.float32)
    halves = cp.asarray(rng.uniform(-1, 1, 8192).astype(np.float16).view(np.uint32))
    for name, shape, a_regs, b_regs, bottom, per_instruction in CUDA_ROWS:
        source = CUDA_SOURCE.replace("SHAPE", shape).replace(" A,", f" {a_regs},").replace(" B,", f" {b_regs},")
        kernel = cp.RawKernel(source, f"mma_{shape}")
        arguments = (halves, out, np.uint32(STEPS), np.uint32(bottom & 0xFFFFFFFF))

        def launch(kernel=kernel, arguments=arguments):
            kernel((groups,), (THREADS,), arguments)
        samplers[name] = event_sampler(cp, launch)
        flops[name] = warps * ACCUMULATORS * STEPS * per_instruction

    interfaces = []
    for name, element, mode, per_step, rows_innermost, _ in KINDS:
        gpu = metalgpu.Interface("cuda", simdgroup_float=mode)
        interfaces.append(gpu)
        gpu.load_shader_from_str(SOURCE + instantiation(element, per_step, rows_innermost))
        gpu.set_function("products")
        values = rng.uniform(-1, 1, per_step * 8 * 64).astype(np.float32)  # the tensor cores' power depends on it
        operands = gpu.create_buffer(per_step * 8 * 64, element)
        if element == "bfloat":
            operands.contents.view(np.uint16)[:] = bfloat_bits(values)
        else:
            operands.contents[:] = values
        results = gpu.create_buffer(warps * ACCUMULATORS * 64, "float")
        samplers[name] = dispatch_sampler(gpu, groups * THREADS, [operands, results, np.uint32(STEPS // per_step)],
                                          threads_per_threadgroup=THREADS)
        flops[name] = product_flops
    try:
        medians = kernel_medians(samplers, args.repeat, flush=False)
    finally:
        for gpu in interfaces:
            gpu.close()

    tflops = {name: flops[name] / (medians[name] * 1e-6) / 1e12 for name in medians}
    print(f"{groups} threadgroups of {THREADS}; {ACCUMULATORS} accumulators a warp, {STEPS} steps; medians of "
          f"{args.repeat} (CUDA events)")
    print(f"{'what':34} {'us':>9} {'TFLOP/s':>8}   ratio to cuBLAS")
    anchors = {row[0]: f"cuBLAS FP16 GEMM {size}" for row in CUDA_ROWS}
    anchors.update({row[0]: f"cuBLAS {row[-1]} GEMM {size}" for row in KINDS})
    for name in medians:
        anchor = anchors.get(name)
        ratio = f"{tflops[name] / tflops[anchor]:.2f} ({anchor})" if anchor in tflops else ""
        print(f"{name:34} {medians[name]:9.1f} {tflops[name]:8.1f}   {ratio}", flush=True)


if __name__ == "__main__":
    main()
