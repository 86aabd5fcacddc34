"""Runtime cases of PyTorch's MPS single-block sort (Sort.metal: bitonic SIMD-group stages then merge-path merges in
threadgroup memory) and its row softmax kernels (Softmax.metal), arguments as PyTorch's host code passes them; each
against a numpy reference of our own."""
from __future__ import annotations

import numpy as np

from .cases import case
from .harness import check, from_device, round_to, to_device

RNG_SEED = 31


@case("pytorch.sort_block")
def sort_block(gpu, kernel, dtype: str, threads: int, rows: int = 3, size: int = 0, descending: bool = False,
               stable: bool = False, ties: bool = False) -> None:
    """sort_block_<T>_tptg<N>[_stable]: one threadgroup of N threads sorts one row of up to 4 N elements (padded
    with the value that sorts last), writing the sorted values and their original indices. With ties, only the
    stable kernels promise the order of equal values (the lower index first, in either direction)."""
    size = size or 4 * threads - 5  # a partial last group of four
    rng = np.random.default_rng(RNG_SEED)
    if ties:
        x = rng.integers(-6, 7, size=(rows, size)).astype(np.float64)
    else:  # distinct values, exact in every type: the indices are unique too
        x = np.stack([rng.permutation(size) - size // 2 for _ in range(rows)]).astype(np.float64)
    values = to_device(gpu, x, dtype)
    out = to_device(gpu, np.zeros(x.size), dtype)
    indices = gpu.create_buffer(x.size, "long")
    gpu.run_function((threads, rows), [values, out, indices, np.int32(size), np.array([1, size], np.int64),
                                       np.bool_(descending)], threads_per_threadgroup=(threads, 1))
    order = np.stack([np.argsort(-row if descending else row, kind="stable") for row in x])
    got_values = from_device(out, dtype).reshape(x.shape)
    got_indices = indices.contents.reshape(x.shape)
    check(got_values, np.take_along_axis(x, order, axis=1), kernel.family, dtype, kernel.name)
    if stable or not ties:
        np.testing.assert_array_equal(got_indices, order, err_msg=f"{kernel.name}: indices")
    else:  # each index names a value equal to the one written, and each is used once
        np.testing.assert_array_equal(np.take_along_axis(x, got_indices, axis=1), got_values)
        np.testing.assert_array_equal(np.sort(got_indices, axis=1), np.broadcast_to(np.arange(size), x.shape))


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


@case("pytorch.softmax_row")
def softmax_row(gpu, kernel, dtype: str, mode: str, threads: int = 64, rows: int = 5, axis: int = 0,
                reads: int = 4) -> None:
    """softmax_single_pass_<T>_<R> (exactly threads x R elements a row), softmax_looped_<T> (a multiple of 4
    threads) and softmax_general_<T> (any length): one threadgroup a contiguous row, (input, output, dim_size)."""
    axis = axis or {"single_pass": threads * reads, "looped": 3 * 4 * threads, "general": 333}[mode]
    x = round_to(np.random.default_rng(RNG_SEED).uniform(-6, 6, size=(rows, axis)), dtype)
    out = to_device(gpu, np.zeros(x.size), dtype)
    gpu.run_function(rows * threads, [to_device(gpu, x, dtype), out, np.uint32(axis)],
                     threads_per_threadgroup=threads)
    check(from_device(out, dtype).reshape(x.shape), round_to(_softmax(x), dtype), kernel.family, dtype,
          kernel.name)


@case("pytorch.softmax_strided_outer")
def softmax_strided_outer(gpu, kernel, dtype: str, outer: int = 3, axis: int = 17, inner: int = 5) -> None:
    """softmax_strided_outer_<T>: one thread a row, here dim 1 of an [outer, axis, inner] tensor; the rows are
    indexed over the other dims through their sizes and both tensors' strides."""
    x = round_to(np.random.default_rng(RNG_SEED).uniform(-6, 6, size=(outer, axis, inner)), dtype)
    out = to_device(gpu, np.zeros(x.size), dtype)
    params = np.array([axis, inner, inner, outer * inner], np.uint32)  # dim size, both dim strides, rows
    sizes_other = np.array([outer, inner], np.uint32)
    strides_other = np.array([axis * inner, 1], np.uint32)
    gpu.run_function(outer * inner, [to_device(gpu, x, dtype), out, params, np.uint32(2), sizes_other,
                                     strides_other, strides_other.copy()])
    check(from_device(out, dtype).reshape(x.shape), round_to(_softmax(x, axis=1), dtype), kernel.family, dtype,
          kernel.name)
