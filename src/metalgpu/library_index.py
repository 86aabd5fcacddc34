"""What a process keeps on disk about a library it loaded, so that the next one loads it without the front end:
the library's kernels and function constants (the *index*), and where the compiled module of each kernel is (a
*module pointer*). Preprocessing a production library (MLX's binary.metal: 170,000 tokens after macro
expansion) takes seconds in Python; reading its index takes milliseconds.

Both live in the compile cache, as JSON. An index is found by the source text, its file name, the include
folders and the front end's own files (stamps); it records the size and modification time of every file the
preprocessor read, and reads as a miss once one of them changed (as Python's .pyc files do). A module pointer is
found by the identity of the library's files (the index's key and their stamps), the compiler, the options, the
headers, the kernels and the function-constant values; it names the module's own cache key, which covers the
translated source itself (exactly what changes the
binary), so two libraries or two versions of a file that translate a kernel alike share its binary.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .cache import CompileCache
from .errors import SourcePos
from .msl.parser import FunctionConstant, KernelDecl, Param, Program

INDEX_FORMAT = "library-index-1"
POINTER_FORMAT = "module-pointer-1"
_FRONT_END = Path(__file__).resolve().parent / "msl"


@lru_cache(maxsize=1)
def front_end_checksum() -> str:
    """Changes whenever the front end or the translator changes (names, sizes and modification times of their
    files), so that an index or a pointer written by another version of metalgpu reads as a miss."""
    digest = hashlib.sha256()
    for entry in sorted(os.scandir(_FRONT_END), key=lambda e: e.name):
        if entry.name.endswith(".py") and entry.is_file():
            stat = entry.stat()
            digest.update(f"{entry.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def index_key(text: str, filename: str, include_dirs: tuple[str, ...]) -> str:
    return CompileCache.key(INDEX_FORMAT, front_end_checksum(), filename, "\0".join(include_dirs), text)


def _stamp(path: str) -> list | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [path, stat.st_size, stat.st_mtime_ns]


class ProgramSummary:
    """The kernels and function constants of a library, as Python needs them (names, parameters, bindings, their
    positions), without the token ranges only the translator uses. Kernel records are built on first use: an
    index holds thousands of kernels, a process uses a few."""

    def __init__(self, host_names: list[str], function_constants: tuple[FunctionConstant, ...], build_kernel):
        self.host_names = host_names
        self.function_constants = function_constants
        self._build_kernel = build_kernel
        self._kernels: dict[int, KernelDecl] = {}

    @classmethod
    def of(cls, program: Program) -> ProgramSummary:
        return cls([k.host_name for k in program.kernels], program.function_constants, program.kernels.__getitem__)

    def kernel(self, index: int) -> KernelDecl:
        if index not in self._kernels:
            self._kernels[index] = self._build_kernel(index)
        return self._kernels[index]

    def __len__(self) -> int:
        return len(self.host_names)


def load_index(cache: CompileCache, key: str) -> tuple[ProgramSummary, str] | None:
    """The summary stored under ``key`` and the identity of the files it was made from, if every one of them is
    unchanged."""
    entry = cache.load(key)
    if entry is None:
        return None
    stamps = entry.meta.get("files", [])
    if any(_stamp(stamp[0]) != stamp for stamp in stamps):
        return None
    try:
        return _decode(json.loads(entry.binary)), _identity(key, stamps)
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def store_index(cache: CompileCache, key: str, program: Program, sources: dict[str, str]) -> str:
    """Record ``program``, made from ``sources`` (every file the preprocessor read, by name); return the identity
    of those files."""
    stamps = [stamp for name in sources if (stamp := _stamp(name)) is not None]
    with contextlib.suppress(OSError):  # an index only saves time
        cache.store(key, json.dumps(_encode(program), separators=(",", ":")).encode(), {"files": stamps})
    return _identity(key, stamps)


def _identity(key: str, stamps: list) -> str:
    """Names the source text, include folders and front end (``key``) and every file read (``stamps``): module
    pointers are found by it, so that a changed header leads to new modules even where the text is the same."""
    return CompileCache.key(INDEX_FORMAT, key, json.dumps(stamps))


@dataclass(frozen=True)
class ModulePointer:
    module_key: str           # the cache key of the compiled module
    kernels: tuple[int, ...]  # the kernels it holds


def pointer_key(index: str, fingerprint: str, options: str, headers: str, kernels: tuple[int, ...],
                constants: tuple, check_bounds: bool) -> str:
    return CompileCache.key(POINTER_FORMAT, index, fingerprint, options, headers, repr(kernels), repr(constants),
                            str(check_bounds))


def load_pointer(cache: CompileCache, key: str) -> ModulePointer | None:
    entry = cache.load(key)
    if entry is None:
        return None
    try:
        return ModulePointer(str(entry.meta["module"]), tuple(int(i) for i in entry.meta["kernels"]))
    except (KeyError, TypeError, ValueError):
        return None


def store_pointer(cache: CompileCache, key: str, pointer: ModulePointer) -> None:
    cache.store(key, b"", {"module": pointer.module_key, "kernels": list(pointer.kernels)})


# -- the index as JSON: file names and parameter lists written once, kernels as rows referring to them ----------

def _encode(program: Program) -> dict[str, Any]:
    files: dict[str, int] = {}
    param_lists: dict[tuple[Param, ...], int] = {}

    def position(pos: SourcePos) -> list:
        return [files.setdefault(pos.file, len(files)), pos.line, pos.column]

    def params_id(params: tuple[Param, ...]) -> int:
        return param_lists.setdefault(params, len(param_lists))

    kernels = [[k.name, k.host_name, k.template_args, params_id(k.params), *position(k.pos), k.max_total_threads,
                k.template_params] for k in program.kernels]
    constants = [[fc.name, fc.type_text, fc.index, *position(fc.pos)] for fc in program.function_constants]
    params = [[[p.name, p.type_text, p.address_space, p.is_pointer, p.is_reference, p.binding, p.index, p.builtin,
                *position(p.pos), p.function_constant] for p in plist] for plist in param_lists]
    return {"files": list(files), "kernels": kernels, "constants": constants, "params": params}


def _decode(data: dict[str, Any]) -> ProgramSummary:
    files = data["files"]
    rows = data["kernels"]
    param_lists: dict[int, tuple[Param, ...]] = {}

    def params(list_id: int) -> tuple[Param, ...]:
        if list_id not in param_lists:
            param_lists[list_id] = tuple(
                Param(name, type_text, space, pointer, reference, binding, index, builtin,
                      SourcePos(files[f], line, column), condition)
                for name, type_text, space, pointer, reference, binding, index, builtin, f, line, column, condition
                in data["params"][list_id])
        return param_lists[list_id]

    def kernel(i: int) -> KernelDecl:
        name, host_name, template_args, list_id, f, line, column, max_threads, template_params = rows[i]
        return KernelDecl(name, host_name, template_args, params(list_id), SourcePos(files[f], line, column), None,
                          max_total_threads=max_threads, template_params=template_params)

    constants = tuple(FunctionConstant(name, type_text, index, SourcePos(files[f], line, column), (0, 0))
                      for name, type_text, index, f, line, column in data["constants"])
    return ProgramSummary([row[1] for row in rows], constants, kernel)
