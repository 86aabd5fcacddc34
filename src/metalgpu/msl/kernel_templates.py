"""Kernel definitions and instantiations, rewritten so that a translation compiles only the kernels it wraps.

A plain kernel becomes a template of one defaulted parameter and an explicit instantiation of a kernel goes:
either way a kernel's body is compiled only where the wrapper that calls it instantiates it. A library of hundreds
of kernels then costs, for one kernel, the parse of its text and the code of that kernel; and a check in one
kernel's body (msl/threadgroup.py) fails that kernel only.
"""
from __future__ import annotations

from .lexer import IDENT, Token
from .outline import Declaration
from .parser import KernelDecl, Program
from .threadgroup import PLAIN_KERNEL_PARAMETER


def template_plain_kernels(tokens: list[Token], texts: list[str], declarations: list[Declaration]) -> set[int]:
    """Make every plain kernel definition of the source a template of one defaulted parameter: its body is then
    compiled only where a wrapper instantiates it (translate.kernel_callee names it `k<>`), and checks that depend
    on that parameter (msl/threadgroup.py) fail only that kernel. Returns the first token of each definition."""
    starts = set()
    for definition in declarations:
        if definition.kind != "function" or definition.body is None or definition.templates \
                or definition.is_instantiation or not _names_kernel(tokens, definition):
            continue
        head = f"template <int {PLAIN_KERNEL_PARAMETER} = 0> "
        if definition.in_extern_c:  # a template cannot have C linkage
            head = 'extern "C++" { ' + head
            texts[definition.end - 1] += " }"
        texts[definition.start] = head + texts[definition.start]
        starts.add(definition.start)
    return starts


def _names_kernel(tokens: list[Token], declaration: Declaration) -> bool:
    """Does the head of ``declaration`` say `kernel`, `[[kernel]]` or `[[host_name(...)]]`?"""
    end = declaration.name[0] if declaration.name else declaration.end
    return any(tokens[k].text in ("kernel", "host_name") and tokens[k].kind == IDENT
               for k in range(declaration.head_start, end))


def drop_kernel_instantiations(tokens: list[Token], texts: list[str], declarations: list[Declaration],
                                program: Program) -> None:
    """The explicit instantiations of kernels go: the wrapper that calls a kernel instantiates it, so only the
    kernels a translation wraps are compiled, and a check in one instantiation's body (msl/threadgroup.py) fails
    only that kernel. One that names its specialisation by its parameter types (`template [[kernel]] void
    k(device float*, uint);`, or `k<float>(...)` where several kernel templates are named k) leaves, in its scope,
    an alias of that function type for the wrapper to pick it by (translate.kernel_callee)."""
    instantiations = [d for d in declarations if d.is_instantiation and _names_kernel(tokens, d)]
    by_params = {d.params: d for d in instantiations if d.params is not None}
    aliases = {}
    for kernel in program.kernels:
        if picked_by_signature(kernel):
            declaration = by_params.get((kernel.params_span[0] - 1, kernel.params_span[1]))
            if declaration is not None:
                start, close = kernel.params_span
                params = " ".join(texts[k] for k in range(start, close) if texts[k])
                aliases[declaration.start] = f" using {signature_alias(kernel)} = void({params});"
    for declaration in instantiations:
        for k in range(declaration.start, declaration.end):
            texts[k] = ""
        texts[declaration.end - 1] = aliases.get(declaration.start, "")


def picked_by_signature(kernel: KernelDecl) -> bool:
    """Does the wrapper name this instantiation through its parameter types: its template arguments are deduced
    from them, or several kernel templates share its name?"""
    return kernel.name_token is None and kernel.params_span is not None and (
        kernel.template_args is None or kernel.overloaded)


def signature_alias(kernel: KernelDecl) -> str:
    return f"mg_kernel_signature_{kernel.params_span[0]}"
