"""The CUDA side that needs no GPU: every test kernel translates for CUDA and compiles with NVRTC, compile errors
land on the user's lines, and the launch record's layout matches the header (a static_assert checks it there).
NVRTC comes from NVIDIA's wheels (the test extra installs them on Linux x86-64)."""
from __future__ import annotations

from pathlib import Path

import pytest

from metalgpu.backends.base import CompileOptions, CompilerFailed
from metalgpu.msl.abi import CudaLaunchLayout
from metalgpu.msl.diagnostics import parse_log
from metalgpu.msl.parser import parse
from metalgpu.msl.preprocess import preprocess
from metalgpu.msl.translate import translate
from metalgpu.msl.wrappers import cuda_launch_layout

pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
from metalgpu.backends.nvrtc import nvrtc_compile  # noqa: E402

KERNELS = sorted((Path(__file__).parent / "kernels").glob("*.metal"))


def cuda_source(path: Path, check_bounds: bool = False) -> tuple[str, object]:
    pre = preprocess(path.read_text(), str(path), (str(path.parent),))
    return translate(pre, parse(pre.tokens, pre.sources), "cuda", check_bounds=check_bounds), pre


def assert_compiles(translation) -> None:
    cubin = nvrtc_compile(translation.source, CompileOptions(), "sm_90")
    assert cubin[:4] == b"\x7fELF"  # a cubin is an ELF image
    for i in translation.selected:
        assert f"mg_run_{i}".encode() in cubin and f"mg_info_{i}".encode() in cubin


def ptx_of(source: str, options: CompileOptions, arch: str) -> str:
    """The PTX NVRTC makes of a translation's ``source`` for ``arch`` (compute_XY) with the backend's flags."""
    from cuda.bindings import nvrtc

    from metalgpu.backends.nvrtc import nvrtc_flags

    err, program = nvrtc.nvrtcCreateProgram(source.encode(), b"module.cu", 0, [], [])
    flags = nvrtc_flags(options, arch)
    try:
        (err,) = nvrtc.nvrtcCompileProgram(program, len(flags), [f.encode() for f in flags])
        assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, err
        _, size = nvrtc.nvrtcGetPTXSize(program)
        ptx = b" " * size
        nvrtc.nvrtcGetPTX(program, ptx)
    finally:
        nvrtc.nvrtcDestroyProgram(program)
    return ptx.decode()


@pytest.mark.parametrize("path", KERNELS, ids=lambda p: p.name)
def test_kernel_compiles_for_cuda(path):
    translation, _ = cuda_source(path)
    assert_compiles(translation)


@pytest.mark.parametrize("path", KERNELS, ids=lambda p: p.name)
def test_kernel_compiles_with_bounds_checks(path):
    # Interface(debug=True) on CUDA: every test kernel must take the checks (no GPU needed to compile them)
    translation, _ = cuda_source(path, check_bounds=True)
    assert "mg::check_bounds(" in translation.source
    assert_compiles(translation)


@pytest.mark.parametrize("name", ["simd_source", "DIVERGENT", "FAULTING"])
def test_cooperative_test_kernels_compile_for_cuda(tmp_path, name):
    # the cooperative kernels of tests/test_cooperative.py, and the SIMD-group and quad-group kernels that
    # tests/test_simdgroup_functions.py generates over every type it tests
    import test_cooperative
    import test_simdgroup_functions

    if name == "simd_source":
        source = test_simdgroup_functions._simd_source()
    else:
        source = getattr(test_simdgroup_functions if name == "DIVERGENT" else test_cooperative, name)
    shader = tmp_path / f"{name}.metal"
    shader.write_text(source)
    translation, _ = cuda_source(shader)
    assert_compiles(translation)


def nvrtc_errors(shader: Path, body: str) -> list:
    """Compile a one-kernel shader whose body is ``body`` (line 4) with NVRTC; its errors on the user's lines."""
    shader.write_text("#include <metal_stdlib>\nusing namespace metal;\n"
                      "kernel void k(device float2* v [[buffer(0)]], uint id [[thread_position_in_grid]]) {\n"
                      f"{body}\n}}\n")
    translation, pre = cuda_source(shader)
    with pytest.raises(CompilerFailed) as failure:
        nvrtc_compile(translation.source, CompileOptions(), "sm_90")
    errors = [d for d in parse_log(failure.value.log, pre.sources, translation.columns) if d.severity == "error"]
    assert errors and errors[0].pos.file == str(shader)
    return errors


def test_compile_error_points_at_the_users_line(tmp_path):
    errors = nvrtc_errors(tmp_path / "broken.metal", "    v[id].x = not_declared * 2.0f;")
    assert (errors[0].pos.line, errors[0].pos.column) == (4, 15)  # of `not_declared`
    assert "not_declared" in errors[0].message


def test_error_inside_the_header_lands_on_the_users_line(tmp_path):
    """A swizzle beyond the vector fails a static_assert in our header; NVRTC names the user's line only in its
    "detected during instantiation ... at line N of FILE" note, and that is where the error must land."""
    errors = nvrtc_errors(tmp_path / "swizzle.metal", "    v[0] = v[id].yz;")
    assert (errors[0].pos.line, errors[0].pos.column) == (4, 5)
    assert "does not have" in errors[0].message


def test_launch_record_is_sized_to_the_kernel():
    source = """#include <metal_stdlib>
using namespace metal;
kernel void streams(device const float* x [[buffer(0)]], device float* y [[buffer(2)]],
                    uint i [[thread_position_in_grid]]) {
    y[i] = x[i];
}
kernel void scaled(device float* y [[buffer(0)]], constant float& a [[buffer(1)]],
                   threadgroup float* scratch [[threadgroup(2)]], uint i [[thread_position_in_grid]]) {
    y[i] *= a;
}
kernel void none(uint i [[thread_position_in_grid]]) {}
"""
    pre = preprocess(source, "<layout>", ())
    program = parse(pre.tokens, pre.sources)
    layouts = [cuda_launch_layout(kernel) for kernel in program.kernels]
    # buffers 0 and 2: three slots, no inline constants (no parameter can take a value from Python)
    assert layouts[0] == CudaLaunchLayout(3, 0)
    assert layouts[1] == CudaLaunchLayout(2, 3, inline_slots=0b10)  # only `a` may hold an inline value
    assert layouts[2] == CudaLaunchLayout(1, 0)
    # 3 x 16 bytes of addresses and sizes, 44 of grid and flags, 4 of offsets, 1 of constants, 16-byte aligned
    assert layouts[0].size == 112
    translation = translate(pre, program, "cuda")
    # device pointers are declared global to the compiler; a slot that may hold an inline constant is not
    assert "mg::global_slot(d, 0)" in translation.source and "mg::global_slot(d, 2)" in translation.source
    assert "mg::slot(d, 1)" in translation.source and "mg::global_slot(d, 1)" not in translation.source
    assert_compiles(translation)


STREAMING = """#include <metal_stdlib>
using namespace metal;
kernel void saxpy(device const float* x [[buffer(0)]], const device float* y [[buffer(1)]],
                  device float* out [[buffer(2)]], constant float& a [[buffer(3)]],
                  device const float* table [[buffer(4)]], uint i [[thread_position_in_grid]]) {
    out[i] = a * x[i] + y [ i ] + table[i / 2];
}
kernel void scaled(device const float4* v [[buffer(0)]], device float4* out [[buffer(1)]],
                   uint2 p [[thread_position_in_grid]]) {
    out[p.x] = v[p.x];
}
kernel void reduce(device const float* x [[buffer(0)]], device atomic_float* sum [[buffer(1)]],
                   uint i [[thread_position_in_grid]], uint lane [[thread_index_in_simdgroup]]) {
    float s = simd_sum(x[i]);
    if (lane == 0) atomic_fetch_add_explicit(sum, s, memory_order_relaxed);
}
"""


def test_streamed_inputs_are_the_read_only_buffers_read_at_the_grid_position(tmp_path):
    shader = tmp_path / "streaming.metal"
    shader.write_text(STREAMING)
    translation, pre = cuda_source(shader)
    from metalgpu.msl.analysis import streamed_inputs

    saxpy, scaled, reduce = translation.kernels
    # x[i] and y [ i ] are streamed; out is written, a is a reference, table is read at i / 2
    assert streamed_inputs(pre.tokens, saxpy) == [0, 1]
    assert streamed_inputs(pre.tokens, scaled) == []  # a 2-D position: no 1-D index to prefetch by
    assert "mg::prefetch_l2(d, 0, " in translation.source and "mg::prefetch_l2(d, 1, " in translation.source
    assert translation.source.count("mg::prefetch_l2(") == 2
    # a kernel whose threads cooperate keeps one threadgroup per block and prefetches nothing
    reduce_wrapper = translation.source[translation.source.index("mg_run_2("):]
    assert "for_each_group" not in reduce_wrapper
    assert_compiles(translation)


def test_a_kernel_without_include_compiles_for_cuda():
    from test_api_dispatch import NO_INCLUDE

    pre = preprocess(NO_INCLUDE, "<no include>", ())
    assert_compiles(translate(pre, parse(pre.tokens, pre.sources), "cuda"))


def test_simdgroup_matrices_compile_for_cuda():
    from test_cooperative import SIMDGROUP_MATRIX

    pre = preprocess(SIMDGROUP_MATRIX, "<simdgroup matrices>", ())
    assert_compiles(translate(pre, parse(pre.tokens, pre.sources), "cuda"))


def test_metal_constants_compile_for_cuda():
    from test_api_dispatch import METAL_CONSTANTS

    pre = preprocess(METAL_CONSTANTS, "<constants>", ())
    assert_compiles(translate(pre, parse(pre.tokens, pre.sources), "cuda"))


@pytest.mark.parametrize("arch", ["compute_80", "compute_90"])
def test_every_kernel_first_waits_for_its_predecessor_on_sm_90(tmp_path, arch):
    """A batch's graph joins its kernels by programmatic edges on sm_90 and later (backends/cuda_graph.py): each
    kernel must wait for the one before in its first instruction, before it touches memory. sm_80 has no such
    wait (nor such edges)."""
    shader = tmp_path / "step.metal"
    shader.write_text("#include <metal_stdlib>\nusing namespace metal;\n"
                      "kernel void step(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n"
                      "    x[i] = x[i] * 0.5f + 1.0f;\n}\n")
    translation, _ = cuda_source(shader)
    entry = ptx_of(translation.source, CompileOptions(), arch)
    entry = entry[entry.index(".entry mg_run_0("):]
    first_memory = min(entry.index(op) for op in ("ld.global", "st.global"))
    if arch == "compute_90":
        assert entry.count("griddepcontrol.wait") == 1 and entry.index("griddepcontrol.wait") < first_memory
    else:
        assert "griddepcontrol" not in entry
