"""Batches (Interface.batch) on every backend: the dispatches recorded in a with block run in order as one
submission when it ends; replay() runs them again; recording the same kernels again reuses what the backend built
(a CUDA graph: replayed as it is, or updated in place when arguments changed); errors name the dispatch they come
from; host access to what a recording batch uses raises. Results are exact integers (uint arithmetic wraps alike
in numpy and in the kernels)."""
from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest

import metalgpu
from metalgpu.msl import abi

SOURCE = """
#include <metal_stdlib>
using namespace metal;

kernel void step(device uint* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = x[i] * 3u + 1u; }

kernel void add_into(device const uint* a [[buffer(0)]], device uint* b [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) { b[i] += a[i]; }

kernel void affine(device uint* x [[buffer(0)]], constant uint& a [[buffer(1)]], constant uint& b [[buffer(2)]],
                   uint i [[thread_position_in_grid]]) { x[i] = x[i] * a + b; }

// out[i] = table[i % 512]: a constant array too large to travel inside the launch (device memory on cuda)
kernel void lookup(device uint* out [[buffer(0)]], constant uint* table [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) { out[i] += table[i % 512u]; }

kernel void write_at(device uint* out [[buffer(0)]], constant uint& index [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) { out[index] = 7u; }
"""
N = 1 << 16


@pytest.fixture
def gpu(iface):
    iface.load_shader_from_str(SOURCE)
    return iface


def steps(values, count: int) -> np.ndarray:
    values = np.asarray(values).astype(np.uint32)
    for _ in range(count):
        values = values * np.uint32(3) + np.uint32(1)
    return values


def zeros(gpu, count: int = N):
    return gpu.array_to_buffer(np.zeros(count, dtype=np.uint32))


def graphs(gpu):
    """The CUDA backend's graph cache (builds, updates, replays), or None on other backends."""
    return getattr(gpu._backend, "graphs", None)


def test_a_batch_runs_its_dispatches_in_order(gpu):
    x, total = gpu.array_to_buffer(np.arange(N, dtype=np.uint32)), zeros(gpu)
    with gpu.batch() as batch:
        for _ in range(3):
            assert gpu.run_function(N, [x], function_name="step") is None
            gpu.run_function(N, [x, total], function_name="add_into")
    assert len(batch) == 6 and batch.kernel_names == ["step", "add_into"] * 3
    expected = [steps(np.arange(N), k) for k in (1, 2, 3)]
    np.testing.assert_array_equal(x.contents, expected[-1])
    np.testing.assert_array_equal(total.contents, sum(expected))
    assert batch.done
    assert batch.gpu_time is None or batch.gpu_time >= 0


def test_replay_runs_the_same_dispatches_again(gpu):
    x = gpu.array_to_buffer(np.arange(N, dtype=np.uint32))
    with gpu.batch() as batch:
        gpu.run_function(N, [x], function_name="step")
        gpu.run_function(N, [x, 5, 1], function_name="affine")
    for _ in range(3):
        assert batch.replay() is batch
    expected = np.arange(N, dtype=np.uint32)
    for _ in range(4):
        expected = steps(expected, 1) * np.uint32(5) + np.uint32(1)
    np.testing.assert_array_equal(x.contents, expected)
    if graphs(gpu) is not None:
        assert (graphs(gpu).builds, graphs(gpu).replays, graphs(gpu).updates) == (1, 3, 0)


def test_recording_the_same_kernels_and_buffers_again_reuses_the_batch(gpu):
    x, total = gpu.array_to_buffer(np.arange(N, dtype=np.uint32)), zeros(gpu)
    for _ in range(5):
        with gpu.batch():
            gpu.run_function(N, [x], function_name="step")
            gpu.run_function(N, [x, total], function_name="add_into")
    expected = [steps(np.arange(N), k) for k in range(1, 6)]
    np.testing.assert_array_equal(total.contents, sum(expected))
    if graphs(gpu) is not None:  # one graph, replayed: the launches of cached plans are the same objects
        assert (graphs(gpu).builds, graphs(gpu).replays, graphs(gpu).updates) == (1, 4, 0)


def test_changed_scalar_arguments_update_the_batch_in_place(gpu):
    x = gpu.array_to_buffer(np.arange(N, dtype=np.uint32))
    expected = np.arange(N, dtype=np.uint32)
    for k in range(1, 6):
        with gpu.batch():
            gpu.run_function(N, [x, k, 1], function_name="affine")
            gpu.run_function(N, [x, 2, 3], function_name="affine")  # the same values every time
        expected = (expected * np.uint32(k) + np.uint32(1)) * np.uint32(2) + np.uint32(3)
        np.testing.assert_array_equal(x.contents, expected)
    if graphs(gpu) is not None:  # one graph, its first node updated four times, never instantiated again
        assert (graphs(gpu).builds, graphs(gpu).updates) == (1, 4)


def test_other_buffers_for_the_same_kernels_update_the_batch_in_place(gpu):
    pairs = [(gpu.array_to_buffer(np.full(N, k, dtype=np.uint32)), zeros(gpu)) for k in (1, 2)]
    for round_ in range(4):
        x, total = pairs[round_ % 2]
        with gpu.batch():
            gpu.run_function(N, [x], function_name="step")
            gpu.run_function(N, [x, total], function_name="add_into")
    for k, (x, total) in zip((1, 2), pairs):
        np.testing.assert_array_equal(x.contents, steps(np.full(N, k), 2))
        np.testing.assert_array_equal(total.contents, steps(np.full(N, k), 1) + steps(np.full(N, k), 2))
    if graphs(gpu) is not None:
        assert (graphs(gpu).builds, graphs(gpu).updates) == (1, 3)


def test_a_constant_array_kept_by_the_batch_for_its_replays(gpu):
    out = zeros(gpu)
    tables = [np.arange(512, dtype=np.uint32) * k for k in (1, 10)]
    with gpu.batch() as batch:
        gpu.run_function(N, [out, tables[0]], function_name="lookup")
    batch.replay()
    with gpu.batch():  # the same kernel with another table
        gpu.run_function(N, [out, tables[1]], function_name="lookup")
    index = np.arange(N) % 512
    np.testing.assert_array_equal(out.contents, 2 * tables[0][index] + tables[1][index])


def test_errors_while_recording_name_the_dispatch_and_nothing_runs(gpu):
    x, total = gpu.array_to_buffer(np.arange(N, dtype=np.uint32)), zeros(gpu)
    floats = gpu.create_buffer(N, "float")
    with pytest.raises(metalgpu.ArgumentError) as caught:
        with gpu.batch():
            gpu.run_function(N, [x], function_name="step")
            gpu.run_function(N, [x, total], function_name="add_into")
            gpu.run_function(N, [x, floats], function_name="add_into")
    assert str(caught.value).startswith("batch dispatch 2 (kernel 'add_into'): ")
    assert caught.value.batch_index == 2 and caught.value.kernel_name == "add_into"
    with pytest.raises(metalgpu.FunctionNotFoundError, match="batch dispatch 1 \\(kernel 'nope'\\)"):
        with gpu.batch():
            gpu.run_function(N, [x], function_name="step")
            gpu.run_function(N, [x], function_name="nope")
    np.testing.assert_array_equal(x.contents, np.arange(N))  # neither batch ran
    assert not total.contents.any()


def test_a_fault_while_the_batch_runs_names_the_dispatch(backend):
    """debug=True checks every access (compiled bounds checks on cuda, guard pages on the cpu): the dispatch that
    writes past the end of its buffer is named, and the Interface stays usable."""
    with metalgpu.Interface(backend, debug=True) as gpu:
        gpu.load_shader_from_str(SOURCE)
        out = zeros(gpu, 64)
        with pytest.raises(metalgpu.DispatchError) as caught:
            with gpu.batch():
                gpu.run_function(1, [out, 3], function_name="write_at")
                gpu.run_function(64, [out], function_name="step")
                gpu.run_function(1, [out, 64], function_name="write_at")  # one past the end
                gpu.run_function(64, [out], function_name="step")
        assert str(caught.value).startswith("batch dispatch 2 (kernel 'write_at'): ")
        assert caught.value.batch_index == 2
        out.contents[:] = 0
        gpu.run_function(64, [out], function_name="step")
        np.testing.assert_array_equal(out.contents, 1)


def test_host_access_while_recording_raises(gpu):
    written, read_only, untouched = (gpu.array_to_buffer(np.arange(N, dtype=np.uint32)) for _ in range(3))
    with gpu.batch():
        gpu.run_function(N, [read_only, written], function_name="add_into")
        with pytest.raises(metalgpu.MetalError, match="contents of a buffer that the batch being recorded writes"):
            _ = written.contents
        with pytest.raises(metalgpu.MetalError, match="read\\(\\) of a buffer that the batch .* writes"):
            written.read()
        with pytest.raises(metalgpu.MetalError, match="write\\(\\) of a buffer that the batch .* reads"):
            read_only.write(np.zeros(N, dtype=np.uint32))
        with pytest.raises(metalgpu.MetalError, match="contents of a buffer that the batch .* reads"):
            _ = read_only.contents
        with pytest.raises(metalgpu.MetalError, match="release\\(\\) of a buffer"):
            written.release()
        with pytest.raises(metalgpu.MetalError, match="release\\(\\) of a buffer"):
            read_only.view("int").release()  # a view of it is the same memory
        np.testing.assert_array_equal(read_only.read(), np.arange(N))  # reading what the batch only reads is fine
        untouched.contents[:] = 1  # and what it does not use is free
    np.testing.assert_array_equal(written.contents, 2 * np.arange(N))
    np.testing.assert_array_equal(untouched.contents, 1)


def test_an_exception_inside_discards_the_batch(gpu):
    x = gpu.array_to_buffer(np.zeros(N, dtype=np.uint32))
    with pytest.raises(ZeroDivisionError):
        with gpu.batch() as batch:
            gpu.run_function(N, [x], function_name="step")
            raise ZeroDivisionError
    assert not x.contents.any()
    with pytest.raises(metalgpu.MetalError, match="discarded"):
        batch.replay()
    with gpu.batch():
        gpu.run_function(N, [x], function_name="step")
    np.testing.assert_array_equal(x.contents, 1)


def test_batches_do_not_nest_and_record_once(gpu):
    x = zeros(gpu)
    with gpu.batch() as outer:
        with pytest.raises(metalgpu.MetalError, match="do not nest"):
            with gpu.batch():
                pass
        gpu.run_function(N, [x], function_name="step")
        with pytest.raises(metalgpu.MetalError, match="while it records"):
            outer.wait()
    with pytest.raises(metalgpu.MetalError, match="recorded once"):
        with outer:
            pass
    with pytest.raises(metalgpu.MetalError, match="only a recorded batch"):
        gpu.batch().replay()
    np.testing.assert_array_equal(x.contents, 1)


def test_an_asynchronous_batch_and_its_handles(gpu):
    x = gpu.array_to_buffer(np.arange(N, dtype=np.uint32))
    with gpu.batch(wait=False) as batch:
        member = gpu.run_function(N, [x], function_name="step", wait_for_completion=False)
        with pytest.raises(metalgpu.MetalError, match="still recording"):
            member.wait()
        gpu.run_function(N, [x], function_name="step")
    np.testing.assert_array_equal(x.contents, steps(np.arange(N), 2))  # waits for the batch
    member.wait()
    batch.wait()
    assert member.done and batch.done
    batch.replay(wait=False)
    batch.wait()
    np.testing.assert_array_equal(x.read(), steps(np.arange(N), 4))


def test_another_thread_dispatches_at_once_while_a_batch_records(gpu):
    x, y = zeros(gpu), zeros(gpu)
    seen = []

    def dispatch():
        context = getattr(gpu._backend, "context", None)  # cuda: a context is current per thread
        if context is not None:
            gpu._backend.driver.cuCtxSetCurrent(context)
        gpu.run_function(N, [y], function_name="step")
        seen.append(y.contents.copy())

    with gpu.batch():
        gpu.run_function(N, [x], function_name="step")
        worker = threading.Thread(target=dispatch)
        worker.start()
        worker.join(60)
    assert len(seen) == 1 and (seen[0] == 1).all()
    np.testing.assert_array_equal(x.contents, 1)


def test_elementwise_operations_are_recorded_too(gpu):
    a = gpu.array_to_buffer(np.arange(64, dtype=np.float32))
    b = gpu.array_to_buffer(np.full(64, 2.0, dtype=np.float32))
    with gpu.batch() as batch:
        c = a * b + a
        with pytest.raises(metalgpu.MetalError, match="writes"):
            _ = c.contents
    assert len(batch) == 2
    np.testing.assert_array_equal(c.contents, np.arange(64) * 3.0)


def test_an_empty_batch_and_a_released_buffer(gpu):
    with gpu.batch() as empty:
        pass
    assert len(empty) == 0 and empty.done and empty.replay() is empty
    x = zeros(gpu)
    with gpu.batch() as batch:
        gpu.run_function(N, [x], function_name="step")
    x.release()
    with pytest.raises(metalgpu.BufferReleasedError, match="record the batch again"):
        batch.replay()


def test_cpu_a_batch_runs_in_one_native_call():
    if "cpu" not in metalgpu.backends():
        pytest.skip("needs the cpu backend")
    with metalgpu.Interface("cpu") as gpu:
        gpu.load_shader_from_str(SOURCE)
        x = gpu.array_to_buffer(np.arange(N, dtype=np.uint32))
        gpu.run_function(N, [x], function_name="step")
        backend = gpu._backend
        calls = []
        run_native = backend._run_native
        backend._run_native = lambda *args: calls.append(args) or run_native(*args)  # one call per plain dispatch
        with gpu.batch() as batch:
            for _ in range(20):
                gpu.run_function(N, [x], function_name="step")
        batch.replay(wait=False)
        batch.wait()
        assert calls == []
        np.testing.assert_array_equal(x.contents, steps(np.arange(N), 41))


def test_cpu_a_timeout_inside_a_batch_names_the_dispatch():
    if "cpu" not in metalgpu.backends():
        pytest.skip("needs the cpu backend")
    spin = ("kernel void spin(device const uint* stop [[buffer(0)]], device uint* out [[buffer(1)]], "
            "uint i [[thread_position_in_grid]]) { uint n = 0; while (stop[0] == 0) n++; out[i] = n; }")
    with metalgpu.Interface("cpu") as gpu:
        gpu.load_shader_from_str(SOURCE + spin)
        stop, out = gpu.create_buffer(1, "uint"), gpu.create_buffer(1, "uint")
        for wait in (True, False):
            with pytest.raises(metalgpu.DispatchError, match="batch dispatch 1 \\(kernel 'spin'\\): .*timeout"):
                with gpu.batch(wait=wait) as batch:
                    gpu.run_function(1, [out], function_name="step")
                    gpu.run_function(1, [stop, out], function_name="spin", timeout=0.3)
                    gpu.run_function(1, [out], function_name="step")
                batch.wait()
        assert out.contents[0] == 4  # each batch's first dispatch ran (0 -> 1 -> 4), the spin and the last did not


def test_cpu_queue_records_are_msl_abis():
    """cpu_queue.cpp's field indices are msl/abi.py's."""
    if "cpu" not in metalgpu.backends():
        pytest.skip("needs the cpu backend")
    with metalgpu.Interface("cpu") as gpu:
        layout = (ctypes.c_int64 * 16)()
        gpu._backend.native.mg_queue_layout(layout)
    entries, statuses = abi.CPU_QUEUE_ENTRY_FIELDS, abi.CPU_QUEUE_STATUS_FIELDS
    assert list(layout[:7]) == [entries.index(name) for name in ("run", "slots", "record", "groups", "threads",
                                                                 "chunks", "timeout_ms")]
    assert layout[7] == len(entries)
    assert list(layout[8:13]) == [statuses.index(name) for name in ("state", "status", "failed_index", "address",
                                                                    "nanoseconds")]
    assert layout[13] == statuses.index("report0") and layout[14] == len(statuses)
    assert layout[15] == abi.STATUS_CANCELLED
