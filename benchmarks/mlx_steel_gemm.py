"""MLX's steel GEMM, the MSL kernel MLX ships (``steel_gemm_fused``, simdgroup_matrix tiles), run through metalgpu on
CUDA tensor cores (metal/_simdgroup_mma.h) against cuBLAS, in one run on one GPU: an nn GEMM D = A @ B of n x n
row-major matrices (n = 4096 unless --size says otherwise),

- float32 in each float mode of the Interface (``simdgroup_float``): "3xtf32" (the default), "tf32", "exact" (warp
  shuffles), against cuBLAS FP32 (cupy.matmul; CuPy leaves TF32 off unless CUPY_TF32=1);
- float16 (float accumulators, as MLX instantiates it) against cuBLAS FP16 (cupy.matmul);
- bfloat16 likewise against cuBLAS BF16 (torch.matmul: CuPy has no bfloat16).

MLX's half and bfloat kernels multiply float fragments: its BlockMMA (steel/gemm/mma.h) converts each element to
the accumulator type, float, as it loads the tiles from threadgroup memory, so their products are float x float
and follow ``simdgroup_float`` like the float kernel's. A half or bfloat value is exact in TF32 (11 and 8
significant bits), so for these two the "tf32" mode gives the same results as "3xtf32" with half the tensor-core
instructions; both rows are printed.

Method as benchmarks/cuda_gemm.py: kernel times are CUDA events (Dispatch.gpu_time; events around cuBLAS), medians
of samples taken in turn, each after an L2 flush; TFLOP/s count 2 n^3. Errors are against float64 (a DGEMM of the
same input values): the largest error over the largest |C|, and the largest error over the sum of the terms'
sizes, sum_k |a_ik b_kj|. ``--backend cpu`` runs MLX's kernels alone (no anchors; sizes such as 256 or 512) as a
check of the arguments and the layout: the float modes are a CUDA matter, so float32 runs once; times are the
wall time of each launch. ``--compile-only`` compiles the chosen kernels for CUDA with NVRTC, no GPU needed.

The source is read from the corpus folder (tests/corpus/manifest.toml: ml-explore/mlx at 846d1762, in
``<corpus>/ml-explore+mlx``; ``python -m tests.corpus.fetch`` fills it), named by --corpus or $METALGPU_CORPUS_DIR;
an MLX checkout's own folder is taken too. It is loaded as the corpus tests load it: the file, with the MLX folder
as the include folder, so that ``#include "mlx/backend/metal/kernels/..."`` resolves.

    METALGPU_CORPUS_DIR=/path/to/corpus PYTHONPATH=src python benchmarks/mlx_steel_gemm.py --repeat 10
    PYTHONPATH=src python benchmarks/mlx_steel_gemm.py --corpus /path/to/corpus --backend cpu --size 256 --repeat 3
    PYTHONPATH=src python benchmarks/mlx_steel_gemm.py --corpus /path/to/corpus --compile-only

The kernels are those MLX's host code picks for this product (mlx/backend/metal/matmul.cpp at that commit):
steel_matmul_axpby sends a 4096 GEMM to steel_matmul_regular_axpby (not split-K: M x N is 256 x 256 tiles of 16,
above the 1024/2048 of its split-K case; not the NAX kernels, which need Apple's MetalPerformancePrimitives), whose
GEMM_TPARAM_MACRO chooses the tile by the GPU's class, the last letter of its architecture name. Of the classes,
'd', the one the macro calls the large device (Apple's largest GPUs: the nearest to an H100), is taken here;
there, for a large product (M x N >= 2^20):

- float32 keeps the default, bm 64, bn 64, bk 16, wm 2, wn 2: steel_gemm_fused_nn_float32_float32_bm64_bn64_bk16_wm2_wn2
  (128 threads, each SIMD-group 32 x 32 of the 64 x 64 tile);
- float16 and bfloat16, with 2 max(M, N) > K, take bm 64, bn 64, bk 16, wm 1, wn 2:
  steel_gemm_fused_nn_float16_float16_bm64_bn64_bk16_wm1_wn2 and the bfloat16 one (64 threads, each SIMD-group
  64 x 32 of the tile).

A small GPU ('g' or 'p') picks the same three kernels for nn; a medium one (any other letter, 's' or 'c') picks
64/64/16/2/2 for every type. The launch is MLX's: threadgroups of (32, wn, wm) threads, a grid of (tiles_n,
tiles_m, batch) threadgroups, swizzle_log 0 (the regular path's value), function constants has_batch (10),
use_out_source (100) and do_axpby (110) false, align_M/N/K (200-202) as the size divides the tile; GEMMParams
packed from MLX's steel/gemm/params.h (Interface.struct_dtype).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from cuda_backend import bfloat_bits, cublas_anchor, dispatch_sampler, kernel_medians

import metalgpu

MLX_FOLDER = "ml-explore+mlx"  # the corpus folder of MLX (tests/corpus/manifest.toml)
MLX_COMMIT = "846d176227a0ac13d2667e58d2bb68b322109ab0"
KERNEL_FILE = "mlx/backend/metal/kernels/steel/gemm/kernels/steel_gemm_fused.metal"

# (bm, bn, bk, wm, wn) MLX picks for a large nn product on a 'd' GPU (see above)
TILES = {"float32": (64, 64, 16, 2, 2), "float16": (64, 64, 16, 1, 2), "bfloat16": (64, 64, 16, 1, 2)}
METAL_TYPE = {"float32": "float", "float16": "half", "bfloat16": "bfloat"}

KINDS = [  # (row name, Interface mode, element type, cuBLAS anchor)
    ("float 3xTF32", "3xtf32", "float32", "FP32"),
    ("float TF32", "tf32", "float32", "FP32"),
    ("float exact (shuffles)", "exact", "float32", "FP32"),
    ("half", "3xtf32", "float16", "FP16"),
    ("half, tf32 mode", "tf32", "float16", "FP16"),
    ("bfloat", "3xtf32", "bfloat16", "BF16"),
    ("bfloat, tf32 mode", "tf32", "bfloat16", "BF16"),
]


def kernel_name(dtype: str) -> str:
    bm, bn, bk, wm, wn = TILES[dtype]
    return f"steel_gemm_fused_nn_{dtype}_{dtype}_bm{bm}_bn{bn}_bk{bk}_wm{wm}_wn{wn}"


def function_constants(dtype: str, size: int) -> dict[int, bool]:
    bm, bn, bk = TILES[dtype][:3]
    return {10: False, 100: False, 110: False, 200: size % bm == 0, 201: size % bn == 0, 202: size % bk == 0}


def find_mlx(corpus: str | None) -> Path:
    """The MLX folder (the include folder) under ``corpus``, which is a corpus folder or an MLX checkout; exits with
    a message saying what is missing and how to get it."""
    if not corpus:
        raise SystemExit("mlx_steel_gemm.py: no corpus folder: pass --corpus or set METALGPU_CORPUS_DIR to the folder "
                         f"that holds {MLX_FOLDER}/ (python -m tests.corpus.fetch fills one)")
    root = Path(corpus)
    for folder in (root / MLX_FOLDER, root):
        if (folder / KERNEL_FILE).is_file():
            return folder
    raise SystemExit(f"mlx_steel_gemm.py: {root / MLX_FOLDER / KERNEL_FILE} is missing: the corpus folder {root} "
                     f"lacks ml-explore/mlx at {MLX_COMMIT[:12]} (python -m tests.corpus.fetch fills it, or "
                     "`git archive` that commit into it)")


def bfloat_values(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def compile_only(mlx: Path, size: int, arch: str) -> None:
    """Compile each chosen kernel, with the constants the benchmark gives it, for CUDA through NVRTC: no GPU."""
    import time

    from metalgpu.backends import open_compiler
    from metalgpu.backends.base import CompileOptions
    from metalgpu.cache import CompileCache
    from metalgpu.library import Library, read_source

    path = mlx / KERNEL_FILE
    text = read_source(path)
    include_dirs = tuple(dict.fromkeys(str(folder) for folder in (path.resolve().parent, mlx.resolve())))
    cache = CompileCache()
    compiler = open_compiler("cuda", cache, arch)
    for what, mode, dtype, _ in KINDS:
        library = Library(None, cache, CompileOptions(simdgroup_float=mode), text, str(path), include_dirs,
                          compiler=compiler)
        name = kernel_name(dtype)
        start = time.perf_counter()
        error = library.try_compile((library.function_names.index(name),),
                                    tuple(sorted(function_constants(dtype, size).items())))
        seconds = time.perf_counter() - start
        print(f"{what:24} {name}: {'compiles' if error is None else 'FAILS'} for cuda {arch} ({seconds:.1f} s)",
              flush=True)
        if error is not None:
            print(error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--backend", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--corpus", default=os.environ.get("METALGPU_CORPUS_DIR", "").strip() or None,
                        help="the corpus folder (default $METALGPU_CORPUS_DIR), or an MLX checkout")
    parser.add_argument("--compile-only", action="store_true",
                        help="compile the chosen kernels for CUDA with NVRTC (no GPU) and stop")
    parser.add_argument("--arch", default="sm_90", help="CUDA architecture for --compile-only")
    args = parser.parse_args()
    if args.size < 1 or args.repeat < 1:
        parser.error("--size and --repeat must be positive")
    mlx = find_mlx(args.corpus)
    if args.compile_only:
        compile_only(mlx, args.size, args.arch)
        return

    size, on_cuda = args.size, args.backend == "cuda"
    cp = torch = None
    if on_cuda:
        import cupy as cp
        try:
            import torch
        except ImportError:
            torch = None
    xp = cp if on_cuda else np  # where the float64 references are computed
    kinds = KINDS if on_cuda else [("float", "3xtf32", "float32", "FP32"), KINDS[3], KINDS[5]]

    rng = np.random.default_rng(3)
    a32, b32 = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    inputs = {  # element type: A and B as the buffers hold them (bfloat16: bit patterns)
        "float32": (a32, b32),
        "float16": (a32.astype(np.float16), b32.astype(np.float16)),
        "bfloat16": (bfloat_bits(a32), bfloat_bits(b32)),
    }

    def values(dtype: str, x: np.ndarray):
        return xp.asarray(bfloat_values(x) if dtype == "bfloat16" else x, dtype=xp.float64)

    references = {}
    for dtype, (a, b) in inputs.items():
        da, db = values(dtype, a), values(dtype, b)
        references[dtype] = (da @ db, xp.abs(da) @ xp.abs(db))

    def errors(dtype: str, got: np.ndarray) -> tuple[float, float]:
        exact, terms = references[dtype]
        error = xp.abs(xp.asarray(got, dtype=xp.float64) - exact)
        return float(error.max() / xp.abs(exact).max()), float((error / terms).max())

    anchors = {}  # cuBLAS: name -> (sampler, errors)
    for name, dtype in (("FP32", "float32"), ("FP16", "float16"), ("BF16", "bfloat16")) if on_cuda else ():
        anchor = cublas_anchor(cp, torch, name, *inputs[dtype])
        if anchor is not None:
            anchors[name] = (anchor[0], errors(dtype, anchor[1]))

    def measure(mode: str, dtype: str, anchor) -> tuple[float, float | None, tuple[float, float]]:
        """(MLX's kernel's median us, the anchor's, its errors) for one kind."""
        bm, bn, _, wm, wn = TILES[dtype]
        gpu = metalgpu.Interface(args.backend, simdgroup_float=mode)
        try:
            gpu.load_shader(mlx / KERNEL_FILE, include_dirs=[mlx])
            gpu.set_function(kernel_name(dtype), constants=function_constants(dtype, size))
            tiles_m, tiles_n = -(-size // bm), -(-size // bn)
            params = np.zeros(1, gpu.struct_dtype("GEMMParams"))  # MLX's steel/gemm/params.h
            for field, value in {"M": size, "N": size, "K": size, "lda": size, "ldb": size, "ldd": size,
                                 "tiles_n": tiles_n, "tiles_m": tiles_m, "batch_stride_a": size * size,
                                 "batch_stride_b": size * size, "batch_stride_d": size * size, "swizzle_log": 0,
                                 "gemm_k_iterations_aligned": size // TILES[dtype][2], "batch_ndim": 1}.items():
                params[field] = value
            a, b, d = (gpu.create_buffer(size * size, METAL_TYPE[dtype]) for _ in range(3))
            for buffer, x in ((a, inputs[dtype][0]), (b, inputs[dtype][1])):
                if dtype == "bfloat16":
                    buffer.contents.view(np.uint16)[:] = x.ravel()
                else:
                    buffer.contents[:] = x.ravel()
            # A, B, C (unused), D, params, addmm params, batch shape, batch strides (the last three unused)
            buffers = [a, b, None, d, params, None, None, None]
            grid = (32 * tiles_n, wn * tiles_m, wm)
            samplers = {"ours": dispatch_sampler(gpu, grid, buffers, threads_per_threadgroup=(32, wn, wm))}
            if anchor is not None:
                samplers["anchor"] = anchor[0]
            medians = kernel_medians(samplers, args.repeat, flush=on_cuda)
            got = d.contents
            got = bfloat_values(got.view(np.uint16)) if dtype == "bfloat16" else got
            return medians["ours"], medians.get("anchor"), errors(dtype, got.reshape(size, size))
        finally:
            gpu.close()

    flops = 2 * size ** 3
    timing = "CUDA events, each after an L2 flush" if on_cuda else "wall time of each launch"
    print(f"MLX steel_gemm_fused (ml-explore/mlx {MLX_COMMIT[:12]}, {mlx}), nn GEMM {size} x {size} x {size} on "
          f"{args.backend}; medians of {args.repeat} ({timing})")
    header = f"{'kind':24} {'kernel':60} {'us':>9} {'TFLOP/s':>8}"
    if on_cuda:
        header += f" {'cuBLAS':>6} {'us':>9} {'TFLOP/s':>8} {'ratio':>6}"
    header += f"   {'err/max|C|':>10} {'err/terms':>10}"
    if on_cuda:
        header += f"   {'cuBLAS err/max|C|':>17} {'err/terms':>10}"
    print(header, flush=True)
    for what, mode, dtype, anchor in kinds:
        name = kernel_name(dtype)
        try:
            ours_us, anchor_us, (ours_max, ours_terms) = measure(mode, dtype, anchors.get(anchor))
        except metalgpu.MetalError as error:  # report it and go on with the other kinds
            print(f"{what:24} {name:60} failed: {type(error).__name__}: {error}", flush=True)
            continue
        line = f"{what:24} {name:60} {ours_us:9.0f} {flops / (ours_us * 1e-6) / 1e12:8.2f}"
        anchor_errors = ""
        if on_cuda and anchor_us is None:
            line += f" {anchor:>6} {'(none)':>9} {'':>8} {'':>6}"
        elif on_cuda:
            line += (f" {anchor:>6} {anchor_us:9.0f} {flops / (anchor_us * 1e-6) / 1e12:8.1f} "
                     f"{anchor_us / ours_us:6.2f}")
            anchor_max, anchor_terms = anchors[anchor][1]
            anchor_errors = f"   {anchor_max:17.1e} {anchor_terms:10.1e}"
        print(f"{line}   {ours_max:10.1e} {ours_terms:10.1e}{anchor_errors}", flush=True)


if __name__ == "__main__":
    main()
