"""Kernels written the way production libraries write them (MLX, candle, ggml), run on every backend and compiled
for CUDA: headers included with angle brackets that end in a comment, host names built from adjacent string
literals, attribute indices written as constant expressions of macros, constants and enumerators, function
constants with extra specifiers, array parameters, `#include <metal_stdlib>;`, `__extension__` and
`__HAVE_BFLOAT__`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from metalgpu.msl.parser import parse
from metalgpu.msl.preprocess import preprocess
from metalgpu.msl.translate import translate

# The library's header: namespace-scope constants and enumerators name the kernels' slots; the file ends in a
# comment with no newline after it.
LIBRARY_HEADER = """#pragma once
#include <metal_stdlib>
namespace lib {
enum Slot { In, Out = 2 };
constexpr constant int kFunctionConstants = 10;
template <typename T> T twice(T x) { return x + x; }
} // namespace lib"""

LIBRARY_KERNELS = """#include <metal_stdlib>;
#include <lib/ops.h>
using namespace metal;

#define FC_SCALE (lib::kFunctionConstants + 1)
static constant constexpr const int scale [[function_constant(FC_SCALE)]];

struct Scaled {
  __extension__ union { float as_float; uint as_bits; } value;
};

// out[y, x] = 2 * in[y * strides[0] + x * strides[1]] * scale: `in` read through strides
template <typename T>
[[kernel]] void affine(device const T* in [[buffer(lib::In)]], device T* out [[buffer(lib::Out)]],
                       constant int64_t strides[2] [[buffer(lib::Out + 1)]],
                       uint2 pos [[thread_position_in_grid]], uint2 size [[threads_per_grid]]) {
  Scaled s;
  s.value.as_float = float(scale);
  int64_t i = pos.y * strides[0] + pos.x * strides[1];
  out[pos.y * size.x + pos.x] = lib::twice(in[i]) * T(s.value.as_float);
}

#define instantiate_affine(tname, type) \\
  template [[host_name("affine_" #tname)]] [[kernel]] decltype(affine<type>) affine<type>;

instantiate_affine(float32, float)
instantiate_affine(float16, half)
#if defined(__HAVE_BFLOAT__)
instantiate_affine(bfloat16, bfloat)
#endif
"""

DTYPES = {"float32": "float", "float16": "half", "bfloat16": "bfloat"}


def stored(values: np.ndarray, type_name: str) -> np.ndarray:
    """float32 values as a buffer of ``type_name`` holds them (a bfloat buffer's contents are its uint16 bits)."""
    if type_name == "bfloat":
        return (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)  # exact for these values
    return values.astype(np.float16 if type_name == "half" else np.float32)


def loaded(contents: np.ndarray, type_name: str) -> np.ndarray:
    if type_name == "bfloat":
        return (contents.astype(np.uint32) << 16).view(np.float32)
    return contents.astype(np.float32)


@pytest.fixture
def library(tmp_path) -> Path:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "ops.h").write_text(LIBRARY_HEADER)
    shader = tmp_path / "kernels.metal"
    shader.write_text(LIBRARY_KERNELS)
    return shader


@pytest.mark.parametrize("tname", list(DTYPES))
def test_library_style_kernel_runs(iface, library, tname):
    iface.load_shader(library)
    assert sorted(iface.function_names) == ["affine_bfloat16", "affine_float16", "affine_float32"]
    iface.set_function(f"affine_{tname}", constants={11: 5})
    columns = np.arange(12, dtype=np.float32).reshape(4, 3)  # stored x-major: element (y, x) at x * 3 + y
    type_name = DTYPES[tname]
    data = iface.create_buffer(12, type_name)
    data.contents.view(stored(columns.ravel(), type_name).dtype)[:] = stored(columns.ravel(), type_name)
    out = iface.create_buffer(12, type_name)
    iface.run_function((4, 3), [data, None, out, np.array([1, 3], dtype=np.int64)])
    # small integers times 10: exact in every type
    # bfloat as bits, with or without ml_dtypes
    contents = out.contents.view(np.uint16) if type_name == "bfloat" else out.contents
    np.testing.assert_array_equal(loaded(contents, type_name).reshape(3, 4), 10 * columns.T)


def test_library_style_kernels_compile_for_cuda(library):
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
    from test_cuda_translation import assert_compiles

    pre = preprocess(library.read_text(), str(library), (str(library.parent),))
    assert [w.message for w in pre.warnings] == ["extra tokens at end of #include directive"]
    translation = translate(pre, parse(pre.tokens, pre.sources), "cuda", constants={11: 5})
    assert [k.host_name for k in translation.kernels] == ["affine_float32", "affine_float16", "affine_bfloat16"]
    assert_compiles(translation)


@pytest.mark.parametrize("name, dtype", [("fill_float", np.float32), ("fill_int", np.int32)])
def test_instantiations_named_from_the_global_namespace(iface, name, dtype):
    from conftest import load_kernel

    load_kernel(iface, "global_qualified.metal", name)
    out = iface.create_buffer(10, dtype)
    iface.run_function(10, [out, dtype(7)])
    np.testing.assert_array_equal(out.contents, 7 + np.arange(10, dtype=dtype))
