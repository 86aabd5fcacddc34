"""What every backend provides. Backends compile (pure), allocate, load modules and launch; everything they
share (binding plans, grid maths, argument checks, the cache) lives above them, in dispatch.py and library.py."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..dispatch import Dispatch, LaunchPlan


@dataclass(frozen=True)
class CompileOptions:
    """Everything besides the source that changes a compiled module."""

    debug: bool = False
    fast_math: bool = True


@dataclass(frozen=True)
class BindingInfo:
    """One bound kernel parameter, as the compiled module describes it (mirrors mg::binding_info)."""

    param: int          # position in the kernel's signature
    kind: str           # "buffer", "threadgroup" or "builtin"
    index: int          # [[buffer(i)]] / [[threadgroup(i)]] index
    elem_size: int      # sizeof what the pointer points at, or of the referenced value
    is_const: bool      # the kernel cannot write through it
    is_reference: bool  # `constant T& x` (one value) rather than `T* x` (an array)
    scalar_kind: str    # "signed", "unsigned", "float", "bfloat", "bool" or "other" (structs)
    scalar_size: int
    lanes: int


class Allocation(ABC):
    """Memory a backend handed out. ``host`` is a uint8 numpy view of it, or None for device-only memory."""

    address: int
    nbytes: int
    host: np.ndarray | None

    @abstractmethod
    def free(self) -> None: ...


class Compiler(ABC):
    """Source text to a binary for one target. Needs no device: `metalgpu check` compiles anywhere the compiler
    is installed, and a backend loads what its compiler made."""

    target: str = ""  # the translator's target ("cpu" or "cuda")

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
    # repeat(plans, function, grid, buffers) -> bool: a compiled path for a synchronous dispatch that repeats a
    # cached plan (Interface.run_function tries it first; False: take the Python path). None where there is none.
    repeat = None

    @abstractmethod
    def load(self, path: Path, kernels: tuple[int, ...]) -> Module:
        """The compiled module at ``path``, which holds the kernels of these indices."""

    @abstractmethod
    def allocate(self, nbytes: int, storage: str) -> Allocation: ...

    @abstractmethod
    def launch(self, module: Module, kernel: int, plan: "LaunchPlan", wait: bool) -> "Dispatch | None":
        """Runs one dispatch in queue order. Returns its Dispatch, or None when ``wait`` (it already finished)."""

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
    """Raised by Backend.compile; library.py turns it into ShaderCompileError located in the user's source."""

    def __init__(self, log: str, command: tuple[str, ...] = ()):
        super().__init__(log)
        self.log = log
        self.command = command
