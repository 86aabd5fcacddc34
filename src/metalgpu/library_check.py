"""`metalgpu check`: compile every kernel of a library, in parallel, and say which fail and why.

A small library compiles as one module, as it loads. A big one compiles in chunks of kernels, several compiler
runs at a time (g++ processes, or NVRTC programs, which compile with the GIL released). A chunk that fails is
split in halves until each failing kernel stands alone with its own error; when both halves of a group fail
with the same compiler output (a mistake in code every kernel of the group shares), that error is given to all of
them without splitting further, so that one error shared by a thousand kernels costs a few compiles, not
thousands. A budget of compiler runs bounds the splitting of failures that differ kernel by kernel.
Every module that compiles is stored in the cache and pointed to, so a later load of the library finds it.
"""
from __future__ import annotations

import re
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .errors import ShaderCompileError
from .library import Library

CHUNK_KERNELS = 64  # kernels per compiler run of a big library: a run's share of the library's own code is small
_TEMPORARY = re.compile(r"\S*metalgpu-[^/\s]*/")  # a compile's own folder, as it appears in its log


@dataclass
class CheckResult:
    names: list[str]                                # every kernel, by host name, in the library's order
    failures: dict[int, ShaderCompileError]         # kernel index -> its error
    seconds: float
    compiles: int                                   # compiler runs, splits included
    # failing kernels never compiled alone (the budget of compiler runs ran out): each shares a run with one that
    # fails, and may itself compile
    unisolated: set[int] = field(default_factory=set)


@dataclass
class _Group:
    kernels: tuple[int, ...]
    parent: _Group | None = None
    children: list[_Group] = field(default_factory=list)
    error: ShaderCompileError | None = None
    finished: bool = False


def check_library(library: Library, jobs: int = 2, chunk: int = CHUNK_KERNELS, budget: int | None = None
                  ) -> CheckResult:
    """Compile every kernel of ``library``, ``jobs`` compiler runs at a time, ``chunk`` kernels to a run. Failing
    runs are split until ``budget`` runs were made (default: four per chunk and a few more), so that a mistake
    that fails many kernels each its own way (a template every kernel instantiates) cannot take hours; kernels
    left in a failing run then are reported with its error, as not isolated."""
    started = time.perf_counter()
    count = len(library)
    library.front_end().translator(library.target, False)  # once, before the workers share it
    if library.compiles_whole or count == 0:
        groups = [tuple(range(count))]
    else:
        size = max(1, min(chunk, -(-count // jobs)))
        groups = [tuple(range(start, min(start + size, count))) for start in range(0, count, size)]
    failures: dict[int, ShaderCompileError] = {}
    unisolated: set[int] = set()
    compiles = 0
    budget = budget if budget is not None else 4 * len(groups) + 64
    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="metalgpu-check") as pool:
        pending: dict[Future, _Group] = {}

        def submit(group: _Group) -> None:
            nonlocal compiles
            compiles += 1
            pending[pool.submit(library.try_compile, group.kernels)] = group

        def settle(group: _Group) -> None:
            if group.error is None:
                return
            if len(group.kernels) == 1:
                failures[group.kernels[0]] = group.error
                return
            if compiles + 2 > budget:
                failures.update(dict.fromkeys(group.kernels, group.error))
                unisolated.update(group.kernels)
                return
            middle = len(group.kernels) // 2
            group.children = [_Group(group.kernels[:middle], group), _Group(group.kernels[middle:], group)]
            for child in group.children:
                submit(child)

        for kernels in groups:
            submit(_Group(kernels))
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                group = pending.pop(future)
                group.error, group.finished = future.result(), True
                parent = group.parent
                if parent is None:
                    settle(group)
                    continue
                first, second = parent.children
                if not (first.finished and second.finished):
                    continue  # decided with its sibling
                if first.error is not None and second.error is not None and _same(first.error, second.error):
                    failures.update(dict.fromkeys(parent.kernels, first.error))
                    continue
                settle(first)
                settle(second)
    return CheckResult(library.function_names, failures, time.perf_counter() - started, compiles, unisolated)


def _same(a: ShaderCompileError, b: ShaderCompileError) -> bool:
    """Did two compiles fail alike? Their whole logs agree (compile folders aside) only when no kernel-specific
    context differs: an error in code the kernels share. Kernels that fail on their own, even at one line of a
    template (a static_assert), differ in the instantiation the compiler names."""
    return _TEMPORARY.sub("", a.log) == _TEMPORARY.sub("", b.log) and bool(a.log)


def error_summary(error: ShaderCompileError) -> tuple:
    """What two failures print alike: their first error, located."""
    errors = [d for d in error.diagnostics if d.severity == "error"] or error.diagnostics
    return (errors[0].message, errors[0].pos) if errors else (str(error), None)
