"""Blur an image larger than one chunk with an MSL kernel over Dask, then measure it with a reduction.

The image (a made-up gradient with noise, 4096 x 4096 floats, 64 MB) is split into 1024 x 1024 blocks. A 5x5
box blur needs two pixels of each neighbouring block: map_overlap gives every block that halo, the kernel blurs
the block as if it were the whole image (it clamps its reads to the block), and the halo is trimmed away. A
reduction kernel then finds the brightest pixel, block by block, and Dask combines the blocks' answers.

    python examples/dask_image.py                      # the threaded scheduler
    python examples/dask_image.py --cluster 2          # a LocalCluster of 2 worker processes; prints its dashboard
    python examples/dask_image.py --backend cpu --size 2048
    python examples/dask_image.py --gpus                # dask_cuda's LocalCUDACluster: one worker per GPU
"""
from __future__ import annotations

import argparse
import time

import dask
import dask.array as da
import numpy as np

import metalgpu.dask as mgd

BLUR = """
#include <metal_stdlib>
using namespace metal;

// A (2r+1) x (2r+1) box blur over a width x height block, reads clamped to the block.
kernel void box_blur(device const float* image [[buffer(0)]],
                     device float* blurred [[buffer(1)]],
                     constant uint& width [[buffer(2)]],
                     constant uint& height [[buffer(3)]],
                     constant int& r [[buffer(4)]],
                     uint2 p [[thread_position_in_grid]])
{
    float total = 0.0f;
    for (int dy = -r; dy <= r; ++dy) {
        int y = clamp(int(p.y) + dy, 0, int(height) - 1);
        for (int dx = -r; dx <= r; ++dx) {
            int x = clamp(int(p.x) + dx, 0, int(width) - 1);
            total += image[y * int(width) + x];
        }
    }
    blurred[p.y * width + p.x] = total / float((2 * r + 1) * (2 * r + 1));
}

// The largest of 64 consecutive pixels per thread: n pixels become ceil(n / 64) partial maxima.
kernel void max64(device const float* pixels [[buffer(0)]],
                  device float* partial [[buffer(1)]],
                  constant uint& n [[buffer(2)]],
                  uint i [[thread_position_in_grid]])
{
    uint first = i * 64, end = min(n, first + 64);
    float best = pixels[first];
    for (uint k = first + 1; k < end; ++k) best = max(best, pixels[k]);
    partial[i] = best;
}
"""
RADIUS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="cuda or cpu for the workers (default: cuda if a GPU is "
                                                        "visible, else cpu)")
    parser.add_argument("--size", type=int, default=4096, help="the image is size x size float32 pixels")
    parser.add_argument("--chunk", type=int, default=1024, help="blocks are chunk x chunk pixels")
    parser.add_argument("--cluster", type=int, default=0, help="worker processes of a LocalCluster (0: threads)")
    parser.add_argument("--gpus", action="store_true", help="a LocalCUDACluster (dask-cuda): one worker per GPU")
    args = parser.parse_args()

    rows = da.arange(args.size, chunks=args.chunk, dtype=np.float32)[:, None]
    noise = da.random.default_rng(7).random((args.size, args.size), chunks=args.chunk, dtype=np.float32)
    image = (rows / args.size + noise).astype(np.float32)

    blurred = mgd.map_overlap(BLUR, "box_blur", image, depth=RADIUS, boundary="none",
                              constants={"width": lambda shape: shape[1], "height": lambda shape: shape[0],
                                         "r": RADIUS}, backend=args.backend)
    brightest = mgd.reduction(BLUR, "max64", blurred, combine="kernel", partials=lambda n: -(-n // 64),
                              grid=lambda shape: -(-shape[0] // 64), constants={"n": lambda shape: shape[0]},
                              backend=args.backend)

    client = None
    if args.gpus:
        from dask_cuda import LocalCUDACluster
        from distributed import Client
        client = Client(LocalCUDACluster())
    elif args.cluster:
        from distributed import Client, LocalCluster
        client = Client(LocalCluster(n_workers=args.cluster, threads_per_worker=1))
    if client is not None:
        print(f"dashboard: {client.dashboard_link}  (task stream: one 'metalgpu-box_blur' task per block)")
    started = time.perf_counter()
    image_value, blurred_value, brightest_value = dask.compute(image, blurred, brightest)
    elapsed = time.perf_counter() - started
    print(f"{args.size} x {args.size} image in {image.npartitions} blocks of {args.chunk} x {args.chunk}: "
          f"blurred and reduced in {elapsed:.2f} s")

    # Check against numpy: the same blur over the whole image, with the same clamping at its edges.
    padded = np.pad(image_value, RADIUS, mode="edge")
    size = args.size
    expected = sum(padded[RADIUS + dy:RADIUS + dy + size, RADIUS + dx:RADIUS + dx + size]
                   for dy in range(-RADIUS, RADIUS + 1) for dx in range(-RADIUS, RADIUS + 1)) / (2 * RADIUS + 1)**2
    error = float(np.abs(blurred_value - expected).max())
    print(f"largest difference from numpy's blur: {error:.2e}; brightest pixel {float(brightest_value):.6f} "
          f"(numpy: {float(blurred_value.max()):.6f})")
    if client is not None:
        client.close()


if __name__ == "__main__":
    main()
