"""Loads of SIMD-group matrices written in the form that the products reading them want on tensor cores.

A tensor core reads an 8x8 B operand in another layout than its A operand and its result (metal/_simdgroup_mma.h):
a half or bfloat matrix read from threadgroup memory takes one hardware row load in one of the two layouts, and a
transpose for the other where something reads it. Which one the load reads first decides whether a GEMM's B
operands each cost a transpose. So where every product in the source names an object only as its B operand

    simdgroup_multiply_accumulate(acc[i][j], a[i], b[j], acc[i][j]);    // b: third argument only

the statements ``simdgroup_load(b[j], ...)`` become ``::metal::simdgroup_load_b_operand(b[j], ...)``, which loads
the same values (any other use of the matrix gets them too, through the transpose). It changes what the code
costs, never what it does, so the test is by name over the whole source: a name used in any other place of a
product, in any function, keeps Metal's load.

The A operand of one tensor-core instruction is two 8x8 matrices, the top and bottom halves that a pair of
product statements joined by msl/product_pairs.py reads (``a[0]`` and ``a[1]`` below). Where their loads stand as two
statements in a row, in that order,

    simdgroup_load(a[0], tile + 0 * 8 * ld, ld, ulong2(k, 0));
    simdgroup_load(a[1], tile + 1 * 8 * ld, ld, ulong2(k, 0));

they become one call, ``::metal::simdgroup_load_a_pair(a[0], ..., a[1], ...)`` (every argument written out),
which does what the two do, in order, and on tensor cores may read both with one instruction whose two registers
are then the halves of that operand as they are. Joined only where the second's arguments compute without side
effects (no assignment or increment, no call but a scalar or vector type's constructor): they are now evaluated
before the first load.
"""
from __future__ import annotations

import re

from .lexer import IDENT, PUNCT, Token

LOAD = "simdgroup_load"
B_OPERAND_LOAD = "::metal::simdgroup_load_b_operand"
A_PAIR_LOAD = "::metal::simdgroup_load_a_pair"
PRODUCTS = {"simdgroup_multiply_accumulate": 4, "simdgroup_multiply": 3}
A_ARGUMENT, B_ARGUMENT = 1, 2
LOAD_DEFAULTS = ("8", "::metal::ulong2(0)", "false")  # elements_per_row, matrix_origin, transpose_matrix
_VALUE_TYPE = re.compile(r"^(?:u?(?:char|short|int|long)|half|float|bfloat|bool)[234]?$")  # its constructor computes
_CHANGES = frozenset({"++", "--", "=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="})
_NAMES = frozenset({LOAD, *PRODUCTS})


def rewrite(tokens: list[Token], texts: list[str], match: list[int], product_pairs: list[tuple[int, int]]) -> None:
    """Rename the loads of ``tokens`` in ``texts`` (the text emitted for each token) whose matrix only products'
    B operands name, and join the loads of the A operands of ``product_pairs`` (the `(` of each pair's two product
    statements, msl/product_pairs.py); ``match`` pairs brackets (outline.bracket_partners)."""
    calls = [k for k, token in enumerate(tokens) if token.kind == IDENT and token.text in _NAMES]  # one scan
    _name_b_operand_loads(tokens, texts, match, calls)
    _join_a_pair_loads(tokens, texts, match, product_pairs, calls)


def _name_b_operand_loads(tokens: list[Token], texts: list[str], match: list[int], calls: list[int]) -> None:
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
        start = _metals(tokens, k)
        if not arguments or start is None or _object_name(tokens, match, *arguments[0]) not in b_only:
            continue
        for j in range(start, k):
            texts[j] = ""
        texts[k] = B_OPERAND_LOAD


def _join_a_pair_loads(tokens: list[Token], texts: list[str], match: list[int],
                       product_pairs: list[tuple[int, int]], calls: list[int]) -> None:
    pairs = set()
    for opener, opener2 in product_pairs:
        first, second = (_arguments(tokens, match, opener - 1), _arguments(tokens, match, opener2 - 1))
        if first and second and len(first) > A_ARGUMENT and len(second) > A_ARGUMENT:
            pairs.add((_text(tokens, *first[A_ARGUMENT]), _text(tokens, *second[A_ARGUMENT])))
    if not pairs:
        return
    loads = [statement for k in calls if tokens[k].text == LOAD and texts[k] == LOAD
             and (statement := _load_statement(tokens, match, k)) is not None]
    i = 0
    while i + 1 < len(loads):
        (start, name, arguments, end), (start2, name2, arguments2, _) = loads[i], loads[i + 1]
        if (start2 != end + 1 or (_text(tokens, *arguments[0]), _text(tokens, *arguments2[0])) not in pairs
                or not _computes_only(tokens, arguments2[0][0], arguments2[-1][1])):
            i += 1
            continue
        close, close2 = arguments[-1][1], arguments2[-1][1]
        for j in range(start, name):
            texts[j] = ""
        texts[name] = A_PAIR_LOAD
        texts[close] = _defaults(len(arguments)) + ","
        texts[end] = ""
        for j in range(start2, name2 + 2):  # through its `(`
            texts[j] = ""
        texts[close2] = _defaults(len(arguments2)) + ")"
        i += 2


def _metals(tokens: list[Token], name: int) -> int | None:
    """Where the name of Metal's function at ``name`` begins (``metal::`` or ``::metal::`` before it); None where
    another namespace or an object qualifies it."""
    start = name
    if start >= 2 and tokens[start - 1].text == "::" and tokens[start - 2].text == "metal":
        start -= 2
    if start >= 1 and tokens[start - 1].text in ("::", ".", "->"):
        if tokens[start - 1].text != "::" or (start >= 2 and tokens[start - 2].kind == IDENT):
            return None
        start -= 1
    return start


def _load_statement(tokens: list[Token], match: list[int], name: int):
    """(first token, name, arguments, `;`) of the statement ``[[::]metal::]simdgroup_load(...);`` whose function
    name is at ``name``, where it stands alone in its block with 2 to 5 arguments; else None."""
    start = _metals(tokens, name)
    arguments = _arguments(tokens, match, name)
    if start is None or start == 0 or tokens[start - 1].text not in (";", "{", "}") or not arguments:
        return None
    close = match[name + 1]
    if not 2 <= len(arguments) <= 5 or close + 1 >= len(tokens) or tokens[close + 1].text != ";":
        return None
    return start, name, arguments, close + 1


def _defaults(count: int) -> str:
    """The default arguments after ``count`` arguments of simdgroup_load, each after a comma."""
    return "".join(", " + value for value in LOAD_DEFAULTS[count - 2:])


def _computes_only(tokens: list[Token], begin: int, end: int) -> bool:
    """Whether the tokens compute values without side effects: no assignment or increment, and no call but a
    scalar or vector type's constructor (parentheses after an operator only group)."""
    for k in range(begin, end):
        text = tokens[k].text
        if tokens[k].kind != PUNCT:
            continue
        if text in _CHANGES:
            return False
        if text == "(" and k > 0:
            before = tokens[k - 1]
            if before.kind == IDENT and not (_VALUE_TYPE.match(before.text) and tokens[k - 2].text not in (".", "->")):
                return False
            if before.text in (")", "]"):
                return False
    return True


def _text(tokens: list[Token], begin: int, end: int) -> str:
    return " ".join(tokens[k].text for k in range(begin, end))


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
        if tokens[k].kind == PUNCT and text in ("<", ">"):
            return None  # a template argument list: the commas may not separate arguments
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
