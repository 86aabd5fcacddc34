"""Interface.struct_dtype and dict arguments: struct layouts read from the shader's own declarations.

The layout rules are checked against the compilers themselves: a probe kernel writes ``sizeof``, ``alignof`` and
``offsetof`` of every field, run on every backend, and the same offsets are ``static_assert``-ed under NVRTC, so
the Python rules cannot drift from what the C++ side (our Metal emulation headers) does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import metalgpu
from metalgpu.msl.preprocess import preprocess
from metalgpu.msl.structs import StructTable

LAYOUT_SHADER = r"""
#include <metal_stdlib>
using namespace metal;

namespace shapes {
namespace detail {
struct Scalars { bool b; char c; short s; int i; float f; int64_t l; uchar u; size_t z; uint16_t w; };
struct Floats16 { char c; half h; bfloat bf; half2 h2; bfloat4 b4; };
}
constant constexpr int RANK = 3;
enum class Kind : uint8_t { Small, Large = 7 };
enum Axis { X, Y, Z, AXES };
struct Vectors { float3 a; char c; packed_float3 p; half3 h3; char2 c2; half4 h4; float2 f2; packed_half3 ph; };
struct Matrices { float2x3 m23; half3x3 h33; float4x4 m44; half2x2 h22; };
struct Arrays : detail::Scalars {
  int dims[RANK + 1]; int64_t strides[AXES][2]; float3 points[2]; Kind kind; Axis axis;
};
}
struct alignas(16) Aligned { char c; };
struct Mixed { char first; Aligned aligned; shapes::Vectors vectors; device float* pointer; ushort last; };
typedef struct { half d; union { struct { half lo; half hi; }; uint packed; }; int8_t qs[32 / 2]; } block_like;
template <typename T = float, unsigned N = 2> struct Pair { T v[N]; T tail; };
template <> struct Pair<char, 5> { int special; };
typedef Pair<> DefaultPair;
typedef Pair<half, 3> HalfPair;
typedef Pair<char, 5> SpecialPair;
struct Holder { static constexpr int COUNT = sizeof(float4) / sizeof(float); float w[COUNT]; HalfPair pair; };
"""

STRUCTS = {"shapes::detail::Scalars": "Scalars", "shapes::detail::Floats16": "Floats16", "shapes::Vectors": "Vectors",
           "shapes::Matrices": "Matrices", "shapes::Arrays": "Arrays", "Aligned": "Aligned", "Mixed": "Mixed",
           "block_like": "block_like", "DefaultPair": "DefaultPair", "HalfPair": "HalfPair",
           "SpecialPair": "SpecialPair", "Holder": "Holder"}


def table(source: str) -> StructTable:
    return StructTable(preprocess(source, "layout.metal").tokens)


def probe_source() -> tuple[str, dict[str, np.dtype]]:
    """LAYOUT_SHADER plus one kernel per struct writing sizeof, alignof and each field's offsetof."""
    structs = table(LAYOUT_SHADER)
    dtypes = {name: structs.dtype(name) for name in STRUCTS}
    kernels = []
    for name, short in STRUCTS.items():
        # offsets from the addresses of an object's members: NVRTC before 13.5 has no __builtin_offsetof
        writes = [f"sizeof({name})", f"alignof({name})"] + [
            f"reinterpret_cast<thread const char*>(&probe.{field}) - reinterpret_cast<thread const char*>(&probe)"
            for field in dtypes[name].names]
        body = f"    {name} probe{{}};\n" + "".join(f"    out[{k}] = {expression};\n"
                                                 for k, expression in enumerate(writes))
        kernels.append(f"kernel void probe_{short}(device ulong* out [[buffer(0)]], uint i [[thread_position_in_grid]])"
                       f" {{\n{body}}}\n")
    return LAYOUT_SHADER + "\n".join(kernels), dtypes


def test_layouts_by_the_rules():
    structs = table(LAYOUT_SHADER)
    vectors = structs.dtype("Vectors")  # an unqualified name finds the one struct of that name
    assert [vectors.fields[n][1] for n in vectors.names] == [0, 16, 20, 32, 40, 48, 56, 64]
    assert vectors.itemsize == 80  # float3 takes 16 bytes (aligned 16), packed_float3 12 (aligned 4)
    assert vectors.fields["a"][0] == np.dtype((np.float32, (3,)))
    arrays = structs.dtype("shapes::Arrays")
    assert arrays.fields["strides"][0].shape == (3, 2)  # enumerator AXES bounds the array
    assert arrays.fields["points"][0].shape == (2, 4)   # arrays of 3-lane vectors show the padding lane
    assert arrays.fields["kind"][0] == np.uint8         # the enum's underlying type
    assert arrays.fields["axis"][0] == np.int32
    assert structs.dtype("Holder").fields["w"][0].shape == (4,)  # sizeof in a static constexpr member
    assert structs.dtype("DefaultPair").itemsize == 12 and structs.dtype("Pair<half, 3>").itemsize == 8
    assert structs.dtype("SpecialPair").names == ("special",)  # the explicit specialisation wins
    assert structs.dtype("Pair<char, 2 + 3>").names == ("special",)
    union = structs.dtype("block_like")
    assert {n: union.fields[n][1] for n in union.names} == {"d": 0, "lo": 4, "hi": 6, "packed": 4, "qs": 8}
    assert union.itemsize == 24


@pytest.mark.parametrize("name", list(STRUCTS.values()))
def test_layout_matches_the_compiler(iface, tmp_path, name):
    source, dtypes = probe_source()
    qualified = next(q for q, short in STRUCTS.items() if short == name)
    dtype = dtypes[qualified]
    iface.load_shader_from_str(source)
    out = iface.create_buffer(64, "ulong")
    iface.run_function(1, [out], function_name=f"probe_{name}")
    compiled = out.contents[:2 + len(dtype.names)].tolist()
    ours = [dtype.itemsize, _alignment(dtype, qualified)] + [dtype.fields[f][1] for f in dtype.names]
    assert compiled == ours
    assert iface.struct_dtype(qualified) == dtype


def _alignment(dtype: np.dtype, name: str) -> int:
    structs = table(LAYOUT_SHADER)
    return structs.layout_of(name).align


def test_layout_matches_nvrtc():
    # compile-time checks, with no GPU; test_layout_matches_the_compiler runs the same comparison on a GPU
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
    from cuda.bindings import nvrtc

    from metalgpu.backends.base import CompileOptions
    from metalgpu.backends.nvrtc import nvrtc_compile
    from metalgpu.msl.parser import parse
    from metalgpu.msl.translate import translate

    if nvrtc.nvrtcVersion()[1:] < (13, 5):
        pytest.skip("this NVRTC has no __builtin_offsetof (13.5 and later have)")

    structs = table(LAYOUT_SHADER)
    checks = []
    for name in STRUCTS:
        layout = structs.layout_of(name)
        checks.append(f"static_assert(sizeof({name}) == {layout.size} && alignof({name}) == {layout.align}, "
                      f"\"{name}\");")
        checks += [f"static_assert(__builtin_offsetof({name}, {field}) == {layout.dtype.fields[field][1]}, "
                   f"\"{name}::{field}\");" for field in layout.dtype.names]
    source = LAYOUT_SHADER + "\n".join(checks) + "\nkernel void k(device int* x [[buffer(0)]]) { x[0] = 1; }\n"
    pre = preprocess(source, "layout.metal")
    translation = translate(pre, parse(pre.tokens, pre.sources), "cuda")
    assert nvrtc_compile(translation.source, CompileOptions(), "sm_90")[:4] == b"\x7fELF"


PACKING_SHADER = r"""
#include <metal_stdlib>
using namespace metal;
namespace params {
struct Inner { half scale; uchar2 shift; };
struct Params { int n; float3 offset; Inner inner; int64_t strides[2]; bool flip; };
}
kernel void unpack(constant params::Params& p [[buffer(0)]], device float* out [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) {
    float values[] = {float(p.n), p.offset.x, p.offset.y, p.offset.z, float(p.inner.scale), float(p.inner.shift.y),
                      float(p.strides[0]), float(p.strides[1]), float(p.flip)};
    out[i] = values[i];
}
"""
PARAMS = {"n": -3, "offset": [1.5, 2.5, 3.5], "inner": {"scale": 0.25, "shift": [7, 9]}, "strides": [40, 8],
          "flip": True}
UNPACKED = [-3, 1.5, 2.5, 3.5, 0.25, 9, 40, 8, 1]


def test_dict_argument_is_packed_through_the_struct(iface):
    iface.load_shader_from_str(PACKING_SHADER)
    iface.set_function("unpack")
    out = iface.create_buffer(9, "float")
    iface.run_function(9, [PARAMS, out])
    assert out.contents.tolist() == UNPACKED  # exact: every value is representable


def test_struct_value_from_struct_dtype(iface):
    iface.load_shader_from_str(PACKING_SHADER)
    value = np.zeros((), iface.struct_dtype("Params"))
    value["n"], value["offset"], value["inner"]["scale"], value["strides"] = 5, [0, 1, 2], 2.0, [3, 4]
    out = iface.create_buffer(9, "float")
    iface.run_function(9, [value, out], function_name="unpack")
    assert out.contents.tolist() == [5, 0, 1, 2, 2, 0, 3, 4, 0]


def test_dict_argument_errors(iface):
    iface.load_shader_from_str(PACKING_SHADER)
    iface.set_function("unpack")
    out = iface.create_buffer(9, "float")
    with pytest.raises(metalgpu.ArgumentError, match=r"parameter 'p'.*'flip' are not given"):
        iface.run_function(9, [{k: v for k, v in PARAMS.items() if k != "flip"}, out])
    with pytest.raises(metalgpu.ArgumentError, match="has no field 'flipped'"):
        iface.run_function(9, [{**PARAMS, "flipped": 1}, out])
    with pytest.raises(metalgpu.ArgumentError, match=r"offset.*cannot store"):
        iface.run_function(9, [{**PARAMS, "offset": [1, 2]}, out])


def test_union_members_are_alternatives():
    from metalgpu.msl.structs import pack_struct

    dtype = table(LAYOUT_SHADER).dtype("block_like")
    value = pack_struct(dtype, {"d": 1.0, "packed": 0x3C003800, "qs": np.arange(16)}, "block")
    assert value["lo"] == 0.5 and value["hi"] == 1.0  # little-endian halves of the union's uint


def test_struct_dtype_errors(iface):
    iface.load_shader_from_str(LAYOUT_SHADER + "struct Bad { int ok; decltype(0) computed; };\n"
                               "struct Bits { int a : 3; };\nkernel void k(device int* x [[buffer(0)]]) {}\n")
    with pytest.raises(metalgpu.ArgumentError, match=r"declares no type 'Mixd'.*did you mean 'Mixed'"):
        iface.struct_dtype("Mixd")
    with pytest.raises(metalgpu.ArgumentError, match=r"<string>:\d+:\d+: cannot lay out type 'decltype\(0\)'"):
        iface.struct_dtype("Bad")
    with pytest.raises(metalgpu.ArgumentError, match="bit-field 'a'"):
        iface.struct_dtype("Bits")
    with pytest.raises(metalgpu.ArgumentError, match="'Pair' is a template"):
        iface.struct_dtype("Pair")


def test_unknown_member_type_is_named_with_its_position():
    with pytest.raises(metalgpu.ArgumentError, match=r"layout.metal:3:5: cannot lay out type 'Mixd'.*'Mixed'"):
        table("struct Mixed { int x; };\nstruct Bad {\n    Mixd gone;\n};\n").dtype("Bad")


def test_ambiguous_unqualified_name():
    structs = table("namespace a { struct P { int x; }; }\nnamespace b { struct P { float y; }; }\n")
    with pytest.raises(metalgpu.ArgumentError, match="'P' is ambiguous.*a::P, b::P"):
        structs.dtype("P")
    assert structs.dtype("b::P").names == ("y",)


def test_declarations_that_are_not_members_are_skipped():
    structs = table(Path(__file__).with_name("kernels").joinpath("templates.metal").read_text() + r"""
struct WithFunctions {
    int a;
    WithFunctions(int x) : a{x}, b(x) {}
    int get() const { return a; }
    static int twice(int x) { return 2 * x; }
    template <typename T> T as() const { return T(a); }
    using value_type = float;
    value_type b;
    enum { LOCAL = 2 } ;
    short c[LOCAL];
};
""")
    dtype = structs.dtype("WithFunctions")
    assert {n: dtype.fields[n][1] for n in dtype.names} == {"a": 0, "b": 4, "c": 8}
    assert dtype.itemsize == 12
