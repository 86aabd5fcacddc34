"""Loads of SIMD-group matrices that products read only as their B operand, named so for the target.

A tensor core reads an 8x8 B operand in another layout than its A operand and its result (metal/_simdgroup_mma.h):
a half or bfloat matrix read from threadgroup memory takes one hardware row load in one of the two layouts, and a
transpose for the other where something reads it. Which one the load reads first decides whether a GEMM's B
operands each cost a transpose. So where every product in the source names an object only as its B operand

    simdgroup_multiply_accumulate(acc[i][j], a[i], b[j], acc[i][j]);    // b: third argument only

the statements ``simdgroup_load(b[j], ...)`` become ``::metal::simdgroup_load_b_operand(b[j], ...)``, which loads
the same values (any other use of the matrix gets them too, through the transpose). It changes what the code
costs, never what it does, so the test is by name over the whole source: a name used in any other place of a
product, in any function, keeps Metal's load.
"""
from __future__ import annotations

from .lexer import IDENT, PUNCT, Token

LOAD = "simdgroup_load"
B_OPERAND_LOAD = "::metal::simdgroup_load_b_operand"
PRODUCTS = {"simdgroup_multiply_accumulate": 4, "simdgroup_multiply": 3}
B_ARGUMENT = 2
_NAMES = frozenset({LOAD, *PRODUCTS})


def rewrite(tokens: list[Token], texts: list[str], match: list[int]) -> None:
    """Rename the loads of ``tokens`` in ``texts`` (the text emitted for each token) whose matrix only products'
    B operands name; ``match`` pairs brackets (outline.bracket_partners)."""
    calls = [k for k, token in enumerate(tokens) if token.kind == IDENT and token.text in _NAMES]  # one scan
    b_names: set[str] = set()
    other_names: set[str] = set()
    for k in calls:
        if tokens[k].text == LOAD:
            continue
        arguments = _arguments(tokens, match, k)
        if arguments is None or len(arguments) != PRODUCTS[tokens[k].text]:
            continue
        for position, (begin, end) in enumerate(arguments):
            name = _object_name(tokens, match, begin, end)
            (b_names if position == B_ARGUMENT else other_names).add(name)
    b_only = b_names - other_names - {None}
    for k in calls if b_only else ():
        if tokens[k].text != LOAD or texts[k] != LOAD:
            continue
        arguments = _arguments(tokens, match, k)
        if not arguments or _object_name(tokens, match, *arguments[0]) not in b_only:
            continue
        start = k
        if start >= 2 and tokens[start - 1].text == "::" and tokens[start - 2].text == "metal":
            start -= 2  # metal::simdgroup_load
        if start >= 1 and tokens[start - 1].text in ("::", ".", "->"):
            if tokens[start - 1].text != "::" or (start >= 2 and tokens[start - 2].kind == IDENT):
                continue  # another namespace's, or a member: not Metal's
            start -= 1  # ::metal::simdgroup_load
        for j in range(start, k):
            texts[j] = ""
        texts[k] = B_OPERAND_LOAD


def _arguments(tokens: list[Token], match: list[int], name: int) -> list[tuple[int, int]] | None:
    """The [begin, end) token ranges of the arguments of the call whose function name is at ``name``; None where
    it is not a call or a comma's role is unclear."""
    opener = name + 1
    if opener >= len(tokens) or tokens[opener].text != "(" or match[opener] < 0:
        return None
    close = match[opener]
    arguments, begin, k = [], opener + 1, opener + 1
    while k < close:
        text = tokens[k].text
        if tokens[k].kind == PUNCT and text in ("(", "[", "{") and match[k] > k:
            k = match[k] + 1
            continue
        if tokens[k].kind == PUNCT and text in ("<", ">", "?"):
            return None  # a template argument list or a conditional: the commas may not separate arguments
        if text == ",":
            arguments.append((begin, k))
            begin = k + 1
        k += 1
    if begin < close:
        arguments.append((begin, close))
    return arguments


def _object_name(tokens: list[Token], match: list[int], begin: int, end: int) -> str | None:
    """``x`` where the argument is ``x`` or ``x[...]...[...]``; else None."""
    if begin >= end or tokens[begin].kind != IDENT:
        return None
    k = begin + 1
    while k < end and tokens[k].text == "[" and match[k] > k:
        k = match[k] + 1
    return tokens[begin].text if k == end else None
