"""`metalgpu demo`: compile and run one kernel on the best backend, and say what each phase cost and why: a
first run builds what later runs find in the compile cache."""
from __future__ import annotations

import time

import numpy as np

from ..cache import CompileCache
from ..errors import ArgumentError
from ..progress import long_step

DEMO_SHADER = """\
#include <metal_stdlib>
using namespace metal;

kernel void saxpy(constant float& a [[buffer(0)]], device const float* x [[buffer(1)]],
                  device float* y [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    y[i] = a * x[i] + y[i];
}
"""
HEADER_BUILD_TIMEOUT = 600  # seconds the demo waits for a precompiled-header build it started


def demo(args) -> int:
    from .. import Interface, __version__
    from ..backends.cpu_compiler import wait_for_header_builds

    n = args.size
    if n < 1:
        raise ArgumentError(f"--size must be at least 1, not {n}")
    cache = CompileCache()
    before = set(cache.entries())
    started = time.perf_counter()
    with Interface(args.backend) as gpu:
        opened = time.perf_counter()
        after_open = set(cache.entries())
        gpu.load_shader_from_str(DEMO_SHADER)
        gpu.set_function("saxpy")
        compiled = time.perf_counter()
        compile_missed = bool(set(cache.entries()) - after_open)
        headers_seconds = None
        if gpu.backend == "cpu":
            headers_started = time.perf_counter()
            with long_step("building the precompiled headers (one time)"):
                built = wait_for_header_builds(HEADER_BUILD_TIMEOUT)
            headers_seconds = time.perf_counter() - headers_started if built else None
        x = gpu.array_to_buffer(np.arange(n, dtype=np.float32))
        y = gpu.create_buffer(n, "float")
        y.contents[:] = 1.0
        gpu.run_function(n, [2.0, x, y])  # warm-up: first touch of the memory
        y.contents[:] = 1.0
        run_started = time.perf_counter()
        gpu.run_function(n, [2.0, x, y])
        ran = time.perf_counter()
        expected = 2.0 * np.arange(n, dtype=np.float32) + 1.0
        ok = np.array_equal(y.contents, expected)
        print(f"metalgpu {__version__} demo: saxpy y = 2 x + y over {n:,} floats")
        print(f"  backend   {repr(gpu).removeprefix('<metalgpu.Interface ').removesuffix('>')}")
        built_at_open = after_open - before
        print(f"  open      {1e3 * (opened - started):8.2f} ms  " + (
            f"first run: built the {gpu.backend} backend's native runner (one time, now cached)" if built_at_open
            else "opened the device"))
        print(f"  compile   {1e3 * (compiled - opened):8.2f} ms  " + (
            "cache miss: translated and compiled the kernel (later runs load it from the cache)" if compile_missed
            else "cache hit: loaded the compiled kernel from the cache"))
        if headers_seconds is not None:
            print(f"  headers   {1e3 * headers_seconds:8.2f} ms  first run: built the precompiled headers (one time; "
                  "later compiles of new kernels skip parsing them)")
        seconds = ran - run_started
        print(f"  run       {1e3 * seconds:8.2f} ms  {n * 12 / seconds / 1e9:.1f} GB/s (read x and y, write y)")
        print(f"  result    {'correct' if ok else 'WRONG'} (checked against numpy)")
        print(f"  cache     {cache.directory}")
    return 0 if ok else 1
