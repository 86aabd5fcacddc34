"""A compiled shader library: front end, translation, compilation through the cache, and the kernels it holds.

Function constants specialise a library: each distinct set of constant values is its own compiled module, built
on first use and cached like any other.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from .backends.base import Backend, BindingInfo, CompileOptions, CompilerFailed, Module
from .cache import CompileCache
from .errors import ArgumentError, FunctionNotFoundError, ShaderCompileError
from .msl.diagnostics import parse_log
from .msl.parser import KernelDecl, Program, parse
from .msl.preprocess import PreprocessResult, preprocess
from .msl.structs import StructTable
from .msl.translate import translate

INCLUDE_DIR = Path(__file__).resolve().parent / "msl" / "include"
MODULE_FORMAT = "module-1"


@lru_cache(maxsize=1)
def headers_checksum() -> str:
    """Changes whenever an emulation header changes, so modules built against old headers miss the cache.
    Names, sizes and modification times are enough (as for Python's own .pyc files) and cost no reading."""
    digest = hashlib.sha256()
    for folder in (INCLUDE_DIR, INCLUDE_DIR / "metal"):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_file():
                stat = entry.stat()
                digest.update(f"{folder.name}/{entry.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class Function:
    """One kernel of a compiled module, ready to dispatch."""

    def __init__(self, backend: Backend, module: Module, index: int, decl: KernelDecl, bindings: list[BindingInfo]):
        self.backend = backend
        self.module = module
        self.index = index
        self.decl = decl
        self.bindings = bindings
        self.name = decl.host_name
        self.max_threads = module.max_threads(index) or backend.max_threads_per_group
        self.preferred_threads = min(self.max_threads, module.preferred_threads(index) or backend.preferred_group_size)
        self.thread_execution_width = backend.thread_execution_width

    def describe_param(self, binding: BindingInfo) -> str:
        param = self.decl.params[binding.param]
        attribute = f"[[{binding.kind}({binding.index})]]"
        return f"kernel '{self.name}' parameter '{param.name}' ({param.type_text} {attribute})"

    def __repr__(self) -> str:
        return f"<metalgpu.Function {self.name!r}>"


class Library:
    """The kernels of one shader source, compiled for one backend."""

    def __init__(self, backend: Backend, cache: CompileCache, options: CompileOptions, text: str, filename: str,
                 include_dirs: tuple[str, ...] = ()):
        self._backend = backend
        self._cache = cache
        self._options = options
        self._pre: PreprocessResult = preprocess(text, filename, include_dirs)
        self._program: Program = parse(self._pre.tokens, self._pre.sources)
        self._modules: dict[tuple, Module] = {}
        self._index = {k.host_name: i for i, k in enumerate(self._program.kernels)}
        self._structs: StructTable | None = None
        self._module_for(())  # compile now, so errors surface at load time

    @property
    def function_names(self) -> list[str]:
        return list(self._index)

    @property
    def structs(self) -> StructTable:
        """The shader's struct declarations, read on first use (struct_dtype, dict arguments)."""
        if self._structs is None:
            self._structs = StructTable(self._pre.tokens)
        return self._structs

    def function(self, name: str, constants: dict[Any, Any] | None = None) -> Function:
        if name not in self._index:
            available = ", ".join(sorted(self._index)) or "none"
            raise FunctionNotFoundError(f"no kernel named '{name}' in the loaded shader; kernels: {available}")
        index = self._index[name]
        module = self._module_for(self._normalize_constants(constants))
        return Function(self._backend, module, index, self._program.kernels[index], module.bindings(index))

    def _normalize_constants(self, constants: dict[Any, Any] | None) -> tuple:
        if not constants:
            return ()
        by_name = {fc.name: fc.index for fc in self._program.function_constants}
        resolved = {}
        for key, value in constants.items():
            if isinstance(key, str):
                if key not in by_name:
                    known = ", ".join(sorted(by_name)) or "none"
                    raise ArgumentError(f"no function constant named '{key}'; the shader declares: {known}")
                key = by_name[key]
            resolved[int(key)] = value
        return tuple(sorted(resolved.items()))

    def _module_for(self, constants: tuple) -> Module:
        if constants in self._modules:
            return self._modules[constants]
        # debug=True on cuda compiles bounds checks into the kernels (cpu: guard pages at allocation instead)
        checked = self._options.debug and self._backend.target == "cuda"
        try:
            module = self._build(constants, checked)
        except ShaderCompileError as error:
            if not checked:
                raise
            module = self._build(constants, False)  # a real error in the shader raises from here
            first = error.diagnostics[0].message if error.diagnostics else "the compiler refused them"
            warnings.warn(f"debug=True: the bounds checks do not compile into this shader ({first}); its kernels "
                          "run unchecked", RuntimeWarning, stacklevel=4)
        self._modules[constants] = module
        return module

    def _build(self, constants: tuple, check_bounds: bool) -> Module:
        translation = translate(self._pre, self._program, self._backend.target, dict(constants), check_bounds)
        key = CompileCache.key(MODULE_FORMAT, self._backend.fingerprint(), repr(self._options), headers_checksum(),
                               translation.source)
        meta = {"kernels": [k.host_name for k in translation.kernels], "backend": self._backend.name}

        def build() -> tuple[bytes, dict]:
            try:
                return self._backend.compile(translation.source, self._options), meta
            except CompilerFailed as failure:
                raise self._compile_error(failure, translation.columns) from None

        entry, _ = self._cache.get_or_build(key, build)
        return self._backend.load(entry.path, len(translation.kernels))

    def _compile_error(self, failure: CompilerFailed, columns: dict) -> ShaderCompileError:
        diagnostics = parse_log(failure.log, self._pre.sources, columns)
        main_source = next(iter(self._pre.sources.values()), "")
        return ShaderCompileError(diagnostics, log=failure.log, backend=self._backend.name, source=main_source,
                                  options=failure.command)
