"""Shared fixtures: every device test runs once per backend that works here.

Backend selection (like PyOpenCL's pytest hook):

* by default, every backend in ``metalgpu.backends()``;
* ``METALGPU_BACKENDS=cpu,cuda`` runs exactly those. A backend named there that cannot
  run on this machine is *skipped* with the reason from ``BackendUnavailableError``;
  a backend that is present and then fails is a *failure*.

Each test session compiles into a fresh temporary cache (``METALGPU_CACHE_DIR``) unless the
user set one, so a stale or corrupt cache from an earlier build never hides a bug.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

KERNELS_DIR = Path(__file__).parent / "kernels"
REPO_ROOT = Path(__file__).resolve().parent.parent

_session_cache_dir: str | None = None


def pytest_configure(config):
    """Point the compile cache at a session temp folder before metalgpu compiles anything."""
    global _session_cache_dir
    if not os.environ.get("METALGPU_CACHE_DIR"):
        _session_cache_dir = tempfile.mkdtemp(prefix="metalgpu-test-cache-")
        os.environ["METALGPU_CACHE_DIR"] = _session_cache_dir
    elif os.environ.get("PYTEST_XDIST_WORKER"):  # a folder per pytest-xdist worker: tests that list the cache
        os.environ["METALGPU_CACHE_DIR"] = os.path.join(os.environ["METALGPU_CACHE_DIR"],
                                                        os.environ["PYTEST_XDIST_WORKER"])


def pytest_unconfigure(config):
    if _session_cache_dir is not None:
        shutil.rmtree(_session_cache_dir, ignore_errors=True)


# A CUDA kernel fault leaves the process's GPU unusable (a sticky error), so every later CUDA test of the process
# would fail with it. Under pytest-xdist the worker ends after the faulting test has been reported, and xdist starts
# a fresh one for the tests that remain: one fault is one failure.
_sticky_fault = False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    global _sticky_fault
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and any(
            words in str(call.excinfo.value) for words in ("sticky error", "an earlier kernel fault")):
        _sticky_fault = True  # the fault itself, or a test after one that did not report it


def pytest_runtest_teardown(item, nextitem):
    if _sticky_fault and os.environ.get("PYTEST_XDIST_WORKER"):
        os._exit(75)  # after this test's report went to the controller


def _requested_backends() -> list[str] | None:
    selector = os.environ.get("METALGPU_BACKENDS", "").strip()
    if not selector:
        return None
    return [name.strip() for name in selector.split(",") if name.strip()]


def _unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None if an Interface opens fine."""
    import metalgpu

    try:
        interface = metalgpu.Interface(backend=name)
    except metalgpu.BackendUnavailableError as error:
        return f"backend {name!r} unavailable: {error}"
    interface.close()
    return None


def _backend_params() -> list:
    import metalgpu

    available = list(metalgpu.backends())
    requested = _requested_backends()
    if requested is None:
        return [pytest.param(name, id=name) for name in available]
    params = []
    for name in requested:
        reason = None if name in available else _unavailable_reason(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


_cached_params: list | None = None


def pytest_generate_tests(metafunc):
    global _cached_params
    if "backend" in metafunc.fixturenames:
        if _cached_params is None:
            _cached_params = _backend_params()
        metafunc.parametrize("backend", _cached_params, scope="session")


@pytest.fixture
def iface(backend):
    """A fresh Interface on the backend under test, closed after the test."""
    import metalgpu

    interface = metalgpu.Interface(backend=backend)
    try:
        yield interface
    finally:
        interface.close()


def load_kernel(interface, filename: str, function: str | None = None):
    """Load ``tests/kernels/<filename>`` (cached across tests: same source, same binary)."""
    interface.load_shader(str(KERNELS_DIR / filename))
    if function is not None:
        interface.set_function(function)
    return interface
