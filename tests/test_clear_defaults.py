"""Defaults said out loud: a shader with no kernels warns, a kernel that uses a function constant given no value
warns (Metal would fail to make its pipeline), and the default threadgroup size is what run_function's docstring
says."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import metalgpu

NO_KERNELS = "#include <metal_stdlib>\nusing namespace metal;\ninline float twice(float x) { return 2 * x; }\n"

# `scale` is used directly, `offset` through a helper, `bias` through a derived program-scope constant; `shift` is
# optional (is_function_constant_defined); `unused` only by another kernel.
CONSTANTS = """#include <metal_stdlib>
using namespace metal;
constant int scale [[function_constant(0)]];
constant int offset [[function_constant(1)]];
constant int bias [[function_constant(2)]];
constant int shift [[function_constant(3)]];
constant int unused [[function_constant(4)]];
constant int doubled_bias = bias * 2;
constant bool has_shift = is_function_constant_defined(shift);

int add_offset(int x) { return x + offset; }

kernel void scaled(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = int(i) * scale;
}
kernel void offset_by_helper(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = add_offset(int(i));
}
kernel void biased(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = int(i) + doubled_bias;
}
kernel void shifted(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = int(i) + (has_shift ? shift : 100);
}
kernel void other(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = unused;
}
kernel void plain(device int* out [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    out[i] = int(i);
}
"""


def unset_constant_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "function constant" in str(w.message)]


def test_a_shader_with_no_kernels_warns_with_its_file_name(iface, tmp_path):
    with pytest.warns(UserWarning, match="<string>: the shader declares no kernels"):
        iface.load_shader_from_str(NO_KERNELS)
    assert iface.function_names == []
    shader = tmp_path / "helpers.metal"
    shader.write_text(NO_KERNELS)
    with pytest.warns(UserWarning, match=f"{shader}: the shader declares no kernels"):
        iface.load_shader(shader)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iface.load_shader_from_str(CONSTANTS)  # kernels: no warning


@pytest.mark.parametrize("kernel, constant", [("scaled", "scale"), ("offset_by_helper", "offset"),
                                              ("biased", "bias")])
def test_a_kernel_using_a_constant_without_a_value_warns(iface, kernel, constant):
    iface.load_shader_from_str(CONSTANTS)
    index = ["scale", "offset", "bias"].index(constant)
    with pytest.warns(UserWarning) as record:
        iface.set_function(kernel)
    messages = unset_constant_warnings(record)
    assert len(messages) == 1, messages
    assert f"kernel '{kernel}' uses function constant '{constant}'" in messages[0]
    assert f"<string>:{3 + index}:" in messages[0] and "Metal fails to make this pipeline" in messages[0]
    out = iface.create_buffer(8, "int")
    iface.run_function(8, [out])  # runs with the constant zero, as the warning says
    np.testing.assert_array_equal(out.contents, np.arange(8) * 0 if kernel == "scaled" else np.arange(8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iface.set_function(kernel, constants={constant: 3})
    iface.run_function(8, [out])
    expected = {"scaled": np.arange(8) * 3, "offset_by_helper": np.arange(8) + 3, "biased": np.arange(8) + 6}
    np.testing.assert_array_equal(out.contents, expected[kernel])


def test_optional_and_unused_constants_do_not_warn(iface):
    iface.load_shader_from_str(CONSTANTS)
    out = iface.create_buffer(4, "int")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kernel in ("shifted", "plain"):
            iface.set_function(kernel)
        iface.run_function(4, [out], "shifted")
    np.testing.assert_array_equal(out.contents, np.arange(4) + 100)  # the optional constant's own fallback
    with pytest.warns(UserWarning, match="kernel 'other' uses function constant 'unused'"):
        iface.set_function("other")


def test_the_warning_comes_from_a_cached_module_too(backend):
    """A later Interface (a later process) finds the compiled module in the cache and warns the same."""
    for _ in range(2):
        with metalgpu.Interface(backend) as gpu:
            gpu.load_shader_from_str(CONSTANTS)
            with pytest.warns(UserWarning, match="kernel 'scaled' uses function constant 'scale'"):
                gpu.set_function("scaled")


DEFAULT_SIZE = """#include <metal_stdlib>
using namespace metal;
kernel void sizes(device uint* out [[buffer(0)]], uint3 gid [[thread_position_in_grid]],
                  uint3 size [[threads_per_threadgroup]], uint3 groups [[threadgroups_per_grid]],
                  uint3 grid [[threads_per_grid]]) {
    const uint linear = (gid.z * grid.y + gid.y) * grid.x + gid.x;
    out[4 * linear] = size.x;
    out[4 * linear + 1] = size.y;
    out[4 * linear + 2] = size.z;
    out[4 * linear + 3] = groups.x * groups.y * groups.z;
}
"""


def run_sizes(iface, grid) -> np.ndarray:
    count = int(np.prod(grid))
    out = iface.create_buffer(4 * count, "uint")
    iface.run_function(grid, [out], "sizes")
    return out.read().reshape(count, 4)


def test_the_default_threadgroup_size_is_the_documented_one(iface):
    """run_function's docstring: up to P threads, x first, then y, then z; partial threadgroups at the edges."""
    iface.load_shader_from_str(DEFAULT_SIZE)
    iface.set_function("sizes")
    one_d = run_sizes(iface, 10_000)
    group = int(one_d[0, 0])  # P, as the first (whole) threadgroup shows it
    if iface.backend == "cpu":
        assert group == min(iface.maxThreadsPerGroup(), 1024) == 1024
    else:
        assert group <= min(iface.maxThreadsPerGroup(), 256)
    assert (one_d[:, 1:3] == 1).all() and (one_d[:, 3] == -(-10_000 // group)).all()
    if 10_000 % group:
        assert one_d[-1, 0] == 10_000 % group  # the edge threadgroup is partial
    two_d = run_sizes(iface, (100, 100))
    x, y = min(100, group), min(100, group // min(100, group))
    assert tuple(two_d[0, :3]) == (x, y, 1)
    assert two_d[0, 3] == -(-100 // x) * -(-100 // y)
    three_d = run_sizes(iface, (8, 8, 64))
    z = min(64, group // 64)
    assert tuple(three_d[0, :3]) == (8, 8, z)
    doc = metalgpu.Interface.run_function.__doc__
    assert "Default threadgroup size" in doc and "min(grid width, P)" in doc


def test_constant_uses_per_kernel_from_the_tokens():
    """The front end's part, with no device: which constants each kernel needs a value for."""
    from metalgpu.msl.parser import parse
    from metalgpu.msl.pipeline import ConstantUses
    from metalgpu.msl.preprocess import preprocess

    pre = preprocess(CONSTANTS, "k.metal")
    program = parse(pre.tokens, pre.sources)
    uses = ConstantUses(pre.tokens, program)
    assert uses.optional == {"shift"}
    unset = {kernel.host_name: [fc.name for fc in uses.unset(i, {})] for i, kernel in enumerate(program.kernels)}
    assert unset == {"scaled": ["scale"], "offset_by_helper": ["offset"], "biased": ["bias"], "shifted": [],
                     "other": ["unused"], "plain": []}
    assert uses.unset(0, {0: 3}) == []
    first = uses.unset(2, {})[0]
    assert (first.pos.file, first.pos.line, first.index) == ("k.metal", 5, 2)
