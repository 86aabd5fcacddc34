"""metalgpu.from_dlpack, __cuda_array_interface__ (cuda) and the bounds-checked debug mode."""
from __future__ import annotations

import numpy as np
import pytest

import metalgpu

INCREMENT = """
#include <metal_stdlib>
using namespace metal;
kernel void increment(device int* data [[buffer(0)]], uint id [[thread_position_in_grid]]) { data[id] += 1; }
kernel void write_at(device int* out [[buffer(0)]], constant int& index [[buffer(1)]],
                     uint id [[thread_position_in_grid]]) { out[index] = 7; }
"""


def test_from_dlpack_shares_memory_with_the_source_array():
    source = np.arange(100, dtype=np.int32)
    buffer = metalgpu.from_dlpack(source)
    assert buffer.count == 100 and buffer.dtype == np.int32
    assert np.shares_memory(buffer.contents, source)
    with metalgpu.Interface("cpu") as gpu:
        gpu.load_shader_from_str(INCREMENT)
        buffer = metalgpu.from_dlpack(source, gpu)
        gpu.run_function(100, [buffer], function_name="increment")
    np.testing.assert_array_equal(source, np.arange(100) + 1)  # the kernel wrote the caller's own array


def test_from_dlpack_rejects_unsupported_input():
    with pytest.raises(metalgpu.ArgumentError):
        metalgpu.from_dlpack(np.arange(4, dtype=np.float64))  # Metal has no double


@pytest.mark.parametrize("index,where", [(100, "past its end"), (1023, "past its end"),
                                         (-1100, "before its start")])
def test_debug_mode_names_the_parameter_of_an_out_of_bounds_write(backend, index, where):
    # cpu: 100 ints end exactly at an inaccessible page: index 100 is the first byte past the end. -1100 leaves the
    # buffer's first page (an access just before the start, within that page, is not caught: docs/differences.md).
    # cuda: every access is tested against the buffer's length.
    with metalgpu.Interface(backend, debug=True) as gpu:
        gpu.load_shader_from_str(INCREMENT)
        out = gpu.create_buffer(100, "int")
        out.contents[:] = 0
        with pytest.raises(metalgpu.DispatchError, match=f"out-of-bounds.*'out'.*{where}"):
            gpu.run_function(1, [out, index], function_name="write_at")
        gpu.run_function(1, [out, 99], function_name="write_at")  # the interface still works
        assert out.contents[99] == 7 and out.contents[:99].sum() == 0


@pytest.fixture
def cuda_debug(backend):
    """An Interface on cuda with the bounds checks compiled in (cuda's debug mode; the cpu's is guard pages)."""
    if backend != "cuda":
        pytest.skip("bounds checks compiled into the kernels are the cuda backend's debug mode")
    with metalgpu.Interface("cuda", debug=True) as gpu:
        yield gpu


def test_cuda_debug_mode_checks_asynchronous_dispatches_and_pointer_arithmetic(cuda_debug):
    source = """
    #include <metal_stdlib>
    using namespace metal;
    kernel void shifted(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                        constant int& shift [[buffer(2)]], uint id [[thread_position_in_grid]]) {
        out[id] = (in + shift)[id] * 2.0f;
    }
    """
    gpu = cuda_debug
    gpu.load_shader_from_str(source)
    data = gpu.array_to_buffer(np.arange(64, dtype=np.float32))
    out = gpu.create_buffer(64, "float")
    gpu.run_function(32, [data, out, 32], function_name="shifted")  # in[32..63]: inside
    np.testing.assert_array_equal(out.contents[:32], 2 * np.arange(32, 64))
    dispatch = gpu.run_function(64, [data, out, 1], function_name="shifted", wait_for_completion=False)
    with pytest.raises(metalgpu.DispatchError, match="out-of-bounds.*'in'.*element 64 is past its end"):
        dispatch.wait()
    gpu.run_function(64, [data, out, 0], function_name="shifted")  # the context is still sound
    np.testing.assert_array_equal(out.contents, 2 * np.arange(64))


def test_cuda_debug_checks_of_dispatches_in_flight_use_their_own_buffers(cuda_debug):
    """A checked dispatch still running while the next one is launched must keep checking against its own buffers'
    sizes (and a fault must be reported by the dispatch that made it, not by the one that reads the record)."""
    source = """
    #include <metal_stdlib>
    using namespace metal;
    kernel void slow_copy(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                          constant uint& rounds [[buffer(2)]], uint id [[thread_position_in_grid]]) {
        float v = in[id];
        for (uint r = 0; r < rounds; ++r) v = fma(v, 1.0f, 0.0f);  // keeps the value, takes time
        out[id] = v;
    }
    """
    big, small = 1 << 22, 256
    gpu = cuda_debug
    gpu.load_shader_from_str(source)
    big_in = gpu.array_to_buffer(np.arange(big, dtype=np.float32))
    big_out, small_out = gpu.create_buffer(big, "float"), gpu.create_buffer(small, "float")
    small_in = gpu.array_to_buffer(np.arange(small, dtype=np.float32) + 0.5)
    slow = gpu.run_function(big, [big_in, big_out, 20000], function_name="slow_copy", wait_for_completion=False)
    quick = gpu.run_function(small, [small_in, small_out, 1], function_name="slow_copy",
                             wait_for_completion=False)
    faulty = gpu.run_function(small + 1, [small_in, small_out, 1], function_name="slow_copy",
                              wait_for_completion=False)
    slow.wait()  # in bounds: its checks must not have used the small buffers' sizes
    quick.wait()
    with pytest.raises(metalgpu.DispatchError, match="element 256 is past its end"):
        faulty.wait()
    np.testing.assert_array_equal(big_out.contents, np.arange(big, dtype=np.float32))
    np.testing.assert_array_equal(small_out.contents, np.arange(small, dtype=np.float32) + 0.5)


def test_cuda_debug_mode_warns_when_the_checks_do_not_fit_the_shader(cuda_debug):
    source = """
    #include <metal_stdlib>
    using namespace metal;
    template <typename T> void fill(device T* p, uint i) { p[i] = T(i); }  // deduces T from a raw pointer
    kernel void k(device float* out [[buffer(0)]], uint id [[thread_position_in_grid]]) { fill(out, id); }
    """
    gpu = cuda_debug
    with pytest.warns(RuntimeWarning, match="run unchecked"):
        gpu.load_shader_from_str(source)
    out = gpu.create_buffer(16, "float")
    gpu.run_function(16, [out], function_name="k")
    np.testing.assert_array_equal(out.contents, np.arange(16, dtype=np.float32))


def test_cuda_array_interface_is_only_on_cuda_buffers():
    with metalgpu.Interface("cpu") as gpu:
        buffer = gpu.create_buffer(4, "float3")
        assert not hasattr(buffer, "__cuda_array_interface__")


def test_cuda_array_interface_shares_memory_with_cupy(backend):
    if backend != "cuda":
        pytest.skip("__cuda_array_interface__ belongs to the cuda backend")
    cp = pytest.importorskip("cupy")
    with metalgpu.Interface("cuda") as gpu:
        gpu.load_shader_from_str(INCREMENT)
        data = gpu.array_to_buffer(np.arange(64, dtype=np.int32))
        view = cp.asarray(data)
        assert view.data.ptr == data.address
        gpu.run_function(64, [data], function_name="increment")
        np.testing.assert_array_equal(cp.asnumpy(view), np.arange(64) + 1)
        vectors = gpu.create_buffer(8, "float3")
        assert cp.asarray(vectors).strides == (16, 4)
