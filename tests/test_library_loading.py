"""Loading libraries: big ones compile only the kernels used, each on first use; warm loads read no source;
include folders; a kernel's own limit on threads per threadgroup; parameters that function constants remove;
signed integer overflow."""
from __future__ import annotations

import json

import numpy as np
import pytest

import metalgpu
from metalgpu.cache import CompileCache
from metalgpu.library import SMALL_LIBRARY_KERNELS
from metalgpu.msl.parser import parse
from metalgpu.msl.preprocess import preprocess
from metalgpu.msl.translate import translate

SCALES = [(name, mtype, n) for name, mtype in (("float", "float"), ("int", "int")) for n in range(1, 11)]

# More kernels than a small library has: 20 instantiations of one template, a threadgroup-memory kernel that fits
# and one whose instantiation goes over Metal's 32 KiB, and a plain kernel. FACTOR comes from an included header.
BIG = """#include <metal_stdlib>
#include "factor.h"
using namespace metal;

template <typename T, int N>
kernel void scale(device const T* in [[buffer(0)]], device T* out [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    out[i] = in[i] * T(N * FACTOR);
}

template <int N>
kernel void staged(device float* out [[buffer(0)]], uint l [[thread_index_in_threadgroup]],
                   uint i [[thread_position_in_grid]]) {
    threadgroup float tile[N];
    tile[l] = float(i);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[i] = tile[l] + 1.0f;
}

#define instantiate_scale(host, type, n) \\
  template [[host_name(#host)]] [[kernel]] decltype(scale<type, n>) scale<type, n>;
""" + "".join(f"instantiate_scale(scale_{name}_{n}, {mtype}, {n})\n" for name, mtype, n in SCALES) + """
template [[host_name("staged_small")]] [[kernel]] decltype(staged<256>) staged<256>;
template [[host_name("staged_huge")]] [[kernel]] decltype(staged<9000>) staged<9000>;

kernel void plain_add(device const int* a [[buffer(0)]], device int* out [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
    out[i] = a[i] + FACTOR;
}
"""
HUGE_LINE = BIG.splitlines().index("    threadgroup float tile[N];") + 1
NAMES = [f"scale_{name}_{n}" for name, _, n in SCALES] + ["staged_small", "staged_huge", "plain_add"]


def write_big(folder, factor: int = 1):
    (folder / "factor.h").write_text(f"#define FACTOR {factor}\n")
    shader = folder / "big.metal"
    shader.write_text(BIG)
    return shader


def modules_in(cache_dir) -> list[list[str]]:
    """The kernels of every compiled module in a cache folder (their sidecars say which)."""
    cache = CompileCache(cache_dir)
    found = []
    for key in cache.entries():
        entry = cache.load(key)
        if entry is not None and "kernels" in entry.meta and "target" in entry.meta:
            found.append(entry.meta["kernels"])
    return found


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("METALGPU_CACHE_DIR", str(folder))
    return folder


def test_big_library_compiles_each_kernel_on_first_use(backend, tmp_path, fresh_cache):
    assert len(NAMES) > SMALL_LIBRARY_KERNELS
    shader = write_big(tmp_path)
    with metalgpu.Interface(backend) as gpu:
        gpu.load_shader(shader)
        assert gpu.function_names == NAMES
        assert modules_in(fresh_cache) == []  # parsed, not compiled
        values = np.arange(1, 9, dtype=np.int32)
        data, out = gpu.array_to_buffer(values), gpu.create_buffer(8, "int")
        gpu.set_function("scale_int_3")
        gpu.run_function(8, [data, out])
        np.testing.assert_array_equal(out.contents, values * 3)
        assert modules_in(fresh_cache) == [["scale_int_3"]]  # a module holding that kernel alone
        floats = gpu.array_to_buffer(np.linspace(0, 1, 8, dtype=np.float32))
        result = gpu.create_buffer(8, "float")
        gpu.run_function(8, [floats, result], "scale_float_7")
        np.testing.assert_allclose(result.contents, floats.contents * 7, rtol=1e-6)  # one rounding
        gpu.run_function(8, [data, out], "plain_add")
        np.testing.assert_array_equal(out.contents, values + 1)
        assert sorted(map(tuple, modules_in(fresh_cache))) == [("plain_add",), ("scale_float_7",), ("scale_int_3",)]


def test_an_instantiation_over_the_threadgroup_limit_fails_only_its_own_pipeline(backend, tmp_path, fresh_cache):
    shader = write_big(tmp_path)
    with metalgpu.Interface(backend) as gpu:
        gpu.load_shader(shader)
        with pytest.raises(metalgpu.ShaderCompileError, match="32 KiB") as info:
            gpu.set_function("staged_huge")
        assert (info.value.pos.file, info.value.pos.line) == (str(shader), HUGE_LINE)
        out = gpu.create_buffer(512, "float")
        gpu.run_function(512, [out], "staged_small", threads_per_threadgroup=256)
        np.testing.assert_array_equal(out.contents, np.arange(512, dtype=np.float32) + 1)


def test_a_warm_load_runs_no_front_end_until_a_file_changes(backend, tmp_path, fresh_cache, monkeypatch):
    import metalgpu.library

    shader = write_big(tmp_path, factor=2)
    values = np.arange(8, dtype=np.int32)
    with metalgpu.Interface(backend) as gpu:
        gpu.load_shader(shader)
        out = gpu.create_buffer(8, "int")
        gpu.run_function(8, [gpu.array_to_buffer(values), out], "scale_int_5")
        np.testing.assert_array_equal(out.contents, values * 10)

    front_ends = []

    class CountedFrontEnd(metalgpu.library._FrontEnd):
        def __init__(self, *args):
            front_ends.append(args[1])
            super().__init__(*args)

    monkeypatch.setattr(metalgpu.library, "_FrontEnd", CountedFrontEnd)
    with metalgpu.Interface(backend) as gpu:  # another Interface, as a new process would be: the cache answers
        gpu.load_shader(shader)
        out = gpu.create_buffer(8, "int")
        gpu.run_function(8, [gpu.array_to_buffer(values), out], "scale_int_5")
        np.testing.assert_array_equal(out.contents, values * 10)
        assert front_ends == []
    (tmp_path / "factor.h").write_text("#define FACTOR 30\n")  # an included file changed: parsed again
    with metalgpu.Interface(backend) as gpu:
        gpu.load_shader(shader)
        out = gpu.create_buffer(8, "int")
        gpu.run_function(8, [gpu.array_to_buffer(values), out], "scale_int_5")
        np.testing.assert_array_equal(out.contents, values * 150)
        assert front_ends == [str(shader)]


def test_a_small_library_compiles_whole_at_load(backend, tmp_path, fresh_cache):
    source = "".join(f"kernel void k{i}(device int* o [[buffer(0)]], uint i [[thread_position_in_grid]]) "
                     f"{{ o[i] = {i}; }}\n" for i in range(SMALL_LIBRARY_KERNELS))
    with metalgpu.Interface(backend) as gpu:
        gpu.load_shader_from_str(source)
        assert modules_in(fresh_cache) == [[f"k{i}" for i in range(SMALL_LIBRARY_KERNELS)]]
        out = gpu.create_buffer(4, "int")
        gpu.run_function(4, [out], "k9")
        np.testing.assert_array_equal(out.contents, 9)


def big_program(tmp_path):
    shader = write_big(tmp_path)
    pre = preprocess(shader.read_text(), str(shader), (str(tmp_path),))
    return pre, parse(pre.tokens, pre.sources)


def test_a_translation_holds_only_the_kernels_selected_under_their_global_indices(tmp_path):
    pre, program = big_program(tmp_path)
    chosen = NAMES.index("scale_float_4")
    translation = translate(pre, program, "cpu", kernels=[chosen])
    assert translation.selected == (chosen,)
    source = translation.source
    assert f"mg_run_{chosen}(" in source and source.count("MG_EXPORT int mg_run_") == 1
    # the other kernels' own declarations are gone (here, the plain kernel's whole definition); templates stay
    assert "mg_kernel_fn_plain_add" not in source and "= a[i]" not in source
    assert "void scale (" in source and "void staged (" in source
    whole = translate(pre, program, "cpu").source
    assert whole.count("MG_EXPORT int mg_run_") == len(NAMES) and "= a[i]" in whole


def test_selected_kernels_compile_for_cuda(tmp_path):
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed")
    from metalgpu.backends.base import CompileOptions
    from metalgpu.backends.nvrtc import nvrtc_compile

    pre, program = big_program(tmp_path)
    chosen = (NAMES.index("scale_int_9"), NAMES.index("staged_small"))
    cubin = nvrtc_compile(translate(pre, program, "cuda", kernels=chosen).source, CompileOptions(), "sm_90")
    assert all(f"mg_run_{i}".encode() in cubin for i in chosen)
    assert b"mg_run_0" not in cubin


# -- include folders ----------------------------------------------------------------------------------------------

INCLUDER = ('#include <metal_stdlib>\n#include "lib/values.h"\n'
            "kernel void k(device int* o [[buffer(0)]], uint i [[thread_position_in_grid]]) { o[i] = VALUE; }\n")


def test_includes_resolve_in_the_folders_given(iface, tmp_path):
    shader = tmp_path / "src" / "k.metal"
    shader.parent.mkdir()
    shader.write_text(INCLUDER)
    (tmp_path / "headers" / "lib").mkdir(parents=True)
    (tmp_path / "headers" / "lib" / "values.h").write_text("#define VALUE 42\n")
    with pytest.raises(metalgpu.ShaderCompileError, match="lib/values.h"):
        iface.load_shader(shader)  # not next to the file, and no folder given
    iface.load_shader(shader, include_dirs=[tmp_path / "headers"])
    out = iface.create_buffer(4, "int")
    iface.run_function(4, [out], "k")
    np.testing.assert_array_equal(out.contents, 42)
    iface.load_shader(str(shader), include_dirs=str(tmp_path / "headers"))  # one folder, as a string
    with pytest.raises(metalgpu.ArgumentError, match="does not exist"):
        iface.load_shader(shader, include_dirs=[tmp_path / "missing"])


# -- [[max_total_threads_per_threadgroup(N)]] ---------------------------------------------------------------------

LIMITED = """#include <metal_stdlib>
using namespace metal;
[[kernel, max_total_threads_per_threadgroup(64)]]
void limited(device uint* out [[buffer(0)]], uint i [[thread_position_in_grid]],
             uint size [[threads_per_threadgroup]]) {
    out[i] = size;
}
template <int W>
[[kernel, max_total_threads_per_threadgroup(W * 32)]]
void warps(device uint* out [[buffer(0)]], uint i [[thread_position_in_grid]], uint size [[threads_per_threadgroup]]) {
    out[i] = size;
}
template [[host_name("warps2")]] [[kernel]] decltype(warps<2>) warps<2>;
template [[host_name("warps4")]] [[kernel]] decltype(warps<4>) warps<4>;
kernel void unlimited(device uint* out [[buffer(0)]], uint i [[thread_position_in_grid]]) { out[i] = 0; }
"""


@pytest.mark.parametrize("name, limit", [("limited", 64), ("warps2", 64), ("warps4", 128)])
def test_a_kernels_thread_limit_bounds_its_threadgroups(iface, name, limit):
    iface.load_shader_from_str(LIMITED)
    iface.set_function(name)
    assert iface.maxThreadsPerGroup() == limit
    out = iface.create_buffer(1000, "uint")
    iface.run_function(1000, [out])  # the default threadgroup size respects the limit
    assert 0 < out.contents[0] <= limit
    iface.run_function(1000, [out], threads_per_threadgroup=limit)
    assert out.contents[0] == limit
    with pytest.raises(metalgpu.ArgumentError, match=f"at most {limit}"):
        iface.run_function(1000, [out], threads_per_threadgroup=2 * limit)
    iface.set_function("unlimited")
    assert iface.maxThreadsPerGroup() > 128


def test_thread_limits_are_parsed_and_become_cuda_launch_bounds():
    pre = preprocess(LIMITED, "k.metal")
    program = parse(pre.tokens, pre.sources)
    limits = {k.host_name: (k.max_total_threads, k.template_params) for k in program.kernels}
    assert limits == {"limited": ("64", None), "warps2": ("W * 32", "int W"), "warps4": ("W * 32", "int W"),
                      "unlimited": (None, None)}
    source = translate(pre, program, "cuda").source
    assert "__launch_bounds__((::mg_threads_limit_1<2> < 1024u" in source
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed")
    from metalgpu.backends.base import CompileOptions
    from metalgpu.backends.nvrtc import nvrtc_compile

    assert nvrtc_compile(source, CompileOptions(), "sm_90")[:4] == b"\x7fELF"


DEFAULTED = """#include <metal_stdlib>
using namespace metal;
template <typename T> struct Less { bool operator()(T a, T b) const { return a < b; } };
template <typename T, short THREADS, typename Compare = Less<T>>
[[kernel, max_total_threads_per_threadgroup(THREADS)]]
void first_less(device const T* in [[buffer(0)]], device uint* out [[buffer(1)]], uint i [[thread_position_in_grid]],
                uint size [[threads_per_threadgroup]]) {
    out[i] = Compare()(in[i], T(0)) ? size : 0u;
}
template [[host_name("first_less_f32")]] [[kernel]] decltype(first_less<float, 32>) first_less<float, 32>;
"""


def test_a_thread_limit_reads_template_parameters_whose_last_default_closes_with_two_angles(iface):
    """``typename C = Less<T>>``: the default argument's '>' and the parameter list's are one token."""
    iface.load_shader_from_str(DEFAULTED)
    iface.set_function("first_less_f32")
    assert iface.maxThreadsPerGroup() == 32
    values = iface.array_to_buffer(np.array([-1.0, 2.0, -3.0, 0.0], np.float32))
    out = iface.create_buffer(4, "uint")
    iface.run_function(4, [values, out], threads_per_threadgroup=4)
    np.testing.assert_array_equal(out.contents, [4, 0, 4, 0])


def test_template_parameters_closing_with_two_angles_compile_for_cuda():
    pre = preprocess(DEFAULTED, "k.metal")
    program = parse(pre.tokens, pre.sources)
    assert program.kernels[0].template_params == "typename T , short THREADS , typename Compare = Less < T >"
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed")
    from metalgpu.backends.base import CompileOptions
    from metalgpu.backends.nvrtc import nvrtc_compile

    assert nvrtc_compile(translate(pre, program, "cuda").source, CompileOptions(), "sm_90")[:4] == b"\x7fELF"


# -- [[function_constant(name)]] on parameters --------------------------------------------------------------------

OPTIONAL = """#include <metal_stdlib>
using namespace metal;
constant bool has_bias [[function_constant(0)]];
constant bool has_scale [[function_constant(1)]];
kernel void affine(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                   device const float* bias [[buffer(2), function_constant(has_bias)]],
                   constant float& scale [[buffer(3), function_constant(has_scale)]],
                   uint i [[thread_position_in_grid]]) {
    float v = x[i];
    if (has_scale) v *= scale;
    if (has_bias) v += bias[i];
    out[i] = v;
}
"""


def test_parameters_removed_by_function_constants_are_not_bound(iface):
    iface.load_shader_from_str(OPTIONAL)
    x = iface.array_to_buffer(np.arange(8, dtype=np.float32))
    bias = iface.array_to_buffer(np.full(8, 0.5, dtype=np.float32))
    out = iface.create_buffer(8, "float")
    with pytest.warns(UserWarning, match="given no value") as record:  # Metal would refuse this pipeline
        iface.set_function("affine")  # both constants undefined: neither parameter exists
    assert {"'has_bias'", "'has_scale'"} <= {word for w in record for word in str(w.message).split()}
    iface.run_function(8, [x, out])
    np.testing.assert_array_equal(out.contents, x.contents)
    iface.run_function(8, [x, out, None, None])
    iface.set_function("affine", {"has_bias": False, "has_scale": False})
    iface.run_function(8, [x, out, bias])  # a buffer at a removed slot is ignored, as Metal ignores it
    np.testing.assert_array_equal(out.contents, x.contents)
    with pytest.warns(UserWarning, match="'has_scale'"):
        iface.set_function("affine", {"has_bias": True})
    iface.run_function(8, [x, out, bias])
    np.testing.assert_array_equal(out.contents, x.contents + 0.5)
    with pytest.raises(metalgpu.ArgumentError, match="bias"):
        iface.run_function(8, [x, out])  # present now: it must be bound
    iface.set_function("affine", {0: True, 1: True})
    iface.run_function(8, [x, out, bias, 3.0])
    np.testing.assert_array_equal(out.contents, x.contents * 3 + 0.5)


def test_function_constant_parameters_are_parsed_and_compile_for_cuda():
    pre = preprocess(OPTIONAL, "k.metal")
    program = parse(pre.tokens, pre.sources)
    assert [p.function_constant for p in program.kernels[0].params] == [None, None, "has_bias", "has_scale", None]
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed")
    from metalgpu.backends.base import CompileOptions
    from metalgpu.backends.nvrtc import nvrtc_compile

    for constants in ({}, {0: True, 1: True}, {0: False, 1: True}):
        source = translate(pre, program, "cuda", constants).source
        assert nvrtc_compile(source, CompileOptions(), "sm_90")[:4] == b"\x7fELF"


# -- signed integer overflow --------------------------------------------------------------------------------------

OVERFLOW = """
kernel void hash(device const int* a [[buffer(0)]], device int* out [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    out[i] = a[i] * 1103515245 + 12345;
}
kernel void successor_is_larger(device const int* a [[buffer(0)]], device int* out [[buffer(1)]],
                                uint i [[thread_position_in_grid]]) {
    int x = a[i];
    out[i] = (x + 1 > x) ? 1 : 0;  // an optimiser that assumes no signed overflow folds this to 1
}
"""
EDGES = np.array([0, 1, -1, 7, 2**31 - 1, -2**31, 123456789, -987654321], dtype=np.int32)


def test_signed_integer_arithmetic_wraps(iface):
    iface.load_shader_from_str(OVERFLOW)
    out = iface.create_buffer(len(EDGES), "int")
    iface.run_function(len(EDGES), [iface.array_to_buffer(EDGES), out], "hash")
    expected = (EDGES.astype(np.int64) * 1103515245 + 12345) % 2**32
    np.testing.assert_array_equal(out.contents.view(np.uint32), expected.astype(np.uint32))


def test_comparisons_see_the_wrapped_value(iface, backend, request):
    if backend == "cuda":  # NVRTC has no -fwrapv: its optimiser assumes signed arithmetic never overflows
        request.applymarker(pytest.mark.xfail(strict=True, reason="NVRTC folds x + 1 > x (docs/differences.md)"))
    iface.load_shader_from_str(OVERFLOW)
    out = iface.create_buffer(len(EDGES), "int")
    iface.run_function(len(EDGES), [iface.array_to_buffer(EDGES), out], "successor_is_larger")
    np.testing.assert_array_equal(out.contents, (EDGES != 2**31 - 1).astype(np.int32))


def test_module_pointers_are_json(tmp_path, fresh_cache, backend):
    shader = write_big(tmp_path)
    with metalgpu.Interface(backend) as gpu:
        gpu.load_shader(shader)
        gpu.set_function("plain_add")
    for path in fresh_cache.rglob("*.json"):
        assert isinstance(json.loads(path.read_text())["meta"], dict)


def test_includes_never_leave_the_shader_folder_and_the_include_folders(iface, tmp_path):
    (tmp_path / "secret.h").write_text("#define VALUE 7\n")
    shader_folder = tmp_path / "shaders"
    shader_folder.mkdir()
    shader = shader_folder / "k.metal"
    for include, message in (('"../secret.h"', "file not found: '../secret.h'"),
                             (f'"{tmp_path / "secret.h"}"', "absolute path")):
        shader.write_text(INCLUDER.replace('"lib/values.h"', include))
        with pytest.raises(metalgpu.ShaderCompileError, match=message) as info:
            iface.load_shader(shader)
        assert (info.value.pos.file, info.value.pos.line) == (str(shader), 2)
    shader.write_text(INCLUDER.replace('"lib/values.h"', '"../secret.h"'))
    iface.load_shader(shader, include_dirs=[tmp_path])  # inside a folder given: allowed
    out = iface.create_buffer(2, "int")
    iface.run_function(2, [out], "k")
    np.testing.assert_array_equal(out.contents, 7)


# -- metalgpu check: every kernel, per-kernel failures ------------------------------------------------------------

def check(source: str, tmp_path, target: str = "cpu"):
    from metalgpu.backends import open_compiler
    from metalgpu.backends.base import CompileOptions
    from metalgpu.library import Library
    from metalgpu.library_check import check_library

    cache = CompileCache(tmp_path / "check-cache")
    (tmp_path / "factor.h").write_text("#define FACTOR 1\n")
    library = Library(None, cache, CompileOptions(), source, str(tmp_path / "lib.metal"), (str(tmp_path),),
                      compiler=open_compiler(target, cache))
    return check_library(library, jobs=2, chunk=8)


def test_check_finds_each_kernel_that_fails_on_its_own(tmp_path):
    # two instantiations over the threadgroup limit, far apart: each is found alone, every other kernel compiles
    source = BIG.replace('template [[host_name("staged_small")]]',
                         'template [[host_name("staged_huge_too")]] [[kernel]] decltype(staged<8400>) staged<8400>;\n'
                         'template [[host_name("staged_small")]]')
    names_with_second = NAMES[:len(SCALES)] + ["staged_huge_too"] + NAMES[len(SCALES):]
    result = check(source, tmp_path)
    assert result.names == names_with_second
    assert sorted(result.names[i] for i in result.failures) == ["staged_huge", "staged_huge_too"]
    assert all("32 KiB" in str(error) for error in result.failures.values())


def test_check_gives_an_error_every_kernel_shares_to_all_of_them_at_once(tmp_path):
    source = BIG.replace("out[i] = in[i] * T(N * FACTOR);", "out[i] = in[i] * T(N * FACTOR) + not_declared;")
    source = source.replace('template [[host_name("staged_huge")]] [[kernel]] decltype(staged<9000>) staged<9000>;', "")
    result = check(source, tmp_path)
    assert len(result.names) == len(NAMES) - 1 and set(result.failures) == set(range(len(result.names)))
    assert all("not_declared" in str(error) for error in result.failures.values())
    chunks = -(-len(result.names) // 8)
    assert result.compiles == 3 * chunks  # each chunk and its two halves, never kernel by kernel


def test_a_small_library_with_a_failing_pipeline_loads_warm_without_its_front_end(backend, fresh_cache, monkeypatch):
    from test_cooperative import OVERSIZED

    import metalgpu.library

    with metalgpu.Interface(backend) as gpu:  # OVERSIZED: `big` is over the threadgroup limit, `two` within it
        gpu.load_shader_from_str(OVERSIZED)
        with pytest.raises(metalgpu.ShaderCompileError, match="32 KiB"):
            gpu.set_function("big")
    front_ends = []

    class CountedFrontEnd(metalgpu.library._FrontEnd):
        def __init__(self, *args):
            front_ends.append(args[1])
            super().__init__(*args)

    monkeypatch.setattr(metalgpu.library, "_FrontEnd", CountedFrontEnd)
    with metalgpu.Interface(backend) as gpu:
        gpu.load_shader_from_str(OVERSIZED)  # the module of the kernels that compile, through the pointer
        out = gpu.create_buffer(1, "float")
        gpu.run_function(1, [out], function_name="two", threadgroup_memory={0: 16, 1: 16})
        assert out.contents[0] == 3.0 and front_ends == []
        with pytest.raises(metalgpu.ShaderCompileError, match="32 KiB"):
            gpu.set_function("big")  # its error again, which takes the front end
        assert front_ends == ["<string>"]


def test_check_stops_splitting_when_its_budget_of_compiler_runs_is_spent(tmp_path):
    source = BIG.replace('template [[host_name("staged_small")]]',
                         'template [[host_name("staged_huge_too")]] [[kernel]] decltype(staged<8400>) staged<8400>;\n'
                         'template [[host_name("staged_small")]]')
    from metalgpu.backends import open_compiler
    from metalgpu.backends.base import CompileOptions
    from metalgpu.library import Library
    from metalgpu.library_check import check_library

    cache = CompileCache(tmp_path / "check-cache")
    (tmp_path / "factor.h").write_text("#define FACTOR 1\n")
    library = Library(None, cache, CompileOptions(), source, str(tmp_path / "lib.metal"), (str(tmp_path),),
                      compiler=open_compiler("cpu", cache))
    result = check_library(library, jobs=2, chunk=8, budget=4)  # 3 chunks, then one more run
    failing = {result.names[i] for i in result.failures}
    assert {"staged_huge", "staged_huge_too"} <= failing and result.compiles <= 4
    assert {result.names[i] for i in result.unisolated} == failing  # reported as such, not as proven failures
