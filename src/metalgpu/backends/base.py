"""What every compiler and backend provides. A Compiler turns a translation into a binary and needs no device; a
Backend (device, memory, launch) loads what its compiler made and runs it. What they share with the rest (binding
plans, grid maths, argument checks, the cache) lives in the core modules (dispatch.py, cache.py), and every record
they exchange with C++ is described in msl/abi.py."""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..dispatch import Allocation, Dispatch, DispatchSequence, LaunchPlan, RecordedBatch, name_batch_dispatch
from ..errors import ArgumentError
from ..msl.abi import BindingInfo

__all__ = ["Allocation", "Backend", "BindingInfo", "CompileOptions", "Compiler", "CompilerFailed", "Module"]


# How float SIMD-group matrix products run on CUDA tensor cores (the header's MG_SIMDGROUP_FLOAT): "3xtf32" splits
# each float into two TF32 parts (float accuracy), "tf32" keeps one (11 significant bits), "exact" keeps them on
# warp shuffles. half and bfloat products use tensor cores in every mode.
SIMDGROUP_FLOAT_MODES = {"exact": 0, "tf32": 1, "3xtf32": 3}


@dataclass(frozen=True)
class CompileOptions:
    """Everything besides the source that changes a compiled module."""

    debug: bool = False
    fast_math: bool = True
    simdgroup_float: str = "3xtf32"  # a key of SIMDGROUP_FLOAT_MODES


class Compiler(ABC):
    """Source text to a binary for one target. Needs no device: `metalgpu check` compiles anywhere the compiler
    is installed, and a backend loads what its compiler made. backends.open_compiler() makes one by target: "cpu"
    (cpu_compiler.py, the system C++ compiler) or "cuda" (nvrtc.py, NVRTC for one GPU architecture). A Metal
    compiler would take the target "metal": the preprocessed MSL itself, made into a metallib."""

    target: str = ""  # the translator's target ("cpu" or "cuda")
    # debug=True compiles a bounds check into every buffer access (else the backend guards memory on its own)
    checks_bounds: bool = False

    @abstractmethod
    def fingerprint(self) -> str:
        """Identifies the compiler, its version, flags and target machine, for the cache key."""

    @abstractmethod
    def compile(self, source: str, options: CompileOptions) -> bytes:
        """Source text to a binary. No cache access. Raises CompilerFailed with the log."""


class Module(ABC):
    """A loaded, compiled library holding some kernels of a program, each under its index in the whole program
    (``mg_run_<i>``)."""

    kernels: tuple[int, ...] = ()

    @abstractmethod
    def bindings(self, kernel: int) -> list[BindingInfo]: ...

    def max_threads(self, kernel: int) -> int | None:
        """The compiled kernel's own limit on threads per group (registers can lower it), if known."""
        return None

    def preferred_threads(self, kernel: int) -> int | None:
        """Threads per group to pick when the user gives none, if the backend knows better for this kernel."""
        return None


class Backend(ABC):
    name: str = ""
    target: str = ""              # the translator's target ("cpu" or "cuda")
    compiler: Compiler            # what makes the binaries this backend loads
    thread_execution_width = 32   # Apple's SIMD width, kept on every backend
    max_threads_per_group = 1024
    preferred_group_size = 1024   # threads per group picked when the user gives none
    max_threadgroup_memory = 32 * 1024
    # compiled_repeat(plans, function, grid, buffers) -> bool: a compiled path for a synchronous dispatch with
    # default sizes that repeats a cached plan (plans: dispatch.PlanCache.compiled_state). Interface.run_function
    # tries it first; False sends the dispatch down the Python path. None where a backend has none.
    compiled_repeat: Callable | None = None
    # compiled_submit(plans, function, grid, buffers) -> Dispatch | None: the same for an asynchronous dispatch,
    # which returns its Dispatch (and marks its Buffers pending), or None to send it down the Python path.
    compiled_submit: Callable | None = None
    cuda_array_interface = False  # buffers are CUDA device memory, exchanged through __cuda_array_interface__

    @abstractmethod
    def load(self, path: Path, kernels: tuple[int, ...]) -> Module:
        """The compiled module at ``path``, which holds the kernels of these indices."""

    @abstractmethod
    def allocate(self, nbytes: int, storage: str) -> Allocation: ...

    @abstractmethod
    def launch(self, module: Module, kernel: int, plan: LaunchPlan, wait: bool) -> Dispatch | None:
        """Runs one dispatch in queue order. Returns its Dispatch, or None when ``wait`` (it already finished)."""

    def submit_batch(self, batch: RecordedBatch, wait: bool) -> Dispatch:
        """Runs a batch's dispatches in order as one submission where the backend has one (a CUDA graph, one Metal
        command buffer with one encoder, one native call on the cpu), waiting for it when ``wait``; returns its
        Dispatch (finished when ``wait``). An error names the dispatch it comes from (name_batch_dispatch). This
        default launches them one by one."""
        handles = []
        for entry in batch.entries:
            try:
                handles.append(self.launch(entry.module, entry.kernel, entry.plan, False))
            except Exception as error:
                name_batch_dispatch(error, entry.index, entry.plan.kernel_name)
                raise
        sequence = DispatchSequence(batch.entries, handles)
        if wait:
            sequence.wait()
        return sequence

    @abstractmethod
    def synchronize(self) -> None: ...

    def host_access(self, allocation: Allocation) -> None:
        """Called before the host touches a shared buffer's memory, after its dispatches finished."""

    def copy_out(self, allocation: Allocation) -> np.ndarray:
        return allocation.host.copy()

    def copy_in(self, allocation: Allocation, data: np.ndarray) -> None:
        allocation.host[:] = data

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        pass


class CompilerFailed(Exception):
    """Raised by Compiler.compile; library.py turns it into ShaderCompileError located in the user's source."""

    def __init__(self, log: str, command: tuple[str, ...] = ()):
        super().__init__(log)
        self.log = log
        self.command = command


def simdgroup_float_mode(mode: Any) -> str:
    """The simdgroup_float option: the argument, else $METALGPU_SIMDGROUP_FLOAT, else "3xtf32"."""
    if mode is None:
        mode = os.environ.get("METALGPU_SIMDGROUP_FLOAT", "").strip().lower() or "3xtf32"
    if not isinstance(mode, str) or mode not in SIMDGROUP_FLOAT_MODES:
        raise ArgumentError(f"simdgroup_float must be one of {', '.join(map(repr, SIMDGROUP_FLOAT_MODES))} (or "
                            f"$METALGPU_SIMDGROUP_FLOAT), not {mode!r}")
    return mode
