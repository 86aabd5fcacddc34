"""Buffer: memory a kernel reads and writes, seen from Python as a numpy array without copies."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from .dispatch import BufferType
from .errors import ArgumentError, BufferReleasedError
from .types import MetalType, bfloat16_bits, contents_view, resolve_type

if TYPE_CHECKING:
    from .backends.base import Backend
    from .dispatch import Allocation, Dispatch
    from .interface import Interface


class Buffer:
    """``count`` elements of one Metal type on one device, made by ``Interface.create_buffer`` or
    ``Interface.array_to_buffer``.

    ``contents`` is a numpy array over the buffer's own memory (``shared`` storage only); ``read()`` and
    ``write()`` copy, for any storage. ``release()`` frees the memory; any later use raises BufferReleasedError.

    A buffer behaves as an array of its contents: ``shape``, ``ndim``, ``size``, ``len()``, ``b[i]``, ``b[i:j]``
    and iteration read the contents (numpy values; a slice is a view of the buffer's memory), ``b[i] = v`` writes
    them, ``np.asarray(b)`` is the contents without a copy. The arithmetic operators (``+ - * / **``, their
    reflected forms such as ``2.0 * b`` and ``1 - b``, ``-b``, ``+b``, ``abs(b)``) and numpy's ufuncs of the same
    operations (``np.sqrt(b)``, ``array + b``) run on the buffer's device and return a new Buffer (see
    metalgpu.ops); a numpy ufunc metalgpu has no kernel for raises ArgumentError rather than computing on the
    host. ``sum``, ``min``, ``max`` and ``mean`` reduce on the host, over the contents.

    A ``private`` buffer has no CPU view: indexing it raises ArgumentError (use ``read()``); ``np.asarray`` and
    the reductions read a copy.

    Example::

        gpu = metalgpu.Interface()
        b = gpu.array_to_buffer(np.arange(6, dtype=np.float32))
        b.shape, b[2], b[1:3]          # (6,), np.float32(2.0), a view of two elements
        c = 1 - 2.0 * b ** 2           # computed on the device: a new Buffer
        c.sum()                        # np.float32(-104.0)
    """

    def __init__(self, interface: "Interface", allocation: "Allocation", mtype: MetalType, count: int, storage: str,
                 shape: tuple[int, ...] | None = None):
        self._interface = interface
        self._allocation: Allocation | None = allocation
        self.metal_type = mtype
        self.count = count
        self.storage = storage
        self._view: np.ndarray | None = None
        # The last asynchronous dispatch that used this buffer's memory, in a box that its views share
        self._pending_box: list[Dispatch | None] = [None]
        self._shape = shape  # array_to_buffer keeps the array's shape for `contents`

    @property
    def _pending(self) -> "Dispatch | None":
        return self._pending_box[0]

    @_pending.setter
    def _pending(self, dispatch: "Dispatch | None") -> None:
        self._pending_box[0] = dispatch

    # -- what it holds -------------------------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        """numpy dtype of one component (``float32`` for a ``float4`` buffer; structured for records)."""
        return self.metal_type.scalar_dtype

    @property
    def dtype_name(self) -> str:
        """The Metal name of the element type (``"float4"``, ``"half"``; ``"struct"`` for records)."""
        return self.metal_type.name

    @property
    def nbytes(self) -> int:
        """Bytes the elements take, Metal's padding included (a ``float3`` takes 16)."""
        return self.count * self.metal_type.itemsize

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``contents``: ``(count,)``, ``(count, lanes)`` for a vector type, or the shape of the
        array ``array_to_buffer`` copied. Known for private buffers too."""
        if self._shape is not None:
            return tuple(self._shape)
        return (self.count, *self.metal_type.element_shape)

    @property
    def ndim(self) -> int:
        """``len(shape)``."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """The number of values, as numpy counts them: ``count`` times the lanes of a vector type."""
        return self.count * self.metal_type.lanes

    def __len__(self) -> int:
        """The length of the first axis, as numpy's ``len(contents)``: ``count``, except for a buffer
        ``array_to_buffer`` made from an array of two or more dimensions."""
        return self.shape[0]

    def _element_type(self) -> BufferType:
        """What a kernel parameter bound to this buffer is checked against (dispatch.check_buffer_type)."""
        return BufferType(self.metal_type, self._shape[-1] if self._shape else None)

    def view(self, type_: Any) -> "Buffer":
        """The same memory as elements of ``type_`` (a Metal type name, numpy or ctypes type), no copy: the
        explicit way to bind a buffer to a parameter of another element type. Writes through either show in
        both. The memory is freed when the last of the buffer and its views is released or collected.

        Raises ArgumentError when the buffer's bytes are not a whole number of ``type_`` elements (or the type is
        unknown), BufferReleasedError for a released buffer.

        Example: ``gpu.create_buffer(4, "float").view("uint")`` holds the floats' bit patterns.
        """
        allocation = self._live()
        mtype = resolve_type(type_)
        if self.nbytes % mtype.itemsize:
            raise ArgumentError(f"this buffer's {self.nbytes} bytes are not a whole number of {mtype} "
                                f"({mtype.itemsize} bytes each)")
        view = Buffer(self._interface, allocation, mtype, self.nbytes // mtype.itemsize, self.storage)
        view._pending_box = self._pending_box
        return view

    @property
    def released(self) -> bool:
        """Whether release() was called."""
        return self._allocation is None

    @property
    def interface_backend(self) -> "Backend":
        """The backend of the Interface that made the buffer (internal: binding checks and interchange)."""
        return self._interface._backend

    @property
    def address(self) -> int:
        """The device address of the first element (raises BufferReleasedError once released)."""
        return self._live().address

    # -- access ----------------------------------------------------------------------------------------------
    @property
    def contents(self) -> np.ndarray:
        """The buffer's memory as a numpy array, no copy: writing it writes the buffer. Its shape is ``shape``;
        a ``float3`` buffer's rows keep Metal's 16-byte stride. Reading it first waits for any asynchronous
        dispatch still using the buffer.

        Raises ArgumentError for a private buffer (use read() and write()), BufferReleasedError once released.

        Example: ``buffer.contents[:] = np.arange(len(buffer))`` fills the buffer in place.
        """
        allocation = self._live()
        if self.storage == "private":
            raise ArgumentError("a private buffer has no CPU view; use read() and write()")
        if self._interface._recording is not None:
            self._interface._recording.check_host_access(self, True, "contents")
        self._wait_pending()
        if self._view is None:  # built once: contents is read in loops, element by element
            host = allocation.host
            if host is None:
                raise ArgumentError(f"this {self.storage} buffer has no CPU view; use read() and write()")
            self._view = self._shaped(contents_view(host, self.count, self.metal_type))
        return self._view

    def _shaped(self, view: np.ndarray) -> np.ndarray:
        return view.reshape(self._shape) if self._shape is not None else view

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(buffer)``: the contents themselves, no copy (numpy's ``copy=True`` or a ``dtype`` other
        than the buffer's make one). A private buffer gives a copy of its values (``copy=False`` raises
        ValueError, as numpy asks)."""
        if self.storage == "private":
            if copy is False:
                raise ValueError("a private buffer has no CPU view: np.asarray(buffer, copy=False) cannot avoid a "
                                 "copy; use read()")
            array, copied = self.read(), True
        else:
            array, copied = self.contents, False
        if dtype is not None and np.dtype(dtype) != array.dtype:
            if copy is False:
                raise ValueError(f"np.asarray(buffer, dtype={np.dtype(dtype)}, copy=False): the buffer holds "
                                 f"{array.dtype}, a conversion copies")
            return array.astype(dtype)
        return array.copy() if copy and not copied else array

    # -- array-like access -----------------------------------------------------------------------------------
    def _host_view(self, what: str) -> np.ndarray:
        if self.storage == "private":
            self._live()
            raise ArgumentError(f"{what} reads the buffer's contents, and a private buffer has no CPU view: use "
                                f"read() (a copy) or write()")
        return self.contents

    def __getitem__(self, key: Any) -> Any:
        """``contents[key]``: a numpy scalar for one element, a view of the buffer's memory for a slice.
        Raises ArgumentError for a private buffer, IndexError out of range."""
        return self._host_view("indexing")[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        """``contents[key] = value``: writes the buffer's memory (after any dispatch still using it)."""
        self._host_view("assigning to elements")[key] = value

    def __iter__(self):
        return iter(self._host_view("iterating"))

    def _values(self) -> np.ndarray:
        """The values to reduce on the host: the contents, or a copy of a private buffer's."""
        return self.read() if self.storage == "private" else self.contents

    def sum(self, *args, **kwargs) -> Any:
        """``numpy.sum`` of the contents (same arguments), computed on the host."""
        return self._values().sum(*args, **kwargs)

    def min(self, *args, **kwargs) -> Any:
        """``numpy.min`` of the contents (same arguments), computed on the host."""
        return self._values().min(*args, **kwargs)

    def max(self, *args, **kwargs) -> Any:
        """``numpy.max`` of the contents (same arguments), computed on the host."""
        return self._values().max(*args, **kwargs)

    def mean(self, *args, **kwargs) -> Any:
        """``numpy.mean`` of the contents (same arguments), computed on the host."""
        return self._values().mean(*args, **kwargs)

    def read(self) -> np.ndarray:
        """A copy of the buffer's elements, shaped like ``contents``, for any storage (after any dispatch still
        using the buffer). Raises BufferReleasedError once released.

        Example: ``values = buffer.read()``: later kernels writing the buffer do not change ``values``.
        """
        allocation = self._live()
        if self._interface._recording is not None:
            self._interface._recording.check_host_access(self, False, "read()")
        self._wait_pending()
        raw = self.interface_backend.copy_out(allocation) if allocation.host is None else allocation.host
        return self._shaped(contents_view(raw, self.count, self.metal_type).copy())

    def write(self, array: Any) -> None:
        """Copy ``array`` (a numpy array, list or number sequence with the buffer's number of values, ``size``;
        records of the buffer's dtype for a struct buffer) into the buffer, converted to its type, for any storage.

        Raises ArgumentError for a different number of values or values that are not numbers, BufferReleasedError
        once released.

        Example: ``gpu.create_buffer(3, "half", storage="private").write([1.0, 2.5, -3.0])``
        """
        allocation = self._live()
        try:
            values = np.asarray(array)
        except (TypeError, ValueError) as error:  # ragged lists
            raise ArgumentError(f"write(): cannot make an array of the values given: {error}") from None
        if values.dtype.kind in "USMmc":  # strings, dates, complex numbers
            raise ArgumentError(f"write() takes numbers (or records for a struct buffer), not an array of "
                                f"dtype {values.dtype}")
        expected = self.count * self.metal_type.lanes
        if self.metal_type.name != "struct" and values.size != expected:
            raise ArgumentError(f"write() needs {expected} values for {self.count} x {self.metal_type.name}, "
                                f"got {values.size}")
        if self._interface._recording is not None:
            self._interface._recording.check_host_access(self, True, "write()")
        self._wait_pending()
        if allocation.host is None:
            staging = np.zeros(self.nbytes, dtype=np.uint8)
            self._fill(staging, values)
            self.interface_backend.copy_in(allocation, staging)
        else:
            self._fill(allocation.host, values)

    def _fill(self, raw: np.ndarray, values: np.ndarray) -> None:
        view = contents_view(raw, self.count, self.metal_type)
        if self.metal_type.name == "struct":
            if values.dtype != view.dtype or values.size != self.count:
                raise ArgumentError(f"write() needs {self.count} records of dtype {view.dtype}")
            view[...] = values.reshape(view.shape)
            return
        if self.metal_type.scalar == "bfloat" and view.dtype == np.uint16 and values.dtype != np.uint16:
            # without ml_dtypes, bfloat contents are their bit patterns: numbers are rounded to those, while
            # uint16 values are taken as patterns already
            values = bfloat16_bits(values.astype(np.float64))
        try:
            with np.errstate(invalid="ignore", over="ignore"):
                view[...] = values.reshape(view.shape).astype(view.dtype, copy=False)
        except (TypeError, ValueError, OverflowError) as error:  # Python objects that are not numbers
            raise ArgumentError(f"write(): cannot store the values given as {self.metal_type.name}: {error}") from None

    # -- lifetime --------------------------------------------------------------------------------------------
    def release(self) -> None:
        """Free the memory now (after any dispatch still using it). Idempotent. A ``contents`` array still alive
        keeps the memory until it goes, so it never reads freed memory; any other later use of the buffer raises
        BufferReleasedError.

        Example: ``buffer.release(); buffer.release()`` (the second call does nothing).
        """
        if self._allocation is None:
            return
        if self._interface._recording is not None:
            self._interface._recording.check_host_access(self, True, "release()")
        self._wait_pending(for_host=False)
        self._interface._forget_plans()
        allocation, self._allocation, self._view = self._allocation, None, None
        # A numpy view still alive (an old `contents`) holds the allocation: then the memory goes with the last
        # view, so an old view never reads freed memory. Otherwise it goes now.
        if sys.getrefcount(allocation) <= 2:  # this name and getrefcount's own argument
            allocation.free()

    def _live(self) -> "Allocation":
        if self._allocation is None:
            raise BufferReleasedError(f"this {self.metal_type.name} buffer was released")
        return self._allocation

    def _wait_pending(self, for_host: bool = True) -> None:
        """Wait for the dispatches using this buffer; ``for_host``: the backend brings its memory to the host."""
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                pending.wait()
            except Exception:
                pass  # the dispatch's own wait() or synchronize() reports the fault
        if for_host and self._allocation is not None:
            self.interface_backend.host_access(self._allocation)

    # -- interchange -----------------------------------------------------------------------------------------
    def __dlpack__(self, *args, **kwargs):
        """DLPack export of ``contents`` (no copy): ``torch.from_dlpack(buffer)``, ``np.from_dlpack(buffer)``."""
        return self.contents.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        """The DLPack device of ``contents`` (the CPU: shared buffers are host-visible)."""
        return self.contents.__dlpack_device__()

    @property
    def __cuda_array_interface__(self) -> dict:
        """Zero-copy exchange with CuPy, Numba, PyTorch (cuda backend only)."""
        if not self.interface_backend.cuda_array_interface:
            raise AttributeError("__cuda_array_interface__ exists only for buffers of the cuda backend")
        allocation = self._live()
        if self._interface._recording is not None:
            self._interface._recording.check_host_access(self, True, "__cuda_array_interface__")
        self._wait_pending(for_host=False)
        mtype = self.metal_type
        scalar = mtype.scalar_dtype.itemsize
        shape = (self.count,) if mtype.lanes == 1 else (self.count, mtype.lanes)
        padded = mtype.lanes > 1 and mtype.itemsize != mtype.lanes * scalar  # float3 keeps a 16-byte stride
        return {"shape": shape, "typestr": mtype.scalar_dtype.str, "data": (allocation.address, False),
                "strides": (mtype.itemsize, scalar) if padded else None, "version": 3}

    # -- elementwise operations on the device (metalgpu.ops) ---------------------------------------------------
    # Each returns a new Buffer. The other operand is a Buffer of the same type and length, a number, or a numpy
    # array of this buffer's shape (copied to the device); anything else gives NotImplemented, so Python tries the
    # other operand's method. numpy's own operators reach __array_ufunc__ below.
    def __add__(self, other):
        return self._interface._ops_for().binary("+", self, other)

    def __radd__(self, other):
        return self._interface._ops_for().binary("+", self, other, reflected=True)

    def __sub__(self, other):
        return self._interface._ops_for().binary("-", self, other)

    def __rsub__(self, other):
        return self._interface._ops_for().binary("-", self, other, reflected=True)

    def __mul__(self, other):
        return self._interface._ops_for().binary("*", self, other)

    def __rmul__(self, other):
        return self._interface._ops_for().binary("*", self, other, reflected=True)

    def __truediv__(self, other):
        return self._interface._ops_for().binary("/", self, other)

    def __rtruediv__(self, other):
        return self._interface._ops_for().binary("/", self, other, reflected=True)

    def __pow__(self, other):
        """``buffer ** n``: a whole ``n`` multiplies by repeated squaring (exact for ``n = 2``, defined for
        negative values), any other float exponent uses Metal's ``pow``."""
        return self._interface._ops_for().binary("**", self, other)

    def __rpow__(self, other):
        return self._interface._ops_for().binary("**", self, other, reflected=True)

    def __neg__(self):
        return self._interface._ops_for().negative(self)

    def __pos__(self):
        return self._interface._ops_for().copy(self)

    def __abs__(self):
        return self._interface._ops_for().unary("abs", self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """numpy's ufuncs: those metalgpu has kernels for run on the device (``np.sqrt(b)``, ``array * b``);
        any other raises ArgumentError instead of computing on the host."""
        from .ops import array_ufunc

        return array_ufunc(self, ufunc, method, inputs, kwargs)

    def astype(self, type_: Any) -> "Buffer":
        """A new shared buffer holding this one's values converted to ``type_`` (a Metal type name, numpy or
        ctypes type) as C++'s ``static_cast`` converts them (floats to integers truncate toward zero), computed
        on the device.

        Raises ArgumentError for a type with other lanes (``float`` to ``float4``) or a struct,
        BufferReleasedError once released.

        Example: ``gpu.array_to_buffer(np.array([1.5, -2.7], np.float32)).astype("int").read()`` is ``[1, -2]``.
        """
        return self._interface._ops_for().cast(self, type_)

    def __repr__(self) -> str:
        state = "released" if self.released else f"{self.nbytes} bytes"
        return f"<metalgpu.Buffer {self.count} x {self.metal_type.name}, {self.storage}, {state}>"
