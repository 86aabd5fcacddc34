"""Metal element types: their names, numpy dtypes, sizes and alignments, and their bytes.

Everything is derived from one table of Metal scalars (:data:`_SCALARS`). A vector ``Tn`` has ``n`` lanes of
``T`` and, as in Metal, the size and alignment of ``n`` rounded up to a power of two lanes (``float3`` takes 16
bytes); ``packed_Tn`` takes exactly ``n`` lanes and aligns like ``T`` (``packed_float3`` takes 12 bytes).

``half`` is IEEE binary16 (``np.float16``). numpy has no bfloat16: the ``bfloat`` type's component dtype is
``ml_dtypes.bfloat16`` when that package is importable, else ``np.uint16`` holding the raw bit patterns
(then :func:`contents_view` shows bits, while :func:`pack_values` still takes ordinary numbers).
"""
from __future__ import annotations

import ctypes
import difflib
import operator
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ArgumentError

try:
    import ml_dtypes
    _BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    _BFLOAT16 = None

__all__ = ["MetalType", "resolve_type", "metal_type_of_array", "contents_view", "pack_scalar", "pack_values"]

# Metal scalar name, numpy dtype of one value, size in bytes (MSL specification, table 2.1).
_SCALARS = (
    ("bool", np.dtype(np.bool_), 1),
    ("char", np.dtype(np.int8), 1),
    ("uchar", np.dtype(np.uint8), 1),
    ("short", np.dtype(np.int16), 2),
    ("ushort", np.dtype(np.uint16), 2),
    ("int", np.dtype(np.int32), 4),
    ("uint", np.dtype(np.uint32), 4),
    ("long", np.dtype(np.int64), 8),
    ("ulong", np.dtype(np.uint64), 8),
    ("half", np.dtype(np.float16), 2),
    ("bfloat", _BFLOAT16 if _BFLOAT16 is not None else np.dtype(np.uint16), 2),
    ("float", np.dtype(np.float32), 4),
)
_SCALAR_NAMES = tuple(name for name, _, _ in _SCALARS)
_FLOATING = ("half", "bfloat", "float")

# Other spellings of Metal scalars: C/C++ names and the original metalgpu's aliases.
_ALIASES = {
    "size_t": "ulong",
    "signed char": "char", "int8": "char", "int8_t": "char",
    "unsigned char": "uchar", "uint8": "uchar", "uint8_t": "uchar",
    "int16": "short", "int16_t": "short",
    "unsigned short": "ushort", "uint16": "ushort", "uint16_t": "ushort",
    "int32": "int", "int32_t": "int",
    "unsigned int": "uint", "uint32": "uint", "uint32_t": "uint",
    "int64": "long", "int64_t": "long",
    "unsigned long": "ulong", "uint64": "ulong", "uint64_t": "ulong",
    "float32": "float",
    "float16": "half",
}


@dataclass(frozen=True)
class MetalType:
    """One Metal element type, as laid out in device memory (what :func:`resolve_type` returns).

    Attributes:
        name: the canonical Metal spelling (``"float3"``, ``"packed_half2"``, or ``"struct"`` for a numpy
            structured dtype).
        scalar: the name of one component (``"float"`` for ``float3``).
        lanes: the number of components (1 for a scalar or struct).
        packed: a ``packed_`` vector (no padding, the scalar's alignment).
        scalar_dtype: the numpy dtype of one component (the whole structured dtype for a struct).
        itemsize: the bytes one element takes, padding included (``float3``: 16).
        alignment: the element's alignment in bytes.

    Example:
        >>> from metalgpu.types import resolve_type
        >>> t = resolve_type("half3")
        >>> t.scalar, t.lanes, t.itemsize, t.element_shape
        ('half', 3, 8, (3,))
    """

    name: str
    scalar: str
    lanes: int
    packed: bool
    scalar_dtype: np.dtype
    itemsize: int
    alignment: int

    @property
    def is_vector(self) -> bool:
        return self.lanes > 1

    @property
    def is_struct(self) -> bool:
        return self.scalar == "struct"

    @property
    def element_shape(self) -> tuple[int, ...]:
        """The numpy shape of one element: ``()`` for a scalar or struct, ``(lanes,)`` for a vector."""
        return (self.lanes,) if self.is_vector else ()

    @property
    def numpy_dtype(self) -> np.dtype | None:
        """The dtype of a flat array of these elements, or ``None`` for vectors, which have none exactly:
        their arrays have shape ``(count, lanes)`` of ``scalar_dtype`` (see :func:`contents_view`)."""
        return None if self.is_vector else self.scalar_dtype

    def __str__(self) -> str:
        return f"struct {self.scalar_dtype}" if self.is_struct else self.name


def _vector(scalar: str, dtype: np.dtype, size: int, lanes: int, packed: bool) -> MetalType:
    if packed:
        return MetalType(f"packed_{scalar}{lanes}", scalar, lanes, True, dtype, size * lanes, size)
    padded_lanes = 4 if lanes == 3 else lanes
    return MetalType(f"{scalar}{lanes}", scalar, lanes, False, dtype, size * padded_lanes, size * padded_lanes)


def _all_types() -> dict[str, MetalType]:
    types = {}
    for scalar, dtype, size in _SCALARS:
        types[scalar] = MetalType(scalar, scalar, 1, False, dtype, size, size)
        for lanes in (2, 3, 4):
            for packed in (False, True):
                vector = _vector(scalar, dtype, size, lanes, packed)
                types[vector.name] = vector
    return types


_BY_NAME = _all_types()
_BY_DTYPE = {dtype: _BY_NAME[name] for name, dtype, _ in _SCALARS if name != "bfloat"}  # bfloat's uint16 is ushort


# --- resolving what users write ---------------------------------------------------------------------------------

_VEC_TEMPLATE = re.compile(r"vec ?< ?(?:metal::)?([a-z_0-9 ]+?) ?, ?([234]) ?>")
_DOUBLE_NAMES = re.compile(r"(packed_)?double[234]?|float64|long double")
_NO_FLOAT64 = ("Metal has no 64-bit float; use float32 (np.float32, ctypes.c_float or 'float'), "
               "e.g. arr.astype(np.float32)")


def resolve_type(t: Any) -> MetalType:
    """The Metal element type that ``t`` names: what ``create_buffer``, ``Buffer.view`` and ``astype`` accept.

    Args:
        t: a Metal type name (``"float4"``, ``"metal::packed_half3"``, ``"vec<int, 2>"``, ``"uint32_t"``,
            ``"float16"``), a numpy dtype or scalar type (a structured dtype for a struct), a ctypes type (a
            ``ctypes.Structure`` for a struct), or a MetalType.

    Returns:
        The :class:`MetalType`, with its size and alignment as Metal lays it out.

    Raises:
        ArgumentError: ``t`` is none of these, or has no Metal equivalent (``np.float64``, Python's ``int``,
            whose width is unknown); the message names ``t`` and, for a misspelt name, the closest names.

    Example:
        >>> import ctypes
        >>> import numpy as np
        >>> from metalgpu.types import resolve_type
        >>> resolve_type("float3").itemsize, resolve_type("packed_float3").itemsize
        (16, 12)
        >>> resolve_type(np.float16).name, resolve_type(ctypes.c_uint).name
        ('half', 'uint')
        >>> resolve_type("half").scalar_dtype
        dtype('float16')
    """
    if isinstance(t, MetalType):
        return t
    if isinstance(t, str):
        return _from_name(t)
    if t is int:
        raise ArgumentError("Python int does not say how wide the integer is: use 'int' (32-bit) or 'long' (64-bit)")
    if isinstance(t, type) and issubclass(t, ctypes._SimpleCData):
        return _from_ctypes(t)
    if isinstance(t, type) and issubclass(t, (ctypes.Structure, ctypes.Union)):
        return _from_dtype(np.dtype(t), t.__name__)
    if isinstance(t, np.dtype) or (isinstance(t, type) and issubclass(t, (np.generic, float, complex, bool))):
        return _from_dtype(np.dtype(t), _describe(t))
    raise ArgumentError(f"{_describe(t)} is not an element type: {_ACCEPTED}")


_ACCEPTED = ("expected a Metal type name ('float', 'int', 'half4', 'packed_float3', ...), "
             "a numpy dtype or scalar type (np.float32) or a ctypes type (ctypes.c_int)")


def metal_type_of_array(arr: np.ndarray) -> MetalType:
    """The Metal scalar (or struct) type of an array's elements, for copying it into a buffer."""
    if not isinstance(arr, np.ndarray):
        raise ArgumentError(f"expected a numpy array, got {type(arr).__name__}")
    return _from_dtype(arr.dtype, f"an array of dtype {arr.dtype}")


def _describe(t: Any) -> str:
    if isinstance(t, type):
        return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__
    if isinstance(t, np.dtype):
        return f"dtype {t}"
    return repr(t)


def _from_name(text: str) -> MetalType:
    name = " ".join(text.split())
    name = name.removeprefix("metal::")
    template = _VEC_TEMPLATE.fullmatch(name)
    if template:
        scalar = template[1]
        name = _ALIASES.get(scalar, scalar) + template[2]
    name = _ALIASES.get(name, name)
    if name in _BY_NAME:
        return _BY_NAME[name]
    if _DOUBLE_NAMES.fullmatch(name):
        raise ArgumentError(f"{text!r}: {_NO_FLOAT64}")
    close = difflib.get_close_matches(name, [*_BY_NAME, *_ALIASES], n=3)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    raise ArgumentError(f"unknown Metal type {text!r}{hint}: expected a scalar ({', '.join(_SCALAR_NAMES)}), "
                        "a vector such as 'float4' or 'packed_float3', a numpy dtype or a ctypes type")


def _from_ctypes(t: type) -> MetalType:
    if t is ctypes.c_char:
        return _BY_NAME["char"]
    if t in (ctypes.c_double, ctypes.c_longdouble):
        raise ArgumentError(f"ctypes.{t.__name__}: {_NO_FLOAT64}")
    if t in (ctypes.c_char_p, ctypes.c_wchar_p, ctypes.c_void_p, ctypes.c_wchar):
        raise ArgumentError(f"ctypes.{t.__name__} is not a Metal element type: {_ACCEPTED}")
    return _from_dtype(np.dtype(t), f"ctypes.{t.__name__}")  # sized by the platform's C, as ctypes is


def _from_dtype(dtype: np.dtype, what: str) -> MetalType:
    if _BFLOAT16 is not None and dtype == _BFLOAT16:
        return _BY_NAME["bfloat"]
    if dtype.names is not None:
        return MetalType("struct", "struct", 1, False, dtype, dtype.itemsize, _natural_alignment(dtype))
    if not dtype.isnative:
        raise ArgumentError(f"{what} is not in the machine's byte order; convert it with "
                            ".astype(arr.dtype.newbyteorder('='))")
    if dtype in _BY_DTYPE:
        return _BY_DTYPE[dtype]
    if dtype.kind == "f":
        raise ArgumentError(f"{what}: {_NO_FLOAT64}" if dtype.itemsize > 4 else f"{what} has no Metal equivalent")
    if dtype.kind == "c":
        raise ArgumentError(f"{what}: Metal has no complex type; pass real and imaginary parts as float2")
    if dtype.kind == "O":
        raise ArgumentError(f"{what}: Python objects have no Metal type; convert to a numeric dtype first "
                            "(integers too large for 64 bits cannot be stored)")
    raise ArgumentError(f"{what} has no Metal equivalent; {_ACCEPTED}")


def _natural_alignment(dtype: np.dtype) -> int:
    """The alignment a C compiler gives this dtype: its largest field's, for a struct."""
    base = dtype.base
    if base.names is None:
        return base.alignment
    return max((_natural_alignment(base.fields[name][0]) for name in base.names), default=1)


# --- views and bytes --------------------------------------------------------------------------------------------

def contents_view(raw: Any, count: int, mtype: MetalType) -> np.ndarray:
    """A numpy array over the first ``count`` elements of ``mtype`` in ``raw``, without copying.

    ``raw`` is a contiguous numpy array or any object with the buffer protocol. Scalars and structs give shape
    ``(count,)``; vectors ``(count, lanes)`` whose rows are ``itemsize`` bytes apart, so a ``float3``'s padding
    lane is not visible. The view is writable when ``raw`` is.
    """
    data = _as_bytes_array(raw)
    count = operator.index(count)
    needed = count * mtype.itemsize
    if count < 0 or data.nbytes < needed:
        raise ArgumentError(f"{count} x {mtype.name} needs {needed} bytes; the memory has {data.nbytes}")
    body = data[:needed]
    if not mtype.is_vector:
        return body.view(mtype.scalar_dtype)
    if mtype.packed:
        return body.view(mtype.scalar_dtype).reshape(count, mtype.lanes)
    strides = (mtype.itemsize, mtype.scalar_dtype.itemsize)
    return np.ndarray((count, mtype.lanes), mtype.scalar_dtype, buffer=body, strides=strides)


def _as_bytes_array(raw: Any) -> np.ndarray:
    if not isinstance(raw, np.ndarray):
        try:
            raw = np.frombuffer(raw, dtype=np.uint8)
        except (TypeError, ValueError) as e:
            raise ArgumentError(f"cannot view {type(raw).__name__} as memory: {e}") from None
    if not raw.flags.c_contiguous:
        raise ArgumentError("the memory to view must be contiguous")
    return raw.reshape(-1).view(np.uint8)


def pack_scalar(value: Any, mtype: MetalType) -> bytes:
    """The bytes of one ``mtype`` holding ``value``, as a ``constant T&`` kernel argument receives them.

    ``value`` is a Python number or bool, a numpy scalar or array, a sequence of ``lanes`` values for a vector,
    a tuple or ``np.void`` for a struct, or ``bytes`` of exactly ``itemsize``. 3-vectors are zero-padded.
    """
    data = pack_values(value, mtype)
    if len(data) != mtype.itemsize:
        if isinstance(value, (bytes, bytearray, memoryview)):
            got = f"{len(data)} bytes"
        else:
            got = f"{len(data) // mtype.itemsize} of them"
        raise ArgumentError(f"expected one {mtype.name} ({mtype.itemsize} bytes), got {got}")
    return data


def pack_values(values: Any, mtype: MetalType) -> bytes:
    """The bytes of an array of ``mtype`` holding ``values`` (see :func:`pack_scalar` for what is accepted;
    vectors take shape ``(n, lanes)`` or ``(lanes,)``).

    Integers out of the type's range, fractional values for integer types and finite values that overflow a
    float type raise :class:`ArgumentError`; NaN and infinities pass to float types unchanged.
    """
    if isinstance(values, (bytes, bytearray, memoryview)):
        data = bytes(values)
        if len(data) % mtype.itemsize:
            raise ArgumentError(f"{len(data)} bytes is not a whole number of {mtype.name} "
                                f"({mtype.itemsize} bytes each)")
        return data
    if mtype.is_struct:
        try:
            return np.asarray(values, dtype=mtype.scalar_dtype).reshape(-1).tobytes()
        except (TypeError, ValueError) as e:
            raise ArgumentError(f"cannot convert {values!r} to {mtype}: {e}") from None
    array = _converted(values, mtype)
    if not mtype.is_vector:
        return array.reshape(-1).tobytes()
    if array.ndim == 0 or array.shape[-1] != mtype.lanes:
        raise ArgumentError(f"a {mtype.name} takes {mtype.lanes} values, got shape {array.shape}")
    rows = array.reshape(-1, mtype.lanes)
    slots = mtype.itemsize // mtype.scalar_dtype.itemsize
    if slots != mtype.lanes:
        padded = np.zeros((len(rows), slots), dtype=rows.dtype)
        padded[:, : mtype.lanes] = rows
        rows = padded
    return rows.tobytes()


def _converted(values: Any, mtype: MetalType) -> np.ndarray:
    """``values`` as an array of ``mtype``'s component dtype, refusing any conversion that changes a value."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError, OverflowError) as e:
        raise ArgumentError(f"cannot convert {values!r} to {mtype.name}: {e}") from None
    if array.dtype.kind == "O":
        array = _python_numbers(array, mtype)
    if array.dtype.kind not in "biuf":
        raise ArgumentError(f"cannot convert {values!r} (dtype {array.dtype}) to {mtype.name}")
    if mtype.scalar in _FLOATING:
        return _to_float(array, mtype)
    if mtype.scalar == "bool":
        bad = ~np.isin(array, (0, 1))
        if bad.any():
            raise ArgumentError(f"a bool takes True/False or 0/1, got {_first_bad(array, bad)}")
        return array.astype(np.bool_)
    return _to_integer(array, mtype)


def _python_numbers(array: np.ndarray, mtype: MetalType) -> np.ndarray:
    """An object array of Python ints (too large for 64 bits) or floats, as a numeric array."""
    if all(isinstance(v, int) for v in array.flat) and mtype.scalar not in _FLOATING:
        info = np.iinfo(mtype.scalar_dtype) if mtype.scalar != "bool" else None
        for v in array.flat:
            if info is None or not info.min <= v <= info.max:
                raise ArgumentError(f"{v} is out of range for {mtype.name}")
        return array.astype(mtype.scalar_dtype)
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as e:
        raise ArgumentError(f"cannot convert {array.tolist()!r} to {mtype.name}: {e}") from None


def _to_integer(array: np.ndarray, mtype: MetalType) -> np.ndarray:
    info = np.iinfo(mtype.scalar_dtype)
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.trunc(array))
        if bad.any():
            raise ArgumentError(f"{mtype.name} takes whole numbers, got {_first_bad(array, bad)}")
    if array.size and array.dtype.kind != "b":
        low, high = array.min().item(), array.max().item()  # Python numbers: exact comparisons below
        if low < info.min or high > info.max:
            worst = low if low < info.min else high
            raise ArgumentError(f"{worst} is out of range for {mtype.name} [{info.min}, {info.max}]")
    return array.astype(mtype.scalar_dtype)


def _to_float(array: np.ndarray, mtype: MetalType) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        if mtype.scalar == "bfloat" and _BFLOAT16 is None:
            converted = bfloat16_bits(array)
            as_float = (converted.astype(np.uint32) << 16).view(np.float32)
        else:
            converted = array.astype(mtype.scalar_dtype)
            as_float = converted.astype(np.float32)
        overflow = np.isinf(as_float) & np.isfinite(array)
    if overflow.any():
        raise ArgumentError(f"{_first_bad(array, overflow)} is out of range for {mtype.name}")
    return converted


def bfloat16_bits(array: np.ndarray) -> np.ndarray:
    """Round to bfloat16 (to nearest, ties to even) and return the bit patterns as uint16."""
    single = np.ascontiguousarray(array, dtype=np.float32)
    bits = single.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(single)
    rounded[nan] = ((bits[nan] >> 16) | 0x0040).astype(np.uint16)  # keep NaNs NaN (quiet), whatever rounding did
    return rounded


def _first_bad(array: np.ndarray, bad: np.ndarray) -> Any:
    return array[bad].flat[0].item()
