"""What the declaration reader stands on: brackets matched once, attributes read, errors located, tokens spelled.

The parser (msl/parser.py) derives from TokenWalker; these helpers know nothing of kernels.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShaderCompileError, SourcePos, source_line
from .lexer import IDENT, Token
from .outline import angle_start, skip_angles


@dataclass(frozen=True)
class Attribute:
    """One item of a ``[[ ... ]]``: ``buffer(1)``, ``kernel``."""

    name: str
    args: tuple[Token, ...]
    token: Token


def spell(tokens) -> str:
    """Tokens as type text with single spaces: ``device const float *``, ``vec<float, 4>``."""
    parts: list[str] = []
    previous = None
    for tok in tokens:
        if previous is not None and not _glued(previous, tok):
            parts.append(" ")
        parts.append(tok.text)
        previous = tok
    return "".join(parts)


def _glued(previous: Token, tok: Token) -> bool:
    if tok.text in (",", ")", "]", ">", ">>", "::") or previous.text in ("(", "[", "<", "::"):
        return True
    return tok.text == "<" and previous.kind == IDENT  # a template argument list


def top_level_items(text: str) -> list[str]:
    """The comma-separated items of a spelled template parameter or argument list, outside any brackets."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "(<[{"
        depth -= ch in ")>]}"
        if ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


_TYPE_WORDS = frozenset("bool char uchar short ushort int uint long ulong half bfloat float double void size_t "
                        "int8_t uint8_t int16_t uint16_t int32_t uint32_t int64_t uint64_t".split())


def takes_arguments(template_params: str, arguments: str) -> bool:
    """Whether a template with the spelled parameter list can take the spelled arguments: as many as it has
    parameters (defaults and packs counted), and no number for a type parameter nor a built-in type for a value
    parameter. Overloaded kernel templates (MLX's block_masked_gemm) are told apart by it."""
    params, args = top_level_items(template_params), top_level_items(arguments)
    if any("..." in p for p in params):
        return len(args) >= len(params) - 1
    if not sum("=" not in p for p in params) <= len(args) <= len(params):
        return False
    for param, arg in zip(params, args):
        takes_type = param.split()[0] in ("typename", "class")
        is_number = arg[:1].isdigit() or arg in ("true", "false")
        if (takes_type and is_number) or (not takes_type and param.split()[0] != "template" and arg in _TYPE_WORDS):
            return False
    return True


class TokenWalker:
    """Index-based access to a token list whose brackets are matched up front (``self.match``)."""

    def __init__(self, tokens: list[Token], sources: dict[str, str]):
        self.tokens = tokens
        self.sources = sources
        self.match = self._match_brackets()

    def _error(self, tok: Token, message: str) -> ShaderCompileError:
        pos = SourcePos(tok.file, tok.line, tok.column)
        return ShaderCompileError.at(pos, message, source_line(self.sources, pos))

    def _peek(self, i: int) -> str | None:
        return self.tokens[i].text if i < len(self.tokens) else None

    def _accept(self, i: int, text: str) -> int:
        """``i + 1`` if the token at ``i`` is ``text``, else ``i``."""
        return i + 1 if self._peek(i) == text else i

    def _match_brackets(self) -> list[int]:
        """For each bracket, the index of its partner; -1 for other tokens."""
        match = [-1] * len(self.tokens)
        stack: list[int] = []
        closers = {")": "(", "]": "[", "}": "{"}
        for i, tok in enumerate(self.tokens):
            if tok.text in ("(", "[", "{"):
                stack.append(i)
            elif tok.text in closers:
                if not stack:
                    raise self._error(tok, f"unmatched '{tok.text}'")
                opener = stack.pop()
                if self.tokens[opener].text != closers[tok.text]:
                    raise self._error(self.tokens[opener], f"'{self.tokens[opener].text}' is closed by '{tok.text}'")
                match[opener], match[i] = i, opener
        if stack:
            raise self._error(self.tokens[stack[-1]], f"unmatched '{self.tokens[stack[-1]].text}'")
        return match

    def _skip_angles(self, i: int, end: int) -> int:
        """From the ``<`` at ``i``, the index after its closing ``>`` (or ``end``)."""
        return skip_angles(self.tokens, self.match, i, end)

    def _angle_start(self, i: int) -> int:
        """From the ``>`` at ``i``, walking back, the index of its ``<`` (-1 if none)."""
        return angle_start(self.tokens, self.match, i)

    def _attributes(self, i: int) -> tuple[Attribute, ...]:
        """The items of the ``[[ ... ]]`` whose first ``[`` is at ``i``."""
        end = self.match[i] - 1
        items, k = [], i + 2
        while k < end:
            if self.tokens[k].text == ",":
                k += 1
                continue
            name = self.tokens[k]
            while self._peek(k + 1) == "::" and k + 2 < end:
                k += 2
                name = self.tokens[k]
            if name.kind != IDENT:
                raise self._error(name, f"expected an attribute name, found '{name.text}'")
            k += 1
            args: tuple[Token, ...] = ()
            if self._peek(k) == "(":
                args = tuple(self.tokens[k + 1:self.match[k]])
                k = self.match[k] + 1
            items.append(Attribute(name.text, args, name))
        return tuple(items)

    def _outer_attributes(self, start: int, end: int) -> list[Attribute]:
        """The attributes of a declaration itself, not those inside its parentheses (parameters)."""
        found, k = [], start
        while k < end - 1:
            text = self.tokens[k].text
            if text == "(":
                k = self.match[k] + 1
            elif text == "[" and self.tokens[k + 1].text == "[":
                found.extend(self._attributes(k))
                k = self.match[k] + 1
            else:
                k += 1
        return found
