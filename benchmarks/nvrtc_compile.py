"""Cold NVRTC compile of a small kernel with the full emulation header, on a machine without a GPU: the first
compile in the process (NVRTC loads and initialises itself) and later ones (each a kernel never compiled before),
in this process (nvrtc_compile, unbounded) and through the compile worker that the cuda backend uses
(nvrtc_limited.py): its start, a first compile that waits for it, one that finds it started (as after the front
end's work), later ones; and the cold path of a library without a GPU: a new process, an empty cache folder,
Library + ``binary`` (front end, worker, NVRTC), each in its own process.

    PYTHONPATH=src python benchmarks/nvrtc_compile.py --repeat 5

Target (DESIGN.md): NVRTC <= 0.3 s; cold load_shader + set_function + first dispatch <= 1.5 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from metalgpu.backends.base import CompileOptions
from metalgpu.backends.nvrtc import nvrtc_compile, nvrtc_flags
from metalgpu.backends.nvrtc_limited import WorkerPool
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


IN_NEW_PROCESS = {
    # NVRTC's first compile in a fresh process, in-process: what the cuda backend paid before the worker
    "in-process": """
import sys, time
from metalgpu.backends.base import CompileOptions
from metalgpu.backends.nvrtc import nvrtc_compile
source = sys.stdin.read()
start = time.perf_counter()
nvrtc_compile(source, CompileOptions(), sys.argv[1])
print(time.perf_counter() - start)
""",
    # a library's cold path without a GPU: the compiler (its worker starts), front end, NVRTC, the cache write
    "library": """
import sys, time
start = time.perf_counter()
from metalgpu.backends import open_compiler
from metalgpu.backends.base import CompileOptions
from metalgpu.cache import CompileCache
from metalgpu.library import Library
cache = CompileCache(sys.argv[2])
library = Library(None, cache, CompileOptions(), sys.stdin.read(), "saxpy.metal", (),
                  compiler=open_compiler("cuda", cache, sys.argv[1]))
library.binary(sys.argv[3])
print(time.perf_counter() - start)
""",
    # the same with NVRTC in the process, unbounded, as before the worker
    "library in-process": """
import sys, time
start = time.perf_counter()
from metalgpu.backends.base import CompileOptions, Compiler
from metalgpu.backends.nvrtc import cuda_bindings, nvrtc_compile
from metalgpu.cache import CompileCache
from metalgpu.library import Library

class InProcess(Compiler):
    target = "cuda"
    def __init__(self, arch):
        cuda_bindings()
        self.arch = arch
    def fingerprint(self):
        return "in-process " + self.arch
    def compile(self, source, options):
        return nvrtc_compile(source, options, self.arch)

cache = CompileCache(sys.argv[2])
library = Library(None, cache, CompileOptions(), sys.stdin.read(), "saxpy.metal", (),
                  compiler=InProcess(sys.argv[1]))
library.binary(sys.argv[3])
print(time.perf_counter() - start)
""",
}


def in_new_process(kind: str, arch: str, stdin: str, kernel: str = "") -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    with tempfile.TemporaryDirectory() as cache:
        done = subprocess.run([sys.executable, "-c", IN_NEW_PROCESS[kind], arch, cache, kernel], input=stdin, env=env,
                              capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def worker_samples(tag: str, arch: str, flags: list[str]) -> dict[str, float]:
    """One sample of each measure, named ``tag``: every kernel compiled is new to NVRTC."""
    result = {"new process, in-process NVRTC": in_new_process("in-process", arch, source(f"p{tag}"))}
    pool = WorkerPool()
    start_and_empty = seconds(lambda: pool.compile("", flags))
    result["worker start (to an empty compile)"] = start_and_empty - seconds(lambda: pool.compile("", flags))
    pool.close()
    pool = WorkerPool()
    result["worker: first, waiting for it"] = seconds(lambda: pool.compile(source(f"w{tag}"), flags))
    result["worker: later"] = seconds(lambda: pool.compile(source(f"l{tag}"), flags))
    pool.close()
    pool = WorkerPool()
    pool.prestart()
    time.sleep(1.0)  # as if the front end had worked that long
    result["worker: first, started before"] = seconds(lambda: pool.compile(source(f"b{tag}"), flags))
    pool.close()
    name = f"c{tag}_{os.getpid()}"
    for kind in ("library in-process", "library"):
        result[f"{kind} cold, no GPU (new process)"] = in_new_process(kind, arch, KERNEL.replace("NAME", name), name)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--arch", default="sm_90")
    args = parser.parse_args()
    options = CompileOptions()
    flags = nvrtc_flags(options, args.arch)
    first = seconds(lambda: nvrtc_compile(source("first"), options, args.arch))
    later = [seconds(lambda i=i: nvrtc_compile(source(f"k{i}"), options, args.arch)) for i in range(args.repeat)]
    print(f"NVRTC cold compile of a small kernel ({args.arch}); target <= 300 ms")
    print(f"  first in this process          {first * 1e3:8.1f} ms")
    print(f"  later (median of {args.repeat})           {statistics.median(later) * 1e3:8.1f} ms")

    samples: dict[str, list[float]] = {}
    for i in range(args.repeat):
        for name, value in worker_samples(f"s{i}", args.arch, flags).items():
            samples.setdefault(name, []).append(value)
    print(f"Through the compile worker, median of {args.repeat} (each first in a new worker or process)")
    for name, times in samples.items():
        print(f"  {name:38s} {statistics.median(times) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
