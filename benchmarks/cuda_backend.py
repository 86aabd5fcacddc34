"""The CUDA backend against the anchors of DESIGN.md, measured in the same run on the same GPU:

- synchronous dispatch of a tiny kernel, Python to Python, vs CuPy RawKernel launch + synchronize;
- 10M-element cos with buffers resident on the GPU: kernel time (events) vs a device-to-device copy of the same
  bytes and vs CuPy's cp.cos; end to end (run_function with wait) vs cp.cos + synchronize;
- shared-buffer round trip (numpy writes contents, kernel, numpy reads) vs explicit pinned copies with CuPy.

    PYTHONPATH=src python benchmarks/cuda_backend.py --repeat 200
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

import metalgpu
from _timing import median_seconds

SOURCE = """
#include <metal_stdlib>
using namespace metal;
kernel void tiny(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) { out[i] = 1.0f; }
kernel void cos_kernel(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) { y[i] = cos(x[i]); }
kernel void scale(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = 2.0f * x[i]; }
"""
CUPY_TINY = 'extern "C" __global__ void tiny(float* out) { out[threadIdx.x] = 1.0f; }'
CUPY_COS = ('extern "C" __global__ void naive_cos(const float* x, float* y, unsigned n) {'
            ' unsigned i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] = cosf(x[i]); }')


def median_us(fn, repeat: int) -> float:
    return median_seconds(fn, repeat, warmup=10) * 1e6


def event_us(cp, fn, repeat: int) -> float:
    start, end = cp.cuda.Event(), cp.cuda.Event()
    samples = []
    for _ in range(repeat):
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(cp.cuda.get_elapsed_time(start, end) * 1e3)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--size", type=int, default=10_000_000)
    args = parser.parse_args()
    import cupy as cp

    n, repeat = args.size, args.repeat
    gpu = metalgpu.Interface("cuda")
    gpu.load_shader_from_str(SOURCE)
    rows = []

    # 1. dispatch overhead
    out = gpu.create_buffer(32, "float")
    gpu.set_function("tiny")
    ours = median_us(lambda: gpu.run_function(1, [out]), repeat * 10)
    tiny = cp.RawKernel(CUPY_TINY, "tiny")
    cp_out = cp.zeros(32, dtype=cp.float32)
    stream = cp.cuda.get_current_stream()

    def cupy_tiny():
        tiny((1,), (1,), (cp_out,))
        stream.synchronize()

    anchor = median_us(cupy_tiny, repeat * 10)
    rows.append(("tiny kernel, launch + wait (us)", ours, anchor, "CuPy RawKernel", anchor / ours, ">= 1.0"))

    # 2. 10M cos, resident
    x = gpu.array_to_buffer(np.random.default_rng(0).uniform(-10, 10, n).astype(np.float32))
    y = gpu.create_buffer(n, "float")
    gpu.set_function("cos_kernel")
    gpu.run_function(n, [x, y])
    kernel_times = []
    for _ in range(repeat):
        dispatch = gpu.run_function(n, [x, y], wait_for_completion=False)
        dispatch.wait()
        kernel_times.append(dispatch.gpu_time * 1e6)
    ours_kernel = statistics.median(kernel_times)
    cx = cp.asarray(x.read())
    cy = cp.empty_like(cx)
    copy_us = event_us(cp, lambda: cp.copyto(cy, cx), repeat)
    cupy_cos = event_us(cp, lambda: cp.cos(cx, out=cy), repeat)
    naive = cp.RawKernel(CUPY_COS, "naive_cos")
    naive_us = event_us(cp, lambda: naive(((n + 255) // 256,), (256,), (cx, cy, np.uint32(n))), repeat)
    bandwidth = 2 * 4 * n / (ours_kernel * 1e-6) / 1e12
    rows.append(("10M cos kernel time (us)", ours_kernel, copy_us, "d2d copy", copy_us / ours_kernel, ">= 0.9"))
    rows.append(("10M cos kernel time (us)", ours_kernel, cupy_cos, "cp.cos", cupy_cos / ours_kernel, ""))
    rows.append(("10M cos kernel time (us)", ours_kernel, naive_us, "naive CUDA", naive_us / ours_kernel, ""))
    end_to_end = median_us(lambda: gpu.run_function(n, [x, y]), repeat)

    def cupy_end_to_end():
        cp.cos(cx, out=cy)
        stream.synchronize()

    anchor = median_us(cupy_end_to_end, repeat)
    rows.append(("10M cos end to end (us)", end_to_end, anchor, "cp.cos + sync", anchor / end_to_end, ">= 0.91"))
    expected = np.cos(x.read())
    error = float(np.max(np.abs(y.contents - expected)))

    # 3. shared round trip: host writes, kernel, host reads
    data = np.random.default_rng(1).random(n, dtype=np.float32)
    gpu.set_function("scale")

    def ours_round_trip():
        x.contents[:] = data
        gpu.run_function(n, [x])
        return float(x.contents[-1])

    ours_rt = median_us(ours_round_trip, max(20, repeat // 10))

    def ours_read_write():
        x.write(data)
        gpu.run_function(n, [x])
        return float(x.read()[-1])

    ours_rw = median_us(ours_read_write, max(20, repeat // 10))
    pinned = cp.cuda.alloc_pinned_memory(4 * n)
    host = np.frombuffer(pinned, dtype=np.float32, count=n)
    device = cp.empty(n, dtype=cp.float32)

    def explicit_round_trip():
        host[:] = data
        device.set(host, stream=stream)
        cp.multiply(device, 2, out=device)
        device.get(stream=stream, out=host)
        stream.synchronize()
        return float(host[-1])

    anchor_rt = median_us(explicit_round_trip, max(20, repeat // 10))
    rows.append(("40 MB round trip, contents (us)", ours_rt, anchor_rt, "pinned copies", anchor_rt / ours_rt,
                 ">= 0.8"))
    rows.append(("40 MB round trip, write/read (us)", ours_rw, anchor_rt, "pinned copies", anchor_rt / ours_rw,
                 ""))

    print(f"device: {gpu!r}; n = {n:,}; medians of {repeat} (round trips: {max(20, repeat // 10)})")
    print(f"{'what':34} {'metalgpu':>10} {'anchor':>10}  {'anchor is':16} {'ratio':>7}  target")
    for what, ours_value, anchor_value, name, ratio, target in rows:
        print(f"{what:34} {ours_value:10.1f} {anchor_value:10.1f}  {name:16} {ratio:7.2f}  {target}")
    print(f"cos kernel: {bandwidth:.2f} TB/s counting read + write; max abs error vs numpy {error:.2e}")


if __name__ == "__main__":
    main()
