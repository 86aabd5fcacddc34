"""The registry of runtime cases: one function per kind of kernel, run against a numpy reference.

A case is called as ``case(interface, kernel, **kernel.params)`` with the kernel's file already loaded and the
kernel selected, and raises AssertionError when the results differ (``harness.check``). Cases live in
``cases_<library>.py``. A case registered with ``selects_function=True`` selects the kernel itself, with the
function constants its library's host code derives from the shapes (ggml, MLX): selecting it first without them
would compile a specialisation that never runs.
"""
from __future__ import annotations

from collections.abc import Callable

CASES: dict[str, Callable] = {}


def case(name: str, *, selects_function: bool = False) -> Callable[[Callable], Callable]:
    def register(function: Callable) -> Callable:
        if name in CASES:
            raise ValueError(f"case {name!r} is defined twice")
        function.selects_function = selects_function
        CASES[name] = function
        return function
    return register


def all_cases() -> dict[str, Callable]:
    from . import (  # noqa: F401  (they register their cases)
        cases_candle,
        cases_ggml,
        cases_ggml_matmul,
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
    function = cases[kernel.case]
    if not function.selects_function:
        interface.set_function(kernel.name)
    function(interface, kernel, **kernel.params)
