"""Cooperative kernels on the CPU backend: reductions, barrier cost, and the plain loop unchanged.

    PYTHONPATH=src python benchmarks/cpu_parallel.py --repeat 15

- a 10M-float sum by a 256-thread tree reduction in threadgroup memory and by simd_sum (two levels), against
  numpy.sum on the same array: each thread first adds its own contiguous slice (as a GPU kernel would add a
  grid-strided one), then the threadgroup combines; the partial sums of the threadgroups are added by numpy
  (timed too). Target: within 20x of numpy.sum.
- the cost of one threadgroup_barrier across 256 threads on one OS thread (METALGPU_NUM_THREADS=1): a kernel
  looping K barriers, minus the same kernel with none, divided by K. Target: <= 5 us.
- the vectorised fast path: 10M-element cos (a kernel with no barrier) against numpy.cos, to check it did not
  get slower (DESIGN.md's target: >= 2x numpy).
Medians of --repeat runs; ratios within this run.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import metalgpu
from _timing import median_seconds

SOURCE = """
#include <metal_stdlib>
using namespace metal;

#define GROUP 256

static float slice_sum(device const float* in, uint gid, uint per_thread, uint n)
{
    const uint begin = gid * per_thread;
    const uint end = begin + per_thread < n ? begin + per_thread : n;
    float s = 0.0f;
    for (uint i = begin; i < end; ++i) {
        s += in[i];
    }
    return s;
}

kernel void tree_sum(device const float* in [[buffer(0)]], device float* partial [[buffer(1)]],
                     constant uint& per_thread [[buffer(2)]], constant uint& n [[buffer(3)]],
                     uint gid [[thread_position_in_grid]], uint lid [[thread_index_in_threadgroup]],
                     uint group [[threadgroup_position_in_grid]])
{
    threadgroup float scratch[GROUP];
    scratch[lid] = slice_sum(in, gid, per_thread, n);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint stride = GROUP / 2; stride > 0; stride >>= 1) {
        if (lid < stride) {
            scratch[lid] += scratch[lid + stride];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (lid == 0) {
        partial[group] = scratch[0];
    }
}

kernel void simd_sum_kernel(device const float* in [[buffer(0)]], device float* partial [[buffer(1)]],
                            constant uint& per_thread [[buffer(2)]], constant uint& n [[buffer(3)]],
                            uint gid [[thread_position_in_grid]], uint lane [[thread_index_in_simdgroup]],
                            uint simdgroup [[simdgroup_index_in_threadgroup]],
                            uint group [[threadgroup_position_in_grid]])
{
    threadgroup float sums[GROUP / 32];
    const float s = simd_sum(slice_sum(in, gid, per_thread, n));
    if (lane == 0) {
        sums[simdgroup] = s;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (simdgroup == 0) {
        const float t = simd_sum(lane < GROUP / 32 ? sums[lane] : 0.0f);
        if (lane == 0) {
            partial[group] = t;
        }
    }
}

kernel void barriers(device uint* out [[buffer(0)]], constant uint& count [[buffer(1)]],
                     uint lid [[thread_index_in_threadgroup]])
{
    for (uint i = 0; i < count; ++i) {
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    out[lid] = count;
}

kernel void cos_kernel(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                       uint id [[thread_position_in_grid]])
{
    out[id] = cos(in[id]);
}
"""

GROUP = 256


def reductions(gpu, n: int, groups: int, repeat: int) -> None:
    data = np.random.default_rng(0).random(n, dtype=np.float32)
    buffer = gpu.array_to_buffer(data)
    partial = gpu.create_buffer(groups, "float")
    threads = groups * GROUP
    per_thread = np.uint32(-(-n // threads))
    t_numpy = median_seconds(lambda: np.sum(data), repeat)
    print(f"{'sum of 10M floats':<28}{'ms':>9}{'x numpy.sum':>13}  (target <= 20x)")
    print(f"{'numpy.sum':<28}{t_numpy * 1e3:>9.2f}{1.0:>13.1f}")
    expected = float(np.sum(data, dtype=np.float64))
    for kernel in ("tree_sum", "simd_sum_kernel"):
        def run(kernel=kernel):
            gpu.run_function(threads, [buffer, partial, per_thread, np.uint32(n)], kernel,
                             threads_per_threadgroup=GROUP)
            return float(np.sum(partial.contents, dtype=np.float64))
        total = run()
        if abs(total - expected) > 1e-4 * expected:
            raise SystemExit(f"{kernel}: wrong sum {total} (expected {expected})")
        t = median_seconds(run, repeat)
        ratio = t / t_numpy
        print(f"{kernel:<28}{t * 1e3:>9.2f}{ratio:>13.1f}  {'ok' if ratio <= 20 else 'MISSED'}")


def barrier_cost(repeat: int, count: int) -> None:
    previous = os.environ.get("METALGPU_NUM_THREADS")
    os.environ["METALGPU_NUM_THREADS"] = "1"
    try:
        with metalgpu.Interface(backend="cpu") as gpu:
            gpu.load_shader_from_str(SOURCE)
            out = gpu.create_buffer(GROUP, "uint")

            def run(k: int):
                gpu.run_function(GROUP, [out, np.uint32(k)], "barriers", threads_per_threadgroup=GROUP)

            t_none = median_seconds(lambda: run(0), repeat)
            t_many = median_seconds(lambda: run(count), repeat)
    finally:
        if previous is None:
            del os.environ["METALGPU_NUM_THREADS"]
        else:
            os.environ["METALGPU_NUM_THREADS"] = previous
    per_barrier = (t_many - t_none) / count
    print(f"barrier across {GROUP} threads, 1 OS thread: {per_barrier * 1e6:.2f} us "
          f"({per_barrier / GROUP * 1e9:.1f} ns per thread; {count} barriers in {t_many * 1e3:.1f} ms, "
          f"empty kernel {t_none * 1e6:.0f} us)  target <= 5 us: {'ok' if per_barrier <= 5e-6 else 'MISSED'}")


def fast_path(gpu, n: int, repeat: int) -> None:
    data = np.random.default_rng(1).uniform(-100, 100, n).astype(np.float32)
    source, out = gpu.array_to_buffer(data), gpu.create_buffer(n, "float")
    expected = np.empty_like(data)
    t_numpy = median_seconds(lambda: np.cos(data, out=expected), repeat)
    t = median_seconds(lambda: gpu.run_function(n, [source, out], "cos_kernel"), repeat)
    np.testing.assert_allclose(out.contents, expected, atol=2e-6)
    print(f"fast path, 10M cos (no barrier): {t * 1e3:.2f} ms vs numpy.cos {t_numpy * 1e3:.2f} ms: "
          f"{t_numpy / t:.2f}x numpy (DESIGN target >= 2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description="cooperative kernels on the cpu backend")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--groups", type=int, default=256, help="threadgroups of 256 threads for the reductions")
    parser.add_argument("--barriers", type=int, default=2000)
    args = parser.parse_args()
    with metalgpu.Interface(backend="cpu") as gpu:
        gpu.load_shader_from_str(SOURCE)
        print(f"{gpu!r}, median of {args.repeat} runs")
        reductions(gpu, args.n, args.groups, args.repeat)
        fast_path(gpu, args.n, args.repeat)
    barrier_cost(args.repeat, args.barriers)


if __name__ == "__main__":
    main()
