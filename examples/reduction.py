"""The sum of millions of floats in two dispatches: per-threadgroup sums with `simd_sum`, then their sum.

Shows: SIMD-group functions (`simd_sum`) and the builtins that place a thread in its SIMD-group
(`thread_index_in_simdgroup`, `simdgroup_index_in_threadgroup`), threadgroup memory for the SIMD-groups' sums,
a grid-stride loop, and one kernel run twice: over the values, then over its own partial sums.

    python examples/reduction.py [--backend cpu|cuda|metal] [--count 4194304]

Prints the sum and its difference from numpy's (in float64); writes no file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import metalgpu

HERE = Path(__file__).parent
THREADGROUP = 256  # threads per threadgroup: 8 SIMD-groups of 32
GROUPS = 64  # threadgroups in the first pass, so 64 partial sums


def device_sum(gpu: metalgpu.Interface, values: np.ndarray) -> float:
    """The sum of a float32 array, on the device."""
    gpu.load_shader(HERE / "reduction.metal")
    gpu.set_function("sum_partials")
    data = gpu.array_to_buffer(values)
    partial_sums = gpu.create_buffer(GROUPS, "float")
    total = gpu.create_buffer(1, "float")
    # First pass: GROUPS threadgroups, one partial sum each. Second: one threadgroup adds the partial sums.
    gpu.run_function(GROUPS * THREADGROUP, [data, partial_sums, len(values)], threads_per_threadgroup=THREADGROUP)
    gpu.run_function(THREADGROUP, [partial_sums, total, GROUPS], threads_per_threadgroup=THREADGROUP)
    return float(total.contents[0])


def main(argv: list[str] | None = None) -> tuple[np.ndarray, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best available)")
    parser.add_argument("--count", type=int, default=1 << 22, help="how many floats to add")
    args = parser.parse_args(argv)

    values = np.random.default_rng(0).standard_normal(args.count, dtype=np.float32) + 0.5
    with metalgpu.Interface(backend=args.backend) as gpu:
        total = device_sum(gpu, values)

    exact = float(np.sum(values, dtype=np.float64))
    # Each value goes through at most count / threads additions in its thread, then 31 in each of the four
    # SIMD-group sums (two a pass, 32 lanes added in any order) and one in the second pass's thread: each rounds
    # to float32, which bounds the error by that many float32 epsilons of the sum of the magnitudes.
    additions = -(-args.count // (GROUPS * THREADGROUP)) + 4 * 31 + 1
    bound = additions * np.finfo(np.float32).eps * float(np.sum(np.abs(values), dtype=np.float64))
    print(f"reduction: the sum of {args.count} floats ({gpu.backend}) is {total:.6f}; numpy (float64): {exact:.6f}; "
          f"difference {abs(total - exact):.2e}, within the float32 bound {bound:.2e}: {abs(total - exact) <= bound}")
    return values, total


if __name__ == "__main__":
    main()
