"""Asynchronous dispatches on every backend: they run in the order they were made (each sees what the one before
wrote), and host access to a buffer (contents, read(), write(), release()) waits for the dispatches that use it,
so the host never reads a result too early nor changes an input under a kernel still reading it. Results are
exact integers: uint arithmetic wraps the same in numpy and in every backend's kernels."""
from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest

import metalgpu

SOURCE = """
#include <metal_stdlib>
using namespace metal;

kernel void step(device uint* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = x[i] * 3u + 1u; }

kernel void add_into(device const uint* a [[buffer(0)]], device uint* b [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) { b[i] += a[i]; }

kernel void affine(device uint* x [[buffer(0)]], constant uint& a [[buffer(1)]], constant uint& b [[buffer(2)]],
                   uint i [[thread_position_in_grid]]) { x[i] = x[i] * a + b; }

// Copies `in` to `out` after `rounds` rounds of work (v goes 1, 1.5, 1.75, ... and is exactly 2 from 25 rounds on):
// a kernel that reads its input late.
kernel void copy_slowly(device const uint* in [[buffer(0)]], device uint* out [[buffer(1)]],
                        constant uint& rounds [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    float v = 0.0f;
    for (uint r = 0; r < rounds; ++r) v = fma(v, 0.5f, 1.0f);
    out[i] = in[i] + uint(v) - 2u;
}

// Spins until stop[0] is set: each round stores through `out`, which may alias `stop`, so stop is read anew.
kernel void spin(device const uint* stop [[buffer(0)]], device uint* out [[buffer(1)]],
                 uint i [[thread_position_in_grid]]) {
    uint n = 0;
    while (stop[0] == 0) out[i] = ++n;
}
"""
N = 1 << 16


@pytest.fixture
def gpu(iface):
    iface.load_shader_from_str(SOURCE)
    return iface


def steps(values: np.ndarray, count: int) -> np.ndarray:
    values = values.astype(np.uint32)
    for _ in range(count):
        values = values * np.uint32(3) + np.uint32(1)
    return values


def test_dependent_asynchronous_dispatches_run_in_order(gpu):
    start = np.arange(N, dtype=np.uint32)
    x = gpu.array_to_buffer(start)
    gpu.set_function("step")
    handles = [gpu.run_function(N, [x], wait_for_completion=False) for _ in range(50)]  # a cached plan after one
    assert all(isinstance(handle, metalgpu.Dispatch) for handle in handles)
    np.testing.assert_array_equal(x.contents, steps(start, 50))  # contents waits for the last one
    assert all(handle.done for handle in handles)


def test_two_kernels_take_turns_on_shared_buffers(gpu):
    start = np.arange(N, dtype=np.uint32)
    x, total = gpu.array_to_buffer(start), gpu.array_to_buffer(np.zeros(N, dtype=np.uint32))
    expected_x, expected_total = start.copy(), np.zeros(N, dtype=np.uint32)
    for _ in range(20):
        gpu.run_function(N, [x], function_name="step", wait_for_completion=False)
        gpu.run_function(N, [x, total], function_name="add_into", wait_for_completion=False)
        expected_x = steps(expected_x, 1)
        expected_total += expected_x
    gpu.synchronize()
    np.testing.assert_array_equal(total.contents, expected_total)
    np.testing.assert_array_equal(x.contents, expected_x)


def test_constant_arguments_of_asynchronous_dispatches_are_their_own(gpu):
    # Each dispatch packs its own constants: a later one must not change what an earlier one, still queued, reads.
    x = gpu.array_to_buffer(np.arange(N, dtype=np.uint32))
    expected = np.arange(N, dtype=np.uint32)
    for k in range(1, 30):
        gpu.run_function(N, [x, k, 2 * k + 1], function_name="affine", wait_for_completion=False)
        expected = expected * np.uint32(k) + np.uint32(2 * k + 1)
    np.testing.assert_array_equal(x.read(), expected)


def test_the_host_reads_what_an_asynchronous_dispatch_wrote(gpu):
    source = gpu.array_to_buffer(np.arange(N, dtype=np.uint32) * 7)
    for read in (lambda buffer: buffer.contents.copy(), lambda buffer: buffer.read()):
        out = gpu.create_buffer(N, "uint")
        gpu.run_function(N, [source, out, 2000], function_name="copy_slowly", wait_for_completion=False)
        np.testing.assert_array_equal(read(out), np.arange(N, dtype=np.uint32) * 7)


@pytest.mark.parametrize("how", ["contents", "write"])
def test_a_host_write_waits_for_the_dispatches_reading_the_buffer(gpu, how):
    values = np.arange(N, dtype=np.uint32) + 5
    source, out = gpu.array_to_buffer(values), gpu.create_buffer(N, "uint")
    gpu.run_function(N, [source, out, 2000], function_name="copy_slowly", wait_for_completion=False)
    if how == "contents":
        source.contents[:] = 0  # only once the copy has read the values
    else:
        source.write(np.zeros(N, dtype=np.uint32))
    np.testing.assert_array_equal(out.contents, values)
    assert not source.contents.any()


def test_a_host_write_between_dispatches_is_seen_by_the_next(gpu):
    x = gpu.array_to_buffer(np.arange(N, dtype=np.uint32))
    gpu.set_function("step")
    for _ in range(3):
        gpu.run_function(N, [x], wait_for_completion=False)
    x.contents[:] = 5  # waits for the three; the next dispatch reads 5
    gpu.run_function(N, [x], wait_for_completion=False)
    gpu.run_function(N, [x], wait_for_completion=False)
    np.testing.assert_array_equal(x.contents, 5 * 9 + 3 + 1)


def test_release_between_asynchronous_dispatches(gpu):
    x = gpu.array_to_buffer(np.arange(N, dtype=np.uint32))
    view = x.view("uint")  # keeps the memory: what the dispatch wrote stays readable after x is released
    gpu.set_function("step")
    for _ in range(2):
        gpu.run_function(N, [x], wait_for_completion=False)
    x.release()  # waits for the dispatches using it
    with pytest.raises(metalgpu.BufferReleasedError):
        gpu.run_function(N, [x], wait_for_completion=False)
    y = gpu.array_to_buffer(np.arange(N, dtype=np.uint32))
    gpu.run_function(N, [y], wait_for_completion=False)
    np.testing.assert_array_equal(view.contents, steps(np.arange(N), 2))
    np.testing.assert_array_equal(y.contents, steps(np.arange(N), 1))


def test_waiting_polling_and_timing_handles(gpu):
    x = gpu.array_to_buffer(np.zeros(N, dtype=np.uint32))
    gpu.set_function("step")
    first = gpu.run_function(N, [x], wait_for_completion=False)
    first.wait()
    first.wait()  # again: harmless
    assert first.gpu_time is None or first.gpu_time >= 0  # cuda: may have none, and times the later ones
    second = gpu.run_function(N, [x], wait_for_completion=False)
    deadline = time.monotonic() + 30
    while not second.done:
        assert time.monotonic() < deadline
    assert second.gpu_time is not None and second.gpu_time >= 0
    np.testing.assert_array_equal(x.contents, 4)


def test_synchronize_waits_for_every_handle(gpu):
    x = gpu.array_to_buffer(np.zeros(N, dtype=np.uint32))
    gpu.set_function("step")
    handles = [gpu.run_function(N, [x], wait_for_completion=False) for _ in range(10)]
    gpu.synchronize()
    assert all(handle.done for handle in handles)
    np.testing.assert_array_equal(x.contents, steps(np.zeros(N), 10))


def test_cpu_a_buffer_no_pending_dispatch_uses_is_not_waited_for():
    """While a dispatch runs (it spins until told to stop), the host uses another buffer freely, and the
    dispatch sees the host's write to its stop flag."""
    if "cpu" not in metalgpu.backends():
        pytest.skip("needs the cpu backend")
    with metalgpu.Interface("cpu", timeout=20) as gpu:  # a wait that hung would end in DispatchError
        gpu.load_shader_from_str(SOURCE)
        stop, out, other = (gpu.create_buffer(1, "uint"), gpu.create_buffer(1, "uint"),
                            gpu.array_to_buffer(np.arange(8, dtype=np.uint32)))
        stop_view = stop.contents  # taken before the dispatch: writing it later needs no wait
        spinning = gpu.run_function(1, [stop, out], function_name="spin", wait_for_completion=False)
        started = time.monotonic()
        other.contents[:] += 1  # not used by the spinning dispatch: no wait
        assert other.read().tolist() == list(range(1, 9))
        assert time.monotonic() - started < 5 and not spinning.done
        stop_view[0] = 1
        spinning.wait()  # ends: the kernel saw the write (else its timeout raises DispatchError)


def test_cpu_asynchronous_dispatches_start_no_python_thread():
    if "cpu" not in metalgpu.backends():
        pytest.skip("needs the cpu backend")
    with metalgpu.Interface("cpu") as gpu:
        gpu.load_shader_from_str(SOURCE)
        x = gpu.array_to_buffer(np.zeros(N, dtype=np.uint32))
        before = threading.active_count()
        for _ in range(100):
            gpu.run_function(N, [x], function_name="step", wait_for_completion=False)
        assert threading.active_count() == before
        np.testing.assert_array_equal(x.contents, steps(np.zeros(N), 100))


@pytest.mark.parametrize("kind, size, scalar", [("float", 4, "float"), ("signed", 4, "int"), ("unsigned", 4, "uint"),
                                                ("signed", 8, "long"), ("unsigned", 8, "ulong"),
                                                ("signed", 2, "short"), ("unsigned", 2, "ushort")])
def test_scalar_constants_pack_as_pack_values_packs_them(kind, size, scalar):
    """A one-value constant argument takes a quicker path than pack_values (dispatch._pack_scalar_quickly): the
    same bytes for every value it takes, and the same errors for every value it refuses."""
    from metalgpu.dispatch import pack_constant
    from metalgpu.msl.abi import BindingInfo
    from metalgpu.types import pack_values, resolve_type

    binding = BindingInfo(0, "buffer", 1, size, True, True, kind, size, 1)
    values = [0, 1, 7, -1, -2**31, 2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1, 2**64, 3.0, 2.5, -0.0, 1e-40,
              3.4028235e38, 3.5e38, 1e300, float("inf"), float("nan"), np.float32(0.1), np.float64(0.1),
              np.int32(-5), np.uint32(4000000000), np.uint64(2**63), np.int64(-(2**40)), True, np.int8(-3)]
    for value in values:
        try:
            expected = pack_values(value, resolve_type(scalar))
        except metalgpu.ArgumentError as error:
            with pytest.raises(metalgpu.ArgumentError, match=re.escape(str(error))):
                pack_constant(value, binding, "p")
            continue
        data, address = pack_constant(value, binding, "p")
        assert data.tobytes() == expected and address == data.ctypes.data and address % 64 == 0, (value, scalar)
