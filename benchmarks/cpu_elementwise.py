"""10M-element float32 `cos` and `sqrt` through metalgpu against numpy, plus the dispatch overhead.

Buffers are created once; only `run_function` (synchronous) is timed, as the original
performance suite did. numpy is measured in the same run, on the same data, writing into a
preallocated output (`np.cos(a, out=b)`), so the ratio numpy_time / metalgpu_time compares
like with like.

    PYTHONPATH=src python benchmarks/cpu_elementwise.py --backend cpu --repeat 20

Targets (DESIGN.md, CPU backend): cos >= 2x numpy, sqrt >= 1.5x numpy.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import metalgpu
from _timing import median_seconds

SOURCE = """
#include <metal_stdlib>
using namespace metal;

kernel void cos_kernel(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                       uint id [[thread_position_in_grid]])
{
    out[id] = cos(in[id]);
}

kernel void sqrt_kernel(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                        uint id [[thread_position_in_grid]])
{
    out[id] = sqrt(in[id]);
}

kernel void tiny(device int* counter [[buffer(0)]], uint id [[thread_position_in_grid]])
{
    counter[id] += 1;
}
"""

TARGETS = {"cos": 2.0, "sqrt": 1.5}


def main() -> None:
    parser = argparse.ArgumentParser(description="elementwise cos/sqrt vs numpy, and dispatch overhead")
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per measurement (median reported)")
    parser.add_argument("--n", type=int, default=10_000_000, help="elements")
    parser.add_argument("--dispatch-runs", type=int, default=2000, help="runs of the 1-thread kernel")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    inputs = {
        "cos": rng.uniform(-100.0, 100.0, args.n).astype(np.float32),
        "sqrt": rng.uniform(0.0, 1e6, args.n).astype(np.float32),
    }
    numpy_functions = {"cos": np.cos, "sqrt": np.sqrt}

    with metalgpu.Interface(backend=args.backend) as gpu:
        gpu.load_shader_from_str(SOURCE)
        print(f"backend={args.backend}, n={args.n:,}, median of {args.repeat} runs")
        print(f"{'op':<6}{'numpy ms':>10}{'metalgpu ms':>13}{'ratio':>8}{'target':>8}  result")
        for op, data in inputs.items():
            in_buf = gpu.array_to_buffer(data)
            out_buf = gpu.create_buffer(args.n, "float")
            expected = np.empty_like(data)

            def run_numpy(f=numpy_functions[op], a=data, b=expected):
                f(a, out=b)

            def run_metalgpu(name=f"{op}_kernel", bufs=[in_buf, out_buf]):
                gpu.run_function(args.n, bufs, function_name=name)

            numpy_s = median_seconds(run_numpy, args.repeat)
            metalgpu_s = median_seconds(run_metalgpu, args.repeat)
            # Sanity check, loose: fast-math cos has an absolute error bound, sqrt a few ulp.
            np.testing.assert_allclose(out_buf.contents, expected, rtol=1e-5, atol=1e-5)
            ratio = numpy_s / metalgpu_s
            verdict = "ok" if ratio >= TARGETS[op] else "MISSED"
            print(f"{op:<6}{numpy_s * 1e3:>10.2f}{metalgpu_s * 1e3:>13.2f}{ratio:>7.2f}x{TARGETS[op]:>7.1f}x  {verdict}")
            in_buf.release()
            out_buf.release()

        counter = gpu.create_buffer(1, "int")
        gpu.set_function("tiny")
        gpu.run_function(1, [counter])
        samples = []
        for _ in range(args.dispatch_runs):
            start = time.perf_counter()
            gpu.run_function(1, [counter])
            samples.append(time.perf_counter() - start)
        assert counter.contents[0] == args.dispatch_runs + 1
        print(f"dispatch overhead, synchronous 1-thread kernel: median {statistics.median(samples) * 1e6:.1f} us "
              f"(min {min(samples) * 1e6:.1f} us, {args.dispatch_runs} runs)")


if __name__ == "__main__":
    main()
