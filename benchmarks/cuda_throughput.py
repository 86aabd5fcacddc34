"""Streams of dependent dispatches and batches, against the anchors of DESIGN.md, measured in one run.

A stream is `--count` (1,000) dispatches of a `--size` (64K) element kernel, each reading what the one before wrote
(x = 0.999 x + 0.001, in place), then one wait; a sample times the whole stream, and the table gives the median per
dispatch. The contenders of each section are sampled in turn, so that drift in clocks and load falls on all alike.

cuda:
1. asynchronous run_function, then synchronize(), vs CuPy RawKernel launches of the same kernel written in CUDA,
   and vs bare cuda-bindings cuLaunchKernel calls of our kernel on our stream: the driver's floor for any Python
   caller (target: <= 0.8x CuPy); beside them the backend's compiled submit called directly, without
   run_function's Python part;
2. the same dispatches as a batch: recorded once and replayed (Batch.replay), and recorded anew every time (a with
   block around the loop), vs CuPy's launch loop (target for the replay: >= 3x faster) and vs a CUDA graph captured
   by CuPy (Stream.begin_capture / end_capture, Graph.launch), and our kernel captured the same way (what of the
   difference is the kernel's);
3. a batch whose scalar argument changes every time it is recorded (its graph updated in place, not instantiated
   again), and a loop of synchronous dispatches whose scalar argument is a new value every time (the plan of the
   first is re-packed, not checked again).
cpu: the same streams against a loop of synchronous run_function calls.

    PYTHONPATH=src python benchmarks/cuda_throughput.py --backend cuda --repeat 20
    PYTHONPATH=src python benchmarks/cuda_throughput.py --backend cpu --repeat 5
"""
from __future__ import annotations

import argparse

import numpy as np

import metalgpu
from _timing import interleaved_medians

SOURCE = """
#include <metal_stdlib>
using namespace metal;
kernel void step(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = x[i] * 0.999f + 0.001f; }
kernel void scaled_step(device float* x [[buffer(0)]], constant float& a [[buffer(1)]],
                        uint i [[thread_position_in_grid]]) { x[i] = x[i] * a + 0.001f; }
"""
CUPY_STEP = r'''extern "C" __global__ void step(float* x, unsigned n) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = x[i] * 0.999f + 0.001f;
}'''


def expected_after(values: np.ndarray, count: int, factors=None) -> np.ndarray:
    """``count`` steps from ``values`` in float32, step i scaling by ``factors[i]`` (default 0.999)."""
    values = values.astype(np.float32)
    for step in range(count):
        factor = np.float32(0.999 if factors is None else factors[step])
        values = values * factor + np.float32(0.001)
    return values


def check(buffer, start: np.ndarray, count: int, what: str, factors=None) -> None:
    """A fast wrong stream fails: ``count`` steps from ``start`` against numpy in float32. The kernels may fuse the
    multiply-add (numpy rounds twice): up to an ulp of difference per step, which later steps shrink by 0.999, so
    at most ``count`` ulps of 1 (values stay in [0, 1])."""
    got = buffer.read()
    if not np.allclose(got, expected_after(start, count, factors), rtol=0, atol=count * 2.0 ** -23):
        raise SystemExit(f"{what}: wrong results")


def ours(gpu, args) -> tuple[dict, dict, object]:
    """The contenders that run through metalgpu, by name, and a function that checks their results."""
    n, count = args.size, args.count
    start = np.random.default_rng(0).random(n, dtype=np.float32)
    x = gpu.array_to_buffer(start)
    gpu.set_function("step")

    def synchronous():
        for _ in range(count):
            gpu.run_function(n, [x])

    def asynchronous():
        for _ in range(count):
            gpu.run_function(n, [x], wait_for_completion=False)
        gpu.synchronize()

    with gpu.batch() as batch:
        for _ in range(count):
            gpu.run_function(n, [x])

    def recorded_anew():
        with gpu.batch():
            for _ in range(count):
                gpu.run_function(n, [x])

    factors = [np.float32(0.999), np.float32(0.998)]
    turn = [0]

    def scalars_changed():
        a = factors[turn[0] % 2]
        turn[0] += 1
        with gpu.batch():
            for _ in range(count):
                gpu.run_function(n, [x, a], function_name="scaled_step")

    steps = np.float32(0.999) - np.arange(count, dtype=np.float32) * np.float32(1e-6)
    step_factors = [float(step) for step in steps]  # a new Python float for every dispatch, as a loop makes them

    def synchronous_scalar_changes():
        for a in step_factors:
            gpu.run_function(n, [x, a], function_name="scaled_step")

    calls = {"async": asynchronous, "replay": batch.replay, "recorded anew": recorded_anew,
             "scalars changed": scalars_changed, "sync scalar changes": synchronous_scalar_changes}
    if gpu.backend == "cpu":
        calls["sync"] = synchronous

    def verify():
        for name, call in (("async", asynchronous), ("replay", batch.replay), ("recorded anew", recorded_anew)):
            x.write(start)
            call()
            check(x, start, count, name)
        x.write(start)
        synchronous_scalar_changes()
        check(x, start, count, "sync scalar changes", step_factors)
    return calls, {"x": x}, verify


def cupy_contenders(gpu, args, x) -> dict:
    import cupy as cp

    n, count = args.size, args.count
    kernel = cp.RawKernel(CUPY_STEP, "step")
    data = cp.asarray(np.random.default_rng(0).random(n, dtype=np.float32))
    blocks, size = ((n + 255) // 256,), np.uint32(n)
    stream = cp.cuda.Stream(non_blocking=True)

    def cupy_loop():
        with stream:
            for _ in range(count):
                kernel(blocks, (256,), (data, size))
        stream.synchronize()

    cupy_loop()  # compiles and loads the kernel, which a capture must not do
    with stream:
        stream.begin_capture()
        for _ in range(count):
            kernel(blocks, (256,), (data, size))
        graph = stream.end_capture()

    def cupy_graph():
        graph.launch(stream)
        stream.synchronize()

    gpu.run_function(args.size, [x])  # our plan, cached: its launch is what the bare calls repeat
    backend = gpu._backend
    driver, launch = backend.driver, gpu._plans.plans()[0].packed.arguments

    def bare():  # the floor of any Python caller: cuLaunchKernel through cuda-bindings, our kernel and stream
        for _ in range(count):
            driver.cuLaunchKernel(*launch)
        driver.cuStreamSynchronize(launch[8])

    submit = backend.compiled_submit  # the compiled path alone: run_function's Python part is the difference
    state, function = gpu._compiled_plans, gpu._function

    def compiled_submit():
        for _ in range(count):
            submit(state, function, args.size, [x])
        gpu.synchronize()

    ours_on_cupy = list(launch)  # our kernel in a graph CuPy captures: the graph's cost apart from the kernel's
    ours_on_cupy[8] = driver.CUstream(stream.ptr)
    with stream:
        stream.begin_capture()
        for _ in range(count):
            (err,) = driver.cuLaunchKernel(*ours_on_cupy)
            if err != driver.CUresult.CUDA_SUCCESS:
                raise SystemExit(f"capturing our kernel: {err}")
        our_graph = stream.end_capture()

    def our_kernel_cupy_graph():
        our_graph.launch(stream)
        stream.synchronize()

    before = cp.asnumpy(data)
    with stream:
        kernel(blocks, (256,), (data, size))
    stream.synchronize()
    if not np.allclose(cp.asnumpy(data), expected_after(before, 1), rtol=0, atol=2.0 ** -23):
        raise SystemExit("CuPy's kernel: wrong results")
    contenders = {"cupy loop": cupy_loop, "cupy graph": cupy_graph, "bare driver": bare,
                  "our kernel, cupy graph": our_kernel_cupy_graph}
    if submit is not None:
        contenders["compiled submit"] = compiled_submit
    return contenders


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="cuda")
    parser.add_argument("--count", type=int, default=1000, help="dispatches per stream")
    parser.add_argument("--size", type=int, default=1 << 16, help="elements per dispatch")
    parser.add_argument("--repeat", type=int, default=20, help="streams sampled per contender")
    args = parser.parse_args()
    gpu = metalgpu.Interface(args.backend)
    if gpu.backend == "cuda":
        from metalgpu.backends import cuda_repeat
        compiled = cuda_repeat.wait(120)  # built in the background on a machine's first run
    gpu.load_shader_from_str(SOURCE)
    calls, buffers, verify = ours(gpu, args)
    if gpu.backend == "cuda":
        calls.update(cupy_contenders(gpu, args, buffers["x"]))
    verify()
    medians = interleaved_medians(calls, args.repeat, warmup=2)
    per = {name: seconds / args.count * 1e6 for name, seconds in medians.items()}

    if gpu.backend == "cuda":
        rows = [("async stream, per dispatch", "async", "cupy loop", "<= 0.8"),
                ("  bare cuLaunchKernel (floor)", "bare driver", "cupy loop", ""),
                ("  async vs the floor", "async", "bare driver", ""),
                ("  the compiled submit alone", "compiled submit", "cupy loop", ""),
                ("batch replayed, per dispatch", "replay", "cupy loop", ">= 3x faster: <= 0.33"),
                ("  vs CuPy's captured graph", "replay", "cupy graph", ""),
                ("  our kernel in CuPy's graph", "our kernel, cupy graph", "cupy graph", ""),
                ("  CuPy's graph vs its loop", "cupy graph", "cupy loop", ""),
                ("batch recorded anew", "recorded anew", "cupy loop", "reported"),
                ("batch, a scalar changed", "scalars changed", "cupy loop", "reported"),
                ("sync, the scalar changes", "sync scalar changes", "cupy loop", "reported")]
        graphs = gpu._backend.graphs
        note = (f"repeats in {'compiled code' if compiled else 'Python'}; graphs built {graphs.builds}, "
                f"updated {graphs.updates}, replayed {graphs.replays}")
    else:
        rows = [("async stream, per dispatch", "async", "sync", "reported"),
                ("batch replayed, per dispatch", "replay", "sync", "reported"),
                ("batch recorded anew", "recorded anew", "sync", "reported"),
                ("batch, a scalar changed", "scalars changed", "sync", "reported"),
                ("sync, the scalar changes", "sync scalar changes", "sync", "reported")]
        note = f"{gpu._backend.threads} threads"
    print(f"device: {gpu!r}; {args.count} dependent dispatches of {args.size:,} elements per stream, medians of "
          f"{args.repeat} streams; {note}")
    print(f"{'what':32} {'us':>8} {'anchor us':>10}  {'anchor is':12} {'ratio':>6}  target")
    for what, name, anchor, target in rows:
        if name not in per:  # the compiled submit, where the extension is not built
            continue
        print(f"{what:32} {per[name]:8.2f} {per[anchor]:10.2f}  {anchor:12} {per[name] / per[anchor]:6.2f}  {target}")
    gpu.close()


if __name__ == "__main__":
    main()
