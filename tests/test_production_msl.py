"""Constructs of production MSL (PyTorch's MPS kernels, among others) that earlier stopped a whole file, each with
a kernel of our own, run on every backend. The kernels are in tests/kernels/, which test_cuda_translation.py also
compiles for CUDA with NVRTC."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_kernel


@pytest.mark.parametrize("dtype", ["float", "half"])
def test_kernel_template_overloads_told_apart_by_their_parameter_lists(iface, dtype):
    load_kernel(iface, "kernel_overloads_by_signature.metal", f"descend_{dtype}")
    np_type = np.float32 if dtype == "float" else np.float16
    start = np.arange(32).astype(np_type)
    x = iface.array_to_buffer(start.copy())
    iface.run_function(32, [x, np.float32(1.5)])
    np.testing.assert_array_equal(x.contents, start - np_type(1.5))  # exact: small multiples of 1/2
    x, velocity = iface.array_to_buffer(start.copy()), iface.array_to_buffer(np.full(32, 4, dtype=np_type))
    iface.run_function(32, [x, velocity, np.float32(0.5)], f"descend_velocity_{dtype}")
    np.testing.assert_array_equal(velocity.contents, np.full(32, 3, dtype=np_type))  # 4 * 0.5 + 1
    np.testing.assert_array_equal(x.contents, start - np_type(1.5))  # 0.5 * 3


def test_abs_among_the_fast_and_precise_functions(iface):
    load_kernel(iface, "precise_fast_abs.metal", "flavoured_abs")
    x = np.linspace(-4.0, 4.0, 33).astype(np.float32)
    out = iface.create_buffer(4 * 33, "float")
    iface.run_function(33, [iface.array_to_buffer(x), out])
    got = out.contents.reshape(33, 4)
    np.testing.assert_array_equal(got[:, 0], np.abs(x))
    np.testing.assert_array_equal(got[:, 1], np.abs(x - np.float32(1)))
    np.testing.assert_array_equal(got[:, 2], np.abs(x) * 3)  # exact: multiples of 1/4
    np.testing.assert_array_equal(got[:, 3], np.abs(x))      # each x is a half


def test_metals_min_and_max_beside_a_librarys_generic_ones(iface):
    load_kernel(iface, "generic_min_beside_metal.metal", "generic_min_beside_metal")
    a = np.arange(20, dtype=np.uint32)
    out = iface.create_buffer(3 * 20, "uint")
    iface.run_function(20, [iface.array_to_buffer(a), out])
    got = out.contents.reshape(20, 3)
    np.testing.assert_array_equal(got[:, 0], np.minimum(a, 10))
    np.testing.assert_array_equal(got[:, 1], np.maximum(a + 1, 10))
    np.testing.assert_array_equal(got[:, 2], np.where(a < 5, 1000, 2000))


def test_bfloat_converts_to_half(iface):
    load_kernel(iface, "bfloat_to_half_cast.metal", "bfloat_to_half")
    values = np.array([0.0, 1.0, -2.5, 0.15625, 384.0, -1e-3], dtype=np.float32)  # bfloat values exact in half
    bits = (values.view(np.uint32) >> 16).astype(np.uint16)  # the bfloat bit patterns (values chosen exact)
    out, doubled = iface.create_buffer(6, "half"), iface.create_buffer(6, "half")
    iface.run_function(6, [iface.array_to_buffer(bits).view("bfloat"), out, doubled])
    exact = (bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(out.contents, exact.astype(np.float16))
    np.testing.assert_array_equal(doubled.contents, (exact * 2).astype(np.float16))


def test_float_math_of_an_integer_argument(iface):
    load_kernel(iface, "math_of_integer_argument.metal", "math_of_integer")
    n = np.arange(1, 17, dtype=np.int32)
    out = iface.create_buffer(6 * 16, "float")
    iface.run_function(16, [iface.array_to_buffer(n), out])
    got = out.contents.reshape(16, 6)
    np.testing.assert_allclose(got[:, 0], np.log(n.astype(np.float64)) + n, rtol=2e-7)
    np.testing.assert_allclose(got[:, 1], np.sqrt(n.astype(np.float64)), rtol=2e-6)  # fast: a few ulp
    np.testing.assert_array_equal(got[:, 2], np.exp2(n - 3.0).astype(np.float32))  # exact: powers of two
    np.testing.assert_allclose(got[:, 3], np.log(4.0), rtol=2e-7)
    np.testing.assert_array_equal(got[:, 4], n.astype(np.float32))  # trunc(n) + fract(n) = n + 0, exact
    np.testing.assert_array_equal(got[:, 5], (n > 8) + 1.0)


def test_vector_type_traits_classify_as_their_elements(iface):
    load_kernel(iface, "vector_type_traits.metal", "vector_traits")
    z = np.random.default_rng(3).uniform(-2, 2, size=(16, 2)).astype(np.float32)
    out = iface.create_buffer(8 * 16, "float")
    iface.run_function(16, [iface.array_to_buffer(z), out])
    got = out.contents.reshape(16, 8)
    expected = np.exp(z[:, 0].astype(np.complex128) + 1j * z[:, 1])
    np.testing.assert_allclose(got[:, 0], expected.real, rtol=1e-5, atol=1e-6)  # two roundings of float32
    np.testing.assert_allclose(got[:, 1], expected.imag, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[:, 2], np.exp(z[:, 0].astype(np.float64)), rtol=2e-7)
    np.testing.assert_allclose(got[:, 3], np.exp(np.arange(16.0)), rtol=2e-7)
    np.testing.assert_array_equal(got[:, 4:], 1.0)
