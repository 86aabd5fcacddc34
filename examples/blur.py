"""A Gaussian blur of a picture the example draws itself, in two passes (rows, then columns), written to PNGs.

Shows: `uchar4` pixels read and written by kernels, a `float4` intermediate buffer, an array of weights and a
scalar passed as constants (`constant float*`, `constant int&`), two kernels of one .metal file run one after
the other on the same buffers.

    python examples/blur.py [--backend cpu|cuda|metal] [--out DIR] [--sigma 3]

Writes DIR/blur_input.png (the drawing) and DIR/blur.png (blurred); DIR defaults to examples/output/ next to
this file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import metalgpu

HERE = Path(__file__).parent
WIDTH, HEIGHT = 400, 260


def gaussian_weights(sigma: float) -> np.ndarray:
    """The 1-D kernel: 2r + 1 weights over r = 3 sigma, summing to 1."""
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-offsets**2 / (2 * sigma**2))
    return (weights / weights.sum()).astype(np.float32)


def draw_picture() -> np.ndarray:
    """A test card, RGBA uint8 of shape (HEIGHT, WIDTH, 4): a gradient, a checkerboard, stripes, discs, text."""
    from PIL import Image, ImageDraw

    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([40 + 150 * x / WIDTH, 60 + 120 * y / HEIGHT, 170 - 100 * x / WIDTH], axis=-1)
    checker = ((x // 20 + y // 20) % 2 == 0) & (x < 160) & (y < 120)
    rgb[checker] = 245
    stripes = (x >= 200) & (y < 120) & ((x // 6) % 2 == 0)
    rgb[stripes] = (250, 220, 40)
    picture = Image.fromarray(rgb.astype(np.uint8)).convert("RGBA")
    draw = ImageDraw.Draw(picture)
    for k, colour in enumerate([(230, 50, 60), (60, 200, 90), (250, 250, 250)]):
        draw.ellipse((30 + 60 * k, 150, 100 + 60 * k, 220), fill=colour)
    draw.rectangle((250, 150, 380, 230), outline=(0, 0, 0), width=4)
    draw.text((262, 176), "metalgpu", fill=(0, 0, 0), font_size=22)
    return np.asarray(picture)


def numpy_blur(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The kernels' computation in numpy (float64): rows, then columns, edges repeated, rounded to uint8."""
    radius = len(weights) // 2
    padded = np.pad(image.astype(np.float64), ((0, 0), (radius, radius), (0, 0)), mode="edge")
    rows = sum(w * padded[:, k:k + image.shape[1]] for k, w in enumerate(weights))
    padded = np.pad(rows, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    columns = sum(w * padded[k:k + image.shape[0]] for k, w in enumerate(weights))
    return np.round(np.clip(columns, 0, 255)).astype(np.uint8)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best available)")
    parser.add_argument("--out", type=Path, default=HERE / "output", help="folder for blur_input.png and blur.png")
    parser.add_argument("--sigma", type=float, default=3.0, help="the Gaussian's standard deviation in pixels")
    args = parser.parse_args(argv)
    from PIL import Image

    picture = draw_picture()
    weights = gaussian_weights(args.sigma)
    radius = len(weights) // 2
    grid = (WIDTH, HEIGHT)
    with metalgpu.Interface(backend=args.backend) as gpu:
        gpu.load_shader(HERE / "blur.metal")
        image = gpu.array_to_buffer(picture.reshape(-1, 4))
        rows = gpu.create_buffer(WIDTH * HEIGHT, "float4")
        blurred = gpu.create_buffer(WIDTH * HEIGHT, "uchar4")
        gpu.run_function(grid, [image, rows, weights, radius], "blur_rows")
        gpu.run_function(grid, [rows, blurred, weights, radius], "blur_columns")
        result = blurred.read().reshape(HEIGHT, WIDTH, 4)

    args.out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).convert("RGB").save(args.out / "blur_input.png", optimize=True)
    path = args.out / "blur.png"
    Image.fromarray(result).convert("RGB").save(path, optimize=True)

    # The kernels add in float32 and Metal's round() takes halves away from zero (numpy's to even): a channel may
    # be one step off.
    difference = np.abs(result.astype(int) - numpy_blur(picture, weights)).max()
    print(f"blur sigma {args.sigma} of {WIDTH}x{HEIGHT} ({gpu.backend}): largest difference from numpy's blur "
          f"{difference} (of 255); wrote {args.out / 'blur_input.png'} and {path}")
    return path


if __name__ == "__main__":
    main()
