"""The commands about this installation and about shader files: info, cache, check, translate."""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numpy as np

from ..backends import NAMES, open_backend, open_compiler
from ..backends.base import CompileOptions
from ..cache import CompileCache
from ..errors import ArgumentError, BackendUnavailableError
from ..library import Library, read_source
from ..library_check import check_library, error_summary


def info(args) -> int:
    """The version, each backend (which works, and why each other one does not, with what to install), the
    backend Interface() picks and the compile cache."""
    from .. import __version__

    print(f"metalgpu {__version__} (Python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.system()} {platform.machine()})")
    print("backends, best first:")
    working = []
    cache = CompileCache()
    for name in NAMES:
        try:
            backend = open_backend(name, 0, cache)
        except BackendUnavailableError as error:
            reason = " ".join(str(error).split())  # the compiler's own output can span lines
            print(f"  {name:<6} no: {reason}")
            hint = install_hint(name, reason)
            if hint:
                print(f"  {'':<6}     {hint}")
            continue
        working.append(name)
        print(f"  {name:<6} yes: {backend.describe()}")
        version = nvrtc_version() if name == "cuda" else None  # its kernels' speed depends on it
        if version:
            print(f"  {'':<6}     compiles with NVRTC {'.'.join(map(str, version))}")
        backend.close()
    chosen = os.environ.get("METALGPU_BACKEND")
    if chosen:
        print(f"Interface() uses: {chosen} (METALGPU_BACKEND)")
    else:
        print(f"Interface() uses: {working[0] if working else 'none (no backend works here)'}")
    print(f"compile cache: {cache.directory} ({describe_cache(cache)})")
    return 0


def install_hint(name: str, reason: str) -> str:
    """What to install, or do, for backend ``name`` that failed with ``reason``; "" where the reason says it."""
    if name == "metal":
        if sys.platform != "darwin":
            return f"needs macOS (this is {platform.system()})"
        return "needs a later metalgpu release"
    if name == "cuda":
        if "pip install" in reason:
            return "needs an NVIDIA GPU with its driver too"
        if "driver" in reason or "cuInit" in reason or "no NVIDIA GPU" in reason:
            version = nvrtc_version()
            compiles = (f"; NVRTC {'.'.join(map(str, version))} is installed, so `metalgpu check --target cuda` "
                        "compiles for CUDA here" if version else "")
            return ("needs an NVIDIA GPU and its driver (CUDA 13; for a CUDA 12 driver: pip install "
                    f"\"metalgpu[cuda12]>=2.0.0rc1\"){compiles}")
    return ""


def nvrtc_version() -> tuple[int, int] | None:
    """NVRTC's version where its library loads (it needs no GPU), else None."""
    try:
        from cuda.bindings import nvrtc

        err, major, minor = nvrtc.nvrtcVersion()
    except Exception:  # not installed, or its shared library is missing
        return None
    return (major, minor) if err == nvrtc.nvrtcResult.NVRTC_SUCCESS else None


def describe_cache(cache: CompileCache) -> str:
    """What the cache folder holds: entries, artifacts (precompiled headers and the like), bytes in all."""
    entries = len(cache.entries())
    artifacts = cache.artifacts()
    artifact_bytes = cache.size_bytes() - cache.size_bytes(artifacts=False)
    return (f"{entries} entr{'y' if entries == 1 else 'ies'} ({cache.size_bytes(artifacts=False) / 1e6:.1f} MB), "
            f"{len(artifacts)} build artifact{'' if len(artifacts) == 1 else 's'} such as precompiled headers "
            f"({artifact_bytes / 1e6:.1f} MB); {cache.size_bytes() / 1e6:.1f} MB in all")


def cache(args) -> int:
    """Show what the compile cache holds, or clear it."""
    cache = CompileCache()
    try:
        if args.clear:
            size, artifacts = cache.size_bytes(), len(cache.artifacts())
            entries = cache.clear()
            also = (f" and {artifacts} build artifact{'' if artifacts == 1 else 's'} ({size / 1e6:.1f} MB in all)"
                    if artifacts else "")
            print(f"removed {entries} entries{also} from {cache.directory}")
        else:
            print(f"{cache.directory}: {describe_cache(cache)}")
    except OSError as error:  # a read-only or unreadable folder: one line, not a traceback
        where = f" ({error.filename})" if error.filename else ""
        action = "clear" if args.clear else "read"
        print(f"metalgpu: cannot {action} the compile cache in {cache.directory}: {error.strerror or error}{where}",
              file=sys.stderr)
        return 1
    return 0


def shader_source(args) -> tuple[str, str, tuple[str, ...]]:
    """The file's text, its name, and where its includes resolve: next to it, then in each -I folder."""
    path = Path(args.file)
    text = read_source(path)
    folders = [path.resolve().parent]
    for folder in args.include:
        if not Path(folder).is_dir():
            raise ArgumentError(f"include folder {folder!r} does not exist")
        folders.append(Path(folder).resolve())
    return text, str(path), tuple(dict.fromkeys(str(folder) for folder in folders))


def check(args) -> int:
    """Compile every kernel without running any: a compiler needs no device (CUDA: NVRTC, no GPU, no driver)."""
    cache = CompileCache()
    compiler = open_compiler(args.target, cache, args.arch)
    library = Library(None, cache, CompileOptions(), *shader_source(args), compiler=compiler)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    jobs = args.jobs or cores
    if jobs < 1:
        raise ArgumentError(f"--jobs must be at least 1, not {args.jobs}")
    result = check_library(library, jobs)
    names = result.names
    summary = (f"{args.file}: {len(names) - len(result.failures)} of {len(names)} kernels compile for {args.target} "
               f"({result.seconds:.1f} s, {result.compiles} compiler runs, {jobs} at a time)")
    if not result.failures:
        print(f"{args.file}: compiles for {args.target}; kernels: {', '.join(names) or 'none'}")
        print(summary)
        return 0
    by_error: dict[tuple, list[int]] = {}  # failures that print alike, printed once
    errors = {}
    for index, error in sorted(result.failures.items()):
        by_error.setdefault(error_summary(error), []).append(index)
        errors.setdefault(error_summary(error), error)
    for key, indices in by_error.items():
        failing = [names[i] for i in indices]
        shown = ", ".join(failing[:8]) + (f" and {len(failing) - 8} more" if len(failing) > 8 else "")
        print(f"{len(failing)} kernel{'s' if len(failing) > 1 else ''} fail ({shown}):\n{errors[key]}\n",
              file=sys.stderr)
    if result.unisolated:
        print(f"{len(result.unisolated)} of the failing kernels were not compiled alone (the budget of compiler runs "
              "ran out): each shares a run with a kernel that fails, and may itself compile", file=sys.stderr)
    print(f"kernels: {', '.join(names)}")
    print(summary, file=sys.stderr)
    return 1


def translate(args) -> int:
    """Print the C++ a shader file becomes for a target."""
    from ..msl.parser import parse
    from ..msl.preprocess import preprocess
    from ..msl.translate import translate as translate_program

    text, filename, include_dirs = shader_source(args)
    pre = preprocess(text, filename, include_dirs)
    program = parse(pre.tokens, pre.sources)
    kernels = None
    if args.kernel:
        names = [kernel.host_name for kernel in program.kernels]
        missing = [name for name in args.kernel if name not in names]
        if missing:
            raise ArgumentError(f"no kernel named {', '.join(missing)}; kernels: {', '.join(names) or 'none'}")
        kernels = [names.index(name) for name in args.kernel]
    print(translate_program(pre, program, args.target, kernels=kernels).source)
    return 0
