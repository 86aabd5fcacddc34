"""The preprocessor: macros, conditionals, includes, positions and errors."""
import time

import pytest

from metalgpu.errors import ShaderCompileError
from metalgpu.msl.lexer import STRING
from metalgpu.msl.preprocess import PreprocessResult, preprocess


def out(source: str, **kwargs) -> str:
    return " ".join(t.text for t in preprocess(source, "k.metal", **kwargs).tokens)


def error_of(source: str, filename: str = "k.metal", **kwargs) -> ShaderCompileError:
    with pytest.raises(ShaderCompileError) as info:
        preprocess(source, filename, **kwargs)
    return info.value


# ----- macros -----------------------------------------------------------------------------

def test_object_like_and_function_like_macros():
    assert out("#define N 4\n#define SQ(x) ((x) * (x))\nint a = SQ(N + 1);") == "int a = ( ( 4 + 1 ) * ( 4 + 1 ) ) ;"


def test_function_like_macro_name_without_parenthesis_is_left_alone():
    assert out("#define F(x) x\nint F;") == "int F ;"


def test_object_like_macro_with_parenthesis_after_a_space():
    assert out("#define P (1)\nP") == "( 1 )"


def test_stringizing_escapes_quotes_and_collapses_spaces():
    tokens = preprocess('#define S(x) #x\nS(  a   "b\\n"  +c )', "k").tokens
    assert len(tokens) == 1 and tokens[0].kind == STRING
    assert tokens[0].text == r'"a \"b\\n\" +c"'


def test_stringizing_after_expansion_needs_two_levels():
    assert out("#define S(x) #x\n#define X(x) S(x)\n#define V 310\nS(V), X(V)") == '"V" , "310"'


def test_pasting_and_placemarkers():
    source = ("#define CAT(a, b) a##b\n#define CAT3(a, b, c) a##b##c\n"
              "CAT(add_, float) CAT(, y) CAT(x, ) [CAT(,)] CAT3(a, 1, _z)")
    assert out(source) == "add_float y x [ ] a1_z"


def test_pasting_that_gives_no_single_token_is_an_error():
    error = error_of("#define CAT(a, b) a##b\n\n  CAT(+, /)")
    assert (error.pos.line, error.pos.column) == (3, 3)
    assert "pasting '+' and '/'" in str(error)


def test_variadic_macros():
    source = ("#define LOG(fmt, ...) printf(fmt, __VA_ARGS__)\n"
              "#define G(fmt, ...) g(fmt, ## __VA_ARGS__)\n"
              "#define O(a, ...) o(a __VA_OPT__(,) __VA_ARGS__)\n"
              'LOG("%d %d", 1, (2, 3)) G(0) G(0, 1) O(1) O(1, 2, 3)')
    assert out(source) == 'printf ( "%d %d" , 1 , ( 2 , 3 ) ) g ( 0 ) g ( 0 , 1 ) o ( 1 ) o ( 1 , 2 , 3 )'


def test_a_macro_is_not_expanded_inside_itself():
    source = "#define f(x) x + f(x)\n#define A B\n#define B A\nf(1) A B"
    assert out(source) == "1 + f ( 1 ) A B"


def test_nested_expansion_of_arguments():
    source = "#define ID(x) x\n#define TWICE(x) ID(x) ID(x)\n#define N 2\nTWICE(ID(N))"
    assert out(source) == "2 2"


def test_kernels_generated_by_a_macro_come_out_as_plain_tokens():
    source = ("#define ADD(T) kernel void add_##T(device T* a [[buffer(0)]], uint i [[thread_position_in_grid]]) "
              "{ a[i] += 1; }\nADD(float) ADD(int)")
    text = out(source)
    assert text.startswith("kernel void add_float ( device float * a [ [ buffer ( 0 ) ] ] ,")
    assert "kernel void add_int ( device int * a" in text


def test_expanded_tokens_carry_the_outermost_invocation_position():
    source = "#define INNER(x) x * 2\n#define OUTER(x) INNER(x) + 1\nint a =\n    OUTER(y);"
    tokens = preprocess(source, "k.metal").tokens
    assert [t.text for t in tokens] == ["int", "a", "=", "y", "*", "2", "+", "1", ";"]
    assert [(t.line, t.column) for t in tokens[3:8]] == [(4, 5)] * 5
    assert all(t.space_before for t in tokens[3:8])
    assert (tokens[8].line, tokens[8].column) == (4, 13)


def test_undef_and_command_line_defines():
    assert out("#define A 1\n#undef A\nA B C", defines={"B": "2", "C": ""}) == "A 2"


def test_function_like_command_line_define():
    assert out("SQ(3)", defines={"SQ(x)": "x*x"}) == "3 * 3"


def test_wrong_argument_count_is_an_error_at_the_invocation():
    error = error_of("#define F(a, b) a\n F(1)")
    assert (error.pos.line, error.pos.column) == (2, 2)
    assert "macro 'F' takes 2 arguments, 1 given" in str(error)


def test_unterminated_macro_call():
    error = error_of("#define F(a) a\nF(1, \n")
    assert (error.pos.line, error.pos.column) == (2, 1) and "unterminated argument list" in str(error)


def test_predefined_macros():
    source = ("__METAL__ __METAL_VERSION__ __METAL_MACOS__ __HAVE_BFLOAT__ __cplusplus __METAL_IOS__\n"
              "__LINE__ __FILE__, __COUNTER__ __COUNTER__")
    assert out(source) == '1 310 1 1 201703L __METAL_IOS__ 2 "k.metal" , 0 1'


@pytest.mark.parametrize("feature", ["__HAVE_RAYTRACING__", "__HAVE_MESH__", "__METAL_IOS__", "__APPLE__"])
def test_no_feature_test_for_what_is_not_emulated(feature):
    assert out(f"#ifdef {feature}\napple_only\n#else\nportable\n#endif") == "portable"


# ----- string literals ------------------------------------------------------------------------

def test_adjacent_string_literals_are_one_token_at_the_first_ones_position():
    source = '#define NAME(op, type) "k_" #op "_" #type\nx = NAME(add, float);\ny = "a"\n    "b" u8"c";'
    tokens = preprocess(source, "k.metal").tokens
    assert [(t.text, t.line, t.column) for t in tokens] == [
        ("x", 2, 1), ("=", 2, 3), ('"k_add_float"', 2, 5), (";", 2, 21),
        ("y", 3, 1), ("=", 3, 3), ('u8"abc"', 3, 5), (";", 4, 14)]
    assert tokens[2].kind == STRING


@pytest.mark.parametrize("source, joined", [
    (r'"\x1" "2"', r'"\x1\062"'),        # a hex escape does not swallow the next literal's digit
    (r'"\12" "3"', r'"\12\063"'),        # nor does a short octal one
    (r'"\123" "4"', r'"\1234"'),          # a three-digit octal escape is complete
    (r'"\\x" "1"', r'"\\x1"'),          # an escaped backslash is no escape
    ('R"d(a"\\)d" "b"', r'"a\"\\b"'),  # a raw literal is escaped
    ('L"w" "x"', 'L"wx"'),
])
def test_string_concatenation_keeps_each_character(source, joined):
    assert out(source) == joined


def test_string_literals_with_different_encoding_prefixes_are_an_error():
    error = error_of('\n  u"a" "b" L"c"')
    assert "different encoding prefixes (u and L)" in str(error) and (error.pos.line, error.pos.column) == (2, 12)


def test_gnu_extension_keyword_is_dropped():
    assert out("#define EXT __extension__\nstruct S { EXT union { int a; float b; }; };") == \
        "struct S { union { int a ; float b ; } ; } ;"


# ----- pragmas and directives -----------------------------------------------------------------

def test_pragmas_are_removed_but_loop_unroll_hints_are_kept_as_markers():
    source = ("#pragma clang loop unroll(full)\n#pragma unroll\n#pragma METAL internals : enable\n"
              '#define UNROLL _Pragma("unroll")\nUNROLL for (;;) {} _Pragma("clang diagnostic push") x')
    full = "__metalgpu_unroll_full"
    assert out(source) == f"{full} {full} {full} for ( ; ; ) {{ }} x"


@pytest.mark.parametrize("pragma, marker", [
    ("#pragma unroll", "full"), ("#pragma unroll 4", "4"), ("#pragma unroll(8)", "8"), ("#pragma nounroll", "1"),
    ("#pragma GCC unroll 16", "16"), ("#pragma clang loop unroll(full)", "full"),
    ("#pragma clang loop unroll(enable)", "full"), ("#pragma clang loop unroll(disable)", "1"),
    ("#pragma clang loop unroll_count(2)", "2"), ("#pragma clang loop vectorize(enable) unroll_count(3)", "3"),
    ('_Pragma("clang loop unroll_count(5)")', "5"),
    ("#pragma clang loop vectorize(enable)", None), ("#pragma unroll 0", None), ("#pragma unroll N", None),
    ("#pragma clang diagnostic push", None),
])
def test_unroll_hint_spellings(pragma, marker):
    expected = "for" if marker is None else f"__metalgpu_unroll_{marker} for"
    assert out(f"{pragma}\nfor") == expected


def test_error_directive():
    error = error_of("#if 1\n  #error tile size must be 16\n#endif")
    assert (error.pos.line, error.pos.column) == (2, 3)
    assert "#error tile size must be 16" in str(error)


def test_warning_and_line_directives():
    result = preprocess('#warning careful now\n#line 10 "x"\nok', "k.metal")
    assert [t.text for t in result.tokens] == ["ok"]
    assert [(w.message, w.severity, w.pos.line, w.pos.column) for w in result.warnings] == [
        ("#warning careful now", "warning", 1, 1)]


def test_extra_tokens_after_directives_are_warnings():
    source = "#include <metal_stdlib>;\n#ifdef A junk\n#else junk\n#endif A\n#if 0\n#if 1\n#endif B\n#endif\nok"
    result = preprocess(source, "k.metal")
    assert [t.text for t in result.tokens] == ["ok"] and result.system_headers == ["metal_stdlib"]
    assert [(w.message, w.pos.line, w.pos.column) for w in result.warnings] == [
        ("extra tokens at end of #include directive", 1, 24), ("extra tokens at end of #ifdef directive", 2, 10),
        ("extra tokens at end of #else directive", 3, 7), ("extra tokens at end of #endif directive", 4, 8)]
    assert "#include <metal_stdlib>;" in result.warnings[0].format()


def test_unknown_directive_is_an_error():
    assert "unknown preprocessing directive '#frobnicate'" in str(error_of("#frobnicate"))


# ----- conditionals -------------------------------------------------------------------------

@pytest.mark.parametrize("condition, expected", [
    ("defined(__METAL__) && __METAL_VERSION__ >= 300", "yes"),
    ("defined __METAL_IOS__", "no"),
    ("!defined(UNKNOWN) && UNKNOWN == 0", "yes"),
    ("(1 + 2) * 3 == 9 && 7 / 2 == 3 && -7 / 2 == -3 && 7 % 3 == 1", "yes"),
    ("1 << 4 == 0x10 && 010 == 8 && 0b11 == 3 && 1'000 == 1000u", "yes"),
    ("2 > 1 ? 5 : 1 / 0", "yes"),
    ("0 && (1 / 0)", "no"),
    ("'A' == 65 && '\\n' == 10", "yes"),
    ("(~0 & 0xff) == 255 && (6 ^ 3) == 5 && (4 | 1) == 5", "yes"),
    ("__has_include(<metal_stdlib>) && !__has_include(<vector>)", "yes"),
    ("true && !false", "yes"),
])
def test_if_expressions(condition, expected):
    assert out(f"#if {condition}\nyes\n#else\nno\n#endif") == expected


def test_elif_chain_and_nesting():
    source = ("#define LEVEL 2\n#if LEVEL == 1\none\n#elif LEVEL == 2\n#ifdef LEVEL\ntwo\n#else\nbad\n#endif\n"
              "#elif LEVEL == 2\nbad\n#else\nbad\n#endif\n#ifndef NOPE\nend\n#endif")
    assert out(source) == "two end"


def test_skipped_regions_ignore_bad_directives():
    assert out("#if 0\n#frobnicate\n#error no\n#include <vector>\n#endif\nok") == "ok"


@pytest.mark.parametrize("source, message, line", [
    ("#if 1\nx\n", "unterminated #if", 1),
    ("x\n#endif", "#endif without #if", 2),
    ("#if 1\n#else\n#elif 1\n#endif", "#elif after #else", 3),
    ("#if 1 +\n#endif", "ends too early", 1),
    ("#if 1 / 0\n#endif", "division by zero", 1),
])
def test_conditional_errors(source, message, line):
    error = error_of(source)
    assert message in str(error) and error.pos.line == line


# ----- includes -------------------------------------------------------------------------------

def test_metal_headers_are_recorded_not_read():
    result = preprocess("#include <metal_stdlib>\n#include <simd/simd.h>\n#include <metal_stdlib>\n"
                        "#include <metal_atomic>\nx", "k.metal")
    assert isinstance(result, PreprocessResult)
    assert result.system_headers == ["metal_stdlib", "simd/simd.h", "metal_atomic"]
    assert [t.text for t in result.tokens] == ["x"]
    assert result.sources == {"k.metal": result.sources["k.metal"]}


def test_unknown_system_header_is_an_error():
    error = error_of("\n  #include <vector>")
    assert "unknown system header <vector>" in str(error) and (error.pos.line, error.pos.column) == (2, 4)


def test_angle_brackets_find_a_librarys_own_headers_in_the_include_folders(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "ops.h").write_text("#pragma once\nint ops;\n")
    source = ("#include <metal_stdlib>\n#include <lib/ops.h>\n"
              "#if __has_include(<lib/ops.h>) && !__has_include(<lib/no.h>)\nok\n#endif")
    result = preprocess(source, "k.metal", include_dirs=[str(tmp_path)])
    assert [t.text for t in result.tokens] == ["int", "ops", ";", "ok"]
    assert result.tokens[0].file == str(tmp_path / "lib" / "ops.h") and result.system_headers == ["metal_stdlib"]


def test_angle_brackets_do_not_search_the_including_files_folder(tmp_path):
    (tmp_path / "near.h").write_text("int near;\n")
    main = tmp_path / "main.metal"
    with pytest.raises(ShaderCompileError, match="unknown system header <near.h>"):
        preprocess("#include <near.h>\n", str(main))
    assert out('#include "near.h"', include_dirs=[str(tmp_path)]) == "int near ;"


@pytest.mark.parametrize("header, framework", [
    ("MetalPerformancePrimitives/MetalPerformancePrimitives.h", "the MetalPerformancePrimitives framework"),
    ("metal_tensor", "Metal 4's tensor library"),
])
def test_apple_only_frameworks_are_named_in_a_clear_error(header, framework):
    error = error_of(f"#include <metal_stdlib>\n #include <{header}>")
    assert f"<{header}> belongs to {framework}" in str(error) and "Apple-only" in str(error)
    assert (error.pos.line, error.pos.column) == (2, 3)
    assert out(f"#if __has_include(<{header}>)\nyes\n#else\nno\n#endif") == "no"


def test_include_next_to_the_file(tmp_path):
    (tmp_path / "common.h").write_text("#pragma once\n#define SCALE 2\nfloat scale(float x) { return x * SCALE; }\n")
    main = tmp_path / "main.metal"
    main.write_text('#include "common.h"\n#include "common.h"\nkernel')
    result = preprocess(main.read_text(), str(main))
    header = str(tmp_path / "common.h")
    assert " ".join(t.text for t in result.tokens) == "float scale ( float x ) { return x * 2 ; } kernel"
    assert result.tokens[0].file == header and (result.tokens[0].line, result.tokens[0].column) == (3, 1)
    assert result.tokens[-1].file == str(main) and result.tokens[-1].line == 3
    assert set(result.sources) == {str(main), header}


def test_include_guards(tmp_path):
    (tmp_path / "g.h").write_text("#ifndef G_H\n#define G_H\nint g;\n#endif\n")
    (tmp_path / "main.metal").write_text('#include "g.h"\n#include "g.h"\n')
    assert out('#include "main.metal"\n', include_dirs=[str(tmp_path)]) == "int g ;"


def test_string_source_uses_include_dirs(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.h").write_text('#include "b.h"\nint a;\n')
    (tmp_path / "sub" / "b.h").write_text("int b;\n")
    assert out('#include "sub/a.h"', include_dirs=[str(tmp_path)]) == "int b ; int a ;"


def test_missing_include_is_an_error_at_the_directive():
    error = error_of('int x;\n #include "nowhere.h"\n', "<string>")
    assert error.pos.file == "<string>" and (error.pos.line, error.pos.column) == (2, 3)
    assert "file not found: 'nowhere.h'" in str(error)


def test_recursive_include_hits_the_depth_limit(tmp_path):
    (tmp_path / "loop.h").write_text('#include "loop.h"\n')
    error = error_of('#include "loop.h"', include_dirs=[str(tmp_path)])
    assert "nested more than 64 levels" in str(error) and error.pos.file == str(tmp_path / "loop.h")


def test_has_include_checks_user_files(tmp_path):
    (tmp_path / "h.h").write_text("")
    source = '#if __has_include("h.h") && !__has_include("missing.h")\nyes\n#endif'
    assert out(source, include_dirs=[str(tmp_path)]) == "yes"


def test_three_thousand_lines_preprocess_quickly():
    unit = ("#define IDX(i, j, n) ((i) * (n) + (j))\n// comment\n"
            "kernel void k{0}(device const float* a [[buffer(0)]],\n"
            "    device float* b [[buffer(1)]], uint2 gid [[thread_position_in_grid]]) {{\n"
            "    float acc = 0.0f; /* block */\n    for (uint k = 0; k < 8; ++k) {{ acc += a[IDX(gid.y, k, 8)]; }}\n"
            "    b[IDX(gid.y, gid.x, 8)] = acc;\n}}\n\n\n")
    source = "#include <metal_stdlib>\n" + "".join(unit.format(i) for i in range(300))
    assert source.count("\n") >= 3000
    best = min(_timed(source) for _ in range(3))
    # About 0.1 s on an idle machine; the bound only catches a quadratic slip (tens of seconds),
    # so that a loaded CI machine does not fail it.
    assert best < 2.0


def _timed(source: str) -> float:
    start = time.perf_counter()
    preprocess(source, "big.metal")
    return time.perf_counter() - start
