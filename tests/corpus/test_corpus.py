"""Runtime tests of the corpus kernels: one per manifest kernel and backend, each against its numpy reference.

Skipped, with the reason, when $METALGPU_CORPUS_DIR is unset or lacks the library (CI has no corpus). A file that
does not compile fails every one of its kernels with the compiler's first error.
"""
from __future__ import annotations

import pytest

from .cases import all_cases, run_case
from .harness import libraries, load, missing_reason
from .tolerances import FAMILIES

KERNELS = [(source, kernel) for library in libraries() for source in library.files if not source.skip
           for kernel in source.kernels]


@pytest.fixture(scope="session")
def loaded_files():
    """One Interface per (backend, file), loaded once: a big file is read and translated once for all its
    kernels (the cache keeps the compiled modules across sessions)."""
    import metalgpu

    opened: dict[tuple[str, str], object] = {}

    def get(backend: str, source):
        key = (backend, source.path)
        if key not in opened:
            interface = metalgpu.Interface(backend=backend)
            try:
                load(interface, source)
            except metalgpu.MetalError as error:
                interface.close()
                opened[key] = error
            else:
                opened[key] = interface
        if isinstance(opened[key], Exception):
            error = opened[key]
            pytest.fail(f"{source.label} does not load on {backend}: {str(error).splitlines()[0]}", pytrace=False)
        return opened[key]

    yield get
    for value in opened.values():
        if not isinstance(value, Exception):
            value.close()


@pytest.mark.parametrize("source, kernel", KERNELS, ids=[f"{s.label}::{k.name}" for s, k in KERNELS])
def test_kernel(backend, loaded_files, source, kernel):
    reason = missing_reason(source)
    if reason:
        pytest.skip(reason)
    # Not run (a marker applied here would come too late for run=False, and the kernel would run):
    if kernel.xfail:  # undefined behaviour (an out-of-bounds write) may corrupt the test process
        pytest.xfail(kernel.xfail)
    if kernel.xfail_cuda and backend == "cuda":  # it may lose the CUDA context for the rest of the process
        pytest.xfail(kernel.xfail_cuda)
    run_case(loaded_files(backend, source), kernel)


def test_manifest_is_consistent():
    """Needs no sources: every kernel names a known case and family, and no kernel is listed twice."""
    cases = all_cases()
    seen = set()
    for source, kernel in KERNELS:
        assert kernel.case in cases, f"{source.label}::{kernel.name}: no case {kernel.case!r}"
        assert kernel.family in FAMILIES, f"{source.label}::{kernel.name}: unknown family {kernel.family!r}"
        assert (source.path, kernel.name) not in seen, f"{source.label}::{kernel.name} is listed twice"
        seen.add((source.path, kernel.name))
    for library in libraries():
        assert len(library.commit) == 40 and all(len(f.commit) == 40 for f in library.files), library.name
        for source in library.files:  # a file's own header versions go into its own first include folder
            assert not source.headers or source.own_include_dirs, f"{source.label}: headers without include_dirs"
            assert all(len(commit) == 40 for _, commit in source.headers), source.label
