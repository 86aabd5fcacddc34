"""Integer constant expressions over tokens: the ``#if`` condition, the indices of Metal's attributes and the
array bounds of struct members.

One evaluator serves all three. The preprocessor hands it ``#if`` tokens after macro expansion (names left over
count as 0); the parser hands it attribute arguments such as ``FC_BIN + 1``, with names resolved to the
namespace-scope constants and enumerators it has read; the struct layouts (``structs.py``) hand it bounds such as
``QK4_0 / 2`` or ``sizeof(T) * 4``, with a ``layout`` callback that sizes types, which also turns on the C++-only
forms (``sizeof``, ``alignof`` and casts to integer types) that ``#if`` does not have. Arithmetic is on Python
integers: the values are indices, sizes and feature tests, far inside any C++ integer type.
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ShaderCompileError
from ..limits import MAX_EXPRESSION_NESTING
from .lexer import CHAR, IDENT, NUMBER, Token

# error(token or None, message): the located error to raise; None stands for the expression as a whole
ErrorFactory = Callable[[Token | None, str], ShaderCompileError]
# name(qualified name, its first token) -> value; raises the caller's error when the name has no known value
NameResolver = Callable[[str, Token], int]
# layout(type tokens) -> (size, alignment) in bytes, for sizeof and alignof
TypeLayout = Callable[[list[Token]], tuple[int, int]]
_INTEGER_TYPES = frozenset({"bool", "char", "uchar", "short", "ushort", "int", "uint", "long", "ulong", "unsigned",
                            "signed", "size_t", "ptrdiff_t", "int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t",
                            "uint32_t", "int64_t", "uint64_t"})

_BINARY_PRECEDENCE = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7, "<=": 7, ">=": 7,
    "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}
_OPERATORS = {
    "|": operator.or_, "^": operator.xor, "&": operator.and_, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge, "<<": operator.lshift,
    ">>": operator.rshift, "+": operator.add, "-": operator.sub, "*": operator.mul,
}
_ESCAPES = {"n": 10, "t": 9, "r": 13, "0": 0, "\\": 92, "'": 39, '"': 34, "a": 7, "b": 8, "f": 12, "v": 11}
# C++ has no integer wider than 64 bits: a literal past them is an error, and so is a value an operation makes past
# them, where it counts (not in the unevaluated side of &&, || or ?:); Python's integers would grow without bound
# (`1 << 99999999999` took seconds and gigabytes).
_INTEGER_RANGE = range(-2**64 + 1, 2**64)


def evaluate(tokens: list[Token], error: ErrorFactory, name: NameResolver, what: str = "expression",
             qualified_names: bool = False, layout: TypeLayout | None = None) -> int:
    """The value of ``tokens``; ``what`` names the expression in messages ("#if expression"); with
    ``qualified_names``, ``a::b`` is read as one name; with ``layout``, C++'s sizeof, alignof and integer casts
    are understood too."""
    return _Evaluator(tokens, error, name, what, qualified_names, layout).run()


def integer_literal(tok: Token, error: ErrorFactory) -> int:
    """The value of an integer literal token (``0x1Fu``, ``010``, ``0b11``, ``1'000``)."""
    digits = tok.text.replace("'", "").rstrip("uUlLzZ")
    shown = tok.text if len(tok.text) <= 40 else tok.text[:40] + "..."
    try:
        if digits[:2] in ("0x", "0X"):
            value = int(digits, 16)
        elif digits[:2] in ("0b", "0B"):
            value = int(digits, 2)
        else:
            value = int(digits, 8) if digits.startswith("0") and len(digits) > 1 else int(digits)
    except ValueError:  # also a decimal of more than 4,300 digits, which Python refuses to convert
        raise error(tok, f"'{shown}' is not an integer constant") from None
    if value not in _INTEGER_RANGE:
        raise error(tok, f"integer constant '{shown}' is too large for any integer type")
    return value


def char_value(text: str) -> int:
    body = text[text.index("'") + 1:-1]
    if body.startswith("\\") and len(body) > 1:
        return _ESCAPES.get(body[1], ord(body[1]))
    return ord(body[0]) if body else 0


class _Evaluator:
    def __init__(self, tokens: list[Token], error: ErrorFactory, name: NameResolver, what: str,
                 qualified_names: bool, layout: TypeLayout | None):
        self.tokens, self.i = tokens, 0
        self.error, self.name, self.what, self.qualified_names = error, name, what, qualified_names
        self.layout = layout
        self.dead = 0  # > 0 inside the unevaluated side of &&, || or ?:
        self.nesting = 0  # levels of the recursive reading (see _nested)

    def run(self) -> int:
        if not self.tokens:
            raise self.error(None, f"empty {self.what}")
        value = self._conditional()
        if self.i < len(self.tokens):
            raise self._error(f"unexpected '{self.tokens[self.i].text}' in {self.what}")
        return value

    def _error(self, message: str) -> ShaderCompileError:
        return self.error(self.tokens[self.i] if self.i < len(self.tokens) else None, message)

    def _peek(self) -> str | None:
        return self.tokens[self.i].text if self.i < len(self.tokens) else None

    def _expect(self, text: str) -> None:
        if self._peek() != text:
            raise self._error(f"expected '{text}' in {self.what}")
        self.i += 1

    def _conditional(self) -> int:
        return self._nested(self._conditional_expression)

    def _nested(self, read) -> int:
        """``read()`` one level deeper in the recursive reading: parentheses, conditionals, unary operators and casts
        inside each other (a parenthesis counts two), each level a few frames of Python's stack."""
        if self.nesting >= MAX_EXPRESSION_NESTING:
            raise self._error(f"{self.what} is nested too deeply (more than {MAX_EXPRESSION_NESTING} levels of "
                              "parentheses, conditionals, unary operators and casts)")
        self.nesting += 1
        try:
            return read()
        finally:
            self.nesting -= 1

    def _conditional_expression(self) -> int:
        condition = self._binary(1)
        if self._peek() != "?":
            return condition
        self.i += 1
        self.dead += not condition
        if_true = self._conditional()
        self.dead -= not condition
        self._expect(":")
        self.dead += bool(condition)
        if_false = self._conditional()
        self.dead -= bool(condition)
        return if_true if condition else if_false

    def _binary(self, min_precedence: int) -> int:
        left = self._unary()
        while (op := self._peek()) in _BINARY_PRECEDENCE and _BINARY_PRECEDENCE[op] >= min_precedence:
            where = self.tokens[self.i]
            self.i += 1
            short_circuit = (op == "&&" and not left) or (op == "||" and left)
            self.dead += short_circuit
            right = self._binary(_BINARY_PRECEDENCE[op] + 1)
            self.dead -= short_circuit
            left = self._apply(op, left, right, where)
        return left

    def _apply(self, op: str, a: int, b: int, where: Token) -> int:
        if op in ("/", "%"):
            if b == 0:
                if self.dead:
                    return 0
                raise self.error(where, f"division by zero in {self.what}")
            quotient = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)  # C++ truncates toward zero
            return quotient if op == "/" else a - b * quotient
        if op == "||":
            return int(bool(a or b))
        if op == "&&":
            return int(bool(a and b))
        if op in ("<<", ">>") and b < 0:
            return 0
        if op == "<<" and a and b >= 128:  # past 64 bits whatever a is: not computed
            return self._overflow(op, where)
        value = int(_OPERATORS[op](a, b))
        return value if value in _INTEGER_RANGE else self._overflow(op, where)

    def _overflow(self, op: str, where: Token) -> int:
        if self.dead:
            return 0
        raise self.error(where, f"'{op}' overflows 64 bits in {self.what}")

    def _unary(self) -> int:
        return self._nested(self._operand)

    def _operand(self) -> int:
        if self.i >= len(self.tokens):
            raise self._error(f"{self.what} ends too early")
        tok = self.tokens[self.i]
        self.i += 1
        if tok.text in ("+", "-", "~", "!"):
            value = self._unary()
            return {"+": value, "-": -value, "~": ~value, "!": int(not value)}[tok.text]
        if self.layout is not None and self._cxx_form(tok):
            return self._cxx_value(tok)
        if tok.text == "(":
            value = self._conditional()
            self._expect(")")
            return value
        if tok.kind == NUMBER:
            return integer_literal(tok, self.error)
        if tok.kind == CHAR:
            return char_value(tok.text)
        if tok.kind == IDENT or (tok.text == "::" and self.qualified_names):
            return self._name(tok)
        self.i -= 1
        raise self._error(f"unexpected '{tok.text}' in {self.what}")

    # ----- C++ expressions (with a layout): sizeof, alignof, casts to integer types -------------------------

    def _cxx_form(self, tok: Token) -> bool:
        if tok.text in ("sizeof", "alignof", "__alignof__", "static_cast"):
            return True
        if tok.text in _INTEGER_TYPES and self._peek() == "(":  # uint(4)
            return True
        return tok.text == "(" and self._cast_end() is not None  # (int)4

    def _cast_end(self) -> int | None:
        """After a '(' just read: the index of the ')' closing a C-style cast to an integer type, if it is one."""
        k = self.i
        while k < len(self.tokens) and self.tokens[k].text in _INTEGER_TYPES:
            k += 1
        if k == self.i or k + 1 >= len(self.tokens) or self.tokens[k].text != ")":
            return None
        return k

    def _cxx_value(self, tok: Token) -> int:
        if tok.text in ("sizeof", "alignof", "__alignof__"):
            size, align = self.layout(self._parenthesised())
            return size if tok.text == "sizeof" else align
        if tok.text == "static_cast":
            self._expect("<")
            depth = 1
            while self.i < len(self.tokens) and depth:
                depth += (self._peek() == "<") - (self._peek() == ">")
                self.i += 1
            self._expect("(")
            value = self._conditional()
            self._expect(")")
            return value
        if tok.text == "(":  # a C-style cast: the value is kept (no width is modelled; bounds are small)
            self.i = self._cast_end() + 1
            return self._unary()
        self._expect("(")  # a functional cast, uint(4)
        value = self._conditional()
        self._expect(")")
        return value

    def _parenthesised(self) -> list[Token]:
        """The tokens inside the parentheses that follow (an operand of sizeof)."""
        self._expect("(")
        start, depth = self.i, 1
        while self.i < len(self.tokens):
            depth += (self._peek() == "(") - (self._peek() == ")")
            self.i += 1
            if depth == 0:
                return self.tokens[start:self.i - 1]
        raise self.error(self.tokens[start - 1], f"unbalanced parentheses in {self.what}")

    def _name(self, first: Token) -> int:
        if first.text in ("true", "false"):
            return int(first.text == "true")
        parts = [first.text] if first.kind == IDENT else []
        if first.text == "::":
            self.i -= 1
        while self.qualified_names and self._peek() == "::" and self.i + 1 < len(self.tokens) \
                and self.tokens[self.i + 1].kind == IDENT:
            parts.append(self.tokens[self.i + 1].text)
            self.i += 2
        return self.name("::".join(parts), first)


@dataclass(frozen=True)
class _Named:
    scope: tuple[str, ...]  # the namespaces it was declared in: names in its initializer are looked up from there
    initializer: list[Token] | None
    previous: str | None  # an enumerator without an initializer is the one before it plus one (or 0)


class NamedConstants:
    """The namespace-scope integer constants and enumerators of a program, by qualified name. Each is evaluated
    when an attribute first names it, in the scope where it was declared."""

    def __init__(self, error: Callable[[Token, str], ShaderCompileError]):
        self.error = error
        self.entries: dict[str, _Named] = {}
        self.values: dict[str, int] = {}
        self.failures: dict[str, ShaderCompileError] = {}  # found while warming up: raised again when named
        self.evaluating: set[str] = set()
        self.order: list[str] = []  # every definition, in the order of the source
        self.warmed = 0             # how many of them _warm_up has evaluated
        self.warming = False

    def define(self, scope: tuple[str, ...], name: str, initializer: list[Token] | None,
               previous: str | None = None) -> str:
        """Record ``scope::name``, whose value is ``initializer`` or, for an enumerator without one, that of the
        ``previous`` enumerator (a qualified name) plus one; returns the qualified name."""
        qualified = "::".join((*scope, name))
        self.entries[qualified] = _Named(scope, initializer, previous)
        self.values.pop(qualified, None)
        self.failures.pop(qualified, None)
        self.order.append(qualified)
        return qualified

    def value(self, name: str, scope: tuple[str, ...], where: Token) -> int:
        """The value of ``name`` as written in ``scope``: the innermost enclosing namespace that declares it."""
        for depth in range(len(scope), -1, -1):
            qualified = "::".join((*scope[:depth], name))
            if qualified in self.entries:
                return self._value(qualified, where)
        raise self.error(where, f"'{name}' has no value metalgpu knows here: an index must be an integer constant "
                                "expression of literals, macros, and namespace-scope constexpr integers or "
                                "enumerators")

    def _warm_up(self, where: Token) -> None:
        """Evaluate every definition not evaluated yet, in the order of the source: each then finds those it names
        known already, so that a chain of a thousand enumerators (each the one before plus one) costs no recursion
        as deep as the chain. What fails is kept, and raised when named."""
        if self.evaluating or self.warming:  # only from the outermost lookup
            return
        self.warming = True
        try:
            while self.warmed < len(self.order):
                qualified = self.order[self.warmed]
                self.warmed += 1
                if qualified in self.values or qualified in self.failures:
                    continue
                try:
                    self._value(qualified, where)
                except ShaderCompileError as error:
                    self.failures[qualified] = error
        finally:
            self.warming = False

    def _value(self, qualified: str, where: Token) -> int:
        if qualified in self.values:
            return self.values[qualified]
        if qualified in self.failures:
            raise self.failures[qualified]
        self._warm_up(where)
        if qualified in self.values:
            return self.values[qualified]
        if qualified in self.evaluating:
            raise self.error(where, f"'{qualified}' is defined in terms of itself")
        named = self.entries[qualified]
        self.evaluating.add(qualified)
        try:
            if named.initializer is not None:
                value = evaluate(named.initializer, lambda tok, message: self.error(tok or where, message),
                                 lambda name, tok: self.value(name, named.scope, tok), f"the value of '{qualified}'",
                                 qualified_names=True)
            else:
                value = 0 if named.previous is None else self._value(named.previous, where) + 1
        finally:
            self.evaluating.discard(qualified)
        self.values[qualified] = value
        return value
