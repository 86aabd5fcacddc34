"""metalgpu.dask: MSL kernels over Dask arrays, block by block (the extra ``metalgpu[dask]``).

- ``map_blocks(source, name, *args, ...)``: the kernel over every block; its writable pointers are the outputs.
- ``map_overlap(..., depth=, boundary=)``: the same with halos from the neighbouring blocks, for stencils.
- ``reduction(source, name, array, ...)``: the kernel reduces each block; Dask's tree combines the partials.

Any Dask scheduler runs them: the threaded one, ``distributed`` (LocalCluster or a real cluster), ``dask_cuda``'s
LocalCUDACluster (one worker per GPU). Each worker process keeps one Interface per device and compiles a kernel once
(``metalgpu.dask.worker``). See docs/dask.md.

Example:
    >>> import dask.array as da
    >>> import numpy as np
    >>> import metalgpu.dask as mgd
    >>> x = da.ones(6, dtype=np.float32, chunks=3)
    >>> source = ("kernel void twice(device const float* x [[buffer(0)]], device float* y [[buffer(1)]], "
    ...           "uint i [[thread_position_in_grid]]) { y[i] = 2.0f * x[i]; }")
    >>> mgd.map_blocks(source, "twice", x).compute()
    array([2., 2., 2., 2., 2., 2.], dtype=float32)
"""
try:
    import dask.array  # noqa: F401
except ImportError as error:  # pragma: no cover - the message is the point
    raise ImportError("metalgpu.dask needs Dask: pip install 'metalgpu[dask]'") from error

from .blocks import map_blocks, map_overlap
from .kernel import KernelSpec
from .reduce import reduction

__all__ = ["map_blocks", "map_overlap", "reduction", "KernelSpec"]
