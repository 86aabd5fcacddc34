"""Interface(backend="cpu", isolate=True) against the in-process cpu backend, measured side by side in one run:

- dispatch overhead: a synchronous `run_function` of a 1-thread kernel (a cached plan), and of one with a constant
  argument (its plan, and so its run message, is packed anew each time);
- a stream of asynchronous dispatches, waited for at the end, per dispatch;
- a 10M-element float32 `cos` (the buffers are shared memory in the isolated mode);
- starting a worker: loading a module into an isolated Interface starts a new one.

    PYTHONPATH=src python benchmarks/cpu_isolated.py --repeat 2000
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import metalgpu
from _timing import interleaved_medians

SOURCE = """
#include <metal_stdlib>
using namespace metal;

kernel void tiny(device int* counter [[buffer(0)]], uint id [[thread_position_in_grid]])
{
    counter[id] += 1;
}

kernel void tiny_by(device int* counter [[buffer(0)]], constant int& step [[buffer(1)]],
                    uint id [[thread_position_in_grid]])
{
    counter[id] += step;
}

kernel void cos_kernel(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                       uint id [[thread_position_in_grid]])
{
    out[id] = cos(in[id]);
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description="isolated (sandboxed worker) vs in-process cpu backend")
    parser.add_argument("--repeat", type=int, default=2000, help="samples of each dispatch measurement")
    parser.add_argument("--stream", type=int, default=1000, help="asynchronous dispatches in a stream")
    parser.add_argument("--n", type=int, default=10_000_000, help="elements of the cos measurement")
    args = parser.parse_args()

    interfaces = {"in-process": metalgpu.Interface(backend="cpu"),
                  "isolated": metalgpu.Interface(backend="cpu", isolate=True)}
    counters, calls = {}, {}
    for mode, gpu in interfaces.items():
        gpu.load_shader_from_str(SOURCE)
        counters[mode] = gpu.create_buffer(1, "int")
    print(f"{interfaces['isolated']!r}; medians")
    print(f"{'measurement':<44}{'in-process':>12}{'isolated':>12}{'ratio':>8}{'difference':>12}")

    def report(what: str, medians: dict, unit: str = "us", scale: float = 1e6) -> None:
        inside, isolated = medians["in-process"], medians["isolated"]
        print(f"{what:<44}{inside * scale:>9.1f} {unit}{isolated * scale:>9.1f} {unit}{isolated / inside:>7.2f}x"
              f"{(isolated - inside) * scale:>9.1f} {unit}")

    for mode, gpu in interfaces.items():
        calls[mode] = lambda gpu=gpu, counter=counters[mode]: gpu.run_function(1, [counter], function_name="tiny")
    report("synchronous 1-thread kernel", interleaved_medians(calls, args.repeat, warmup=50))

    for mode, gpu in interfaces.items():
        calls[mode] = lambda gpu=gpu, counter=counters[mode]: gpu.run_function(1, [counter, 3],
                                                                               function_name="tiny_by")
    report("... with a constant argument", interleaved_medians(calls, args.repeat, warmup=50))

    def stream(gpu, counter) -> None:
        for _ in range(args.stream):
            gpu.run_function(1, [counter], function_name="tiny", wait_for_completion=False)
        gpu.synchronize()

    for mode, gpu in interfaces.items():
        calls[mode] = lambda gpu=gpu, counter=counters[mode]: stream(gpu, counter)
    medians = interleaved_medians(calls, max(3, args.repeat // 200), warmup=1)
    report(f"stream of {args.stream} asynchronous, per dispatch", {m: t / args.stream for m, t in medians.items()})

    data = np.random.default_rng(0).uniform(-100.0, 100.0, args.n).astype(np.float32)
    for mode, gpu in interfaces.items():
        source, out = gpu.array_to_buffer(data), gpu.create_buffer(args.n, "float")
        calls[mode] = lambda gpu=gpu, bufs=[source, out]: gpu.run_function(args.n, bufs, function_name="cos_kernel")
        calls[mode]()
        np.testing.assert_allclose(out.contents, np.cos(data), rtol=1e-5, atol=1e-5)
    report(f"{args.n:,}-element cos", interleaved_medians(calls, 20), unit="ms", scale=1e3)

    backend = interfaces["isolated"]._backend

    def restart() -> float:
        try:
            backend.self_test("exec")  # refused by the filter: the worker ends
        except metalgpu.DispatchError:
            pass
        start = time.perf_counter()
        backend.self_test("allowed")  # starts a new worker, which loads the modules so far, and asks it once
        return time.perf_counter() - start

    starts = [restart() for _ in range(11)]
    print(f"{'starting a worker (isolated only)':<44}{'':>12}{statistics.median(starts) * 1e3:>9.1f} ms")
    for mode, gpu in interfaces.items():
        assert counters[mode].contents[0] > 0
        gpu.close()


if __name__ == "__main__":
    main()
