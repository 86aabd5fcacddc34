"""The Mandelbrot set, one thread per pixel over a 2-D grid, written to a PNG.

Shows: a 2-D grid (`uint2 [[thread_position_in_grid]]`), a struct passed as a dict to a `constant View&`
parameter, and a kernel loaded from a .metal file next to this script. The iteration counts are coloured on the
host with a matplotlib colour map and saved with Pillow.

    python examples/mandelbrot.py [--backend cpu|cuda|metal] [--out DIR] [--width 640] [--height 480]

Writes DIR/mandelbrot.png (DIR defaults to examples/output/ next to this file).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import metalgpu

HERE = Path(__file__).parent
CENTER = (-0.6, 0.0)  # the middle of the picture in the complex plane
SPAN = 3.2  # the width of the picture in the complex plane


def view_of(width: int, height: int, max_iterations: int) -> dict:
    """The kernel's View: the complex number at pixel (0, 0), the step between pixels, the iteration limit."""
    step = SPAN / width
    origin = (CENTER[0] - step * (width - 1) / 2, CENTER[1] + step * (height - 1) / 2)
    return {"origin": origin, "step": step, "max_iterations": max_iterations}


def numpy_iterations(view: dict, width: int, height: int) -> np.ndarray:
    """The kernel's computation in numpy (float32, like the kernel): iteration counts, shape (height, width)."""
    f32 = np.float32
    cx = f32(view["origin"][0]) + np.arange(width, dtype=f32) * f32(view["step"])
    cy = f32(view["origin"][1]) - np.arange(height, dtype=f32) * f32(view["step"])
    cx, cy = np.broadcast_to(cx, (height, width)), np.broadcast_to(cy[:, None], (height, width))
    zx, zy = np.zeros_like(cx), np.zeros_like(cy)
    counts = np.zeros((height, width), dtype=np.uint32)
    for _ in range(view["max_iterations"]):
        running = zx * zx + zy * zy <= 4
        if not running.any():
            break
        zx, zy = np.where(running, zx * zx - zy * zy + cx, zx), np.where(running, f32(2) * zx * zy + cy, zy)
        counts += running
    return counts


def colorize(counts: np.ndarray, max_iterations: int) -> np.ndarray:
    """RGB pixels (uint8): points inside the set black, the others by the logarithm of their escape time."""
    from matplotlib import colormaps

    shade = np.log1p(counts) / np.log1p(max_iterations)
    rgb = (colormaps["magma"](shade)[..., :3] * 255).round().astype(np.uint8)
    rgb[counts == max_iterations] = 0
    return rgb


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best available)")
    parser.add_argument("--out", type=Path, default=HERE / "output", help="folder for mandelbrot.png")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--iterations", type=int, default=256, help="iteration limit per pixel")
    args = parser.parse_args(argv)
    from PIL import Image

    view = view_of(args.width, args.height, args.iterations)
    with metalgpu.Interface(backend=args.backend) as gpu:
        gpu.load_shader(HERE / "mandelbrot.metal")
        gpu.set_function("mandelbrot")
        counts = gpu.create_buffer(args.width * args.height, "uint")
        gpu.run_function((args.width, args.height), [view, counts])
        device_counts = counts.read().reshape(args.height, args.width)

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "mandelbrot.png"
    Image.fromarray(colorize(device_counts, args.iterations)).save(path, optimize=True)

    # Fast math may round the kernel's floats differently, and a point on the set's edge may then escape one
    # iteration sooner or later: a few pixels in a thousand may differ.
    differing = np.count_nonzero(device_counts != numpy_iterations(view, args.width, args.height))
    print(f"mandelbrot {args.width}x{args.height} ({gpu.backend}): {differing / device_counts.size:.3%} of pixels "
          f"differ from numpy's iteration counts; wrote {path}")
    return path


if __name__ == "__main__":
    main()
