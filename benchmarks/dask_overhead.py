"""What Dask costs around a kernel: one large elementwise job (out = a * x + y over float32) run directly, as one
dispatch, and through metalgpu.dask with the threaded scheduler and with a one-worker cluster (LocalCUDACluster
where dask_cuda imports and the backend is cuda, else a LocalCluster of one process), at a few chunk sizes.

The inputs are made and kept on the scheduler's side before timing (on the GPU as CuPy chunks where cupy imports
and the backend is cuda) and the results stay there (persist, then wait), so the figures are the kernel, the
binding of each block and the scheduling, not transfers to the client. Reported: medians, and the overhead per
chunk, (Dask - direct) / chunks. A numpy (or CuPy) a * x + y through the same scheduler is printed as Dask's own
anchor.

    python benchmarks/dask_overhead.py --backend cpu
    python benchmarks/dask_overhead.py --backend cuda --size 268435456
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import median_seconds  # noqa: E402

SAXPY = """
#include <metal_stdlib>
using namespace metal;
kernel void saxpy(device const float* x [[buffer(0)]], device const float* y [[buffer(1)]],
                  device float* out [[buffer(2)]], constant float& a [[buffer(3)]],
                  uint i [[thread_position_in_grid]]) {
    out[i] = a * x[i] + y[i];
}
"""


def direct_seconds(backend: str, size: int, repeat: int) -> float:
    """The kernel over the whole array, buffers already on the device: one synchronous dispatch."""
    import metalgpu

    with metalgpu.Interface(backend) as gpu:
        gpu.load_shader_from_str(SAXPY)
        gpu.set_function("saxpy")
        x, y = gpu.create_buffer(size, "float"), gpu.create_buffer(size, "float")
        out = gpu.create_buffer(size, "float")
        x.contents[:] = 1.0
        y.contents[:] = 2.0
        return median_seconds(lambda: gpu.run_function(size, [x, y, out, 2.0]), repeat, warmup=2)


def blocks_without_dask_seconds(backend: str, size: int, chunk: int, repeat: int, on_gpu: bool) -> float:
    """What the tasks do, without Dask: the kernel over each block in turn, in one thread, through the same
    per-block call (chunks bound in place, a new output each block)."""
    import dask.array as da

    from metalgpu.dask.blocks import prepare
    from metalgpu.dask.worker import run_block

    xs = [np.arange(start, min(start + chunk, size), dtype=np.float32) for start in range(0, size, chunk)]
    ys = [block * np.float32(0.5) for block in xs]
    if on_gpu:
        import cupy
        xs, ys = [cupy.asarray(block) for block in xs], [cupy.asarray(block) for block in ys]
    like = da.zeros(size, chunks=chunk, dtype=np.float32)
    kernel, _, call, _, _ = prepare(SAXPY, "saxpy", (like, like, 2.0), constants=None, out_dtype=None, inout=(),
                                    grid=None, threads_per_threadgroup=None, include_dirs=(),
                                    function_constants=None, backend=backend, device=0)

    def all_blocks():
        for index, (x, y) in enumerate(zip(xs, ys)):
            run_block(kernel, call, x, y, block_id=(index,))
    return median_seconds(all_blocks, repeat, warmup=2)


def inputs(size: int, chunk: int, on_gpu: bool):
    """x and y made block by block where the scheduler runs (CuPy blocks on the GPU), as real arrays (da.ones
    would make broadcast views of one value, which no kernel can read in place)."""
    import dask.array as da

    x = da.arange(size, chunks=chunk, dtype=np.float32)
    y = x * np.float32(0.5)
    if on_gpu:
        import cupy
        x, y = (array.map_blocks(cupy.asarray, meta=cupy.empty((0,), np.float32)) for array in (x, y))
    return x, y


def dask_seconds(backend: str, size: int, chunk: int, repeat: int, on_gpu: bool, client=None) -> tuple[float, float]:
    """(metalgpu.dask, Dask's own a * x + y) through the threaded scheduler, or ``client``'s cluster."""
    import dask
    import dask.array as da
    from distributed import wait

    import metalgpu.dask as mgd

    x, y = inputs(size, chunk, on_gpu)
    if client is not None:
        x, y = client.persist([x, y])
        wait([x, y])
    else:
        x, y = dask.persist(x, y, scheduler="threads")

    def run(make):
        def once():
            result = make()
            if client is None:
                dask.persist(result, scheduler="threads")
            else:
                done = client.persist(result)
                wait(done)
                del done
        return once

    # a new constant for every sample, so that no sample finds the results of another in the cluster's memory
    constants = iter(2.0 + k * 2.0**-20 for k in range(10**6))
    kernel = run(lambda: mgd.map_blocks(SAXPY, "saxpy", x, y, next(constants), backend=backend))
    numpy_like = run(lambda: da.map_blocks(lambda p, q, a: a * p + q, x, y, np.float32(next(constants)),
                                           dtype=np.float32))
    return median_seconds(kernel, repeat, warmup=2), median_seconds(numpy_like, repeat, warmup=2)


def cluster(backend: str):
    """A one-worker cluster: dask_cuda's LocalCUDACluster on cuda where it imports, else a LocalCluster."""
    from distributed import Client, LocalCluster

    if backend == "cuda":
        try:
            from dask_cuda import LocalCUDACluster
            made = LocalCUDACluster(n_workers=1, threads_per_worker=1, dashboard_address=None)
            return Client(made), "LocalCUDACluster(1 worker)"
        except ImportError:
            pass
    made = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(made), "LocalCluster(1 process)"  # the default client: distributed.wait() finds it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--size", type=int, default=None, help="elements (default 2**24 on cpu, 2**28 on cuda)")
    parser.add_argument("--chunks", default=None, help="chunk sizes, comma-separated (default size/64, /16, /4)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-cluster", action="store_true", help="the threaded scheduler only")
    args = parser.parse_args()
    size = args.size or (2**28 if args.backend == "cuda" else 2**24)
    chunks = [int(c) for c in args.chunks.split(",")] if args.chunks else [size // 64, size // 16, size // 4]
    on_gpu = False
    if args.backend == "cuda":
        try:
            import cupy  # noqa: F401
            on_gpu = True
        except ImportError:
            print("cupy does not import: chunks are numpy arrays, copied to the GPU and back in every task")

    direct = direct_seconds(args.backend, size, args.repeat)
    print(f"backend {args.backend}, {size:,} float32 elements ({3 * size * 4 / 1e6:.0f} MB moved a pass), "
          f"chunks {'CuPy' if on_gpu else 'numpy'}; medians of {args.repeat}")
    print(f"direct, one dispatch over the whole array: {direct * 1e3:9.3f} ms")
    schedulers = [("threaded", None)]
    if not args.no_cluster:
        client, name = cluster(args.backend)
        schedulers.append((name, client))
    for chunk in chunks:
        count = -(-size // chunk)
        alone = blocks_without_dask_seconds(args.backend, size, chunk, args.repeat, on_gpu)
        print(f"{'blocks in a loop, no Dask':>26}, {count:4d} chunks of {chunk:,}: {alone * 1e3:9.3f} ms "
              f"({(alone - direct) / count * 1e6:8.1f} us a chunk over direct)")
    for name, client in schedulers:
        for chunk in chunks:
            count = -(-size // chunk)
            kernel, anchor = dask_seconds(args.backend, size, chunk, args.repeat, on_gpu, client)
            print(f"{name:>26}, {count:4d} chunks of {chunk:,}: metalgpu.dask {kernel * 1e3:9.3f} ms "
                  f"({kernel / direct:5.2f}x direct, {(kernel - direct) / count * 1e6:8.1f} us a chunk over it); "
                  f"Dask's own a*x+y {anchor * 1e3:9.3f} ms")
        if client is not None:
            cluster_of_client = client.cluster
            client.close()
            cluster_of_client.close()


if __name__ == "__main__":
    main()
