"""What the client knows of a kernel before any task runs: its source (once, by content hash) and its signature,
read into slots: which buffers are chunked inputs, which are outputs, which take constant values.

The client compiles the kernel once to read its bindings (the compiled module describes every parameter's type), so
a compile error or an unknown kernel name surfaces when the graph is built, and workers on the same machine find
the binary in the shared on-disk cache.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ArgumentError
from ..types import resolve_type

# (scalar_kind, scalar_size) of a binding -> the Metal scalar it holds
_SCALARS = {("signed", 1): "char", ("signed", 2): "short", ("signed", 4): "int", ("signed", 8): "long",
            ("unsigned", 1): "uchar", ("unsigned", 2): "ushort", ("unsigned", 4): "uint", ("unsigned", 8): "ulong",
            ("float", 2): "half", ("float", 4): "float", ("bool", 1): "bool", ("bfloat", 2): "bfloat"}
# thread_position_in_grid's declared type -> how many grid dimensions the kernel reads
_GRID_DIMENSIONS = {"uint": 1, "ushort": 1, "uint2": 2, "ushort2": 2, "uint3": 3, "ushort3": 3}


@dataclass(frozen=True)
class KernelSpec:
    """One kernel as workers need it: its source and name, include folders, function constants and backend.

    ``map_blocks``, ``map_overlap`` and ``reduction`` make it; it enters a graph once, as one key that every task
    depends on, so the source travels once to each worker, and workers compile it once per process, found again by
    ``digest`` (a hash of every field).
    """

    source: str
    name: str
    filename: str = "<string>"
    include_dirs: tuple[str, ...] = ()
    function_constants: tuple[tuple[str, Any], ...] = ()
    backend: str | None = None  # None: cuda where a GPU is visible, else cpu (Interface's own choice)
    device: int = 0
    digest: str = field(init=False)

    def __post_init__(self):
        text = "\0".join((self.source, self.name, self.filename, *self.include_dirs, repr(self.function_constants),
                          str(self.backend), str(self.device)))
        object.__setattr__(self, "digest", hashlib.sha256(text.encode()).hexdigest()[:32])

    @property
    def constants_dict(self) -> dict[str, Any] | None:
        return dict(self.function_constants) or None


@dataclass(frozen=True)
class Slot:
    """One [[buffer(i)]] parameter of the kernel and its role in a chunked call."""

    index: int
    param: str
    role: str                 # "input" (const pointer), "output" (writable pointer), "constant" (constant T&)
    dtype: np.dtype | None    # the element's numpy dtype, None where the type is not a number (struct, atomic)
    metal_type: str | None    # the element's Metal name, for the Buffer that wraps a chunk
    elem_size: int            # bytes of one element, as the compiler lays it out


def dtype_of(binding) -> tuple[np.dtype | None, str | None]:
    """The numpy dtype and Metal name of a binding's element, or (None, None) for structs and atomics."""
    scalar = _SCALARS.get((binding.scalar_kind, binding.scalar_size))
    if scalar is None:
        return None, None
    name = scalar if binding.lanes == 1 else f"{scalar}{binding.lanes}"
    mtype = resolve_type(name)
    if mtype.itemsize != binding.elem_size:  # packed vectors: the binding's size decides
        mtype = resolve_type(f"packed_{name}")
    return (mtype.scalar_dtype if binding.lanes == 1 else None), mtype.name


def read_slots(function) -> tuple[Slot, ...]:
    """The buffer slots of a compiled kernel (library.Function), by index, with their roles."""
    slots = []
    for binding in sorted(function.bindings, key=lambda b: b.index):
        if binding.kind != "buffer" or binding.index in function.absent_slots:
            continue
        param = function.decl.params[binding.param].name
        if not binding.is_const and binding.is_reference:
            raise ArgumentError(f"{function.describe_param(binding)}: a writable reference has no chunk to "
                                "hold it; declare it a pointer (device T*)")
        role = "output" if not binding.is_const else "constant" if binding.is_reference else "input"
        dtype, metal_type = dtype_of(binding)
        slots.append(Slot(binding.index, param, role, dtype, metal_type, binding.elem_size))
    return tuple(slots)


def grid_dimensions(function) -> int:
    """How many dimensions of the grid the kernel reads through [[thread_position_in_grid]] (1 where it reads none:
    the default grid is then the chunk's element count)."""
    for param in function.decl.params:
        if param.builtin == "thread_position_in_grid":
            return _GRID_DIMENSIONS.get(param.type_text.replace("metal::", "").strip(), 1)
    return 1


def default_grid(shape: tuple[int, ...], dimensions: int) -> tuple[int, ...]:
    """The grid over a block of ``shape``: one thread per element, x along the last (contiguous) axis, as Metal
    images are laid out. Axes beyond the kernel's grid dimensions fold into its last one."""
    if not shape:
        return (1,)
    if dimensions == 1 or len(shape) == 1:
        return (int(np.prod(shape)),)
    reversed_shape = [int(n) for n in reversed(shape)]
    kept, folded = reversed_shape[:dimensions - 1], reversed_shape[dimensions - 1:]
    return (*kept, int(np.prod(folded)))
