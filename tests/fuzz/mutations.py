"""Hypothesis strategies that mutate seed kernels: at the token level (drop, duplicate, swap, insert or replace
tokens from a vocabulary of MSL keywords, types, attributes, directives, punctuation and odd literals, and deep
nesting) and at the byte level (random bytes, invalid UTF-8, NULs, control characters, very long lines,
truncation). Each mutation is plain data, so a failing example prints as something to paste into @example."""
from __future__ import annotations

import re

from hypothesis import strategies as st

from .seeds import all_seeds

SEEDS = all_seeds()
SEED_NAMES = sorted(SEEDS)

# Our own split of a source into tokens (not the project's lexer, so that its mistakes cannot hide inputs):
# whitespace and comments are tokens too, so that a mutated source keeps its lines.
_SPLIT_RE = re.compile(r"""
    \s+ | //[^\n]* | /\*.*?\*/
  | "(?:[^"\\\n]|\\.)*" | '(?:[^'\\\n]|\\.)*'
  | [A-Za-z_]\w* | \.?\d(?:[eEpP][+-]|[\w.'])*
  | \[\[ | \]\] | ::|->|\+\+|--|<<=|>>=|<<|>>|\#\#|&&|\|\||[<>=!+\-*/%&|^]=|\.\.\.
  | .
""", re.VERBOSE | re.DOTALL)


def split_tokens(source: str) -> list[str]:
    return _SPLIT_RE.findall(source)


KEYWORDS = """kernel vertex fragment device constant threadgroup thread threadgroup_imageblock ray_data object_data
template typename class struct union enum namespace using typedef return if else for while do switch case default
break continue goto static_assert constexpr consteval static inline extern const volatile mutable auto register
sizeof alignof alignas decltype noexcept operator new delete this true false nullptr public private protected
virtual friend explicit throw try catch asm __asm__ __attribute__ _Pragma __builtin_bit_cast __restrict
__VA_ARGS__ __VA_OPT__ __LINE__ __FILE__ __COUNTER__ __METAL_VERSION__ defined __has_include metal std mg""".split()

TYPES = """void bool char uchar short ushort int uint long ulong half bfloat float double size_t ptrdiff_t
float2 float3 float4 half2 half3 half4 int2 int3 int4 uint2 uint3 uint4 bool2 packed_float3 packed_half4
float2x2 float4x4 half3x3 simdgroup_float8x8 atomic_int atomic_uint atomic_float array vec matrix
texture2d sampler mem_flags memory_order_relaxed metal::float4 metal::array<float,4> vec<float,0>""".split()

ATTRIBUTES = [
    "[[buffer(0)]]", "[[buffer(1)]]", "[[buffer(30)]]", "[[buffer(31)]]", "[[buffer(-1)]]",
    "[[buffer(99999999999999999999)]]", "[[buffer(x)]]", "[[buffer()]]", "[[buffer(0), function_constant(f)]]",
    "[[thread_position_in_grid]]", "[[thread_index_in_threadgroup]]", "[[threads_per_grid]]",
    "[[threadgroup_position_in_grid]]", "[[thread_index_in_simdgroup]]", "[[simdgroup_index_in_threadgroup]]",
    "[[threadgroup(0)]]", "[[threadgroup(31)]]", "[[threadgroup(65536)]]", "[[function_constant(0)]]",
    "[[function_constant(1)]]", "[[function_constant(-1)]]", "[[function_constant(4294967296)]]",
    "[[function_constant(use_bias)]]", "[[max_total_threads_per_threadgroup(0)]]",
    "[[max_total_threads_per_threadgroup(1024)]]", "[[max_total_threads_per_threadgroup(-5)]]",
    "[[host_name(\"x\")]]", "[[host_name(\"\")]]", "[[host_name(\"a b\\n\")]]", "[[host_name(1)]]", "[[kernel]]",
    "[[texture(0)]]", "[[stage_in]]", "[[id(0)]]", "[[user(x)]]", "[[gnu::always_inline]]", "[[gnu::constructor]]",
    "[[clang::noinline]]", "[[using gnu: section(\".x\")]]", "[[maybe_unused]]", "[[", "]]", "[[]]",
    "__attribute__((always_inline))", "__attribute__((constructor))", "__attribute__((section(\"x\")))",
    "__attribute__((aligned(16)))", "__attribute__((", "alignas(64)",
]

DIRECTIVES = [
    "#define X 1", "#define F(a, ...) a __VA_ARGS__", "#define G(x) #x", "#define H(a, b) a ## b", "#undef X",
    "#define REC REC", "#define A B\n#define B A", "#define E(x) E(x) E(x)", "#if 1", "#if 0", "#if", "#elif 1",
    "#else", "#endif", "#ifdef X", "#ifndef X", "#if defined(X) && X > 2", "#if 1 / 0", "#if 99999999999999999999",
    "#if (((((1)))))", "#include <metal_stdlib>", "#include <metal_math>", "#include <stdio.h>",
    "#include \"missing.h\"", "#include \"fuzz_helper.h\"", "#include \"./fuzz_helper.h\"",
    "#include \"/etc/passwd\"", "#include \"../x.h\"", "#include", "#include <>",
    "#include MACRO", "#pragma once", "#pragma unroll", "#pragma GCC optimize(\"O0\")", "#pragma clang loop",
    "#error boom", "#warning careful", "#line 1 \"other.metal\"", "#line 4294967296", "#line -1", "#line x",
    "# 33 \"file\"", "#", "##", "#if __has_include(<metal_stdlib>)", "#if __has_include(", "_Pragma(\"once\")",
    "_Pragma(", "__VA_OPT__(", "#define", "#define 1", "#define X(", "#define X(a, a) a", "#elifdef X",
]

PUNCTUATION = """{ } ( ) [ ] < > ; , : :: . -> * & && || ! ~ ? = == += <<= >>= << >> ++ -- + - / % ^ | ... # ##
' " \\ @ $ ` %: <: :> <% %>""".split()

NUMBERS = [
    "0", "1", "-1", "31", "32", "1024", "0x7fffffff", "0xffffffff", "0xffffffffffffffff",
    "0x1ffffffffffffffffffffffff", "99999999999999999999999999999999999999", "1e309", "1.0e-400", "1.5h", "2u",
    "3ul", "0b101", "0b", "0x", "1'000'000", "1''0", ".5f", "1.f", "0.0", "1e", "1e+", "0x1p-3", "1.0bf", "09",
    "1" * 400, "1.", "2147483648", "-2147483648", "18446744073709551616", "(1 << 99999999999)", "(1 << 63) * 4",
    "0" + "7" * 400, "e4999",
]

STRINGS = ['"x"', '""', '"unterminated', "'c'", "'", "'ab'", 'R"(raw)"', 'R"xx(', 'u8"s"', '"\\x00"', '"\\u0000"',
           '"\\"', "L'\\0'"]

NAMES = ["add", "out", "i", "T", "N", "value", "kernel_name", "main", "system", "mmap", "dlopen", "printf",
         "operator()", "ä", "\u00e9t\u00e9", "\U0001f600", "_", "__x", "x" * 300]

VOCABULARY = KEYWORDS + TYPES + ATTRIBUTES + PUNCTUATION + NUMBERS + STRINGS + NAMES
DIRECTIVE_TEXTS = DIRECTIVES


@st.composite
def nesting(draw) -> str:
    """A deeply nested construct, balanced or not: brackets, templates, conditionals, macro calls."""
    depth = draw(st.sampled_from([2, 16, 100, 300, 1000, 5000]))
    shape = draw(st.sampled_from(["paren", "brace", "bracket", "angle", "if", "macro", "ternary", "unbalanced",
                                  "comment", "attribute", "namespace", "struct", "unary", "macro_call", "enum"]))
    if shape == "paren":
        return "(" * depth + "1" + ")" * depth
    if shape == "brace":
        return "{" * depth + "}" * depth
    if shape == "bracket":
        return "a" + "[0" * depth + "]" * depth
    if shape == "angle":
        return "vec<" * depth + "float" + ",2>" * depth
    if shape == "if":
        return "\n" + "#if 1\n" * depth + "#endif\n" * depth
    if shape == "macro":  # 2**12 copies: deeper is a macro bomb, which test_compile_limits.py covers
        return "\n#define M(x) (x + x)\n" + "M(" * min(depth, 12) + "1" + ")" * min(depth, 12) + "\n"
    if shape == "ternary":  # deeper chains translate to C++ quadratic in their depth (tests/fuzz/README.md)
        return "1 ? " * min(depth, 300) + "0" + " : 1" * min(depth, 300)
    if shape == "comment":
        return "/*" * depth + "*/"
    if shape == "attribute":
        return "[[" * depth + "]]" * depth
    if shape == "namespace":
        return "\nnamespace n { " * depth + "constant int k = 1;" + " }" * depth + "\n"
    if shape == "struct":
        return "\nstruct S { " * depth + "int k;" + " };" * depth + "\n"
    if shape == "unary":
        return "- ~ ! " * depth + "1"
    if shape == "macro_call":
        return "\n#define F(x) x\n" + "F(" * depth + "1" + ")" * depth + "\n"
    if shape == "enum":
        return "\nenum E { e0, " + ", ".join(f"e{k} = e{k - 1} + 1" for k in range(1, depth)) + " };\n"
    return draw(st.sampled_from(["(", "{", "[", "<", "[["])) * depth


def vocabulary_token(draw) -> str:
    kind = draw(st.sampled_from(["word", "directive", "nesting", "two"]))
    if kind == "word":
        return draw(st.sampled_from(VOCABULARY))
    if kind == "directive":
        return "\n" + draw(st.sampled_from(DIRECTIVE_TEXTS)) + "\n"
    if kind == "nesting":
        return draw(nesting())
    return draw(st.sampled_from(VOCABULARY)) + " " + draw(st.sampled_from(VOCABULARY))


TOKEN_OPS = ("drop", "duplicate", "swap", "insert", "replace")


@st.composite
def token_mutation(draw, length: int) -> tuple:
    op = draw(st.sampled_from(TOKEN_OPS))
    at = draw(st.integers(0, max(length - 1, 0)))
    if op == "swap":
        return op, at, draw(st.integers(0, max(length - 1, 0)))
    if op in ("insert", "replace"):
        return op, at, vocabulary_token(draw)
    return op, at


def apply_token_mutations(source: str, mutations: list[tuple]) -> str:
    tokens = split_tokens(source)
    for mutation in mutations:
        op, at = mutation[0], mutation[1]
        if not tokens:
            tokens = [""]
        at = min(at, len(tokens) - 1)
        if op == "drop":
            del tokens[at]
        elif op == "duplicate":
            tokens.insert(at, tokens[at])
        elif op == "swap":
            other = min(mutation[2], len(tokens) - 1)
            tokens[at], tokens[other] = tokens[other], tokens[at]
        elif op == "insert":
            tokens.insert(at, " " + mutation[2] + " ")
        elif op == "replace":
            tokens[at] = " " + mutation[2] + " "
    return "".join(tokens)


@st.composite
def token_mutated_sources(draw, max_mutations: int = 6) -> tuple[str, list[tuple], str]:
    """(seed name, mutations, the mutated source)."""
    name = draw(st.sampled_from(SEED_NAMES))
    length = len(split_tokens(SEEDS[name]))
    mutations = draw(st.lists(token_mutation(length), min_size=1, max_size=max_mutations))
    return name, mutations, apply_token_mutations(SEEDS[name], mutations)


# Byte sequences that are not UTF-8, or are UTF-8 a C++ lexer may trip on.
ODD_BYTES = [
    b"\x00", b"\xff", b"\xfe\xff", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80",
    b"\xef\xbb\xbf", b"\r", b"\r\n", b"\x0c", b"\x0b", b"\x1b[31m", b"\\", b"\\\n", b"\\\r\n", b"\x7f",
    "\u2028".encode(), "\u00a0".encode(), "\u200b".encode(), "\U0001f600".encode(), b"??=", b"??/\n",
]

BYTE_OPS = ("insert", "overwrite", "delete", "truncate", "long_line", "odd")


@st.composite
def byte_mutation(draw, length: int) -> tuple:
    op = draw(st.sampled_from(BYTE_OPS))
    at = draw(st.integers(0, length))
    if op == "insert":
        return op, at, draw(st.binary(min_size=1, max_size=8))
    if op == "overwrite":
        return op, at, draw(st.integers(0, 255))
    if op == "delete":
        return op, at, draw(st.integers(1, 64))
    if op == "long_line":
        return op, at, draw(st.sampled_from([b"a", b"+", b"(", b" ", b"1", b"/", b"\\", b"\"", b"\xff"])), \
            draw(st.sampled_from([1000, 70_000, 300_000]))
    if op == "odd":
        return op, at, draw(st.sampled_from(ODD_BYTES))
    return op, at


def apply_byte_mutations(data: bytes, mutations: list[tuple]) -> bytes:
    buffer = bytearray(data)
    for mutation in mutations:
        op, at = mutation[0], min(mutation[1], len(buffer))
        if op in ("insert", "odd"):
            buffer[at:at] = mutation[2]
        elif op == "overwrite":
            if at < len(buffer):
                buffer[at] = mutation[2]
        elif op == "delete":
            del buffer[at:at + mutation[2]]
        elif op == "truncate":
            del buffer[at:]
        elif op == "long_line":
            buffer[at:at] = mutation[2] * mutation[3]
    return bytes(buffer)


@st.composite
def byte_mutated_sources(draw, max_mutations: int = 4) -> tuple[str, list[tuple], bytes]:
    """(seed name, mutations, the mutated bytes of the file)."""
    name = draw(st.sampled_from(SEED_NAMES))
    data = SEEDS[name].encode()
    mutations = draw(st.lists(byte_mutation(len(data)), min_size=1, max_size=max_mutations))
    return name, mutations, apply_byte_mutations(data, mutations)
