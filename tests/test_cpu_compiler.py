"""The cpu target's compiler (backends/cpu_compiler.py) apart from any device: its precompiled headers are
started once, however many threads compile at a time (`metalgpu check` compiles in several)."""
from __future__ import annotations

import threading
import time

import pytest

from metalgpu.backends import cpu_compiler
from metalgpu.backends.base import CompileOptions
from metalgpu.cache import CompileCache


def test_the_precompiled_headers_are_started_once_by_threads_at_once(tmp_path, monkeypatch):
    compiler = cpu_compiler.CpuCompiler(CompileCache(tmp_path))
    if compiler._prelude(CompileOptions()) is None:
        pytest.skip("this C++ compiler takes no precompiled headers")
    builds, real_replace = [], cpu_compiler.os.replace

    def slow_replace(source, target):  # widens the window in which another thread may come in
        time.sleep(0.05)
        real_replace(source, target)

    monkeypatch.setattr(cpu_compiler.os, "replace", slow_replace)
    monkeypatch.setattr(cpu_compiler.CompileCache, "build_artifact",
                        staticmethod(lambda command, temporary, final, log=None: builds.append(command) or object()))
    errors = []

    def prepare():
        try:
            compiler.prepare(CompileOptions())
        except Exception as error:  # a failure in a thread fails the test
            errors.append(error)

    threads = [threading.Thread(target=prepare) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(builds) == 1
    header, _, _ = compiler._prelude(CompileOptions())
    assert header.read_text() == cpu_compiler.PRELUDE
