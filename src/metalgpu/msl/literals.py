"""String literals as the preprocessor joins them: adjacent literals become one (translation phase 6)."""
from __future__ import annotations

import re
import string
from typing import Callable

from ..errors import ShaderCompileError
from .lexer import STRING, Token

_ESCAPE_UNITS = re.compile(r"\\(?:x[0-9A-Fa-f]+|[0-7]{1,3}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)|[^\\]", re.DOTALL)


def concatenate(run: list[Token], error: Callable[[Token, str], ShaderCompileError]) -> Token:
    """One string literal of ``run``, at the first one's position, as C++ concatenates adjacent literals: an
    encoding prefix of any of them applies to all, two different ones are an error, raw ones are escaped."""
    prefix, body = "", ""
    for tok in run:
        own = tok.text[:tok.text.index('"')].removesuffix("R")
        if own and prefix and own != prefix:
            raise error(tok, f"string literals with different encoding prefixes ({prefix} and {own}) "
                             "cannot be concatenated")
        prefix = prefix or own
        part = _escaped_contents(tok.text)
        if part and _would_extend_escape(body, part[0]):  # "\x1" "2" is two characters, not "\x12"
            part = f"\\{ord(part[0]):03o}" + part[1:]  # octal escapes stop after three digits
        body += part
    first = run[0]
    return Token(STRING, f'{prefix}"{body}"', first.file, first.line, first.column, first.space_before,
                 first.at_line_start)


def _would_extend_escape(body: str, following: str) -> bool:
    """Would ``following`` continue a hexadecimal or short octal escape at the end of ``body``?"""
    if following not in string.hexdigits or not body.endswith(tuple(string.hexdigits)):
        return False
    last = _ESCAPE_UNITS.findall(body)[-1]
    if last.startswith("\\x"):
        return True
    return last[1:].isdigit() and len(last) < 4 and following in string.octdigits


def _escaped_contents(text: str) -> str:
    """What goes between the quotes of a string literal token, written as in an ordinary (not raw) literal."""
    quote = text.index('"')
    if not text[:quote].endswith("R"):
        return text[quote + 1:-1]
    delimiter = text[quote + 1:text.index("(")]
    raw = text[text.index("(") + 1:len(text) - len(delimiter) - 2]
    return raw.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def string_literal(text: str) -> str:
    """``text`` as a C++ string literal for generated code (a ``#line`` directive's file name): backslashes,
    quotes and every control character escaped, so that no file or folder name can end the literal or the line."""
    escaped = []
    for char in text:
        if char in '\\"':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\{ord(char):03o}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
