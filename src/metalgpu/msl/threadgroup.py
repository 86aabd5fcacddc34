"""Threadgroup variables declared in function bodies (`threadgroup float tile[32][33];`).

- Storage: the declaration gets MG_THREADGROUP_STORAGE (one copy per threadgroup: `__shared__` on CUDA, a
  fiber-shared `static thread_local` on the CPU). A declaration starts a statement: after `;`, `{`, `}` or a label's
  `:` (`case 4: threadgroup float x[4];`).
- Initialisers are dropped: threadgroup memory starts undefined on Metal, whose compiler accepts
  `threadgroup float t[32] = {0};`, and running one per thread would race with the other threads' writes.
- The 32 KiB Metal gives a threadgroup: after each declaration, a static_assert that the threadgroup variables in
  scope there (those of the enclosing blocks, not of closed sibling blocks, which may share memory) fit. The
  assertion depends on a template parameter of the function, so it fails only when the function is
  instantiated: one kernel instantiation over the limit fails its own compile, not the library's. Plain kernels
  are made templates for this (translate.py: PLAIN_KERNEL_HEAD), so they too are checked only when their wrapper
  instantiates them.
"""
from __future__ import annotations

from .lexer import IDENT, PUNCT, Token
from .outline import Declaration, skip_angles, template_parameters

THREADGROUP_BYTES = 32768
PLAIN_KERNEL_PARAMETER = "mg_plain_kernel_"
_STATEMENT_ENDS = (";", "{", "}", ":")
_SPECIFIERS = frozenset({"static", "const", "volatile", "constexpr"})


def rewrite(tokens: list[Token], texts: list[str], declarations: list[Declaration], match: list[int],
            plain_kernels: set[int]) -> None:
    """``plain_kernels``: the start tokens of the plain kernel definitions made templates by the translator."""
    for declaration in declarations:
        if declaration.kind == "function" and declaration.body is not None:
            _function_body(tokens, texts, match, declaration.body,
                           lambda d=declaration: _dependency(tokens, match, declarations, d, plain_kernels))


def _function_body(tokens: list[Token], texts: list[str], match: list[int], body: tuple[int, int],
                   dependency) -> None:
    """``dependency()``: the term that makes the body's assertions wait for an instantiation (_dependency)."""
    blocks: list[list[str]] = [[]]  # the threadgroup variables of each open block
    j = body[0] + 1
    while j < body[1]:
        text = tokens[j].text
        if text == "{" and tokens[j].kind == PUNCT:
            blocks.append([])
        elif text == "}" and tokens[j].kind == PUNCT and len(blocks) > 1:
            blocks.pop()
        elif text == "threadgroup" and tokens[j].kind == IDENT and _starts_declaration(tokens, j) \
                and not _declares_pointer(tokens, match, j):
            end = _declaration_end(tokens, match, j, body[1])
            names = _declare_storage(tokens, texts, match, j, end)
            blocks[-1].extend(names)
            live = [name for block in blocks for name in block]
            if live and end < body[1]:
                total = " + ".join(f"sizeof({name})" for name in live)
                texts[end] += (f" static_assert({dependency()}{total} <= {THREADGROUP_BYTES}, \"threadgroup memory:"
                               f" this kernel declares more than the 32 KiB a threadgroup has\");")
            j = end
        j += 1


def _starts_declaration(tokens: list[Token], k: int) -> bool:
    j = k - 1
    while j >= 0 and tokens[j].text in _SPECIFIERS:
        j -= 1
    return j >= 0 and tokens[j].kind == PUNCT and tokens[j].text in _STATEMENT_ENDS


def _declares_pointer(tokens: list[Token], match: list[int], start: int) -> bool:
    """Does the declaration starting at ``start`` declare a pointer or reference rather than storage?"""
    j = start + 1
    while j < len(tokens):
        text = tokens[j].text
        if text == "<" and tokens[j - 1].kind == IDENT:
            j = skip_angles(tokens, match, j, len(tokens))
            continue
        if text in ("*", "&", "&&"):
            return True
        if text in (";", "=", "[", ",", "(", "{"):
            return False
        j += 1
    return False


def _declaration_end(tokens: list[Token], match: list[int], start: int, end: int) -> int:
    """The `;` that ends the declaration at ``start``."""
    j = start
    while j < end and tokens[j].text != ";":
        if tokens[j].text in ("(", "[", "{") and match[j] > j:
            j = match[j]
        j += 1
    return j


def _declare_storage(tokens: list[Token], texts: list[str], match: list[int], start: int, end: int) -> list[str]:
    """Mark the declaration ``tokens[start:end]`` as threadgroup storage, drop its initialisers; its names."""
    texts[start] = "MG_THREADGROUP_STORAGE"
    k = start - 1
    while k >= 0 and tokens[k].text in _SPECIFIERS:
        if tokens[k].text == "static":  # MG_THREADGROUP_STORAGE says how it is stored
            texts[k] = ""
        k -= 1
    names: list[str] = []
    j, name, initialiser = start + 1, None, None
    while j <= end:
        text = tokens[j].text
        if text == "<" and tokens[j - 1].kind == IDENT:
            j = skip_angles(tokens, match, j, end)
            continue
        if text in (",", ";") or j == end:
            if name is not None:
                names.append(name)
            if initialiser is not None:
                for k in range(initialiser, j):
                    texts[k] = ""
            name = initialiser = None
        elif initialiser is None and (text == "=" or (text == "{" and name is not None)):
            initialiser = j
        elif tokens[j].kind == IDENT and initialiser is None:
            name = text
        if text in ("(", "[", "{") and match[j] > j:
            j = match[j] + 1
            continue
        j += 1
    return names


def _dependency(tokens: list[Token], match: list[int], declarations: list[Declaration], function: Declaration,
                plain_kernels: set[int]) -> str:
    """A term that is 0 but depends on a template parameter of ``function`` (or of its class), so that the
    assertion waits for an instantiation; '' if there is none."""
    if function.start in plain_kernels:
        return f"mg::zero_for_values<{PLAIN_KERNEL_PARAMETER}> + "
    heads = list(function.templates)
    for outer in declarations:  # enclosing class templates, innermost first
        if outer.kind == "class" and outer.body is not None and outer.body[0] < function.start < outer.body[1]:
            heads = list(outer.templates) + heads
    for head in reversed(heads):
        for kind, name in template_parameters(tokens, match, head):
            if kind == "type":
                return f"mg::zero_for_types<{name}> + "
            if kind == "value":
                return f"mg::zero_for_values<{name}> + "
            if kind == "pack":
                return f"sizeof...({name}) * 0 + "
    return ""
