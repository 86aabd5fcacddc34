"""A shader library: its kernels, compiled for one target through the cache.

A library is preprocessed and parsed once, at load, or its index is read from the cache (library_index.py). A
small one (at most SMALL_LIBRARY_KERNELS kernels) then compiles whole, so that its errors surface at load, as
Metal's newLibraryWithSource reports them. A bigger one (ggml-metal.metal, MLX's binary.metal: hundreds or
thousands of template instantiations) compiles each kernel on first use, into a module of its own that holds only
that kernel, so loading it costs the front end and one kernel's compile, not every kernel's.

A kernel that fails only for itself fails only where Metal fails only its pipeline: at set_function. In a small
library that is an error of a pipeline's own limits (threadgroup memory over 32 KiB); every other error fails the
load. Function constants specialise: each distinct set of values is its own module, built on first use.
"""
from __future__ import annotations

import contextlib
import numbers
import os
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .backends.base import Backend, CompileOptions, CompilerFailed, Module
from .cache import CacheEntry, CompileCache
from .errors import ArgumentError, FunctionNotFoundError, ShaderCompileError, SourcePos
from .library_index import (
    ModulePointer,
    ProgramSummary,
    index_key,
    load_index,
    load_pointer,
    pointer_key,
    store_index,
    store_pointer,
)
from .msl.abi import BindingInfo, headers_checksum
from .msl.diagnostics import parse_log
from .msl.parser import KernelDecl, parse
from .msl.pipeline import ConstantUses, absent_params
from .msl.preprocess import preprocess
from .msl.structs import StructTable, pack_struct
from .msl.translate import Translator
from .progress import long_step

if TYPE_CHECKING:
    from .backends.base import Compiler

MODULE_FORMAT = "module-3"  # its meta names the function constants each kernel uses without a value
# Libraries with at most this many kernels compile whole at load (one compiler run, errors at load); bigger ones
# compile a kernel when set_function first asks for it. Our own and most hand-written libraries are small;
# production libraries (candle's files: 30 to 60 kernels; MLX's and ggml's: hundreds to thousands) are big.
SMALL_LIBRARY_KERNELS = 16
# Errors that belong to one kernel's pipeline rather than to the library: Metal reports them when that pipeline
# is made, and still makes the others.
PIPELINE_ERRORS = ("32 KiB a threadgroup has",)


def read_source(path: str | os.PathLike) -> str:
    """A shader file's text. A file that cannot be read raises ArgumentError; one that is not UTF-8 (Metal's
    source encoding) raises ShaderCompileError at its first bad byte: line, column and byte offset."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise ArgumentError(f"cannot read shader {str(path)!r}: {error.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        pos = SourcePos(str(path), data.count(b"\n", 0, error.start) + 1, error.start - line_start + 1)
        raise ShaderCompileError.at(pos, f"the file is not UTF-8 text: byte 0x{data[error.start]:02x} at offset "
                                         f"{error.start} cannot be decoded (save it as UTF-8)") from None


class Function:
    """One kernel of a compiled module, ready to dispatch, for one set of function-constant values: what
    ``Interface.set_function`` selects (internal; the Interface is the public face).

    Attributes:
        name: the kernel's host name.
        bindings: what the compiled module says of each bound parameter (kind, slot, element type and size).
        max_threads: the most threads a threadgroup may have (the backend's limit, the kernel's registers and its
            ``[[max_total_threads_per_threadgroup]]``): ``Interface.maxThreadsPerGroup()``.
        preferred_threads: the threadgroup size the default of ``run_function`` fills up to (1024 on the cpu
            backend, the occupancy calculator's suggestion of at most 256 on cuda), at most ``max_threads``.
        thread_execution_width: the SIMD-group width, 32.
        absent_slots: ``[[buffer(i)]]`` slots of parameters that a false function constant removed.
    """

    def __init__(self, backend: Backend, module: Module, index: int, decl: KernelDecl, bindings: list[BindingInfo],
                 absent: frozenset[int] = frozenset()):
        self.backend = backend
        self.module = module
        self.index = index
        self.decl = decl
        self.bindings = bindings
        self.name = decl.host_name
        # [[buffer(i)]] slots of parameters that a false function constant removed: nothing is bound or checked
        self.absent_slots = frozenset(decl.params[j].index for j in absent if decl.params[j].binding == "buffer")
        self.max_threads = module.max_threads(index) or backend.max_threads_per_group
        self.preferred_threads = min(self.max_threads, module.preferred_threads(index) or backend.preferred_group_size)
        self.thread_execution_width = backend.thread_execution_width

    def describe_param(self, binding: BindingInfo) -> str:
        param = self.decl.params[binding.param]
        attribute = f"[[{binding.kind}({binding.index})]]"
        return f"kernel '{self.name}' parameter '{param.name}' ({param.type_text} {attribute})"

    def describe_slot(self, index: int) -> str:
        """The parameter that binds buffers[index], or the slot itself where none does."""
        for binding in self.bindings:
            if binding.kind == "buffer" and binding.index == index:
                return self.describe_param(binding)
        return f"buffers[{index}]"

    def __repr__(self) -> str:
        return f"<metalgpu.Function {self.name!r}>"


class _FrontEnd:
    """The preprocessed and parsed library, and its translators: made only when something must be compiled."""

    def __init__(self, text: str, filename: str, include_dirs: tuple[str, ...]):
        self.pre = preprocess(text, filename, include_dirs)
        self.program = parse(self.pre.tokens, self.pre.sources)
        self._translators: dict[tuple[str, bool], Translator] = {}
        self._constant_uses: ConstantUses | None = None

    @property
    def constant_uses(self) -> ConstantUses:
        if self._constant_uses is None:
            self._constant_uses = ConstantUses(self.pre.tokens, self.program)
        return self._constant_uses

    def translator(self, target: str, check_bounds: bool) -> Translator:
        key = (target, check_bounds)
        if key not in self._translators:
            self._translators[key] = Translator(self.pre, self.program, target, check_bounds)
        return self._translators[key]


class Library:
    """The kernels of one shader source, compiled for one target. ``backend`` loads and runs them; without one
    (``compiler`` given instead) the library only compiles, as `metalgpu check` does."""

    def __init__(self, backend: Backend | None, cache: CompileCache, options: CompileOptions, text: str,
                 filename: str, include_dirs: tuple[str, ...] = (), *, compiler: Compiler | None = None):
        self._backend = backend
        self._compiler = compiler if compiler is not None else backend.compiler
        self._cache = cache
        self._options = options
        self._source = (text, filename, tuple(include_dirs))
        self._front: _FrontEnd | None = None
        key = index_key(text, filename, tuple(include_dirs))
        found = load_index(cache, key)
        if found is None:
            front = self.front_end()
            found = ProgramSummary.of(front.program), store_index(cache, key, front.program, front.pre.sources)
        summary, self._identity = found  # the identity of every file read: module pointers are found by it
        self._summary = summary
        self._index = {name: i for i, name in enumerate(summary.host_names)}
        self._modules: dict[tuple, Module] = {}                  # (kernels, constants) -> the module holding them
        self._by_kernel: dict[tuple, Module] = {}                # (kernel, constants) -> the module to run it from
        self._failures: dict[tuple, ShaderCompileError] = {}     # (kernel, constants) -> why it does not compile
        self._pointers: dict[tuple, tuple[ModulePointer, bool]] = {}  # (kernels, constants) -> where, bounds checks
        self._unset_constants: dict[tuple, list[str]] = {}      # (kernel, constants) -> constants it uses, unset
        self.compiles_whole = len(summary) <= SMALL_LIBRARY_KERNELS
        if self.compiles_whole and backend is not None:
            self._load_group(tuple(range(len(summary))), ())  # now, so that errors surface at load time
        self._structs: StructTable | None = None

    # -- what the library holds ------------------------------------------------------------------------------
    @property
    def function_names(self) -> list[str]:
        return list(self._summary.host_names)

    @property
    def filename(self) -> str:
        """The shader's file name ("<string>" for source text)."""
        return self._source[1]

    @property
    def structs(self) -> StructTable:
        """The shader's struct declarations, read on first use (struct_dtype, dict arguments)."""
        if self._structs is None:
            self._structs = StructTable(self.front_end().pre.tokens)
        return self._structs

    def __len__(self) -> int:
        return len(self._summary)

    @property
    def target(self) -> str:
        return self._compiler.target

    def front_end(self) -> _FrontEnd:
        if self._front is None:
            self._front = _FrontEnd(*self._source)
        return self._front

    def function(self, name: str, constants: dict[Any, Any] | None = None) -> Function:
        if name not in self._index:
            available = ", ".join(sorted(self._index)) or "none"
            raise FunctionNotFoundError(f"no kernel named '{name}' in the loaded shader; kernels: {available}")
        index = self._index[name]
        normalized = self._normalize_constants(constants)
        module = self._module_of(index, normalized)
        decl = self._summary.kernel(index)
        self._warn_unset_constants(decl, self._unset_constants.get((index, normalized), ()))
        absent = absent_params(decl, self._summary.function_constants, dict(normalized))
        return Function(self._backend, module, index, decl, module.bindings(index), absent)

    def _warn_unset_constants(self, decl: KernelDecl, names: Any) -> None:
        """Metal fails to make the pipeline of a kernel that uses a function constant given no value (unless
        is_function_constant_defined makes it optional); metalgpu runs it with the constant zero, and says so."""
        for fc in self._summary.function_constants:
            if fc.name in names:
                warnings.warn(f"{fc.pos.file}:{fc.pos.line}: kernel '{decl.host_name}' uses function constant "
                              f"'{fc.name}' ([[function_constant({fc.index})]]), which was given no value: it reads "
                              f"as zero (false) here, where Metal fails to make this pipeline; give it in "
                              f"set_function(..., constants={{{fc.index}: value}}), or test "
                              f"is_function_constant_defined({fc.name}) in the shader", UserWarning, stacklevel=5)

    def _normalize_constants(self, constants: dict[Any, Any] | None) -> tuple:
        if not constants:
            return ()
        by_name = {fc.name: fc.index for fc in self._summary.function_constants}
        resolved = {}
        for key, value in constants.items():
            if isinstance(key, str):
                if key not in by_name:
                    known = ", ".join(sorted(by_name)) or "none"
                    raise ArgumentError(f"no function constant named '{key}'; the shader declares: {known}")
                key = by_name[key]
            elif isinstance(key, bool) or not isinstance(key, numbers.Integral):
                raise ArgumentError(f"a function constant is named by its index (an int) or its name (a str), "
                                    f"not by {key!r}")
            if isinstance(value, np.generic):
                value = value.item()
            if not isinstance(value, (bool, int, float)):  # also what keys the compiled modules
                raise ArgumentError(f"function constant {key!r}: value {value!r} is not a bool, int or float")
            resolved[int(key)] = value
        declared = {fc.index for fc in self._summary.function_constants}
        for index in resolved:
            if index not in declared:
                raise ArgumentError(f"the shader declares no [[function_constant({index})]]")
        return tuple(sorted(resolved.items()))

    # -- modules ---------------------------------------------------------------------------------------------
    def _module_of(self, index: int, constants: tuple) -> Module:
        """The module to run kernel ``index`` from, compiled if need be; its ShaderCompileError if it fails."""
        key = (index, constants)
        if key not in self._by_kernel and key not in self._failures:
            try:
                if self.compiles_whole:
                    self._load_group(tuple(range(len(self._summary))), constants)
                if key not in self._by_kernel and key not in self._failures:
                    self._load_group((index,), constants)  # compiled alone, or left out of the whole module
            except ShaderCompileError as error:
                self._failures[key] = error
        if key in self._failures:
            raise self._failures[key]
        return self._by_kernel[key]

    def _load_group(self, kernels: tuple[int, ...], constants: tuple) -> None:
        """Load or compile the module of ``kernels``. Kernels that fail only by their pipelines' own limits are
        recorded as failed and the others loaded; any other failure raises."""
        try:
            self._module(kernels, constants)
            return
        except ShaderCompileError as error:
            if not is_pipeline_error(error):
                raise
            if len(kernels) == 1:
                self._failures[(kernels[0], constants)] = error
                return
        failed = self._bisect(kernels, constants)
        passing = tuple(i for i in kernels if i not in failed)
        if passing:  # one module for the others, found at once by later loads of the library
            self._module(passing, constants)
            pointer, checked = self._pointers[(passing, constants)]
            with contextlib.suppress(OSError):
                store_pointer(self._cache, self._pointer_key(kernels, constants, checked), pointer)

    def _bisect(self, kernels: tuple[int, ...], constants: tuple) -> set[int]:
        """The kernels of a failing group that fail on their own, found by compiling halves (each through the
        cache); their errors are recorded."""
        middle = len(kernels) // 2
        failed: set[int] = set()
        for half in (kernels[:middle], kernels[middle:]):
            try:
                self._module(half, constants)
            except ShaderCompileError as error:
                if len(half) > 1:
                    failed |= self._bisect(half, constants)
                else:
                    self._failures[(half[0], constants)] = error
                    failed.add(half[0])
        return failed

    def _module(self, kernels: tuple[int, ...], constants: tuple) -> Module:
        """The module holding ``kernels`` (or those of them that compile, when a pointer says so): from memory,
        from the cache through a pointer (no front end), or compiled."""
        key = (kernels, constants)
        if key in self._modules:
            return self._modules[key]
        # debug=True compiles bounds checks into the kernels where the compiler offers them (cpu: guard pages at
        # allocation instead)
        checked = self._options.debug and self._compiler.checks_bounds
        try:
            module = self._find_or_build(kernels, constants, checked)
        except ShaderCompileError as error:
            if not checked:
                raise
            module = self._find_or_build(kernels, constants, False)  # a real error in the shader raises here
            first = error.diagnostics[0].message if error.diagnostics else "the compiler refused them"
            warnings.warn(f"debug=True: the bounds checks do not compile into this shader ({first}); its kernels "
                          "run unchecked", RuntimeWarning, stacklevel=5)
        self._modules[key] = module
        for index in module.kernels:
            self._by_kernel.setdefault((index, constants), module)
        return module

    def _pointer_key(self, kernels: tuple[int, ...], constants: tuple, check_bounds: bool) -> str:
        return pointer_key(self._identity, self._compiler.fingerprint(), repr(self._options), headers_checksum(),
                           kernels, constants, check_bounds)

    def _find_or_build(self, kernels: tuple[int, ...], constants: tuple, check_bounds: bool) -> Module:
        if self._backend is None:
            raise ArgumentError("this library only compiles (it was made without a backend to run it)")
        entry, pointer = self._find_or_compile(kernels, constants, check_bounds)
        self._pointers[(kernels, constants)] = (pointer, check_bounds)
        for kernel, names in entry.meta.get("unset_constants", {}).items():
            self._unset_constants[(int(kernel), constants)] = names
        return self._backend.load(entry.path, pointer.kernels)

    def _find_or_compile(self, kernels: tuple[int, ...], constants: tuple, check_bounds: bool
                         ) -> tuple[CacheEntry, ModulePointer]:
        """The compiled module through the pointer of ``kernels`` (it may hold fewer: those of a group that
        compile), else compiled and pointed to."""
        key = self._pointer_key(kernels, constants, check_bounds)
        pointer = load_pointer(self._cache, key)
        entry = self._cache.load(pointer.module_key) if pointer is not None else None
        if entry is None:
            entry, module_key = self.compile(kernels, constants, check_bounds)
            pointer = ModulePointer(module_key, kernels)
            with contextlib.suppress(OSError):  # a pointer only saves time
                store_pointer(self._cache, key, pointer)
        return entry, pointer

    def struct_arguments(self, function: Function, buffers: Sequence[Any]) -> list[Any]:
        """``buffers`` with every dict (or list of dicts, for an array) packed into the struct its parameter
        declares."""
        packed = list(buffers)
        for binding in function.bindings:
            if binding.kind != "buffer" or binding.index >= len(packed) or not is_struct_value(packed[binding.index]):
                continue
            param = function.decl.params[binding.param]
            where = function.describe_param(binding)
            scope = tuple(function.decl.name.split("::")[:-1])
            type_text = param.type_text.rstrip("&* ")
            layout = self.structs.layout_of(type_text, scope)
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

    def binary(self, name: str) -> CacheEntry:
        """The compiled module that would run kernel ``name`` (no function constants), found or compiled through
        the cache but not loaded: what a load costs without a device (benchmarks/load_library.py)."""
        if name not in self._index:
            raise FunctionNotFoundError(f"no kernel named '{name}' in the loaded shader")
        kernels = tuple(range(len(self._summary))) if self.compiles_whole else (self._index[name],)
        return self._find_or_compile(kernels, (), False)[0]

    def compile(self, kernels: tuple[int, ...], constants: tuple = (), check_bounds: bool = False
                ) -> tuple[CacheEntry, str]:
        """Translate and compile the module of ``kernels`` through the cache: (its entry, its key)."""
        front = self.front_end()
        translation = front.translator(self._compiler.target, check_bounds).translate(dict(constants), kernels)
        key = CompileCache.key(MODULE_FORMAT, self._compiler.fingerprint(), repr(self._options), headers_checksum(),
                               translation.source)
        uses = front.constant_uses
        unset = {str(i): [fc.name for fc in uses.unset(i, dict(constants))] for i in translation.selected}
        meta = {"kernels": [front.program.kernels[i].host_name for i in translation.selected],
                "target": self._compiler.target, "unset_constants": {i: names for i, names in unset.items() if names}}

        count = len(translation.selected)
        what = f"compiling {count} kernel{'s' if count != 1 else ''} of {self._source[1]} for {self._compiler.target}"

        def build() -> tuple[bytes, dict]:
            try:
                with long_step(what):
                    return self._compiler.compile(translation.source, self._options), meta
            except CompilerFailed as failure:
                raise self._compile_error(failure, translation.columns) from None

        entry, _ = self._cache.get_or_build(key, build)
        return entry, key

    def try_compile(self, kernels: tuple[int, ...], constants: tuple = ()) -> ShaderCompileError | None:
        """Compile the module of ``kernels`` (through the cache, pointed to for later loads); its error, if any."""
        try:
            _, module_key = self.compile(kernels, constants)
        except ShaderCompileError as error:
            return error
        with contextlib.suppress(OSError):
            store_pointer(self._cache, self._pointer_key(kernels, constants, False), ModulePointer(module_key, kernels))
        return None

    def _compile_error(self, failure: CompilerFailed, columns: dict) -> ShaderCompileError:
        sources = self.front_end().pre.sources
        diagnostics = parse_log(failure.log, sources, columns)
        main_source = next(iter(sources.values()), "")
        return ShaderCompileError(diagnostics, log=failure.log, backend=self._compiler.target, source=main_source,
                                  options=failure.command)


def is_pipeline_error(error: ShaderCompileError) -> bool:
    """Does every error of ``error`` belong to a pipeline's own limits (see PIPELINE_ERRORS)?"""
    errors = [d for d in error.diagnostics if d.severity == "error"]
    return bool(errors) and all(any(marker in d.message for marker in PIPELINE_ERRORS) for d in errors)


def is_struct_value(value: Any) -> bool:
    """A dict of a struct's fields, or a non-empty list of them (an array of structs)."""
    return type(value) is dict or (type(value) is list and bool(value) and all(type(v) is dict for v in value))
