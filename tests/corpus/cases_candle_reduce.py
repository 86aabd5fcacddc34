"""Runtime cases of candle's reduce.metal: sum/max/min/product and arg-min/max reductions (contiguous and
strided), softmax, RMS norm, layer norm and the three rotary embeddings, with the arguments and dispatch of
candle's host code (kernels/reduce.rs): one threadgroup per output row, of width min(limit, next power of two of
half the row)."""
from __future__ import annotations

import numpy as np

from .candle_support import FLOATS, RNG_SEED, linear_split, values
from .cases import case
from .harness import check, from_device, round_to, to_device


def _row_group(gpu, elements: int) -> int:
    """candle's threadgroup width for a row of ``elements``: min(limit, (elements / 2).next_power_of_two())."""
    half = max(elements // 2, 1)
    return min(gpu.maxThreadsPerGroup(), 1 << (half - 1).bit_length())


def _dispatch_rows(gpu, rows: int, elements: int, arguments: list) -> None:
    width = _row_group(gpu, elements)
    gpu.run_function(rows * width, arguments, threads_per_threadgroup=width)


# --- reductions ---------------------------------------------------------------------------------------------------

_REDUCE = {"sum": np.sum, "max": np.max, "min": np.min, "mul": np.prod, "argmax": np.argmax, "argmin": np.argmin}


@case("candle.reduce")
def reduce(gpu, kernel, dtype: str, op: str, layout: str = "contiguous", rows: int = 6, cols: int = 300) -> None:
    """fast_<op>: reduce the last axis of (rows, cols). strided: the same reduction read through the transposed
    layout candle builds for a reduction over axis 0 of a (cols, rows) tensor (reduced axis last, stride rows)."""
    rng = np.random.default_rng(RNG_SEED)
    if op == "sum" and dtype in FLOATS:
        x = values((rows, cols), dtype, rng, 0.0, 1.0)  # no cancellation: the tolerance is about rounding
    elif op == "mul":
        x = values((rows, cols), dtype, rng, 0.95, 1.05) if dtype in FLOATS else rng.integers(1, 3, (rows, cols))
        if dtype not in FLOATS:
            x[:, 20:] = 1  # 2**20 at most: no wrap-around
    else:
        x = values((rows, cols), dtype, rng)
    is_index = op.startswith("arg")
    out_dtype = "uint32" if is_index else dtype
    out = to_device(gpu, np.zeros(rows), out_dtype)
    if layout == "contiguous":
        arguments = [x.size, 2, np.array([rows, cols], np.uint32), cols, to_device(gpu, x, dtype), out]
    else:
        stored = np.ascontiguousarray(x.T)  # the tensor in memory is (cols, rows); reduce its axis 0
        arguments = [x.size, 2, np.array([rows, cols], np.uint32), np.array([1, rows], np.uint32), cols,
                     to_device(gpu, stored, dtype), out]
    _dispatch_rows(gpu, rows, cols, arguments)
    expected = _REDUCE[op](x, axis=1).astype(np.float64)
    if dtype in FLOATS and not is_index:
        expected = round_to(expected, dtype)
    check(from_device(out, out_dtype), expected, kernel.family, out_dtype if is_index else dtype, kernel.name)


# --- softmax and norms --------------------------------------------------------------------------------------------

@case("candle.softmax")
def softmax(gpu, kernel, dtype: str, rows: int = 5, cols: int = 200) -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = values((rows, cols), dtype, rng)
    out = to_device(gpu, np.zeros(x.size), dtype)
    _dispatch_rows(gpu, rows, cols, [x.size, cols, to_device(gpu, x, dtype), out])
    e = np.exp(x - x.max(axis=1, keepdims=True))
    expected = round_to(e / e.sum(axis=1, keepdims=True), dtype)
    check(from_device(out, dtype).reshape(x.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.rmsnorm")
def rmsnorm(gpu, kernel, dtype: str, rows: int = 4, cols: int = 384, eps: float = 1e-5) -> None:
    rng = np.random.default_rng(RNG_SEED)
    x, alpha = values((rows, cols), dtype, rng), values(cols, dtype, rng, 0.5, 1.5)
    out = to_device(gpu, np.zeros(x.size), dtype)
    _dispatch_rows(gpu, rows, cols, [x.size, cols, to_device(gpu, x, dtype), out, to_device(gpu, alpha, dtype), eps])
    expected = round_to(x / np.sqrt((x ** 2).mean(axis=1, keepdims=True) + eps) * alpha, dtype)
    check(from_device(out, dtype).reshape(x.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.layernorm")
def layernorm(gpu, kernel, dtype: str, rows: int = 4, cols: int = 250, eps: float = 1e-5) -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = values((rows, cols), dtype, rng, -2.0, 6.0)  # a mean away from zero
    alpha, beta = values(cols, dtype, rng, 0.5, 1.5), values(cols, dtype, rng, -1.0, 1.0)
    out = to_device(gpu, np.zeros(x.size), dtype)
    _dispatch_rows(gpu, rows, cols, [x.size, cols, to_device(gpu, x, dtype), out, to_device(gpu, alpha, dtype),
                                     to_device(gpu, beta, dtype), eps])
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    expected = round_to((x - mean) / np.sqrt(var + eps) * alpha + beta, dtype)
    check(from_device(out, dtype).reshape(x.shape), expected, kernel.family, dtype, kernel.name)


# --- rotary embeddings --------------------------------------------------------------------------------------------

def _rotate(x1, x2, c, s):
    return x1 * c - x2 * s, x1 * s + x2 * c


@case("candle.rope")
def rope(gpu, kernel, dtype: str, variant: str, batched_cos: bool = False) -> None:
    """candle-nn's rotary embeddings: rope_i rotates interleaved pairs (x[2i], x[2i+1]), rope and rope_thd rotate
    the two halves (x[i], x[i + d/2]), by angle i of position t; cos/sin are (t, d/2), or (b, t, d/2) when
    batched. rope and rope_i take (b, h, t, d); rope_thd takes (b, t, h, d)."""
    rng = np.random.default_rng(RNG_SEED)
    b, h, t, d = 2, 3, 5, 8
    thd = variant == "thd"
    x = values((b, t, h, d) if thd else (b, h, t, d), dtype, rng, -1.0, 1.0)
    angles = rng.uniform(-np.pi, np.pi, size=(b if batched_cos else 1, t, d // 2))
    cos, sin = round_to(np.cos(angles), dtype), round_to(np.sin(angles), dtype)
    stride_b = h * t * d if batched_cos else 0
    out = to_device(gpu, np.zeros(x.size), dtype)
    buffers = [to_device(gpu, x, dtype), to_device(gpu, cos, dtype), to_device(gpu, sin, dtype), out]
    grid, width = linear_split(gpu, x.size // 2)
    if variant == "interleaved":
        sizes = [b * h, t * d, stride_b]
    elif variant == "halves":
        sizes = [b * h, t * d, d, stride_b]
    else:
        sizes = [b, t, h, d, stride_b]
    gpu.run_function(grid, [*sizes, *buffers], threads_per_threadgroup=width)
    # cos/sin broadcast over heads: (B, 1, t, d/2) against (b, h, t, d); rope_thd puts heads after t
    c = cos[:, :, None, :] if thd else cos[:, None, :, :]
    s = sin[:, :, None, :] if thd else sin[:, None, :, :]
    expected = np.empty_like(x)
    if variant == "interleaved":
        expected[..., 0::2], expected[..., 1::2] = _rotate(x[..., 0::2], x[..., 1::2], c, s)
    else:
        expected[..., :d // 2], expected[..., d // 2:] = _rotate(x[..., :d // 2], x[..., d // 2:], c, s)
    check(from_device(out, dtype).reshape(x.shape), round_to(expected, dtype), kernel.family, dtype, kernel.name)

