"""The original's later API: metalgpu.sqrt/cos/sin/tan(buffer), buffer arithmetic and astype()."""
from __future__ import annotations

import numpy as np
import pytest

import metalgpu
from conftest import load_kernel

N = 1000


def floats(low, high, seed=0):
    return np.random.default_rng(seed).uniform(low, high, N).astype(np.float32)


# Metal's fast-math bounds: sin/cos have an absolute error <= 2**-13 on [-pi, pi]; tan = sin/cos with
# cos >= 0.54 on [-1, 1] stays within ~4 * 2**-13; sqrt is within a few ulp (rtol 1e-6 ~ 8 ulp).
UNARY_CASES = [
    ("sqrt", np.sqrt, (0.0, 1e4), dict(rtol=1e-6, atol=0)),
    ("cos", np.cos, (-np.pi, np.pi), dict(rtol=0, atol=2**-13)),
    ("sin", np.sin, (-np.pi, np.pi), dict(rtol=0, atol=2**-13)),
    ("tan", np.tan, (-1.0, 1.0), dict(rtol=0, atol=4 * 2**-13)),
]


@pytest.mark.parametrize("name, reference, domain, tolerance", UNARY_CASES, ids=[c[0] for c in UNARY_CASES])
def test_module_unary_functions(iface, name, reference, domain, tolerance):
    x = floats(*domain)
    source = iface.array_to_buffer(x)
    result = getattr(metalgpu, name)(source)
    assert isinstance(result, metalgpu.Buffer) and result is not source
    assert result.count == N and result.dtype == np.float32
    np.testing.assert_allclose(result.read(), reference(x.astype(np.float64)), **tolerance)
    np.testing.assert_array_equal(source.contents, x)  # the input is untouched


def test_unary_function_leaves_the_users_shader_selected(iface):
    load_kernel(iface, "buffers.metal", "increment")
    data = iface.array_to_buffer(np.arange(10, dtype=np.int32))
    metalgpu.sqrt(iface.array_to_buffer(floats(0, 1)))
    assert set(iface.function_names) == {"double_it", "increment"}
    iface.run_function(10, [data])  # still "increment", with no reload
    np.testing.assert_array_equal(data.contents, np.arange(10) + 1)


def test_buffer_arithmetic(iface):
    a = floats(1, 100, seed=1)
    b = floats(1, 100, seed=2)
    a_buf = iface.array_to_buffer(a)
    b_buf = iface.array_to_buffer(b)
    # +, -, * round once, exactly as numpy does.
    np.testing.assert_array_equal((a_buf + b_buf).read(), a + b)
    np.testing.assert_array_equal((a_buf - b_buf).read(), a - b)
    np.testing.assert_array_equal((a_buf * b_buf).read(), a * b)
    # Fast-math division is allowed 2.5 ulp: rtol 1e-6.
    np.testing.assert_allclose((a_buf / b_buf).read(), a / b, rtol=1e-6, atol=0)


def test_buffer_arithmetic_on_ints(iface):
    a = iface.array_to_buffer(np.arange(N, dtype=np.int32))
    b = iface.array_to_buffer(np.full(N, 3, dtype=np.int32))
    total = a + b
    assert total.dtype == np.int32
    np.testing.assert_array_equal(total.read(), np.arange(N) + 3)
    np.testing.assert_array_equal((a * b).read(), np.arange(N) * 3)


def test_astype_converts_like_metal(iface):
    values = np.array([1.5, -2.7, 3.0, 0.0, 100.9], dtype=np.float32)
    as_int = iface.array_to_buffer(values).astype("int")
    assert as_int.dtype == np.int32
    np.testing.assert_array_equal(as_int.read(), [1, -2, 3, 0, 100])  # truncation toward zero, as in C++
    back = as_int.astype(np.float32)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.read(), [1.0, -2.0, 3.0, 0.0, 100.0])
