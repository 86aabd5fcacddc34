"""Runtime cases of MLX's reductions and row-wise kernels (reduce, arg_reduce, softmax, logsumexp, rms_norm,
layer_norm, scan, sort), arguments and grids as MLX's host code (reduce.cpp, primitives.cpp, softmax.cpp,
logsumexp.cpp, normalization.cpp, scan.cpp, sort.cpp) passes them. References are numpy over the same rounded
inputs, in float64."""
from __future__ import annotations

import numpy as np

from .cases import case
from .cases_mlx import (
    FLOATS,
    SHAPES,
    STRIDES,
    as_dtype,
    bool_buffer,
    ceildiv,
    read_bool,
    values,
)
from .harness import check, from_device, to_device

RNG_SEED = 31
N_READS = 4  # REDUCE_N_READS, SOFTMAX_N_READS, RMS_N_READS
SIZE_T = np.uint64


def _elements(shape) -> int:
    return int(np.prod(shape)) if len(shape) else 1


# --- reduce.metal ---------------------------------------------------------------------------------------------------

REDUCTIONS = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min, "and": np.all, "or": np.any}
# MLX's output type of a reduction (remap_reduce_types): small integer sums and products widen, and/or give bool.
_WIDENED = {"int8": "int32", "int16": "int32", "uint8": "uint32", "uint16": "uint32"}


def _output_dtype(op: str, dtype: str) -> str:
    if op in ("and", "or"):
        return "bool"
    if op in ("sum", "prod"):
        return _WIDENED.get(dtype, dtype)
    return dtype


def _reduce_input(op: str, dtype: str, count: int, rng) -> np.ndarray:
    if op in ("and", "or"):  # mostly true for and, mostly false for or, so both results occur
        flags = rng.random(count) < (0.97 if op == "and" else 0.03)
        return flags * (1.0 if dtype == "bool" else values(count, dtype, rng, 0.25, 2.0))
    if op == "prod":  # factors near one keep the product finite and well scaled
        return values(count, dtype, rng, 0.75, 1.3)
    if op == "sum" and dtype in ("float16", "bfloat16"):  # accumulated in the type itself: no cancellation
        return values(count, dtype, rng, 0.5, 1.0)
    return values(count, dtype, rng)


def _in_buffer(gpu, x: np.ndarray, dtype: str):
    return bool_buffer(gpu, x) if dtype == "bool" else to_device(gpu, x, dtype)


def _out_buffer(gpu, count: int, dtype: str):
    return bool_buffer(gpu, np.zeros(count)) if dtype == "bool" else to_device(gpu, np.zeros(count), dtype)


def _read(buffer, count: int, dtype: str) -> np.ndarray:
    return read_bool(buffer, count) if dtype == "bool" else from_device(buffer, dtype)[:count]


def _loop_ndim(reduce_ndim: int) -> int:
    """The NDIMS template argument MLX picks for a loop over `reduce_ndim` axes (get_kernel_reduce_ndim)."""
    return 1 if reduce_ndim <= 1 else 2 if reduce_ndim == 2 else 5


def _axes_args(shape, axes):
    """(shape, element strides) of the axes given, of a contiguous array of `shape`; a (0,) placeholder when
    there are none, as MLX encodes an empty list."""
    strides = [int(np.prod(shape[k + 1:])) for k in range(len(shape))]
    picked = [(shape[a], strides[a]) for a in axes]
    if not picked:
        return np.zeros(1, SHAPES), np.zeros(1, STRIDES), 0
    return np.array([s for s, _ in picked], SHAPES), np.array([t for _, t in picked], STRIDES), len(picked)


@case("mlx.reduce")
def reduce(gpu, kernel, op: str, dtype: str, kind: str, shape: list, axes: list | None = None) -> None:
    """``kind``: all / all2pass (every element), row_small / row_simple / row_looped (the last axis reduced,
    possibly with others), col_small / col_looped (the last axis kept)."""
    rng = np.random.default_rng(RNG_SEED)
    out_dtype = _output_dtype(op, dtype)
    axes = list(range(len(shape))) if axes is None else axes
    x = _reduce_input(op, dtype, _elements(shape), rng).reshape(shape)
    expected = REDUCTIONS[op](x, axis=tuple(axes)).reshape(-1)
    source = _in_buffer(gpu, x, dtype)
    kept = [a for a in range(len(shape)) if a not in axes]
    out_count = _elements([shape[a] for a in kept])
    out = _out_buffer(gpu, out_count, out_dtype)

    if kind in ("all", "all2pass"):
        n = x.size
        if kind == "all":
            group = 32 * ceildiv(ceildiv(n, N_READS), 32)
            gpu.run_function(group, [source, out, SIZE_T(n), SIZE_T(n)], threads_per_threadgroup=group)
        else:  # the host's two passes: partial results of 128 rows, then one threadgroup over them
            rows = 32 * N_READS
            row_size = ceildiv(n, rows)
            group = 32 * ceildiv(min(ceildiv(row_size, N_READS), 1024), 32)
            partial = _out_buffer(gpu, rows, out_dtype)
            gpu.run_function((group, rows), [source, partial, SIZE_T(n), SIZE_T(row_size)],
                             threads_per_threadgroup=(group, 1))
            gpu.run_function(32, [partial, out, SIZE_T(rows), SIZE_T(rows)], threads_per_threadgroup=32)
    elif kind.startswith("row"):
        assert axes[-1] == len(shape) - 1, "a row reduction reduces the last axis"
        row_size = shape[-1]
        reduce_shape, reduce_strides, reduce_ndim = _axes_args(shape, axes[:-1])
        assert f"_{_loop_ndim(reduce_ndim)}_reduce_" in kernel.name or kind == "row_simple", kernel.name
        kept_shape, kept_strides, kept_ndim = _axes_args(shape, kept)
        non_row = _elements(reduce_shape[:reduce_ndim])
        if kind == "row_simple":
            group = 32 if row_size <= 512 else 128 if row_size <= 1024 else 32 * ceildiv(ceildiv(row_size, N_READS), 32)
            gpu.run_function((group, ceildiv(out_count, 4)), [source, out, SIZE_T(row_size), np.int64(out_count)],
                             threads_per_threadgroup=(group, 1))
        else:
            arguments = [source, out, np.int64(row_size), np.int64(non_row), kept_shape, kept_strides,
                         np.int32(kept_ndim), reduce_shape, reduce_strides, np.int32(reduce_ndim)]
            if kind == "row_small" and ((non_row < 32 and row_size <= 8) or non_row <= 8):
                gpu.run_function(out_count, arguments, threads_per_threadgroup=min(out_count, 1024))
            elif kind == "row_small":  # one SIMD-group an output
                gpu.run_function((32, out_count), arguments, threads_per_threadgroup=(32, 1))
            else:
                group = 32 if row_size <= 512 else 128 if row_size <= 1024 else 256
                gpu.run_function((group, out_count), arguments, threads_per_threadgroup=(group, 1))
    else:  # column reductions: the innermost reduced axis strides over the contiguous kept axes after it
        inner = axes[-1]
        assert inner < len(shape) - 1 and all(a not in axes for a in range(inner + 1, len(shape)))
        column = _elements(shape[inner + 1:])
        outer = [a for a in kept if a < inner]
        outer_shape, outer_strides, outer_ndim = _axes_args(shape, outer)
        reduce_shape, reduce_strides, reduce_ndim = _axes_args(shape, axes)  # the column axis last
        assert f"_{_loop_ndim(reduce_ndim)}_" in kernel.name, kernel.name
        non_col = _elements(reduce_shape[:reduce_ndim - 1])
        arguments = [source, out, SIZE_T(shape[inner]), np.int64(column), outer_shape, outer_strides,
                     np.int32(outer_ndim), reduce_shape, reduce_strides, np.int32(reduce_ndim), SIZE_T(non_col)]
        outer_count = _elements([shape[a] for a in outer])
        if kind == "col_small":
            blocks = ceildiv(column, 4)
            group_x = min(blocks, 32)
            group_y = min(8, shape[inner] * non_col)
            gpu.run_function((ceildiv(blocks, group_x) * group_x, outer_count * group_y), arguments,
                             threads_per_threadgroup=(group_x, group_y))
        else:  # col_looped, BM = BN = 32: 8 SIMD-groups a threadgroup, one threadgroup a block of 32 columns
            gpu.run_function((256 * ceildiv(column, 32), outer_count), arguments, threads_per_threadgroup=(256, 1))
    got = _read(out, out_count, out_dtype)
    check(got, as_dtype(expected, out_dtype), kernel.family, out_dtype, kernel.name)


# --- arg_reduce.metal -----------------------------------------------------------------------------------------------

@case("mlx.arg_reduce")
def arg_reduce(gpu, kernel, dtype: str, shape: list, axis: int) -> None:
    """argmin/argmax along `axis` of a contiguous array: the first index of the extreme value (ties included)."""
    rng = np.random.default_rng(RNG_SEED)
    x = values(shape, dtype, rng, -1.0, 1.0)  # few distinct values in the 16-bit types: ties occur
    x.reshape(-1)[::7] = x.reshape(-1)[3]  # and some certainly do
    strides = np.array([int(np.prod(shape[k + 1:])) for k in range(len(shape))], STRIDES)
    kept = [a for a in range(len(shape)) if a != axis]
    kept_shape = np.array([shape[a] for a in kept], SHAPES)
    kept_strides = strides[kept]
    out_strides = np.array([int(np.prod(kept_shape[k + 1:])) for k in range(len(kept))], STRIDES)
    out_count = _elements(kept_shape)
    out = to_device(gpu, np.zeros(out_count), "uint32")
    group = 32 * ceildiv(min(ceildiv(shape[axis], N_READS), 1024), 32)
    gpu.run_function((group, out_count), [to_device(gpu, x, dtype), out, kept_shape, kept_strides, out_strides,
                                          SIZE_T(len(kept)), np.int64(strides[axis]), SIZE_T(shape[axis])],
                     threads_per_threadgroup=(group, 1))
    find = np.argmax if kernel.name.startswith("argmax") else np.argmin
    check(from_device(out, "uint32"), find(x, axis=axis).reshape(-1), kernel.family, "uint32", kernel.name)


# --- softmax.metal, logsumexp.metal, rms_norm.metal, layer_norm.metal: one threadgroup a row ------------------------

def _row_group(axis_size: int, looped: bool, reads: int = N_READS) -> int:
    """Threads a row: whole SIMD-groups covering the row `reads` elements a thread, or 1024 for the looped kernels
    (the kernels' maxTotalThreadsPerThreadgroup on Apple's GPUs)."""
    return 1024 if looped else 32 * ceildiv(ceildiv(axis_size, reads), 32)


@case("mlx.softmax")
def softmax(gpu, kernel, dtype: str, axis_size: int, rows: int = 3) -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = values((rows, axis_size), dtype, rng, -6.0, 6.0)
    out = to_device(gpu, np.zeros(x.size), dtype)
    group = _row_group(axis_size, kernel.name.startswith("looped"))
    gpu.run_function(rows * group, [to_device(gpu, x, dtype), out, np.int32(axis_size)],
                     threads_per_threadgroup=group)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    check(from_device(out, dtype).reshape(x.shape), e / e.sum(axis=1, keepdims=True), kernel.family, dtype,
          kernel.name)


@case("mlx.logsumexp")
def logsumexp(gpu, kernel, dtype: str, axis_size: int, rows: int = 3) -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = values((rows, axis_size), dtype, rng, -6.0, 6.0)
    out = to_device(gpu, np.zeros(rows), dtype)
    group = _row_group(axis_size, kernel.name.startswith("looped"))
    gpu.run_function(rows * group, [to_device(gpu, x, dtype), out, np.int32(axis_size)],
                     threads_per_threadgroup=group)
    top = x.max(axis=1)
    expected = top + np.log(np.exp(x - top[:, None]).sum(axis=1))
    check(from_device(out, dtype), expected, kernel.family, dtype, kernel.name)


@case("mlx.rms_norm")
def rms_norm(gpu, kernel, dtype: str, axis_size: int, rows: int = 3, eps: float = 1e-5, w_stride: int = 1) -> None:
    """out = w * (x / sqrt(mean(x^2) + eps)): the normalised value rounded to T, then times w in T."""
    rng = np.random.default_rng(RNG_SEED)
    x = values((rows, axis_size), dtype, rng, -2.0, 2.0)
    w = values(axis_size * w_stride, dtype, rng, 0.5, 1.5)
    out = to_device(gpu, np.zeros(x.size), dtype)
    group = _row_group(axis_size, "looped" in kernel.name)
    gpu.run_function(rows * group, [to_device(gpu, x, dtype), to_device(gpu, w, dtype), out, np.float32(eps),
                                    np.uint32(axis_size), np.uint32(w_stride)], threads_per_threadgroup=group)
    normalised = as_dtype(x / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps), dtype)
    check(from_device(out, dtype).reshape(x.shape), w[::w_stride] * normalised, kernel.family, dtype, kernel.name)


@case("mlx.layer_norm")
def layer_norm(gpu, kernel, dtype: str, axis_size: int, rows: int = 3, eps: float = 1e-5, b_stride: int = 1) -> None:
    """out = (x - mean) / sqrt(var + eps) * w + b (var: the population variance); b_stride 0 broadcasts b[0]."""
    rng = np.random.default_rng(RNG_SEED)
    x = values((rows, axis_size), dtype, rng, -2.0, 3.0)
    w, b = values(axis_size, dtype, rng, 0.5, 1.5), values(axis_size, dtype, rng, -1.0, 1.0)
    out = to_device(gpu, np.zeros(x.size), dtype)
    looped = "looped" in kernel.name
    group = _row_group(axis_size, looped, reads=4 if looped else 8)
    gpu.run_function(rows * group, [to_device(gpu, x, dtype), to_device(gpu, w, dtype), to_device(gpu, b, dtype), out,
                                    np.float32(eps), np.uint32(axis_size), np.uint32(1), np.uint32(b_stride)],
                     threads_per_threadgroup=group)
    bias = b if b_stride else np.full(axis_size, b[0])
    mean = x.mean(axis=1, keepdims=True)
    normalised = (x - mean) / np.sqrt(x.var(axis=1, keepdims=True) + eps)
    check(from_device(out, dtype).reshape(x.shape), normalised * w + bias, kernel.family, dtype, kernel.name)


# --- scan.metal -----------------------------------------------------------------------------------------------------

SCANS = {"sum": np.cumsum, "prod": np.cumprod, "max": np.maximum.accumulate, "min": np.minimum.accumulate,
         "logaddexp": np.logaddexp.accumulate}
_IDENTITY = {"sum": 0.0, "prod": 1.0, "logaddexp": -np.inf}


def _scan_reference(x: np.ndarray, op: str, axis: int, inclusive: bool, reverse: bool, dtype: str) -> np.ndarray:
    y = np.flip(x, axis) if reverse else x
    if dtype in FLOATS:
        scanned = SCANS[op](y, axis=axis)
    else:  # integer scans wrap in the type, as numpy's do in that type
        scanned = SCANS[op](y.astype(np.dtype(dtype)), axis=axis).astype(np.float64)
    if not inclusive:
        identity = _IDENTITY.get(op)
        if identity is None and dtype in FLOATS:  # max / min: MLX's Limits<U>::min / max, infinities for floats
            identity = -np.inf if op == "max" else np.inf
        elif identity is None:  # and the type's range for integers
            identity = np.iinfo(np.dtype(dtype)).min if op == "max" else np.iinfo(np.dtype(dtype)).max
        first = np.full_like(np.take(scanned, [0], axis=axis), identity)
        scanned = np.concatenate([first, np.delete(scanned, -1, axis=axis)], axis=axis)
    return np.flip(scanned, axis) if reverse else scanned


@case("mlx.scan")
def scan(gpu, kernel, dtype: str, op: str, shape: list, axis: int, inclusive: bool, reverse: bool) -> None:
    """contig_scan_* for the last axis, strided_scan_* for another one (the axes after it contiguous)."""
    rng = np.random.default_rng(RNG_SEED)
    x = values(shape, dtype, rng, 0.9, 1.1) if op == "prod" else values(shape, dtype, rng)
    out = to_device(gpu, np.zeros(x.size), dtype)
    size = shape[axis]
    reads = 2 if dtype in ("int64", "uint64") else 4  # n_reads: 2 for 8-byte elements
    if axis == len(shape) - 1:
        per_simd = reads * 32
        if size <= reads * 1024:
            group = ceildiv(size, per_simd) * 32
        elif size <= reads * 2048:
            group = ceildiv(size // 2, per_simd) * 32
        else:
            group = 1024
        group = min(group, 1024)
        rows = x.size // size
        gpu.run_function((group, rows), [to_device(gpu, x, dtype), out, SIZE_T(size)],
                         threads_per_threadgroup=(group, 1))
    else:
        stride = _elements(shape[axis + 1:])
        stride_blocks = ceildiv(stride, 32)
        group = (32 // reads) * 32
        outer = x.size // (size * stride)
        gpu.run_function((group, outer * stride_blocks), [to_device(gpu, x, dtype), out, SIZE_T(size),
                                                          SIZE_T(stride), SIZE_T(stride_blocks)],
                         threads_per_threadgroup=(group, 1))
    expected = _scan_reference(x, op, axis, inclusive, reverse, dtype)
    check(from_device(out, dtype).reshape(x.shape), as_dtype(expected, dtype), kernel.family, dtype, kernel.name)


# --- sort.metal (block sort: one threadgroup sorts a row of up to bn * 4 elements) ----------------------------------

@case("mlx.block_sort")
def block_sort(gpu, kernel, dtype: str, rows: int, size: int, argsort: bool, nan: bool = False) -> None:
    """``c..``: rows contiguous (segment stride); ``nc..``: rows located through a shape and strides. Values are
    distinct, so the order is unique; a NaN sorts after every number, as MLX documents."""
    rng = np.random.default_rng(RNG_SEED)
    bn = int(kernel.name.split("_bn")[1].split("_")[0])
    assert size <= bn * 4
    x = np.stack([rng.permutation(size) for _ in range(rows)]).astype(np.float64)
    if dtype in FLOATS:
        x = x * 0.5 - size / 4  # negative and fractional, exact in every float type
    if nan:
        x[0, size // 3] = np.nan
    out_dtype = "uint32" if argsort else dtype
    out = to_device(gpu, np.zeros(x.size), out_dtype)
    sorted_stride, segment_stride = 1, size
    head = [to_device(gpu, x, dtype), out, np.int32(size), np.int32(sorted_stride), np.int32(sorted_stride)]
    if kernel.name.startswith("c"):
        arguments = [*head, np.int32(segment_stride), np.int32(segment_stride)]
    else:
        arguments = [*head, np.int32(1), np.array([rows], SHAPES), np.array([segment_stride], STRIDES),
                     np.array([segment_stride], STRIDES)]
    gpu.run_function((bn, rows), arguments, threads_per_threadgroup=(bn, 1))
    order = np.argsort(np.where(np.isnan(x), np.inf, x), axis=1, kind="stable")  # NaN last (one NaN only)
    expected = order if argsort else np.take_along_axis(x, order, axis=1)
    check(from_device(out, out_dtype).reshape(rows, size), expected.astype(np.float64), kernel.family, out_dtype,
          kernel.name)
