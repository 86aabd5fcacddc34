"""Interface(backend="cpu", isolate=True): kernels run in a sandboxed worker process (seccomp, resource limits) with
the buffers in shared memory. Results equal the in-process backend's; a fault, a timeout, a forbidden system call,
a limit or Ctrl-C ends the worker with DispatchError or KeyboardInterrupt, and the next dispatch starts a new one
with the buffers intact."""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import metalgpu
from conftest import REPO_ROOT
from metalgpu.backends.cpu_isolated import checked_bindings
from metalgpu.backends.cpu_sandbox import LAYOUT
from metalgpu.msl.abi import BINDING_DTYPE

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux (seccomp)")

SOURCE = """
#include <metal_stdlib>
using namespace metal;

constant bool add_offset [[function_constant(0)]];
constant float offset [[function_constant(1)]];

kernel void affine(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                   constant float& scale [[buffer(2)]], constant float* table [[buffer(3)]],
                   constant uint& table_size [[buffer(4)]], uint i [[thread_position_in_grid]])
{
    y[i] = x[i] * scale + table[i % table_size];
}

kernel void shifted(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                    uint i [[thread_position_in_grid]])
{
    y[i] = add_offset ? x[i] + offset : x[i];
}

kernel void block_sum(device const float* x [[buffer(0)]], device float* sums [[buffer(1)]],
                      threadgroup float* scratch [[threadgroup(0)]],
                      uint i [[thread_position_in_grid]], uint t [[thread_position_in_threadgroup]],
                      uint n [[threads_per_threadgroup]], uint g [[threadgroup_position_in_grid]])
{
    scratch[t] = x[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = n / 2; s > 0; s >>= 1) {
        if (t < s) scratch[t] += scratch[t + s];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (t == 0) sums[g] = scratch[0];
}

kernel void grid_2d(device uint* out [[buffer(0)]], uint2 p [[thread_position_in_grid]],
                    uint2 size [[threads_per_grid]])
{
    out[p.y * size.x + p.x] = p.y * 1000 + p.x;
}

kernel void write_at(device float* x [[buffer(0)]], constant ulong& index [[buffer(1)]],
                     uint i [[thread_position_in_grid]])
{
    x[index + i] = 1.0f;
}

kernel void spin(device const uint* stop [[buffer(0)]], device uint* out [[buffer(1)]],
                 uint id [[thread_position_in_grid]])
{
    uint n = 0;
    while (stop[0] == 0) n++;
    out[id] = n;
}

kernel void add_one_after_barrier(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]])
{
    float v = x[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    x[i] = v + 1.0f;
}

kernel void step(device uint* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = x[i] * 3u + 1u; }

kernel void add_into(device const uint* a [[buffer(0)]], device uint* b [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) { b[i] += a[i]; }
"""

N = 1 << 16


def open_isolated(**options) -> metalgpu.Interface:
    """An isolated Interface, or a skip where this Linux kernel has no seccomp filters (a failure otherwise)."""
    try:
        gpu = metalgpu.Interface(backend="cpu", isolate=True, **options)
    except metalgpu.BackendUnavailableError as error:
        if "seccomp" in str(error):
            pytest.skip(f"this kernel lacks what the sandbox needs: {error}")
        raise
    gpu.load_shader_from_string(SOURCE)
    return gpu


@pytest.fixture(scope="module")
def isolated():
    gpu = open_isolated()
    yield gpu
    gpu.close()


@pytest.fixture(scope="module")
def in_process():
    with metalgpu.Interface(backend="cpu") as gpu:
        gpu.load_shader_from_string(SOURCE)
        yield gpu


def run_affine(gpu, table_size):
    x = gpu.array_to_buffer(np.arange(N, dtype=np.float32) / 7)
    y = gpu.create_buffer(N, "float")
    table = np.linspace(-1, 1, table_size, dtype=np.float32)
    gpu.run_function(N, [x, y, 1.5, table, table_size], function_name="affine")
    return y.contents.copy(), x.contents * np.float32(1.5) + table[np.arange(N) % table_size]


# 16 floats travel in the run message; 8192 (32 KiB) through a shared buffer made for the dispatch
@pytest.mark.parametrize("table_size", [16, 8192])
def test_constants_and_buffers_give_the_in_process_results(isolated, in_process, table_size):
    result, expected = run_affine(isolated, table_size)
    in_process_result, _ = run_affine(in_process, table_size)
    np.testing.assert_array_equal(result, in_process_result)  # the same compiled module: the same bits
    np.testing.assert_allclose(result, expected, rtol=1e-6)  # fused multiply-add or not: a few ulps


@pytest.mark.parametrize("constants, add", [({0: True, 1: 2.5}, 2.5), ({"add_offset": False, "offset": 9.0}, 0.0)])
def test_function_constants(isolated, constants, add):
    x = isolated.array_to_buffer(np.arange(N, dtype=np.float32))
    y = isolated.create_buffer(N, "float")
    isolated.set_function("shifted", constants)
    isolated.run_function(N, [x, y])
    np.testing.assert_array_equal(y.contents, np.arange(N, dtype=np.float32) + np.float32(add))


@pytest.mark.parametrize("group", [64, 256])
def test_threadgroup_memory_and_barriers(isolated, group):
    values = (np.arange(N) % 16).astype(np.float32)  # whole numbers: every sum is exact in float
    x = isolated.array_to_buffer(values)
    sums = isolated.create_buffer(N // group, "float")
    isolated.run_function(N, [x, sums], function_name="block_sum", threads_per_threadgroup=group,
                          threadgroup_memory={0: 4 * group})
    np.testing.assert_array_equal(sums.contents, values.reshape(-1, group).sum(axis=1))


def test_a_2d_grid(isolated):
    out = isolated.create_buffer(300 * 200, "uint")
    isolated.run_function((300, 200), [out], function_name="grid_2d")
    y, x = np.mgrid[0:200, 0:300]
    np.testing.assert_array_equal(out.contents, (y * 1000 + x).reshape(-1))


def test_asynchronous_dispatches_and_synchronize(isolated):
    x = isolated.array_to_buffer(np.zeros(N, dtype=np.float32))
    handles = [isolated.run_function(N, [x], function_name="add_one_after_barrier", wait_for_completion=False)
               for _ in range(5)]
    handles[2].wait()
    isolated.synchronize()
    assert all(handle.done for handle in handles)
    np.testing.assert_array_equal(x.contents, np.full(N, 5, dtype=np.float32))


def steps_and_totals(x: np.ndarray, total: np.ndarray, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """numpy's step then add_into, ``rounds`` times (uint arithmetic wraps alike)."""
    x, total = x.astype(np.uint32), total.astype(np.uint32)
    for _ in range(rounds):
        x = x * np.uint32(3) + np.uint32(1)
        total = total + x
    return x, total


def test_asynchronous_dispatches_and_batches_keep_their_order(isolated):
    """The isolated backend's own queue (not cpu.py's native one): asynchronous dispatches and an asynchronous
    batch between them run in the order they were made, each seeing what the one before wrote."""
    start = np.arange(N, dtype=np.uint32)
    x, total = isolated.array_to_buffer(start), isolated.array_to_buffer(np.zeros(N, dtype=np.uint32))
    handles = []
    for _ in range(4):
        handles.append(isolated.run_function(N, [x], function_name="step", wait_for_completion=False))
        handles.append(isolated.run_function(N, [x, total], function_name="add_into", wait_for_completion=False))
    with isolated.batch(wait=False) as batch:
        for _ in range(3):
            isolated.run_function(N, [x], function_name="step")
            isolated.run_function(N, [x, total], function_name="add_into")
    handles.append(isolated.run_function(N, [x], function_name="step", wait_for_completion=False))
    expected_x, expected_total = steps_and_totals(start, np.zeros(N), 7)
    np.testing.assert_array_equal(x.contents, expected_x * np.uint32(3) + np.uint32(1))  # waits for the last
    np.testing.assert_array_equal(total.contents, expected_total)
    assert batch.done and all(handle.done for handle in handles)
    assert batch.gpu_time is not None and batch.gpu_time >= 0


def test_a_batch_replays_and_stops_at_its_first_fault(isolated):
    start = np.arange(N, dtype=np.uint32)
    x, total = isolated.array_to_buffer(start), isolated.array_to_buffer(np.zeros(N, dtype=np.uint32))
    with isolated.batch() as batch:
        for _ in range(2):
            isolated.run_function(N, [x], function_name="step")
            isolated.run_function(N, [x, total], function_name="add_into")
    batch.replay(wait=False)
    batch.wait()
    expected_x, expected_total = steps_and_totals(start, np.zeros(N), 4)
    np.testing.assert_array_equal(x.contents, expected_x)
    np.testing.assert_array_equal(total.contents, expected_total)

    floats = isolated.array_to_buffer(np.zeros(1024, dtype=np.float32))
    for wait in (True, False):
        with pytest.raises(metalgpu.DispatchError, match=r"^batch dispatch 1 \(kernel 'write_at'\): .*faulted"):
            with isolated.batch(wait=wait) as failing:
                isolated.run_function(N, [x], function_name="step")
                isolated.run_function(1, [floats, 1 << 40], function_name="write_at")
                isolated.run_function(N, [x], function_name="step")  # never runs: the batch ended at the fault
            failing.wait()
    np.testing.assert_array_equal(x.contents, steps_and_totals(expected_x, expected_total, 2)[0])
    check_intact_and_usable(isolated, total, expected_total)


def test_elementwise_operations_and_views(isolated):
    a = isolated.array_to_buffer(np.arange(1, 1001, dtype=np.float32))
    b = isolated.array_to_buffer(np.full(1000, 2, dtype=np.float32))
    np.testing.assert_allclose((metalgpu.sqrt(a) * b + 1.0).contents, np.sqrt(np.arange(1, 1001)) * 2 + 1, rtol=1e-6)
    bits = a.view("uint")
    np.testing.assert_array_equal(bits.contents, np.arange(1, 1001, dtype=np.float32).view(np.uint32))


def test_the_worker_is_sealed(isolated):
    backend = isolated._backend
    backend.self_test("allowed")  # a worker that answers
    status = open(f"/proc/{backend.worker_pid}/status").read()
    assert "\nSeccomp:\t2\n" in status and "\nNoNewPrivs:\t1\n" in status
    limits = {line[:26].strip(): line[26:].split() for line in open(f"/proc/{backend.worker_pid}/limits")}
    from metalgpu.backends.cpu_sandbox import cpu_limit_seconds, memory_limit_bytes
    assert int(limits["Max data size"][0]) == memory_limit_bytes(backend.threads)
    assert int(limits["Max cpu time"][0]) == cpu_limit_seconds(backend.threads)
    assert limits["Max core file size"][0] == "0"
    _, _, _, _, _, clock_works, memory_works, *_ = backend.self_test("allowed")
    assert (clock_works, memory_works) == (1, 1)


def test_the_worker_has_none_of_the_environment(monkeypatch):
    monkeypatch.setenv("METALGPU_TEST_SECRET", "do-not-leak")  # a kernel could read the worker's environment
    with open_isolated() as gpu:
        with open(f"/proc/{gpu._backend.worker_pid}/environ", "rb") as environment:
            assert b"do-not-leak" not in environment.read()
        result, expected = run_affine(gpu, 16)
        np.testing.assert_allclose(result, expected, rtol=1e-6)


def check_intact_and_usable(gpu, buffer, values):
    """The buffer kept its values, and a new worker runs the next dispatch."""
    np.testing.assert_array_equal(buffer.contents, values)
    result, expected = run_affine(gpu, 16)
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_opening_a_file_is_refused_and_the_worker_goes_on(isolated):
    import errno

    backend = isolated._backend
    before = backend.worker_pid
    _, _, _, _, _, failed, error, *_ = backend.self_test("open")
    assert (failed, error) == (1, errno.EACCES)
    assert backend.worker_pid == before
    values = np.arange(N, dtype=np.float32)
    check_intact_and_usable(isolated, isolated.array_to_buffer(values), values)


@pytest.mark.parametrize("call, name", [("socket", "socket"), ("exec", "execve"), ("exec_memory", "mmap")])
def test_a_forbidden_system_call_ends_the_worker(isolated, call, name):
    values = np.arange(N, dtype=np.float32)
    kept = isolated.array_to_buffer(values)
    check_intact_and_usable(isolated, kept, values)  # mapped by the worker the call will end
    before = isolated._backend.worker_pid
    with pytest.raises(metalgpu.DispatchError, match=f"system call the sandbox forbids, {name} "):
        isolated._backend.self_test(call)
    with pytest.raises(ProcessLookupError):
        os.kill(before, 0)
    check_intact_and_usable(isolated, kept, values)
    assert isolated._backend.worker_pid != before


def test_a_fault_far_out_of_bounds(isolated):
    values = np.arange(1024, dtype=np.float32)
    x = isolated.array_to_buffer(values)
    with pytest.raises(metalgpu.DispatchError, match="kernel 'write_at' faulted"):
        isolated.run_function(1, [x, 1 << 40], function_name="write_at")
    check_intact_and_usable(isolated, x, values)


def test_an_overrun_into_the_guard_page_names_the_buffer(isolated):
    values = np.arange(1024, dtype=np.float32)
    x = isolated.array_to_buffer(values)
    with pytest.raises(metalgpu.DispatchError, match=r"parameter 'x' .* was accessed 0 bytes past its end"):
        isolated.run_function(1, [x, 1024], function_name="write_at")
    check_intact_and_usable(isolated, x, values)


def test_a_timeout_stops_an_endless_kernel(isolated):
    stop, out = isolated.create_buffer(1, "uint"), isolated.create_buffer(N, "uint")
    out.contents[:] = 7
    started = time.monotonic()
    with pytest.raises(metalgpu.DispatchError, match="'spin' ran longer than its timeout of 0.3 s"):
        isolated.run_function(N, [stop, out], function_name="spin", timeout=0.3)
    assert time.monotonic() - started < 3
    check_intact_and_usable(isolated, out, np.full(N, 7, dtype=np.uint32))


def test_an_asynchronous_dispatch_that_times_out(isolated):
    stop, out = isolated.create_buffer(1, "uint"), isolated.create_buffer(1, "uint")
    dispatch = isolated.run_function(1, [stop, out], function_name="spin", wait_for_completion=False, timeout=0.3)
    with pytest.raises(metalgpu.DispatchError, match="timeout of 0.3 s"):
        dispatch.wait()
    stop.contents[0] = 1
    isolated.run_function(1, [stop, out], function_name="spin")
    assert out.contents[0] == 0


def test_a_worker_that_stops_answering_is_ended(isolated):
    values = np.arange(N, dtype=np.float32)
    kept = isolated.array_to_buffer(values)
    started = time.monotonic()
    with pytest.raises(metalgpu.DispatchError, match="did not answer in time"):
        isolated._backend.self_test("hang", deadline=time.monotonic() + 0.3)  # its cancel signals blocked
    assert time.monotonic() - started < 3
    check_intact_and_usable(isolated, kept, values)


def test_the_memory_limit(isolated, monkeypatch):
    isolated._backend.self_test("allowed")
    with open(f"/proc/{isolated._backend.worker_pid}/status") as status:
        used = next(int(line.split()[1]) for line in status if line.startswith("VmData:")) >> 10  # MiB
    # 40 MiB more than a worker takes: a 1024-thread group's fiber stacks need 68, a 32-thread group's 4
    monkeypatch.setenv("METALGPU_SANDBOX_MEMORY", str(used + 40))
    with open_isolated() as gpu:
        values = np.arange(1024, dtype=np.float32)
        x = gpu.array_to_buffer(values)
        with pytest.raises(metalgpu.DispatchError, match=f"memory limit is {used + 40} MiB: set the environment "
                                                         "variable METALGPU_SANDBOX_MEMORY"):
            gpu.run_function(1024, [x], function_name="add_one_after_barrier", threads_per_threadgroup=1024)
        check_intact_and_usable(gpu, x, values)
        gpu.run_function(1024, [x], function_name="add_one_after_barrier", threads_per_threadgroup=32)
        np.testing.assert_array_equal(x.contents, values + 1)


def test_the_cpu_limit(monkeypatch):
    monkeypatch.setenv("METALGPU_SANDBOX_CPU", "1")
    with open_isolated() as gpu:
        stop, out = gpu.create_buffer(1, "uint"), gpu.create_buffer(1, "uint")
        started = time.monotonic()
        with pytest.raises(metalgpu.DispatchError, match="CPU limit"):
            gpu.run_function(1, [stop, out], function_name="spin")
        assert time.monotonic() - started < 10
        stop.contents[0] = 1
        gpu.run_function(1, [stop, out], function_name="spin")
        assert out.contents[0] == 0


def test_loading_a_module_keeps_the_kernels_loaded_before(isolated):
    other = "kernel void negate(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = -x[i]; }"
    with open_isolated() as gpu:
        values = np.arange(N, dtype=np.float32)
        x = gpu.array_to_buffer(values)
        first = gpu._backend.worker_pid
        gpu.load_shader_from_string(other)  # a new worker, which loads both modules
        gpu.run_function(N, [x], function_name="negate")
        assert gpu._backend.worker_pid != first
        gpu.load_shader_from_string(SOURCE)  # loaded before: the worker has it
        second = gpu._backend.worker_pid
        gpu.run_function(N, [x], function_name="add_one_after_barrier")
        assert gpu._backend.worker_pid == second
        np.testing.assert_array_equal(x.contents, 1 - values)


def test_buffers_outlive_the_interface_and_its_worker():
    with open_isolated() as gpu:
        x = gpu.array_to_buffer(np.zeros(N, dtype=np.float32))
        gpu.run_function(N, [x], function_name="add_one_after_barrier")
        worker = gpu._backend.worker_pid
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)
    np.testing.assert_array_equal(x.contents, np.ones(N, dtype=np.float32))


def test_released_buffers_are_unmapped_in_the_worker(isolated):
    def mappings():
        with open(f"/proc/{isolated._backend.worker_pid}/maps") as maps:
            return sum(1 for _ in maps)

    size = 1 << 15  # 128 KiB: a segment of its own each
    expected = np.arange(size, dtype=np.uint32)
    x = isolated.create_buffer(size, "uint")
    isolated.run_function((size, 1), [x], function_name="grid_2d")

    def cycle(count: int) -> None:
        for _ in range(count):
            y = isolated.create_buffer(size, "uint")
            isolated.run_function((size, 1), [y], function_name="grid_2d")
            np.testing.assert_array_equal(y.contents, expected)
            y.release()
            del y

    # what the worker maps once, lazily, is in place before the count (after one dispatch, a 16-core host mapped
    # 12 more over the loop: per-thread memory of the C library and the like, not one per buffer)
    cycle(20)
    before = mappings()
    cycle(200)  # a leak would show as 200 mappings more
    isolated.run_function((size, 1), [x], function_name="grid_2d")
    assert mappings() <= before + 6
    np.testing.assert_array_equal(x.contents, expected)


def test_debug_mode_names_the_buffer_of_an_access_before_it():
    with open_isolated(debug=True) as gpu:
        values = np.arange(1024, dtype=np.float32)
        x = gpu.array_to_buffer(values)
        with pytest.raises(metalgpu.DispatchError, match="parameter 'x' .* was accessed 4 bytes before its start"):
            gpu.run_function(1, [x, (1 << 64) - 1], function_name="write_at")
        check_intact_and_usable(gpu, x, values)


def test_another_librarys_memory_cannot_be_bound(isolated):
    outside = metalgpu.from_dlpack(np.zeros(16, dtype=np.float32), isolated)
    with pytest.raises(metalgpu.ArgumentError, match="sandboxed worker .* cannot map"):
        isolated.run_function(16, [outside], function_name="add_one_after_barrier")


def test_isolate_is_for_the_cpu_backend():
    with pytest.raises(metalgpu.ArgumentError, match="isolate=True"):
        metalgpu.Interface(backend="cuda", isolate=True)


def binding_record(**fields) -> bytes:
    record = np.zeros((), BINDING_DTYPE)
    record["kind"], record["elem_size"], record["scalar_size"], record["lanes"] = 0, 4, 4, 1  # a float buffer
    for name, value in fields.items():
        record[name] = value
    return record.tobytes()


@pytest.mark.parametrize("count, records", [(1, binding_record()[:-1]), (1, binding_record(kind=7)),
                                            (1, binding_record(index=31)), (1, binding_record(elem_size=0)),
                                            (2, binding_record() * 2 + b"x")])
def test_binding_records_from_a_worker_are_checked(count, records):
    with pytest.raises(metalgpu.DispatchError, match="described kernel 3 wrongly"):
        checked_bindings(3, count, records)
    assert checked_bindings(3, 1, binding_record())[0].elem_size == 4


def test_the_message_layout_matches_the_worker(isolated):
    sandbox = ctypes.CDLL(f"/proc/self/fd/{isolated._backend._sandbox_fd}")
    values = (ctypes.c_uint64 * 64)()
    count = sandbox.mg_sandbox_layout(values)
    assert tuple(values[:count]) == LAYOUT


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_writes_its_own_copy_and_cannot_dispatch(isolated):
    values = np.arange(N, dtype=np.float32)
    x = isolated.array_to_buffer(values)
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            x.contents[:] = -1
            try:
                isolated.run_function(N, [x], function_name="add_one_after_barrier")
                status = 2
            except metalgpu.MetalError as error:
                status = 0 if "before the process forked" in str(error) else 3
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    check_intact_and_usable(isolated, x, values)


CTRL_C_SCRIPT = textwrap.dedent('''
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import metalgpu
    from test_sandbox import SOURCE

    gpu = metalgpu.Interface(backend="cpu", isolate=True)
    gpu.load_shader_from_string(SOURCE)
    stop, out = gpu.create_buffer(1, "uint"), gpu.create_buffer(1 << 16, "uint")
    kept = gpu.array_to_buffer(np.arange(1 << 16, dtype=np.float32))
    stop.contents[0] = 1
    gpu.run_function(1 << 16, [stop, out], function_name="spin")  # the plan made and the buffers mapped
    stop.contents[0] = 0
    worker = gpu._backend.worker_pid
    print("RUNNING", flush=True)
    started = time.monotonic()
    try:
        gpu.run_function(1 << 16, [stop, out], function_name="spin")
    except KeyboardInterrupt:
        print("INTERRUPTED", time.monotonic() - started, flush=True)
    try:
        os.kill(worker, 0)
        print("WORKER ALIVE")
    except ProcessLookupError:
        print("WORKER ENDED")
    gpu.run_function(1 << 16, [kept], function_name="add_one_after_barrier")
    assert (kept.contents == np.arange(1 << 16, dtype=np.float32) + 1).all()
    print("USABLE", flush=True)
''')


def test_ctrl_c_ends_a_synchronous_dispatch(tmp_path):
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    process = subprocess.Popen([sys.executable, str(script), str(REPO_ROOT / "tests")], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout.readline().strip() == "RUNNING", process.stderr.read()
        time.sleep(0.5)  # into the endless kernel
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("INTERRUPTED "), out
    assert float(lines[0].split()[1]) < 1.5  # half a second into the kernel, then a fraction of a second
    assert lines[1:] == ["WORKER ENDED", "USABLE"]
