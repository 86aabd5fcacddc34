"""What decides a kernel's pipeline besides its code: which kernels a translation holds, the parameters that
function constants remove, and the kernel's own limit on threads per threadgroup.

A translation may hold only some kernels of a library (a big library compiles each kernel on first use): the
others' own declarations are dropped, that is a plain kernel's definition and a template's explicit
instantiation. Metal never lets other code call a kernel, so nothing else refers to them; the templates
themselves, and every other declaration, stay.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .parser import FunctionConstant, KernelDecl, Param, Program


def drop_unselected(texts: list[str], program: Program, selected: Iterable[int]) -> None:
    """Blank the own declaration of every kernel not in ``selected`` (indices into ``program.kernels``)."""
    keep = set(selected)
    for index, kernel in enumerate(program.kernels):
        if index not in keep and kernel.span is not None:
            start, end = kernel.span
            texts[start:end] = [""] * (end - start)


def absent_params(kernel: KernelDecl, function_constants: Iterable[FunctionConstant],
                  constants: dict[int, Any]) -> frozenset[int]:
    """Positions of the parameters that do not exist for these function-constant values: a parameter declared
    ``[[function_constant(name)]]`` exists only while that constant is defined and true."""
    index_of = {fc.name: fc.index for fc in function_constants}
    return frozenset(j for j, param in enumerate(kernel.params) if not is_present(param, index_of, constants))


def is_present(param: Param, index_of: dict[str, int], constants: dict[int, Any]) -> bool:
    if param.function_constant is None:
        return True
    index = index_of.get(param.function_constant)
    return index is not None and bool(constants.get(index, False))


MAX_THREADS_PREFIX = "mg_threads_limit_"


def max_threads_constant(index: int, kernel: KernelDecl) -> tuple[str, str] | None:
    """For a kernel declared ``[[max_total_threads_per_threadgroup(E)]]``: a declaration of E as a constant in
    the kernel's namespace (a variable template over the template's own parameters when E may name them), and
    the expression that reads it for this kernel from the global namespace. None without the attribute, or for a
    template instantiation whose arguments are deduced rather than written (E cannot be evaluated for it)."""
    if kernel.max_total_threads is None:
        return None
    name = f"{MAX_THREADS_PREFIX}{index}"
    value = f"static_cast<unsigned>({kernel.max_total_threads})"
    if kernel.template_params is not None:
        if kernel.template_args is None:
            return None
        declaration = f"template <{kernel.template_params}> constexpr unsigned {name} = {value};"
        reference = f"{name}<{kernel.template_args}>"
    else:
        declaration = f"constexpr unsigned {name} = {value};"
        reference = name
    scope = kernel.name.rpartition("::")[0]
    if scope:
        return f"namespace {scope} {{ {declaration} }}", f"::{scope}::{reference}"
    return declaration, f"::{reference}"
