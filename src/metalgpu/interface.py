"""Interface: one device and one queue, the object users drive (the original metalgpu API, kept)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .backends import open_backend
from .backends.base import CompileOptions
from .buffer import Buffer
from .cache import CompileCache
from .dispatch import Dispatch, PlanCache, build_plan
from .errors import ArgumentError, BufferReleasedError, MetalError
from .library import Function, Library, read_source
from .msl.structs import pack_struct
from .types import metal_type_of_array, resolve_type

STORAGES = ("shared", "private")


class Interface:
    """One device, one queue. ``backend`` is "metal", "cuda", "cpu" or None (``$METALGPU_BACKEND``, else the
    best available). ``debug=True`` (or ``METALGPU_DEBUG=1``) asks for bounds-checked buffer accesses.
    ``timeout``: seconds after which a running kernel is stopped with DispatchError, unless run_function gives its
    own (the cpu backend; a GPU kernel cannot be stopped, see docs/api.md).

    The current function (set_function) is state of the Interface, shared by every thread that uses it; threads
    that dispatch different kernels through one Interface name them: ``run_function(..., function_name=)``."""

    def __init__(self, backend: str | None = None, device: int = 0, debug: bool = False,
                 timeout: float | None = None):
        self.timeout = _check_timeout(timeout)
        if backend is not None and not isinstance(backend, str):
            raise ArgumentError(f"backend must be a name ('metal', 'cuda' or 'cpu') or None, not "
                                f"{type(backend).__name__}")
        self.debug = bool(debug or os.environ.get("METALGPU_DEBUG", "") not in ("", "0"))
        self._cache = CompileCache()
        self._backend = open_backend(backend, device, self._cache, self.debug)
        self._options = CompileOptions(debug=self.debug)
        self._library: Library | None = None
        self._function: Function | None = None
        self._functions: dict[tuple, Function] = {}
        self._plans = PlanCache()  # recent dispatches, see _dispatch()
        self._ops = None
        self._closed = False

    # -- shaders ---------------------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self._backend.name

    def load_shader(self, path: str | os.PathLike, include_dirs: Sequence[str | os.PathLike] = ()) -> None:
        """Compile a .metal file; ``#include "x.h"`` resolves next to it and in ``include_dirs``, nowhere else.
        A big library is parsed now and each kernel compiled when set_function first asks for it."""
        if not isinstance(path, (str, os.PathLike)):
            raise ArgumentError(f"the shader path must be a str or a path, not {type(path).__name__}")
        path = Path(path)
        text = read_source(path)
        if isinstance(include_dirs, (str, os.PathLike)):
            include_dirs = (include_dirs,)
        folders = [path.resolve().parent]
        for folder in include_dirs:
            if not isinstance(folder, (str, os.PathLike)):
                raise ArgumentError(f"include_dirs must hold folder paths (str or path), not {type(folder).__name__}")
            folder = Path(folder)
            if not folder.is_dir():
                raise ArgumentError(f"include folder {str(folder)!r} does not exist")
            folders.append(folder.resolve())
        self._set_library(Library(self._backend, self._cache, self._options, text, str(path),
                                  tuple(dict.fromkeys(str(folder) for folder in folders))))

    def load_shader_from_str(self, source: str) -> None:
        """Compile shader source text (``#include "x.h"`` resolves against the working directory)."""
        if not isinstance(source, str):
            raise ArgumentError(f"shader source must be a str, not {type(source).__name__}")
        self._set_library(Library(self._backend, self._cache, self._options, source, "<string>", (os.getcwd(),)))

    load_shader_from_string = load_shader_from_str  # the name a later release of the original used

    def _set_library(self, library: Library) -> None:
        self._check_open()
        self._library, self._function, self._functions = library, None, {}

    @property
    def function_names(self) -> list[str]:
        """The kernels (host names) of the loaded shader."""
        return self._library.function_names if self._library else []

    def set_function(self, name: str, constants: dict[Any, Any] | None = None) -> None:
        """Select the kernel ``run_function`` dispatches; ``constants`` sets [[function_constant]] values."""
        self._function = self._lookup(name, constants)

    def _lookup(self, name: str, constants: dict[Any, Any] | None = None) -> Function:
        self._check_open()
        if self._library is None:
            raise MetalError("no shader is loaded: call load_shader() or load_shader_from_str() first")
        if not isinstance(name, str):
            raise ArgumentError(f"the kernel name must be a str, not {type(name).__name__}")
        if constants is not None and not isinstance(constants, dict):
            raise ArgumentError(f"constants must be a dict of function constant index or name to value, not "
                                f"{type(constants).__name__}")
        key = (name, tuple(sorted((str(k), repr(v)) for k, v in (constants or {}).items())))
        if key not in self._functions:
            self._functions[key] = self._library.function(name, constants)
        return self._functions[key]

    def struct_dtype(self, name: str) -> np.dtype:
        """The numpy structured dtype of a struct the loaded shader declares (``"Params"``, ``"ns::Params"``,
        ``"Conv<2>"``), with Metal's member offsets, padding and size. ``np.zeros((), dtype)`` makes a value to
        fill and pass for a ``constant Params&`` parameter; a dict of its fields is packed through it."""
        self._check_open()
        if self._library is None:
            raise MetalError("no shader is loaded: call load_shader() or load_shader_from_str() first")
        if not isinstance(name, str):
            raise ArgumentError(f"struct_dtype takes the struct's name as a str, not {type(name).__name__}")
        return self._library.structs.dtype(name)

    def _struct_arguments(self, function: Function, buffers: Sequence[Any]) -> list[Any]:
        """``buffers`` with every dict (or list of dicts, for an array) packed into the struct its parameter
        declares."""
        packed = list(buffers)
        for binding in function.bindings:
            if binding.kind != "buffer" or binding.index >= len(packed) or not _is_struct_value(packed[binding.index]):
                continue
            param = function.decl.params[binding.param]
            where = function.describe_param(binding)
            scope = tuple(function.decl.name.split("::")[:-1])
            type_text = param.type_text.rstrip("&* ")
            layout = self._library.structs.layout_of(type_text, scope)
            if layout.size != binding.elem_size:
                raise ArgumentError(f"{where}: the compiler made it {binding.elem_size} bytes, but struct_dtype "
                                    f"lays it out in {layout.size}; pass bytes or a numpy value instead")
            value = packed[binding.index]
            if type(value) is dict:
                packed[binding.index] = pack_struct(layout.dtype, value, where)
            else:
                packed[binding.index] = np.stack([pack_struct(layout.dtype, item, f"{where}[{i}]")
                                                  for i, item in enumerate(value)])
        return packed

    def threadExecutionWidth(self) -> int:
        """SIMD width of the current function: 32 on every backend (-1 when no function is set, as before)."""
        return self._function.thread_execution_width if self._function else -1

    def maxThreadsPerGroup(self) -> int:
        """Most threads a threadgroup of the current function may have (-1 when no function is set)."""
        return self._function.max_threads if self._function else -1

    # -- buffers ---------------------------------------------------------------------------------------------
    def create_buffer(self, count: int, type: Any, storage: str = "shared") -> Buffer:
        """A buffer of ``count`` elements of ``type`` (ctypes type, numpy dtype or Metal type name)."""
        return self._new_buffer(count, type, storage)

    def _new_buffer(self, count: int, type: Any, storage: str = "shared",
                    shape: tuple[int, ...] | None = None) -> Buffer:
        """create_buffer(); ``shape`` is the shape ``contents`` takes (array_to_buffer keeps the array's)."""
        self._check_open()
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count <= 0:
            raise ArgumentError(f"count must be a positive int (elements, not bytes), got {count!r}")
        if storage not in STORAGES:
            raise ArgumentError(f"storage must be one of {STORAGES}, not {storage!r}")
        mtype = resolve_type(type)
        allocation = self._backend.allocate(int(count) * mtype.itemsize, storage)
        return Buffer(self, allocation, mtype, int(count), storage, shape)

    def array_to_buffer(self, array: Any) -> Buffer:
        """A new shared buffer holding a copy of ``array``: a numpy array keeps its dtype; a list of Python ints
        becomes int32 (int64 if a value needs it) and a list of Python floats float32, as Metal has no double."""
        values = _as_array(array, "array_to_buffer")
        if not isinstance(array, np.ndarray):
            if values.dtype.kind == "i" and values.size and -2**31 <= values.min() and values.max() < 2**31:
                values = values.astype(np.int32)
            elif values.dtype.kind == "f":
                values = values.astype(np.float32)
        if values.size == 0:
            raise ArgumentError("array_to_buffer needs at least one element")
        mtype = metal_type_of_array(values)
        buffer = self._new_buffer(values.size, values.dtype if mtype.name == "struct" else mtype.name,
                                  shape=values.shape if values.ndim > 1 else None)
        buffer.write(values.reshape(-1))
        return buffer

    # -- running ---------------------------------------------------------------------------------------------
    def run_function(self, grid: Any, buffers: Sequence[Any], function_name: str | None = None,
                     wait_for_completion: bool = True, *, threads_per_threadgroup: Any = None,
                     threadgroup_memory: dict[int, int] | None = None,
                     timeout: float | None = None) -> Dispatch | None:
        """Dispatch the current (or named) kernel over ``grid`` threads; ``buffers[i]`` binds [[buffer(i)]].
        ``timeout``: seconds after which the running kernel is stopped with DispatchError (default: the
        Interface's). Ctrl-C during a synchronous dispatch stops the kernel and raises KeyboardInterrupt."""
        # A backend may repeat a cached synchronous dispatch with default sizes in compiled code (Backend.
        # compiled_repeat); False sends it down the Python path below.
        repeat = self._backend.compiled_repeat
        if repeat is not None and function_name is None and wait_for_completion and threads_per_threadgroup is None \
                and threadgroup_memory is None and timeout is None and self.timeout is None \
                and repeat(self._plans.table, self._function, grid, buffers):
            return None
        timeout = self.timeout if timeout is None else _check_timeout(timeout)
        if function_name is not None:
            function = self._lookup(function_name)
        else:
            function = self._function
            if function is None:
                raise MetalError("no function is set: call set_function(name) or pass function_name=")
        dispatch = self._dispatch(function, grid, buffers, wait_for_completion, threads_per_threadgroup,
                                  threadgroup_memory, timeout)
        return None if wait_for_completion else dispatch

    def _dispatch(self, function: Function, grid: Any, buffers: Sequence[Any], wait: bool = True,
                  threads_per_threadgroup: Any = None, threadgroup_memory: dict[int, int] | None = None,
                  timeout: float | None = None) -> Dispatch:
        """Run a kernel. A dispatch that repeats a recent one (same kernel, sizes and buffer objects, no constant
        values) reuses its checked, packed plan (dispatch.PlanCache): a loop of run_function calls checks its
        arguments once. Every line of the repeat path runs on each dispatch, so it is kept to a few operations."""
        self._check_open()
        key, plan = self._plans.find(function, grid, threads_per_threadgroup, threadgroup_memory, buffers)
        if plan is None:
            plan = self._new_plan(key, function, buffers, grid, threads_per_threadgroup, threadgroup_memory)
        if timeout is not None and getattr(self._backend, "supports_timeout", False):
            dispatch = self._backend.launch(function.module, function.index, plan, wait, timeout)
        else:  # a GPU kernel cannot be stopped: docs/api.md, "Kernels that run away"
            dispatch = self._backend.launch(function.module, function.index, plan, wait)
        if not wait:
            for value in buffers:
                if isinstance(value, Buffer):
                    value._pending = dispatch
        return dispatch

    def _new_plan(self, key: tuple | None, function: Function, buffers: Sequence[Any], grid: Any,
                  threads_per_threadgroup: Any, threadgroup_memory: dict[int, int] | None):
        """Check and pack a dispatch, and cache its plan under ``key`` unless it packs constant values (they are
        packed anew every time)."""
        arguments, buffer_types = buffers, []
        if isinstance(buffers, (list, tuple)):
            if any(_is_struct_value(value) for value in buffers):
                arguments = self._struct_arguments(function, buffers)
            arguments = [self._memory_of(value, index, function) if isinstance(value, Buffer) else value
                         for index, value in enumerate(arguments)]
            buffer_types = [value._element_type() if isinstance(value, Buffer) else None for value in buffers]
        plan = build_plan(function, arguments, grid, threads_per_threadgroup, threadgroup_memory,
                          self._backend.max_threadgroup_memory, buffer_types)
        if key is not None and not plan.constants:
            self._plans.store(key, plan, [value for value in buffers if isinstance(value, Buffer)])
        return plan

    def _memory_of(self, buffer: Buffer, index: int, function: Function):
        """The allocation of a Buffer given for slot ``index``: it must be alive and of this Interface's device."""
        if buffer.released:
            raise BufferReleasedError(f"{function.describe_slot(index)}: the buffer was released")
        if buffer.interface_backend is not self._backend:
            raise ArgumentError(f"{function.describe_slot(index)}: the buffer belongs to another Interface's device")
        return buffer._allocation

    def _forget_plans(self) -> None:
        """A buffer of this Interface is being released: no cached plan may launch with it again."""
        self._plans.clear()

    def _ops_for(self):
        if self._ops is None:
            from .ops import Elementwise
            self._ops = Elementwise(self)
        return self._ops

    def synchronize(self) -> None:
        """Wait for everything dispatched so far; raises DispatchError if one of them faulted."""
        self._backend.synchronize()

    # -- lifetime --------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Wait for pending work and release the device's resources. Buffers stay readable until released."""
        if self._closed:
            return
        self._closed = True
        self._backend.close()  # waits for pending work; faults were reported by wait() or synchronize()

    def _check_open(self) -> None:
        if self._closed:
            raise MetalError("this Interface was closed")

    def __enter__(self) -> "Interface":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<metalgpu.Interface {self._backend.describe()}>"


def _as_array(values: Any, what: str) -> np.ndarray:
    """``values`` as a numpy array; a ragged nesting of lists raises ArgumentError."""
    try:
        return np.asarray(values)
    except (TypeError, ValueError) as error:
        raise ArgumentError(f"{what}: cannot make an array of the values given: {error}") from None


def _is_struct_value(value: Any) -> bool:
    """A dict of a struct's fields, or a non-empty list of them (an array of structs)."""
    return type(value) is dict or (type(value) is list and bool(value) and all(type(v) is dict for v in value))


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ArgumentError(f"timeout must be a positive number of seconds or None, not {timeout!r}")
    return None if timeout == float("inf") else float(timeout)  # infinity: never stopped, as None
