"""Lifetimes across threads and processes on the cpu backend: a buffer released from another thread while a
synchronous dispatch uses it keeps its memory until the dispatch ends; a child forked while another thread dispatches
works; run_function(..., function_name=) from 8 threads at once gives every thread its own kernel's results."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import metalgpu

pytestmark = pytest.mark.skipif("cpu" not in metalgpu.backends(), reason="needs the cpu backend")

SOURCE = """
#include <metal_stdlib>
using namespace metal;

// Writes `value` into every element for as long as stop[0] is 0, then once more.
kernel void keep_writing(device uint* data [[buffer(0)]], device const uint* stop [[buffer(1)]],
                         constant uint& value [[buffer(2)]], constant uint& count [[buffer(3)]],
                         uint id [[thread_position_in_grid]])
{
    do {
        for (uint i = 0; i < count; ++i) data[i] = value;
    } while (stop[0] == 0);
}

kernel void add_k(device const uint* in [[buffer(0)]], device uint* out [[buffer(1)]], constant uint& k [[buffer(2)]],
                  uint id [[thread_position_in_grid]])
{
    out[id] = in[id] + k;
}

kernel void times_k(device const uint* in [[buffer(0)]], device uint* out [[buffer(1)]],
                    constant uint& k [[buffer(2)]], uint id [[thread_position_in_grid]])
{
    out[id] = in[id] * k;
}
"""


@pytest.fixture(scope="module")
def gpu():
    with metalgpu.Interface(backend="cpu") as interface:
        interface.load_shader_from_string(SOURCE)
        yield interface


def test_release_from_another_thread_waits_for_the_running_dispatch(gpu):
    count = 1 << 14
    data, stop = gpu.create_buffer(count, "uint"), gpu.create_buffer(1, "uint")
    stop_view = stop.contents
    errors = []

    def dispatch():
        try:
            gpu.run_function(1, [data, stop, 0xABCD, count], function_name="keep_writing")
        except BaseException as error:  # noqa: BLE001  (checked below)
            errors.append(error)

    worker = threading.Thread(target=dispatch)
    worker.start()
    time.sleep(0.2)
    data.release()  # while the kernel writes it
    # Fresh memory the size of the released buffer: it must not receive the kernel's writes.
    others = [np.zeros(count, dtype=np.uint32) for _ in range(8)]
    fresh = [gpu.create_buffer(count, "uint") for _ in range(8)]
    time.sleep(0.1)
    stop_view[0] = 1
    worker.join(10)
    assert not worker.is_alive() and not errors, errors
    for array in others:
        assert not array.any()
    for buffer in fresh:
        assert not buffer.contents.any()
    with pytest.raises(metalgpu.BufferReleasedError):
        _ = data.contents


def test_run_function_by_name_from_8_threads(gpu):
    count = 4096
    data = gpu.array_to_buffer(np.arange(count, dtype=np.uint32))
    failures = []

    def work(k):
        out = gpu.create_buffer(count, "uint")
        name, expected = ("add_k", np.arange(count, dtype=np.uint32) + k) if k % 2 else \
            ("times_k", np.arange(count, dtype=np.uint32) * k)
        for _ in range(200):
            gpu.run_function(count, [data, out, k], function_name=name)
            if not np.array_equal(out.contents, expected):
                failures.append((k, name))
                return

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fork_while_another_thread_dispatches(gpu):
    count = 1 << 12
    data, stop = gpu.create_buffer(count, "uint"), gpu.create_buffer(1, "uint")
    worker = threading.Thread(target=gpu.run_function, args=(1, [data, stop, 7, count]),
                              kwargs={"function_name": "keep_writing"})
    worker.start()
    time.sleep(0.2)
    pid = os.fork()
    if pid == 0:  # the child: the parent's dispatching thread does not exist here
        status = 1
        try:
            source = gpu.array_to_buffer(np.arange(1 << 16, dtype=np.uint32))
            out = gpu.create_buffer(1 << 16, "uint")
            gpu.run_function(1 << 16, [source, out, 3], function_name="add_k")
            status = 0 if np.array_equal(out.contents, np.arange(1 << 16, dtype=np.uint32) + 3) else 2
        finally:
            os._exit(status)
    stop.contents[0] = 1
    worker.join(10)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    assert os.waitstatus_to_exitcode(status) == 0
    assert (data.contents == 7).all()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_has_its_own_copy_of_the_buffers(gpu):
    data = gpu.array_to_buffer(np.arange(1 << 16, dtype=np.uint32))
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            gpu.run_function(1 << 16, [data, data, 1], function_name="add_k")
            status = 0 if data.contents[5] == 6 else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    np.testing.assert_array_equal(data.contents, np.arange(1 << 16, dtype=np.uint32))  # the parent's, unchanged
