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
    """``count`` elements of one Metal type on one device.

    ``contents`` is a numpy array over the buffer's own memory (``shared`` storage only); ``read()`` and
    ``write()`` copy, for any storage. ``release()`` frees the memory; any later use raises BufferReleasedError.
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
        return self.metal_type.name

    @property
    def nbytes(self) -> int:
        return self.count * self.metal_type.itemsize

    def __len__(self) -> int:
        return self.count

    def _element_type(self) -> BufferType:
        """What a kernel parameter bound to this buffer is checked against (dispatch.check_buffer_type)."""
        return BufferType(self.metal_type, self._shape[-1] if self._shape else None)

    def view(self, type_: Any) -> "Buffer":
        """The same memory as elements of ``type_`` (a Metal type name, numpy or ctypes type), no copy: the
        explicit way to bind a buffer to a parameter of another element type. Writes through either show in
        both. The memory is freed when the last of the buffer and its views is released or collected."""
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
        return self._allocation is None

    @property
    def interface_backend(self) -> "Backend":
        return self._interface._backend

    @property
    def address(self) -> int:
        return self._live().address

    # -- access ----------------------------------------------------------------------------------------------
    @property
    def contents(self) -> np.ndarray:
        """The buffer's memory as a numpy array, no copy: writing it writes the buffer."""
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
        array = self.contents
        return array if dtype is None else array.astype(dtype)

    def read(self) -> np.ndarray:
        """A copy of the buffer's elements, shaped like ``contents``."""
        allocation = self._live()
        if self._interface._recording is not None:
            self._interface._recording.check_host_access(self, False, "read()")
        self._wait_pending()
        raw = self.interface_backend.copy_out(allocation) if allocation.host is None else allocation.host
        return self._shaped(contents_view(raw, self.count, self.metal_type).copy())

    def write(self, array: Any) -> None:
        """Copy ``array`` (same number of values, converted to the buffer's type) into the buffer."""
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
        """Free the memory now (after any dispatch still using it). Idempotent."""
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
        return self.contents.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
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

    # -- elementwise operations on the device (the original's later API) --------------------------------------
    def __add__(self, other):
        return self._interface._ops_for().binary("+", self, other)

    def __sub__(self, other):
        return self._interface._ops_for().binary("-", self, other)

    def __mul__(self, other):
        return self._interface._ops_for().binary("*", self, other)

    def __truediv__(self, other):
        return self._interface._ops_for().binary("/", self, other)

    def astype(self, type_: Any) -> "Buffer":
        """A new buffer holding this one's values converted to ``type_``, computed on the device."""
        return self._interface._ops_for().cast(self, type_)

    def __repr__(self) -> str:
        state = "released" if self.released else f"{self.nbytes} bytes"
        return f"<metalgpu.Buffer {self.count} x {self.metal_type.name}, {self.storage}, {state}>"
