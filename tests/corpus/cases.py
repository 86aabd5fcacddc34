"""The registry of runtime cases: one function per kind of kernel, run against a numpy reference.

A case is called as ``case(interface, kernel, **kernel.params)`` with the kernel's file already loaded, and
raises AssertionError when the results differ (``harness.check``). Cases live in ``cases_<library>.py``.
"""
from __future__ import annotations

from collections.abc import Callable

CASES: dict[str, Callable] = {}


def case(name: str) -> Callable[[Callable], Callable]:
    def register(function: Callable) -> Callable:
        if name in CASES:
            raise ValueError(f"case {name!r} is defined twice")
        CASES[name] = function
        return function
    return register


def all_cases() -> dict[str, Callable]:
    from . import (  # noqa: F401
        cases_candle,
        cases_mlx,
        cases_mlx_matmul,
        cases_mlx_reduce,
        cases_pytorch,
    )
    return CASES


def run_case(interface, kernel) -> None:
    cases = all_cases()
    if kernel.case not in cases:
        raise KeyError(f"manifest kernel {kernel.name} names case {kernel.case!r}, which no cases_*.py defines")
    interface.set_function(kernel.name)
    cases[kernel.case](interface, kernel, **kernel.params)
