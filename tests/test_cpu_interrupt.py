"""Stopping kernels on the cpu backend: a timeout raises DispatchError, Ctrl-C during a synchronous dispatch raises
KeyboardInterrupt within a fraction of a second, and the Interface works afterwards; a hung asynchronous dispatch
does not keep the interpreter from exiting."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import metalgpu
from conftest import REPO_ROOT

pytestmark = pytest.mark.skipif("cpu" not in metalgpu.backends(), reason="needs the cpu backend")

# The loops poll a flag with atomic loads, which the compiler must repeat (a plain load it may take out of the loop),
# so that setting the flag ends them: the fail-safe of the tests below.
SOURCE = """
#include <metal_stdlib>
using namespace metal;

kernel void spin(device atomic_uint* stop [[buffer(0)]], device uint* out [[buffer(1)]],
                 uint id [[thread_position_in_grid]])
{
    uint n = 0;
    while (atomic_load_explicit(stop, memory_order_relaxed) == 0) n++;
    out[id] = n;
}

kernel void spin_at_barrier(device atomic_uint* stop [[buffer(0)]], device uint* out [[buffer(1)]],
                            uint id [[thread_position_in_grid]])
{
    uint n = 0;
    while (atomic_load_explicit(stop, memory_order_relaxed) == 0) n++;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[id] = n;
}

kernel void twice(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                  uint id [[thread_position_in_grid]])
{
    out[id] = 2.0f * in[id];
}
"""


@pytest.fixture(scope="module")
def gpu():
    with metalgpu.Interface(backend="cpu") as interface:
        interface.load_shader_from_string(SOURCE)
        yield interface


def check_still_usable(gpu):
    data = gpu.array_to_buffer(np.arange(1 << 16, dtype=np.float32))
    out = gpu.create_buffer(1 << 16, "float")
    gpu.run_function(1 << 16, [data, out], function_name="twice")
    np.testing.assert_array_equal(out.contents, 2 * np.arange(1 << 16, dtype=np.float32))


@pytest.mark.parametrize("kernel, grid", [("spin", 1), ("spin", 1 << 16), ("spin_at_barrier", 64)])
def test_a_timeout_stops_an_endless_kernel(gpu, kernel, grid):
    stop = gpu.create_buffer(1, "uint")
    out = gpu.create_buffer(grid, "uint")
    started = time.monotonic()
    with pytest.raises(metalgpu.DispatchError, match=f"'{kernel}' ran longer than its timeout of 0.5 s"):
        gpu.run_function(grid, [stop, out], function_name=kernel, timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 3
    check_still_usable(gpu)


def test_the_interface_default_timeout_and_an_asynchronous_dispatch():
    with metalgpu.Interface(backend="cpu", timeout=0.3) as gpu:
        gpu.load_shader_from_string(SOURCE)
        stop, out = gpu.create_buffer(1, "uint"), gpu.create_buffer(1, "uint")
        dispatch = gpu.run_function(1, [stop, out], function_name="spin", wait_for_completion=False)
        with pytest.raises(metalgpu.DispatchError, match="timeout of 0.3 s"):
            dispatch.wait()
        stop.contents[0] = 1  # now it ends by itself
        gpu.run_function(1, [stop, out], function_name="spin")
        assert out.contents[0] == 0


@pytest.mark.parametrize("timeout", [0, -1, "1", True])
def test_a_bad_timeout_is_an_argument_error(gpu, timeout):
    with pytest.raises(metalgpu.ArgumentError, match="timeout"):
        gpu.run_function(1, [gpu.create_buffer(1, "uint"), gpu.create_buffer(1, "uint")], function_name="spin",
                         timeout=timeout)


# In a process of its own: the signal dispositions are process-wide, and libraries an earlier test loaded (Dask's
# distributed, tornado, matplotlib) may have changed them; the Ctrl-C a user presses meets a fresh interpreter's.
CTRL_C_SCRIPT = textwrap.dedent('''
    import os, signal, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import metalgpu
    from test_cpu_interrupt import SOURCE

    kernel, grid = sys.argv[2], int(sys.argv[3])
    gpu = metalgpu.Interface(backend="cpu")
    gpu.load_shader_from_string(SOURCE)
    stop, out = gpu.create_buffer(1, "uint"), gpu.create_buffer(grid, "uint")
    stop.contents[0] = 1
    gpu.run_function(grid, [stop, out], function_name=kernel)  # ends at once; our handler is in place
    stop.contents[0] = 0
    signal.signal(signal.SIGINT, signal.getsignal(signal.SIGINT))  # as libraries do: Python's handler again
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        gpu.run_function(grid, [stop, out], function_name=kernel)
        print("NOT INTERRUPTED")
    except KeyboardInterrupt:
        print(f"INTERRUPTED {time.monotonic() - started:.3f}")
    data = gpu.array_to_buffer(np.arange(64, dtype=np.float32))
    twice = gpu.create_buffer(64, "float")
    gpu.run_function(64, [data, twice], function_name="twice")
    print("USABLE" if (twice.contents == 2 * np.arange(64)).all() else "BROKEN")
''')


@pytest.mark.parametrize("kernel, grid", [("spin", 1), ("spin", 1 << 16), ("spin_at_barrier", 64)])
def test_ctrl_c_stops_a_synchronous_dispatch(tmp_path, kernel, grid):
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    result = subprocess.run([sys.executable, str(script), str(REPO_ROOT / "tests"), kernel, str(grid)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "INTERRUPTED" and lines[2] == "USABLE", result.stdout
    assert float(lines[1]) < 1.5  # 0.3 s until the signal, then a fraction of a second


EXIT_SCRIPT = textwrap.dedent('''
    import sys
    sys.path.insert(0, sys.argv[1])
    import metalgpu
    from test_cpu_interrupt import SOURCE

    gpu = metalgpu.Interface(backend="cpu")
    gpu.load_shader_from_string(SOURCE)
    stop, out = gpu.create_buffer(1, "uint"), gpu.create_buffer(1 << 16, "uint")
    gpu.run_function(1 << 16, [stop, out], function_name="spin", wait_for_completion=False)
    print("EXITING", flush=True)
''')


def test_a_hung_asynchronous_dispatch_is_abandoned_at_exit(tmp_path, monkeypatch):
    script = tmp_path / "exit.py"
    script.write_text(EXIT_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(script), str(REPO_ROOT / "tests")], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "EXITING" in result.stdout
    assert "were abandoned" in result.stderr
    assert time.monotonic() - started < 30


SYNCHRONIZE_SCRIPT = textwrap.dedent('''
    import os, signal, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import metalgpu
    from test_cpu_interrupt import SOURCE

    gpu = metalgpu.Interface(backend="cpu")
    gpu.load_shader_from_string(SOURCE)
    stop, out = gpu.create_buffer(1, "uint"), gpu.create_buffer(1 << 16, "uint")
    running = gpu.run_function(1 << 16, [stop, out], function_name="spin", wait_for_completion=False)
    queued = gpu.run_function(1, [stop, out], function_name="spin", wait_for_completion=False)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        gpu.synchronize()
        print("NOT INTERRUPTED")
    except KeyboardInterrupt:
        print(f"INTERRUPTED {time.monotonic() - started:.3f}")
    for name, handle, words in (("RUNNING", running, "interrupted"), ("QUEUED", queued, "before it ran")):
        try:
            handle.wait()
            print(name, "RAN")
        except metalgpu.DispatchError as error:
            print(name, "STOPPED" if words in str(error) else "OTHER")
    data = gpu.array_to_buffer(np.arange(64, dtype=np.float32))
    twice = gpu.create_buffer(64, "float")
    gpu.run_function(64, [data, twice], function_name="twice")
    print("USABLE" if (twice.contents == 2 * np.arange(64)).all() else "BROKEN")
''')


def test_ctrl_c_in_synchronize_stops_the_running_and_the_queued_kernels(tmp_path):
    """In a fresh interpreter, as test_ctrl_c_stops_a_synchronous_dispatch."""
    script = tmp_path / "synchronize.py"
    script.write_text(SYNCHRONIZE_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    result = subprocess.run([sys.executable, str(script), str(REPO_ROOT / "tests")], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "INTERRUPTED" and float(lines[1]) < 1.5, result.stdout
    assert lines[2:] == ["RUNNING", "STOPPED", "QUEUED", "STOPPED", "USABLE"], result.stdout


def test_timeouts_work_with_the_runner_loaded_twice_from_two_cache_folders(gpu, tmp_path, monkeypatch):
    # Each cache folder builds its own copy of the native runner, with its own signal handlers: the copy loaded
    # last must pass on what belongs to the other.
    monkeypatch.setenv("METALGPU_CACHE_DIR", str(tmp_path))
    with metalgpu.Interface(backend="cpu") as other:
        other.load_shader_from_string(SOURCE)
        stop, out = other.create_buffer(1, "uint"), other.create_buffer(1 << 16, "uint")
        with pytest.raises(metalgpu.DispatchError, match="timeout"):
            other.run_function(1 << 16, [stop, out], function_name="spin", timeout=0.2)
        for interface in (gpu, other):
            stop, out = interface.create_buffer(1, "uint"), interface.create_buffer(1 << 16, "uint")
            started = time.monotonic()
            with pytest.raises(metalgpu.DispatchError, match="timeout"):
                interface.run_function(1 << 16, [stop, out], function_name="spin", timeout=0.3)
            assert time.monotonic() - started < 3
            check_still_usable(interface)


# The same two, in this test process, after whatever the earlier tests loaded and changed (a library that sets
# Python's handler again removed ours at the OS level once, and Ctrl-C no longer stopped kernels). A fail-safe
# ends the kernel after 10 s, so a Ctrl-C that is not heard fails the test instead of hanging the suite.
def _interrupt_soon(stop_flag: np.ndarray) -> tuple[threading.Timer, threading.Timer]:
    ctrl_c = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    fail_safe = threading.Timer(10, stop_flag.__setitem__, (0, 1))
    ctrl_c.start()
    fail_safe.start()
    return ctrl_c, fail_safe


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
def test_ctrl_c_in_this_process_stops_a_synchronous_dispatch(gpu):
    stop, out = gpu.create_buffer(1, "uint"), gpu.create_buffer(1 << 16, "uint")
    stop_flag = stop.contents  # a view taken now: host access later would wait for the kernel
    signal.signal(signal.SIGINT, signal.getsignal(signal.SIGINT))  # as libraries do: Python's handler again
    started = time.monotonic()
    ctrl_c, fail_safe = _interrupt_soon(stop_flag)
    try:
        with pytest.raises(KeyboardInterrupt):
            gpu.run_function(1 << 16, [stop, out], function_name="spin")
    finally:
        ctrl_c.join()
        fail_safe.cancel()
    assert time.monotonic() - started < 1.5
    check_still_usable(gpu)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
def test_ctrl_c_in_this_process_stops_synchronize(gpu):
    stop, out = gpu.create_buffer(1, "uint"), gpu.create_buffer(1 << 16, "uint")
    stop_flag = stop.contents
    running = gpu.run_function(1 << 16, [stop, out], function_name="spin", wait_for_completion=False)
    queued = gpu.run_function(1, [stop, out], function_name="spin", wait_for_completion=False)
    started = time.monotonic()
    ctrl_c, fail_safe = _interrupt_soon(stop_flag)
    try:
        with pytest.raises(KeyboardInterrupt):
            gpu.synchronize()
    finally:
        ctrl_c.join()
        fail_safe.cancel()
    assert time.monotonic() - started < 1.5
    with pytest.raises(metalgpu.DispatchError, match="interrupted"):
        running.wait()
    with pytest.raises(metalgpu.DispatchError, match="before it ran"):
        queued.wait()
    check_still_usable(gpu)
