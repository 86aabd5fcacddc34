"""The conditional operator with Metal's types.

`c ? h : f` with `h` a `half` and `f` a `float` is a float in Metal (the usual arithmetic conversions), but where
half (CUDA) or bfloat (every target) is a class, C++ finds a conversion each way and refuses the expression. Each
`c ? a : b` is rewritten to

    c ? static_cast<::mg::cond_t<decltype((a)), decltype((b))>>((a))
      : static_cast<::mg::cond_t<decltype((b)), decltype((a))>>((b))

`mg::cond_t` (metal/_translator.h) is the operand's own type unless a 16-bit float class meets another arithmetic
type, where it is Metal's common type. So only the chosen operand is evaluated (decltype evaluates nothing), an
lvalue stays an lvalue where both sides have one type (`thread float& r = c ? a : b;`), `void` operands keep
working, and constant expressions stay constant (template arguments, array bounds, `constexpr` initialisers).

Operand extents come from the tokens: the true operand runs to the `:` that matches the `?` (nested conditionals
consume their own); the false operand runs to the first `,`, `;`, closing bracket or `:` outside brackets, or,
inside a template argument list, to the `>` that closes it. A conditional with a lambda in an operand is left
alone (a lambda may not appear in decltype), as is GNU's `a ?: b`. Inner conditionals are rewritten first, so an
outer one's copies of its operands hold the inner rewrites; an operand that is itself a conditional is typed by
`mg::cond_result_t` of that conditional's operand types instead of a decltype of its text, which keeps chains
(`a ? x : b ? y : z`) from growing exponentially and keeps conditionals out of decltype (g++ 12 crashes on some
there). A conditional between two number literals (or such conditionals) is left as written: C++ gives it
Metal's type already.
"""
from __future__ import annotations

from bisect import bisect_left

from .lexer import IDENT, NUMBER, PUNCT, Token
from .outline import skip_angles

_CLOSERS = (")", "]", "}", ",", ";", ":")
_COMPARISONS = ("==", "!=", "<=", ">=")


def rewrite(tokens: list[Token], texts: list[str], match: list[int]) -> None:
    types: dict[int, str] = {}  # the `?` of each conditional read -> its type, as C++ text
    plain: set[int] = set()     # the `?` of conditionals between number literals
    # Read once for the whole file, so that a chain of thousands of conditionals costs linear time: the `:` of
    # each `?`, whether it is in template arguments, where lambdas start, and each false operand's end.
    colons = _matching_colons(tokens, match)
    in_template = _template_argument_questions(tokens, match)
    lambdas = _lambda_starts(tokens, match)
    ends: dict[int, int] = {}
    for q in range(len(tokens) - 1, -1, -1):
        if tokens[q].text != "?" or tokens[q].kind != PUNCT or not texts[q]:
            continue
        colon = colons.get(q)
        if colon is None or colon == q + 1:
            continue
        end = ends[q] = _false_operand_end(tokens, match, colons, ends, in_template, colon, q in in_template)
        true_operand, false_operand = range(q + 1, colon), range(colon + 1, end)
        if not false_operand or _has_lambda(lambdas, true_operand) or _has_lambda(lambdas, false_operand):
            continue
        a = _operand_type(tokens, texts, match, true_operand, types)
        b = _operand_type(tokens, texts, match, false_operand, types)
        if a is None or b is None:
            continue
        types[q] = f"::mg::cond_result_t<{a}, {b}>"
        if _is_plain(tokens, texts, match, true_operand, plain) and _is_plain(tokens, texts, match, false_operand,
                                                                               plain):
            plain.add(q)
            continue
        _wrap(texts, true_operand, f"static_cast<::mg::cond_t<{a}, {b}>>((", "))")
        _wrap(texts, false_operand, f"static_cast<::mg::cond_t<{b}, {a}>>((", "))")


def _operand_type(tokens: list[Token], texts: list[str], match: list[int], operand: range,
                  types: dict[int, str]) -> str | None:
    """The operand's type as C++ text: that of a conditional read before, or decltype((operand))."""
    inner = _top_level_question(tokens, match, _unparenthesised(tokens, match, operand))
    if inner is not None and inner in types:
        return types[inner]
    text = _joined(texts, operand)
    return f"decltype(({text}))" if text else None


def _unparenthesised(tokens: list[Token], match: list[int], operand: range) -> range:
    while len(operand) > 2 and tokens[operand[0]].text == "(" and match[operand[0]] == operand[-1]:
        operand = range(operand[0] + 1, operand[-1])
    return operand


def _top_level_question(tokens: list[Token], match: list[int], operand: range) -> int | None:
    """The `?` of the conditional that ``operand`` is, if it is one (no `,` or assignment around it)."""
    k = operand[0] if operand else 0
    while k < operand.stop:
        tok = tokens[k]
        if tok.text in ("(", "[", "{") and match[k] > k:
            k = match[k] + 1
            continue
        if tok.text == "<" and k > operand[0] and tokens[k - 1].kind == IDENT:
            close = skip_angles(tokens, match, k, operand.stop)
            if close < operand.stop and tokens[close - 1].text in (">", ">>"):
                k = close
                continue
        if tok.kind == PUNCT and (tok.text == "," or (tok.text.endswith("=") and tok.text not in _COMPARISONS)):
            return None
        if tok.text == "?":
            return k
        k += 1
    return None


def _is_plain(tokens: list[Token], texts: list[str], match: list[int], operand: range, plain: set[int]) -> bool:
    """Is the operand a number literal (not a half one), signed or in parentheses, or a conditional of such?"""
    operand = _unparenthesised(tokens, match, operand)
    inner = _top_level_question(tokens, match, operand)
    if inner is not None:
        return inner in plain
    words = [k for k in operand if texts[k]]
    if words and tokens[words[0]].text in ("-", "+"):
        words = words[1:]
    return len(words) == 1 and tokens[words[0]].kind == NUMBER and texts[words[0]] == tokens[words[0]].text


def _joined(texts: list[str], indices: range) -> str:
    return " ".join(texts[k] for k in indices if texts[k])


def _wrap(texts: list[str], indices: range, before: str, after: str) -> None:
    texts[indices[0]] = before + texts[indices[0]]
    texts[indices[-1]] += after


def _matching_colons(tokens: list[Token], match: list[int]) -> dict[int, int]:
    """The `:` of each `?` that has one: the first `:` after it at its bracket level that no `?` between them
    takes; a closing bracket or a `;` first leaves it without."""
    colons: dict[int, int] = {}
    levels: list[list[int]] = [[]]  # per open bracket, the `?`s still waiting for their `:`
    closers: list[int] = []         # where each open bracket closes
    for j, tok in enumerate(tokens):
        text = tok.text
        if closers and j == closers[-1]:  # a bracket's contents end: its `?`s have no `:`
            closers.pop()
            levels.pop()
            continue
        if text in ("(", "[", "{") and match[j] > j:
            closers.append(match[j])
            levels.append([])
        elif text == "?":
            levels[-1].append(j)
        elif text == ":" and levels[-1]:
            colons[levels[-1].pop()] = j
        elif text in (")", "]", "}", ";"):
            levels[-1].clear()
    return colons


def _false_operand_end(tokens: list[Token], match: list[int], colons: dict[int, int], ends: dict[int, int],
                       in_template_questions: set[int], colon: int, in_template: bool) -> int:
    j = colon + 1
    while j < len(tokens):
        tok = tokens[j]
        text = tok.text
        if text in ("(", "[", "{") and match[j] > j:
            j = match[j] + 1
            continue
        if tok.kind == PUNCT and text in _CLOSERS:
            return j
        if text == "?":  # a conditional inside this operand: its own `:` belongs to it
            inner = colons.get(j)
            if inner is None:
                return j
            if j in ends and (j in in_template_questions) == in_template:
                return ends[j]  # the rest of this operand is the inner conditional's false operand
            j = inner + 1
            continue
        if in_template:
            if text in (">", ">>"):
                return j
            if text == "<" and tokens[j - 1].kind == IDENT:
                j = skip_angles(tokens, match, j, len(tokens))
                continue
        j += 1
    return j


def _template_argument_questions(tokens: list[Token], match: list[int]) -> set[int]:
    """The `?`s directly inside a template argument list (`f<c ? 1 : 2>`): the last `<` at their bracket level
    that no `>` has closed since the level's start or its last `;` follows a name."""
    found: set[int] = set()
    levels: list[list[int]] = [[]]  # per open bracket, its `<`s not closed yet
    closers: list[int] = []
    for j, tok in enumerate(tokens):
        text = tok.text
        if closers and j == closers[-1]:
            closers.pop()
            levels.pop()
            continue
        angles = levels[-1]
        if text in ("(", "[", "{") and match[j] > j:
            closers.append(match[j])
            levels.append([])
        elif text in ("(", "[", "{", ";"):
            angles.clear()
        elif text == "<":
            angles.append(j)
        elif text in (">", ">>"):
            del angles[len(angles) - len(text):]
        elif text == "?" and angles and angles[-1] > 0 and tokens[angles[-1] - 1].kind == IDENT:
            found.add(j)
    return found


def _lambda_starts(tokens: list[Token], match: list[int]) -> list[int]:
    """Where lambdas start, in order: a `[` not after an operand, whose `]` is followed by `(` or `{`."""
    starts = []
    for k, tok in enumerate(tokens):
        if tok.text != "[" or match[k] < k or k == 0:
            continue
        before = tokens[k - 1]
        if before.kind == IDENT or before.text in (")", "]"):
            continue  # a subscript
        after = tokens[match[k] + 1].text if match[k] + 1 < len(tokens) else ""
        if after in ("(", "{", "mutable", "constexpr", "->"):
            starts.append(k)
    return starts


def _has_lambda(lambda_starts: list[int], indices: range) -> bool:
    """Does a lambda start in ``indices``?"""
    at = bisect_left(lambda_starts, indices.start)
    return at < len(lambda_starts) and lambda_starts[at] < indices.stop
