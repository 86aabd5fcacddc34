"""A histogram of millions of 12-bit samples with atomic adds, in threadgroup memory and then device memory.

Shows: `atomic_uint` in threadgroup memory and in a device buffer (a `uint` buffer binds to
`device atomic_uint*`), `atomic_fetch_add_explicit`, a program-scope `constant constexpr`, and `ushort` input.
The counts are exact, so they must equal numpy's `bincount`; matplotlib draws them.

    python examples/histogram.py [--backend cpu|cuda|metal] [--out DIR] [--count 4194304]

Writes DIR/histogram.png and DIR/histogram_counts.csv (one count a bin); DIR defaults to examples/output/ next
to this file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import metalgpu

HERE = Path(__file__).parent
BINS = 256  # the kernel's BINS
BIN_WIDTH = 4096 // BINS
GROUPS, THREADGROUP = 64, 256  # each thread counts count / 16384 samples


def make_samples(count: int, seed: int = 0) -> np.ndarray:
    """A 12-bit camera-like signal (uint16 in [0, 4096)): a dark background, a bright subject, a few saturated
    pixels at 4095."""
    rng = np.random.default_rng(seed)
    dark = rng.normal(700, 180, count)
    bright = rng.normal(2600, 350, count)
    values = np.where(rng.random(count) < 0.7, dark, bright)
    values[rng.random(count) < 0.003] = 4095
    return np.clip(np.round(values), 0, 4095).astype(np.uint16)


def device_histogram(gpu: metalgpu.Interface, samples: np.ndarray) -> np.ndarray:
    """Counts of samples in BINS bins of BIN_WIDTH values, on the device."""
    gpu.load_shader(HERE / "histogram.metal")
    gpu.set_function("histogram")
    counts = gpu.create_buffer(BINS, "uint")
    counts.contents[:] = 0
    gpu.run_function(GROUPS * THREADGROUP, [gpu.array_to_buffer(samples), counts, len(samples)],
                     threads_per_threadgroup=THREADGROUP)
    return counts.read()


def plot(path: Path, counts: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3), dpi=80)
    axes.stairs(counts, np.arange(BINS + 1) * BIN_WIDTH, fill=True, color="tab:purple")
    axes.set(xlabel="sample value (12-bit)", ylabel="samples", xlim=(0, 4096),
             title=f"{counts.sum():,} samples in {BINS} bins")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best available)")
    parser.add_argument("--out", type=Path, default=HERE / "output",
                        help="folder for histogram.png and histogram_counts.csv")
    parser.add_argument("--count", type=int, default=1 << 22, help="how many samples")
    args = parser.parse_args(argv)

    samples = make_samples(args.count)
    with metalgpu.Interface(backend=args.backend) as gpu:
        counts = device_histogram(gpu, samples)

    args.out.mkdir(parents=True, exist_ok=True)
    np.savetxt(args.out / "histogram_counts.csv", counts, fmt="%d")
    path = args.out / "histogram.png"
    plot(path, counts)
    expected = np.bincount(np.minimum(samples // BIN_WIDTH, BINS - 1), minlength=BINS)
    print(f"histogram of {args.count} samples ({gpu.backend}): counts equal to numpy's bincount: "
          f"{np.array_equal(counts, expected)}; wrote {path}")
    return path


if __name__ == "__main__":
    main()
