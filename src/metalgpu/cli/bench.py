"""`metalgpu bench`: a quick benchmark suite (seconds): a few kernels against numpy on the host, and against
CuPy where the backend is cuda and CuPy is installed. Each figure is the median of several runs after a warm-up;
the ratios, measured in the same run, are what to compare across machines (benchmarks/ has the thorough ones)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from ..errors import ArgumentError, DispatchError

KERNELS = """\
#include <metal_stdlib>
using namespace metal;

kernel void cosine(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) {
    y[i] = cos(x[i]);
}

kernel void saxpy(constant float& a [[buffer(0)]], device const float* x [[buffer(1)]],
                  device float* y [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    y[i] = a * x[i] + y[i];
}

kernel void add(device const float* x [[buffer(0)]], device const float* y [[buffer(1)]],
                device float* z [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    z[i] = x[i] + y[i];
}

// C = A B for n x n matrices, 16 x 16 tiles staged in threadgroup memory
kernel void matmul(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                   device float* C [[buffer(2)]], constant uint& n [[buffer(3)]],
                   uint2 gid [[thread_position_in_grid]], uint2 lid [[thread_position_in_threadgroup]]) {
    threadgroup float a_tile[16][16];
    threadgroup float b_tile[16][16];
    float sum = 0.0f;
    for (uint k0 = 0; k0 < n; k0 += 16) {
        a_tile[lid.y][lid.x] = A[gid.y * n + k0 + lid.x];
        b_tile[lid.y][lid.x] = B[(k0 + lid.y) * n + gid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint k = 0; k < 16; ++k) {
            sum += a_tile[lid.y][k] * b_tile[k][lid.x];
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    C[gid.y * n + gid.x] = sum;
}
"""


def median_seconds(call: Callable[[], object], repeat: int) -> float:
    call()  # warm-up: first touch of the memory, lazy loading
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _cupy():
    try:
        import cupy
    except Exception:  # not installed, or no CUDA runtime for it
        return None
    return cupy


def bench(args) -> int:
    from .. import Interface, __version__

    size, repeat, n = args.size, args.repeat, args.matrix
    if size < 1 or repeat < 1 or n < 16 or n % 16:
        raise ArgumentError("--size and --repeat must be positive and --matrix a positive multiple of 16")
    rng = np.random.default_rng(0)
    x_host = rng.uniform(-3, 3, size).astype(np.float32)
    y_host = rng.uniform(-3, 3, size).astype(np.float32)
    a_host = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    b_host = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    tiny = 1000
    with Interface(args.backend) as gpu:
        gpu.load_shader_from_str(KERNELS)
        x, y = gpu.array_to_buffer(x_host), gpu.array_to_buffer(y_host)
        out = gpu.create_buffer(size, "float")
        a, b, c = gpu.array_to_buffer(a_host), gpu.array_to_buffer(b_host), gpu.create_buffer(n * n, "float")
        x_tiny, y_tiny = gpu.array_to_buffer(x_host[:tiny]), gpu.array_to_buffer(y_host[:tiny])
        z_tiny = gpu.create_buffer(tiny, "float")
        host_out, host_y, host_c = np.empty_like(x_host), y_host.copy(), np.empty((n, n), np.float32)
        cases = [
            (f"cos, {size:,} floats",
             lambda: gpu.run_function(size, [x, out], "cosine"),
             lambda: np.cos(x_host, out=host_out)),
            (f"saxpy y = 2x + y, {size:,} floats",
             lambda: gpu.run_function(size, [2.0, x, y], "saxpy"),
             lambda: np.add(np.multiply(x_host, np.float32(2), out=host_out), host_y, out=host_y)),
            (f"matmul {n} x {n}, 16 x 16 tiles",
             lambda: gpu.run_function((n, n), [a, b, c, np.uint32(n)], "matmul", threads_per_threadgroup=(16, 16)),
             lambda: np.matmul(a_host, b_host, out=host_c)),
            (f"one small dispatch ({tiny:,} floats added)",
             lambda: gpu.run_function(tiny, [x_tiny, y_tiny, z_tiny], "add"),
             lambda: np.add(x_host[:tiny], y_host[:tiny], out=host_out[:tiny])),
        ]
        cupy = _cupy() if gpu.backend == "cuda" else None
        cupy_calls = _cupy_cases(cupy, x_host, y_host, a_host, b_host, tiny) if cupy is not None else None
        print(f"metalgpu {__version__} bench on {repr(gpu).removeprefix('<metalgpu.Interface ').removesuffix('>')}; "
              f"medians of {repeat} runs (numpy {np.__version__} on the host"
              f"{f', CuPy {cupy.__version__}' if cupy is not None else ''})")
        header = f"  {'what':<38} {'metalgpu':>10} {'numpy':>10} {'vs numpy':>10}"
        print(header + (f" {'CuPy':>10} {'vs CuPy':>9}" if cupy is not None else ""))
        for index, (what, kernel, host) in enumerate(cases):
            mine, theirs = median_seconds(kernel, repeat), median_seconds(host, repeat)
            line = f"  {what:<38} {_time(mine):>10} {_time(theirs):>10} {theirs / mine:>9.2f}x"
            if cupy_calls is not None:
                other = median_seconds(cupy_calls[index], repeat)
                line += f" {_time(other):>10} {other / mine:>8.2f}x"
            print(line)
        assert_close(c.read().reshape(n, n), a_host @ b_host)
    print("  (a ratio above 1 means metalgpu is faster; the kernels' first compile is not timed)")
    return 0


def assert_close(result: np.ndarray, expected: np.ndarray) -> None:
    """The benchmark's matrix product must be right for its time to mean anything."""
    if not np.allclose(result, expected, rtol=1e-4, atol=1e-3):
        raise DispatchError("the benchmark's matrix product differs from numpy's")


def _cupy_cases(cupy, x_host, y_host, a_host, b_host, tiny) -> list[Callable[[], object]]:
    """The same work in CuPy, each synchronised, as run_function is."""
    x, y, a, b = (cupy.asarray(v) for v in (x_host, y_host, a_host, b_host))
    out, c = cupy.empty_like(x), cupy.empty_like(a)
    synchronize = cupy.cuda.Device().synchronize

    def timed(call):
        def run():
            call()
            synchronize()
        return run

    return [timed(lambda: cupy.cos(x, out=out)),
            timed(lambda: cupy.add(cupy.multiply(x, np.float32(2), out=out), y, out=y)),
            timed(lambda: cupy.matmul(a, b, out=c)),
            timed(lambda: cupy.add(x[:tiny], y[:tiny], out=out[:tiny]))]


def _time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"
