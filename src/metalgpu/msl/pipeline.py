"""What decides a kernel's pipeline besides its code: which kernels a translation holds, the parameters that
function constants remove, the function constants a kernel needs a value for, and the kernel's own limit on
threads per threadgroup.

A translation may hold only some kernels of a library (a big library compiles each kernel on first use): the
others' own declarations are dropped, that is a plain kernel's definition and a template's explicit
instantiation. Metal never lets other code call a kernel, so nothing else refers to them; the templates
themselves, and every other declaration, stay.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .analysis import function_definitions
from .lexer import IDENT, Token
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


class ConstantUses:
    """Which function constants each kernel uses, for the constants a pipeline needs a value for.

    Metal fails to make a pipeline whose kernel uses a function constant that was given no value, unless the
    constant is optional: named in ``is_function_constant_defined(name)`` somewhere in the shader. A kernel uses
    a constant that its body, a function it reaches, a ``[[function_constant(name)]]`` parameter or a program-scope
    constant derived from it names. This is a token scan that may overestimate (a name reached through a function
    of the same name that the kernel does not call), as the cooperative analysis does (analysis.py).
    """

    def __init__(self, tokens: list[Token], program: Program):
        self._tokens = tokens
        self._program = program
        self._optional: frozenset[str] | None = None
        self._definitions: dict[str, list[tuple[int, int]]] | None = None
        self._by_body: dict[tuple[int, int] | None, frozenset[str]] = {}

    @property
    def optional(self) -> frozenset[str]:
        """The constants named in ``is_function_constant_defined(name)``."""
        if self._optional is None:
            tokens = self._tokens
            self._optional = frozenset(tokens[k + 2].text for k in range(len(tokens) - 2)
                                       if tokens[k].text == "is_function_constant_defined"
                                       and tokens[k + 1].text == "(")
        return self._optional

    def unset(self, kernel_index: int, constants: dict[int, Any]) -> list[FunctionConstant]:
        """The constants kernel ``kernel_index`` uses that are neither given in ``constants`` nor optional."""
        candidates = [fc for fc in self._program.function_constants if fc.index not in constants]
        candidates = [fc for fc in candidates if fc.name not in self.optional] if candidates else []
        if not candidates:
            return []
        kernel = self._program.kernels[kernel_index]
        names = self._reached(kernel.body) | {p.function_constant for p in kernel.params if p.function_constant}
        return [fc for fc in candidates if fc.name in names]

    def _reached(self, body: tuple[int, int] | None) -> frozenset[str]:
        """Every identifier in ``body`` and in the definitions it reaches, transitively (memoised per body: the
        instantiations of one template share it)."""
        if body not in self._by_body:
            definitions = self._all_definitions()
            names: set[str] = set()
            pending = [body] if body is not None else []
            seen: set[tuple[int, int]] = set()
            while pending:
                span = pending.pop()
                if span in seen:
                    continue
                seen.add(span)
                for token in self._tokens[span[0]:span[1]]:
                    if token.kind == IDENT and token.text not in names:
                        names.add(token.text)
                        pending.extend(definitions.get(token.text, ()))
            self._by_body[body] = frozenset(names)
        return self._by_body[body]

    def _all_definitions(self) -> dict[str, list[tuple[int, int]]]:
        """Function definitions by name (analysis.py), and program-scope ``constant`` declarations by the name
        they declare, so that a constant derived from a function constant leads to it."""
        if self._definitions is None:
            definitions = {name: list(spans) for name, spans in function_definitions(self._tokens).items()}
            for name, span in _constant_declarations(self._tokens):
                definitions.setdefault(name, []).append(span)
            self._definitions = definitions
        return self._definitions


def _constant_declarations(tokens: list[Token]) -> list[tuple[str, tuple[int, int]]]:
    """``constant T name = ...;`` (also ``name[n] = {...}``, ``name{...}``, ``name [[attribute]]``): the name it
    declares and the statement's tokens. Function declarations returning ``constant`` references are left out."""
    found = []
    for k, token in enumerate(tokens):
        if token.text != "constant" or (k and tokens[k - 1].text not in _DECLARATION_START):
            continue
        depth, name, end = 0, None, k
        while end < len(tokens) and not (depth == 0 and tokens[end].text == ";"):
            text = tokens[end].text
            if depth == 0 and name is None:
                if text == "(":
                    break  # a function
                if text in ("=", "[", "{") and tokens[end - 1].kind == IDENT:
                    name = tokens[end - 1].text
            if text in ("(", "[", "{"):
                depth += 1
            elif text in (")", "]", "}"):
                depth -= 1
            end += 1
        if name is not None:
            found.append((name, (k, end)))
    return found


_DECLARATION_START = frozenset({";", "{", "}", "static", "constexpr", "const"})
