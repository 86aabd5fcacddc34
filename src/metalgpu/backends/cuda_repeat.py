"""The compiled repeat path of CUDA dispatches, synchronous (repeat) and asynchronous (submit), and the kernel nodes
of a batch's CUDA graph (graph_chain, graph_set) (cuda_repeat.cpp): a CPython extension built once per machine and
Python version, in the background, into the compile cache's artifact folder, and loaded once it is there.

The build runs detached, as the CPU backend's precompiled headers do: a process that exits first leaves it to
finish for the next one, and a failed build leaves nothing but its log, which keeps later processes from trying
again until the cache is cleared. Where it cannot be built (no C++ compiler, no Python headers) or loaded, every
dispatch takes the Python path, which does the same work more slowly (benchmarks/README.md). Nothing else depends
on it.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path
from types import ModuleType
from typing import Callable

from ..cache import CompileCache

SOURCE = Path(__file__).resolve().parent / "cuda_repeat.cpp"
MODULE_NAME = "metalgpu_cuda_repeat"

_lock = threading.Lock()
_path: Path | None = None            # where the built extension is, or will be
_build: subprocess.Popen | None = None  # the build this process started, until it is done
repeat: Callable | None = None       # the compiled function, once loaded
extension: ModuleType | None = None  # the whole extension (its plan_key() and field constants serve tests)
failure: str | None = None           # why there is none, once that is known


def start(cache: CompileCache) -> None:
    """Load the extension from the cache, or start building it there; once per process."""
    global _path, _build, failure
    with _lock:
        if _path is not None or failure is not None:
            return
        try:
            from .cpu_compiler import find_compiler

            include = sysconfig.get_paths().get("include")
            if not include or not (Path(include) / "Python.h").exists():
                raise OSError("Python's C headers are not installed")
            compiler = find_compiler()
            source = SOURCE.read_text()
            key = CompileCache.key("cuda-repeat", sys.version, str(sysconfig.get_config_var("EXT_SUFFIX")),
                                   " ".join(compiler), str(shutil.which(compiler[0])), source)
            folder = cache.artifact_folder()
        except Exception as error:  # BackendUnavailableError (no compiler), OSError
            failure = f"not built: {error}"
            return
        _path = folder / f"cuda-repeat-{key}.so"
        if _path.exists():
            _load()
            return
        if Path(f"{_path}.log").exists():  # this very build failed before: not again in every process
            failure = f"not built: an earlier build failed, see {_path}.log (metalgpu cache --clear retries)"
            return
        temporary = folder / f"cuda-repeat-{key}.{os.getpid()}.tmp"
        command = [*compiler, "-std=c++17", "-O2", "-fPIC", "-shared", "-w", f"-I{include}", str(SOURCE),
                   "-o", str(temporary)]
        _build = CompileCache.build_artifact(command, temporary, _path, Path(f"{_path}.log"))


def ready() -> Callable | None:
    """The compiled function, or None while it is being built or if it cannot be. Cheap once that is decided."""
    global _build
    if repeat is not None or _build is None:
        return repeat
    if _build.poll() is None:
        return None
    with _lock:
        if _build is not None:
            _build = None
            _load()
    return repeat


def wait(timeout: float | None = None) -> bool:
    """Wait for a build in progress (benchmarks, tests); True if the compiled path is there."""
    build = _build
    if build is not None:
        try:
            build.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
    return ready() is not None


def _load() -> None:
    global repeat, extension, failure
    try:
        loader = importlib.machinery.ExtensionFileLoader(MODULE_NAME, str(_path))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(MODULE_NAME, loader))
        loader.exec_module(module)
        repeat, extension = module.repeat, module
    except Exception as error:  # a failed build (its log is beside it) or a file that does not load
        log = Path(f"{_path}.log")
        failure = f"not loaded from {_path}: {error}" + (f" (build log: {log})" if log.exists() else "")
