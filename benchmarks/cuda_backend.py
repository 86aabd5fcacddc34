"""The CUDA backend against the anchors of DESIGN.md, measured in the same run on the same GPU:

1. synchronous dispatch of a tiny kernel, Python to Python, vs CuPy RawKernel launch + synchronize, and the bare
   cuda-bindings calls (cuLaunchKernel + cuStreamSynchronize) of our kernel, the floor under both;
   (the contenders of 1 and 2 are sampled in turn, so that drift in clocks and power falls on all alike; the
   kernels of 2, 5 and 6 each after a flush of the L2 cache, so that none finds another's data there)
2. 10M-element cos written per element in MSL, buffers resident on the GPU: kernel time (events) vs a
   hand-written CUDA float4 grid-stride kernel and vs a device-to-device copy of the same bytes; end to end
   (run_function with wait) vs cp.cos + synchronize;
3. shared-buffer round trip of 40 MB (numpy writes contents, kernel, numpy reads all of it) vs the same with
   explicit pinned copies;
4. cold and warm compile of a small kernel (benchmarks/compile.py, one process per sample);
5. a 4096 x 4096 tiled SGEMM written in MSL with threadgroup memory vs cuBLAS FP32 (cupy.matmul);
6. the cos kernel under debug=True (bounds checks compiled in) vs unchecked.

    PYTHONPATH=src python benchmarks/cuda_backend.py --repeat 200

(Not named cuda.py: a cuda.py beside the scripts would hide NVIDIA's `cuda` package from every one of them.)
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

import compile as compile_benchmark
import metalgpu
from _timing import interleaved_medians, median_seconds
from metalgpu.backends import cuda_repeat

SOURCE = """
#include <metal_stdlib>
using namespace metal;
kernel void tiny(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) { out[i] = 1.0f; }
kernel void cos_kernel(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) { y[i] = cos(x[i]); }
kernel void scale(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = 2.0f * x[i]; }

// C = A * B for n x n row-major matrices, n a multiple of 64: a 64 x 64 tile of C per threadgroup of 16 x 16
// threads, each thread 4 x 4 results strided by 16 (conflict-free threadgroup reads, coalesced writes).
constant uint TILE = 64;
constant uint DEPTH = 16;
kernel void sgemm(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                  device float* C [[buffer(2)]], constant uint& n [[buffer(3)]],
                  uint2 group [[threadgroup_position_in_grid]], uint2 local [[thread_position_in_threadgroup]],
                  uint index [[thread_index_in_threadgroup]]) {
    threadgroup float a_tile[DEPTH][TILE];
    threadgroup float b_tile[DEPTH][TILE];
    float sum[4][4] = {};
    uint row0 = group.y * TILE, col0 = group.x * TILE;
    for (uint k0 = 0; k0 < n; k0 += DEPTH) {
        for (uint t = index; t < TILE * DEPTH; t += 256) {
            a_tile[t % DEPTH][t / DEPTH] = A[(row0 + t / DEPTH) * n + k0 + t % DEPTH];
            b_tile[t / TILE][t % TILE] = B[(k0 + t / TILE) * n + col0 + t % TILE];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint k = 0; k < DEPTH; ++k) {
            float a[4], b[4];
            for (uint i = 0; i < 4; ++i) {
                a[i] = a_tile[k][local.y + 16 * i];
                b[i] = b_tile[k][local.x + 16 * i];
            }
            for (uint i = 0; i < 4; ++i)
                for (uint j = 0; j < 4; ++j)
                    sum[i][j] = fma(a[i], b[j], sum[i][j]);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    for (uint i = 0; i < 4; ++i)
        for (uint j = 0; j < 4; ++j)
            C[(row0 + local.y + 16 * i) * n + col0 + local.x + 16 * j] = sum[i][j];
}
"""
CUPY_TINY = 'extern "C" __global__ void tiny(float* out) { out[threadIdx.x] = 1.0f; }'
CUPY_COS = r'''extern "C" __global__ void cos4(const float4* x, float4* y, unsigned n4) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += gridDim.x * blockDim.x) {
        float4 v = x[i];
        y[i] = make_float4(cosf(v.x), cosf(v.y), cosf(v.z), cosf(v.w));
    }
}'''


def median_us(fn, repeat: int) -> float:
    return median_seconds(fn, repeat, warmup=10) * 1e6


def event_sampler(cp, fn):
    """A function that runs ``fn`` once and returns its GPU time in us, from CuPy events around it."""
    start, end = cp.cuda.Event(), cp.cuda.Event()

    def sample() -> float:
        start.record()
        fn()
        end.record()
        end.synchronize()
        return cp.cuda.get_elapsed_time(start, end) * 1e3
    return sample


def bfloat_bits(x: np.ndarray) -> np.ndarray:
    """float32 values as bfloat16 bit patterns, rounded to nearest even."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def cublas_anchor(cp, torch, kind: str, a: np.ndarray, b: np.ndarray):
    """(a function that runs a @ b once in cuBLAS and returns its GPU time in us, the product as float32 on the
    host) for kind "FP32" or "FP16" (CuPy, from float32 or float16 arrays), or "BF16" (PyTorch, from uint16 arrays
    of bfloat bits; CuPy has no bfloat16); None for BF16 without PyTorch."""
    if kind != "BF16":
        ca, cb = cp.asarray(a), cp.asarray(b)
        return event_sampler(cp, lambda: cp.matmul(ca, cb)), cp.asnumpy(cp.matmul(ca, cb)).astype(np.float32)
    if torch is None:
        return None
    ta, tb = (torch.from_numpy(x.view(np.int16).copy()).cuda().view(torch.bfloat16) for x in (a, b))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def sample() -> float:
        start.record()
        torch.matmul(ta, tb)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e3
    return sample, torch.matmul(ta, tb).float().cpu().numpy()


def dispatch_sampler(gpu, grid, buffers, **kwargs):
    """A function that runs the kernel once and returns its GPU time in us, from Dispatch.gpu_time (CUDA events
    around the launch, which the Interface records once gpu_time was asked of one dispatch: asked here first)."""
    first = gpu.run_function(grid, buffers, wait_for_completion=False, **kwargs)
    first.wait()
    _ = first.gpu_time

    def sample() -> float:
        dispatch = gpu.run_function(grid, buffers, wait_for_completion=False, **kwargs)
        dispatch.wait()
        return dispatch.gpu_time * 1e6
    return sample


_l2_flush = None


def flush_l2() -> None:
    """Write a buffer twice the size of the GPU's L2 cache (50 MB on an H100 or H200), so that the next kernel finds
    none of its data there: with 80 MB moved per sample, whichever kernel ran just before on the same arrays would
    otherwise hand the next one a warm cache."""
    global _l2_flush
    import cupy as cp
    if _l2_flush is None:
        _l2_flush = cp.empty(2 * cp.cuda.Device().attributes["L2CacheSize"], dtype=cp.uint8)
    _l2_flush.fill(1)
    cp.cuda.Device().synchronize()


def kernel_medians(samplers: dict, repeat: int, flush: bool = True) -> dict:
    """Median time of each sampler after one warm-up, sampled in turn so that clock and power drift fall on all
    alike, each sample after the L2 cache was flushed (``flush``, which needs CuPy)."""
    for sample in samplers.values():
        sample()
    samples = {name: [] for name in samplers}
    for _ in range(repeat):
        for name, sample in samplers.items():
            if flush:
                flush_l2()
            samples[name].append(sample())
    return {name: statistics.median(values) for name, values in samples.items()}


def event_us(cp, fn, repeat: int) -> float:
    return kernel_medians({"fn": event_sampler(cp, fn)}, repeat)["fn"]


def dispatch_us(gpu, grid, buffers, repeat: int, **kwargs) -> float:
    return kernel_medians({"run": dispatch_sampler(gpu, grid, buffers, **kwargs)}, repeat)["run"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--gemm", type=int, default=4096)
    parser.add_argument("--compile-repeat", type=int, default=5)
    args = parser.parse_args()
    import cupy as cp

    n, repeat = args.size, args.repeat
    gpu = metalgpu.Interface("cuda")
    compiled_repeats = cuda_repeat.wait(120)  # built in the background on a machine's first run
    gpu.load_shader_from_str(SOURCE)
    stream = cp.cuda.get_current_stream()
    rows = []

    # 1. dispatch overhead
    out = gpu.create_buffer(32, "float")
    gpu.set_function("tiny")
    tiny = cp.RawKernel(CUPY_TINY, "tiny")
    cp_out = cp.zeros(32, dtype=cp.float32)

    def cupy_tiny():
        tiny((1,), (1,), (cp_out,))
        stream.synchronize()

    gpu.run_function(1, [out])
    driver, launch = gpu._backend.driver, gpu._plans.plans()[0].packed.arguments

    def bare_tiny():  # the floor of any Python caller: the same two driver calls, on our kernel and stream
        driver.cuLaunchKernel(*launch)
        driver.cuStreamSynchronize(launch[8])

    tiny_medians = interleaved_medians({"ours": lambda: gpu.run_function(1, [out]), "cupy": cupy_tiny,
                                        "bare": bare_tiny}, repeat * 10, warmup=10)
    ours, anchor, bare = (tiny_medians[name] * 1e6 for name in ("ours", "cupy", "bare"))
    rows.append(("tiny kernel, launch + wait (us)", ours, anchor, "CuPy RawKernel", ours / anchor, "<= 1.0"))
    rows.append(("  the same, bare driver calls", bare, anchor, "CuPy RawKernel", bare / anchor, ""))

    # 2. 10M cos, resident on the GPU
    x = gpu.array_to_buffer(np.random.default_rng(0).uniform(-10, 10, n).astype(np.float32))
    y = gpu.create_buffer(n, "float")
    gpu.set_function("cos_kernel")
    cx = cp.asarray(x.read())
    cy = cp.empty_like(cx)
    cos4 = cp.RawKernel(CUPY_COS, "cos4")
    sms = cp.cuda.Device().attributes["MultiProcessorCount"]
    kernels = kernel_medians({
        "ours": dispatch_sampler(gpu, n, [x, y]),
        "hand": event_sampler(cp, lambda: cos4((sms * 8,), (256,), (cx, cy, np.uint32(n // 4)))),
        "copy": event_sampler(cp, lambda: cy.data.copy_from_device(cx.data, 4 * n)),
    }, repeat)
    ours_kernel, hand_us, copy_us = kernels["ours"], kernels["hand"], kernels["copy"]
    cos4((sms * 8,), (256,), (cx, cy, np.uint32(n // 4)))  # the copy ran last: cy holds the hand kernel's again
    hand_error = float(cp.max(cp.abs(cy - cp.cos(cx))))
    rows.append(("10M cos kernel (us)", ours_kernel, hand_us, "CUDA float4 loop", ours_kernel / hand_us, "<= 1.1"))
    rows.append(("10M cos kernel (us)", ours_kernel, copy_us, "d2d copy", ours_kernel / copy_us, ""))
    end_to_end = median_us(lambda: gpu.run_function(n, [x, y]), repeat)

    def cupy_end_to_end():
        cp.cos(cx, out=cy)
        stream.synchronize()

    anchor = median_us(cupy_end_to_end, repeat)
    rows.append(("10M cos end to end (us)", end_to_end, anchor, "cp.cos + sync", end_to_end / anchor, "<= 1.1"))
    cos_error = float(np.max(np.abs(y.contents - np.cos(x.read()))))
    with metalgpu.Interface("cuda", debug=True) as checked:  # every access tested against the buffer's length
        checked.load_shader_from_str(SOURCE)
        checked.set_function("cos_kernel")
        checked_buffers = [checked.array_to_buffer(x.read()), checked.create_buffer(n, "float")]
        debug = kernel_medians({"checked": dispatch_sampler(checked, n, checked_buffers),
                                "unchecked": dispatch_sampler(gpu, n, [x, y])}, repeat)
    rows.append(("10M cos kernel, debug=True (us)", debug["checked"], debug["unchecked"], "unchecked",
                 debug["checked"] / debug["unchecked"], "reported"))

    # 3. shared round trip: numpy writes, kernel, numpy reads, against explicit pinned copies
    data = np.random.default_rng(1).random(n, dtype=np.float32)
    gpu.set_function("scale")
    trips = max(20, repeat // 10)

    def ours_round_trip():
        x.contents[:] = data
        gpu.run_function(n, [x])
        return float(x.contents.sum())

    ours_rt = median_us(ours_round_trip, trips)
    pinned = cp.cuda.alloc_pinned_memory(4 * n)
    host = np.frombuffer(pinned, dtype=np.float32, count=n)
    device = cp.empty(n, dtype=cp.float32)

    def explicit_round_trip():
        host[:] = data
        device.set(host, stream=stream)
        cp.multiply(device, 2, out=device)
        device.get(stream=stream, out=host)
        stream.synchronize()
        return float(host.sum())

    anchor_rt = median_us(explicit_round_trip, trips)
    rows.append(("40 MB round trip (us)", ours_rt, anchor_rt, "pinned copies", anchor_rt / ours_rt, ">= 0.8"))
    assert ours_round_trip() == explicit_round_trip()

    # 4. a tiled SGEMM against cuBLAS
    size = args.gemm
    rng = np.random.default_rng(2)
    a = gpu.array_to_buffer(rng.standard_normal((size, size), dtype=np.float32))
    b = gpu.array_to_buffer(rng.standard_normal((size, size), dtype=np.float32))
    c = gpu.create_buffer(size * size, "float")
    gpu.set_function("sgemm")
    gemm_us = dispatch_us(gpu, (size // 4, size // 4), [a, b, c, np.uint32(size)], max(10, repeat // 20),
                          threads_per_threadgroup=(16, 16))
    ca, cb = cp.asarray(a.read()), cp.asarray(b.read())
    cublas_us = event_us(cp, lambda: cp.matmul(ca, cb), max(10, repeat // 20))
    reference = cp.asnumpy(cp.matmul(ca, cb))
    gemm_error = float(np.max(np.abs(c.contents.reshape(size, size) - reference)) / np.max(np.abs(reference)))
    tflops = 2 * size ** 3 / (gemm_us * 1e-6) / 1e12
    rows.append((f"SGEMM {size} (us)", gemm_us, cublas_us, "cuBLAS FP32", cublas_us / gemm_us, "reported"))

    print(f"device: {gpu!r}; n = {n:,}; medians of {repeat} (round trips: {trips}); repeated dispatches in "
          f"{'compiled code' if compiled_repeats else 'Python: ' + str(cuda_repeat.failure)}")
    print(f"{'what':32} {'metalgpu':>10} {'anchor':>10}  {'anchor is':17} {'ratio':>7}  target")
    for what, ours_value, anchor_value, name, ratio, target in rows:
        print(f"{what:32} {ours_value:10.1f} {anchor_value:10.1f}  {name:17} {ratio:7.2f}  {target}")
    print(f"cos: {2 * 4 * n / (ours_kernel * 1e-6) / 1e12:.2f} TB/s counting read + write, copy "
          f"{2 * 4 * n / (copy_us * 1e-6) / 1e12:.2f} TB/s; max abs error vs numpy {cos_error:.2e} "
          f"(hand-written kernel vs cp.cos {hand_error:.2e})")
    print(f"SGEMM: {tflops:.1f} TFLOP/s, max error relative to the largest entry {gemm_error:.1e}")
    gpu.close()

    print()
    sys.argv = [sys.argv[0], "--backend", "cuda", "--repeat", str(args.compile_repeat)]
    compile_benchmark.main()


if __name__ == "__main__":
    main()
