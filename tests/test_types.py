"""Metal types: names, sizes and alignments (MSL specification, tables 2.1-2.3), views and bytes. No device."""
import ctypes
import struct

import numpy as np
import pytest

from metalgpu.errors import ArgumentError
from metalgpu.types import MetalType, contents_view, metal_type_of_array, pack_scalar, pack_values, resolve_type

# Metal type, size in bytes, alignment in bytes: figures from the MSL specification.
SPEC_LAYOUT = [
    ("bool", 1, 1), ("char", 1, 1), ("uchar", 1, 1), ("short", 2, 2), ("ushort", 2, 2),
    ("int", 4, 4), ("uint", 4, 4), ("long", 8, 8), ("ulong", 8, 8),
    ("half", 2, 2), ("bfloat", 2, 2), ("float", 4, 4),
    ("float2", 8, 8), ("float3", 16, 16), ("float4", 16, 16),
    ("half2", 4, 4), ("half3", 8, 8), ("half4", 8, 8),
    ("char2", 2, 2), ("char3", 4, 4), ("char4", 4, 4),
    ("bool3", 4, 4), ("int3", 16, 16), ("long2", 16, 16), ("long3", 32, 32), ("long4", 32, 32),
    ("packed_float2", 8, 4), ("packed_float3", 12, 4), ("packed_float4", 16, 4),
    ("packed_half3", 6, 2), ("packed_char3", 3, 1), ("packed_long3", 24, 8),
]


@pytest.mark.parametrize("name, size, alignment", SPEC_LAYOUT)
def test_sizes_and_alignments_match_the_spec(name, size, alignment):
    mtype = resolve_type(name)
    assert (mtype.name, mtype.itemsize, mtype.alignment) == (name, size, alignment)


def test_fields_of_a_vector():
    float3 = resolve_type("float3")
    assert (float3.scalar, float3.lanes, float3.packed, float3.scalar_dtype) == ("float", 3, False, np.float32)
    assert float3.is_vector and float3.element_shape == (3,) and float3.numpy_dtype is None
    packed = resolve_type("packed_float3")
    assert (packed.scalar, packed.lanes, packed.packed) == ("float", 3, True)


def test_fields_of_a_scalar():
    half = resolve_type("half")
    assert (half.scalar, half.lanes, half.packed) == ("half", 1, False)
    assert not half.is_vector and half.element_shape == () and half.numpy_dtype == np.float16


SPELLINGS = {
    "int": ["int", "int32", "int32_t", "metal::int", " int ", np.int32, np.dtype("int32"), ctypes.c_int,
            ctypes.c_int32],
    "uint": ["uint", "uint32", "uint32_t", "unsigned int", "unsigned  int", np.uint32, ctypes.c_uint,
             ctypes.c_uint32],
    "long": ["long", "int64", "int64_t", np.int64, ctypes.c_int64, ctypes.c_longlong],
    "ulong": ["ulong", "size_t", "uint64", "uint64_t", "unsigned long", np.uint64, ctypes.c_uint64,
              ctypes.c_ulonglong, ctypes.c_size_t],
    "short": ["short", "int16", "int16_t", np.int16, ctypes.c_int16, ctypes.c_short],
    "ushort": ["ushort", "uint16", "uint16_t", "unsigned short", np.uint16, ctypes.c_uint16, ctypes.c_ushort],
    "char": ["char", "int8", "int8_t", np.int8, ctypes.c_int8, ctypes.c_byte, ctypes.c_char],
    "uchar": ["uchar", "uint8", "uint8_t", "unsigned char", np.uint8, ctypes.c_ubyte, ctypes.c_uint8],
    "float": ["float", "float32", np.float32, np.dtype("float32"), ctypes.c_float],
    "half": ["half", "float16", np.float16, np.dtype("float16")],
    "bfloat": ["bfloat", "metal::bfloat"],
    "bool": ["bool", np.bool_, bool, ctypes.c_bool],
    "float4": ["float4", "metal::float4", "vec<float, 4>", "metal::vec<float,4>", "vec< float , 4 >"],
    "uint2": ["uint2", "vec<uint32_t, 2>", "vec<unsigned int, 2>"],
    "packed_half3": ["packed_half3", "metal::packed_half3"],
}


@pytest.mark.parametrize("expected, spelling",
                         [(expected, s) for expected, spellings in SPELLINGS.items() for s in spellings],
                         ids=repr)
def test_every_spelling_resolves(expected, spelling):
    assert resolve_type(spelling).name == expected


def test_every_scalar_has_vectors_and_packed_vectors():
    scalars = ["bool", "char", "uchar", "short", "ushort", "int", "uint", "long", "ulong", "half", "bfloat", "float"]
    for scalar in scalars:
        for lanes in (2, 3, 4):
            assert resolve_type(f"{scalar}{lanes}").lanes == lanes
            assert resolve_type(f"packed_{scalar}{lanes}").packed


def test_c_long_has_the_platforms_size():
    assert resolve_type(ctypes.c_long).itemsize == ctypes.sizeof(ctypes.c_long)
    if ctypes.sizeof(ctypes.c_long) == 8:
        assert resolve_type(ctypes.c_long).name == "long"


def test_metal_type_resolves_to_itself():
    float2 = resolve_type("float2")
    assert resolve_type(float2) is float2


def test_structured_dtype_is_a_struct():
    dtype = np.dtype([("position", np.float32, 3), ("mass", np.float32), ("id", np.int64)], align=True)
    mtype = resolve_type(dtype)
    assert (mtype.name, mtype.itemsize, mtype.alignment, mtype.numpy_dtype) == ("struct", dtype.itemsize, 8, dtype)
    assert not mtype.is_vector and mtype.element_shape == ()


def test_ctypes_structure_is_a_struct():
    class Pair(ctypes.Structure):
        _fields_ = [("a", ctypes.c_float), ("b", ctypes.c_int)]

    mtype = resolve_type(Pair)
    assert (mtype.name, mtype.itemsize, mtype.alignment) == ("struct", 8, 4)


@pytest.mark.parametrize("bad, words", [
    ("double", "64-bit float"),
    ("float64", "float32"),
    ("double3", "64-bit float"),
    (np.float64, "float32"),
    (float, "float32"),
    (ctypes.c_double, "64-bit float"),
    (int, "'long'"),
    (np.complex64, "complex"),
    ("floot", "did you mean 'float'"),
    ("size_t3", "unknown Metal type"),
    ("Float", "unknown Metal type"),
    ("", "unknown Metal type"),
    ("vec<float, 5>", "unknown Metal type"),
    (ctypes.c_void_p, "c_void_p"),
    (np.dtype(">f4"), "byte order"),
    (np.dtype("U3"), "no Metal equivalent"),
    (3, "3 is not an element type"),
    (None, "None is not an element type"),
], ids=repr)
def test_rejected_types_say_why(bad, words):
    with pytest.raises(ArgumentError, match=words.replace("(", r"\(")):
        resolve_type(bad)


def test_argument_error_is_a_value_and_type_error():
    with pytest.raises(ValueError):
        resolve_type("double")
    with pytest.raises(TypeError):
        resolve_type("double")


def test_unknown_name_lists_what_is_accepted():
    with pytest.raises(ArgumentError) as caught:
        resolve_type("quaternion")
    message = str(caught.value)
    assert "'quaternion'" in message and "half" in message and "packed_float3" in message and "numpy" in message


@pytest.mark.parametrize("dtype, name", [(np.float32, "float"), (np.float16, "half"), (np.int64, "long"),
                                         (np.uint8, "uchar"), (np.bool_, "bool")])
def test_metal_type_of_array(dtype, name):
    assert metal_type_of_array(np.zeros(3, dtype)).name == name


@pytest.mark.parametrize("array, words", [
    (np.zeros(3), r"astype\(np.float32\)"),
    (np.zeros(3, np.complex128), "complex"),
    (np.array([2**70], dtype=object), "Python objects"),
    (np.array(["a"]), "no Metal equivalent"),
])
def test_metal_type_of_array_rejects_with_a_hint(array, words):
    with pytest.raises(ArgumentError, match=words):
        metal_type_of_array(array)


# --- contents_view ----------------------------------------------------------------------------------------------

def test_scalar_view_is_zero_copy_and_writes_through():
    raw = np.zeros(40, np.uint8)
    view = contents_view(raw, 10, resolve_type("float"))
    assert view.shape == (10,) and view.dtype == np.float32 and np.shares_memory(view, raw)
    view[3] = 1.5
    assert np.frombuffer(raw.tobytes(), np.float32)[3] == 1.5


def test_float3_view_keeps_the_16_byte_stride():
    raw = np.zeros(4 * 16, np.uint8)
    view = contents_view(raw, 4, resolve_type("float3"))
    assert view.shape == (4, 3) and view.strides == (16, 4) and view.dtype == np.float32
    assert np.shares_memory(view, raw)
    view[:] = np.arange(12, dtype=np.float32).reshape(4, 3)
    lanes = np.frombuffer(raw.tobytes(), np.float32).reshape(4, 4)
    assert lanes[:, :3].tolist() == np.arange(12).reshape(4, 3).tolist()
    assert (lanes[:, 3] == 0).all()  # the padding lane is untouched


def test_packed_view_is_contiguous():
    raw = bytearray(5 * 6)
    view = contents_view(raw, 5, resolve_type("packed_half3"))
    assert view.shape == (5, 3) and view.strides == (6, 2) and view.flags.c_contiguous
    view[4, 2] = 2.0
    assert np.frombuffer(bytes(raw), np.float16)[14] == 2.0


def test_struct_view():
    dtype = np.dtype([("x", np.float32), ("n", np.int32)])
    raw = np.zeros(3 * 8, np.uint8)
    view = contents_view(raw, 3, resolve_type(dtype))
    assert view.shape == (3,) and view.dtype == dtype and np.shares_memory(view, raw)
    view["n"][2] = 7
    assert np.frombuffer(raw.tobytes(), np.int32)[5] == 7


def test_view_of_a_memoryview_writes_through():
    memory = bytearray(32)
    view = contents_view(memoryview(memory), 2, resolve_type("int4"))
    view[1, 0] = -5
    assert struct.unpack_from("<i", memory, 16)[0] == -5


def test_view_of_read_only_memory_is_read_only():
    view = contents_view(bytes(16), 4, resolve_type("float"))
    assert not view.flags.writeable
    vector_view = contents_view(bytes(32), 2, resolve_type("float3"))
    assert not vector_view.flags.writeable


def test_view_may_cover_only_the_start_of_the_memory():
    raw = np.zeros(100, np.uint8)
    assert contents_view(raw, 3, resolve_type("float3")).shape == (3, 3)
    assert contents_view(raw, 0, resolve_type("float3")).shape == (0, 3)


def test_view_larger_than_the_memory_is_refused():
    with pytest.raises(ArgumentError, match="needs 48 bytes"):
        contents_view(np.zeros(40, np.uint8), 3, resolve_type("float3"))


# --- pack_scalar / pack_values -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, name, expected", [
    (1.5, "float", struct.pack("<f", 1.5)),
    (np.float32(-2.25), "float", struct.pack("<f", -2.25)),
    (7, "int", struct.pack("<i", 7)),
    (-1, "long", struct.pack("<q", -1)),
    (2**64 - 1, "ulong", struct.pack("<Q", 2**64 - 1)),
    (255, "uchar", b"\xff"),
    (-128, "char", b"\x80"),
    (True, "bool", b"\x01"),
    (0, "bool", b"\x00"),
    (3.0, "int", struct.pack("<i", 3)),
    (True, "int", struct.pack("<i", 1)),
    (np.array([9], np.int16), "short", struct.pack("<h", 9)),
    (np.array(4.5), "float", struct.pack("<f", 4.5)),
    (0.5, "half", struct.pack("<e", 0.5)),
    (65504, "half", struct.pack("<e", 65504.0)),
    ((1, 2), "float2", struct.pack("<2f", 1, 2)),
    ([1, 2, 3], "float3", struct.pack("<4f", 1, 2, 3, 0)),
    ([1, 2, 3], "packed_float3", struct.pack("<3f", 1, 2, 3)),
    ([1, -1, 2], "char3", struct.pack("<4b", 1, -1, 2, 0)),
    (np.array([1, 2, 3, 4], np.int32), "uint4", struct.pack("<4I", 1, 2, 3, 4)),
    (b"\x01\x02\x03\x04", "uint", b"\x01\x02\x03\x04"),
], ids=repr)
def test_pack_scalar_gives_the_types_bytes(value, name, expected):
    assert pack_scalar(value, resolve_type(name)) == expected


def test_pack_bfloat_rounds_to_nearest_even():
    bfloat = resolve_type("bfloat")
    assert pack_scalar(1.0, bfloat) == struct.pack("<H", 0x3F80)
    assert pack_scalar(-2.0, bfloat) == struct.pack("<H", 0xC000)
    # 1 + 2**-8 lies halfway between bfloat16 1.0 and 1 + 2**-7: ties go to the even pattern, 1.0
    assert pack_scalar(1 + 2**-8, bfloat) == struct.pack("<H", 0x3F80)
    assert pack_scalar(1 + 3 * 2**-8, bfloat) == struct.pack("<H", 0x3F82)
    nan_bits = struct.unpack("<H", pack_scalar(float("nan"), bfloat))[0]
    assert nan_bits & 0x7F80 == 0x7F80 and nan_bits & 0x007F


def test_nan_and_infinity_pass_to_float_types():
    assert np.isnan(np.frombuffer(pack_scalar(float("nan"), resolve_type("float")), np.float32)[0])
    assert np.isinf(np.frombuffer(pack_scalar(float("-inf"), resolve_type("half")), np.float16)[0])


def test_pack_struct():
    dtype = np.dtype([("x", np.float32), ("n", np.int32)])
    mtype = resolve_type(dtype)
    assert pack_scalar((1.5, 7), mtype) == struct.pack("<fi", 1.5, 7)
    record = np.array([(2.5, -1)], dtype)[0]
    assert pack_scalar(record, mtype) == struct.pack("<fi", 2.5, -1)


def test_pack_values_pads_every_3_vector():
    data = pack_values(np.arange(6, dtype=np.float32).reshape(2, 3), resolve_type("float3"))
    assert np.frombuffer(data, np.float32).tolist() == [0, 1, 2, 0, 3, 4, 5, 0]


def test_pack_values_of_scalars():
    data = pack_values([1, 2, 3], resolve_type("ushort"))
    assert np.frombuffer(data, np.uint16).tolist() == [1, 2, 3]


@pytest.mark.parametrize("value, name, words", [
    (300, "uchar", "300 is out of range for uchar"),
    (-1, "uint", "-1 is out of range for uint"),
    (2**31, "int", "out of range"),
    (2**64, "ulong", "out of range"),
    (2**70, "long", "out of range"),
    (np.array([1, 70000]), "short", "70000"),
    (1.5, "int", "whole numbers"),
    (float("nan"), "int", "whole numbers"),
    (1e10, "half", "out of range for half"),
    (1e300, "float", "out of range for float"),
    (2, "bool", "True/False"),
    (1 + 2j, "float", "cannot convert"),
    ("7", "int", "cannot convert"),
    ([1, 2], "float", "expected one float"),
    ([1, 2], "float3", "takes 3 values"),
    (1.0, "float4", "takes 4 values"),
    (b"\x00\x00", "float", "2 bytes"),
], ids=repr)
def test_pack_scalar_refuses_values_that_do_not_fit(value, name, words):
    with pytest.raises(ArgumentError, match=words):
        pack_scalar(value, resolve_type(name))


def test_metal_type_is_frozen():
    with pytest.raises(AttributeError):
        resolve_type("float").lanes = 2
    assert isinstance(resolve_type("float"), MetalType)
