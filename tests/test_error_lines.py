"""The line under an error's caret: one helper (errors.source_line) serves the lexer, the preprocessor, the parser
and the compiler's diagnostics, so each shows the same text of the user's line, whatever the line endings."""
from __future__ import annotations

import pytest

from metalgpu.errors import ShaderCompileError, SourcePos, line_in, source_line
from metalgpu.msl.diagnostics import parse_log
from metalgpu.msl.parser import parse
from metalgpu.msl.preprocess import preprocess


def test_lines_are_counted_as_the_lexer_counts_them():
    text = "first\r\nsecond\n\fthird\rstill third\n"
    assert [line_in(text, n) for n in range(1, 6)] == ["first", "second", "\fthird\rstill third", "", None]
    assert line_in(text, 0) is None
    sources = {"a.metal": text}
    assert source_line(sources, SourcePos("a.metal", 2, 3)) == "second"
    assert source_line(sources, SourcePos("b.metal", 1, 1)) is None  # a file that is not the user's
    assert source_line(sources, None) is None


def _caret(error: ShaderCompileError) -> tuple[str, str]:
    """The shown line and the caret line of the first diagnostic."""
    lines = error.diagnostics[0].format().split("\n")
    return lines[1].removeprefix("    "), lines[2]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_every_stage_shows_the_users_line_with_a_caret(newline):
    head = newline.join(["#include <metal_stdlib>", "using namespace metal;", ""])
    lexer_error = head + "kernel void k(device float* a [[buffer(0)]]) { a[0] = 1 @ 2; }" + newline
    preprocessor_error = head + "#if 1 +" + newline + "#endif" + newline
    parser_error = head + "kernel void k(device float* a [[buffer(0)]], device float* b [[buffer(0)]]) {}" + newline
    for source, line in ((lexer_error, 3), (preprocessor_error, 3), (parser_error, 3)):
        with pytest.raises(ShaderCompileError) as caught:
            pre = preprocess(source, "user.metal")
            parse(pre.tokens, pre.sources)
        error = caught.value
        assert error.pos.file == "user.metal" and error.pos.line == line
        shown, caret = _caret(error)
        assert shown == source.split(newline)[line - 1]  # whole, with no "\r" of its line end
        assert caret.index("^") - 4 == error.pos.column - 1  # under the column, past the display's indent


def test_compiler_diagnostics_use_the_same_line():
    sources = {"user.metal": "line one\r\n  bad line\r\n"}
    (diagnostic,) = parse_log("user.metal:2:3: error: it is bad", sources)
    assert diagnostic.source_line == "  bad line"
    assert diagnostic.format().splitlines()[2] == "      ^"
