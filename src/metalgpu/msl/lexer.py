"""The C++17 lexer of the MSL front end: source text -> preprocessing tokens with positions.

Comments become whitespace, backslash-newline splices are removed, and every token keeps the
1-based line and column where it starts in the original text (a tab counts as one column).
Raw string literals are read as written; splices inside them are not reverted.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from typing import NamedTuple

from ..errors import ShaderCompileError, SourcePos, line_in

IDENT = "ident"
NUMBER = "number"
STRING = "string"
CHAR = "char"
PUNCT = "punct"


class Token(NamedTuple):
    """One preprocessing token and where it starts in the user's source. A named tuple rather than a frozen
    dataclass: as immutable, and several times faster to build, which counts in libraries of 10**5 tokens."""

    kind: str
    text: str
    file: str
    line: int
    column: int
    space_before: bool = False
    at_line_start: bool = False

    @property
    def pos(self) -> SourcePos:
        return SourcePos(self.file, self.line, self.column)


_PUNCTUATORS = sorted("""
    { } [ ] ( ) ; : ... ? :: . .* -> ->* ~ ! + - * / % ^ & | = += -= *= /= %= ^= &= |=
    == != < > <= >= <=> && || << >> <<= >>= ++ -- , # ##
""".split(), key=len, reverse=True)

_PREFIX = r"(?:u8|[uUL])?"
_SPACE = r"(?:[ \t\n\f\v\r]|//[^\n]*|/\*.*?\*/)*"  # comments count as whitespace
_SPACE_RE = re.compile(_SPACE, re.DOTALL)
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
# The whitespace is matched atomically (a lookahead, then a backreference): once a comment is whitespace, the
# token after it is never found by giving part of the comment back, as at the end of a file ending in a comment.
_TOKEN_RE = re.compile(
    rf"""
    (?=(?P<space>{_SPACE}))(?P=space)
    (?:
      (?P<raw>{_PREFIX}R"(?P<delim>[^ ()\\\t\v\f\n"]{{0,16}})\()
    | (?P<string>{_PREFIX}"(?:[^"\\\n]|\\.)*")
    | (?P<char>{_PREFIX}'(?:[^'\\\n]|\\.)*')
    | (?P<number>\.?[0-9](?:'[0-9A-Za-z_]|[eEpP][+-]|[0-9A-Za-z_.])*)
    | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
    | (?P<open_comment>/\*)
    | (?P<punct>{"|".join(re.escape(p) for p in _PUNCTUATORS)})
    )
    """,
    re.VERBOSE | re.DOTALL,
)
_KIND_OF_GROUP = {"raw": None, "open_comment": None, "string": STRING, "char": CHAR, "number": NUMBER, "ident": IDENT,
                  "punct": PUNCT}
_UNTERMINATED_STRING_RE = re.compile(rf"{_PREFIX}R?[\"']")


class _Positions:
    """Maps offsets in the spliced text back to lines and columns of the original text, for errors."""

    def __init__(self, original: str, splices: list[int]):
        self.original = original
        self.splices = splices

    def line_col(self, offset: int) -> tuple[int, int]:
        offset += 2 * bisect_right(self.splices, offset)  # each splice removed a backslash and a newline
        line_start = self.original.rfind("\n", 0, offset) + 1
        return self.original.count("\n", 0, offset) + 1, offset - line_start + 1

    def error(self, file: str, offset: int, message: str) -> ShaderCompileError:
        line, column = self.line_col(offset)
        return ShaderCompileError.at(SourcePos(file, line, column), message, line_in(self.original, line))


def _splice(text: str) -> tuple[str, list[int]]:
    """Remove every backslash-newline; also return the offsets in the result where one was removed."""
    if "\\\n" not in text:
        return text, []
    pieces = text.split("\\\n")
    splices, offset = [], 0
    for piece in pieces[:-1]:
        offset += len(piece)
        splices.append(offset)
    return "".join(pieces), splices


def tokenize(text: str, file: str) -> list[Token]:
    """Split ``text`` (the contents of ``file``) into preprocessing tokens."""
    original = text.replace("\r\n", "\n")
    spliced, splices = _splice(original)
    tokens: list[Token] = []
    append = tokens.append
    # where the last token started, in the original text, and the line it is on
    line, line_start, last = 1, 0, 0
    passed = 0  # the splices before the current token
    pos, end = 0, len(spliced)
    match = _TOKEN_RE.match
    while pos < end:
        m = match(spliced, pos)
        if m is None:
            pos = _SPACE_RE.match(spliced, pos).end()
            if pos == end:
                break
            raise _lex_error(spliced, pos, file, _Positions(original, splices))
        start, token_end = m.span(m.lastindex)
        at_line_start = not tokens
        if start > pos and "\n" in spliced[pos:start]:
            space = spliced[pos:start]
            at_line_start = "/*" not in space or "\n" in _COMMENT_RE.sub(" ", space)
        kind = _KIND_OF_GROUP[m.lastgroup]
        if m.lastgroup == "open_comment":
            raise _Positions(original, splices).error(file, start, "unterminated /* comment")
        if kind is None:  # a raw string literal: find its closing delimiter
            delim = m.group("delim")
            closing = spliced.find(")" + delim + '"', token_end)
            if closing < 0:
                raise _Positions(original, splices).error(file, start, "unterminated raw string literal")
            token_end = closing + len(delim) + 2
            kind = STRING
        while passed < len(splices) and splices[passed] <= start:
            passed += 1
        offset = start + 2 * passed
        newlines = original.count("\n", last, offset)
        if newlines:
            line += newlines
            line_start = original.rindex("\n", last, offset) + 1
        last = offset
        append(Token(kind, spliced[start:token_end], file, line, offset - line_start + 1, start > pos, at_line_start))
        pos = token_end
    return tokens


def _lex_error(text: str, pos: int, file: str, positions: _Positions) -> ShaderCompileError:
    if text.startswith("/*", pos):
        return positions.error(file, pos, "unterminated /* comment")
    quote = _UNTERMINATED_STRING_RE.match(text, pos)
    if quote:
        what = "character constant" if quote.group().endswith("'") else "string literal"
        return positions.error(file, pos, f"unterminated {what}")
    return positions.error(file, pos, f"stray {text[pos]!r} in program")
