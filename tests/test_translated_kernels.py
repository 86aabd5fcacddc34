"""MSL that real kernel libraries write and C++ reads differently, run on every backend: declarations that differ
only by address space, the conditional operator with 16-bit floats, C++ that only clang accepts, threadgroup
variables in nested scopes. The kernels are in tests/kernels/, which test_cuda_translation.py also compiles for
CUDA with NVRTC."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import KERNELS_DIR, load_kernel

HALF_2049 = 2048.0    # 2049 rounded to half (11 significant bits)
BFLOAT_257 = 256.0    # 257 rounded to bfloat (8 significant bits)
WIDE = np.float32(1.0001)  # neither a half nor a bfloat


def test_declarations_that_differ_only_by_address_space(iface):
    load_kernel(iface, "address_spaces.metal", "address_spaces")
    n = 40
    start = np.arange(n, dtype=np.int32) * 3
    out = iface.array_to_buffer(start)
    table = np.array([5, 6, 7, 8], dtype=np.int32)
    flag = iface.array_to_buffer(np.zeros(1, dtype=np.int32))
    iface.run_function(n, [out, 9, table, flag])
    ids = np.arange(n)
    # id + 7 * 3 + offset, the table entry through device, twice table[0] through constant (space 2), space 1 of
    # a device pointer, and the flags of the non-const thread and const device conversion operators
    expected = start + (ids + 21 + 9) + table[ids % 4] + 2 * table[0] * 2 + 1 + 10000 + 20000
    np.testing.assert_array_equal(out.contents, expected)
    assert flag.contents[0] == 1


def test_conditional_operator_gives_metals_type(iface):
    load_kernel(iface, "conditional_types.metal", "conditional_types")
    n = 30
    halves = iface.array_to_buffer(np.full(n, 1.5, dtype=np.float16))
    bfloats = iface.create_buffer(n, "bfloat")
    bfloats.contents.view(np.uint16)[:] = 0x3FC0  # 1.5 (its bits, with or without ml_dtypes)
    wide = iface.array_to_buffer(np.full(n, WIDE, dtype=np.float32))
    out = iface.array_to_buffer(np.zeros(8 * n, dtype=np.float32))
    iface.run_function(n, [out, halves, bfloats, wide])
    got = out.contents.reshape(n, 8)
    for i in range(n):
        even = i % 2 == 0
        expected = [1.5 if even else WIDE,
                    1.5 if even else HALF_2049,
                    1.5 if even else WIDE,
                    1.5 if even else BFLOAT_257,
                    1.5 if even else 4097.0,
                    np.float32(WIDE + np.float32(1)) if even else 11.5,
                    7.0 if even else 1.0 + (3.0 if i % 3 == 1 else 0.0),  # pick() rounds 1.0001 to a half
                    2.0 if even else 7.5]
        # every value is exact: each is a half, a bfloat or the float given, or a sum of small exact terms
        np.testing.assert_array_equal(got[i], np.array(expected, dtype=np.float32), err_msg=f"thread {i}")


def test_clang_only_cxx(iface):
    load_kernel(iface, "cxx_compat.metal", "cxx_compat")
    n = 12
    out = iface.array_to_buffer(np.zeros(8 * n, dtype=np.float32))
    iface.run_function(n, [out])
    got = out.contents.reshape(n, 8)
    ids = np.arange(n)
    np.testing.assert_array_equal(got[:, 0], (4 * ids + 3) >> 1)  # the int specialisation
    np.testing.assert_array_equal(got[:, 1], ids * 0.5 + 100)       # the float one
    np.testing.assert_array_equal(got[:, 2], ids + 1002)
    np.testing.assert_array_equal(got[:, 3], np.full(n, 17.0))      # range designators, element 4 zero
    np.testing.assert_array_equal(got[:, 4], 4 * np.where(ids % 2 == 0, 0.25, 0.75) + 2)


def test_explicit_instantiations_with_deduced_arguments(iface):
    load_kernel(iface, "cxx_compat.metal")
    data = iface.array_to_buffer(np.arange(20, dtype=np.float32))
    iface.run_function(20, [data, 2.5], function_name="scale_float")
    np.testing.assert_array_equal(data.contents, np.arange(20, dtype=np.float32) * 2.5)
    ints = iface.array_to_buffer(np.arange(20, dtype=np.int32))
    iface.run_function(20, [ints, 3], function_name="scale_int")
    np.testing.assert_array_equal(ints.contents, np.arange(20) * 3 + 1)


@pytest.mark.parametrize("mode, added", [(0, 0), (1, 100), (2, 200)])
def test_threadgroup_arrays_in_sibling_blocks(iface, mode, added):
    load_kernel(iface, "threadgroup_scopes.metal", "threadgroup_scopes")
    out = iface.array_to_buffer(np.arange(64, dtype=np.float32))
    iface.run_function(64, [out, mode], threads_per_threadgroup=64)
    np.testing.assert_array_equal(out.contents, np.arange(63, -1, -1, dtype=np.float32) + added)


@pytest.mark.parametrize("kernel, dtype", [("first_half_of_tile_float", np.float32),
                                           ("first_half_of_tile_half", np.float16)])
def test_conditional_over_threadgroup_array_indexed_by_vector_component(iface, kernel, dtype):
    load_kernel(iface, "conditional_threadgroup.metal", kernel)
    out = iface.create_buffer(64, "float" if dtype == np.float32 else "half")
    iface.run_function(64, [out, np.uint32(24)], threads_per_threadgroup=64)
    lid = np.arange(64)
    np.testing.assert_array_equal(out.contents, np.where(lid < 24, 2 * lid, -1).astype(dtype))


def test_reads_through_casts_at_any_byte_offset(iface):
    """Fields of packed 22-byte blocks read through casts to wider types: CUDA faults on a misaligned load, which
    Apple's GPUs make; the translator reads such addresses byte by byte."""
    load_kernel(iface, "unaligned_loads.metal", "unaligned_block_fields")
    n = 33
    block = np.dtype([("scale", np.float16), ("bits", np.uint8, 4), ("codes", np.uint8, 16)])
    assert block.itemsize == 22
    rng = np.random.default_rng(7)
    blocks = np.zeros(n, block)
    blocks["scale"] = rng.integers(0, 100, n)
    blocks["bits"] = rng.integers(0, 256, (n, 4))
    blocks["codes"] = rng.integers(0, 256, (n, 16))
    out = iface.create_buffer(2 * n, "uint")
    written = iface.create_buffer(4 * n, "uchar")
    iface.run_function(n, [iface.array_to_buffer(blocks.view(np.uint8)), out, written])
    words = blocks["bits"].copy().view("<u4").ravel()  # little-endian, as every backend
    pairs = blocks["codes"][:, 1:3].copy().view("<u2").ravel()
    np.testing.assert_array_equal(out.contents[0::2], words)
    np.testing.assert_array_equal(out.contents[1::2], pairs.astype(np.uint32) + blocks["scale"].astype(np.uint32))
    np.testing.assert_array_equal(written.contents.view("<u4"), ~words)


def test_threadgroup_reads_through_casts_at_odd_offsets(iface):
    load_kernel(iface, "unaligned_loads.metal", "unaligned_threadgroup_read")
    data = np.random.default_rng(8).integers(0, 256, 40).astype(np.uint8)
    out = iface.create_buffer(32, "uint")
    iface.run_function(32, [iface.array_to_buffer(data), out], threads_per_threadgroup=32)
    expected = np.array([data[i + 1:i + 5].view("<u4")[0] for i in range(32)], dtype=np.uint32)
    np.testing.assert_array_equal(out.contents, expected)


def test_a_kernels_c_named_function_called_with_a_half_takes_the_float_overload(iface):
    """A library's log1p(float) beside a log1p for a type any number converts to, called with a half from a
    template: Metal converts the half to float (a class on CUDA, where C++ found the call ambiguous)."""
    load_kernel(iface, "c_named_overloads.metal", "half_log1p")
    x = np.linspace(0.0, 3.0, 64).astype(np.float16)
    out = iface.create_buffer(64, "half")
    iface.run_function(64, [iface.array_to_buffer(x), out])
    expected = (np.log(np.float32(1) + x.astype(np.float32)) + np.float32(100)).astype(np.float16)
    np.testing.assert_allclose(out.contents.astype(np.float32), expected.astype(np.float32), rtol=1e-3)


def test_a_kernels_c_named_function_template_takes_the_half_as_it_is(iface):
    load_kernel(iface, "c_named_overloads.metal", "half_erf_template")
    x = np.linspace(-3.0, 3.0, 64).astype(np.float16)
    out = iface.create_buffer(64, "half")
    iface.run_function(64, [iface.array_to_buffer(x), out])
    np.testing.assert_array_equal(out.contents, x * np.float16(2))  # exact: doubling a half


def test_overloaded_kernel_templates_are_told_apart_by_their_template_arguments(iface):
    load_kernel(iface, "overloaded_kernel_templates.metal", "scaled_three")
    out = iface.create_buffer(16, "float")
    iface.run_function(16, [out])
    np.testing.assert_array_equal(out.contents, np.arange(16, dtype=np.float32) * 3 + 4)  # + sizeof(int)
    out, other = iface.create_buffer(16, "float"), iface.create_buffer(16, "float")
    iface.run_function(16, [out, other], "scaled_two")
    np.testing.assert_array_equal(out.contents, np.arange(16, dtype=np.float32) * 5)
    np.testing.assert_array_equal(other.contents, np.ones(16, dtype=np.float32))


def test_number_like_classes_convert_to_half(iface):
    # g++ 13 and later convert float to _Float16 (the cpu's half) only explicitly; Metal converts implicitly
    load_kernel(iface, "float_conversions.metal", "float_conversions")
    rng = np.random.default_rng(7)
    n = 64
    bits = rng.integers(110, 140, n, dtype=np.uint8)
    pairs = rng.uniform(-3000, 3000, (n, 2)).astype(np.float32)
    out = iface.create_buffer(5 * n, "half")
    whole = iface.create_buffer(2 * n, "int")
    iface.run_function(n, [iface.array_to_buffer(bits), iface.array_to_buffer(pairs), out, whole])
    powers = np.exp2(bits.astype(np.float64) - 127)
    got = out.contents.reshape(n, 5)
    for column in range(3):
        np.testing.assert_array_equal(got[:, column], powers.astype(np.float16))
    for column in (3, 4):  # rounded once, to nearest even
        np.testing.assert_array_equal(got[:, column], pairs[:, 0].astype(np.float16))
    np.testing.assert_array_equal(whole.contents.reshape(n, 2), np.stack([np.trunc(powers), np.trunc(pairs[:, 0])],
                                                                         axis=1).astype(np.int32))


def _newer_gxx() -> str | None:
    """A g++ 13 or later on PATH: the first to give _Float16 C++23's conversion rules."""
    for name in ("g++-15", "g++-14", "g++-13", "g++"):
        path = shutil.which(name)
        if path:
            version = subprocess.run([path, "-dumpversion"], capture_output=True, text=True).stdout.strip()
            if version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 13:
                return path
    return None


@pytest.mark.skipif(_newer_gxx() is None, reason="needs g++ 13 or later on PATH (this machine's g++ is older)")
def test_number_like_classes_compile_with_gxx_13_and_later(tmp_path):
    env = dict(os.environ, CXX=_newer_gxx(), METALGPU_CACHE_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "metalgpu", "check", str(KERNELS_DIR / "float_conversions.metal"),
                             "--target", "cpu"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "1 of 1 kernels compile" in result.stdout, result.stdout + result.stderr
