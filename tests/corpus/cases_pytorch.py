"""Runtime cases of PyTorch's MPS kernels (aten/src/ATen/native/mps/kernels), arguments as PyTorch's host code
passes them."""
from __future__ import annotations

import numpy as np

from .cases import case
from .harness import METAL_OF, NUMPY_OF, check, from_device, round_to, to_device

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


# --- shared helpers -----------------------------------------------------------------------------------------------

FLOATS = ("float32", "float16", "bfloat16")


def _values(shape, dtype: str, rng, low: float = -4.0, high: float = 4.0) -> np.ndarray:
    """Random inputs already representable in ``dtype`` (small integers for integer types)."""
    if dtype in FLOATS:
        return round_to(rng.uniform(low, high, size=shape), dtype)
    return rng.integers(-20 if dtype.startswith("int") else 0, 20, size=shape).astype(np.float64)


def _scalar(value: float, dtype: str) -> bytes:
    """A scalar argument's bytes in the kernel's element type, as PyTorch's host sets them (setBytes)."""
    if dtype == "bfloat16":
        bits = np.array([round_to(np.array([value]), dtype)[0]], np.float32).view(np.uint32) >> 16
        return bits.astype(np.uint16).tobytes()
    return np.array([value], NUMPY_OF[dtype]).tobytes()


def _transposed_view(rows: int, cols: int):
    """Sizes and element strides (dimension 0 fastest, as c10::metal::pos_from_thread_index walks them) of the
    transpose of a row-major rows x cols tensor, and the strides of its contiguous result."""
    sizes = np.array([rows, cols], np.int64)  # the result is cols x rows: its inner dimension has size `rows`
    return sizes, np.array([cols, 1], np.int64), np.array([1, rows], np.int64)


# --- ActivationKernel.metal (c10/metal/indexing.h's unary/binary TensorIterator kernels) ---------------------------

_ACTIVATIONS = {
    "hardsigmoid": lambda x, a: np.clip(x + 3, 0, 6) / 6,
    "hardswish": lambda x, a: x * np.clip(x + 3, 0, 6) / 6,
    "leaky_relu": lambda x, a: np.where(x > 0, x, x * a),
    "hardshrink": lambda x, a: np.where(np.abs(x) <= a, 0, x),
    "softshrink": lambda x, a: np.where(x > a, x - a, np.where(x < -a, x + a, 0)),
}
_ACTIVATION_BACKWARDS = {  # (input, other, alpha) in the kernel's argument order
    "hardsigmoid_backward": lambda g, x, a: np.where(np.abs(x) < 3, g / 6, 0),
    "hardswish_backward": lambda g, x, a: np.where(x <= -3, 0, np.where(x >= 3, g, g * (x / 3 + 0.5))),
    "leaky_relu_backward": lambda x, g, a: np.where(x > 0, g, g * a),
    "shrink_backward": lambda g, x, a: np.where(np.abs(x) <= a, 0, g),
}


@case("pytorch.unary")
def unary(gpu, kernel, dtype: str, op: str, alpha: float | None = None, strided: bool = False, rows: int = 13,
          cols: int = 21) -> None:
    """<op>_dense_* (output, input[, alpha]) or <op>_strided_* (output, input, sizes, input_strides,
    output_strides, ndim[, alpha]): element strides, dimension 0 fastest; the strided case reads a transpose."""
    rng = np.random.default_rng(RNG_SEED)
    x = _values((rows, cols), dtype, rng, -6, 6)
    a = None if alpha is None else float(round_to(np.array([alpha]), dtype)[0])
    out = to_device(gpu, np.zeros(x.size), dtype)
    extra = [] if a is None else [_scalar(a, dtype)]
    if strided:
        sizes, in_strides, out_strides = _transposed_view(rows, cols)
        gpu.run_function(x.size, [out, to_device(gpu, x, dtype), sizes, in_strides, out_strides, 2, *extra])
        x = x.T
    else:
        gpu.run_function(x.size, [out, to_device(gpu, x, dtype), *extra])
    expected = round_to(_ACTIVATIONS[op](x, a), dtype).reshape(-1)
    check(from_device(out, dtype), expected, kernel.family, dtype, kernel.name)


@case("pytorch.binary")
def binary(gpu, kernel, dtype: str, op: str, alpha: float | None = None, strided: bool = False, rows: int = 11,
           cols: int = 19) -> None:
    """<op>_dense_* (out, input, other[, alpha]) or <op>_strided_* (out, input, other[, alpha], sizes,
    output_strides, input_strides, other_strides, uint3 ndim): byte strides (val_at_offs). The strided case
    reads input as a transpose and broadcasts a row vector as other (stride 0)."""
    rng = np.random.default_rng(RNG_SEED)
    x, y = _values((rows, cols), dtype, rng, -5, 5), _values((rows, cols), dtype, rng, -5, 5)
    a = None if alpha is None else float(round_to(np.array([alpha]), dtype)[0])
    alpha_arg = [] if a is None else [_scalar(a, dtype)]
    out = to_device(gpu, np.zeros(x.size), dtype)
    if strided:
        item = 2 if dtype in ("float16", "bfloat16") else np.dtype(NUMPY_OF[dtype]).itemsize
        sizes, in_strides, out_strides = _transposed_view(rows, cols)
        other = _values(rows, dtype, rng, -5, 5)
        other_strides = np.array([1, 0], np.int64)  # other[i, j] = vector[j] of the cols x rows result
        gpu.run_function(x.size, [out, to_device(gpu, x, dtype), to_device(gpu, other, dtype), *alpha_arg, sizes,
                                  out_strides * item, in_strides * item, other_strides * item, [2, 0, 0]])
        x, y = x.T, np.broadcast_to(other, (cols, rows))
    else:
        gpu.run_function(x.size, [out, to_device(gpu, x, dtype), to_device(gpu, y, dtype), *alpha_arg])
    expected = round_to(_ACTIVATION_BACKWARDS[op](x, y, a), dtype).reshape(-1)
    check(from_device(out, dtype), expected, kernel.family, dtype, kernel.name)


# --- ScanKernel.metal (the Metal >= 3.1 kernels, adapted from MLX's scan) ----------------------------------------

def _running_extreme(x: np.ndarray, take_max: bool) -> tuple[np.ndarray, np.ndarray]:
    """cummax/cummin along the last axis, ties going to the later index (CumMaxOp/CumMinOp's pair order)."""
    values, indices = np.empty_like(x), np.zeros(x.shape, np.int64)
    best, best_index = x[..., 0].copy(), np.zeros(x.shape[:-1], np.int64)
    for j in range(x.shape[-1]):
        v = x[..., j]
        take = (v >= best) if take_max else (v <= best)
        best, best_index = np.where(take, v, best), np.where(take, j, best_index)
        values[..., j], indices[..., j] = best, best_index
    return values, indices


def _scan_reference(op: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if op == "logcumsumexp":
        return np.logaddexp.accumulate(x, axis=-1), None
    return _running_extreme(x, op == "cummax")


@case("pytorch.scan_innermost")
def scan_innermost(gpu, kernel, dtype: str, op: str, rows: int = 5, axis: int = 300, threads: int = 64) -> None:
    """<op>_innermost_<T> (in, out[, indices], axis_size): one threadgroup per row, N_READS values a thread."""
    rng = np.random.default_rng(RNG_SEED)
    x = _values((rows, axis), dtype, rng, -3, 3) if op == "logcumsumexp" else \
        rng.integers(-9, 9, size=(rows, axis)).astype(np.float64)  # repeated values: ties pick the later index
    values = to_device(gpu, np.zeros(x.size), dtype)
    indices = to_device(gpu, np.full(x.size, -1), "int64")
    outputs = [values] if op == "logcumsumexp" else [values, indices]
    gpu.run_function((threads, rows, 1), [to_device(gpu, x, dtype), *outputs, axis],
                     threads_per_threadgroup=(threads, 1, 1))
    expected, expected_indices = _scan_reference(op, x)
    check(from_device(values, dtype).reshape(rows, axis), round_to(expected, dtype), kernel.family, dtype,
          kernel.name)
    if expected_indices is not None:
        check(from_device(indices, "int64").reshape(rows, axis), expected_indices, "indexing", "int64",
              f"{kernel.name} indices")


@case("pytorch.scan_outer")
def scan_outer(gpu, kernel, dtype: str, op: str, outer: int = 2, axis: int = 70, stride: int = 45,
               reads: int = 4) -> None:
    """<op>_outer_<T> (in, out[, indices], axis_size, stride, stride_blocks): a [outer, axis, stride] tensor
    scanned along axis, 32 x 32 tiles, BN / N_READS SIMD-groups a threadgroup."""
    rng = np.random.default_rng(RNG_SEED)
    shape = (outer, axis, stride)
    x = _values(shape, dtype, rng, -3, 3) if op == "logcumsumexp" else \
        rng.integers(-9, 9, size=shape).astype(np.float64)
    blocks = -(-stride // 32)
    threads = 32 // reads * 32
    values = to_device(gpu, np.zeros(x.size), dtype)
    indices = to_device(gpu, np.full(x.size, -1), "int64")
    outputs = [values] if op == "logcumsumexp" else [values, indices]
    gpu.run_function((threads, outer * blocks, 1), [to_device(gpu, x, dtype), *outputs, axis, stride, blocks],
                     threads_per_threadgroup=(threads, 1, 1))
    expected, expected_indices = _scan_reference(op, np.moveaxis(x, 1, -1))
    check(from_device(values, dtype).reshape(shape), round_to(np.moveaxis(expected, -1, 1), dtype), kernel.family,
          dtype, kernel.name)
    if expected_indices is not None:
        check(from_device(indices, "int64").reshape(shape), np.moveaxis(expected_indices, -1, 1), "indexing",
              "int64", f"{kernel.name} indices")


# --- LogSoftmax.metal (LogSoftmaxParams<idx_t> from LogSoftmax.h) -------------------------------------------------

def _log_softmax_params(gpu, index: str, dim_size: int, num_rows: int, inner: int, sizes=(), strides=(),
                        dim: int = 0, chunks: int = 1) -> np.ndarray:
    params = np.zeros((), gpu.struct_dtype(f"LogSoftmaxParams<{index}>"))
    params["dim_size"], params["num_rows"], params["inner_size"] = dim_size, num_rows, inner
    params["chunk_size"], params["n_chunks"] = -(-dim_size // chunks), chunks
    params["ndim"], params["dim"] = len(sizes), dim
    params["sizes"][:len(sizes)], params["strides"][:len(strides)] = sizes, strides
    return params


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@case("pytorch.log_softmax_row")
def log_softmax_row(gpu, kernel, dtype: str, index: str = "uint", rows: int = 9, axis: int = 333,
                    threads: int = 128) -> None:
    """log_softmax_row_<T>_<u32|u64> (input, output, params): one SIMD-group a contiguous row."""
    x = _values((rows, axis), dtype, np.random.default_rng(RNG_SEED), -6, 6)
    out = to_device(gpu, np.zeros(x.size), dtype)
    per_group = threads // 32
    gpu.run_function(-(-rows // per_group) * threads,
                     [to_device(gpu, x, dtype), out, _log_softmax_params(gpu, index, axis, rows, 1)],
                     threads_per_threadgroup=threads)
    check(from_device(out, dtype).reshape(rows, axis), round_to(_log_softmax(x, 1), dtype), kernel.family, dtype,
          kernel.name)


@case("pytorch.log_softmax_strided")
def log_softmax_strided(gpu, kernel, dtype: str, index: str = "uint", outer: int = 3, axis: int = 50,
                        inner: int = 6) -> None:
    """log_softmax_<T>_<idx> (input, output, params): the 2D fallback, here over dim 1 of a [outer, axis, inner]
    view of an [axis, outer, inner] buffer; the output is contiguous [outer, axis, inner]."""
    physical = _values((axis, outer, inner), dtype, np.random.default_rng(RNG_SEED), -6, 6)
    x = physical.transpose(1, 0, 2)
    params = _log_softmax_params(gpu, index, axis, outer * inner, inner, sizes=(outer, axis, inner),
                                 strides=(inner, outer * inner, 1), dim=1)
    out = to_device(gpu, np.zeros(x.size), dtype)
    tx, ty = 8, 16
    gpu.run_function((tx * -(-inner // tx), ty * outer), [to_device(gpu, physical, dtype), out, params],
                     threads_per_threadgroup=(tx, ty))
    check(from_device(out, dtype).reshape(outer, axis, inner), round_to(_log_softmax(x, 1), dtype), kernel.family,
          dtype, kernel.name)


@case("pytorch.log_softmax_split")
def log_softmax_split(gpu, kernel, dtype: str, index: str = "uint", rows: int = 3, axis: int = 2500,
                      chunks: int = 3, threads: int = 256) -> None:
    """log_softmax_partial_* then log_softmax_finalize_* (the manifest kernel): per-chunk (max, sum) pairs in a
    float2 buffer, then every chunk's outputs from the row's combined statistics."""
    x = _values((rows, axis), dtype, np.random.default_rng(RNG_SEED), -6, 6)
    params = _log_softmax_params(gpu, index, axis, rows, 1, chunks=chunks)
    source, out = to_device(gpu, x, dtype), to_device(gpu, np.zeros(x.size), dtype)
    partials = gpu.create_buffer(rows * chunks * 2, "float")
    partial_name = kernel.name.replace("finalize", "partial")
    gpu.run_function((chunks * threads, rows), [source, partials, params], function_name=partial_name,
                     threads_per_threadgroup=(threads, 1))
    gpu.run_function((chunks * threads, rows), [source, out, partials, params], threads_per_threadgroup=(threads, 1))
    check(from_device(out, dtype).reshape(rows, axis), round_to(_log_softmax(x, 1), dtype), kernel.family, dtype,
          kernel.name)


# --- Quantized.metal (int4 and int8 weight-only quantised matrix products) -----------------------------------------

@case("pytorch.int4pack_mm")
def int4pack_mm(gpu, kernel, dtype: str, group_size: int, m: int = 2, k: int = 256, n: int = 16) -> None:
    """int4pack_mm_<group>_<T> (A [M, K], B [N, K/2] packed nibbles, scales_and_zeros [K/group, N, 2], out [M, N],
    uint3 sizes (M, K, N)): weight = scale * (q - 8) + zero; 32 threads (one SIMD-group) per 4 output columns."""
    rng = np.random.default_rng(RNG_SEED)
    a = round_to(rng.uniform(-1, 1, size=(m, k)), dtype)
    q = rng.integers(0, 16, size=(n, k))
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8)  # even k in the low nibble
    scales = rng.integers(1, 9, size=(k // group_size, n)) / 64  # exact in every type, as is zero - 8 * scale
    zeros = rng.integers(-8, 9, size=(k // group_size, n)) / 8
    scales_and_zeros = np.stack([scales, zeros], axis=-1)
    out = to_device(gpu, np.zeros(m * n), dtype)
    gpu.run_function((n // 4 * 32, 1, m), [to_device(gpu, a, dtype), to_device(gpu, packed, "uint8"),
                                            to_device(gpu, scales_and_zeros, dtype), out, [m, k, n]],
                     threads_per_threadgroup=(64, 1, 1))
    groups = np.arange(k) // group_size
    weight = scales[groups].T * (q - 8) + zeros[groups].T
    check(from_device(out, dtype).reshape(m, n), round_to(a @ weight.T, dtype), kernel.family, dtype, kernel.name)


def _int8_operands(dtype: str, m: int, k: int, n: int):
    rng = np.random.default_rng(RNG_SEED)
    a = round_to(rng.uniform(-1, 1, size=(m, k)), dtype)
    b = rng.integers(-128, 128, size=(n, k))
    scales = round_to(rng.uniform(0.001, 0.02, size=n), dtype)
    return a, b, scales, round_to((a @ b.T) * scales, dtype)


@case("pytorch.int8pack_mv")
def int8pack_mv(gpu, kernel, dtype: str, m: int = 3, k: int = 128, n: int = 24) -> None:
    """int8pack_mv_<T> (A [M, K], B int8 [N, K], scales [N], out [M, N], uint3 sizes, threadgroup scratch): two
    SIMD-groups a threadgroup, four output columns each."""
    a, b, scales, expected = _int8_operands(dtype, m, k, n)
    out = to_device(gpu, np.zeros(m * n), dtype)
    gpu.run_function((n // 8 * 64, m), [to_device(gpu, a, dtype), to_device(gpu, b, "int8"),
                                        to_device(gpu, scales, dtype), out, [m, k, n]],
                     threads_per_threadgroup=(64, 1), threadgroup_memory={0: 8 * 4})
    check(from_device(out, dtype).reshape(m, n), expected, kernel.family, dtype, kernel.name)


@case("pytorch.int8pack_mm")
def int8pack_mm(gpu, kernel, dtype: str, m: int = 40, k: int = 64, n: int = 96) -> None:
    """large_m_int8pack_mm_<T>: the SIMD-group-matrix tiles (32 x 64 a threadgroup of 4 SIMD-groups, K blocks
    of 32), partial tiles at both edges; 12 KiB of threadgroup memory (A, B as half, then the scaled result)."""
    a, b, scales, expected = _int8_operands(dtype, m, k, n)
    out = to_device(gpu, np.zeros(m * n), dtype)
    padded = np.pad(scales, (0, -n % 64))  # a partial tile reads the scales of all its 64 columns
    gpu.run_function((-(-m // 32) * 128, -(-n // 64)), [to_device(gpu, a, dtype), to_device(gpu, b, "int8"),
                                                        to_device(gpu, padded, dtype), out, [m, k, n]],
                     threads_per_threadgroup=(128, 1), threadgroup_memory={0: 8192 + 4096})
    check(from_device(out, dtype).reshape(m, n), expected, kernel.family, dtype, kernel.name)


@case("pytorch.weight_to_int4pack")
def weight_to_int4pack(gpu, kernel, dtype: str = "uint8", n: int = 5, k_int32: int = 6) -> None:
    """weight_to_int4pack (int32 W [N, K/8], uchar out [N, K/2], uint2 sizes): each int32's bytes, least
    significant first, with their two nibbles swapped."""
    words = np.random.default_rng(RNG_SEED).integers(-2**31, 2**31, size=(n, k_int32), dtype=np.int64)
    out = to_device(gpu, np.zeros(n * k_int32 * 4), "uint8")
    gpu.run_function((n, k_int32), [to_device(gpu, words, "int32"), out, [n, k_int32]])
    as_bytes = words.astype(np.int32).view(np.uint8).reshape(n, k_int32, 4)  # little-endian: low byte first
    expected = ((as_bytes & 0xF) << 4) | (as_bytes >> 4)
    check(from_device(out, "uint8").reshape(n, k_int32, 4), expected.astype(np.float64), kernel.family, dtype,
          kernel.name)


# --- LinearAlgebra.metal (naive_matmul) ---------------------------------------------------------------------------

@case("pytorch.naive_matmul")
def naive_matmul(gpu, kernel, dtype: str, m: int = 7, k: int = 16, n: int = 9, transposed: bool = False) -> None:
    """naive_matmul_<T> (mat1, mat2, out, array<ulong2, 3> strides (row, column) of each, uint3 sizes (M, K, N)):
    a thread per output element, accumulating in T; mat2 may be read through a transposed view."""
    rng = np.random.default_rng(RNG_SEED)
    a, b = rng.integers(-4, 5, size=(m, k)) / 2, rng.integers(-4, 5, size=(k, n)) / 2  # exact products and sums
    stored = b.T.copy() if transposed else b
    strides = np.array([[k, 1], [1, k] if transposed else [n, 1], [n, 1]], np.uint64)
    out = to_device(gpu, np.zeros(m * n), dtype)
    gpu.run_function(m * n, [to_device(gpu, a, dtype), to_device(gpu, stored, dtype), out, strides.tobytes(),
                             [m, k, n]])
    check(from_device(out, dtype).reshape(m, n), round_to(a @ b, dtype), kernel.family, dtype, kernel.name)


# --- Attention.metal (sdpa_vector after MLX, and the tiled attention kernel) ----------------------------------------

def _attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, mask: np.ndarray | None = None,
               gqa: int = 1) -> np.ndarray:
    """softmax(scale q k^T) v per head: q [H, Q, D], k and v [H / gqa, N, D], mask [H, Q, N] of kept keys."""
    k, v = np.repeat(k, gqa, axis=0), np.repeat(v, gqa, axis=0)
    scores = scale * q @ k.transpose(0, 2, 1)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True) @ v


def _attention_operands(dtype: str, heads: int, gqa: int, queries: int, keys: int, dim: int):
    rng = np.random.default_rng(RNG_SEED)
    q = _values((heads, queries, dim), dtype, rng, -1, 1)
    k, v = (_values((heads // gqa, keys, dim), dtype, rng, -1, 1) for _ in range(2))
    return q, k, v, 1 / np.sqrt(dim)


@case("pytorch.sdpa_vector")
def sdpa_vector(gpu, kernel, dtype: str, dim: int, masked: bool = False, heads: int = 4, gqa: int = 2,
                queries: int = 2, keys: int = 70) -> None:
    """sdpa_vector_<T>_<D>_<V> (q, k, v, out, gqa_factor, N, uint2 (head, seq) strides of k and of v, scale,
    bool mask, uint3 mask strides (head, kv seq, q seq), has_mask): a threadgroup of 32 SIMD-groups per
    (head, query), each SIMD-group taking every 32nd key."""
    q, k, v, scale = _attention_operands(dtype, heads, gqa, queries, keys, dim)
    rng = np.random.default_rng(RNG_SEED + 1)
    keep = rng.random((heads, queries, keys)) < 0.7 if masked else np.ones((heads, queries, keys), bool)
    keep[..., 0] = True  # every row keeps a key
    mask = np.ascontiguousarray(keep.transpose(0, 2, 1))  # stored [head, kv seq, q seq]
    out = to_device(gpu, np.zeros(q.size), dtype)
    gpu.run_function((heads * 1024, queries, 1),
                     [to_device(gpu, q, dtype), to_device(gpu, k, dtype), to_device(gpu, v, dtype), out, gqa, keys,
                      [keys * dim, dim], [keys * dim, dim], scale, to_device(gpu, mask, "uint8"),
                      [keys * queries, queries, 1], masked],
                     threads_per_threadgroup=(1024, 1, 1))
    expected = _attention(q, k, v, scale, keep if masked else None, gqa)
    check(from_device(out, dtype).reshape(q.shape), round_to(expected, dtype), kernel.family, dtype, kernel.name)


@case("pytorch.sdpa_vector_2pass")
def sdpa_vector_2pass(gpu, kernel, dtype: str, dim: int, heads: int = 2, gqa: int = 1, queries: int = 2,
                      keys: int = 300, blocks: int = 32) -> None:
    """sdpa_vector_2pass_1_<T>_<D>_<D> (32 blocks of 8 SIMD-groups over the keys: partial outputs, sums and
    maxima), then sdpa_vector_2pass_2_<T>_<D> (the manifest kernel) combining the 32 blocks of each query."""
    q, k, v, scale = _attention_operands(dtype, heads, gqa, queries, keys, dim)
    rows = heads * queries
    partials = to_device(gpu, np.zeros(rows * blocks * dim), dtype)
    sums, maxs = (gpu.create_buffer(rows * blocks, "float") for _ in range(2))
    gpu.run_function((heads * 256, queries, blocks),
                     [to_device(gpu, q, dtype), to_device(gpu, k, dtype), to_device(gpu, v, dtype), partials, sums,
                      maxs, gqa, keys, [keys * dim, dim], [keys * dim, dim], scale, to_device(gpu, [1], "uint8"),
                      [0, 0, 0], False],
                     function_name=f"sdpa_vector_2pass_1_{METAL_OF[dtype]}_{dim}_{dim}",
                     threads_per_threadgroup=(256, 1, 1))
    out = to_device(gpu, np.zeros(q.size), dtype)
    gpu.run_function((heads * 1024, queries, 1), [partials, sums, maxs, out], threads_per_threadgroup=(1024, 1, 1))
    check(from_device(out, dtype).reshape(q.shape), round_to(_attention(q, k, v, scale, None, gqa), dtype),
          kernel.family, dtype, kernel.name)


@case("pytorch.attention")
def attention(gpu, kernel, dtype: str, dim: int, block_q: int = 32, block_k: int = 32, heads: int = 2,
              gqa: int = 2, queries: int = 40, keys: int = 50) -> None:
    """attention_<T>_bq<BQ>_bk<BK>_bd<D>_wm4_wn1 (Q, K, V, O, qL, kL, gqa_factor, scale, NK, uint3 (batch,
    head, seq) strides of Q, K, V and O): a (32, 4, 1) threadgroup per block of BQ queries and head; one batch."""
    q, k, v, scale = _attention_operands(dtype, heads, gqa, queries, keys, dim)
    out = to_device(gpu, np.zeros(q.size), dtype)
    q_strides, kv_strides = [heads * queries * dim, queries * dim, dim], [heads // gqa * keys * dim, keys * dim, dim]
    gpu.run_function((-(-queries // block_q) * 32, heads * 4, 1),
                     [to_device(gpu, q, dtype), to_device(gpu, k, dtype), to_device(gpu, v, dtype), out, queries, keys,
                      gqa, scale, -(-keys // block_k), q_strides, kv_strides, kv_strides, q_strides],
                     threads_per_threadgroup=(32, 4, 1))
    # Q is scaled in T before the products, as the kernel does
    expected = _attention(round_to(q * round_to(np.array(scale), dtype), dtype), k, v, 1.0, None, gqa)
    check(from_device(out, dtype).reshape(q.shape), round_to(expected, dtype), kernel.family, dtype, kernel.name)


# --- Bucketization.metal (searchsorted) ---------------------------------------------------------------------------

@case("pytorch.searchsorted")
def searchsorted(gpu, kernel, dtype: str, index_dtype: str, right: bool, rows: int = 1, sorter: bool = False,
                 count: int = 90, bins: int = 17, threads: int = 32) -> None:
    """searchsorted_<T>_<int|long>[_sorter] (values, boundaries, out, idim_in, idim_bd, numel_in, right,
    is_1d_boundaries[, sorter]): per row of values, the insertion point into its row of boundaries (or into
    the one 1D boundaries row); with a sorter the boundaries are unsorted and the sorter orders each row."""
    rng = np.random.default_rng(RNG_SEED)
    low, high = (-50, 50) if dtype in FLOATS else (0, 100)
    boundaries = np.sort(rng.integers(low, high, size=(rows, bins)), axis=1).astype(np.float64)
    lowest = low if dtype.startswith("uint") else low - 5
    values = rng.integers(lowest, high + 5, size=(rows, count)).astype(np.float64)  # ties with the boundaries too
    if dtype in FLOATS:
        boundaries, values = boundaries / 4, values / 4  # exact in every float type
    side = "right" if right else "left"
    expected = np.stack([np.searchsorted(boundaries[r], values[r], side=side) for r in range(rows)])
    stored, extra = boundaries, []
    if sorter:
        order = np.stack([rng.permutation(bins) for _ in range(rows)])
        stored = np.take_along_axis(boundaries, np.argsort(order, axis=1), axis=1)  # stored[order] is sorted
        extra = [to_device(gpu, order, "int64")]
    out = to_device(gpu, np.full(values.size, -1), index_dtype)
    gpu.run_function((threads * 2, 1), [to_device(gpu, values, dtype), to_device(gpu, stored, dtype), out, count,
                                        bins, values.size, int(right), int(rows == 1), *extra],
                     threads_per_threadgroup=(threads, 1))
    check(from_device(out, index_dtype).reshape(rows, count), expected, kernel.family, index_dtype, kernel.name)


from . import cases_pytorch_data, cases_pytorch_pooling, cases_pytorch_sort_softmax  # noqa: E402, F401, I001
