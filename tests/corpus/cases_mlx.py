"""Runtime cases of MLX's elementwise kernels (mlx/backend/metal/kernels: unary, binary, ternary, copy, arange),
arguments and grids as MLX's host code (mlx/backend/metal/{unary,binary,ternary,copy}.cpp) passes them.

Kernel names say how the data lies: ``v``/``vn``/``v2`` contiguous (one element a thread, ``8 / sizeof(T)`` a
thread, a 2-D grid with a 64-bit size), ``s``/``sv``/``vs`` a scalar operand, ``g1``..``g3`` strided with the shape
given by the grid, ``gn2``/``gn4large`` strided of any rank (shape, strides and rank as arguments, N elements a
thread along the last axis). Strided inputs are views of a larger buffer: sliced with steps and transposed."""
from __future__ import annotations

import math

import numpy as np

from .cases import case
from .harness import check, from_device, round_to, to_device

RNG_SEED = 29
FLOATS = ("float32", "float16", "bfloat16")
SHAPES = np.int32   # constant const int* shape
STRIDES = np.int64  # constant const int64_t* strides


def values(shape, dtype: str, rng, low=-4.0, high=4.0) -> np.ndarray:
    """Random inputs already representable in ``dtype``, as float64: uniform in [low, high] for floats, integers in
    [8 low, 8 high] for integer types (clipped to the type)."""
    if dtype in FLOATS:
        return round_to(rng.uniform(low, high, size=shape), dtype)
    info = np.iinfo(np.dtype(dtype))
    lowest, highest = max(info.min, int(np.floor(8 * low))), min(info.max, int(np.ceil(8 * high)))
    return rng.integers(lowest, highest + 1, size=shape).astype(np.float64)


def as_dtype(x: np.ndarray, dtype: str) -> np.ndarray:
    """A float64 reference as the device stores it in ``dtype`` (integers wrap, as in C)."""
    if dtype in FLOATS:
        return round_to(x, dtype)
    if dtype == "bool":
        return (x != 0).astype(np.float64)
    return np.asarray(x).astype(np.int64).astype(np.dtype(dtype)).astype(np.float64)


def bool_buffer(gpu, flags: np.ndarray):
    buffer = gpu.create_buffer(max(flags.size, 1), "bool")
    buffer.contents.view(np.uint8)[:flags.size] = flags.reshape(-1).astype(np.uint8)
    return buffer


def read_bool(buffer, count: int) -> np.ndarray:
    return buffer.contents.view(np.uint8)[:count].astype(np.float64)


class Strided:
    """A strided view of a base buffer: the base's values, the view's element strides, and the view's values."""

    def __init__(self, shape, dtype: str, rng, low=-4.0, high=4.0):
        # The view takes every other element of the base along the (base's) last axis, and reverses the axes.
        base_shape = tuple(reversed(shape))[:-1] + (2 * tuple(reversed(shape))[-1],)
        self.base = values(base_shape, dtype, rng, low, high)
        self.index = np.arange(self.base.size).reshape(base_shape)[..., ::2].transpose()
        assert self.index.shape == tuple(shape)
        self.strides = np.array(self.index.strides, STRIDES) // self.index.itemsize

    @property
    def view(self) -> np.ndarray:
        return self.base.reshape(-1)[self.index]


def ceildiv(a: int, b: int) -> int:
    return -(-a // b)


def contiguous(shape) -> np.ndarray:
    return np.array([int(np.prod(shape[k + 1:])) for k in range(len(shape))], STRIDES)


def general_grid(shape, per_thread: int = 1) -> tuple[int, int, int]:
    """MLX's grid for a strided kernel: (last axis / N, next-to-last axis, the rest)."""
    last = shape[-1] if shape else 1
    before = shape[-2] if len(shape) > 1 else 1
    rest = int(np.prod(shape)) // (last * before)
    return (ceildiv(last, per_thread), before, rest)


def contiguous_launch(gpu, prefix: str, count: int, per_thread: int, buffers: list) -> None:
    """Launch a ``v``/``vn`` kernel (size as uint32) or a ``v2`` kernel (size as int64, a 2-D grid)."""
    threads = ceildiv(count, per_thread)
    if prefix.endswith("2"):
        width = 64
        gpu.run_function((width, ceildiv(threads, width)), [*buffers, np.int64(count)])
    else:
        gpu.run_function(threads, [*buffers, np.uint32(count)])


def work_per_thread(prefix: str, dtype: str, strided_n: int) -> int:
    """Elements a thread: ``vn``/``svn``.. do 8 / sizeof(T), ``gnN`` do N, the others one."""
    if prefix.startswith("g"):
        return strided_n
    if prefix.endswith("n"):
        return max(1, 8 // (2 if dtype in ("float16", "bfloat16") else np.dtype(dtype).itemsize))
    return 1


# --- unary.metal --------------------------------------------------------------------------------------------------

UNARY = {
    "Exp": np.exp, "Sin": np.sin, "Log1p": np.log1p, "Negative": np.negative, "Abs": np.abs,
    "Square": np.square, "Sigmoid": lambda x: 1 / (1 + np.exp(-x)), "Erf": np.vectorize(math.erf), "Tanh": np.tanh,
    "Floor": np.floor, "BitwiseInvert": lambda x: np.invert(x.astype(np.int64)).astype(np.float64),
}


@case("mlx.unary")
def unary(gpu, kernel, dtype: str, op: str, layout: str, shape: list | None = None, low: float = -4.0,
          high: float = 4.0) -> None:
    rng = np.random.default_rng(RNG_SEED)
    out_dtype = dtype
    if layout.startswith("g"):  # gn1 / gn4large: any rank, shape and strides as arguments
        shape = shape or [3, 5, 37]
        per_thread = int(layout[2])
        source = Strided(shape, dtype, rng, low, high)
        x, count = source.view, source.view.size
        out = to_device(gpu, np.zeros(count), out_dtype)
        gpu.run_function(general_grid(shape, per_thread),
                         [to_device(gpu, source.base, dtype), out, np.array(shape, SHAPES), source.strides,
                          np.int32(len(shape))])
    else:
        count = int(np.prod(shape or [1000]))
        x = values(count, dtype, rng, low, high)
        out = to_device(gpu, np.zeros(count), out_dtype)
        contiguous_launch(gpu, layout, count, work_per_thread(layout, dtype, 1), [to_device(gpu, x, dtype), out])
    expected = as_dtype(UNARY[op](x.reshape(-1)), out_dtype)
    check(from_device(out, out_dtype), expected, kernel.family, out_dtype, kernel.name)


# --- binary.metal -------------------------------------------------------------------------------------------------

BINARY = {
    "Add": np.add, "Subtract": np.subtract, "Multiply": np.multiply, "Divide": np.divide,
    "Maximum": np.maximum, "Minimum": np.minimum, "Power": np.power, "Remainder": np.mod,
    "LogAddExp": np.logaddexp, "ArcTan2": np.arctan2,
    "Greater": np.greater, "LessEqual": np.less_equal, "Equal": np.equal,
}
COMPARISONS = ("Greater", "LessEqual", "Equal")


def _nonzero(x: np.ndarray, op: str, dtype: str) -> np.ndarray:
    """Integer divisors without zero: an integer division by zero traps on the cpu backend (differences.md)."""
    if op in ("Divide", "Remainder") and dtype not in FLOATS:
        x[x == 0] = 1
    return x


def _binary_reference(op: str, a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray:
    if dtype in FLOATS:
        return np.asarray(BINARY[op](a, b), dtype=np.float64)
    integer = np.dtype(dtype)
    return np.asarray(BINARY[op](a.astype(integer), b.astype(integer))).astype(np.float64)  # wraps as the device


@case("mlx.binary")
def binary(gpu, kernel, dtype: str, op: str, layout: str, shape: list | None = None, low: float = -4.0,
           high: float = 4.0) -> None:
    """``layout``: ss, sv, vs, vv (with n or 2 suffixes), g1..g3 (large or not), gn2, gn4large."""
    rng = np.random.default_rng(RNG_SEED)
    out_dtype = "bool" if op in COMPARISONS else dtype
    if layout.startswith("g"):
        shape = shape or ([41] if layout.startswith("g1") else [5, 37] if layout.startswith("g2") else [3, 5, 37]
                          if layout.startswith("g3") else [2, 3, 5, 37])
        a, b = Strided(shape, dtype, rng, low, high), Strided(shape, dtype, rng, low, high)
        _nonzero(b.base, op, dtype)
        x, y = a.view, b.view
        count = x.size
        out = bool_buffer(gpu, np.zeros(count)) if out_dtype == "bool" else to_device(gpu, np.zeros(count), dtype)
        operands = [to_device(gpu, a.base, dtype), to_device(gpu, b.base, dtype), out]
        if layout.startswith("gn"):
            per_thread = int(layout[2])
            gpu.run_function(general_grid(shape, per_thread), [*operands, np.array(shape, SHAPES), a.strides,
                                                                b.strides, np.int32(len(shape))])
        elif len(shape) == 1:
            gpu.run_function(count, [*operands, a.strides[0], b.strides[0]])
        else:
            gpu.run_function(general_grid(shape)[:len(shape)], [*operands, a.strides, b.strides])
    else:
        count = int(np.prod(shape or [1000]))
        x = values(1 if layout[0] == "s" else count, dtype, rng, low, high)
        y = _nonzero(values(1 if layout[1] == "s" else count, dtype, rng, low, high), op, dtype)
        out = bool_buffer(gpu, np.zeros(count)) if out_dtype == "bool" else to_device(gpu, np.zeros(count), dtype)
        operands = [to_device(gpu, x, dtype), to_device(gpu, y, dtype), out]
        if layout == "ss":
            count = 1
            gpu.run_function(1, operands)
        else:
            contiguous_launch(gpu, layout, count, work_per_thread(layout, dtype, 1), operands)
        x, y = np.broadcast_to(x, (count,)), np.broadcast_to(y, (count,))
    expected = as_dtype(_binary_reference(op, x.reshape(-1), y.reshape(-1), dtype), out_dtype)
    got = read_bool(out, count) if out_dtype == "bool" else from_device(out, dtype)[:count]
    check(got, expected, kernel.family, out_dtype, kernel.name)


# --- ternary.metal (Select: condition ? b : c) ----------------------------------------------------------------------

@case("mlx.select")
def select(gpu, kernel, dtype: str, layout: str, shape: list | None = None) -> None:
    """``layout``: v, vn, v2 (all operands contiguous), vs / sv (c / b a scalar), g1..g3, gn2, gn4large."""
    rng = np.random.default_rng(RNG_SEED)
    if layout.startswith("g"):
        shape = shape or ([41] if layout.startswith("g1") else [5, 37] if layout.startswith("g2") else [3, 5, 37]
                          if layout.startswith("g3") else [2, 3, 5, 37])
        flags = Strided(shape, "uint8", rng, 0, 0.125)  # integers in [0, 1]
        b, c = Strided(shape, dtype, rng), Strided(shape, dtype, rng)
        count = b.view.size
        out = to_device(gpu, np.zeros(count), dtype)
        operands = [bool_buffer(gpu, flags.base), to_device(gpu, b.base, dtype), to_device(gpu, c.base, dtype), out]
        if layout.startswith("gn"):
            gpu.run_function(general_grid(shape, int(layout[2])),
                             [*operands, np.array(shape, SHAPES), flags.strides, b.strides, c.strides,
                              np.int32(len(shape))])
        elif len(shape) == 1:
            gpu.run_function(count, [*operands, flags.strides[0], b.strides[0], c.strides[0]])
        else:
            gpu.run_function(general_grid(shape)[:len(shape)], [*operands, flags.strides, b.strides, c.strides])
        condition, x, y = flags.view, b.view, c.view
    else:
        count = int(np.prod(shape or [1000]))
        condition = rng.integers(0, 2, size=count).astype(np.float64)
        x = values(1 if layout.startswith("s") else count, dtype, rng)
        y = values(1 if layout.startswith("vs") else count, dtype, rng)
        out = to_device(gpu, np.zeros(count), dtype)
        operands = [bool_buffer(gpu, condition), to_device(gpu, x, dtype), to_device(gpu, y, dtype), out]
        contiguous_launch(gpu, layout, count, work_per_thread(layout, dtype, 1), operands)
        x, y = np.broadcast_to(x, (count,)), np.broadcast_to(y, (count,))
    expected = np.where(condition.reshape(-1) != 0, x.reshape(-1), y.reshape(-1))
    check(from_device(out, dtype), expected, kernel.family, dtype, kernel.name)


# --- copy.metal ---------------------------------------------------------------------------------------------------

@case("mlx.copy")
def copy(gpu, kernel, dtype: str, out_dtype: str, layout: str, shape: list | None = None) -> None:
    """``layout``: s, sn (fill from a scalar), v, vn, v2, g1..g3 / gn2 / gn4large (strided source, contiguous
    destination), gg1..gg3 / ggn2 (strided source and destination)."""
    rng = np.random.default_rng(RNG_SEED)
    if layout.startswith("g"):
        both = layout.startswith("gg")
        code = layout[2:] if both else layout[1:]
        shape = shape or ([41] if code.startswith("1") else [5, 37] if code.startswith("2") else [3, 5, 37]
                          if code.startswith("3") else [2, 3, 5, 37])
        source = Strided(shape, dtype, rng)
        count = source.view.size
        if both:  # the destination: every third element of a buffer, in the view's order reversed along axis 0
            target = np.arange(3 * count).reshape(*shape[:-1], 3 * shape[-1])[..., ::3]
            destination_strides = np.array(target.strides, STRIDES) // target.itemsize
            destination = values(3 * count, out_dtype, rng)
            out = to_device(gpu, destination, out_dtype)
        else:
            destination_strides = contiguous(shape)
            out = to_device(gpu, np.zeros(count), out_dtype)
        buffers = [to_device(gpu, source.base, dtype), out, None, source.strides]
        if code.startswith("n"):
            buffers = [*buffers[:2], np.array(shape, SHAPES), source.strides]
            buffers += [destination_strides if both else None, np.int32(len(shape))]
            grid = general_grid(shape, int(code[1]))
        else:
            if len(shape) == 1:
                buffers[3] = source.strides[0]
            if both:
                buffers.append(destination_strides[0] if len(shape) == 1 else destination_strides)
            grid = general_grid(shape)[:len(shape)]
        gpu.run_function(grid, buffers)
        expected = as_dtype(source.view, out_dtype)
        if both:
            full = as_dtype(destination, out_dtype)
            full[target.reshape(-1)] = expected.reshape(-1)
            expected = full
        check(from_device(out, out_dtype), expected.reshape(-1), kernel.family, out_dtype, kernel.name)
        return
    count = int(np.prod(shape or [1000]))
    x = values(1 if layout.startswith("s") else count, dtype, rng)
    out = to_device(gpu, np.zeros(count), out_dtype)
    contiguous_launch(gpu, layout, count, work_per_thread(layout, out_dtype, 1), [to_device(gpu, x, dtype), out])
    expected = as_dtype(np.broadcast_to(x, (count,)), out_dtype)
    check(from_device(out, out_dtype), expected, kernel.family, out_dtype, kernel.name)


# --- arange.metal -------------------------------------------------------------------------------------------------

@case("mlx.arange")
def arange(gpu, kernel, dtype: str, start: float, step: float, count: int = 300) -> None:
    out = to_device(gpu, np.zeros(count), dtype)
    gpu.run_function(count, [start, step, out])
    products = as_dtype(np.arange(count) * as_dtype(step, dtype), dtype)  # start + index * step, each step in T
    expected = as_dtype(as_dtype(start, dtype) + products, dtype)
    check(from_device(out, dtype), expected, kernel.family, dtype, kernel.name)


# --- rope.metal ---------------------------------------------------------------------------------------------------

def _rotate(x: np.ndarray, positions: np.ndarray, inv_freq: np.ndarray, traditional: bool, forward: bool):
    """Rotary embedding of x (..., T, D) by angle position * inv_freq[i] on pair i: (x[2i], x[2i+1]) when
    traditional, else (x[i], x[i + D/2]); the inverse rotation when not forward."""
    theta = positions[..., None] * inv_freq  # (..., T, D/2)
    cos, sin = np.cos(theta), np.sin(theta) * (1 if forward else -1)
    first, second = (x[..., 0::2], x[..., 1::2]) if traditional else np.split(x, 2, axis=-1)
    rotated = (first * cos - second * sin, first * sin + second * cos)
    out = np.empty_like(x)
    if traditional:
        out[..., 0::2], out[..., 1::2] = rotated
    else:
        out[..., :x.shape[-1] // 2], out[..., x.shape[-1] // 2:] = rotated
    return out


@case("mlx.rope")
def rope(gpu, kernel, dtype: str, batch: int, heads: int, length: int, dims: int, traditional: bool,
         forward: bool = True, offsets: list | None = None, scale: float = 1.0, base: float = 10000.0) -> None:
    """``rope_single_*``: one position a matrix (length 1, one offset); ``rope_*``: offsets per batch entry;
    ``*freqs*``: the frequencies given (inv_freq = 1 / freqs[i]) instead of base ** (-2 i / dims)."""
    rng = np.random.default_rng(RNG_SEED)
    x = values((batch, heads, length, dims), dtype, rng, -2.0, 2.0)
    out = to_device(gpu, np.zeros(x.size), dtype)
    half = dims // 2
    if "freqs" in kernel.name:  # buffers 10 and 11: the frequencies and their stride
        freqs = (np.float32(base) ** (np.arange(half) / half) * rng.uniform(0.8, 1.2, half)).astype(np.float32)
        inv_freq = 1.0 / freqs.astype(np.float64)
        frequencies = [to_device(gpu, freqs, "float32"), np.int64(1)]
    else:  # buffer 10: log2 of the base
        inv_freq = np.exp2(-(np.arange(half) / half) * np.log2(base))
        frequencies = [np.float32(np.log2(base))]
    offsets = offsets or [3] * batch
    gpu.set_function(kernel.name, constants={1: forward, 2: traditional, 3: False})
    if kernel.name.startswith("rope_single"):
        assert length == 1 and len(set(offsets)) == 1
        arguments = [to_device(gpu, x, dtype), out, np.int32(offsets[0]), np.float32(scale), np.int64(dims),
                     None, None, None, None, None, *frequencies]
        gpu.run_function((half, batch * heads), arguments)
    else:
        heads_a_thread = 4
        strides = np.array([length * dims, dims, 1], STRIDES)
        arguments = [to_device(gpu, x, dtype), out, to_device(gpu, np.array(offsets), "int32"), np.float32(scale),
                     strides, strides, np.int64(1), np.int32(heads), None, None, *frequencies]
        gpu.run_function((half, length, batch * ceildiv(heads, heads_a_thread)), arguments)
    positions = scale * (np.arange(length)[None, :] + np.array(offsets)[:, None])  # (batch, T)
    expected = _rotate(x, positions[:, None, :], inv_freq, traditional, forward)
    check(from_device(out, dtype).reshape(x.shape), expected, kernel.family, dtype, kernel.name)


# --- random.metal (Threefry-2x32, 20 rounds) ------------------------------------------------------------------------

_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
_PARITY = 0x1BD11BDA
# Known-answer vectors of Threefry-2x32-20 published with Random123 (Salmon et al., SC'11): (key, counter, result).
_THREEFRY_VECTORS = (((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
                     ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
                     ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)))


def threefry2x32(key, counter) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 with 20 rounds, from its definition: the key schedule (k0, k1, k0 ^ k1 ^ parity) is injected
    after every fourth round (with the injection count added to the second word), rotations cycle through 8
    constants. Arrays of uint32, elementwise."""
    k = [np.uint32(key[0]), np.uint32(key[1])]
    schedule = (k[0], k[1], np.uint32(k[0] ^ k[1] ^ np.uint32(_PARITY)))
    with np.errstate(over="ignore"):
        x0 = np.asarray(counter[0], np.uint32) + schedule[0]
        x1 = np.asarray(counter[1], np.uint32) + schedule[1]
        for r in range(20):
            rotation = np.uint32(_ROTATIONS[r % 8])
            x0 = x0 + x1
            x1 = (x1 << rotation) | (x1 >> (np.uint32(32) - rotation))
            x1 = x1 ^ x0
            if r % 4 == 3:
                s = r // 4 + 1
                x0 = x0 + schedule[s % 3]
                x1 = x1 + schedule[(s + 1) % 3] + np.uint32(s)
    return x0, x1


def _random_bits_reference(keys: np.ndarray, bytes_per_key: int) -> np.ndarray:
    """MLX's bits for each key: words = ceil(bytes / 4); thread j of [0, half + odd) hashes the counter
    (j, j + half + odd) into words j and j + half + odd (the last thread of an odd count keeps only the first,
    with counter (j, 0)); the bytes little-endian, cut at bytes_per_key."""
    words = ceildiv(bytes_per_key, 4)
    half, odd = words // 2, words % 2
    rows = []
    for key in keys:
        j = np.arange(half + odd, dtype=np.uint32)
        second = np.where(j == half, 0, j + half + odd) if odd else j + half + odd
        x0, x1 = threefry2x32(key, (j, second.astype(np.uint32)))
        out = np.zeros(words, np.uint32)
        out[:half + odd] = x0
        out[half + odd:] = x1[:half]
        rows.append(out.view(np.uint8)[:bytes_per_key])
    return np.concatenate(rows)


@case("mlx.random_bits")
def random_bits(gpu, kernel, count: int, bytes_per_key: int) -> None:
    """``rbitsc``: keys row-contiguous (count, 2); ``rbits``: the keys a transposed (2, count) array."""
    for key, counter, result in _THREEFRY_VECTORS:  # the reference itself, against the published answers
        assert tuple(int(v) for v in threefry2x32(key, counter)) == result
    rng = np.random.default_rng(RNG_SEED)
    keys = rng.integers(0, 2**32, size=(count, 2), dtype=np.uint64).astype(np.uint32)
    words = ceildiv(bytes_per_key, 4)
    out = gpu.create_buffer(count * bytes_per_key, "uchar")
    grid = (count, words // 2 + words % 2)
    head = [None, out, bool(words % 2), np.uint64(bytes_per_key)]
    if kernel.name == "rbitsc":
        head[0] = to_device(gpu, keys, "uint32")
        gpu.run_function(grid, head)
    else:
        head[0] = to_device(gpu, keys.T.copy(), "uint32")
        gpu.run_function(grid, [*head, np.int32(2), np.array([count, 2], SHAPES), np.array([1, count], STRIDES)])
    expected = _random_bits_reference(keys, bytes_per_key).astype(np.float64)
    check(out.contents.astype(np.float64), expected, kernel.family, "uint8", kernel.name)
