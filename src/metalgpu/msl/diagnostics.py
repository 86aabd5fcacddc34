"""Compiler output -> Diagnostics on the user's own lines.

The translation carries ``#line`` directives, so a compiler already reports errors in the user's code at the
user's file, line and column. Errors it reports inside our headers are moved to the user line that led there
(the "required from here" chain), so the user never sees generated code or the emulation's internals.
"""
from __future__ import annotations

import re
from bisect import bisect_right

from ..errors import Diagnostic, SourcePos, source_line

# g++/clang: "file:12:5: error: msg"; NVRTC: "file(12): error: msg"
_LINE = re.compile(r"^(?P<file>.+?)(?::(?P<line>\d+):(?:(?P<col>\d+):)?|\((?P<pline>\d+)\):)\s*"
                   r"(?P<severity>fatal error|error|warning|note|catastrophic error)\s*:?\s*(?P<message>.*)$")
_CONTEXT = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+):\s+(?:required from|required by|in .*from)")
# NVRTC: "detected during instantiation of "..." at line 4 of /path/file.metal" (no column)
_NVRTC_CONTEXT = re.compile(r"\bat line (?P<line>\d+) of (?P<file>.+?)\s*$")


def parse_log(log: str, sources: dict[str, str],
              columns: dict[tuple[str, int], list[tuple[int, int]]] | None = None) -> list[Diagnostic]:
    """The errors and warnings of ``log``, each placed in one of ``sources`` (the user's files) where possible.
    ``columns`` is the translation's column map (Translation.columns)."""
    diagnostics: list[Diagnostic] = []
    context_pos: SourcePos | None = None   # the innermost user line of the latest "required from" chain
    in_chain = False                       # the previous line was one of a chain's frames
    pending: list[str] = []                # errors inside our headers still looking for a user line
    lines = log.splitlines()
    for number, raw in enumerate(lines):
        text = raw.strip()
        match, context = _LINE.match(text), _CONTEXT.match(text) or _NVRTC_CONTEXT.search(text)
        if context is not None and match is None:
            if context.group("file") in sources:
                file, line = context.group("file"), int(context.group("line"))
                column = int(context.groupdict().get("col") or 0) or _first_column(sources, file, line)
                if pending or not in_chain:  # a chain lists the innermost frame first: the user's nearest line
                    context_pos = SourcePos(file, line, column)
                diagnostics += [_located(m, context_pos, sources) for m in pending]
                pending = []
                in_chain = True
            continue
        in_chain = False
        if match is None or match.group("severity") == "note":
            continue
        severity = "error" if "error" in match.group("severity") else "warning"
        message = match.group("message").strip()
        file = match.group("file")
        if file in sources:
            line = int(match.group("line") or match.group("pline"))
            if match.group("col"):  # a column of the translation
                column = _user_column(columns, file, line, int(match.group("col")))
            else:  # NVRTC: from the caret under its copy of the translated line
                user_line = source_line(sources, SourcePos(file, line, 1))
                column = _caret_column(lines, number, columns, file, line, user_line)
            pos = SourcePos(file, line, column)
            diagnostics.append(Diagnostic(message, pos, severity, source_line(sources, pos)))
            context_pos = None
        elif severity == "error":
            if context_pos is not None:
                diagnostics.append(_located(message, context_pos, sources))
            else:
                pending.append(message)
    diagnostics += [Diagnostic(m) for m in pending]
    return diagnostics


def _first_column(sources: dict[str, str], file: str, line: int) -> int:
    """Where the text of a line starts (NVRTC names the line of an instantiation, not its column)."""
    text = source_line(sources, SourcePos(file, line, 1)) or ""
    return len(text) - len(text.lstrip()) + 1


def _user_column(columns, file: str, line: int, column: int) -> int:
    """A column of the translation as a column of the user's line: that of the token it falls in."""
    spans = (columns or {}).get((file, line))
    if not spans:
        return column
    index = bisect_right([start for start, _ in spans], column) - 1
    return spans[max(index, 0)][1]


def _caret_column(lines: list[str], number: int, columns, file: str, line: int, user_line: str | None) -> int:
    """NVRTC gives no column but prints the translated line, indented its own way, and a caret under the spot.
    The caret's column in the translation is found from the indent of that line's first token, then mapped back
    like a compiler column."""
    if number + 2 >= len(lines) or lines[number + 2].strip() != "^" or not user_line or not user_line.strip():
        return 1
    printed, caret = lines[number + 1], lines[number + 2].index("^")
    spans = (columns or {}).get((file, line))
    first_column = spans[0][0] if spans else len(user_line) - len(user_line.lstrip()) + 1
    printed_indent = len(printed) - len(printed.lstrip())
    return _user_column(columns, file, line, max(1, caret - printed_indent + first_column))


def _located(message: str, pos: SourcePos, sources: dict[str, str]) -> Diagnostic:
    return Diagnostic(message, pos, "error", source_line(sources, pos))
