"""Whole-array reductions through Dask's reduction tree, with a kernel as the step that reduces each block.

The kernel reduces a block's elements (raveled) to ``partials`` elements of its one output (one by default: a
kernel that adds into out[0] atomically, say; or one per threadgroup). Dask then combines the partials of a few
blocks at a time (``split_every``) up to one value: with a numpy function (``combine=np.sum``, ``np.max``, ...)
or, with ``combine="kernel"``, with the kernel itself run over the partials until one element is left.
"""
from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from typing import Any, Callable

import dask.array as da
import numpy as np
from dask.array.utils import meta_from_array

from ..errors import ArgumentError
from .blocks import prepare, shared_key, unique_name
from .kernel import KernelSpec
from .worker import BlockCall, run_block, run_flat


def _flatten(nested: Any) -> list:
    """The blocks of a nested list (Dask hands a reduction step its blocks as lists, one level per axis)."""
    if isinstance(nested, list):
        return [block for item in nested for block in _flatten(item)]
    return [nested]


def _partials_of(nested: Any) -> Any:
    blocks = [block.reshape(-1) for block in _flatten(nested)]
    if len(blocks) == 1:
        return blocks[0]
    on_gpu = type(blocks[0]).__module__.startswith("cupy")
    return (sys.modules["cupy"].concatenate if on_gpu else np.concatenate)(blocks)


def _identity_step(block, axis=None, keepdims=None):
    return block


def _numpy_step(combine: Callable, final: bool, nested, axis=None, keepdims=None):
    value = combine(_partials_of(nested))
    return value.reshape(()) if final else value.reshape(1)


def _kernel_step(kernel: KernelSpec, call: BlockCall, final: bool, nested, axis=None, keepdims=None):
    partials = _partials_of(nested)
    step = 0
    while True:
        step += 1
        reduced = run_flat(kernel, call, partials, "a combine step of the reduction")
        if reduced.size >= partials.size and partials.size > 1:
            raise ArgumentError(f"kernel '{kernel.name}' left {reduced.size} partials of {partials.size} elements: "
                                "as its own combine step it must return fewer than it is given")
        partials = reduced
        if not final or partials.size == 1:
            break
    return partials.reshape(()) if final else partials


def _block_partials(kernel: KernelSpec, call: BlockCall, block, block_id=None):
    """The kernel over one block, raveled: its partials, as a block of the partials array."""
    partials = run_block(kernel, call, block.reshape(-1), block_id=block_id)
    return partials.reshape((1,) * (block.ndim - 1) + (-1,))


def reduction(source: str | os.PathLike, function_name: str, array: da.Array, *args: Any,
              combine: Callable | str = np.sum, partials: Any = 1, split_every: Any = None,
              constants: Mapping | None = None, out_dtype: Any = None, grid: Any = None,
              threads_per_threadgroup: Any = None, include_dirs=(), function_constants: Mapping | None = None,
              backend: str | None = None, device: int = 0) -> da.Array:
    """Reduce every element of ``array`` to one value (a 0-d Dask array), through Dask's reduction tree with the
    kernel as the step that reduces each block.

    Args:
        source, function_name: the kernel, as in :func:`map_blocks`. It has one chunked input (its first input
            slot, bound to each block raveled) and one output of ``partials`` elements, zeroed before it runs:
            one for a kernel that adds into ``out[0]`` atomically, one per threadgroup or per thread for others.
        array: the Dask array to reduce.
        *args: the kernel's other inputs and constants, as in :func:`map_blocks` (callables get ``(n,)``, the
            raveled block's shape).
        combine: how partials add up: a numpy function of a 1-D array (``np.sum``, ``np.max``), or
            ``"kernel"`` for the kernel itself, run over the concatenated partials until one element is left (its
            input and output must then have one type).
        partials: the output's length, an int or a callable of the block's element count ``n``.
        split_every: how many blocks' partials Dask combines at a time.
        constants, out_dtype, grid, threads_per_threadgroup, include_dirs, function_constants, backend, device:
            as in :func:`map_blocks`; ``grid`` defaults to one thread per element of the block.

    Returns:
        A 0-d Dask array.

    Raises:
        ArgumentError: ``array`` is not a Dask array, the kernel has not exactly one chunked input and one
            output, ``combine="kernel"`` with an output type other than the input's, or ``combine`` is neither.
        ShaderCompileError, FunctionNotFoundError: as :func:`map_blocks` raises them.

    Example:
        >>> import dask.array as da
        >>> import numpy as np
        >>> import metalgpu.dask as mgd
        >>> source = '''
        ... #include <metal_stdlib>
        ... using namespace metal;
        ... kernel void block_max(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
        ...                       uint n [[threads_per_grid]], uint i [[thread_position_in_grid]]) {
        ...     if (i != 0) return;
        ...     float best = x[0];
        ...     for (uint k = 1; k < n; ++k) best = max(best, x[k]);
        ...     out[0] = best;
        ... }'''
        >>> x = da.from_array(np.array([3, 9, 2, 7, 5, 1], dtype=np.float32), chunks=2)
        >>> float(mgd.reduction(source, "block_max", x, combine=np.max).compute())
        9.0
    """
    if not isinstance(array, da.Array):
        raise ArgumentError(f"reduction takes a Dask array, not {type(array).__name__}")
    kernel, function, call, arrays, dtypes = prepare(
        source, function_name, (array.reshape(-1) if array.ndim == 0 else array, *args), constants=constants,
        out_dtype=out_dtype, inout=(), grid=grid, threads_per_threadgroup=threads_per_threadgroup,
        include_dirs=include_dirs, function_constants=function_constants, backend=backend, device=device)
    if len(dtypes) != 1 or len(arrays) != 1:
        raise ArgumentError(f"a reduction's kernel has one chunked input and one output; kernel '{function.name}' "
                            f"has {len(arrays)} Dask array arguments and {len(dtypes)} outputs")
    call = BlockCall(call.slots, call.arguments, call.output_dtypes, grid, threads_per_threadgroup, 1, partials)
    source_array, partial_dtype = arrays[0], dtypes[0]
    one_per_block = tuple((1,) * len(sizes) for sizes in source_array.chunks)
    blocks = da.map_blocks(_block_partials, shared_key(kernel), call, source_array, dtype=partial_dtype,
                           chunks=one_per_block, meta=meta_from_array(source_array._meta, source_array.ndim,
                                                                      dtype=partial_dtype),
                           name=unique_name(f"metalgpu-{function.name}-partials", kernel.digest, call, source_array))
    if combine == "kernel":
        if source_array.dtype != partial_dtype:
            raise ArgumentError(f"combine='kernel': kernel '{function.name}' reads {source_array.dtype} but writes "
                                f"{partial_dtype}, so it cannot reduce its own partials; pass a numpy function")
        step = functools.partial(_kernel_step, kernel, call)
        result_dtype = partial_dtype
    elif callable(combine):
        step = functools.partial(_numpy_step, combine)
        # what the combine makes of partials: np.sum of int32 is int64, say (on the blocks' kind: cupy.sum takes
        # only CuPy arrays)
        result_dtype = combine(np.zeros_like(source_array._meta, shape=(2,), dtype=partial_dtype)).dtype
    else:
        raise ArgumentError(f"combine must be a numpy function or 'kernel', not {combine!r}")
    return da.reduction(blocks, _identity_step, functools.partial(step, True), combine=functools.partial(step, False),
                        axis=None, keepdims=False, dtype=result_dtype, split_every=split_every, concatenate=False,
                        meta=meta_from_array(source_array._meta, 0, dtype=result_dtype),
                        name=f"metalgpu-{function.name}-reduce")
