"""Cold NVRTC compile of a small kernel with the full emulation header, on a machine without a GPU: plain, while
writing the precompiled headers (the first compile on a machine), and reading them (every later new kernel).

    PYTHONPATH=src python benchmarks/nvrtc_compile.py --repeat 5

Target (issue 4 / DESIGN.md): NVRTC <= 0.3 s.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from metalgpu.backends.base import CompileOptions
from metalgpu.backends.cuda import nvrtc_compile
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
    with tempfile.TemporaryDirectory() as folder:
        pch = Path(folder) / "headers.pch"
        plain = [seconds(lambda i=i: nvrtc_compile(source(f"plain{i}"), options, args.arch)) for i in range(args.repeat)]
        create = seconds(lambda: nvrtc_compile(source("create"), options, args.arch, (f"--create-pch={pch}",)))
        use = [seconds(lambda i=i: nvrtc_compile(source(f"use{i}"), options, args.arch, (f"--use-pch={pch}",)))
               for i in range(args.repeat)]
    print(f"NVRTC cold compile of a small kernel ({args.arch}), medians of {args.repeat}; target <= 300 ms")
    print(f"  headers parsed every time      {statistics.median(plain) * 1e3:8.1f} ms")
    print(f"  first compile, writing the PCH {create * 1e3:8.1f} ms (once per machine and header version)")
    print(f"  headers precompiled            {statistics.median(use) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
