"""What candle's cases share: inputs, strides, and candle's own ways of sizing a dispatch (its Rust host code,
candle-metal-kernels/src/utils.rs), so that every kernel runs with the grid and threadgroups candle gives it."""
from __future__ import annotations

import numpy as np

from .harness import round_to

SIZES = np.uint64  # constant size_t* arrays
RNG_SEED = 13
FLOATS = ("float32", "float16", "bfloat16")
# candle's names of element types in kernel names (fill_f32, cast_bf16_u8, ...)
CANDLE_TYPE = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "uint8": "u8", "uint32": "u32",
               "int64": "i64"}
ITEM_SIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "uint8": 1, "uint32": 4, "int64": 8, "int32": 4,
             "int16": 2}


def values(shape, dtype: str, rng, low=-4.0, high=4.0) -> np.ndarray:
    """Random inputs already representable in ``dtype`` (integers for integer types, small for uint8 sums)."""
    if dtype in FLOATS:
        return round_to(rng.uniform(low, high, size=shape), dtype)
    top = 7 if dtype == "uint8" else 50
    return rng.integers(0, top, size=shape).astype(np.float64)


def strides(shape) -> np.ndarray:
    """Row-major strides, in elements, of a contiguous array of ``shape``."""
    return np.array([int(np.prod(shape[k + 1:])) for k in range(len(shape))], SIZES)


def strided_view(base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A non-contiguous view of ``base`` (2-D: every other column, transposed) and its strides in elements, as
    candle passes a strided layout: the kernel reads ``base``'s buffer through (dims, strides)."""
    view = base[:, ::2].T
    return view, np.array([2, base.shape[1]], SIZES)


def linear_split(gpu, length: int) -> tuple[int, int]:
    """candle's linear_split: (grid threads, threadgroup width) for ``length`` threads in whole threadgroups of
    up to the pipeline's limit (candle dispatches threadgroups, so the grid rounds up to whole groups)."""
    width = max(1, min(gpu.maxThreadsPerGroup(), length))
    return -(-length // width) * width, width


def tiles(length: int, dtype: str) -> int:
    """candle's get_tile_size: a contiguous elementwise kernel gives each thread 8 bytes' worth of elements."""
    return -(-length // max(1, 8 // ITEM_SIZE[dtype]))
