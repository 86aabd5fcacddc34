"""Runtime cases of PyTorch's MPS data-movement, factory, pooling, atomic and loss kernels (Roll, RangeFactories,
Eye, CrossKernel, Im2Col, Pooling3D, Bincount, Scatter, Distance, CrossEntropyKernel), arguments as PyTorch's host
code passes them; each against a numpy reference of our own."""
from __future__ import annotations

import numpy as np

from .cases import case
from .harness import check, from_device, round_to, to_device

RNG_SEED = 23
ERROR_MESSAGES_BYTES = 4 + 30 * 512  # c10::metal::ErrorMessages: a count, then 30 messages of 512 bytes


def _values(shape, dtype: str, rng, low: float = -4.0, high: float = 4.0) -> np.ndarray:
    if dtype in ("float32", "float16", "bfloat16"):
        return round_to(rng.uniform(low, high, size=shape), dtype)
    return rng.integers(-20 if dtype.startswith("int") else 0, 20, size=shape).astype(np.float64)


# --- Roll.metal --------------------------------------------------------------------------------------------------

@case("pytorch.roll")
def roll(gpu, kernel, dtype: str, rows: int = 5, cols: int = 7, shifts=(2, -3)) -> None:
    """roll_<T>: element strides, the output contiguous, shifts normalised into [0, size) by the host."""
    x = _values((rows, cols), dtype, np.random.default_rng(RNG_SEED))
    sizes = np.array([rows, cols], np.int64)
    strides = np.array([cols, 1], np.int64)
    normalised = np.array([s % n for s, n in zip(shifts, sizes)], np.int64)
    out = to_device(gpu, np.zeros(x.size), dtype)
    gpu.run_function(x.size, [to_device(gpu, x, dtype), out, sizes, strides, strides, normalised, 2, x.size])
    check(from_device(out, dtype).reshape(rows, cols), np.roll(x, shifts, axis=(0, 1)), kernel.family, dtype,
          kernel.name)


@case("pytorch.roll_2d")
def roll_2d(gpu, kernel, dtype: str, rows: int = 6, cols: int = 9, shifts=(-1, 4)) -> None:
    """roll_2d_<T>: a 2-D grid (x along the rows), long2 sizes and normalised shifts."""
    x = _values((rows, cols), dtype, np.random.default_rng(RNG_SEED))
    out = to_device(gpu, np.zeros(x.size), dtype)
    gpu.run_function((cols, rows), [to_device(gpu, x, dtype), out, [rows, cols],
                                    [shifts[0] % rows, shifts[1] % cols]])
    check(from_device(out, dtype).reshape(rows, cols), np.roll(x, shifts, axis=(0, 1)), kernel.family, dtype,
          kernel.name)


# --- RangeFactories.metal ----------------------------------------------------------------------------------------

@case("pytorch.arange")
def arange(gpu, kernel, dtype: str, count: int = 100, start: float = -3.5, step: float = 0.25,
           stride: int = 2) -> None:
    """arange_<T>_i32 / _i64: out[i * stride] = start + step * i, computed in the kernel's C type."""
    compute = np.int64 if dtype == "int64" else np.float32
    out = to_device(gpu, np.full(count * stride, -7), dtype)
    gpu.run_function(count, [out, np.array([start, step], compute).tobytes(), stride])  # metal::array
    expected = np.full(count * stride, -7.0)
    expected[::stride] = compute(start) + compute(step) * np.arange(count, dtype=compute)
    check(from_device(out, dtype), round_to(expected, dtype), kernel.family, dtype, kernel.name)


@case("pytorch.linspace")
def linspace(gpu, kernel, dtype: str, index: str = "int32", steps: int = 37, start: float = -2.0,
             end: float = 7.0) -> None:
    """linspace_<T>_i32 / _i64: v = {start, step, end}, p = {steps, stride}; the first half counts up from start,
    the second down from end, so both ends are exact."""
    step = (end - start) / (steps - 1)
    out = to_device(gpu, np.zeros(steps), dtype)
    gpu.run_function(steps, [out, np.array([start, step, end], np.float32).tobytes(),
                         np.array([steps, 1], index).tobytes()])  # metal::array: its bytes
    i = np.arange(steps)
    v = np.float32([start, step, end])
    expected = np.where(i < steps // 2, v[0] + v[1] * i.astype(np.float32),
                        v[2] - v[1] * (steps - i - 1).astype(np.float32))
    check(from_device(out, dtype), round_to(expected, dtype), kernel.family, dtype, kernel.name)


# --- Eye.metal ---------------------------------------------------------------------------------------------------

@case("pytorch.eye")
def eye(gpu, kernel, dtype: str, rows: int = 5, cols: int = 8) -> None:
    out = to_device(gpu, np.full(rows * cols, 9), dtype)
    gpu.run_function((cols, rows), [out, cols, 1])
    check(from_device(out, dtype).reshape(rows, cols), np.eye(rows, cols), kernel.family, dtype, kernel.name)


@case("pytorch.eye_diag")
def eye_diag(gpu, kernel, dtype: str, size: int = 6) -> None:
    """eye_diag_<T> writes the ones of a pre-zeroed square matrix, one thread per diagonal element."""
    out = to_device(gpu, np.zeros(size * size), dtype)
    gpu.run_function(size, [out, size + 1])
    check(from_device(out, dtype).reshape(size, size), np.eye(size), kernel.family, dtype, kernel.name)


# --- CrossKernel.metal -------------------------------------------------------------------------------------------

@case("pytorch.cross_dense")
def cross_dense(gpu, kernel, dtype: str, count: int = 40) -> None:
    """cross_dense_<T> over (count, 3) contiguous vectors: the cross dimension innermost (dim_stride 1)."""
    rng = np.random.default_rng(RNG_SEED)
    a, b = _values((count, 3), dtype, rng), _values((count, 3), dtype, rng)
    out = to_device(gpu, np.zeros(a.size), dtype)
    gpu.run_function(count, [out, to_device(gpu, a, dtype), to_device(gpu, b, dtype), 1])
    check(from_device(out, dtype).reshape(count, 3), round_to(np.cross(a, b), dtype), kernel.family, dtype,
          kernel.name)


# --- Im2Col.metal ------------------------------------------------------------------------------------------------

@case("pytorch.im2col")
def im2col(gpu, kernel, dtype: str, batch: int = 2, channels: int = 3, height: int = 6, width: int = 7,
           kernel_size=(3, 2), dilation=(1, 2), padding=(1, 1), stride=(2, 1)) -> None:
    """im2col_<T>: grid (L, C, N); uint4 (kernel w, h, dilation w, h), int4 (pad w, h, stride w, h), element
    strides of the input (w, h, c, n), of the output (l, kernel row, n, output width) and long4 input sizes."""
    kh, kw = kernel_size
    dh, dw = dilation
    ph, pw = padding
    sh, sw = stride
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    blocks = out_h * out_w
    x = _values((batch, channels, height, width), dtype, np.random.default_rng(RNG_SEED))
    out = to_device(gpu, np.full(batch * channels * kh * kw * blocks, -1), dtype)
    gpu.run_function((blocks, channels, batch), [
        to_device(gpu, x, dtype), out, [kw, kh, dw, dh], [pw, ph, sw, sh],
        [1, width, height * width, channels * height * width],
        [1, blocks, channels * kh * kw * blocks, out_w], [width, height, channels, batch]])
    expected = np.zeros((batch, channels * kh * kw, blocks))
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    for i in range(kh):
        for j in range(kw):
            for oy in range(out_h):
                for ox in range(out_w):
                    rows = padded[:, :, oy * sh + i * dh, ox * sw + j * dw]
                    expected[:, np.arange(channels) * kh * kw + i * kw + j, oy * out_w + ox] = rows
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


# --- Pooling3D.metal ---------------------------------------------------------------------------------------------

@case("pytorch.avg_pool3d")
def avg_pool3d(gpu, kernel, dtype: str, batch: int = 2, channels: int = 2, size=(5, 6, 7), window=(2, 3, 2),
               step=(2, 2, 1), padding=(1, 1, 0), count_include_pad: bool = False) -> None:
    """avg_pool3d_<T>: packed_int4 (D, H, W, out D), (out H, out W, kernel D, kernel H), (kernel W, stride D, H,
    W), (padding D, H, W, count_include_pad); one thread per output element."""
    depth, height, width = size
    out_size = [(n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, window, step, padding)]
    x = _values((batch, channels, *size), dtype, np.random.default_rng(RNG_SEED))
    count = batch * channels * int(np.prod(out_size))
    out = to_device(gpu, np.zeros(count), dtype)
    gpu.run_function(count, [out, to_device(gpu, x, dtype), batch, channels, [depth, height, width, out_size[0]],
                             [out_size[1], out_size[2], window[0], window[1]], [window[2], *step],
                             [*padding, int(count_include_pad)], 0])
    expected = np.zeros((batch, channels, *out_size))
    for index in np.ndindex(*out_size):
        lo = [o * s - p for o, s, p in zip(index, step, padding)]
        hi = [min(a + k, n) for a, k, n in zip(lo, window, size)]
        lo = [max(a, 0) for a in lo]
        cells = x[:, :, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        divisor = int(np.prod(window)) if count_include_pad else cells[0, 0].size
        expected[(slice(None), slice(None), *index)] = cells.sum(axis=(2, 3, 4)) / divisor
    check(from_device(out, dtype).reshape(expected.shape), round_to(expected, dtype), kernel.family, dtype,
          kernel.name)


# --- Bincount.metal (device atomics) -----------------------------------------------------------------------------

@case("pytorch.bincount")
def bincount(gpu, kernel, dtype: str, index_dtype: str, weighted: bool = False, count: int = 500,
             bins: int = 13) -> None:
    """bincount_unweighted_<I> (atomic_uint counts) or bincount_weighted_float_<I> (atomic_float sums)."""
    rng = np.random.default_rng(RNG_SEED)
    indices = rng.integers(0, bins, size=count)
    if weighted:
        weights = round_to(rng.uniform(0, 2, size=count), "float32")
        out = to_device(gpu, np.zeros(bins), dtype)
        gpu.run_function(count, [to_device(gpu, indices, index_dtype), to_device(gpu, weights, "float32"), out, 1, 1])
        expected = np.bincount(indices, weights=weights, minlength=bins)
    else:
        out = to_device(gpu, np.zeros(bins), dtype)
        gpu.run_function(count, [to_device(gpu, indices, index_dtype), out, 1])
        expected = np.bincount(indices, minlength=bins)
    check(from_device(out, dtype), expected, kernel.family, dtype, kernel.name)


# --- Scatter.metal -----------------------------------------------------------------------------------------------

@case("pytorch.scatter_dense")
def scatter_dense(gpu, kernel, dtype: str, index_dtype: str, reduce: str, outer: int = 3, index_dim: int = 20,
                  output_dim: int = 6, inner: int = 4) -> None:
    """scatter_set_dense_<T>_<I> / scatter_add_dense_<T>_<I> along the middle dimension of contiguous tensors
    (output outer x output_dim x inner, src and index outer x index_dim x inner). The set case gives each output
    element at most one index, so its result does not depend on the order of the writes."""
    rng = np.random.default_rng(RNG_SEED)
    src = _values((outer, index_dim, inner), dtype, rng, -2, 2)
    if reduce == "set":
        index_dim = min(index_dim, output_dim)
        src = src[:, :index_dim]
        index = np.stack([np.stack([rng.permutation(output_dim)[:index_dim] for _ in range(inner)], axis=1)
                          for _ in range(outer)])
    else:
        index = rng.integers(0, output_dim, size=(outer, index_dim, inner))
    start = _values((outer, output_dim, inner), dtype, rng)
    output = to_device(gpu, start, dtype)
    errors = gpu.create_buffer(ERROR_MESSAGES_BYTES, "uchar")
    gpu.run_function(src.size, [output, to_device(gpu, src, dtype), to_device(gpu, index, index_dtype), inner,
                                index_dim, output_dim, 0, errors])
    expected = start.copy()
    o, _, k = np.meshgrid(np.arange(outer), np.arange(index_dim), np.arange(inner), indexing="ij")
    if reduce == "set":
        expected[o, index, k] = src
    else:
        np.add.at(expected, (o, index, k), src)
    family = kernel.family if reduce == "set" else "reduction"  # added in whatever order the atomics ran
    check(from_device(output, dtype).reshape(expected.shape), round_to(expected, dtype), family, dtype, kernel.name)
    assert errors.contents.view(np.uint32)[0] == 0, f"{kernel.name}: the kernel reported an out-of-range index"


# --- Distance.metal ----------------------------------------------------------------------------------------------

_PDIST_MODES = {"zero": 0, "one": 1, "two": 2, "inf": 3, "general": 4}


@case("pytorch.pdist")
def pdist(gpu, kernel, dtype: str, mode: str, p: float = 2.0, n: int = 9, m: int = 6) -> None:
    """pdist_forward_<T>: the condensed distances of the rows of an n x m matrix, one thread per pair."""
    x = _values((n, m), dtype, np.random.default_rng(RNG_SEED), -2, 2)
    i, j = np.triu_indices(n, 1)
    diff = np.abs(x[i] - x[j])
    reference = {"zero": (diff != 0).sum(axis=1), "one": diff.sum(axis=1), "two": np.sqrt((diff ** 2).sum(axis=1)),
                 "inf": diff.max(axis=1), "general": (diff ** p).sum(axis=1) ** (1 / p)}[mode]
    out = to_device(gpu, np.zeros(i.size), dtype)
    gpu.run_function(i.size, [out, to_device(gpu, x, dtype), n, m, p, _PDIST_MODES[mode]])
    check(from_device(out, dtype), round_to(reference, dtype), kernel.family, dtype, kernel.name)


# --- CrossEntropyKernel.metal ------------------------------------------------------------------------------------

@case("pytorch.cross_entropy")
def cross_entropy(gpu, kernel, dtype: str, rows: int = 5, vocab: int = 301, smoothing: float = 0.0,
                  threads: int = 128) -> None:
    """cross_entropy_forward_<T>: one threadgroup per row; the per-row loss and log-sum-exp in float32. Row 1
    has the ignored target (loss and lse 0)."""
    rng = np.random.default_rng(RNG_SEED)
    logits = _values((rows, vocab), dtype, rng, -6, 6)
    target = rng.integers(0, vocab, size=rows)
    target[1] = -100
    params = {"vocab_size": vocab, "batch_size": rows, "ignore_index": -100, "label_smoothing": smoothing}
    loss, lse = to_device(gpu, np.zeros(rows), "float32"), to_device(gpu, np.zeros(rows), "float32")
    gpu.run_function(rows * threads, [to_device(gpu, logits, dtype), to_device(gpu, target, "int64"), loss, lse,
                                      params], threads_per_threadgroup=threads)
    top = logits.max(axis=1, keepdims=True)
    expected_lse = (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))[:, 0]
    picked = logits[np.arange(rows), np.clip(target, 0, None)]
    nll = expected_lse - picked
    expected_loss = (1 - smoothing) * nll + smoothing * (expected_lse - logits.mean(axis=1))
    kept = target != -100
    check(from_device(lse, "float32"), np.where(kept, expected_lse, 0), kernel.family, "float32",
          f"{kernel.name} lse")
    check(from_device(loss, "float32"), np.where(kept, expected_loss, 0), kernel.family, "float32",
          f"{kernel.name} loss")
