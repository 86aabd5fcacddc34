"""Elementwise operations on buffers, run on the buffer's own device (the original's later API, and numpy's
operators): ``metalgpu.sqrt(buffer)``, ``buffer + other``, ``2.0 * buffer``, ``-buffer``, ``buffer ** 2``,
``buffer.astype("half")``, and numpy's ufuncs of the same names (``np.sqrt(buffer)``, ``array + buffer``).

Each operation is a small generated MSL kernel, compiled once per interface, element type and operand kind (the
cache keeps it for later processes); the user's loaded shader is left untouched. Every result is a new shared
buffer of the left operand's type: Metal has no ``double``, so a ``float`` buffer plus a ``float64`` array gives
``float`` values, where numpy would promote to ``float64``. The operators do not broadcast: an array operand has
the buffer's shape (or is a single value).

Example::

    gpu = metalgpu.Interface()
    x = gpu.array_to_buffer(np.linspace(0, 1, 1000, dtype=np.float32))
    y = 2.0 * x ** 2 - 1          # three kernels on x's device; y is a Buffer
    z = np.cos(y)                 # numpy's ufunc runs on the device too
"""
from __future__ import annotations

import builtins
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from .dispatch import ArrayAllocation
from .errors import ArgumentError
from .library import Library
from .types import MetalType, metal_type_of_array, resolve_type

if TYPE_CHECKING:
    from .buffer import Buffer
    from .interface import Interface

UNARY_FUNCTIONS = ("sqrt", "rsqrt", "cos", "sin", "tan", "acos", "asin", "atan", "cosh", "sinh", "tanh",
                   "exp", "exp2", "log", "log2", "log10", "abs", "floor", "ceil", "round", "trunc")
_OPERATORS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow"}
_FLOAT_SCALARS = ("float", "half", "bfloat")
_PRELUDE = "#include <metal_stdlib>\nusing namespace metal;\n"
# x ** n for a whole number n by repeated squaring: exact where numpy's is (x ** 2 is x * x), and defined for a
# negative x, where pow(x, y) is not. For integers a negative n gives what 1 / x ** -n gives in integer division.
_POWER_HELPERS = """
template <typename T, typename N> T mg_pown(T x, N n) {
    bool invert = n < N(0);
    if (invert) n = N(0) - n;
    T result = T(1);
    for (; n != N(0); n = n / N(2)) {
        if (n % N(2) != N(0)) result *= x;
        x *= x;
    }
    return invert ? T(1) / result : result;
}
template <typename T> T mg_ipow(T x, T n) {
    if (n < T(0)) return x == T(1) ? T(1) : (x == T(0) - T(1) ? ((n % T(2)) != T(0) ? x : T(1)) : T(0));
    return mg_pown(x, n);
}
"""

# numpy's ufuncs that run on the device, by the operation they are
_UFUNC_OPERATORS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "true_divide": "/",
                    "power": "**"}
_UFUNC_FUNCTIONS = {"absolute": "abs", "fabs": "abs", "arcsin": "asin", "arccos": "acos", "arctan": "atan",
                    **{name: name for name in ("sqrt", "cos", "sin", "tan", "cosh", "sinh", "tanh", "exp", "exp2",
                                               "log", "log2", "log10", "floor", "ceil", "trunc")}}


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
        """``name(buffer)`` with Metal's function ``name``; every function but ``abs`` takes floats only."""
        mtype = _numeric(buffer, name).metal_type
        if mtype.scalar not in _FLOAT_SCALARS and name != "abs":
            raise ArgumentError(f"{name}() needs a float, half or bfloat buffer, not {mtype.name}")
        return self._run(map_source(name, mtype), [buffer], mtype.name, buffer.count)

    def negative(self, buffer: "Buffer") -> "Buffer":
        """``-buffer`` (unsigned integers wrap around, as in numpy)."""
        mtype = _numeric(buffer, "-").metal_type
        return self._run(map_source("negative", mtype), [buffer], mtype.name, buffer.count)

    def copy(self, buffer: "Buffer") -> "Buffer":
        """``+buffer``: a copy made on the device."""
        mtype = _numeric(buffer, "+").metal_type
        return self._run(map_source("copy", mtype), [buffer], mtype.name, buffer.count)

    def binary(self, operator: str, left: "Buffer", right: Any, reflected: bool = False) -> "Buffer":
        """``left <operator> right`` (``right <operator> left`` when ``reflected``): ``right`` is a Buffer of the
        same type and length, a number, or a numpy array of ``left``'s shape (copied to the device first)."""
        from .buffer import Buffer

        mtype = _numeric(left, operator).metal_type
        temporary = None
        if isinstance(right, (list, tuple)):
            right = np.asarray(right)
        if isinstance(right, np.ndarray) and right.ndim == 0:
            right = right[()]  # a single value
        if isinstance(right, np.ndarray):
            right = temporary = self._to_device(right, left, operator)
        try:
            if isinstance(right, Buffer):
                other = _numeric(right, operator).metal_type
                if other.name != mtype.name or right.count != left.count:
                    raise ArgumentError(f"'{operator}' needs buffers of the same type and length: {left.count} x "
                                        f"{mtype.name} and {right.count} x {other.name}")
                operand = "buffer"
            elif isinstance(right, (numbers.Real, np.integer, np.floating, np.bool_)):
                operand = _scalar_operand(operator, mtype, right)
            else:
                return NotImplemented
            source = binary_source(operator, mtype, operand, reflected)
            return self._run(source, [left, right], mtype.name, left.count)
        finally:
            if temporary is not None:
                temporary.release()

    def _to_device(self, array: np.ndarray, like: "Buffer", operator: str) -> "Buffer":
        """A numpy operand of ``like``'s shape, copied into a new buffer of its type."""
        if array.shape != like.shape:
            raise ArgumentError(f"'{operator}' of a buffer of shape {like.shape} and an array of shape {array.shape}:"
                                f" metalgpu's operators do not broadcast; give an array of the buffer's shape")
        kinds = "biuf" if like.metal_type.scalar in _FLOAT_SCALARS else "biu"
        if array.dtype.kind not in kinds:
            raise ArgumentError(f"'{operator}' of a buffer of {like.metal_type.name} and an array of dtype "
                                f"{array.dtype}: the result keeps the buffer's type, which cannot hold these values; "
                                f"convert the buffer first (buffer.astype(...))")
        buffer = self._interface.create_buffer(like.count, like.metal_type.name)
        buffer.write(array)
        return buffer

    def cast(self, buffer: "Buffer", target: Any) -> "Buffer":
        source_type = _checked(buffer).metal_type
        target_type = resolve_type(target)
        if target_type.lanes != source_type.lanes or "struct" in (source_type.name, target_type.name):
            raise ArgumentError(f"cannot convert {source_type.name} elements to {target_type.name}")
        source = (_PRELUDE + f"kernel void op_cast(device const {source_type.name}* a [[buffer(0)]], "
                  f"device {target_type.name}* out [[buffer(1)]], uint i [[thread_position_in_grid]]) "
                  f"{{ out[i] = static_cast<{target_type.name}>(a[i]); }}\n")
        return self._run(source, [buffer], target_type.name, buffer.count)


def _scalar_operand(operator: str, mtype: MetalType, value: Any) -> str:
    """How a number is passed (see binary_source): "whole" for the exponent of a power that is a whole number,
    else "scalar"."""
    is_float_buffer = mtype.scalar in _FLOAT_SCALARS
    whole = isinstance(value, (numbers.Integral, np.bool_)) or (isinstance(value, numbers.Real) and
                                                               float(value).is_integer())
    if not is_float_buffer and not whole:
        raise ArgumentError(f"'{operator}' of a buffer of {mtype.name} and {value!r}: the result keeps the buffer's "
                            f"type, which holds whole numbers only; convert the buffer first (buffer.astype('float'))")
    if operator == "**" and mtype.scalar.startswith("u") and value < 0:
        raise ArgumentError(f"'**' of a buffer of {mtype.name} and {value!r}: an unsigned type holds no negative "
                            "exponent")
    if operator == "**" and whole and builtins.abs(float(value)) < 2**31:  # this module's own abs is for buffers
        return "whole"
    return "scalar"


def map_source(operation: str, mtype: MetalType) -> str:
    """The MSL of ``out[i] = operation(a[i])``: ``operation`` is a Metal function's name, "negative" or "copy"."""
    if operation == "negative":
        expression = "!a[i]" if mtype.scalar == "bool" else "-a[i]"
    elif operation == "copy":
        expression = "a[i]"
    else:
        expression = f"{operation}(a[i])"
    name = mtype.name
    return (_PRELUDE + f"kernel void op_{operation}(device const {name}* a [[buffer(0)]], "
            f"device {name}* out [[buffer(1)]], uint i [[thread_position_in_grid]]) {{ out[i] = {expression}; }}\n")


def binary_source(operator: str, mtype: MetalType, operand: str, reflected: bool = False) -> str:
    """The MSL of ``out[i] = a[i] <operator> b`` (``b <operator> a[i]`` when ``reflected``), ``a`` a buffer of
    ``mtype``. ``operand`` says what ``b`` is: "buffer" (``b[i]``, of the same type), "scalar" (a number of the
    element's scalar type) or "whole" (an int, the exponent of ``**``)."""
    name = mtype.name
    if operand == "buffer":
        parameter, value = f"device const {name}* b", "b[i]"
    else:
        parameter, value = f"constant {'int' if operand == 'whole' else mtype.scalar}& b", "b"
    x, y = (value, "a[i]") if reflected else ("a[i]", value)
    expression = _expression(operator, mtype, x, y, operand)
    return (_PRELUDE + (_POWER_HELPERS if "mg_" in expression else "")
            + f"kernel void op_{_OPERATORS[operator]}(device const {name}* a [[buffer(0)]], {parameter} "
            f"[[buffer(1)]], device {name}* out [[buffer(2)]], uint i [[thread_position_in_grid]]) "
            f"{{ out[i] = {expression}; }}\n")


def _expression(operator: str, mtype: MetalType, x: str, y: str, operand: str) -> str:
    """One element of ``x <operator> y``."""
    if operator != "**":
        return f"{x} {operator} {y}"
    name = mtype.name
    if mtype.scalar not in _FLOAT_SCALARS:
        if mtype.is_vector:
            raise ArgumentError(f"'**' of {name} buffers: integer powers take scalar element types")
        return f"mg_ipow<{name}>({name}({x}), {name}({y}))"
    if operand == "whole" and x == "a[i]":
        return f"mg_pown({x}, {y})"
    return f"pow({name}({x}), {name}({y}))"


def _checked(buffer: Any) -> "Buffer":
    from .buffer import Buffer

    if not isinstance(buffer, Buffer):
        raise ArgumentError(f"expected a metalgpu.Buffer, got {type(buffer).__name__}")
    buffer._live()
    return buffer


def _numeric(buffer: Any, operation: str) -> "Buffer":
    """A live buffer of numbers (not structs), for arithmetic."""
    buffer = _checked(buffer)
    if buffer.metal_type.is_struct:
        raise ArgumentError(f"'{operation}' needs a buffer of numbers, not of struct {buffer.dtype}")
    return buffer


def array_ufunc(buffer: "Buffer", ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """numpy's ufunc on a Buffer (``np.sqrt(b)``, ``array + b``): on the device where metalgpu has the operation,
    a clear ArgumentError otherwise, never a host array made behind the user's back."""
    from .buffer import Buffer

    name = ufunc.__name__
    if method != "__call__" or kwargs:
        what = f"numpy.{name}.{method}" if method != "__call__" else f"numpy.{name} with {', '.join(kwargs)}="
        raise ArgumentError(f"{what} does not run on metalgpu Buffers; use the buffer's methods (sum, min, max, "
                            "mean) or pass buffer.contents, a numpy view of its memory, for a host computation")
    if name in _UFUNC_OPERATORS and len(inputs) == 2:
        left, right = inputs
        if isinstance(left, Buffer):
            return buffer._interface._ops_for().binary(_UFUNC_OPERATORS[name], left, right)
        return buffer._interface._ops_for().binary(_UFUNC_OPERATORS[name], right, left, reflected=True)
    ops = buffer._interface._ops_for()
    if name == "negative":
        return ops.negative(buffer)
    if name == "positive":
        return ops.copy(buffer)
    if name in _UFUNC_FUNCTIONS:
        return ops.unary(_UFUNC_FUNCTIONS[name], buffer)
    raise ArgumentError(f"numpy.{name} does not run on metalgpu Buffers (the device runs add, subtract, multiply, "
                        f"divide, power, negative, positive and {', '.join(sorted(_UFUNC_FUNCTIONS))}); pass "
                        "buffer.contents, a numpy view of its memory, for a host computation")


def unary_function(name: str):
    def apply(buffer: "Buffer") -> "Buffer":
        return _checked(buffer)._interface._ops_for().unary(name, buffer)

    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = (f"Elementwise ``{name}`` of a buffer, computed on its device with Metal's ``{name}``.\n\n"
                     f"Returns a new shared buffer of the same type and length. Raises ArgumentError for a buffer "
                     f"that is not float, half or bfloat{' (abs also takes integers)' if name == 'abs' else ''}, "
                     f"BufferReleasedError for a released one.\n\n"
                     f"Example: ``metalgpu.{name}(gpu.array_to_buffer(np.ones(4, np.float32))).read()``")
    return apply


sqrt, rsqrt, cos, sin, tan = (unary_function(n) for n in ("sqrt", "rsqrt", "cos", "sin", "tan"))
acos, asin, atan, cosh, sinh, tanh = (unary_function(n) for n in ("acos", "asin", "atan", "cosh", "sinh", "tanh"))
exp, exp2, log, log2, log10 = (unary_function(n) for n in ("exp", "exp2", "log", "log2", "log10"))
abs, floor, ceil, round, trunc = (unary_function(n) for n in ("abs", "floor", "ceil", "round", "trunc"))


_default_interfaces: dict[str, "Interface"] = {}


def from_dlpack(obj: Any, interface: "Interface | None" = None) -> "Buffer":
    """A Buffer over another library's CPU array, without copying.

    ``obj`` is anything with ``__dlpack__`` (numpy, PyTorch and JAX CPU arrays); a non-contiguous array is copied
    once. ``interface`` is the cpu Interface the buffer belongs to (default: one shared by these calls). Raises
    ArgumentError for arrays on a GPU (copy them to the host first) or of a dtype Metal has no type for.

    Example::

        import torch
        buffer = metalgpu.from_dlpack(torch.arange(8, dtype=torch.float32))
    """
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
