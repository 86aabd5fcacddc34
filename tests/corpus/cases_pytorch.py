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
