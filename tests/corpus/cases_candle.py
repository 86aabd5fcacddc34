"""Runtime cases of candle's kernels (candle-metal-kernels/src/metal_src), argument conventions as candle's Rust
host code passes them: sizes as ``constant size_t&``, shapes and strides as ``constant size_t*`` arrays.

This module holds fill, sort, indexing and convolution; the other families live in cases_candle_*.py, imported at
the end so that every candle case registers with this module."""
from __future__ import annotations

import numpy as np

from .candle_support import RNG_SEED, SIZES
from .candle_support import strides as _strides
from .candle_support import values as _values
from .cases import case
from .harness import check, from_device, round_to, to_device

# --- fill.metal ---------------------------------------------------------------------------------------------------

@case("candle.fill")
def fill(gpu, kernel, dtype: str, value: float, count: int = 1000) -> None:
    out = to_device(gpu, np.full(count + 3, 7), dtype)  # three guard elements past numel
    gpu.run_function(count, [out, value, count])
    expected = np.concatenate([np.full(count, round_to(value, dtype)), np.full(3, 7.0)])
    check(from_device(out, dtype), expected, kernel.family, dtype, kernel.name)


# --- sort.metal (bitonic argsort, one row per threadgroup) ----------------------------------------------------------

@case("candle.argsort")
def argsort(gpu, kernel, dtype: str, descending: bool, rows: int = 3, cols: int = 50) -> None:
    rng = np.random.default_rng(RNG_SEED)
    pad = 1 << (cols - 1).bit_length()
    x = np.stack([rng.permutation(cols) for _ in range(rows)]).astype(np.float64)  # distinct: no ties
    if dtype in ("float32", "float16", "bfloat16"):
        x = x * 0.5 - cols / 4  # negative and fractional values, all exact in every float type
    src, dst = to_device(gpu, x, dtype), to_device(gpu, np.zeros(rows * cols), "uint32")
    gpu.run_function((pad, rows), [src, dst, cols, pad], threads_per_threadgroup=(pad, 1),
                     threadgroup_memory={0: pad * 4})
    expected = np.argsort(-x if descending else x, axis=1, kind="stable")
    check(from_device(dst, "uint32").reshape(rows, cols), expected, kernel.family, "uint32", kernel.name)


# --- indexing.metal -----------------------------------------------------------------------------------------------

@case("candle.index_select")
def index_select(gpu, kernel, dtype: str, index_dtype: str, left: int = 3, dim: int = 7, right: int = 5) -> None:
    rng = np.random.default_rng(RNG_SEED)
    src = _values((left, dim, right), dtype, rng)
    ids = rng.integers(0, dim, size=9)
    ids[4] = np.iinfo(np.dtype(index_dtype)).max  # candle's "no index": the output row is zero
    out = to_device(gpu, np.zeros(left * 9 * right), dtype)
    dst_size = out.count
    gpu.run_function(dst_size, [dst_size, left, dim, right, len(ids), True, np.array([left, dim, right], SIZES),
                                np.array([dim * right, right, 1], SIZES), to_device(gpu, src, dtype),
                                to_device(gpu, ids, index_dtype), out])
    expected = src[:, np.minimum(ids, dim - 1), :]
    expected[:, 4, :] = 0
    check(from_device(out, dtype).reshape(left, 9, right), expected, kernel.family, dtype, kernel.name)


@case("candle.gather")
def gather(gpu, kernel, dtype: str, index_dtype: str, left: int = 2, dim: int = 6, ids_size: int = 4,
           right: int = 3) -> None:
    rng = np.random.default_rng(RNG_SEED)
    src = _values((left, dim, right), dtype, rng)
    ids = rng.integers(0, dim, size=(left, ids_size, right))
    out = to_device(gpu, np.zeros(ids.size), dtype)
    gpu.run_function(ids.size, [ids.size, left, dim, right, ids_size, to_device(gpu, src, dtype),
                                to_device(gpu, ids, index_dtype), out])
    expected = np.take_along_axis(src, ids, axis=1)
    check(from_device(out, dtype).reshape(ids.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.scatter")
def scatter(gpu, kernel, dtype: str, index_dtype: str, add: bool, left: int = 2, src_dim: int = 5,
            dst_dim: int = 4, right: int = 3) -> None:
    rng = np.random.default_rng(RNG_SEED)
    src = _values((left, src_dim, right), dtype, rng)
    ids = rng.integers(0, dst_dim, size=(left, src_dim, right))
    ids[0, 1, 1] = np.iinfo(np.dtype(index_dtype)).max  # skipped
    initial = _values((left, dst_dim, right), dtype, rng)
    out = to_device(gpu, initial, dtype)
    gpu.run_function(left * right, [left * right, left, src_dim, right, dst_dim, to_device(gpu, src, dtype),
                                    to_device(gpu, ids, index_dtype), out])
    expected = initial.copy()
    for l_ in range(left):  # in j order, as each thread walks its column: the last write wins
        for j in range(src_dim):
            for r in range(right):
                if ids[l_, j, r] < dst_dim:
                    if add:
                        expected[l_, ids[l_, j, r], r] += src[l_, j, r]
                    else:
                        expected[l_, ids[l_, j, r], r] = src[l_, j, r]
    family = kernel.family if add else "indexing"
    check(from_device(out, dtype).reshape(expected.shape), round_to(expected, dtype) if dtype != "float32"
          else expected, family, dtype, kernel.name)


@case("candle.index_add")
def index_add(gpu, kernel, dtype: str, index_dtype: str, left: int = 2, ids_dim: int = 5, dst_dim: int = 4,
              right: int = 3) -> None:
    rng = np.random.default_rng(RNG_SEED)
    src = _values((left, ids_dim, right), dtype, rng)
    ids = rng.integers(0, dst_dim, size=ids_dim)
    initial = _values((left, dst_dim, right), dtype, rng)
    out = to_device(gpu, initial, dtype)
    gpu.run_function(left * right, [left * right, left, ids_dim, right, dst_dim, ids_dim, to_device(gpu, src, dtype),
                                    to_device(gpu, ids, index_dtype), out])
    expected = initial.copy()
    np.add.at(expected, (slice(None), ids, slice(None)), src)
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


# --- conv.metal ---------------------------------------------------------------------------------------------------

@case("candle.im2col")
def im2col(gpu, kernel, dtype: str, stride: int = 2, padding: int = 1, dilation: int = 1) -> None:
    rng = np.random.default_rng(RNG_SEED)
    b, c, h, w, hk, wk = 2, 3, 7, 6, 3, 2
    src = _values((b, c, h, w), dtype, rng)
    h_out = (h + 2 * padding - dilation * (hk - 1) - 1) // stride + 1
    w_out = (w + 2 * padding - dilation * (wk - 1) - 1) // stride + 1
    padded = np.pad(src, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    expected = np.zeros((b, h_out, w_out, c, hk, wk))
    for y in range(h_out):
        for x in range(w_out):
            for ky in range(hk):
                for kx in range(wk):
                    expected[:, y, x, :, ky, kx] = padded[:, :, y * stride + ky * dilation, x * stride + kx * dilation]
    out = to_device(gpu, np.zeros(expected.size), dtype)
    gpu.run_function(expected.size, [expected.size, h_out, w_out, hk, wk, stride, padding, dilation,
                                     np.array(src.shape, SIZES), _strides(src.shape), to_device(gpu, src, dtype), out])
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.im2col1d")
def im2col1d(gpu, kernel, dtype: str, stride: int = 2, padding: int = 1, dilation: int = 2) -> None:
    rng = np.random.default_rng(RNG_SEED)
    b, c, length, k = 2, 3, 11, 3
    src = _values((b, c, length), dtype, rng)
    l_out = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    padded = np.pad(src, ((0, 0), (0, 0), (padding, padding)))
    expected = np.zeros((b, l_out, c, k))
    for o in range(l_out):
        for kk in range(k):
            expected[:, o, :, kk] = padded[:, :, o * stride + kk * dilation]
    out = to_device(gpu, np.zeros(expected.size), dtype)
    gpu.run_function(expected.size, [expected.size, l_out, k, stride, padding, dilation, np.array(src.shape, SIZES),
                                     _strides(src.shape), to_device(gpu, src, dtype), out])
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.col2im1d")
def col2im1d(gpu, kernel, dtype: str, stride: int = 2) -> None:
    rng = np.random.default_rng(RNG_SEED)
    b, l_in, c_out, k = 2, 5, 3, 4
    src = _values((b, l_in, c_out, k), dtype, rng)
    l_out = (l_in - 1) * stride + k
    expected = np.zeros((b, c_out, l_out))
    for i in range(l_in):
        for kk in range(k):
            expected[:, :, i * stride + kk] += src[:, i, :, kk]
    out = to_device(gpu, np.zeros(expected.size), dtype)
    gpu.run_function(expected.size, [expected.size, l_out, l_in, c_out, k, stride, to_device(gpu, src, dtype), out])
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.upsample_nearest2d")
def upsample_nearest2d(gpu, kernel, dtype: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    b, c, w_in, h_in, w_out, h_out = 2, 3, 4, 5, 7, 9
    src = _values((b, c, w_in, h_in), dtype, rng)
    w_scale, h_scale = np.float32(w_in / w_out), np.float32(h_in / h_out)
    rows = np.minimum((np.arange(w_out) * w_scale).astype(np.int64), w_in - 1)
    cols = np.minimum((np.arange(h_out) * h_scale).astype(np.int64), h_in - 1)
    expected = src[:, :, rows][:, :, :, cols]
    out = to_device(gpu, np.zeros(expected.size), dtype)
    gpu.run_function(expected.size, [w_out, h_out, float(w_scale), float(h_scale), np.array(src.shape, SIZES),
                                     _strides(src.shape), to_device(gpu, src, dtype), out])
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.upsample_bilinear2d")
def upsample_bilinear2d(gpu, kernel, dtype: str, align_corners: bool) -> None:
    rng = np.random.default_rng(RNG_SEED)
    b, c, h_in, w_in, h_out, w_out = 1, 2, 4, 5, 7, 8
    src = _values((b, c, h_in, w_in), dtype, rng)
    if align_corners:
        h_scale, w_scale = (h_in - 1) / (h_out - 1), (w_in - 1) / (w_out - 1)
        ys, xs = h_scale * np.arange(h_out), w_scale * np.arange(w_out)
    else:
        h_scale, w_scale = h_in / h_out, w_in / w_out
        ys, xs = h_scale * (np.arange(h_out) + 0.5) - 0.5, w_scale * (np.arange(w_out) + 0.5) - 0.5
    ys, xs = np.maximum(ys, 0), np.maximum(xs, 0)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h_in - 1), np.minimum(x0 + 1, w_in - 1)
    wy, wx = np.clip(ys - y0, 0, 1)[:, None], np.clip(xs - x0, 0, 1)[None, :]
    top = src[:, :, y0][:, :, :, x0] * (1 - wx) + src[:, :, y0][:, :, :, x1] * wx
    bottom = src[:, :, y1][:, :, :, x0] * (1 - wx) + src[:, :, y1][:, :, :, x1] * wx
    expected = round_to(top * (1 - wy) + bottom * wy, dtype)
    out = to_device(gpu, np.zeros(expected.size), dtype)
    gpu.run_function(expected.size, [w_out, h_out, align_corners, False, 0.0, False, 0.0, np.array(src.shape, SIZES),
                                     _strides(src.shape), to_device(gpu, src, dtype), out])
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.pool2d")
def pool2d(gpu, kernel, dtype: str, mode: str, w_k: int = 3, h_k: int = 2, w_stride: int = 2,
           h_stride: int = 1) -> None:
    rng = np.random.default_rng(RNG_SEED)
    b, c, w_in, h_in = 2, 3, 9, 6
    src = _values((b, c, w_in, h_in), dtype, rng)
    w_out, h_out = (w_in - w_k) // w_stride + 1, (h_in - h_k) // h_stride + 1
    windows = np.stack([src[:, :, x * w_stride:x * w_stride + w_k, y * h_stride:y * h_stride + h_k]
                        for x in range(w_out) for y in range(h_out)], axis=2)
    if mode == "max":
        expected = windows.max(axis=(3, 4))
    elif dtype in ("uint8", "uint32"):
        expected = windows.sum(axis=(3, 4)) // (w_k * h_k)  # integer accumulator and division
    else:
        expected = round_to(windows.mean(axis=(3, 4)), dtype)
    expected = expected.reshape(b, c, w_out, h_out)
    out = to_device(gpu, np.zeros(expected.size), dtype)
    gpu.run_function(expected.size, [w_k, h_k, w_stride, h_stride, np.array(src.shape, SIZES), _strides(src.shape),
                                     to_device(gpu, src, dtype), out])
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.conv_transpose1d")
def conv_transpose1d(gpu, kernel, dtype: str, stride: int = 2, padding: int = 1, out_padding: int = 1,
                     dilation: int = 1) -> None:
    rng = np.random.default_rng(RNG_SEED)
    b, c_in, c_out, l_in, l_k = 2, 3, 4, 6, 3
    src, weight = _values((b, c_in, l_in), dtype, rng), _values((c_in, c_out, l_k), dtype, rng)
    l_out = (l_in - 1) * stride - 2 * padding + dilation * (l_k - 1) + out_padding + 1
    full = np.zeros((b, c_out, (l_in - 1) * stride + dilation * (l_k - 1) + 1 + out_padding))
    for i in range(l_in):
        for k in range(l_k):
            full[:, :, i * stride + k * dilation] += src[:, :, i] @ weight[:, :, k]
    expected = round_to(full[:, :, padding:padding + l_out], dtype)
    out = to_device(gpu, np.zeros(expected.size), dtype)
    gpu.run_function(expected.size, [l_out, stride, padding, out_padding, dilation, np.array(src.shape, SIZES),
                                     _strides(src.shape), np.array(weight.shape, SIZES), _strides(weight.shape),
                                     to_device(gpu, src, dtype), to_device(gpu, weight, dtype), out])
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


@case("candle.conv_transpose2d")
def conv_transpose2d(gpu, kernel, dtype: str, stride: int = 2, padding: int = 1, out_padding: int = 0,
                     dilation: int = 1) -> None:
    rng = np.random.default_rng(RNG_SEED)
    b, c_in, c_out, h_in, w_in, h_k, w_k = 1, 2, 3, 4, 5, 3, 2
    src, weight = _values((b, c_in, h_in, w_in), dtype, rng), _values((c_in, c_out, h_k, w_k), dtype, rng)
    h_out = (h_in - 1) * stride - 2 * padding + dilation * (h_k - 1) + out_padding + 1
    w_out = (w_in - 1) * stride - 2 * padding + dilation * (w_k - 1) + out_padding + 1
    full = np.zeros((b, c_out, h_out + 2 * padding + stride, w_out + 2 * padding + stride))
    for y in range(h_in):
        for x in range(w_in):
            for ky in range(h_k):
                for kx in range(w_k):
                    full[:, :, y * stride + ky * dilation, x * stride + kx * dilation] += \
                        src[:, :, y, x] @ weight[:, :, ky, kx]
    expected = round_to(full[:, :, padding:padding + h_out, padding:padding + w_out], dtype)
    out = to_device(gpu, np.zeros(expected.size), dtype)
    gpu.run_function(expected.size, [w_out, h_out, stride, padding, out_padding, dilation, np.array(src.shape, SIZES),
                                     _strides(src.shape), np.array(weight.shape, SIZES), _strides(weight.shape),
                                     to_device(gpu, src, dtype), to_device(gpu, weight, dtype), out])
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


from . import (  # noqa: E402, F401  (they register their cases, after the helpers they import)
    cases_candle_elementwise,
    cases_candle_matmul,
    cases_candle_quantized,
    cases_candle_random,
    cases_candle_reduce,
    cases_candle_sort,
)
