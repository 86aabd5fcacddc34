"""Cold NVRTC compile of a small kernel with the full emulation header, on a machine without a GPU: the first
compile in the process (NVRTC loads and initialises itself) and later ones (each a kernel never compiled before).

    PYTHONPATH=src python benchmarks/nvrtc_compile.py --repeat 5

Target (DESIGN.md): NVRTC <= 0.3 s.
"""
from __future__ import annotations

import argparse
import statistics
import time

from metalgpu.backends.base import CompileOptions
from metalgpu.backends.nvrtc import nvrtc_compile
from metalgpu.msl.parser import parse
from metalgpu.msl.preprocess import preprocess
from metalgpu.msl.translate import translate

KERNEL = """
#include <metal_stdlib>
using namespace metal;
kernel void NAME(constant float& a [[buffer(0)]], device const float4* x [[buffer(1)]],
                 device float4* y [[buffer(2)]], uint i [[thread_position_in_grid]]) { y[i] = a * x[i].wzyx + y[i]; }
"""


def source(name: str) -> str:
    pre = preprocess(KERNEL.replace("NAME", name), "<string>")
    return translate(pre, parse(pre.tokens), "cuda").source


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--arch", default="sm_90")
    args = parser.parse_args()
    options = CompileOptions()
    first = seconds(lambda: nvrtc_compile(source("first"), options, args.arch))
    later = [seconds(lambda i=i: nvrtc_compile(source(f"k{i}"), options, args.arch)) for i in range(args.repeat)]
    print(f"NVRTC cold compile of a small kernel ({args.arch}); target <= 300 ms")
    print(f"  first in this process          {first * 1e3:8.1f} ms")
    print(f"  later (median of {args.repeat})           {statistics.median(later) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
