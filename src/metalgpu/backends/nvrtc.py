"""NVRTC: the CUDA translation of a shader to a cubin for one GPU architecture. Needs NVIDIA's cuda-bindings and
NVRTC wheels but no GPU or driver, so `metalgpu check --target cuda` and the tests compile for CUDA anywhere."""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

from ..errors import BackendUnavailableError
from ..msl.abi import INCLUDE_DIR
from .base import SIMDGROUP_FLOAT_MODES, CompileOptions, Compiler, CompilerFailed
from .nvrtc_limited import WORKERS
from .nvrtc_worker import compile_cubin

_NO_BINDINGS = "the cuda backend needs NVIDIA's cuda-bindings and NVRTC: pip install 'metalgpu[cuda]'"


def cuda_bindings():
    """cuda-bindings' driver and NVRTC modules, or BackendUnavailableError saying how to get them."""
    try:
        from cuda.bindings import driver, nvrtc
    except ImportError:
        raise BackendUnavailableError(_NO_BINDINGS) from None
    return driver, nvrtc


def require_nvrtc_bindings() -> None:
    """BackendUnavailableError unless cuda-bindings' NVRTC module is installed, found without importing it: only
    the compile worker needs it, and importing it costs a cold compile most of 0.1 s."""
    try:
        found = importlib.util.find_spec("cuda.bindings.nvrtc") is not None
    except ImportError:  # no `cuda` package at all
        found = False
    if not found:
        raise BackendUnavailableError(_NO_BINDINGS)


def nvrtc_flags(options: CompileOptions, arch: str) -> list[str]:
    flags = ["--std=c++17", f"--gpu-architecture={arch}", "--device-as-default-execution-space",
             "-DMG_TARGET_CUDA=1", f"-I{INCLUDE_DIR}", "-w",
             f"-DMG_SIMDGROUP_FLOAT={SIMDGROUP_FLOAT_MODES[options.simdgroup_float]}"]
    if options.fast_math:
        # Not --use_fast_math: it would make precise:: functions fast too. The header picks CUDA's fast
        # intrinsics for metal:: and fast:: itself.
        flags.append("-DMG_FAST_MATH=1")
    return flags


def nvrtc_compile(source: str, options: CompileOptions, arch: str) -> bytes:
    """CUDA C++ to a cubin for ``arch`` (e.g. "sm_90"), in this process and with no limit on NVRTC's time or memory:
    for trusted sources (tests, benchmarks). NvrtcCompiler compiles in a worker process, within the limits."""
    _, nvrtc = cuda_bindings()
    flags = nvrtc_flags(options, arch)
    ok, output = compile_cubin(nvrtc, source.encode(), [flag.encode() for flag in flags])
    if not ok:
        raise CompilerFailed(output.decode(errors="replace"), tuple(flags))
    return output


def start_compile_worker() -> None:
    """Start NVRTC's worker process now, unless one is idle, so that it is ready by the first compile."""
    WORKERS.prestart()


class NvrtcCompiler(Compiler):
    """The CUDA target's compiler, for one GPU architecture ("sm_90"): needs NVRTC, not a GPU or a driver."""

    target = "cuda"
    checks_bounds = True

    def __init__(self, arch: str):
        require_nvrtc_bindings()  # BackendUnavailableError now, rather than at the first compile
        self.arch = arch
        self._fingerprint: str | None = None
        start_compile_worker()

    def fingerprint(self) -> str:
        if self._fingerprint is None:  # asked for every compile and cache lookup: worked out once
            self._fingerprint = f"cuda {nvrtc_identity()} {self.arch}"
        return self._fingerprint

    def compile(self, source: str, options: CompileOptions) -> bytes:
        """The cubin, compiled in a worker process within COMPILE_TIMEOUT and COMPILE_MEMORY (nvrtc_limited.py)."""
        return WORKERS.compile(source, nvrtc_flags(options, self.arch))


def nvrtc_version() -> str:
    _, nvrtc = cuda_bindings()
    err, major, minor = nvrtc.nvrtcVersion()
    return f"{major}.{minor}"


@lru_cache(maxsize=1)
def nvrtc_identity() -> str:
    """Which NVRTC builds our cubins, for the cache key, without loading it (loading NVRTC would be most of a warm
    load): every libnvrtc that cuda-bindings may pick, NVIDIA's wheels and toolkits, by path, size and date."""
    folders = []
    try:
        import nvidia
        folders += [Path(root) / sub / "lib" for root in nvidia.__path__ for sub in ("cu13", "cu12", "cuda_nvrtc")]
    except ImportError:
        pass
    folders += [Path(home) / "lib64" for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
                                                  "/usr/local/cuda") if home]
    libraries = []
    for folder in folders:
        for library in sorted(folder.glob("libnvrtc*.so*")):
            stat = library.stat()
            libraries.append(f"{library} {stat.st_size} {stat.st_mtime_ns}")
    return " ".join(libraries) or f"nvrtc {nvrtc_version()}"

