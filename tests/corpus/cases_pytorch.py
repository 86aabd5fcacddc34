"""Runtime cases of PyTorch's MPS kernels (aten/src/ATen/native/mps/kernels), arguments as PyTorch's host code
passes them."""
from __future__ import annotations

import numpy as np

from .cases import case
from .harness import check, from_device, round_to, to_device

RNG_SEED = 17


@case("pytorch.rms_norm")
def rms_norm(gpu, kernel, dtype: str, axis: int, rows: int = 3, threads: int = 0, eps: float = 1e-5) -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = round_to(rng.uniform(-2, 2, size=(rows, axis)), dtype)
    w = round_to(rng.uniform(0.5, 1.5, size=axis), dtype)
    group = threads or -(-axis // 4 // 32) * 32  # N_READS = 4 values per thread, whole SIMD-groups
    out = to_device(gpu, np.zeros(rows * axis), dtype)
    gpu.run_function(group * rows, [to_device(gpu, x, dtype), to_device(gpu, w, dtype), out, eps, axis, 1],
                     threads_per_threadgroup=group)
    normalised = round_to(x / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps), dtype)
    check(from_device(out, dtype).reshape(rows, axis), round_to(w * normalised, dtype), kernel.family, dtype,
          kernel.name)


@case("pytorch.amp_unscale")
def amp_unscale(gpu, kernel, dtype: str, count: int = 300) -> None:
    rng = np.random.default_rng(RNG_SEED)
    data = round_to(rng.uniform(-8, 8, size=count), dtype)
    data[count // 3] = np.inf
    buffer, found = to_device(gpu, data, dtype), to_device(gpu, np.zeros(1), "float32")
    gpu.run_function(count, [buffer, found, 0.25])
    check(from_device(buffer, dtype), data * 0.25, kernel.family, dtype, kernel.name)
    check(from_device(found, "float32"), np.ones(1), "indexing", "float32", f"{kernel.name} foundInf")


@case("pytorch.amp_update_scale")
def amp_update_scale(gpu, kernel, dtype: str) -> None:
    scale, tracker, found = (to_device(gpu, [1024.0], dtype), to_device(gpu, [2], "int32"),
                             to_device(gpu, [0.0], "float32"))
    steps = []
    for found_inf in (0.0, 0.0, 1.0):  # grows at the third clean step, backs off on an overflow
        found.contents[:] = found_inf
        gpu.run_function(1, [scale, tracker, found, 2.0, 0.5, 3])
        steps.append((from_device(scale, dtype)[0], from_device(tracker, "int32")[0]))
    check(np.array(steps), np.array([(2048.0, 0), (2048.0, 1), (1024.0, 0)]), kernel.family, dtype, kernel.name)


@case("pytorch.layer_norm")
def layer_norm(gpu, kernel, dtype: str, axis: int, rows: int = 3, threads: int = 0, eps: float = 1e-5) -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = round_to(rng.uniform(-2, 3, size=(rows, axis)), dtype)
    w, b = round_to(rng.uniform(0.5, 1.5, size=axis), dtype), round_to(rng.uniform(-1, 1, size=axis), dtype)
    group = threads or -(-axis // 4 // 32) * 32
    out, mean, rstd = (to_device(gpu, np.zeros(n), dtype) for n in (rows * axis, rows, rows))
    gpu.run_function(group * rows, [to_device(gpu, x, dtype), out, mean, rstd, axis, eps, 1, 1,
                                    to_device(gpu, w, dtype), to_device(gpu, b, dtype)], threads_per_threadgroup=group)
    expected_mean = x.mean(axis=1, keepdims=True)
    variance = (x * x).mean(axis=1, keepdims=True) - expected_mean ** 2  # the kernel's one-pass formula
    inv_std = 1 / np.sqrt(np.where(variance < 1e-6, 0, variance) + eps)
    check(from_device(out, dtype).reshape(rows, axis), round_to((x - expected_mean) * inv_std * w + b, dtype),
          kernel.family, dtype, kernel.name)
    check(from_device(mean, dtype), round_to(expected_mean[:, 0], dtype), kernel.family, dtype, f"{kernel.name} mean")
    check(from_device(rstd, dtype), round_to(inv_std[:, 0], dtype), kernel.family, dtype, f"{kernel.name} rstd")


def _tril_size(row: int, col: int, offset: int) -> int:
    """The number of elements of torch.tril_indices(row, col, offset), as PyTorch's host code counts them."""
    if row == 0 or col == 0:
        return 0
    first = min(col, 1 + offset) if offset > 0 else int(row + offset > 0)
    last = max(0, min(col, row + offset))
    rows_all = max(0, min(row, row + offset))
    trapezoid_rows = last - first + 1
    return (first + last) * trapezoid_rows // 2 + max(0, rows_all - trapezoid_rows) * col


@case("pytorch.tri_indices")
def tri_indices(gpu, kernel, dtype: str, upper: bool, row: int, col: int, offset: int) -> None:
    """The launch arguments of PyTorch's tril_indices/triu_indices host code (the CUDA kernels take the same)."""
    if upper:
        size = row * col - _tril_size(row, col, offset - 1)
        first = max(col - offset, 0) if offset > 0 else col
        rectangle = min(row, -offset) * col if offset < 0 else 0
        args = [max(0, offset), first, col, rectangle, size]
        expected = np.stack(np.triu_indices(row, offset, col))
    else:
        size = _tril_size(row, col, offset)
        first = min(col, 1 + offset) if offset > 0 else int(row + offset > 0)
        trapezoid_row_offset = max(0, -offset)
        rectangle_row_offset = trapezoid_row_offset + col - first + 1
        rectangle = (row - rectangle_row_offset) * col if rectangle_row_offset < row else 0
        args = [trapezoid_row_offset, first, col, size - rectangle, size]
        expected = np.stack(np.tril_indices(row, offset, col))
    out = to_device(gpu, np.zeros(2 * size), dtype)
    gpu.run_function(size, [out, *args])
    check(from_device(out, dtype).reshape(2, size), expected, kernel.family, dtype, kernel.name)


@case("pytorch.repeat_interleave")
def repeat_interleave(gpu, kernel, dtype: str, count: int = 40) -> None:
    repeats = np.random.default_rng(RNG_SEED).integers(0, 5, size=count)
    out = to_device(gpu, np.full(int(repeats.sum()), -1), dtype)
    gpu.run_function(count, [to_device(gpu, repeats, dtype), to_device(gpu, np.cumsum(repeats), "int64"), out])
    check(from_device(out, dtype), np.repeat(np.arange(count), repeats), kernel.family, dtype, kernel.name)


@case("pytorch.renorm")
def renorm(gpu, kernel, dtype: str, maxnorm: float = 2.0) -> None:
    norms = round_to(np.random.default_rng(RNG_SEED).uniform(0, 4, size=200), dtype)
    factor = to_device(gpu, np.zeros(norms.size), dtype)
    gpu.run_function(norms.size, [to_device(gpu, norms, dtype), factor, maxnorm])
    expected = np.where(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0)
    check(from_device(factor, dtype), round_to(expected, dtype), kernel.family, dtype, kernel.name)
