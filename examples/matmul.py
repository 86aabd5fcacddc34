"""A tiled matrix product with threadgroup memory, of sizes that are not multiples of the tile, against numpy.

Shows: 2-D threadgroups (`threads_per_threadgroup=(16, 16)`), arrays in threadgroup memory declared in the
kernel (`threadgroup float a_tile[16][16]`), `threadgroup_barrier`, and why a tiled kernel needs whole
threadgroups: the grid is rounded up to whole tiles and the kernel checks its edges.

    python examples/matmul.py [--backend cpu|cuda|metal] [--m 500] [--k 300] [--n 400]

Prints the largest difference from numpy's product; writes no file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import metalgpu

HERE = Path(__file__).parent
TILE = 16  # the kernel's TILE


def device_matmul(gpu: metalgpu.Interface, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A @ B of two float32 matrices, on the device."""
    (m, k), n = a.shape, b.shape[1]
    gpu.load_shader(HERE / "matmul.metal")
    gpu.set_function("matmul")
    c = gpu.create_buffer(m * n, "float")
    whole_tiles = (-(-n // TILE) * TILE, -(-m // TILE) * TILE)  # (columns, rows), each rounded up to a tile
    gpu.run_function(whole_tiles, [gpu.array_to_buffer(a), gpu.array_to_buffer(b), c, m, k, n],
                     threads_per_threadgroup=(TILE, TILE))
    return c.read().reshape(m, n)


def main(argv: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best available)")
    parser.add_argument("--m", type=int, default=500, help="rows of A and C")
    parser.add_argument("--k", type=int, default=300, help="columns of A, rows of B")
    parser.add_argument("--n", type=int, default=400, help="columns of B and C")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    a = rng.standard_normal((args.m, args.k), dtype=np.float32)
    b = rng.standard_normal((args.k, args.n), dtype=np.float32)
    with metalgpu.Interface(backend=args.backend) as gpu:
        c = device_matmul(gpu, a, b)

    exact = a.astype(np.float64) @ b.astype(np.float64)
    # Each entry adds k float32 products in a chain: its error is at most k float32 epsilons of the sum of the
    # products' magnitudes.
    bound = args.k * np.finfo(np.float32).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    within = bool(np.all(np.abs(c - exact) <= bound))
    print(f"matmul ({args.m} x {args.k}) @ ({args.k} x {args.n}) ({gpu.backend}): largest difference from numpy's "
          f"{np.abs(c - exact).max():.2e}; every entry within its float32 bound: {within}")
    return a, b, c


if __name__ == "__main__":
    main()
