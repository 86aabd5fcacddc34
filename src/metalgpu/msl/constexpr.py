"""Integer constant expressions over tokens, for array bounds, template arguments and ``alignas``.

Literals (with their suffixes), the C operators, ``?:``, ``sizeof``/``alignof`` of a type, casts to scalar types
(``(int)x``, ``uint(x)``, ``static_cast<int>(x)``), ``true``/``false`` and named constants, which the caller
looks up. Arithmetic is on Python integers, with C's truncating division.
"""
from __future__ import annotations

from collections.abc import Callable

from ..errors import ArgumentError
from .lexer import IDENT, NUMBER, Token

_BINARY = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7, "<=": 7, ">=": 7,
           "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}
_CAST_TYPES = frozenset({"bool", "char", "uchar", "short", "ushort", "int", "uint", "long", "ulong", "unsigned",
                         "signed", "size_t", "ptrdiff_t", "int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t",
                         "uint32_t", "int64_t", "uint64_t"})


class ConstantError(ArgumentError):
    """An expression that is not an integer constant this evaluator can compute."""


def evaluate(tokens: list[Token], named: Callable[[str], int], layout: Callable[[list[Token]], object]) -> int:
    """The value of ``tokens``; ``named(qualified_name)`` gives a constant's value, ``layout(type_tokens)`` the
    layout (``.size``, ``.align``) of a type for ``sizeof`` and ``alignof``."""
    if not tokens:
        raise ConstantError("an empty constant expression")
    reader = _Reader(tokens, named, layout)
    value = reader.expression(0)
    if reader.i != len(tokens):
        raise ConstantError(f"{tokens[reader.i].pos}: unexpected '{tokens[reader.i].text}' in the constant "
                            f"expression '{' '.join(t.text for t in tokens)}'")
    return value


def _literal(tok: Token) -> int:
    text = tok.text.replace("'", "").rstrip("uUlLzZ")
    try:
        if text[:2].lower() == "0x":
            return int(text, 16)
        if text[:2].lower() == "0b":
            return int(text, 2)
        if len(text) > 1 and text[0] == "0":
            return int(text, 8)
        return int(text)
    except ValueError:
        raise ConstantError(f"{tok.pos}: '{tok.text}' is not an integer") from None


def _c_divide(a: int, b: int, tok: Token) -> tuple[int, int]:
    if b == 0:
        raise ConstantError(f"{tok.pos}: division by zero in a constant expression")
    quotient = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        quotient = -quotient
    return quotient, a - b * quotient


class _Reader:
    def __init__(self, tokens, named, layout):
        self.tokens, self.named, self.layout, self.i = tokens, named, layout, 0

    def _peek(self) -> str | None:
        return self.tokens[self.i].text if self.i < len(self.tokens) else None

    def _expect(self, text: str) -> None:
        if self._peek() != text:
            where = self.tokens[min(self.i, len(self.tokens) - 1)]
            raise ConstantError(f"{where.pos}: expected '{text}' in a constant expression")
        self.i += 1

    def expression(self, lowest: int) -> int:
        value = self._unary()
        while True:
            op = self._peek()
            if op == "?" and lowest == 0:
                self.i += 1
                when_true = self.expression(0)
                self._expect(":")
                when_false = self.expression(0)
                value = when_true if value else when_false
                continue
            if op not in _BINARY or _BINARY[op] < lowest:
                return value
            tok = self.tokens[self.i]
            self.i += 1
            right = self.expression(_BINARY[op] + 1)
            value = self._apply(op, value, right, tok)

    @staticmethod
    def _apply(op: str, a: int, b: int, tok: Token) -> int:
        if op in ("/", "%"):
            quotient, remainder = _c_divide(a, b, tok)
            return quotient if op == "/" else remainder
        return {"||": lambda: int(bool(a) or bool(b)), "&&": lambda: int(bool(a) and bool(b)),
                "|": lambda: a | b, "^": lambda: a ^ b, "&": lambda: a & b, "==": lambda: int(a == b),
                "!=": lambda: int(a != b), "<": lambda: int(a < b), ">": lambda: int(a > b),
                "<=": lambda: int(a <= b), ">=": lambda: int(a >= b), "<<": lambda: a << b, ">>": lambda: a >> b,
                "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b}[op]()

    def _unary(self) -> int:
        op = self._peek()
        if op in ("-", "+", "~", "!"):
            self.i += 1
            value = self._unary()
            return {"-": -value, "+": value, "~": ~value, "!": int(not value)}[op]
        if op == "(" and self._is_cast():
            while self._peek() != ")":
                self.i += 1
            self.i += 1
            return self._unary()
        return self._primary()

    def _is_cast(self) -> bool:
        k = self.i + 1
        words = 0
        while k < len(self.tokens) and self.tokens[k].kind == IDENT and self.tokens[k].text in _CAST_TYPES:
            k, words = k + 1, words + 1
        return words > 0 and k < len(self.tokens) and self.tokens[k].text == ")" and k + 1 < len(self.tokens)

    def _primary(self) -> int:
        if self.i >= len(self.tokens):
            raise ConstantError(f"{self.tokens[-1].pos}: a constant expression ends too early")
        tok = self.tokens[self.i]
        if tok.kind == NUMBER:
            self.i += 1
            return _literal(tok)
        if tok.text == "(":
            self.i += 1
            value = self.expression(0)
            self._expect(")")
            return value
        if tok.text in ("true", "false"):
            self.i += 1
            return int(tok.text == "true")
        if tok.text in ("sizeof", "alignof", "alignof_", "__alignof__"):
            self.i += 1
            group = self._group()
            found = self.layout(group)
            return found.size if tok.text == "sizeof" else found.align
        if tok.text in ("static_cast", "reinterpret_cast"):
            self.i += 1
            if self._peek() == "<":
                while self._peek() != ">":
                    self.i += 1
                self.i += 1
            self._expect("(")
            value = self.expression(0)
            self._expect(")")
            return value
        if tok.kind == IDENT or tok.text == "::":
            name = self._name()
            if self._peek() == "(" and name.split("::")[-1] in _CAST_TYPES:  # uint(4)
                self.i += 1
                value = self.expression(0)
                self._expect(")")
                return value
            return self.named(name)
        raise ConstantError(f"{tok.pos}: '{tok.text}' cannot start an integer constant expression")

    def _name(self) -> str:
        parts = []
        while self.i < len(self.tokens):
            tok = self.tokens[self.i]
            if tok.text == "::" or (tok.kind == IDENT and (not parts or parts[-1] == "::")):
                parts.append(tok.text)
                self.i += 1
            else:
                break
        return "".join(parts)

    def _group(self) -> list[Token]:
        """The tokens inside the parentheses that follow (sizeof's operand)."""
        self._expect("(")
        start, depth = self.i, 1
        while self.i < len(self.tokens):
            text = self.tokens[self.i].text
            depth += (text == "(") - (text == ")")
            if depth == 0:
                self.i += 1
                return self.tokens[start:self.i - 1]
            self.i += 1
        raise ConstantError(f"{self.tokens[start - 1].pos}: unbalanced parentheses in a constant expression")
