"""Two SIMD-group products in a row joined into one call, so that the target may run them as one instruction.

The statements

    simdgroup_multiply_accumulate(d1, a1, b1, c1);
    simdgroup_multiply_accumulate(d2, a2, b2, c2);

become ``::metal::simdgroup_multiply_accumulate_pair(d1, a1, b1, c1, d2, a2, b2, c2);``, which does what the two
do, in order (metal/_simdgroup_matrix.h). On CUDA tensor cores, two half or bfloat products into float matrices
that read the same B matrix then fill the two halves of one ``mma.sync``, where each alone leaves half of it
unused: a GEMM that writes its products out with the B operand held across a pair of accumulators (the loop over
the rows of its tile innermost) gets them. A run of such statements is joined two by two.

Joined only where it cannot change what the code does: the first statement stands alone in its block (not the body
of an ``if``, ``else``, ``for`` or ``while``), and the second's arguments only name objects, without calling,
assigning or incrementing anything, since they are now evaluated before the first product runs. Whether the first
product's result is an operand of the second is the header's to tell, from the objects' addresses.
"""
from __future__ import annotations

from .lexer import IDENT, PUNCT, Token
from .outline import call_arguments

PRODUCT = "simdgroup_multiply_accumulate"
PAIR = "::metal::simdgroup_multiply_accumulate_pair"
_STATEMENT_STARTS = frozenset({";", "{", "}"})
_EFFECTS = frozenset({"(", "++", "--", "=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="})


def rewrite(tokens: list[Token], texts: list[str], match: list[int]) -> list[tuple[int, int]]:
    """Join adjacent product statements of ``tokens`` in ``texts`` (the text emitted for each token); ``match``
    pairs brackets (outline.bracket_partners). Returns the `(` of each joined pair's two statements."""
    statements = [statement for name, token in enumerate(tokens)
                  if token.kind == IDENT and token.text == PRODUCT
                  and (statement := _product_statement(tokens, texts, match, name)) is not None]
    joined = []
    i = 0
    while i + 1 < len(statements):
        (start, opener, close, end), (start2, opener2, close2, _) = statements[i], statements[i + 1]
        if start2 != end + 1 or not _names_only(tokens, opener2 + 1, close2):
            i += 1
            continue
        texts[start] = PAIR
        for k in range(start + 1, opener):  # the rest of a qualified name
            texts[k] = ""
        texts[close], texts[end] = ",", ""
        for k in range(start2, opener2 + 1):
            texts[k] = ""
        joined.append((opener, opener2))
        i += 2
    return joined


def _product_statement(tokens: list[Token], texts: list[str], match: list[int],
                       name: int) -> tuple[int, int, int, int] | None:
    """(first token, `(`, `)`, `;`) of the statement ``[::][metal::]simdgroup_multiply_accumulate(w, x, y, z);``
    whose function name is at ``name``, where it stands alone, else None."""
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
    arguments = call_arguments(tokens, match, opener)
    if arguments is None or len(arguments) != 4:
        return None
    return start, opener, close, close + 1


def _names_only(tokens: list[Token], begin: int, end: int) -> bool:
    """Whether the tokens only name objects: no call, assignment or increment."""
    return not any(tokens[k].kind == PUNCT and tokens[k].text in _EFFECTS for k in range(begin, end))
