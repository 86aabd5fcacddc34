"""The fuzz suite's worker process (runner.py), shared by its tests, and a summary of what it was sent."""
from __future__ import annotations

import pytest

from .modes import LONG
from .runner import Runner

_runner: Runner | None = None


@pytest.fixture(scope="session")
def fuzz_runner():
    """The worker process the fuzz tests send their inputs to (cpu backend)."""
    import metalgpu

    if "cpu" not in metalgpu.backends():
        pytest.skip("the fuzz suite runs on the cpu backend, which does not work here (no C++ compiler)")
    global _runner
    _runner = Runner()
    yield _runner
    _runner.close()


def pytest_terminal_summary(terminalreporter):
    if _runner is None or not _runner.counts:
        return
    terminalreporter.section(f"metalgpu fuzz ({'long' if LONG else 'quick'} mode): examples by outcome")
    for (strategy, outcome), count in sorted(_runner.counts.items()):
        terminalreporter.write_line(f"{strategy:>16} {outcome:<12} {count:>7}")
    for strategy, seconds in sorted(_runner.seconds.items()):
        slowest, what = _runner.slowest[strategy]
        terminalreporter.write_line(f"{strategy:>16} {'seconds':<12} {seconds:>7.1f} in the worker; the slowest "
                                    f"example {slowest:.1f} s: {what[:120]}")
