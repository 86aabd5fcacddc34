"""Runtime cases of candle's mlx_sort.metal (MLX's merge sort): one-block argsort and sort of each row, and the
multi-block argsort (block sort, then rounds of partition and merge), with the arguments, tile sizes and
dispatches of candle's call_mlx_arg_sort (kernels/sort.rs)."""
from __future__ import annotations

import numpy as np

from .candle_support import FLOATS, RNG_SEED
from .cases import case
from .harness import check, from_device, round_to, to_device

N_PER_THREAD = 8


def _distinct_rows(rows: int, cols: int, dtype: str, rng) -> np.ndarray:
    """Rows of distinct values (ties would leave the order of equal keys to the algorithm)."""
    if dtype == "uint8":
        return np.stack([rng.permutation(256)[:cols] for _ in range(rows)]).astype(np.float64)
    x = np.stack([rng.permutation(cols) for _ in range(rows)]).astype(np.float64)
    return x * 0.25 - cols / 8 if dtype in FLOATS else x


def _block_threads(cols: int, item_size: int) -> int:
    """candle's threads per block for a row of ``cols``: 512, 256 or 128 by the threads that 8 keys each need."""
    needed = -(-cols // N_PER_THREAD)
    if needed >= 257 and item_size <= 4:
        return 512
    return 256 if needed >= 129 else 128


@case("candle.mlx_block_sort")
def mlx_block_sort(gpu, kernel, dtype: str, rows: int, cols: int, argsort: bool = True) -> None:
    """c{arg_block_sort,_block_sort}_<t>_<u>_bn<B>_tn8: each row sorted ascending by one threadgroup of B threads
    (arguments: in, out, size, in/out strides of the sorted axis, in/out strides between rows)."""
    item_size = {"float32": 4, "float16": 2, "bfloat16": 2, "uint8": 1, "uint32": 4, "int64": 8}[dtype]
    threads = _block_threads(cols, item_size)
    assert f"_bn{threads}_tn8" in kernel.name, f"candle sorts rows of {cols} with bn{threads}, not {kernel.name}"
    rng = np.random.default_rng(RNG_SEED)
    x = _distinct_rows(rows, cols, dtype, rng)
    out_dtype = "uint32" if argsort else dtype
    out = to_device(gpu, np.zeros(x.size), out_dtype)
    gpu.run_function((threads, rows), [to_device(gpu, x, dtype), out, cols, 1, 1, cols, cols],
                     threads_per_threadgroup=(threads, 1))
    expected = np.argsort(x, axis=1, kind="stable") if argsort else np.sort(x, axis=1)
    check(from_device(out, out_dtype).reshape(x.shape), expected.astype(np.float64), kernel.family, out_dtype,
          kernel.name)


@case("candle.mlx_multi_block_argsort")
def mlx_multi_block_argsort(gpu, kernel, dtype: str, rows: int, cols: int) -> None:
    """sort_mbsort_<t>_uint32_bn<B>_tn8 sorts blocks of B * 8 keys of each row into two ping-pong buffers; then,
    with merge_tiles = 2, 4, ... while merge_tiles / 2 < blocks, partition_mbsort finds the split points and
    merge_mbsort merges pairs of sorted runs. The indices of the last merge are the row's argsort."""
    name = kernel.name.removeprefix("sort_mbsort_")
    threads = _block_threads(cols, 4)
    per_block = threads * N_PER_THREAD
    blocks = -(-cols // per_block)
    assert blocks > 1 and name.endswith(f"_bn{threads}_tn8"), f"{kernel.name} for {cols} keys"
    rng = np.random.default_rng(RNG_SEED)
    x = _distinct_rows(rows, cols, dtype, rng)
    vals = [to_device(gpu, np.zeros(x.size), dtype) for _ in range(2)]
    idxs = [to_device(gpu, np.zeros(x.size), "uint32") for _ in range(2)]
    partitions = to_device(gpu, np.zeros(rows * (blocks + 1)), "uint32")
    gpu.run_function((blocks * threads, rows), [to_device(gpu, x, dtype), vals[0], idxs[0], cols, 1, 1,
                                                 np.array([rows], np.int32), np.array([cols], np.int64)],
                     threads_per_threadgroup=(threads, 1))
    ping, merge_tiles = 0, 2
    partition_threads = min(blocks + 1, 1024)
    while merge_tiles // 2 < blocks:
        source, target = ping, 1 - ping
        gpu.run_function((partition_threads, rows), [partitions, vals[source], idxs[source], cols, merge_tiles,
                                                     blocks], f"partition_mbsort_{name}",
                         threads_per_threadgroup=(partition_threads, 1))
        gpu.run_function((blocks * threads, rows), [partitions, vals[source], idxs[source], vals[target],
                                                    idxs[target], cols, merge_tiles, blocks], f"merge_mbsort_{name}",
                         threads_per_threadgroup=(threads, 1))
        ping, merge_tiles = target, merge_tiles * 2
    expected = np.argsort(x, axis=1, kind="stable")
    check(from_device(idxs[ping], "uint32").reshape(x.shape), expected.astype(np.float64), kernel.family, "uint32",
          kernel.name)
    check(from_device(vals[ping], dtype).reshape(x.shape), round_to(np.sort(x, axis=1), dtype), kernel.family,
          dtype, f"{kernel.name} (sorted values)")

