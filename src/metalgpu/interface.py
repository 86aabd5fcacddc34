"""Interface: one device and one queue, the object users drive (the original metalgpu API, kept)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .backends import open_backend
from .backends.base import CompileOptions, simdgroup_float_mode
from .batch import Batch
from .buffer import Buffer
from .cache import CompileCache
from .constant_plans import DispatchPlans
from .dispatch import Dispatch, build_plan, check_timeout, name_batch_dispatch
from .errors import ArgumentError, BufferReleasedError, MetalError
from .library import Function, Library, is_struct_value, read_source
from .types import metal_type_of_array, resolve_type

STORAGES = ("shared", "private")


class Interface:
    """One device and one queue: load shaders, make buffers and run kernels on them.

    The current function (:meth:`set_function`) is state of the Interface, shared by every thread that uses it;
    threads that dispatch different kernels through one Interface name them: ``run_function(...,
    function_name=)``. Use it as a context manager, or call :meth:`close`, to release the device.

    Args:
        backend: ``"cuda"``, ``"cpu"`` or ``"metal"`` (not in this release), or None: ``$METALGPU_BACKEND`` if
            set, else the best that works here (cuda where an NVIDIA GPU and driver answer, else cpu).
        device: which device of the backend, counted from 0 (cuda: the GPU's index).
        debug: check every buffer access against the buffer's length (also ``METALGPU_DEBUG=1``); an access
            outside raises :class:`DispatchError` naming the parameter. Slower; for finding bugs.
        timeout: seconds after which a running kernel is stopped with :class:`DispatchError`, unless
            :meth:`run_function` gives its own. Enforced on the cpu backend only: a GPU kernel cannot be stopped.
        simdgroup_float: how float SIMD-group matrix products run on CUDA tensor cores (also
            ``$METALGPU_SIMDGROUP_FLOAT``): ``"3xtf32"`` (the default: float accuracy), ``"tf32"`` (faster, 11
            significant bits) or ``"exact"`` (warp shuffles, no tensor cores); see the differences page.
        isolate: the cpu backend with kernels run in a sandboxed worker process, buffers still zero-copy
            (docs/security.md); with another backend an :class:`ArgumentError`.

    Raises:
        BackendUnavailableError: the backend asked for cannot run here (no driver, no compiler, the extra not
            installed, not in this release); the message says why. With ``backend=None``: none works.
        ArgumentError: ``backend`` is not a str or None, ``timeout`` is not a positive number, or
            ``simdgroup_float`` is not one of its modes.

    Example:
        >>> import metalgpu
        >>> with metalgpu.Interface() as gpu:
        ...     gpu.load_shader_from_str('''kernel void add(device const float* a [[buffer(0)]],
        ...         device const float* b [[buffer(1)]], device float* out [[buffer(2)]],
        ...         uint i [[thread_position_in_grid]]) { out[i] = a[i] + b[i]; }''')
        ...     gpu.set_function("add")
        ...     a = gpu.array_to_buffer([0.0, 1.0, 2.0, 3.0])     # float32
        ...     out = gpu.create_buffer(4, "float")
        ...     gpu.run_function(4, [a, a, out])
        ...     print(out.contents)
        [0. 2. 4. 6.]
    """

    def __init__(self, backend: str | None = None, device: int = 0, debug: bool = False,
                 timeout: float | None = None, simdgroup_float: str | None = None, isolate: bool = False):
        self.timeout = check_timeout(timeout)
        simdgroup_float = simdgroup_float_mode(simdgroup_float)
        if backend is not None and not isinstance(backend, str):
            raise ArgumentError(f"backend must be a name ('metal', 'cuda' or 'cpu') or None, not "
                                f"{type(backend).__name__}")
        self.debug = bool(debug or os.environ.get("METALGPU_DEBUG", "") not in ("", "0"))
        self._cache = CompileCache()
        self._backend = open_backend(backend, device, self._cache, self.debug, bool(isolate))
        self._options = CompileOptions(debug=self.debug, simdgroup_float=simdgroup_float)
        self._library: Library | None = None
        self._function: Function | None = None
        self._functions: dict[tuple, Function] = {}
        self._plans = DispatchPlans(Buffer)  # recent dispatches, see _dispatch()
        self._compiled_plans = self._plans.compiled_state  # what the compiled paths look plans up in
        self._recording: Batch | None = None  # the batch being recorded (batch())
        self._ops = None
        self._closed = False

    # -- shaders ---------------------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The name of the backend this Interface runs on, ``"cuda"`` or ``"cpu"``.

        Example:
            >>> import metalgpu; metalgpu.Interface(backend="cpu").backend
            'cpu'
        """
        return self._backend.name

    def load_shader(self, path: str | os.PathLike, include_dirs: Sequence[str | os.PathLike] = ()) -> None:
        """Compile a ``.metal`` file, replacing the shader loaded before (and the current function).

        ``#include "x.h"`` resolves next to the file and in ``include_dirs``, nowhere else. A library of up to 16
        kernels compiles whole now; a bigger one (MLX's, ggml's) is parsed now and each kernel compiled when
        :meth:`set_function` first asks for it. Binaries are cached on disk for every later load, in any process.

        Args:
            path: the shader file (a str or path-like), UTF-8 text.
            include_dirs: more folders (or one folder) for ``#include "..."``.

        Raises:
            ShaderCompileError: the shader does not compile (or cannot be decoded as UTF-8); the message and
                ``.diagnostics`` point at the user's file, line and column.
            ArgumentError: the file cannot be read, ``path`` is not a path, or an include folder does not exist.

        Example:
            >>> import pathlib, tempfile, metalgpu
            >>> path = pathlib.Path(tempfile.mkdtemp()) / "add1.metal"
            >>> _ = path.write_text("kernel void add1(device int* x, uint i [[thread_position_in_grid]]) { x[i]++; }")
            >>> gpu = metalgpu.Interface()
            >>> gpu.load_shader(path)
            >>> gpu.function_names
            ['add1']
        """
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
        """Compile shader source text, replacing the shader loaded before (and the current function).

        As :meth:`load_shader`, for text; ``#include "x.h"`` resolves in the working directory.
        ``load_shader_from_string`` is the same method (a later release of the original metalgpu's name).

        Args:
            source: the Metal Shading Language source.

        Raises:
            ShaderCompileError: the source does not compile; ``str(error)`` shows the first errors as
                ``<string>:line:column`` with the line and a caret, ``.diagnostics`` has every message.
            ArgumentError: ``source`` is not a str.

        Example:
            >>> import metalgpu
            >>> gpu = metalgpu.Interface()
            >>> gpu.load_shader_from_str("kernel void k(device float* x [[buffer(0)]]) { x[0] = oops; }")
            Traceback (most recent call last):
            metalgpu.errors.ShaderCompileError: <string>:1:55: error: ...
        """
        if not isinstance(source, str):
            raise ArgumentError(f"shader source must be a str, not {type(source).__name__}")
        self._set_library(Library(self._backend, self._cache, self._options, source, "<string>", (os.getcwd(),)))

    load_shader_from_string = load_shader_from_str  # the name a later release of the original used

    def _set_library(self, library: Library) -> None:
        self._check_open()
        if not library.function_names:  # Metal makes such a library too; there is nothing to set_function
            warnings.warn(f"{library.filename}: the shader declares no kernels (no `kernel void` function)",
                          UserWarning, stacklevel=3)
        self._library, self._function, self._functions = library, None, {}

    @property
    def function_names(self) -> list[str]:
        """The names of the loaded shader's kernels, as :meth:`set_function` takes them (a template's
        ``[[host_name("...")]]`` instantiations by their host names); ``[]`` before a shader is loaded.

        Example:
            >>> import metalgpu
            >>> gpu = metalgpu.Interface()
            >>> gpu.load_shader_from_str("kernel void one(device int* x) { x[0] = 1; } kernel void two() {}")
            >>> gpu.function_names
            ['one', 'two']
        """
        return self._library.function_names if self._library else []

    def set_function(self, name: str, constants: dict[Any, Any] | None = None) -> None:
        """Select the kernel that :meth:`run_function` dispatches (until the next call, or the next shader).

        Args:
            name: the kernel's (host) name, one of :attr:`function_names`.
            constants: values of ``[[function_constant(i)]]`` constants, by index or name (``{0: 4, "bias":
                True}``); each set of values compiles its own kernel, once. Constants not given are undefined.

        Raises:
            FunctionNotFoundError: no kernel of that name; the message lists the kernels the shader has.
            ArgumentError: ``constants`` is not a dict, or names a constant the shader does not declare.
            ShaderCompileError: the kernel fails to compile (a big library's kernels compile here).
            MetalError: no shader is loaded, or the Interface was closed.

        Example:
            >>> import metalgpu
            >>> gpu = metalgpu.Interface()
            >>> gpu.load_shader_from_str('''constant int power [[function_constant(0)]];
            ... kernel void pow_n(device float* x, uint i [[thread_position_in_grid]]) {
            ...     float y = 1.0f;
            ...     for (int k = 0; k < power; ++k) y *= x[i];
            ...     x[i] = y;
            ... }''')
            >>> gpu.set_function("pow_n", constants={"power": 3})
            >>> x = gpu.array_to_buffer([1.0, 2.0, 3.0])
            >>> gpu.run_function(3, [x])
            >>> x.contents
            array([ 1.,  8., 27.], dtype=float32)
        """
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
        """The numpy structured dtype of a struct the loaded shader declares, with Metal's member offsets,
        padding and size (``float3`` members take 16 bytes, as in Metal). ``np.zeros((), dtype)`` makes a value
        to pass for a ``constant Params&`` parameter; a dict of the fields passed there is packed through it.

        Args:
            name: the struct's name as the shader spells it: ``"Params"``, ``"ns::Params"``, ``"Conv<2>"``.

        Raises:
            ArgumentError: no such struct, or one whose layout has no numpy form (bit-fields, variadic templates).
            MetalError: no shader is loaded.

        Example:
            >>> import metalgpu
            >>> gpu = metalgpu.Interface()
            >>> gpu.load_shader_from_str('''#include <metal_stdlib>
            ... struct Params { metal::float3 origin; uint count; };
            ... kernel void k(constant Params& p [[buffer(0)]], device float* out [[buffer(1)]]) {
            ...     out[0] = p.origin.y * p.count;
            ... }''')
            >>> dtype = gpu.struct_dtype("Params")
            >>> dtype.itemsize, dtype.fields["count"][1]
            (32, 16)
            >>> out = gpu.create_buffer(1, "float")
            >>> gpu.run_function(1, [{"origin": [0.0, 1.5, 0.0], "count": 4}, out], "k")
            >>> float(out.contents[0])
            6.0
        """
        self._check_open()
        if self._library is None:
            raise MetalError("no shader is loaded: call load_shader() or load_shader_from_str() first")
        if not isinstance(name, str):
            raise ArgumentError(f"struct_dtype takes the struct's name as a str, not {type(name).__name__}")
        return self._library.structs.dtype(name)

    def threadExecutionWidth(self) -> int:
        """The SIMD-group width of the current function, Metal's ``threadExecutionWidth``: 32 on every backend
        (-1 when no function is set, as in the original metalgpu).

        Example:
            >>> import metalgpu
            >>> gpu = metalgpu.Interface()
            >>> gpu.load_shader_from_str("kernel void k(device float* x [[buffer(0)]]) { x[0] = 1.0f; }")
            >>> gpu.threadExecutionWidth(), gpu.set_function("k"), gpu.threadExecutionWidth()
            (-1, None, 32)
        """
        return self._function.thread_execution_width if self._function else -1

    def maxThreadsPerGroup(self) -> int:
        """The most threads a threadgroup of the current function may have, Metal's
        ``maxTotalThreadsPerThreadgroup`` (-1 when no function is set).

        1024 on the cpu backend; on cuda the device's limit, lowered by the kernel's registers; at most N where
        the kernel declares ``[[max_total_threads_per_threadgroup(N)]]``. A larger threadgroup is an ArgumentError.

        Example:
            >>> import metalgpu
            >>> gpu = metalgpu.Interface(backend="cpu")
            >>> gpu.load_shader_from_str('''[[max_total_threads_per_threadgroup(256)]]
            ... kernel void k(device float* x [[buffer(0)]]) { x[0] = 1.0f; }''')
            >>> gpu.set_function("k"), gpu.maxThreadsPerGroup()
            (None, 256)
        """
        return self._function.max_threads if self._function else -1

    # -- buffers ---------------------------------------------------------------------------------------------
    def create_buffer(self, count: int, type: Any, storage: str = "shared") -> Buffer:
        """A new buffer of ``count`` elements, zero-filled.

        Args:
            count: the number of elements (not bytes), at least 1.
            type: a Metal type name (``"float"``, ``"int"``, ``"half"`` (float16), ``"bfloat"``, ``"float4"``,
                ``"packed_float3"``, ...), a numpy dtype or scalar type (a structured dtype for structs), or a
                ctypes type (``ctypes.c_int``). Metal has no 64-bit float: ``np.float64`` raises.
            storage: ``"shared"``: memory the CPU sees too, ``contents`` a zero-copy numpy view; ``"private"``:
                device-only memory (on cuda, faster), copied with ``read()`` and ``write()``.

        Raises:
            ArgumentError: ``count`` is not a positive int, ``type`` names no Metal type, or ``storage`` is
                neither ``"shared"`` nor ``"private"``.
            OutOfMemoryError: the device has not that much free memory; the message says what is free.

        Example:
            >>> import ctypes
            >>> import metalgpu
            >>> gpu = metalgpu.Interface()
            >>> gpu.create_buffer(3, ctypes.c_int).contents
            array([0, 0, 0], dtype=int32)
            >>> gpu.create_buffer(2, "float4").contents.shape, gpu.create_buffer(8, "half", "private").read().dtype
            ((2, 4), dtype('float16'))
        """
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
        """A new shared buffer holding a copy of ``array``, with its dtype and shape (``contents`` keeps it). A
        list of Python ints becomes int32 (int64 if a value needs it), of floats float32: Metal has no double.

        Args:
            array: a numpy array (any shape, a Metal element type) or a (nested) list of numbers.

        Raises:
            ArgumentError: the array is empty, ragged, or of a dtype Metal has not (``float64``: convert it with
                ``.astype(np.float32)``).

        Example:
            >>> import numpy as np
            >>> import metalgpu
            >>> gpu = metalgpu.Interface()
            >>> gpu.array_to_buffer(np.ones((2, 3), dtype=np.float16)).contents
            array([[1., 1., 1.],
                   [1., 1., 1.]], dtype=float16)
            >>> gpu.array_to_buffer([1, 2, 3]).dtype
            dtype('int32')
        """
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
        """Run the current (or named) kernel over ``grid`` threads, with Metal's ``dispatchThreads`` semantics.

        **The grid counts threads**, not threadgroups: ``run_function(1000, ...)`` starts 1000 threads, thread
        ``i`` at ``[[thread_position_in_grid]]`` ``i``. Where the grid is not a multiple of the threadgroup size,
        **the last threadgroup in each dimension is partial**: it holds only the threads inside the grid (its
        ``[[threads_per_threadgroup]]`` says how many). Kernels that share tiles in threadgroup memory must allow
        for it, or be given a grid rounded up to whole threadgroups.

        **Default threadgroup size** (``threads_per_threadgroup=None``): up to P threads, x first, then y, then z
        (``x = min(grid width, P)``, ``y = min(grid height, P // x)``, ``z = min(grid depth, P // (x * y))``). P is
        :meth:`maxThreadsPerGroup` (1024, or the kernel's ``[[max_total_threads_per_threadgroup]]``), on cuda at
        most what NVIDIA's occupancy calculator suggests for the kernel (at most 256). A 1-D grid of 100,000
        threads on the cpu backend runs in threadgroups of 1024 (the last one 672 threads); a ``(100, 100)``
        grid in threadgroups of ``(100, 10, 1)``. Give a size whenever the kernel depends on it (threadgroup
        memory, barriers, SIMD-group functions).

        Args:
            grid: the number of threads: an int ``n`` (``(n, 1, 1)``), ``(width, height)``,
                ``(width, height, depth)`` or a :class:`MetalSize`.
            buffers: ``buffers[i]`` binds the ``[[buffer(i)]]`` parameter: a :class:`Buffer` of this Interface
                (element types as docs/buffer-types.md says), ``None`` to skip a slot, or for a ``constant`` or
                ``const`` parameter a value converted to its declared type: a number or bool, a numpy array,
                ``bytes``, a dict of a struct's fields.
            function_name: run this kernel instead of the current function (without changing it); thread-safe.
            wait_for_completion: True (the default) returns when the kernel has finished; False returns at once
                with a :class:`Dispatch` handle.
            threads_per_threadgroup: the threadgroup size, an int or a tuple of 1 to 3 ints; at most
                :meth:`maxThreadsPerGroup` threads in all. None picks the default above.
            threadgroup_memory: ``{i: nbytes}`` for each ``threadgroup T* p [[threadgroup(i)]]`` parameter, at
                most 32 KiB a threadgroup in all (``threadgroup`` variables in the body need nothing here).
            timeout: seconds after which the running kernel is stopped with :class:`DispatchError` (default: the
                Interface's); cpu backend only. Ctrl-C during a synchronous dispatch raises KeyboardInterrupt.

        Returns:
            None once the kernel has finished; with ``wait_for_completion=False``, a :class:`Dispatch`.

        Raises:
            ArgumentError: the buffers do not fit the kernel's signature (a slot missing or extra, a buffer too
                small or of another element type, a value for a writable parameter), a size is not positive or
                over the kernel's limit, or threadgroup memory is missing or too large. Nothing has run.
            BufferReleasedError: a buffer was released.
            DispatchError: the kernel faulted or ran past ``timeout``; the message says whether the Interface is
                still usable (on cuda a fault is fatal for the process's GPU context).
            MetalError: no function is set and none is named, or the Interface was closed.

        Example:
            >>> import numpy as np
            >>> import metalgpu
            >>> gpu = metalgpu.Interface()
            >>> gpu.load_shader_from_str('''kernel void group_sizes(device uint* out [[buffer(0)]],
            ...     uint i [[thread_position_in_grid]], uint size [[threads_per_threadgroup]]) { out[i] = size; }''')
            >>> out = gpu.create_buffer(10, "uint")
            >>> gpu.run_function(10, [out], "group_sizes", threads_per_threadgroup=4)
            >>> out.contents                     # the third threadgroup is partial: 2 threads
            array([4, 4, 4, 4, 4, 4, 4, 4, 2, 2], dtype=uint32)
            >>> handle = gpu.run_function(10, [out], "group_sizes", wait_for_completion=False)
            >>> handle.wait()
            >>> int(out.contents[0])             # the default: one threadgroup of 10
            10
        """
        # A backend may repeat a cached dispatch with default sizes in compiled code (Backend.compiled_repeat, and
        # compiled_submit for an asynchronous one); False or None sends it down the Python path below.
        if function_name is None and threads_per_threadgroup is None and threadgroup_memory is None \
                and timeout is None and self.timeout is None and self._recording is None:
            fast = self._backend.compiled_repeat if wait_for_completion else self._backend.compiled_submit
            done = fast is not None and fast(self._compiled_plans, self._function, grid, buffers)
            if done:  # True, or the Dispatch of an asynchronous one
                return None if wait_for_completion else done
        timeout = self.timeout if timeout is None else check_timeout(timeout)
        if function_name is not None:
            try:
                function = self._lookup(function_name)
            except MetalError as error:
                recording = self._recording
                if recording is not None and recording.records():
                    name_batch_dispatch(error, len(recording), function_name)
                raise
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
        """Run a kernel. A repeat of a recent dispatch (same kernel, sizes, argument objects) reuses its plan, one that
        differs only in constant values its checks (constant_plans.py). The repeat path is kept to a few operations."""
        self._check_open()
        recording = self._recording
        if recording is not None and recording.records():
            return recording.record(function, grid, buffers, wait, threads_per_threadgroup, threadgroup_memory, timeout)
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
        """The plan of a dispatch not found under ``key``: a recent one's whose arguments differ only in constant
        values, with these values packed (constant_plans.py); else checked and packed whole, and cached."""
        kinds, template = self._plans.find_like(function, grid, threads_per_threadgroup, threadgroup_memory, buffers)
        arguments, buffer_types = buffers, []
        if isinstance(buffers, (list, tuple)):
            if any(map(is_struct_value, buffers)):
                arguments = self._library.struct_arguments(function, buffers)
            if template is not None:
                return template.with_values(arguments)
            arguments = [self._memory_of(value, index, function) if isinstance(value, Buffer) else value
                         for index, value in enumerate(arguments)]
            buffer_types = [value._element_type() if isinstance(value, Buffer) else None for value in buffers]
        plan = build_plan(function, arguments, grid, threads_per_threadgroup, threadgroup_memory,
                          self._backend.max_threadgroup_memory, buffer_types)
        if key is not None:
            self._plans.remember(key, kinds, function, plan, [value for value in buffers if isinstance(value, Buffer)])
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

    def batch(self, wait: bool = True) -> Batch:
        """A batch: ``with gpu.batch(): ...`` records the dispatches made in the block (run_function, and the
        elementwise operations) and runs them as one submission when it ends, waiting for them unless
        ``wait=False``. A CUDA graph on cuda (replayed when the same kernels are recorded again), one native call
        on the cpu. ``replay()`` runs it again. The rules of what may happen inside: docs/api.md, "Batches"."""
        self._check_open()
        return Batch(self, wait)

    def _start_batch(self, batch: Batch) -> None:
        if self._recording is not None:
            raise MetalError("a batch is already being recorded on this Interface; batches do not nest")
        self._recording = batch

    def _end_batch(self, batch: Batch) -> None:
        if self._recording is batch:
            self._recording = None

    def synchronize(self) -> None:
        """Wait for everything dispatched so far through this Interface.

        Raises:
            DispatchError: one of the dispatches faulted (or ran past its timeout).

        Example:
            >>> import metalgpu
            >>> gpu = metalgpu.Interface()
            >>> gpu.load_shader_from_str("kernel void k(device float* x [[buffer(0)]]) { x[0] = 1.0f; }")
            >>> x = gpu.create_buffer(1, "float")
            >>> handle = gpu.run_function(1, [x], "k", wait_for_completion=False)
            >>> gpu.synchronize(), handle.done
            (None, True)
        """
        self._backend.synchronize()

    # -- lifetime --------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Wait for pending work and release the device's resources; closing twice does nothing.

        Buffers made by the Interface stay readable until released; everything else raises :class:`MetalError`
        ("this Interface was closed") afterwards. ``with Interface() as gpu:`` closes at the end of the block.

        Example:
            >>> import metalgpu
            >>> gpu = metalgpu.Interface()
            >>> gpu.close()
            >>> gpu.create_buffer(1, "float")
            Traceback (most recent call last):
            metalgpu.errors.MetalError: this Interface was closed
        """
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

