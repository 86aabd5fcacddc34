"""SIMD-group matrix statements in a row joined into one call, so that the target may run them as one instruction.

Products: the statements

    simdgroup_multiply_accumulate(d1, a1, b1, c1);
    simdgroup_multiply_accumulate(d2, a2, b2, c2);

become ``::metal::simdgroup_multiply_accumulate_pair(d1, a1, b1, c1, d2, a2, b2, c2);``, which does what the two
do, in order (metal/_simdgroup_matrix.h). On CUDA tensor cores, two half or bfloat products into float matrices
that read the same B matrix then fill the two halves of one ``mma.sync``, where each alone leaves half of it
unused: a GEMM that writes its products out with the B operand held across a pair of accumulators (the loop over
the rows of its tile innermost) gets them. A run of such statements is joined two by two.

Loads: four (else two) ``simdgroup_load`` statements in a row become one call,
``::metal::simdgroup_load_group(::metal::simdgroup_load_request(d1, ...), ...);`` (a request holds one statement's
arguments), which loads each in order; on CUDA tensor cores, four 16-bit matrices read from aligned rows of
threadgroup memory take one ``ldmatrix.x4`` where each alone takes an ``ldmatrix.x1``.

Joined only where it cannot change what the code does: the first statement stands alone in its block (not the body
of an ``if``, ``else``, ``for`` or ``while``), and the later ones' arguments only name objects and compute values
(no call but a vector constructor, no assignment or increment), since they are now evaluated before the first
statement runs. Whether a product's result is an operand of the next is the header's to tell, from the objects'
addresses; a load writes no memory, so a later load's source is the same before it as after.
"""
from __future__ import annotations

import re

from .lexer import IDENT, PUNCT, Token

PRODUCT = "simdgroup_multiply_accumulate"
PAIR = "::metal::simdgroup_multiply_accumulate_pair"
LOAD = "simdgroup_load"
GROUP = "::metal::simdgroup_load_group"
REQUEST = "::metal::simdgroup_load_request"
_STATEMENT_STARTS = frozenset({";", "{", "}"})
# Tokens that may make a comma a template argument separator, or an operand a value computed before the first
# statement runs.
_AMBIGUOUS = frozenset({"<", ">", ">>", "?", "{"})
_EFFECTS = frozenset({"++", "--", "=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="})
_VECTOR_TYPE = re.compile(r"(?:u?(?:char|short|int|long)|float|half|bfloat|bool)[234]")


def rewrite(tokens: list[Token], texts: list[str], match: list[int]) -> None:
    """Join adjacent product statements, and adjacent load statements, of ``tokens`` in ``texts`` (the text emitted
    for each token); ``match`` pairs brackets (outline.bracket_partners)."""
    for run in _runs(tokens, texts, match, PRODUCT, (4,)):
        for first, second in zip(run[0::2], run[1::2]):
            _join(tokens, texts, [first, second], PAIR, "")
    for run in _runs(tokens, texts, match, LOAD, (2, 3, 4, 5)):
        while len(run) >= 2:
            size = 4 if len(run) >= 4 else 2
            _join(tokens, texts, run[:size], GROUP + "(", REQUEST)
            run = run[size:]


def _runs(tokens: list[Token], texts: list[str], match: list[int], name: str,
          counts: tuple[int, ...]) -> list[list[tuple[int, int, int, int]]]:
    """The runs of statements calling ``name`` with one of ``counts`` arguments, each statement right after the one
    before and, past the first, computing its arguments without effects."""
    statements = [statement for at, token in enumerate(tokens)
                  if token.kind == IDENT and token.text == name
                  and (statement := _lone_call(tokens, texts, match, at, counts)) is not None]
    runs: list[list[tuple[int, int, int, int]]] = []
    for statement in statements:
        start, opener, close, _ = statement
        if runs and runs[-1][-1][3] + 1 == start and _values_only(tokens, opener + 1, close):
            runs[-1].append(statement)
        else:
            runs.append([statement])
    return [run for run in runs if len(run) > 1]


def _join(tokens: list[Token], texts: list[str], statements: list[tuple[int, int, int, int]], head: str,
          each: str) -> None:
    """One call for ``statements``: ``head``, then each statement's arguments, wrapped in ``each(...)`` where
    ``each`` is given (and the call's parenthesis closed at the end), else run on from one statement's to the
    next's."""
    for number, (start, opener, close, end) in enumerate(statements):
        last = number + 1 == len(statements)
        for k in range(start, opener):  # the name, qualified or not
            texts[k] = ""
        if each:
            texts[start] = (head if number == 0 else "") + each
            texts[end] = ");" if last else ","
        else:
            texts[start] = head if number == 0 else ""
            if number > 0:
                texts[opener] = ""
            if not last:
                texts[close], texts[end] = ",", ""


def _lone_call(tokens: list[Token], texts: list[str], match: list[int], name: int,
               counts: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """(first token, `(`, `)`, `;`) of the statement ``[::][metal::]f(...);`` whose function name is at ``name``, with
    one of ``counts`` arguments, where it stands alone, else None."""
    start = name
    for qualifier in ("::", "metal", "::"):
        if start > 0 and tokens[start - 1].text == qualifier:
            start -= 1
    if start == 0 or tokens[start - 1].text not in _STATEMENT_STARTS:
        return None
    if any(texts[k] != tokens[k].text for k in range(start, name + 1)):
        return None  # another rewrite owns it
    opener = name + 1
    if opener >= len(tokens) or tokens[opener].text != "(":
        return None
    close = match[opener]
    if close < 0 or close + 1 >= len(tokens) or tokens[close + 1].text != ";":
        return None
    if _argument_count(tokens, opener + 1, close) not in counts:
        return None
    return start, opener, close, close + 1


def _argument_count(tokens: list[Token], begin: int, end: int) -> int | None:
    """How many arguments lie between ``begin`` and ``end``; None where a comma's role is unclear."""
    count, depth = 1, 0
    for k in range(begin, end):
        text = tokens[k].text
        if tokens[k].kind != PUNCT:
            continue
        if text in _AMBIGUOUS:
            return None
        if text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            depth -= 1
        elif text == "," and depth == 0:
            count += 1
    return count if begin < end else 0


def _values_only(tokens: list[Token], begin: int, end: int) -> bool:
    """Whether the tokens only name objects and compute values: no assignment or increment, and no call but of a
    vector constructor (``ulong2(x, y)``); parentheses that group are fine."""
    for k in range(begin, end):
        token = tokens[k]
        if token.kind != PUNCT:
            continue
        if token.text in _EFFECTS:
            return False
        if token.text == "(" and k > begin:
            before = tokens[k - 1]
            if before.kind == IDENT and not _VECTOR_TYPE.fullmatch(before.text):
                return False
            if before.text in (")", "]"):
                return False
    return True
