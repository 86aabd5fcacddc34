"""A shader is MSL, not arbitrary C++: the front end refuses what Metal does not have and what would reach the host,
on the user's own line, and keeps accepting what production MSL writes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import load_kernel
from metalgpu.errors import ShaderCompileError
from metalgpu.msl.parser import parse
from metalgpu.msl.preprocess import preprocess
from metalgpu.msl.translate import translate

KERNEL = """
kernel void k(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = helper(float(i));
}
"""


def refusal(source: str, tmp_path=None, **kwargs) -> ShaderCompileError:
    with pytest.raises(ShaderCompileError) as info:
        preprocess(source, "k.metal", **kwargs)
    return info.value


def where(error: ShaderCompileError) -> tuple[int, int]:
    return error.pos.line, error.pos.column


# ----- refused constructs, each at its own line and column -------------------------------------------------------

@pytest.mark.parametrize("spelling", ["asm", "__asm__", "__asm"])
def test_inline_assembly_is_refused(spelling):
    error = refusal(f'#include <metal_stdlib>\nfloat helper(float x) {{\n  {spelling}(".incbin \\"/etc/passwd\\"");'
                    "\n  return x; }")
    assert where(error) == (3, 3)
    assert "inline assembly" in str(error)


def test_assembly_made_by_a_macro_is_refused_where_the_macro_is_used():
    error = refusal('#define MACHINE_CODE __asm__("nop")\nvoid f() {\n    MACHINE_CODE;\n}')
    assert where(error) == (3, 5)


def test_extern_declarations_are_refused():
    error = refusal('#include <metal_stdlib>\n\nextern "C" int system(const char*);\n' + KERNEL)
    assert where(error) == (3, 1)
    assert "'extern'" in str(error)
    assert where(refusal("extern float table[16];")) == (1, 1)


def test_extern_template_linkage_blocks_and_definitions_are_accepted():
    source = ('template <typename T> T twice(T x) { return x + x; }\nextern template float twice<float>(float);\n'
              'extern "C" { float helper(float x) { return twice(x); } }\n'
              'extern "C" float thrice(float x) { return x * 3.0f; }')
    assert [t.text for t in preprocess(source, "k.metal").tokens].count("extern") == 3


def test_extern_declaration_with_parentheses_and_brackets_is_refused():
    error = refusal('float f();\n  extern "C" int pick(int (*choose)(int), int table[4]);')
    assert where(error) == (2, 3)


@pytest.mark.parametrize("attribute, column", [
    ("__attribute__((constructor))", 16), ("__attribute__((__destructor__))", 16),
    ('__attribute__((section(".init_array")))', 16), ("__attribute__((noinline, weak))", 26),
    ('__attribute__((alias("k")))', 16), ('__attribute__((visibility("default")))', 16),
    ("__attribute__((cleanup(f)))", 16), ('__attribute__((optimize("O0")))', 16),
    ("[[gnu::constructor]]", 8), ("[[__gnu__::__constructor__]]", 12), ("[[using gnu: constructor]]", 14),
    ("[[clang::always_inline, gnu::section(\".x\")]]", 30), ("[[constructor]]", 1 + 2),
])
def test_host_acting_attributes_are_refused(attribute, column):
    error = refusal(f"float x;\n{attribute} static void f() {{}}")
    assert where(error) == (2, column)
    assert "act on the host" in str(error)


def test_a_directive_made_by_a_macro_or_a_digraph_is_refused():
    # the translation goes through the host compiler's preprocessor again, where these would be directives
    error = refusal('#define HASH #\nvoid f() {\n  HASH include "/etc/hostname"\n}')
    assert where(error) == (3, 3) and "a macro cannot make a directive" in str(error)
    assert where(refusal('int a;\n %:include "/etc/hostname"\n')) == (2, 2)
    error = refusal("<:<:gnu::constructor:>:> static void f() {}")
    assert where(error) == (1, 1) and "digraphs" in str(error)


def test_less_than_before_a_scope_is_not_a_digraph():
    assert out("bool b = x <::y; int c = 5 % ::z;") == "bool b = x < :: y ; int c = 5 % :: z ;"


def test_every_refusal_is_reported():
    error = refusal('asm("nop");\n__attribute__((constructor)) void f() {}\nextern int y;')
    assert [d.pos.line for d in error.diagnostics] == [1, 2, 3]


@pytest.mark.parametrize("name", ["mmap", "mprotect", "syscall", "dlsym"])
def test_host_functions_our_headers_use_cannot_be_called(name):
    error = refusal(f"#include <metal_stdlib>\nvoid f() {{ int r = ::{name}(0); }}")
    assert where(error) == (2, 22)
    assert "host C library function" in str(error)


def test_a_member_named_like_a_host_function_is_accepted():
    assert "mmap" in out("struct S { int mmap; };\nint g(S s) { return s.mmap; }")


@pytest.mark.parametrize("pragma", ['#pragma GCC optimize("O0")', "#pragma GCC target(\"avx512f\")",
                                    "#pragma clang attribute push(__attribute__((section(\"x\"))), apply_to=any)"])
def test_pragmas_that_change_code_generation_are_refused(pragma):
    error = refusal(f"int a;\n  {pragma}\nint b;")
    assert where(error) == (2, 11)
    assert "#pragma" in str(error)


def test_pragma_operator_that_changes_code_generation_is_refused_where_it_is_expanded():
    error = refusal('#define SLOW _Pragma("GCC optimize(\\"O0\\")")\nint a;\n   SLOW\n')
    assert where(error) == (3, 4)


def test_loop_and_metal_pragmas_are_accepted():
    source = ("#pragma once\n#pragma unroll\n#pragma clang loop unroll(full)\n#pragma METAL internals : enable\n"
              '#pragma clang diagnostic ignored "-Wunused"\n#pragma GCC unroll 4\n'
              '#define UNROLL _Pragma("clang loop unroll(full)")\nUNROLL x')
    full = "__metalgpu_unroll_full"  # loop hints stay, as markers the translation makes CUDA pragmas of
    assert out(source) == f"{full} {full} __metalgpu_unroll_4 {full} x"


@pytest.mark.parametrize("header", ["stdio.h", "cstdlib", "unistd.h", "sys/mman.h", "vector", "dlfcn.h"])
def test_c_library_headers_are_refused_even_from_an_include_folder(header, tmp_path):
    target = tmp_path / header
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("int system(const char*);\n")
    error = refusal(f"#include <metal_stdlib>\n #include <{header}>\n", include_dirs=[str(tmp_path)])
    assert where(error) == (2, 3)
    assert f"<{header}>" in str(error) and "C, C++ or system" in str(error)
    assert out(f"#if __has_include(<{header}>)\nyes\n#else\nno\n#endif", include_dirs=[str(tmp_path)]) == "no"


def out(source: str, filename: str = "k.metal", **kwargs) -> str:
    return " ".join(t.text for t in preprocess(source, filename, **kwargs).tokens)


# ----- what production MSL writes keeps working, on every backend -----------------------------------------------

ACCEPTED = """
#include <metal_stdlib>
using namespace metal;

#define UNROLL _Pragma("clang loop unroll(full)")

__attribute__((always_inline)) inline float twice(float x) { return x + x; }
[[gnu::noinline]] float thrice(float x) { return 3.0f * x; }
struct __attribute__((packed)) Pair { uchar tag; float value; };
struct alignas(16) Padded { float v; };

kernel void accepted(device float* out [[buffer(0)]], constant Pair& pair [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) {
    __attribute__((unused)) int spare = 0;
    float sum = 0;
    UNROLL
    for (int k = 0; k < 4; ++k) {
        sum += twice(float(k));
    }
    #pragma unroll
    for (int k = 0; k < 2; ++k) {
        sum += thrice(pair.value);
    }
    out[i] = sum + float(i) + float(sizeof(Pair));
}
"""


def test_production_attributes_and_pragmas_still_run(iface):
    iface.load_shader_from_str(ACCEPTED)
    out_buffer = iface.create_buffer(8, "float")
    pair = np.zeros(1, dtype=[("tag", "u1"), ("value", "<f4")])
    pair["value"] = 2.0
    iface.run_function(8, [out_buffer, iface.array_to_buffer(pair)], function_name="accepted")
    # 2 * (0 + 1 + 2 + 3) + 2 * 3 * 2.0 + i + sizeof(Pair) == 5 packed bytes
    np.testing.assert_array_equal(np.asarray(out_buffer), 12.0 + 12.0 + np.arange(8) + 5.0)


def test_production_attributes_and_pragmas_compile_for_cuda():
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
    from metalgpu.backends.base import CompileOptions
    from metalgpu.backends.nvrtc import nvrtc_compile

    pre = preprocess(ACCEPTED, "accepted.metal")
    translation = translate(pre, parse(pre.tokens, pre.sources), "cuda")
    assert nvrtc_compile(translation.source, CompileOptions(), "sm_90")[:4] == b"\x7fELF"


# ----- includes read only shader sources, and file names never become code ------------------------------------

def test_include_of_a_file_that_is_not_a_shader_source_is_refused_without_its_text(tmp_path):
    (tmp_path / "secret.txt").write_text("TOPSECRET password line\n")
    (tmp_path / "binary.h").write_bytes(b"\xff\xfe TOPSECRET \x80\n")
    for name, reason in (("secret.txt", "only shader sources"), ("binary.h", "not UTF-8 text")):
        with pytest.raises(ShaderCompileError) as info:
            preprocess(f'int a;\n #include "{name}"\n', str(tmp_path / "k.metal"))
        assert where(info.value) == (2, 3) and reason in str(info.value)
        assert "TOPSECRET" not in str(info.value) and "TOPSECRET" not in repr(info.value.diagnostics)


HEADER = "inline float helper(float x) { return x * 2.0f + 1.0f; }\n"
INCLUDER = '#include <metal_stdlib>\n#include "helper.h"\n' + KERNEL


def test_a_folder_name_with_a_newline_and_a_quote_cannot_inject_code(iface, tmp_path):
    folder = tmp_path / 'odd"\n#error injected\n"name'
    folder.mkdir()
    (folder / "helper.h").write_text(HEADER)
    (folder / "kernel.metal").write_text(INCLUDER)
    iface.load_shader(folder / "kernel.metal")
    out_buffer = iface.create_buffer(4, "float")
    iface.run_function(4, [out_buffer], function_name="k")
    np.testing.assert_array_equal(np.asarray(out_buffer), np.arange(4) * 2.0 + 1.0)

    path = str(folder / "kernel.metal")
    pre = preprocess(INCLUDER + 'constant char where[] = __FILE__;\n', path, (str(folder),))
    for target in ("cpu", "cuda"):
        source = translate(pre, parse(pre.tokens, pre.sources), target).source
        assert "#error injected" not in source.splitlines()
        assert 'odd\\"\\012#error injected\\012\\"name' in source  # each character escaped in #line
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
    from metalgpu.backends.base import CompileOptions
    from metalgpu.backends.nvrtc import nvrtc_compile

    assert nvrtc_compile(source, CompileOptions(), "sm_90")[:4] == b"\x7fELF"


def test_a_symbolic_link_out_of_the_roots_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.h").write_text("TOPSECRET here\n")
    shaders = tmp_path / "shaders"
    shaders.mkdir()
    (shaders / "inside.h").write_text("int inside;\n")
    (shaders / "linked.h").symlink_to(outside / "secret.h")
    (shaders / "alias.h").symlink_to(shaders / "inside.h")
    main = str(shaders / "k.metal")
    assert out('#include "alias.h"\n', filename=main) == "int inside ;"  # a link that stays inside is followed
    with pytest.raises(ShaderCompileError) as info:
        preprocess('#include "linked.h"\n', main)
    assert "file not found: 'linked.h'" in str(info.value) and "TOPSECRET" not in str(info.value)


# ----- loop unroll hints ----------------------------------------------------------------------------------------

def test_loop_unroll_hints_change_no_result(iface):
    load_kernel(iface, "loop_unroll_hints.metal", "unrolled_sums")
    result = iface.create_buffer(64, "float")
    iface.run_function(64, [result])
    np.testing.assert_array_equal(np.asarray(result), 28.0 * np.arange(64) + 16 + 10 + 0.5)


def test_loop_unroll_hints_reach_cuda_as_pragmas_and_the_cpu_compiler_not_at_all():
    source = (Path(__file__).parent / "kernels" / "loop_unroll_hints.metal").read_text()
    pre = preprocess(source, "loop_unroll_hints.metal")
    program = parse(pre.tokens, pre.sources)
    cuda = translate(pre, program, "cuda").source
    assert [cuda.count(f'_Pragma("unroll{n}")') for n in ("", " 4", " 2", " 1")] == [2, 1, 1, 1]
    assert "_Pragma" not in translate(pre, program, "cpu").source and "__metalgpu_unroll" not in cuda
