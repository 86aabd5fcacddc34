"""The lexer on token lists and positions."""
import pytest

from metalgpu.errors import ShaderCompileError
from metalgpu.msl.lexer import CHAR, IDENT, NUMBER, PUNCT, STRING, Token, tokenize


def texts(source: str) -> list[str]:
    return [t.text for t in tokenize(source, "k.metal")]


def test_token_fields_and_positions():
    tokens = tokenize("kernel void f(\n\tuint i)", "k.metal")
    assert tokens[0] == Token(IDENT, "kernel", "k.metal", 1, 1, False, True)
    assert tokens[1] == Token(IDENT, "void", "k.metal", 1, 8, True, False)
    assert tokens[3] == Token(PUNCT, "(", "k.metal", 1, 14, False, False)
    assert tokens[4] == Token(IDENT, "uint", "k.metal", 2, 2, True, True)  # a tab is one column
    assert tokens[5].column == 7 and tokens[6].text == ")"


@pytest.mark.parametrize("source, expected", [
    ("1.5h 2.0f 1u 0x1Fu 1e-3f 1.0H 1'000 .5 1e+10",
     ["1.5h", "2.0f", "1u", "0x1Fu", "1e-3f", "1.0H", "1'000", ".5", "1e+10"]),
    ("a<<=b->*c::d...e", ["a", "<<=", "b", "->*", "c", "::", "d", "...", "e"]),
    ("x##y #z <=> ->", ["x", "##", "y", "#", "z", "<=>", "->"]),
    ("[[buffer(0)]]", ["[", "[", "buffer", "(", "0", ")", "]", "]"]),
    ("a+++b", ["a", "++", "+", "b"]),
    ("v>>=1 && w||!x", ["v", ">>=", "1", "&&", "w", "||", "!", "x"]),
])
def test_maximal_munch(source, expected):
    assert texts(source) == expected


def test_numbers_are_pp_numbers():
    kinds = [t.kind for t in tokenize("1.5h 0x1Fu 1'000", "k")]
    assert kinds == [NUMBER, NUMBER, NUMBER]


def test_string_and_char_literals_with_prefixes_and_escapes():
    source = r'''"a\"b" u8"x" L"w" u'c' '\n' R"(a "quoted" \ b)" R"d(x)"y)d"'''
    tokens = tokenize(source, "k")
    assert [(t.kind, t.text) for t in tokens] == [
        (STRING, r'"a\"b"'), (STRING, 'u8"x"'), (STRING, 'L"w"'), (CHAR, "u'c'"), (CHAR, r"'\n'"),
        (STRING, r'R"(a "quoted" \ b)"'), (STRING, 'R"d(x)"y)d"'),
    ]


def test_raw_string_spanning_lines_keeps_later_positions():
    tokens = tokenize('R"(one\ntwo)" x', "k")
    assert tokens[1].text == "x" and (tokens[1].line, tokens[1].column) == (2, 7)


def test_comments_are_whitespace_and_keep_line_numbers():
    tokens = tokenize("a/* one\n two */b // tail\nc", "k")
    assert [(t.text, t.line, t.column, t.space_before, t.at_line_start) for t in tokens] == [
        ("a", 1, 1, False, True), ("b", 2, 8, True, False), ("c", 3, 1, True, True),
    ]


@pytest.mark.parametrize("source", [
    "}  // namespace mlx",
    "} // namespace x\n",
    "}\n/* end */",
    "} /* a */ /* b */\n// c\n",
    "}\n// one\\\n   continued\n",
])
def test_a_file_may_end_in_a_comment(source):
    assert [(t.text, t.line, t.column) for t in tokenize(source, "k")] == [("}", 1, 1)]


def test_line_splices_join_tokens_and_keep_original_positions():
    tokens = tokenize("#define X \\\n  1 + \\\n  2\nab\\\ncd", "k")
    assert [(t.text, t.line, t.column) for t in tokens] == [
        ("#", 1, 1), ("define", 1, 2), ("X", 1, 9), ("1", 2, 3), ("+", 2, 5), ("2", 3, 3), ("abcd", 4, 1),
    ]
    assert [t.at_line_start for t in tokens] == [True, False, False, False, False, False, True]


def test_crlf_line_endings():
    tokens = tokenize("a\r\nb", "k")
    assert [(t.text, t.line, t.column) for t in tokens] == [("a", 1, 1), ("b", 2, 1)]


@pytest.mark.parametrize("source, message, line, column", [
    ("x /* never closed\n\n", "unterminated /* comment", 1, 3),
    ('int a;\n  s = "open\n', "unterminated string literal", 2, 7),
    ("c = 'a", "unterminated character constant", 1, 5),
    ('R"(raw', "unterminated raw string literal", 1, 1),
    ("a @ b", "stray '@'", 1, 3),
])
def test_errors_point_at_the_start(source, message, line, column):
    with pytest.raises(ShaderCompileError) as info:
        tokenize(source, "k.metal")
    assert info.value.pos.file == "k.metal"
    assert (info.value.pos.line, info.value.pos.column) == (line, column)
    assert message in str(info.value)
