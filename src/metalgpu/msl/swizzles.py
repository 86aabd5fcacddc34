"""Swizzles (``v.zyx``, ``v.xy = w``, ``p->rgb``) rewritten into calls of small helpers at translation time.

C++ has no swizzle syntax. Giving every vector type one member per swizzle name (336 of them on a four-component
vector) made each vector type costly to compile with NVRTC or g++ (benchmarks/README.md), paid by every kernel that
used it. Instead the translator rewrites ``E.zyx`` into ``mg_sw_zyx(E)`` and emits, once per name the program uses, a
helper pair: one for vectors (and packed vectors), one that reads a struct's own member of that name, chosen by
SFINAE, so ``s.xy`` of a user struct keeps meaning its member.

A swizzle that is read gives a vector value (so ``auto p = v.xy;`` copies, as in Metal); one that is written
(followed by an assignment operator, or under ``++``/``--``) gives a proxy that writes through
(``mg_sw_zy_ref``). A single component after a swizzle (``v.zw.x``) is rewritten the same way, and chains compose
in the header (``v.xyz.zx``).
"""
from __future__ import annotations

import re

from .lexer import IDENT, NUMBER, PUNCT, Token

_NAME = re.compile(r"^(?:[xyzw]{2,4}|[rgba]{2,4})$")
_COMPONENT = re.compile(r"^[xyzwrgba]$")
_INDEX = {"x": 0, "y": 1, "z": 2, "w": 3, "r": 0, "g": 1, "b": 2, "a": 3}
_ASSIGNMENTS = {"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", "++", "--"}
_CLOSE = {")": "(", "]": "[", "}": "{", ">": "<"}


def rewrite(tokens: list[Token], texts: list[str]) -> str:
    """Rewrite every swizzle of ``tokens`` in ``texts`` (the text emitted for each token); returns the C++
    helpers the rewritten code calls, to be placed before it."""
    used: set[str] = set()
    after_swizzle: set[int] = set()  # indices of tokens that end a rewritten swizzle
    for k in range(1, len(tokens) - 1):
        if tokens[k].text not in (".", "->") or tokens[k].kind != PUNCT or tokens[k + 1].kind != IDENT:
            continue
        name = tokens[k + 1].text
        if not (_NAME.match(name) or (_COMPONENT.match(name) and k - 1 in after_swizzle)):
            continue
        if k + 2 < len(tokens) and tokens[k + 2].text == "(":  # a member function of that name
            continue
        start = _operand_start(tokens, k)
        if start is None:
            continue
        helper = f"mg_sw_{name}" + ("_ref" if _written(tokens, start, k + 1) else "")
        used.add(helper)
        texts[start] = f"{helper}(" + ("*" if tokens[k].text == "->" else "") + texts[start]
        texts[k], texts[k + 1] = ")", ""
        after_swizzle.add(k + 1)
    return "".join(_helper(name) for name in sorted(used))


def _operand_start(tokens: list[Token], dot: int) -> int | None:
    """The first token of the postfix expression that ends just before ``dot`` (None if there is none)."""
    j = dot - 1
    while j >= 0:
        tok = tokens[j]
        if tok.kind == PUNCT and tok.text in (")", "]", "}"):
            j = _matching_open(tokens, j)
            if j is None:
                return None
            if tokens[j].text == "[" or (j > 0 and _ends_callee(tokens[j - 1])):
                j -= 1  # a subscript, a call or a braced construction (float4{...}): what it applies to
                if tokens[j].text == ">":  # f<T>(x): the template arguments
                    j = _matching_open(tokens, j)
                    if j is None:
                        return None
                    j -= 1
                continue
            return j  # a parenthesised expression
        if tok.kind in (IDENT, NUMBER):
            if j >= 2 and tokens[j - 1].text in (".", "->", "::"):
                j -= 2
                continue
            if j >= 1 and tokens[j - 1].text == "::":  # ::name
                return j - 1
            return j
        return None
    return None


def _ends_callee(tok: Token) -> bool:
    return tok.kind == IDENT or tok.text in (")", "]", ">")


def _matching_open(tokens: list[Token], close: int) -> int | None:
    opening, depth = _CLOSE[tokens[close].text], 0
    for j in range(close, -1, -1):
        text = tokens[j].text
        if text == tokens[close].text:
            depth += 1
        elif text == opening:
            depth -= 1
            if depth == 0:
                return j
    return None


def _written(tokens: list[Token], start: int, name: int) -> bool:
    """Is the postfix chain continuing after token ``name`` assigned to, incremented or decremented?"""
    if start > 0 and tokens[start - 1].text in ("++", "--"):
        return True
    j = name + 1
    while j < len(tokens):
        text = tokens[j].text
        if text in (".", "->") and j + 1 < len(tokens):
            j += 2
        elif text in ("[", "("):
            depth = 0
            while j < len(tokens):
                depth += tokens[j].text in ("[", "(")
                depth -= tokens[j].text in ("]", ")")
                j += 1
                if depth == 0:
                    break
        else:
            return text in _ASSIGNMENTS
    return False


def _helper(helper: str) -> str:
    name = helper[len("mg_sw_"):].removesuffix("_ref")
    indices = ",".join(str(_INDEX[c]) for c in name)
    make = "swizzle_ref_of" if helper.endswith("_ref") else "swizzle_value"
    vector = (f"template <class T> MG_FUNC constexpr auto {helper}(T&& t) "
              f"-> decltype(mg::detail::{make}<{indices}>(t)) {{ return mg::detail::{make}<{indices}>(t); }}\n")
    if len(name) == 1:  # a component of a swizzle: the vector's own member would make the call ambiguous
        return vector
    return vector + (f"template <class T> MG_FUNC constexpr auto {helper}(T&& t) "
                     f"-> decltype((static_cast<T&&>(t).{name})) {{ return static_cast<T&&>(t).{name}; }}\n")
