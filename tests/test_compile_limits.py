"""Compiling a shader has limits: tokens, include depth, the C++ compiler's time and memory. Going past one is a
ShaderCompileError that says which limit and which environment variable raises it; the cpu module is checked for
calls out of the shader and for code run at load time before it is ever loaded."""
from __future__ import annotations

import os
import sys
import time
import uuid

import numpy as np
import pytest

from metalgpu.errors import ShaderCompileError
from metalgpu.msl.preprocess import preprocess


def bomb(levels: int) -> str:
    """Each level repeats the one below ten times: 10**(levels + 1) tokens from one name."""
    lines = ["#define L0 x x x x x x x x x x"]
    lines += [f"#define L{k} " + " ".join([f"L{k - 1}"] * 10) for k in range(1, levels + 1)]
    return "\n".join(lines) + f"\nint first;\n  int a = L{levels};\n"


def test_macro_bomb_fails_fast_at_its_use():
    """10**13 tokens from one name: stopped by METALGPU_MAX_EXPANSION once 500,000 are made (about a second; the
    benchmarks time it, not this test)."""
    with pytest.raises(ShaderCompileError) as info:
        preprocess(bomb(12), "bomb.metal")
    error = info.value
    assert (error.pos.line, error.pos.column) == (15, 11)
    assert "500000 tokens from one macro" in str(error) and "METALGPU_MAX_EXPANSION" in str(error)


def test_expansion_limit_is_raised_by_its_variable(monkeypatch):
    monkeypatch.setenv("METALGPU_MAX_EXPANSION", "100")
    with pytest.raises(ShaderCompileError, match="limit of 100 tokens"):
        preprocess(bomb(2), "bomb.metal")  # 1,000 tokens
    monkeypatch.setenv("METALGPU_MAX_EXPANSION", "2000")
    assert len(preprocess(bomb(2), "bomb.metal").tokens) == 1000 + 7  # with int first; int a = ... ;


def test_a_long_source_is_not_one_macros_expansion(monkeypatch):
    """The per-macro limit is for what macros make: a source with more tokens of its own than that limit, and no
    macro at all, is within the whole-source budget and preprocesses."""
    monkeypatch.setenv("METALGPU_MAX_EXPANSION", "1000")
    source = "float f(float x) { return " + " + ".join(["x"] * 1500) + "; }\n"  # 3,009 tokens
    assert len(preprocess(source, "long.metal").tokens) == 3009


def test_whole_source_token_budget(monkeypatch):
    source = "#define PAIR x x\n" + "PAIR\n" * 600  # 1,200 tokens made by macros, each use well under the limit
    monkeypatch.setenv("METALGPU_MAX_TOKENS", "1500")
    with pytest.raises(ShaderCompileError) as info:
        preprocess(source, "many.metal")
    assert "METALGPU_MAX_TOKENS" in str(info.value) and "1500 preprocessing tokens" in str(info.value)
    assert info.value.pos.line == 252  # the file read counts 1,000, then each PAIR 2: the 251st is one too many
    monkeypatch.setenv("METALGPU_MAX_TOKENS", "5000")
    assert len(preprocess(source, "many.metal").tokens) == 1200


def test_include_breadth_is_bounded_by_the_token_budget(tmp_path):
    # each header includes the next one twice: 2**24 includes, none nested more than 25 deep
    for level in range(24):
        (tmp_path / f"h{level}.h").write_text(f'#include "h{level + 1}.h"\n#include "h{level + 1}.h"\n')
    (tmp_path / "h24.h").write_text("x\n")
    started = time.perf_counter()
    with pytest.raises(ShaderCompileError, match="METALGPU_MAX_TOKENS"):
        preprocess('#include "h0.h"\n', str(tmp_path / "k.metal"))
    assert time.perf_counter() - started < 5.0  # each file read counts as 1,000 tokens: 2,000 reads at most


def test_deep_include_recursion_names_the_limit(tmp_path, monkeypatch):
    (tmp_path / "loop.h").write_text('int x;\n#include "loop.h"\n')
    with pytest.raises(ShaderCompileError) as info:
        preprocess('#include "loop.h"\n', str(tmp_path / "k.metal"))
    error = info.value
    assert "nested more than 64 levels" in str(error) and "METALGPU_MAX_INCLUDE_DEPTH" in str(error)
    assert (error.pos.file, error.pos.line, error.pos.column) == (str(tmp_path / "loop.h"), 2, 2)


def test_include_depth_limit_is_raised_by_its_variable(tmp_path, monkeypatch):
    for level in range(1, 5):  # a chain: h1 -> h2 -> h3 -> h4
        following = f'#include "h{level + 1}.h"\n' if level < 4 else ""
        (tmp_path / f"h{level}.h").write_text(f"int v{level};\n{following}")
    main = str(tmp_path / "k.metal")
    monkeypatch.setenv("METALGPU_MAX_INCLUDE_DEPTH", "3")
    with pytest.raises(ShaderCompileError, match="nested more than 3 levels"):
        preprocess('#include "h1.h"\n', main)
    monkeypatch.setenv("METALGPU_MAX_INCLUDE_DEPTH", "4")
    assert [t.text for t in preprocess('#include "h1.h"\n', main).tokens if t.text.startswith("v")] == [
        "v1", "v2", "v3", "v4"]


# ----- the C++ compiler process ---------------------------------------------------------------------------------

pytestmark_posix = pytest.mark.skipif(os.name != "posix", reason="the compiler limits use POSIX sessions")


@pytestmark_posix
def test_compiler_timeout_ends_the_compiler_and_its_children(tmp_path, monkeypatch):
    from metalgpu.backends.base import CompilerFailed
    from metalgpu.backends.cpu_compiler import run_limited

    monkeypatch.setenv("METALGPU_COMPILE_TIMEOUT", "1")
    marker = tmp_path / "still-running"
    started = time.perf_counter()
    with pytest.raises(CompilerFailed) as info:
        run_limited(["/bin/sh", "-c", f"sleep 2 && touch {marker}"])
    assert time.perf_counter() - started < 2.0
    assert "limit of 1 seconds" in info.value.log and "METALGPU_COMPILE_TIMEOUT" in info.value.log
    time.sleep(1.5)
    assert not marker.exists()  # the whole session was ended, not only its first process


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the memory limit is set on Linux")
def test_compiler_memory_limit_is_a_shader_compile_error(iface, monkeypatch):
    if iface.backend != "cpu":
        pytest.skip("the memory limit applies to the cpu backend's C++ compiler")
    # a value of its own, so that no cache (a persistent METALGPU_CACHE_DIR included) already holds the module
    value = f"{uuid.uuid4().int % 10**6}.5f"
    source = f"kernel void memory_limited(device float* a [[buffer(0)]]) {{ a[0] = {value}; }}"
    monkeypatch.setenv("METALGPU_COMPILE_MEMORY", "40")
    with pytest.raises(ShaderCompileError) as info:
        iface.load_shader_from_str(source)
    assert "limit of 40 MiB of memory" in str(info.value) and "METALGPU_COMPILE_MEMORY" in str(info.value)
    monkeypatch.delenv("METALGPU_COMPILE_MEMORY")
    iface.load_shader_from_str(source)
    out = iface.create_buffer(1, "float")
    iface.run_function(1, [out], function_name="memory_limited")
    assert np.asarray(out)[0] == np.float32(value[:-1])


# ----- the built module ------------------------------------------------------------------------------------------

def test_call_to_a_c_library_function_is_refused_before_loading(iface, tmp_path):
    if iface.backend != "cpu":
        pytest.skip("the module check is the cpu backend's")
    marker = tmp_path / "ran"
    source = f"""
        extern "C" {{ int system(const char* command); }}
        kernel void host_call(device int* out [[buffer(0)]]) {{ out[0] = system("touch {marker}"); }}
    """
    with pytest.raises(ShaderCompileError) as info:
        iface.load_shader_from_str(source)
    assert "'system'" in str(info.value) and "was not loaded" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("global_", [
    "float computed(float x) { return x * 2.0f; }\nconstant float scale = computed(2.0f);",
    "struct Noisy { float v; ~Noisy() { v = 0.0f; } };\nNoisy keeper{2.0f};\n#define scale keeper.v",
])
def test_code_run_at_load_or_unload_time_is_refused(iface, global_):
    if iface.backend != "cpu":
        pytest.skip("the module check is the cpu backend's")
    source = global_ + "\nkernel void load_time(device float* out [[buffer(0)]]) { out[0] = scale; }\n"
    with pytest.raises(ShaderCompileError) as info:
        iface.load_shader_from_str(source)
    assert "run code when it is loaded or unloaded" in str(info.value) and "__cxa_atexit" not in str(info.value)


def test_constant_tables_and_math_still_load(iface):
    source = """
        #include <metal_stdlib>
        using namespace metal;
        constant float table[4] = {1.0f, 2.0f, 4.0f, 8.0f};
        constant float4 weights = float4(0.5f, 0.25f, 2.0f, 1.0f);
        kernel void tables(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
            out[i] = table[i % 4] * weights[i % 4] + exp(0.0f) + sqrt(float(i * i));
        }
    """
    iface.load_shader_from_str(source)
    out = iface.create_buffer(8, "float")
    iface.run_function(8, [out], function_name="tables")
    i = np.arange(8)
    expected = np.array([1, 2, 4, 8], np.float32)[i % 4] * np.array([0.5, 0.25, 2, 1], np.float32)[i % 4] + 1 + i
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-6)


def _static_runtime_toolchain(tmp_path) -> str | None:
    """A g++ command that links the C++ runtime into each shared library, as some hosts' toolchains do; None if
    this machine's g++ cannot."""
    import shutil
    import subprocess
    if shutil.which("g++") is None:
        return None
    command = "g++ -static-libstdc++ -static-libgcc"
    (tmp_path / "probe.cpp").write_text("int probe() { return 1; }\n")
    done = subprocess.run([*command.split(), "-shared", "-fPIC", str(tmp_path / "probe.cpp"), "-o",
                           str(tmp_path / "probe.so")], capture_output=True, check=False)
    return command if done.returncode == 0 else None


def test_kernels_load_where_the_toolchain_links_the_cpp_runtime_statically(tmp_path, monkeypatch):
    """Such a toolchain copies the runtime's malloc and stdio into a module that refers to any of the C++ runtime
    (a thread_local with a destructor, operator new), which the module check refuses: the emulation headers refer
    to none of it, for plain kernels, threadgroup memory, barriers and SIMD-group functions."""
    command = _static_runtime_toolchain(tmp_path)
    if command is None:
        pytest.skip("this machine's g++ cannot link the C++ runtime statically")
    import metalgpu
    monkeypatch.setenv("CXX", command)
    monkeypatch.setenv("METALGPU_CACHE_DIR", str(tmp_path / "cache"))
    source = """
        #include <metal_stdlib>
        using namespace metal;
        kernel void plain(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]]) { out[i] = 2.0f * i; }
        kernel void staged(device float* out [[buffer(0)]], threadgroup float* tile [[threadgroup(0)]],
                           uint i [[thread_position_in_grid]], uint t [[thread_position_in_threadgroup]],
                           uint n [[threads_per_threadgroup]], uint lane [[thread_index_in_simdgroup]]) {
            tile[t] = float(i);
            threadgroup_barrier(mem_flags::mem_threadgroup);
            out[i] = tile[n - 1 - t] + simd_sum(1.0f) + float(lane) * 0.0f;
        }
    """
    with metalgpu.Interface("cpu") as gpu:
        gpu.load_shader_from_str(source)
        out = gpu.create_buffer(64, "float")
        gpu.run_function(64, [out], function_name="plain")
        np.testing.assert_array_equal(np.asarray(out), 2.0 * np.arange(64))
        gpu.run_function(64, [out], function_name="staged", threads_per_threadgroup=32,
                         threadgroup_memory={0: 32 * 4})
        i = np.arange(64)
        np.testing.assert_array_equal(np.asarray(out), (i // 32) * 32 + 31 - i % 32 + 32.0)


def test_a_c_function_our_headers_declare_is_refused_before_loading(iface):
    if iface.backend != "cpu":
        pytest.skip("the module check is the cpu backend's")
    source = """
        #include <metal_stdlib>
        kernel void leaked(device int* out [[buffer(0)]]) { out[0] = int(write(1, "reached the host\\n", 17)); }
    """
    with pytest.raises(ShaderCompileError, match="'write'") as info:
        iface.load_shader_from_str(source)
    assert (info.value.pos.line, info.value.pos.column) == (3, source.splitlines()[2].index("write") + 1)


def test_check_never_runs_the_shader(tmp_path):
    import subprocess
    from pathlib import Path

    shader = tmp_path / "announces.metal"
    shader.write_text("""
        #include <metal_stdlib>
        int announce() { return int(write(1, "LOADED\\n", 7)); }
        constant int loaded = announce();
        kernel void k(device int* out [[buffer(0)]]) { out[0] = loaded; }
    """)
    source_folder = Path(__file__).resolve().parent.parent / "src"
    env = dict(os.environ, PYTHONPATH=str(source_folder) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "metalgpu", "check", str(shader), "--target", "cpu"],
                            capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 1
    assert "LOADED" not in result.stdout and "'write'" in result.stderr


def test_outside_call_is_located_through_escaped_line_directives():
    from metalgpu.backends.cpu_module_check import locate_call
    from metalgpu.msl.literals import string_literal

    odd = 'folder "quoted"\nnewline/k.metal'
    translation = (f"#include <metal_stdlib>\nint write(int, const void*, unsigned long);\n"
                   f"#line 7 {string_literal(odd)}\nfloat f(float x) {{\n  return x + obj.write(1);\n"
                   f"  int r = write(1, \"\", 0);\n}}\n")
    assert locate_call(translation, "write") == f"{odd}:9:11"  # not the declaration before #line, not a member
    assert locate_call(translation, "_Z6systemPKc") is None
