"""The backends and how one is chosen: metal on macOS, cuda where an NVIDIA driver answers, else cpu."""
from __future__ import annotations

import os

from ..cache import CompileCache
from ..errors import ArgumentError, BackendUnavailableError
from .base import Backend, Compiler

NAMES = ("metal", "cuda", "cpu")  # best first


def _open(name: str, device: int, cache: CompileCache, debug: bool = False) -> Backend:
    if name == "cpu":
        from .cpu import CpuBackend
        return CpuBackend(device, cache, debug)
    if name == "cuda":
        from .cuda import CudaBackend
        return CudaBackend(device, cache, debug)
    if name == "metal":
        raise BackendUnavailableError("the metal backend is not in this release of metalgpu yet; "
                                      "use backend='cpu' or 'cuda'")
    raise BackendUnavailableError(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}")


def open_backend(name: str | None, device: int, cache: CompileCache, debug: bool = False,
                 isolate: bool = False) -> Backend:
    """The named backend, or $METALGPU_BACKEND, or the best that works here. ``isolate``: the cpu backend with
    kernels run in a sandboxed worker process (cpu_isolated.py)."""
    name = name or os.environ.get("METALGPU_BACKEND") or None
    if isolate:
        if name is not None and name.lower() != "cpu":
            raise ArgumentError(f"isolate=True runs kernels in a sandboxed process of the cpu backend; it does not "
                                f"apply to backend {name!r}")
        from .cpu_isolated import IsolatedCpuBackend
        return IsolatedCpuBackend(device, cache, debug)
    if name is not None:
        return _open(name.lower(), device, cache, debug)
    reasons = []
    for candidate in NAMES:
        try:
            return _open(candidate, device, cache, debug)
        except BackendUnavailableError as error:
            reasons.append(f"{candidate}: {error}")
    raise BackendUnavailableError("no backend works here:\n  " + "\n  ".join(reasons))


COMPILE_TARGETS = ("cpu", "cuda", "metal")


def open_compiler(target: str, cache: CompileCache, arch: str = "sm_90") -> Compiler:
    """The compiler of a target, with no device: "cpu" (the system C++ compiler) or "cuda" (NVRTC, for the GPU
    architecture ``arch``): the same compilers the backends load modules from."""
    if target == "cpu":
        from .cpu_compiler import CpuCompiler
        return CpuCompiler(cache)
    if target == "cuda":
        from .nvrtc import NvrtcCompiler
        return NvrtcCompiler(arch)
    if target == "metal":  # Apple's compiler, on macOS, would make a metallib of the preprocessed MSL
        raise BackendUnavailableError("compiling for metal needs Apple's Metal compiler, which this release of "
                                      "metalgpu does not drive yet; use --target cpu or cuda")
    raise BackendUnavailableError(f"unknown compile target {target!r}; choose one of {', '.join(COMPILE_TARGETS)}")


def available() -> list[str]:
    """The names of the backends that work on this machine, best first (``metalgpu.backends()``).

    Each is opened once to find out (a backend that is present but broken is left out); ``Interface()`` with no
    backend opens the first. To know why one is missing, ask for it: ``Interface(backend="cuda")`` raises
    ``BackendUnavailableError`` with the reason.

    Example:
        >>> import metalgpu
        >>> names = metalgpu.backends()
        >>> "cpu" in names            # wherever a C++ compiler is installed
        True
    """
    names = []
    for candidate in NAMES:
        try:
            _open(candidate, 0, CompileCache()).close()
        except BackendUnavailableError:
            continue
        names.append(candidate)
    return names
