"""Kernels over the blocks of Dask arrays: map_blocks and map_overlap, and the binding of a call's arguments to the
kernel's buffer slots that they and reduction() share."""
from __future__ import annotations

import operator
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.array.overlap import coerce_boundary, coerce_depth, overlap, trim_internal
from dask.array.utils import meta_from_array
from dask.base import tokenize

from ..errors import ArgumentError, BackendUnavailableError
from ..library import Function
from .kernel import KernelSpec, Slot, grid_dimensions, read_slots
from .worker import BlockCall, device_for, run_block


def kernel_spec(source: str | os.PathLike, function_name: str, *, include_dirs=(), function_constants=None,
                backend: str | None = None, device: int = 0) -> KernelSpec:
    """The kernel as workers get it. ``source`` is MSL text, or a path (an os.PathLike, or a str ending in
    ".metal"), read here, once: workers need not see the file (its folder must exist on them, at the same path,
    if it includes other files)."""
    if isinstance(include_dirs, (str, os.PathLike)):
        include_dirs = (include_dirs,)
    folders = [str(os.path.abspath(folder)) for folder in include_dirs]
    if isinstance(source, str) and source.endswith(".metal") and "\n" not in source:
        source = Path(source)  # a file name, not MSL text
    if isinstance(source, os.PathLike):
        try:
            text = open(source).read()
        except OSError as error:
            raise ArgumentError(f"cannot read shader {str(source)!r}: {error.strerror}") from None
        filename = str(source)
        folders.insert(0, os.path.dirname(os.path.abspath(source)))
    elif isinstance(source, str):
        text, filename = source, "<string>"
        folders.append(os.getcwd())  # as load_shader_from_str resolves includes
    else:
        raise ArgumentError(f"source must be MSL text (str) or a path, not {type(source).__name__}")
    constants = tuple(sorted((str(key), value) for key, value in (function_constants or {}).items()))
    return KernelSpec(text, function_name, filename, tuple(dict.fromkeys(folders)), constants, backend, device)


def client_function(kernel: KernelSpec) -> Function:
    """The kernel compiled in this process, to read its signature: on the workers' backend where it works here,
    else on this machine's best (bindings do not depend on the target). Errors of the source surface here."""
    try:
        device = device_for(kernel.backend, kernel.device)
    except BackendUnavailableError:
        device = device_for(None, 0)
    with device.lock:
        device.make_current()
        return device.function(kernel)


def describe(function: Function, slots: tuple[Slot, ...]) -> str:
    return ", ".join(f"{slot.param} ({slot.role})" for slot in slots) + f" of kernel '{function.name}'"


def bind(function: Function, args: tuple, constants: Mapping | None, inout, out_dtype
         ) -> tuple[tuple[Slot, ...], list[tuple[str, Any]], list[da.Array], list[np.dtype]]:
    """The slots, what each gets (see BlockCall.arguments), the chunked arrays and the outputs' dtypes.
    ``constants`` fills slots by parameter name or index; ``args`` fill the rest of the inputs and constants in
    slot order; writable pointers are outputs, those named in ``inout`` taking an input too."""
    slots = read_slots(function)
    inout = {inout} if isinstance(inout, str) else set(inout or ())
    names = {slot.param for slot in slots}
    for name in inout:
        if name not in names or next(s for s in slots if s.param == name).role != "output":
            raise ArgumentError(f"inout names '{name}', which is no writable pointer of {describe(function, slots)}")
    given: dict[int, Any] = {}
    for key, value in (constants or {}).items():
        matches = [slot for slot in slots if key in (slot.param, slot.index)]
        if not matches or matches[0].role == "output":
            raise ArgumentError(f"constants names {key!r}, which is no input or constant of "
                                f"{describe(function, slots)}")
        given[matches[0].index] = value
    open_slots = [slot for slot in slots if slot.index not in given
                  and (slot.role != "output" or slot.param in inout)]
    if len(args) != len(open_slots):
        wanted = ", ".join(slot.param for slot in open_slots) or "nothing"
        raise ArgumentError(f"kernel '{function.name}' takes {len(open_slots)} positional arguments ({wanted}), "
                            f"got {len(args)}; its slots: {describe(function, slots)}")
    given.update((slot.index, value) for slot, value in zip(open_slots, args))

    arguments: list[tuple[str, Any]] = []
    arrays: list[da.Array] = []
    dtypes: list[np.dtype] = []
    for slot in slots:
        value = given.get(slot.index)
        if slot.role == "output" and slot.param not in inout:
            arguments.append(("output", None))
            dtypes.append(_output_dtype(function, slot, out_dtype))
        elif isinstance(value, da.Array):
            if slot.role == "constant":
                raise ArgumentError(f"parameter '{slot.param}' of kernel '{function.name}' is one constant value, "
                                    "not a Dask array")
            if slot.dtype is None and slot.metal_type is not None:
                raise ArgumentError(f"parameter '{slot.param}' of kernel '{function.name}' reads vectors "
                                    f"({slot.metal_type}): blocks are bound as arrays of scalars, one thread per "
                                    "element; declare it a pointer to scalars")
            if slot.dtype is not None and value.dtype != slot.dtype:
                raise ArgumentError(f"parameter '{slot.param}' of kernel '{function.name}' reads {slot.dtype}, but "
                                    f"the Dask array given has {value.dtype}: pass .astype({slot.dtype.name!r})")
            arguments.append(("inout" if slot.role == "output" else "chunk", len(arrays)))
            arrays.append(value)
            if slot.role == "output":
                dtypes.append(_output_dtype(function, slot, out_dtype))
        elif slot.role == "output":
            raise ArgumentError(f"parameter '{slot.param}' of kernel '{function.name}' is in inout: pass a Dask "
                                "array for it")
        else:
            arguments.append(("value", value))
    if not arrays:
        raise ArgumentError(f"kernel '{function.name}': no Dask array among the arguments, so no blocks to map")
    shapes = {array.shape for array in arrays}
    if len(shapes) > 1:
        raise ArgumentError(f"kernel '{function.name}': the Dask arrays have different shapes {sorted(shapes)}")
    if not dtypes:
        raise ArgumentError(f"kernel '{function.name}' has no writable device pointer, so no output")
    return slots, arguments, [array.rechunk(arrays[0].chunks) for array in arrays], dtypes


def _output_dtype(function: Function, slot: Slot, out_dtype) -> np.dtype:
    """An output's dtype: its pointer's element type; ``out_dtype`` (one dtype, or a dict by parameter name) gives
    it where that type is not a number (atomic_int, a struct), and must agree with it elsewhere."""
    declared = out_dtype.get(slot.param) if isinstance(out_dtype, Mapping) else out_dtype
    if slot.dtype is None and slot.metal_type is not None:
        raise ArgumentError(f"output '{slot.param}' of kernel '{function.name}' is a vector ({slot.metal_type}); "
                            "declare it a pointer to scalars and write its lanes one by one")
    if declared is None:
        if slot.dtype is None:
            raise ArgumentError(f"output '{slot.param}' of kernel '{function.name}' holds no number type numpy "
                                "knows (an atomic or a struct): give out_dtype")
        return slot.dtype
    declared = np.dtype(declared)
    if slot.dtype is not None and declared != slot.dtype:
        raise ArgumentError(f"out_dtype {declared} for output '{slot.param}' of kernel '{function.name}', which "
                            f"writes {slot.dtype}")
    if declared.itemsize != slot.elem_size:
        raise ArgumentError(f"out_dtype {declared} ({declared.itemsize} bytes) for output '{slot.param}' of kernel "
                            f"'{function.name}', whose elements are {slot.elem_size} bytes")
    return declared


def shared_key(kernel: KernelSpec):
    """The kernel as one key of the graph, named by its hash: every task depends on it, so the source is sent to a
    worker once, however many blocks it runs."""
    return dask.delayed(kernel, pure=True, traverse=False, name=f"metalgpu-kernel-{kernel.digest}")


def unique_name(prefix: str, *parts: Any) -> str:
    """A key name that starts with ``prefix`` (what the dashboard shows) and is unique to ``parts``."""
    return f"{prefix}-{tokenize(*parts)}"


def blockwise(kernel: KernelSpec, call: BlockCall, arrays: list[da.Array], dtypes: list[np.dtype],
              prefix: str) -> da.Array | tuple[da.Array, ...]:
    """One task per block; several outputs come from one task each, picked from its tuple."""
    first = arrays[0]
    name = unique_name(prefix, kernel.digest, call, *arrays)
    if len(dtypes) == 1:
        return da.map_blocks(run_block, shared_key(kernel), call, *arrays, dtype=dtypes[0], name=name,
                             meta=meta_from_array(first._meta, first.ndim, dtype=dtypes[0]))
    blocks = da.map_blocks(run_block, shared_key(kernel), call, *arrays, dtype=object, name=name,
                           meta=np.empty((0,) * first.ndim, dtype=object))
    return tuple(da.map_blocks(operator.getitem, blocks, i, dtype=dtype, name=f"{name}-out{i}",
                               meta=meta_from_array(first._meta, first.ndim, dtype=dtype))
                 for i, dtype in enumerate(dtypes))


def prepare(source, function_name, args, *, constants, out_dtype, inout, grid, threads_per_threadgroup,
            include_dirs, function_constants, backend, device):
    kernel = kernel_spec(source, function_name, include_dirs=include_dirs, function_constants=function_constants,
                         backend=backend, device=device)
    function = client_function(kernel)
    slots, arguments, arrays, dtypes = bind(function, args, constants, inout, out_dtype)
    call = BlockCall(slots, tuple(arguments), tuple(dtypes), grid, threads_per_threadgroup, grid_dimensions(function))
    return kernel, function, call, arrays, dtypes


def map_blocks(source: str | os.PathLike, function_name: str, *args: Any, constants: Mapping | None = None,
               out_dtype: Any = None, inout=(), grid: Any = None, threads_per_threadgroup: Any = None,
               include_dirs=(), function_constants: Mapping | None = None, backend: str | None = None,
               device: int = 0) -> da.Array | tuple[da.Array, ...]:
    """Run kernel ``function_name`` of ``source`` over every block of Dask arrays, lazily: a new Dask graph.

    The kernel's signature decides the roles of its ``[[buffer(i)]]`` slots: a writable ``device T*`` is an
    output (a new array shaped like the blocks, zeroed before the kernel runs), a ``const`` pointer an input, a
    ``constant T&`` a constant. The kernel is compiled once here, to read that signature (so a compile error
    surfaces now), and once in each worker process.

    Args:
        source: MSL text, or a ``.metal`` file (a path, or a str ending in ``.metal``), read once, here.
        function_name: the kernel to run.
        *args: the inputs and constants, in slot order (outputs are skipped): a Dask array is split into blocks
            (all of one shape, rechunked to the first one's blocks); anything else (a number, a numpy array for a
            ``constant T*`` table) goes whole to every block.
        constants: binds slots by parameter name or index instead; a callable value is called with each
            block's shape (``{"width": lambda shape: shape[1]}``).
        out_dtype: the dtype of an output whose type numpy does not know (``device atomic_int*``, a struct):
            one dtype, or a dict by parameter name.
        inout: names of writable pointers that take an input too (the output starts as a copy of it).
        grid: by default one thread per element of the block, shaped as the kernel reads its
            ``[[thread_position_in_grid]]`` (``uint``: the element count; ``uint2``: ``(width, height)`` of a
            2-D block, x along the last axis); an int, a tuple, or a callable of the block's shape otherwise.
        threads_per_threadgroup: as in ``run_function`` (an int, a tuple or a callable of the block's shape).
        include_dirs: folders for ``#include "..."``; they must exist at the same paths on the workers.
        function_constants: ``[[function_constant]]`` values, as ``set_function(name, constants=)`` takes them.
        backend: the workers' backend, or None for each worker's best.
        device: the device index on each worker (0 under dask-cuda, which gives each worker its own GPU).

    Returns:
        One Dask array per output, a tuple for several (compute them together: one task writes them all).

    Raises:
        ShaderCompileError: the source does not compile (raised here, when the graph is built).
        FunctionNotFoundError: no kernel of that name.
        ArgumentError: the arguments do not fit the slots (their number, a Dask array for a constant, a dtype
            that is not the parameter's, a vector pointer for a block), named by parameter.

    Example:
        >>> import dask.array as da
        >>> import numpy as np
        >>> import metalgpu.dask as mgd
        >>> source = '''
        ... #include <metal_stdlib>
        ... using namespace metal;
        ... kernel void saxpy(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
        ...                   constant float& a [[buffer(2)]], uint i [[thread_position_in_grid]]) {
        ...     out[i] = a * x[i] + 1.0f;
        ... }'''
        >>> x = da.arange(10, dtype=np.float32, chunks=4)
        >>> out = mgd.map_blocks(source, "saxpy", x, 2.0)
        >>> out.compute()
        array([ 1.,  3.,  5.,  7.,  9., 11., 13., 15., 17., 19.], dtype=float32)
    """
    kernel, function, call, arrays, dtypes = prepare(
        source, function_name, args, constants=constants, out_dtype=out_dtype, inout=inout, grid=grid,
        threads_per_threadgroup=threads_per_threadgroup, include_dirs=include_dirs,
        function_constants=function_constants, backend=backend, device=device)
    return blockwise(kernel, call, arrays, dtypes, f"metalgpu-{function.name}")


def map_overlap(source: str | os.PathLike, function_name: str, *args: Any, depth: Any,
                boundary: Any = "none", constants: Mapping | None = None, out_dtype: Any = None, inout=(),
                grid: Any = None, threads_per_threadgroup: Any = None, include_dirs=(),
                function_constants: Mapping | None = None, backend: str | None = None,
                device: int = 0) -> da.Array | tuple[da.Array, ...]:
    """:func:`map_blocks` for stencils: each block reaches the kernel with ``depth`` elements of its neighbours on
    every side, and the halo is trimmed from the outputs.

    Shapes that callables of ``grid`` and ``constants`` receive include the halo. With boundary ``"none"`` the
    outer blocks have no halo beyond the array's edge, so a kernel that clamps its reads to the block it is given
    computes over blocks what it computes over the whole array.

    The arguments are those of :func:`map_blocks`, and:

    Args:
        depth: the halo's width, an int or a dict by axis (Dask's ``overlap``).
        boundary: what lies beyond the array's edges: ``"none"`` (no halo there), ``"reflect"``, ``"periodic"``,
            ``"nearest"`` or a constant, as in ``dask.array.map_overlap``.

    Returns:
        One Dask array per output, a tuple for several.

    Raises:
        ShaderCompileError, FunctionNotFoundError, ArgumentError: as :func:`map_blocks` does.

    Example:
        >>> import dask.array as da
        >>> import numpy as np
        >>> import metalgpu.dask as mgd
        >>> source = '''
        ... #include <metal_stdlib>
        ... using namespace metal;
        ... kernel void smooth(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
        ...                    uint i [[thread_position_in_grid]], uint n [[threads_per_grid]]) {
        ...     out[i] = (x[i > 0 ? i - 1 : i] + x[i] + x[i + 1 < n ? i + 1 : i]) / 3.0f;
        ... }'''
        >>> x = da.from_array(np.array([0, 0, 3, 0, 0, 6, 0, 0], dtype=np.float32), chunks=4)
        >>> mgd.map_overlap(source, "smooth", x, depth=1).compute()
        array([0., 1., 1., 1., 2., 2., 2., 0.], dtype=float32)
    """
    kernel, function, call, arrays, dtypes = prepare(
        source, function_name, args, constants=constants, out_dtype=out_dtype, inout=inout, grid=grid,
        threads_per_threadgroup=threads_per_threadgroup, include_dirs=include_dirs,
        function_constants=function_constants, backend=backend, device=device)
    ndim = arrays[0].ndim
    depths, boundaries = coerce_depth(ndim, depth), coerce_boundary(ndim, boundary)
    haloed = [overlap(array, depth=depths, boundary=boundaries) for array in arrays]
    outputs = blockwise(kernel, call, haloed, dtypes, f"metalgpu-{function.name}")
    if isinstance(outputs, tuple):
        return tuple(trim_internal(output, depths, boundaries) for output in outputs)
    return trim_internal(outputs, depths, boundaries)
