"""The CPU backend's native thread pool (backends/cpu_guard.cpp): large dispatches shared out over several threads,
faults inside a worker, dispatches from several Python threads at once, and a process forked after the pool
started."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import metalgpu
from conftest import REPO_ROOT

pytestmark = pytest.mark.skipif("cpu" not in metalgpu.backends(), reason="needs the cpu backend")

N = 1 << 20  # well above the grid size from which the pool is used

SOURCE = """
#include <metal_stdlib>
using namespace metal;

kernel void affine(device const uint* in [[buffer(0)]], device uint* out [[buffer(1)]],
                   constant uint& k [[buffer(2)]], uint id [[thread_position_in_grid]])
{
    out[id] = in[id] * k + id;
}

kernel void fault_from(device uint* data [[buffer(0)]], constant uint& first [[buffer(1)]],
                       uint id [[thread_position_in_grid]])
{
    if (id >= first) *(device uint*)(ulong(8)) = id;  // address 8 is never mapped
    else data[id] = id;
}
"""


@pytest.fixture
def pool_iface(monkeypatch):
    monkeypatch.setenv("METALGPU_NUM_THREADS", "4")  # more threads than CI's cores: the pool must still be exact
    with metalgpu.Interface(backend="cpu") as gpu:
        gpu.load_shader_from_string(SOURCE)
        yield gpu


def run_affine(gpu, k: int, n: int = N) -> np.ndarray:
    data = np.arange(n, dtype=np.uint32) * 7
    source, out = gpu.array_to_buffer(data), gpu.create_buffer(n, "uint")
    gpu.run_function(n, [source, out, k], function_name="affine")
    result = out.contents.copy()
    np.testing.assert_array_equal(result, data * np.uint32(k) + np.arange(n, dtype=np.uint32))
    return result


@pytest.mark.parametrize("n", [(1 << 15) - 1, 1 << 15, N + 13])
def test_every_element_once_on_either_side_of_the_pool_threshold(pool_iface, n):
    run_affine(pool_iface, 3, n)


def test_uneven_threadgroups_and_a_partial_last_one(pool_iface):
    data = np.arange(N, dtype=np.uint32)
    source, out = pool_iface.array_to_buffer(data), pool_iface.create_buffer(N, "uint")
    pool_iface.run_function(N - 5, [source, out, 2], function_name="affine", threads_per_threadgroup=96)
    expected = data * 2 + data
    expected[N - 5:] = 0
    np.testing.assert_array_equal(out.contents, expected)


def test_dispatches_from_several_python_threads_at_once(monkeypatch):
    monkeypatch.setenv("METALGPU_NUM_THREADS", "2")
    failures = []

    def work(k):
        try:
            with metalgpu.Interface(backend="cpu") as gpu:
                gpu.load_shader_from_string(SOURCE)
                for _ in range(5):
                    run_affine(gpu, k)
        except BaseException as error:  # noqa: BLE001  (reported below, with the thread's k)
            failures.append((k, error))

    threads = [threading.Thread(target=work, args=(k,)) for k in (2, 3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


POOL_SCRIPT = textwrap.dedent('''
    import os, sys
    import numpy as np
    import metalgpu
    sys.path.insert(0, sys.argv[1])
    from test_cpu_pool import SOURCE, N

    gpu = metalgpu.Interface(backend="cpu")
    gpu.load_shader_from_string(SOURCE)
    data = gpu.create_buffer(N, "uint")
    try:
        gpu.run_function(N, [data, N // 2], function_name="fault_from")
    except metalgpu.DispatchError as error:
        print("DISPATCH_ERROR", str(error))
    # The threads that did not fault wrote their elements or were skipped; none wrote garbage.
    head = data.contents[: N // 2]
    written = head != 0
    print("HEAD_OK", bool((head[written] == np.arange(N // 2, dtype=np.uint32)[written]).all()))

    source = gpu.array_to_buffer(np.arange(N, dtype=np.uint32))
    out = gpu.create_buffer(N, "uint")
    gpu.run_function(N, [source, out, 3], function_name="affine")
    print("AFTER_FAULT", bool((out.contents == np.arange(N, dtype=np.uint32) * 4).all()))

    pid = os.fork()
    if pid == 0:  # the child has none of the parent's pool threads: it must neither wait for them nor go wrong
        out.contents[:] = 0
        gpu.run_function(N, [source, out, 5], function_name="affine")
        os._exit(0 if (out.contents == np.arange(N, dtype=np.uint32) * 6).all() else 7)
    _, status = os.waitpid(pid, 0)
    print("CHILD", os.waitstatus_to_exitcode(status))
''')


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fault_in_a_worker_then_fork(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    env = dict(os.environ, METALGPU_NUM_THREADS="4")
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # A subprocess, so a fault the pool failed to catch, or a child that hangs, cannot take the test session down.
    result = subprocess.run([sys.executable, str(script), str(REPO_ROOT / "tests")], env=env, capture_output=True,
                            text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "DISPATCH_ERROR kernel 'fault_from' faulted (SIGSEGV at address 0x8)" in result.stdout, output
    assert "HEAD_OK True" in result.stdout, output
    assert "AFTER_FAULT True" in result.stdout, output
    assert "CHILD 0" in result.stdout, output


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_a_bad_thread_count_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("METALGPU_NUM_THREADS", value)
    with pytest.raises(metalgpu.MetalError, match="METALGPU_NUM_THREADS must be a whole number"):
        metalgpu.Interface(backend="cpu")


def test_one_thread_gives_the_same_results(monkeypatch):
    monkeypatch.setenv("METALGPU_NUM_THREADS", "1")
    with metalgpu.Interface(backend="cpu") as gpu:
        gpu.load_shader_from_string(SOURCE)
        run_affine(gpu, 9)


COOPERATIVE = """
#include <metal_stdlib>
using namespace metal;

kernel void reverse_in_group(device uint* data [[buffer(0)]], uint lid [[thread_position_in_threadgroup]],
                             uint id [[thread_position_in_grid]], uint size [[threads_per_threadgroup]])
{
    threadgroup uint staged[256];
    staged[lid] = data[id];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    data[id] = staged[size - 1 - lid] + %d;
}
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="counts the process's mappings in /proc")
def test_modules_share_the_threads_fiber_stacks(monkeypatch):
    """Every module's cooperative kernels run on the pool threads' one set of fiber stacks: a stack is two mappings
    (its guard page apart), and stacks kept per module and thread ran into the kernel's limit on mappings after a
    few hundred libraries."""
    monkeypatch.setenv("METALGPU_NUM_THREADS", "4")

    def mappings() -> int:
        with open("/proc/self/maps") as maps:
            return sum(1 for _ in maps)

    with metalgpu.Interface(backend="cpu") as gpu:
        grown = []
        for k in range(6):  # distinct sources: six modules
            gpu.load_shader_from_string(COOPERATIVE % k)
            data = np.arange(N, dtype=np.uint32)
            buffer = gpu.array_to_buffer(data)
            before = mappings()
            gpu.run_function(N, [buffer], function_name="reverse_in_group", threads_per_threadgroup=256)
            grown.append(mappings() - before)
            np.testing.assert_array_equal(buffer.contents, data.reshape(-1, 256)[:, ::-1].ravel() + k)
        # The first dispatch may map the stacks (256 a thread, two mappings each); later modules map none.
        assert max(grown[1:]) < 2 * 256 // 4, grown
