"""Runtime cases of candle's elementwise kernels: unary.metal, binary.metal, ternary.metal, affine.metal and
cast.metal, contiguous and strided, dispatched as candle's host code does (kernels/*.rs): a contiguous kernel
over one thread per 8 bytes of elements (each thread strides through the rest), a strided one over one thread per
element, both in whole threadgroups of candle's linear_split."""
from __future__ import annotations

import math

import numpy as np

from .candle_support import (
    FLOATS,
    RNG_SEED,
    SIZES,
    linear_split,
    strided_view,
    tiles,
    values,
)
from .cases import case
from .harness import check, from_device, round_to, to_device

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x):
    inner = np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
    return np.where(x > 5, x, 0.5 * x * (1 + np.tanh(inner)))


# The documented meaning of each op (candle's Tensor methods), in float64.
UNARY = {
    "cos": np.cos, "sin": np.sin, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
    "neg": np.negative, "sqr": np.square, "recip": lambda x: 1 / x, "abs": np.abs, "ceil": np.ceil,
    "floor": np.floor, "round": lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5),  # halves away from zero
    "erf": _erf, "gelu": _gelu, "gelu_erf": lambda x: x * (1 + _erf(x / np.sqrt(2))) / 2,
    "silu": lambda x: x / (1 + np.exp(-x)), "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "sign": np.sign,
    "relu": lambda x: np.maximum(x, 0), "copy": lambda x: x,
}


def _run_elementwise(gpu, dtype: str, layout: str, scalars: list, src: np.ndarray, out_dtype: str,
                     count_dtype: str | None = None) -> np.ndarray:
    """Dispatch a candle elementwise kernel over ``src`` (2-D) and return the output, as float64 of ``out_dtype``.
    contiguous: (numel, *scalars, input, output); strided: (numel, num_dims, dims, strides, *scalars, input,
    output), reading ``src`` through a strided view of a bigger buffer."""
    count = src.size
    out = to_device(gpu, np.zeros(count), out_dtype)
    if layout == "contiguous":
        grid, width = linear_split(gpu, tiles(count, count_dtype or dtype))
        gpu.run_function(grid, [count, *scalars, to_device(gpu, src, dtype), out], threads_per_threadgroup=width)
    else:
        base = np.zeros((src.shape[1], 2 * src.shape[0]))
        base[:, ::2] = src.T
        view, view_strides = strided_view(base)
        assert np.array_equal(view, src)
        grid, width = linear_split(gpu, count)
        gpu.run_function(grid, [count, 2, np.array(src.shape, SIZES), view_strides, *scalars,
                                to_device(gpu, base, dtype), out], threads_per_threadgroup=width)
    return from_device(out, out_dtype).reshape(src.shape)


# --- unary.metal --------------------------------------------------------------------------------------------------

@case("candle.unary")
def unary(gpu, kernel, dtype: str, op: str, layout: str = "contiguous", low: float = -4.0,
          high: float = 4.0) -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = values((9, 37), dtype, rng, low, high)
    if op == "round":
        x.reshape(-1)[:6] = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]  # halves: away from zero, unlike numpy's round
    actual = _run_elementwise(gpu, dtype, layout, [], x, dtype)
    expected = UNARY[op](x)
    check(actual, round_to(expected, dtype) if dtype in FLOATS else expected, kernel.family, dtype, kernel.name)


@case("candle.copy2d")
def copy2d(gpu, kernel, dtype: str, d1: int = 5, d2: int = 7, src_stride: int = 9, dst_stride: int = 11) -> None:
    """copy2d: d1 rows of d2 elements from rows src_stride apart to rows dst_stride apart, a 2-D grid of
    (d1, d2) threads in candle's get_block_dims threadgroups."""
    rng = np.random.default_rng(RNG_SEED)
    src = values((d1, src_stride), dtype, rng)
    initial = values((d1, dst_stride), dtype, rng)
    out = to_device(gpu, initial, dtype)
    gpu.run_function((d1, d2), [d1, d2, src_stride, dst_stride, to_device(gpu, src, dtype), out],
                     threads_per_threadgroup=(4, 8))
    expected = initial.copy()
    expected[:, :d2] = src[:, :d2]
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.const_set")
def const_set(gpu, kernel, dtype: str, value: float, layout: str = "contiguous") -> None:
    """const_set: every element of the output (or of a strided view of it) becomes the device scalar ``value``."""
    rng = np.random.default_rng(RNG_SEED)
    shape = (6, 5)
    base = values((shape[1], 2 * shape[0]), dtype, rng)
    expected = base.copy()
    out = to_device(gpu, base, dtype)
    scalar = to_device(gpu, np.array([value]), dtype)
    if layout == "contiguous":
        grid, width = linear_split(gpu, tiles(base.size, dtype))
        gpu.run_function(grid, [base.size, scalar, out], threads_per_threadgroup=width)
        expected[:] = round_to(value, dtype)
    else:
        _, view_strides = strided_view(base)
        grid, width = linear_split(gpu, shape[0] * shape[1])
        gpu.run_function(grid, [shape[0] * shape[1], 2, np.array(shape, SIZES), view_strides, scalar, out],
                         threads_per_threadgroup=width)
        expected[:, ::2] = round_to(value, dtype)
    check(from_device(out, dtype).reshape(base.shape), expected, kernel.family, dtype, kernel.name)


# --- binary.metal -------------------------------------------------------------------------------------------------

BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "minimum": np.minimum,
    "maximum": np.maximum, "eq": np.equal, "ne": np.not_equal, "le": np.less_equal, "lt": np.less,
    "ge": np.greater_equal, "gt": np.greater,
}
_COMPARISONS = ("eq", "ne", "le", "lt", "ge", "gt")


def _operand(indexing: str, shape, dtype: str, rng, low: float, high: float, broadcast_axis: int):
    """An operand as a binary_kernel_strided indexer reads it: (full values, buffer contents, strides)."""
    rows, cols = shape
    if indexing == "scalar":
        value = values((1,), dtype, rng, low, high)
        return np.full(shape, value[0]), value, np.zeros(2, SIZES)
    if indexing == "cont":
        full = values(shape, dtype, rng, low, high)
        return full, full, np.array([cols, 1], SIZES)
    if indexing == "broadcast":  # strided with a zero stride: a row (or column) repeated
        line = values((shape[1 - broadcast_axis],), dtype, rng, low, high)
        full = np.broadcast_to(line if broadcast_axis == 0 else line[:, None], shape)
        return full, line, np.array([0, 1] if broadcast_axis == 0 else [1, 0], SIZES)
    full = values(shape, dtype, rng, low, high)  # "strided": every other column of a wider buffer, transposed
    base = np.zeros((cols, 2 * rows))
    base[:, ::2] = full.T
    view, view_strides = strided_view(base)
    return view, base, view_strides


_INDEXERS = {"strided": ("strided", "broadcast"), "lstrided": ("strided", "cont"), "rstrided": ("cont", "broadcast"),
             "scalar": ("scalar", "scalar"), "cs": ("cont", "scalar"), "sc": ("scalar", "cont"),
             "rss": ("scalar", "strided"), "lss": ("strided", "scalar")}


@case("candle.binary")
def binary(gpu, kernel, dtype: str, op: str, layout: str = "contiguous") -> None:
    """``layout``: contiguous (binary_kernel) or the suffix of a binary_kernel_strided instantiation, whose
    left and right indexers read contiguous, strided (broadcast through a zero stride) or scalar operands."""
    rng = np.random.default_rng(RNG_SEED)
    shape = (7, 10)
    low, high = (0.5, 4.0) if dtype in FLOATS else (0, 50)
    right_low = 0.5 if op == "div" else low
    out_dtype = "uint8" if op in _COMPARISONS else dtype
    out = to_device(gpu, np.zeros(shape[0] * shape[1]), out_dtype)
    count = shape[0] * shape[1]
    grid, width = linear_split(gpu, tiles(count, dtype))
    if layout == "contiguous":
        left, right = values(shape, dtype, rng, -high, high), values(shape, dtype, rng, right_low, high)
        if op in _COMPARISONS:
            right[::2] = left[::2]  # equal pairs too
        gpu.run_function(grid, [count, to_device(gpu, left, dtype), to_device(gpu, right, dtype), out],
                         threads_per_threadgroup=width)
    else:
        left_kind, right_kind = _INDEXERS[layout]
        left, left_buffer, left_strides = _operand(left_kind, shape, dtype, rng, -high if dtype in FLOATS else low,
                                                   high, 0)
        right, right_buffer, right_strides = _operand(right_kind, shape, dtype, rng, right_low, high,
                                                      1 if layout == "rstrided" else 0)
        gpu.run_function(grid, [count, 2, np.array(shape, SIZES), left_strides, right_strides,
                                to_device(gpu, left_buffer, dtype), to_device(gpu, right_buffer, dtype), out],
                         threads_per_threadgroup=width)
    expected = BINARY[op](left, right)
    if op in _COMPARISONS:
        expected = expected.astype(np.float64)
    elif dtype in FLOATS:
        expected = round_to(expected, dtype)
    family = "copy" if op in _COMPARISONS else kernel.family
    check(from_device(out, out_dtype).reshape(shape), expected, family, out_dtype, kernel.name)


# --- ternary.metal ------------------------------------------------------------------------------------------------

@case("candle.where")
def where(gpu, kernel, dtype: str, cond_dtype: str, contiguous: list) -> None:
    """where_cond: out = cond ? t : f, each operand contiguous or strided as the function constants say."""
    rng = np.random.default_rng(RNG_SEED)
    gpu.set_function(kernel.name, constants={0: contiguous[0], 1: contiguous[1], 2: contiguous[2]})
    shape = (6, 9)
    cond = rng.integers(0, 2, size=shape) * rng.integers(1, 4, size=shape)  # any non-zero value selects t
    operands, buffers, layouts = [], [], []
    for data, is_contiguous in zip((cond, values(shape, dtype, rng), values(shape, dtype, rng)), contiguous):
        if is_contiguous:
            operands.append(data)
            buffers.append(data)
            layouts.append(np.array([shape[1], 1], SIZES))
        else:
            base = np.zeros((shape[1], 2 * shape[0]))
            base[:, ::2] = data.T
            view, view_strides = strided_view(base)
            operands.append(view)
            buffers.append(base)
            layouts.append(view_strides)
    count = cond.size
    out = to_device(gpu, np.zeros(count), dtype)
    grid, width = linear_split(gpu, tiles(count, dtype))
    gpu.run_function(grid, [count, 2, np.array(shape, SIZES), *layouts, to_device(gpu, buffers[0], cond_dtype),
                            to_device(gpu, buffers[1], dtype), to_device(gpu, buffers[2], dtype), out],
                     threads_per_threadgroup=width)
    expected = np.where(operands[0] != 0, operands[1], operands[2])
    check(from_device(out, dtype).reshape(shape), expected, kernel.family, dtype, kernel.name)


# --- affine.metal -------------------------------------------------------------------------------------------------

@case("candle.affine")
def affine(gpu, kernel, dtype: str, op: str, mul: float, add: float = 0.0, layout: str = "contiguous") -> None:
    """affine: x * mul + add; powf: x ** mul; elu: x > 0 ? x : mul * (exp(x) - 1). Integer results truncate."""
    rng = np.random.default_rng(RNG_SEED)
    low = 0.25 if op == "powf" else -3.0
    x = values((8, 21), dtype, rng, low, 3.0)
    scalars = [mul, add] if op == "affine" else [mul]
    actual = _run_elementwise(gpu, dtype, layout, scalars, x, dtype)
    if op == "affine":
        expected = x * np.float32(mul) + np.float32(add)
    elif op == "powf":
        expected = x ** np.float32(mul)
    else:
        expected = np.where(x > 0, x, np.float32(mul) * np.expm1(x))
    expected = round_to(expected, dtype) if dtype in FLOATS else np.trunc(expected)
    check(actual, expected, kernel.family, dtype, kernel.name)


# --- cast.metal ---------------------------------------------------------------------------------------------------

_CAST_RANGE = {"uint8": (0, 255), "uint32": (0, 3e6), "int64": (-3e6, 3e6), "float32": (-6e4, 6e4),
               "float16": (-6e4, 6e4), "bfloat16": (-6e4, 6e4)}


@case("candle.cast")
def cast(gpu, kernel, dtype: str, to: str, layout: str = "contiguous") -> None:
    """cast_T_U: one conversion, rounding to nearest even into a float type and truncating into an integer one
    (inputs stay within the target's range, as C++ requires)."""
    rng = np.random.default_rng(RNG_SEED)
    low = max(_CAST_RANGE[dtype][0], _CAST_RANGE[to][0])
    high = min(_CAST_RANGE[dtype][1], _CAST_RANGE[to][1])
    if dtype in FLOATS:
        x = round_to(rng.uniform(low, high, size=(7, 19)), dtype)
        x.reshape(-1)[:4] = [0.5, -0.5, 2.75, -2.75] if low < 0 else [0.5, 1.5, 2.75, 3.25]
    else:
        x = rng.integers(int(low), int(high) + 1, size=(7, 19)).astype(np.float64)
    actual = _run_elementwise(gpu, dtype, layout, [], x, to)
    expected = round_to(x, to) if to in FLOATS else np.trunc(x)
    check(actual, expected, kernel.family, to, kernel.name)
