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

One tensor-core instruction reads several 8x8 matrices as one operand, and one hardware row load reads up to four
into the registers that operand takes. So load statements in a row that fill one operand become one call, which
does what they do, in order, with every argument written out:

- ``::metal::simdgroup_load_a_pair``: the top and bottom halves of the A operand of a pair of products joined by
  msl/product_pairs.py, in that order (``a0[0]``, ``a0[1]`` below);
- ``::metal::simdgroup_load_a_quad``: those of a pair and then those of a later pair that adds its products to the
  first pair's results and writes them there (``a1[0]``, ``a1[1]``): on tensor cores one product of depth 16;
- ``::metal::simdgroup_load_b_pair``: two loads of B operands whose products add to and write the same matrices,
  the second's after the first's (``b0``, ``b1``): the two halves of that deeper product's B operand.

    simdgroup_load(a0[0], tile, ld);        simdgroup_load(a0[1], tile + 8 * ld, ld);
    simdgroup_load(a1[0], tile, ld, ulong2(8, 0));  simdgroup_load(a1[1], tile + 8 * ld, ld, ulong2(8, 0));
    simdgroup_load(b0, other, ld);          simdgroup_load(b1, other, ld, ulong2(0, 8));
    simdgroup_multiply_accumulate(c[0], a0[0], b0, c[0]);  simdgroup_multiply_accumulate(c[1], a0[1], b0, c[1]);
    simdgroup_multiply_accumulate(c[0], a1[0], b1, c[0]);  simdgroup_multiply_accumulate(c[1], a1[1], b1, c[1]);

Operands are compared as written, each index that only adds and multiplies integer literals read as its value (a
macro's ``a[2 * 1 + 1]`` is ``a[3]``). Joined only where the later loads' arguments compute without side effects
(no assignment or increment, no call but a scalar or vector type's constructor): they are now evaluated before the
first load. Like the renaming, a join changes what the loads cost, never what they give: where the matrices are not
what the products read together, they are loaded right all the same, into registers the products then copy.
"""
from __future__ import annotations

import ast
import re

from .lexer import IDENT, PUNCT, Token
from .outline import call_arguments

LOAD = "simdgroup_load"
B_OPERAND_LOAD = "::metal::simdgroup_load_b_operand"
A_PAIR_LOAD = "::metal::simdgroup_load_a_pair"
A_QUAD_LOAD = "::metal::simdgroup_load_a_quad"
B_PAIR_LOAD = "::metal::simdgroup_load_b_pair"
PRODUCTS = {"simdgroup_multiply_accumulate": 4, "simdgroup_multiply": 3}
A_ARGUMENT, B_ARGUMENT = 1, 2
LOAD_DEFAULTS = ("8", "::metal::ulong2(0)", "false")  # elements_per_row, matrix_origin, transpose_matrix
_VALUE_TYPE = re.compile(r"^(?:u?(?:char|short|int|long)|half|float|bfloat|bool)[234]?$")  # its constructor computes
_CHANGES = frozenset({"++", "--", "=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="})
_NAMES = frozenset({LOAD, *PRODUCTS})
_CONSTANT_INDEX = re.compile(r"\[ ((?:\d+|[+*()]| )+?) \]")


def rewrite(tokens: list[Token], texts: list[str], match: list[int], product_pairs: list[tuple[int, int]]) -> None:
    """Rename the loads of ``tokens`` in ``texts`` (the text emitted for each token) whose matrix only products'
    B operands name, and join the loads in a row that fill one operand of the products, ``product_pairs`` among
    them (the `(` of each pair's two product statements, msl/product_pairs.py); ``match`` pairs brackets
    (outline.bracket_partners)."""
    calls = [k for k, token in enumerate(tokens) if token.kind == IDENT and token.text in _NAMES]  # one scan
    products = [(k, arguments) for k in calls if tokens[k].text in PRODUCTS
                and (arguments := _arguments(tokens, match, k)) and len(arguments) == PRODUCTS[tokens[k].text]]
    if not products:
        return
    _name_b_operand_loads(tokens, texts, match, calls, products)
    _join_loads(tokens, texts, match, product_pairs, calls, products)


def _name_b_operand_loads(tokens: list[Token], texts: list[str], match: list[int], calls: list[int],
                          products: list[tuple[int, list[tuple[int, int]]]]) -> None:
    b_names: set[str] = set()
    other_names: set[str] = set()
    for _, arguments in products:
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


def _join_loads(tokens: list[Token], texts: list[str], match: list[int], product_pairs: list[tuple[int, int]],
                calls: list[int], products: list[tuple[int, list[tuple[int, int]]]]) -> None:
    """Joins the load statements in a row that fill one tensor-core operand (see the module's doc); ``products``:
    each product call's name and its arguments."""
    # The A operands of each pair of products, with the matrices the pair writes and adds to, where it stands.
    halves: dict[tuple[str, str], list[tuple[tuple[str, ...], int]]] = {}
    arguments_at = dict(products)
    for opener, opener2 in product_pairs:
        first, second = arguments_at.get(opener - 1), arguments_at.get(opener2 - 1)
        if first and second and len(first) == len(second) == 4:
            key = (_operand(tokens, *first[A_ARGUMENT]), _operand(tokens, *second[A_ARGUMENT]))
            sums = tuple(_operand(tokens, *arguments[k]) for arguments in (first, second) for k in (0, 3))
            halves.setdefault(key, []).append((sums, opener))
    # The matrices each B operand's products write and add to, and where the first of them stands.
    b_reads: dict[str, tuple[set[tuple[str, str | None]], int]] = {}
    for k, arguments in products:
        b = _operand(tokens, *arguments[B_ARGUMENT])
        written, first = b_reads.get(b, (set(), k))
        added_to = _operand(tokens, *arguments[3]) if len(arguments) == 4 else None  # simdgroup_multiply: none
        b_reads[b] = written | {(_operand(tokens, *arguments[0]), added_to)}, first

    def a_quad(objects: list[str]) -> bool:
        """Whether the matrices are the halves of a pair's A operands and then of a later pair's, which adds its
        products to the first pair's results and writes them there: one product of depth 16 on tensor cores."""
        low, high = halves.get((objects[0], objects[1]), ()), halves.get((objects[2], objects[3]), ())
        return any(at < at2 and later == (sums[0], sums[0], sums[2], sums[2])
                   for sums, at in low for later, at2 in high)

    def b_pair(objects: list[str]) -> bool:
        """Whether the matrices are B operands only, the second's products adding to and writing the matrices of
        the first's, after them: the two halves of the B operand of products of depth 16 on tensor cores."""
        low, high = b_reads.get(objects[0]), b_reads.get(objects[1])
        return low is not None and high is not None and low[0] == high[0] and low[1] < high[1]

    loads = [statement for k in calls if tokens[k].text == LOAD and texts[k] in (LOAD, B_OPERAND_LOAD)
             and (statement := _load_statement(tokens, match, k)) is not None]
    i = 0
    while i < len(loads):
        run = _run(tokens, loads, i, 4)
        objects = [_operand(tokens, *arguments[0]) for _, _, arguments, _ in run]
        kinds = [texts[name] for _, name, _, _ in run]
        if kinds == [LOAD] * 4 and a_quad(objects):
            count, joined = 4, A_QUAD_LOAD
        elif kinds[:2] == [LOAD] * 2 and tuple(objects[:2]) in halves:
            count, joined = 2, A_PAIR_LOAD
        elif kinds[:2] == [B_OPERAND_LOAD] * 2 and b_pair(objects):
            count, joined = 2, B_PAIR_LOAD
        else:
            i += 1
            continue
        _join(texts, run[:count], joined)
        i += count


def _run(tokens: list[Token], loads: list, i: int, most: int) -> list:
    """Up to ``most`` load statements from ``loads[i]`` on, each right after the one before, those after the
    first with arguments that compute without side effects (they are evaluated before the first load)."""
    run = [loads[i]]
    while len(run) < most and i + len(run) < len(loads):
        after = loads[i + len(run)]
        if after[0] != run[-1][3] + 1 or not _computes_only(tokens, after[2][0][0], after[2][-1][1]):
            break
        run.append(after)
    return run


def _join(texts: list[str], run: list, joined: str) -> None:
    """Writes the load statements ``run`` as one call of ``joined`` with every argument of each, in order."""
    for n, (start, name, arguments, end) in enumerate(run):
        close = arguments[-1][1]
        last = n == len(run) - 1
        for j in range(start, name if n == 0 else name + 2):  # the others' names through their `(`
            texts[j] = ""
        if n == 0:
            texts[name] = joined
        texts[close] = _defaults(len(arguments)) + (")" if last else ",")
        if not last:
            texts[end] = ""


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


def _operand(tokens: list[Token], begin: int, end: int) -> str:
    """The argument's text with each index that only adds and multiplies integers written as its value, so that
    ``a[2 * 1 + 1]`` (an index a macro computes) names the matrix that ``a[3]`` does."""
    return _CONSTANT_INDEX.sub(lambda index: f"[ {_integer(index.group(1))} ]", _text(tokens, begin, end))


def _integer(expression: str) -> int | str:
    """The value of ``expression`` (decimal literals, +, *, parentheses), or the expression itself where it is
    not one that C++ and Python read alike or its value is not a small index."""
    try:
        value = _value(ast.parse(expression, mode="eval").body)
    except (SyntaxError, ValueError, RecursionError):
        return expression
    return value if value < 1 << 31 else expression


def _value(node: ast.AST) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _value(node.left), _value(node.right)
        if max(left, right) >= 1 << 31:
            raise ValueError("not a small index")
        return left + right if isinstance(node.op, ast.Add) else left * right
    raise ValueError("not an integer sum or product")


def _arguments(tokens: list[Token], match: list[int], name: int) -> list[tuple[int, int]] | None:
    """The arguments of the call whose function name is at ``name`` (outline.call_arguments); None where it is not
    a call or a comma's role is unclear."""
    opener = name + 1
    if opener >= len(tokens) or tokens[opener].text != "(":
        return None
    return call_arguments(tokens, match, opener)


def _object_name(tokens: list[Token], match: list[int], begin: int, end: int) -> str | None:
    """``x`` where the argument is ``x`` or ``x[...]...[...]``; else None."""
    if begin >= end or tokens[begin].kind != IDENT:
        return None
    k = begin + 1
    while k < end and tokens[k].text == "[" and match[k] > k:
        k = match[k] + 1
    return tokens[begin].text if k == end else None
