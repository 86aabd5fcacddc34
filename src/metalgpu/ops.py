"""Elementwise operations on buffers, run on the buffer's own device (the original's later API):
``metalgpu.sqrt(buffer)``, ``buffer + other``, ``buffer.astype("half")``. Each operation is a small generated
MSL kernel, compiled once per interface and element type; the user's loaded shader is left untouched."""
from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from .dispatch import ArrayAllocation
from .errors import ArgumentError
from .library import Library
from .types import metal_type_of_array, resolve_type

if TYPE_CHECKING:
    from .buffer import Buffer
    from .interface import Interface

UNARY_FUNCTIONS = ("sqrt", "rsqrt", "cos", "sin", "tan", "acos", "asin", "atan", "cosh", "sinh", "tanh",
                   "exp", "exp2", "log", "log2", "log10", "abs", "floor", "ceil", "round", "trunc")
_OPERATORS = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
_FLOAT_SCALARS = ("float", "half", "bfloat")
_PRELUDE = "#include <metal_stdlib>\nusing namespace metal;\n"


class Elementwise:
    """The generated kernels of one Interface, compiled on first use."""

    def __init__(self, interface: "Interface"):
        self._interface = interface
        self._libraries: dict[str, Library] = {}

    def _run(self, source: str, inputs: list[Any], out_type: str, count: int) -> "Buffer":
        interface = self._interface
        library = self._libraries.get(source)
        if library is None:
            library = Library(interface._backend, interface._cache, interface._options, source, "<metalgpu-op>")
            self._libraries[source] = library
        out = interface.create_buffer(count, out_type)
        interface._dispatch(library.function(library.function_names[0]), count, [*inputs, out])
        return out

    def unary(self, name: str, buffer: "Buffer") -> "Buffer":
        mtype = _checked(buffer).metal_type
        if mtype.scalar not in _FLOAT_SCALARS and name != "abs":
            raise ArgumentError(f"{name}() needs a float, half or bfloat buffer, not {mtype.name}")
        source = (_PRELUDE + f"kernel void op_{name}(device const {mtype.name}* a [[buffer(0)]], "
                  f"device {mtype.name}* out [[buffer(1)]], uint i [[thread_position_in_grid]]) "
                  f"{{ out[i] = {name}(a[i]); }}\n")
        return self._run(source, [buffer], mtype.name, buffer.count)

    def binary(self, operator: str, left: "Buffer", right: Any) -> "Buffer":
        from .buffer import Buffer

        mtype = _checked(left).metal_type
        if isinstance(right, Buffer):
            other = _checked(right).metal_type
            if other.name != mtype.name or right.count != left.count:
                raise ArgumentError(f"'{operator}' needs buffers of the same type and length: {left.count} x "
                                    f"{mtype.name} and {right.count} x {other.name}")
            operand = f"device const {mtype.name}* b [[buffer(1)]]"
            value = "b[i]"
        elif isinstance(right, (numbers.Number, np.generic)):
            operand = f"constant {mtype.scalar}& b [[buffer(1)]]"
            value = "b"
        else:
            return NotImplemented
        source = (_PRELUDE + f"kernel void op_{_OPERATORS[operator]}(device const {mtype.name}* a [[buffer(0)]], "
                  f"{operand}, device {mtype.name}* out [[buffer(2)]], uint i [[thread_position_in_grid]]) "
                  f"{{ out[i] = a[i] {operator} {value}; }}\n")
        return self._run(source, [left, right], mtype.name, left.count)

    def cast(self, buffer: "Buffer", target: Any) -> "Buffer":
        source_type = _checked(buffer).metal_type
        target_type = resolve_type(target)
        if target_type.lanes != source_type.lanes or "struct" in (source_type.name, target_type.name):
            raise ArgumentError(f"cannot convert {source_type.name} elements to {target_type.name}")
        source = (_PRELUDE + f"kernel void op_cast(device const {source_type.name}* a [[buffer(0)]], "
                  f"device {target_type.name}* out [[buffer(1)]], uint i [[thread_position_in_grid]]) "
                  f"{{ out[i] = static_cast<{target_type.name}>(a[i]); }}\n")
        return self._run(source, [buffer], target_type.name, buffer.count)


def _checked(buffer: Any) -> "Buffer":
    from .buffer import Buffer

    if not isinstance(buffer, Buffer):
        raise ArgumentError(f"expected a metalgpu.Buffer, got {type(buffer).__name__}")
    buffer._live()
    return buffer


def unary_function(name: str):
    def apply(buffer: "Buffer") -> "Buffer":
        return _checked(buffer)._interface._ops_for().unary(name, buffer)

    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = f"Elementwise {name} of a float buffer, computed on its device; returns a new buffer."
    return apply


sqrt, rsqrt, cos, sin, tan = (unary_function(n) for n in ("sqrt", "rsqrt", "cos", "sin", "tan"))
acos, asin, atan, cosh, sinh, tanh = (unary_function(n) for n in ("acos", "asin", "atan", "cosh", "sinh", "tanh"))
exp, exp2, log, log2, log10 = (unary_function(n) for n in ("exp", "exp2", "log", "log2", "log10"))
abs, floor, ceil, round, trunc = (unary_function(n) for n in ("abs", "floor", "ceil", "round", "trunc"))


_default_interfaces: dict[str, "Interface"] = {}


def from_dlpack(obj: Any, interface: "Interface | None" = None) -> "Buffer":
    """A Buffer over another library's CPU array without copying (a non-contiguous array is copied once)."""
    from .buffer import Buffer
    from .interface import Interface

    try:
        array = np.from_dlpack(obj)
    except (BufferError, RuntimeError, TypeError) as error:
        raise ArgumentError(f"from_dlpack takes CPU arrays in this release ({error}); copy GPU arrays to the "
                            "host first") from None
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    if interface is None:
        interface = _default_interfaces.get("cpu") or _default_interfaces.setdefault("cpu", Interface("cpu"))
    mtype = metal_type_of_array(array)
    count = array.size if mtype.lanes == 1 else array.shape[0]
    return Buffer(interface, ArrayAllocation(array), mtype, count, "shared",
                  array.shape if array.ndim > 1 and mtype.lanes == 1 else None)
