"""The translator's declaration-level rewrites, on tokens and translated text (no device): the outline of
declarations, address spaces on declarations, the conditional operator's operand extents, clang-only C++,
threadgroup checks per kernel, and compiler columns on rewritten lines."""
from __future__ import annotations

import dataclasses
import re
import subprocess

import pytest

from metalgpu.msl.abi import INCLUDE_DIR
from metalgpu.msl.diagnostics import parse_log
from metalgpu.msl.outline import bracket_partners, call_arguments, scan
from metalgpu.msl.parser import parse
from metalgpu.msl.preprocess import preprocess
from metalgpu.msl.translate import translate

HEADER = "#include <metal_stdlib>\nusing namespace metal;\n"


def translated(source: str, target: str = "cpu", kernels: list[str] | None = None):
    pre = preprocess(source, "test.metal")
    program = parse(pre.tokens, pre.sources)
    if kernels is not None:  # only these kernels' wrappers, as a translation for one kernel has
        program = dataclasses.replace(program, kernels=tuple(k for k in program.kernels if k.host_name in kernels))
    return translate(pre, program, target), pre


def user_code(translation) -> str:
    """The user's part of a translation, without whitespace (the translation keeps the user's columns)."""
    body = translation.source[translation.source.index("#line"):]
    body = body[:body.index("namespace mg_kernel_")] if "namespace mg_kernel_" in body else body
    return squeezed(re.sub(r'#line \d+ "[^"]*"', "", body))


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def gxx_errors(translation, pre) -> list:
    """g++ -fsyntax-only of a CPU translation: its errors, placed on the user's lines."""
    done = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-w", "-DMG_TARGET_CPU=1", "-I", str(INCLUDE_DIR),
                           "-x", "c++", "-"], input=translation.source, capture_output=True, text=True, check=False)
    return [d for d in parse_log(done.stderr, pre.sources, translation.columns) if d.severity == "error"]


# -- the declaration scanner ----------------------------------------------------------------------------------------

def test_scanner_reads_functions_classes_and_their_parts():
    pre = preprocess("namespace a {\ntemplate <typename T> struct S {\n  S() device = default;\n"
                     "  template <typename U> operator vec<U, 2>() const thread { return {}; }\n"
                     "  int x : 3;\n};\n}\nconstant int k = 1;\nvoid f(device float* p, int n = 2) {}\n", "t.metal")
    found = {(d.kind, "::".join(d.scope), " ".join(t.text for t in pre.tokens[d.name[0]:d.name[1]]) if d.name else "")
             for d in scan(pre.tokens)}
    assert ("class", "a", "S") in found
    assert ("function", "a::S", "S") in found
    assert ("function", "a::S", "operator vec < U , 2 >") in found
    assert ("function", "", "f") in found
    assert ("other", "", "") in found  # the constant
    constructor = next(d for d in scan(pre.tokens) if d.kind == "function" and d.scope == ("a", "S")
                       and pre.tokens[d.name[0]].text == "S")
    assert [t.text for t in pre.tokens[slice(*constructor.trailing)]] == ["device"]
    assert constructor.body is None


def test_constructor_initialisers_with_braces_end_at_the_body():
    pre = preprocess("struct P { int a, b; P(int x) : a{x}, b(x) { a += 1; } int c; };", "t.metal")
    constructor = next(d for d in scan(pre.tokens) if d.kind == "function")
    assert pre.tokens[constructor.body[0] + 1].text == "a" and pre.tokens[constructor.body[0] + 2].text == "+="
    assert any(d.kind == "other" and pre.tokens[d.end - 2].text == "c" for d in scan(pre.tokens))


@pytest.mark.parametrize("call, expected", [
    ("f(a, g(b, c), x[1, 2], T{3, 4}, y >> 1)", ["a", "g ( b , c )", "x [ 1 , 2 ]", "T { 3 , 4 }", "y >> 1"]),
    ("f()", []),
    ("f(h(g<int, 2>(x)))", ["h ( g < int , 2 > ( x ) )"]),  # template arguments inside a bracket
    ("f(a < b, c > d)", None),  # two arguments, or one template argument list: unclear
])
def test_call_arguments_split_at_the_calls_own_commas(call, expected):
    tokens = preprocess(call + ";", "t.metal").tokens
    found = call_arguments(tokens, bracket_partners(tokens), 1)
    texts = None if found is None else [" ".join(t.text for t in tokens[begin:end]) for begin, end in found]
    assert texts == expected


# -- address spaces on declarations ---------------------------------------------------------------------------------

def test_one_const_per_qualifier_sequence():
    translation, _ = translated(HEADER + "static constant constexpr const int a = 1;\n"
                                         "void f(constant const int& x, const constant int* y, constant int& z) {}\n")
    code = user_code(translation)
    assert squeezed("static MG_CONSTANT_DATA constexpr const int a") in code
    assert squeezed("f(const int& x, const int* y, const int& z)") in code


def test_of_variants_differing_only_by_address_space_one_is_kept():
    code = user_code(translated(HEADER + "struct S {\n  S() device = default;\n  S() thread = default;\n"
                                         "  int get() const constant { return 2; }\n"
                                         "  int get() const thread { return 1; }\n"
                                         "  operator int() thread { return 3; }\n"
                                         "  operator int() const device { return 4; }\n};\n"
                                         "void g(device int& x) { x = 1; }\nvoid g(thread int& x) { x = 2; }\n")[0])
    assert code.count(squeezed("S() = default")) == 1
    assert code.count(squeezed("int get() const")) == 1 and "return1;" in code and "return2;" not in code  # thread
    assert squeezed("operator int() {") in code and squeezed("operator int() const {") in code  # both kept
    assert code.count("voidg(") == 1 and "x=2;" in code


def test_a_definition_wins_over_a_declaration_and_the_choice_agrees_outside_the_class():
    translation, _ = translated(HEADER + "struct S {\n  int get() const device;\n  int get() const thread;\n};\n"
                                         "int S::get() const device { return 2; }\n"
                                         "int S::get() const thread { return 1; }\n"
                                         "void h(device int& x);\nvoid h(thread int& x);\nvoid h(device int& x) {}\n")
    code = user_code(translation)
    assert code.count(squeezed("int get() const;")) == 1
    assert code.count(squeezed("S::get() const {")) == 1 and "return1;" in code
    assert code.count("voidh(") == 2 and squeezed("void h(int& x) {}") in code  # the device declaration, defined


def test_partial_specialisations_differing_only_by_address_space():
    code = user_code(translated(HEADER + "template <typename T> struct E {};\n"
                                         "template <typename T> struct E<thread T*> { using type = T; };\n"
                                         "template <typename T> struct E<device T*> { using type = T; };\n"
                                         "template <typename T> struct E<constant T*> { using type = T; };\n")[0])
    assert code.count(squeezed("struct E<T*>")) == 1
    assert squeezed("struct E<const T*>") in code  # constant T*: a distinct specialisation, with no __constant__


def test_coherent_pointer_qualifier_vanishes_and_a_function_of_that_name_stays():
    code = user_code(translated(HEADER + "int coherent(int x) { return x; }\n"
                                         "kernel void k(volatile coherent(system) device uint* p [[buffer(0)]]) "
                                         "{ p[0] = coherent(1); }\n")[0])
    assert squeezed("(volatile uint* p)") in code
    assert squeezed("p[0] = coherent(1);") in code


# -- clang-only C++ ---------------------------------------------------------------------------------------------

def test_member_specialisation_at_class_scope_becomes_an_overload():
    code = user_code(translated(HEADER + "struct H {\n  template <typename T> T f(T x) { return x; }\n"
                                         "  template <> int f(int x) { return -x; }\n};\n")[0])
    assert code.count("template") == 1 and squeezed("int f(int x) { return -x; }") in code


def test_range_designators_become_assignments_after_the_declaration():
    code = user_code(translated(HEADER + "void f() {\n  float s[8] = { [0 ... 5] = 2.0h, [7] = 1 };\n}\n")[0])
    assert squeezed("float s[8] = {};") in code
    assert squeezed("for (long mg_i = (0); mg_i <= (5); ++mg_i) s[mg_i] = mg_value;") in code
    assert squeezed("const auto mg_value = (half(2.0f));") in code and squeezed("s[(7)] = (1);") in code


def test_static_constexpr_member_definitions_outside_the_class_are_dropped():
    code = user_code(translated(HEADER + "struct S { static constexpr constant int n = 2; static constant int m; };\n"
                                         "constexpr constant int S::n;\nconstant int S::m = 3;\n", "cuda")[0])
    assert "S::n" not in code
    assert squeezed("const int S::m = 3;") in code and "MG_CONSTANT_DATA" not in code


# -- the conditional operator -------------------------------------------------------------------------------------

def conditional_operands(code: str) -> list[tuple[str, str]]:
    return re.findall(r"::mg::cond_t<decltype\(\((.*?)\)\),decltype\(\((.*?)\)\)>", code)


def test_conditional_operands_end_where_cxx_ends_them():
    code = user_code(translated(HEADER + "template <int N> struct I { static constexpr int v = N; };\n"
                                         "int f(int a, int b, bool c) {\n"
                                         "  int x = c ? a + 1 : b * 2, y = 3;\n"
                                         "  int z = I<c ? 1 : 2 + 3>::v;\n"
                                         "  switch (a) { case 1: x = c ? a : b; break; }\n"
                                         "  return c ? x : a > b ? y : z;\n}\n")[0])
    operands = conditional_operands(code)
    assert ("a+1", "b*2") in operands
    assert ("1", "2+3") in operands  # the false operand ends at the template argument list's `>`
    assert ("a", "b") in operands
    # a conditional operand is typed by its own operands' types, not by a decltype of its text
    assert squeezed("::mg::cond_t<decltype((x)), ::mg::cond_result_t<decltype((y)), decltype((z))>>") in code


def test_conditionals_between_number_literals_are_left_alone_and_compile_in_class_templates():
    source = HEADER + ("template <int N> struct Shape {\n  static constexpr short rows = N, size = 128;\n"
                       "  static constexpr short width = (N == 8) ? 1 : (size / (rows * 2) >= 8 ? 8 : 4);\n"
                       "  static constexpr float scale = N > 4 ? 0.5h : 2;\n};\n"
                       "kernel void k(device float* o [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n"
                       "  o[i] = Shape<8>::width + Shape<16>::width + Shape<2>::scale;\n}\n")
    translation, pre = translated(source)
    code = user_code(translation)
    assert squeezed("(N == 8) ? 1 : (size / (rows * 2) >= 8 ? 8 : 4);") in code
    assert code.count("cond_t") == 2  # 0.5h is a half: that one is rewritten
    assert gxx_errors(translation, pre) == []


def test_conditionals_with_lambdas_and_gnu_elvis_are_left_alone():
    code = user_code(translated(HEADER + "int f(bool c, int a) {\n"
                                         "  int x = c ? [&] { return a; }() : 2;\n  return x ?: a;\n}\n")[0])
    assert "cond_t" not in code


# -- threadgroup memory --------------------------------------------------------------------------------------------

OVER_THE_LIMIT = HEADER + """template <int N>
kernel void staged(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    threadgroup float tile[N];
    tile[i % N] = out[i];
    out[i] = tile[0];
}
template [[host_name("small")]] kernel void staged<1024>(device float*, uint);
template [[host_name("big")]] kernel void staged<9000>(device float*, uint);
kernel void plain_big(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    threadgroup float tile[8200];
    tile[i] = out[i];
    out[i] = tile[0];
}
"""


@pytest.mark.parametrize("kernels, failing_line", [(["small"], None), (["big"], 5), (["plain_big"], 12),
                                                   (["small", "plain_big"], 12)])
@pytest.mark.parametrize("target", ["cpu", "cuda"])
def test_the_threadgroup_limit_fails_only_the_kernel_over_it(target, kernels, failing_line):
    # a translation that wraps only some kernels (as one compiled for a single kernel does) compiles unless one of
    # them declares more than 32 KiB; the error is on the declaration that goes over
    translation, pre = translated(OVER_THE_LIMIT, target, kernels)
    errors = gxx_errors(translation, pre) if target == "cpu" else nvrtc_errors(translation, pre)
    if failing_line is None:
        assert errors == []
    else:
        assert errors and "32 KiB" in errors[0].message
        assert errors[0].pos.line == failing_line


def test_threadgroup_initialisers_are_dropped_and_labels_start_declarations():
    code = user_code(translated(HEADER + "kernel void k(device float* o [[buffer(0)]], uint i "
                                         "[[thread_position_in_grid]]) {\n"
                                         "  switch (i) { case 0: threadgroup float t[4] = {1, 2}; o[0] = t[i]; }\n"
                                         "  static threadgroup int u[2];\n}\n")[0])
    assert squeezed("case 0: MG_THREADGROUP_STORAGE float t[4];") in code
    assert squeezed("} MG_THREADGROUP_STORAGE int u[2];") in code  # its own `static` goes


# -- diagnostics stay on the user's columns ------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["cpu", "cuda"])
@pytest.mark.parametrize("line, column", [
    ("    constant const int& r = c; float y = x ? h : f; y += not_declared;", 58),
    ("    float y = x ? h : f; float z = x ? y : h; z += not_declared;", 52),
])
def test_errors_after_rewritten_tokens_keep_the_users_column(target, line, column):
    source = (HEADER + "kernel void k(device float* o [[buffer(0)]], constant int& c [[buffer(1)]], "
              "uint i [[thread_position_in_grid]]) {\n    bool x = i > 2; half h = 1.0h; float f = 2.0f;\n"
              f"{line}\n}}\n")
    translation, pre = translated(source, target)
    errors = gxx_errors(translation, pre) if target == "cpu" else nvrtc_errors(translation, pre)
    assert errors and "not_declared" in errors[0].message
    assert (errors[0].pos.line, errors[0].pos.column) == (5, column)


def nvrtc_errors(translation, pre) -> list:
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
    from metalgpu.backends.base import CompileOptions, CompilerFailed
    from metalgpu.backends.nvrtc import nvrtc_compile

    try:
        nvrtc_compile(translation.source, CompileOptions(), "sm_90")
    except CompilerFailed as failure:
        return [d for d in parse_log(failure.log, pre.sources, translation.columns) if d.severity == "error"]
    return []


def test_a_class_that_converts_to_float_converts_to_the_cpus_half_through_it():
    code = user_code(translated(HEADER + "struct A { explicit operator float() const thread { return 1; }\n"
                                         "  explicit operator float() const device { return 2; } };\n"
                                         "struct B { operator float() { return 1; } operator half() { return 1; } };\n"
                                         "struct C { template <typename U> operator U() const { return U(1); } };\n"
                                         "struct D { operator double() { return 1; } };\n")[0])
    assert code.count("operatorMgFloat16()") == 2  # once for A, once for D; B converts itself, C is a template
    assert squeezed("constexpr explicit operator MgFloat16() const { return static_cast<MgFloat16>"
                    "(static_cast<float>(*this)); } explicit operator float() const { return 1; }") in code
    assert squeezed("constexpr operator MgFloat16() { return static_cast<MgFloat16>(static_cast<double>(*this)); }"
                    " operator double()") in code


# -- product statements joined in pairs ------------------------------------------------------------------------------

PAIR = "::metal::simdgroup_multiply_accumulate_pair"


def simdgroup_calls(name: str, body: str, helper: str = "") -> list[str]:
    """The calls of ``name`` (or of a name that begins so) in a kernel whose body is ``body``, after ``helper``, as
    translated: each a name and its arguments."""
    source = (HEADER + helper + "kernel void k(threadgroup half* t [[threadgroup(0)]]) {\n"
              "  simdgroup_half8x8 a[4], b[2], x, y; simdgroup_float8x8 c[4]; int i = 0;\n" + body + "\n}\n")
    code = user_code(translated(source)[0])
    return re.findall(rf"(?:::metal::|metal::)?{name}\w*\([^;]*\)", code)


def product_calls(body: str) -> list[str]:
    return simdgroup_calls("simdgroup_multiply_accumulate", body)


def test_adjacent_product_statements_become_one_call():
    calls = product_calls("simdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n"
                          "metal::simdgroup_multiply_accumulate(c[1], a[1], b[0], c[1]);\n"
                          "simdgroup_multiply_accumulate(c[2], a[2], b[1], c[2]);\n"
                          "simdgroup_multiply_accumulate(c[3], a[3], b[1], c[3]);\n"
                          "simdgroup_multiply_accumulate(c[0], a[0], b[1], c[0]);")
    assert calls == [f"{PAIR}(c[0],a[0],b[0],c[0],c[1],a[1],b[0],c[1])",
                     f"{PAIR}(c[2],a[2],b[1],c[2],c[3],a[3],b[1],c[3])",
                     "simdgroup_multiply_accumulate(c[0],a[0],b[1],c[0])"]  # two by two; the fifth alone


@pytest.mark.parametrize("body", [
    "if (i) simdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n"  # the first is an if's body
    "simdgroup_multiply_accumulate(c[1], a[1], b[0], c[1]);",
    "for (;;) simdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n"
    "simdgroup_multiply_accumulate(c[1], a[1], b[0], c[1]);",
    "simdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n"  # the second's operands call or change something
    "simdgroup_multiply_accumulate(c[i++], a[1], b[0], c[1]);",
    "simdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n"
    "simdgroup_multiply_accumulate(c[abs(i)], a[1], b[0], c[1]);",
    "simdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n"
    "simdgroup_multiply_accumulate(c[1], a[1], b[0], c[i = 2]);",
    "simdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n"  # a statement between them
    "i += 1;\nsimdgroup_multiply_accumulate(c[1], a[1], b[0], c[1]);",
    "simdgroup_multiply(c[0], a[0], b[0]);\n"  # another function
    "simdgroup_multiply_accumulate(c[1], a[1], b[0], c[1]);",
], ids=["if", "for", "increment", "call", "assignment", "between", "other"])
def test_product_statements_that_must_run_apart_stay_apart(body):
    assert not any(call.startswith(PAIR) for call in product_calls(body))


# -- loads of matrices that products read only as their B operand ----------------------------------------------

B_LOAD = "::metal::simdgroup_load_b_operand"


def load_calls(body: str, helper: str = "") -> list[str]:
    return simdgroup_calls("simdgroup_load", body, helper)


def test_loads_of_matrices_read_only_as_b_operands_are_named_so():
    calls = load_calls("simdgroup_load(a[i], t, 16); metal::simdgroup_load(b[0], t + 8, 16, ulong2(0, 8), true);\n"
                       "::metal::simdgroup_load(b[1], t, 16); simdgroup_load(x, t); simdgroup_load(y, t);\n"
                       "simdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n"
                       "simdgroup_multiply(c[1], a[i], b[1]);\n"
                       "simdgroup_multiply_accumulate(c[2], x, y, c[2]);\n")
    assert calls == ["simdgroup_load(a[i],t,16)", f"{B_LOAD}(b[0],t+8,16,ulong2(0,8),true)", f"{B_LOAD}(b[1],t,16)",
                     "simdgroup_load(x,t)", f"{B_LOAD}(y,t)"]


@pytest.mark.parametrize("use", [
    "simdgroup_multiply(c[1], b[1], a[0]);",                       # b as an A operand too
    "simdgroup_multiply_accumulate(c[1], a[0], a[1], b[0]);",      # ... and as the accumulator
    "simdgroup_multiply(b[0], a[0], a[1]);",                       # ... and as the result
], ids=["a-operand", "accumulator", "result"])
def test_loads_of_matrices_used_in_another_place_keep_metals_name(use):
    calls = load_calls("simdgroup_load(b[0], t, 16);\nsimdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n" + use)
    assert calls == ["simdgroup_load(b[0],t,16)"]


def test_another_namespaces_load_keeps_its_name():
    helper = ("namespace mine {\nvoid simdgroup_load(thread simdgroup_half8x8& m, threadgroup half* t, int n) {\n"
              "  metal::simdgroup_load(m, t, n);\n}\n}\n")
    calls = load_calls("mine::simdgroup_load(b[0], t, 16);\nsimdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);",
                       helper)
    assert calls[-1] == "simdgroup_load(b[0],t,16)" and not any(B_LOAD in call for call in calls)


def test_a_name_used_elsewhere_in_another_function_keeps_metals_name():
    helper = "void f(thread simdgroup_half8x8& b, thread simdgroup_float8x8& c) { simdgroup_multiply(c, b, b); }\n"
    calls = load_calls("simdgroup_load(b[0], t, 16);\nsimdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);", helper)
    assert calls == ["simdgroup_load(b[0],t,16)"]


A_PAIR_LOAD = "::metal::simdgroup_load_a_pair"
A_PAIR_PRODUCTS = ("simdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n"
                   "simdgroup_multiply_accumulate(c[1], a[1], b[0], c[1]);\n")


def test_loads_of_an_a_operands_halves_in_a_row_become_one_call():
    calls = load_calls("simdgroup_load(a[0], t, 16, ulong2(i, 0));\n"
                       "metal::simdgroup_load(a[1], t + 8 * (16 + i), uint(16), ulong2(i, 0));\n"
                       "simdgroup_load(a[2], t); simdgroup_load(a[3], t, 16, ulong2(0), true);\n"
                       + A_PAIR_PRODUCTS +
                       "simdgroup_multiply_accumulate(c[2], a[2], b[1], c[2]);\n"
                       "simdgroup_multiply_accumulate(c[3], a[3], b[1], c[3]);\n")
    assert calls == [f"{A_PAIR_LOAD}(a[0],t,16,ulong2(i,0),false,a[1],t+8*(16+i),uint(16),ulong2(i,0),false)",
                     f"{A_PAIR_LOAD}(a[2],t,8,::metal::ulong2(0),false,a[3],t,16,ulong2(0),true)"]


@pytest.mark.parametrize("loads", [
    "simdgroup_load(a[1], t); simdgroup_load(a[0], t);",            # the halves the other way round
    "simdgroup_load(a[0], t); i += 1; simdgroup_load(a[1], t);",    # a statement between them
    "if (i) simdgroup_load(a[0], t); simdgroup_load(a[1], t);",     # the first is an if's body
    "simdgroup_load(a[0], t); simdgroup_load(a[1], t + abs(i));",   # the second calls a function
    "simdgroup_load(a[0], t); simdgroup_load(a[1], t + i++);",      # ... or changes something
    "simdgroup_load(a[0], t); simdgroup_load(a[2], t);",            # not the halves of one operand
    "simdgroup_load(a[0], t); mine::simdgroup_load(a[1], t);",      # another namespace's load
], ids=["order", "between", "if", "call", "increment", "other-matrix", "namespace"])
def test_loads_that_must_stay_apart_stay_apart(loads):
    helper = "namespace mine {\nvoid simdgroup_load(thread simdgroup_half8x8& m, threadgroup half* t) {}\n}\n"
    calls = load_calls(loads + "\n" + A_PAIR_PRODUCTS, helper)
    assert not any(A_PAIR_LOAD in call for call in calls)


A_QUAD_LOAD = "::metal::simdgroup_load_a_quad"
B_PAIR_LOAD = "::metal::simdgroup_load_b_pair"
# A product of depth 16 in pairs of depth 8: a[0], a[1] the A halves at depth 0 with b[0], then a[2], a[3] at depth
# 8 with b[1], into the same accumulators.
DEEP_PRODUCTS = ("simdgroup_multiply_accumulate(c[0], a[0], b[0], c[0]);\n"
                 "simdgroup_multiply_accumulate(c[1], a[1], b[0], c[1]);\n"
                 "simdgroup_multiply_accumulate(c[0], a[2], b[1], c[0]);\n"
                 "simdgroup_multiply_accumulate(c[1], a[3], b[1], c[1]);\n")


def test_loads_of_a_deeper_products_operands_become_one_call_each():
    calls = load_calls("simdgroup_load(a[0], t, 24); simdgroup_load(a[1], t + 8 * 24, 24);\n"
                       "simdgroup_load(a[2], t, 24, ulong2(8, 0));\n"
                       "simdgroup_load(a[3], t + 8 * 24, 24, ulong2(8, 0));\n"
                       "simdgroup_load(b[0], t, 16, ulong2(0, i)); simdgroup_load(b[1], t, 16, ulong2(0, i + 8));\n"
                       + DEEP_PRODUCTS)
    assert calls == [f"{A_QUAD_LOAD}(a[0],t,24,::metal::ulong2(0),false,a[1],t+8*24,24,::metal::ulong2(0),false,"
                     "a[2],t,24,ulong2(8,0),false,a[3],t+8*24,24,ulong2(8,0),false)",
                     f"{B_PAIR_LOAD}(b[0],t,16,ulong2(0,i),false,b[1],t,16,ulong2(0,i+8),false)"]


def test_indices_that_a_macro_computes_name_the_same_matrices():
    calls = load_calls("#define LOAD(m, q) simdgroup_load(m[2 * q], t); simdgroup_load(m[2 * q + 1], t);\n"
                       "LOAD(a, 0) LOAD(a, 1) LOAD(b, 0)\n" + DEEP_PRODUCTS)
    assert [call.split("(")[0] for call in calls] == [A_QUAD_LOAD, B_PAIR_LOAD]


@pytest.mark.parametrize("change", [
    ("c[0], a[2], b[1], c[0]", "c[2], a[2], b[1], c[0]"),  # the deeper pair writes other matrices
    ("c[1], a[3], b[1], c[1]", "c[1], a[3], b[1], c[3]"),  # ... or adds to other ones
], ids=["other-results", "other-accumulators"])
def test_loads_of_products_that_do_not_chain_are_not_joined_as_deeper(change):
    products = DEEP_PRODUCTS.replace(*change)
    calls = load_calls("simdgroup_load(a[0], t); simdgroup_load(a[1], t); simdgroup_load(a[2], t);\n"
                       "simdgroup_load(a[3], t); simdgroup_load(b[0], t); simdgroup_load(b[1], t);\n" + products)
    assert not any(A_QUAD_LOAD in call for call in calls)


@pytest.mark.parametrize("loads", [
    "simdgroup_load(a[2], t); simdgroup_load(a[3], t); simdgroup_load(a[0], t); simdgroup_load(a[1], t);",
    "simdgroup_load(a[0], t); simdgroup_load(a[1], t); i += 1; simdgroup_load(a[2], t); simdgroup_load(a[3], t);",
    "simdgroup_load(a[0], t); simdgroup_load(a[1], t); simdgroup_load(a[2], t); simdgroup_load(a[3], t + i++);",
], ids=["depths-reversed", "between", "increment"])
def test_a_loads_that_must_not_make_one_deeper_operand_stay_apart(loads):
    calls = load_calls(loads + "\n" + DEEP_PRODUCTS)
    assert not any(A_QUAD_LOAD in call for call in calls)


@pytest.mark.parametrize("loads,products", [
    ("simdgroup_load(b[1], t); simdgroup_load(b[0], t);", DEEP_PRODUCTS),  # the deeper half first
    ("simdgroup_load(b[0], t); simdgroup_load(b[1], t);",                   # its products write other matrices
     DEEP_PRODUCTS.replace("a[3], b[1], c[1]", "a[3], b[1], c[3]").replace("c[1], a[3]", "c[3], a[3]")),
    ("simdgroup_load(b[0], t); simdgroup_load(x, t);",                      # a matrix read otherwise too
     DEEP_PRODUCTS + "simdgroup_multiply(c[2], x, a[0]);"),
], ids=["reversed", "other-results", "not-b-only"])
def test_b_loads_that_must_not_make_one_deeper_operand_stay_apart(loads, products):
    calls = load_calls(loads + "\n" + products)
    assert not any(B_PAIR_LOAD in call for call in calls)


def test_joined_products_compile_for_the_cpu_and_keep_their_errors_on_the_users_lines():
    source = (HEADER + "kernel void k(device float* p [[buffer(0)]]) {\n"
              "  simdgroup_half8x8 a, b; simdgroup_float8x8 c;\n"
              "  simdgroup_multiply_accumulate(c, a, b, c);\n"
              "  simdgroup_multiply_accumulate(c, a, b, not_declared);\n}\n")
    translation, pre = translated(source)
    errors = gxx_errors(translation, pre)
    assert errors and "not_declared" in errors[0].message
    assert errors[0].pos.line == 6
