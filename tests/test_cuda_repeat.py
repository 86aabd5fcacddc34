"""The compiled repeat path of synchronous CUDA dispatches (backends/cuda_repeat.cpp), without a GPU: the driver's
cuLaunchKernel and cuStreamSynchronize are stand-ins written with ctypes, so CI checks which calls it makes, with
which arguments, and when it must leave the dispatch to the Python path. On a GPU, test_cuda_repeat_on_the_gpu
below checks that the CUDA backend uses it."""
from __future__ import annotations

import ctypes
import gc
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import metalgpu
from metalgpu.backends import cuda_repeat
from metalgpu.backends.cuda_module import REPEAT_PLACED_AT
from metalgpu.cache import CompileCache
from metalgpu.dispatch import PlanCache
from metalgpu.msl import abi

if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
    pytest.skip("Python's C headers are not installed: the repeat path is not built here", allow_module_level=True)

LAUNCH = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, *([ctypes.c_uint] * 7), ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.c_void_p)
SYNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
NEVER = 2**64 - 1


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    """The compiled extension: built here into a fresh cache, unless this process did already."""
    cuda_repeat.start(CompileCache(tmp_path_factory.mktemp("cache")))
    assert cuda_repeat.wait(300), cuda_repeat.failure
    return cuda_repeat.extension


class FakeDriver:
    """cuLaunchKernel and cuStreamSynchronize that record their calls and answer the codes set here."""

    def __init__(self):
        self.calls = []
        self.launch_code = self.sync_code = 0
        self._launch = LAUNCH(self._on_launch)
        self._sync = SYNC(self._on_sync)
        self.addresses = (ctypes.cast(self._launch, ctypes.c_void_p).value,
                          ctypes.cast(self._sync, ctypes.c_void_p).value)

    def _on_launch(self, *args):
        self.calls.append(("launch", *args))
        return self.launch_code

    def _on_sync(self, stream):
        self.calls.append(("sync", stream))
        return self.sync_code


class Plan:
    """A LaunchPlan as the repeat path reads it: ``packed.repeat_address``, where its launch's fields are."""

    kernel_name = "k"

    def __init__(self, placed: int):
        # msl/abi.py's REPEAT_FIELDS: function, stream, kernel parameters, placed at, grid x y z, block x y z, shared
        self.record = np.array([0x1000, 0x2000, 0x3000, placed, 7, 8, 9, 32, 2, 1, 256], dtype=np.uint64)
        self.packed = SimpleNamespace(repeat_address=self.record.ctypes.data)


class Buffer:
    pass


def on_error(plan, code, waited):
    raise metalgpu.DispatchError(f"{plan.kernel_name}: code {code}, waited {waited}")


@pytest.fixture(params=["repeat", "bind_repeat", "memo"])
def setup(module, request):
    """The repeat path as the tests call it: all arguments given, or the leading ones bound as the backend does;
    "memo": bound, with a PlanCache's table and memo, as the Interface passes them (compiled_state)."""
    driver = FakeDriver()
    accesses = np.array([5], dtype=np.uint64)
    function, a, b = object(), Buffer(), Buffer()
    plan = Plan(placed=5)
    key = PlanCache.key(function, 1000, None, None, [a, b])
    if request.param == "memo":
        cache = PlanCache()
        cache.store(key, plan, [a, b])
        plans = cache.compiled_state
    else:
        plans = {key: plan}

    def repeat(grid, buffers, fn=function):
        leading = (on_error, *driver.addresses, accesses.ctypes.data)
        if request.param == "repeat":
            return module.repeat(*leading, plans, fn, grid, buffers)
        return module.bind_repeat(*leading)(plans, fn, grid, buffers)

    return driver, accesses, plan, plans, repeat, (function, a, b)


def test_its_fields_are_msl_abis(module):
    """The order of a launch's fields in cuda_repeat.cpp's enum is msl/abi.py's REPEAT_FIELDS."""
    fields = abi.REPEAT_FIELDS
    assert [module.FIELD_FUNCTION, module.FIELD_STREAM, module.FIELD_PARAMS, module.FIELD_PLACED_AT, module.FIELD_GRID,
            module.FIELD_BLOCK, module.FIELD_SHARED, module.FIELD_COUNT] == [
        fields.index(name) for name in ("function", "stream", "params", "placed_at", "grid_x", "block_x",
                                        "shared_bytes")] + [len(fields)]
    assert fields[fields.index("grid_x"):fields.index("grid_x") + 6] == ("grid_x", "grid_y", "grid_z", "block_x",
                                                                           "block_y", "block_z")


def test_a_cached_plan_is_launched_with_its_record_and_waited_for(setup):
    driver, _, _, _, repeat, (_, a, b) = setup
    assert repeat(1000, [a, b]) is True
    assert driver.calls == [("launch", 0x1000, 7, 8, 9, 32, 2, 1, 256, 0x2000, 0x3000, None), ("sync", 0x2000)]
    assert repeat(1000, (a, b)) is True  # a tuple keys the same
    assert len(driver.calls) == 4


@pytest.mark.parametrize("change", ["other buffer", "order", "grid", "function", "list grid", "generator",
                                    "list subclass", "fewer buffers"])
def test_anything_else_is_left_to_the_python_path(setup, change):
    driver, _, _, _, repeat, (function, a, b) = setup
    other = Buffer()
    calls = {"other buffer": lambda: repeat(1000, [a, other]), "order": lambda: repeat(1000, [b, a]),
             "grid": lambda: repeat(999, [a, b]), "function": lambda: repeat(1000, [a, b], fn=object()),
             "list grid": lambda: repeat([1000], [a, b]), "generator": lambda: repeat(1000, (x for x in (a, b))),
             "list subclass": lambda: repeat(1000, type("L", (list,), {})([a, b])),
             "fewer buffers": lambda: repeat(1000, [a])}
    assert calls[change]() is False
    assert driver.calls == []


def test_the_memo_repeats_the_last_plan_until_the_table_changes(module):
    """PlanCache.memo names the last plan found for the same function, grid values and buffer objects, and stops
    holding the moment the table changes: a dead buffer (whose address a new one may take), clear(), a store."""
    driver = FakeDriver()
    accesses = np.array([5], dtype=np.uint64)
    function, a, b = object(), Buffer(), Buffer()
    cache = PlanCache()
    cache.store(PlanCache.key(function, 1000, None, None, [a, b]), Plan(placed=5), [a, b])
    repeat = module.bind_repeat(on_error, *driver.addresses, accesses.ctypes.data)
    assert module.MEMO_WORDS == PlanCache.MEMO_WORDS and cache.memo[0] == 0
    assert repeat(cache.compiled_state, function, 1000, [a, b]) and cache.memo[0] == 1
    assert repeat(cache.compiled_state, function, int("1000"), (a, b))  # an equal grid, another object: the memo
    assert not repeat(cache.compiled_state, function, 999, [a, b])  # another grid value: looked up, and not there
    assert not repeat(cache.compiled_state, function, 1000, [b, a])
    assert not repeat(cache.compiled_state, object(), 1000, [a, b])
    assert repeat(cache.compiled_state, function, 1000, [a, b]) and len(driver.calls) == 6  # 3 launches, 3 syncs
    cache.store(PlanCache.key(function, 64, None, None, [a]), Plan(placed=5), [a])  # any store clears it
    assert cache.memo[0] == 0
    assert repeat(cache.compiled_state, function, 1000, [a, b]) and cache.memo[0] == 1
    del b
    gc.collect()  # the plan's buffer died: its plan left the table, and the memo with it
    assert cache.memo[0] == 0 and len(cache) == 1
    c = Buffer()
    assert not repeat(cache.compiled_state, function, 1000, [a, c])
    assert repeat(cache.compiled_state, function, 64, [a]) and cache.memo[0] == 1
    cache.clear()
    assert cache.memo[0] == 0 and not repeat(cache.compiled_state, function, 64, [a])
    assert len(driver.calls) == 10  # launch and sync of the five repeats that found their plan


def test_a_host_access_since_the_plan_was_placed_leaves_it_to_the_python_path(setup):
    driver, accesses, plan, _, repeat, (_, a, b) = setup
    accesses[0] = 6
    assert repeat(1000, [a, b]) is False
    plan.record[REPEAT_PLACED_AT] = 6  # placed again by the Python path
    assert repeat(1000, [a, b]) is True
    plan.record[REPEAT_PLACED_AT] = NEVER  # a plan that must always take the Python path (debug checks, say)
    assert repeat(1000, [a, b]) is False
    plan.packed = None  # not launched yet (its first launch failed, say)
    assert repeat(1000, [a, b]) is False
    assert len(driver.calls) == 2


def test_driver_errors_are_raised_by_the_backend_handler(setup):
    driver, _, _, _, repeat, (_, a, b) = setup
    driver.launch_code = 700
    with pytest.raises(metalgpu.DispatchError, match="k: code 700, waited 0"):
        repeat(1000, [a, b])
    assert [call[0] for call in driver.calls] == ["launch"]  # no wait after a failed launch
    driver.launch_code, driver.sync_code = 0, 719
    with pytest.raises(metalgpu.DispatchError, match="k: code 719, waited 1"):
        repeat(1000, [a, b])


def test_a_handler_that_returns_is_an_error(module, setup):
    driver, accesses, _, plans, _, (function, a, b) = setup
    driver.sync_code = 1
    with pytest.raises(RuntimeError, match="on_error returned"):
        module.repeat(lambda *args: None, *driver.addresses, accesses.ctypes.data, plans, function, 1000, [a, b])


def test_no_references_are_leaked(setup):
    _, _, plan, plans, repeat, (function, a, b) = setup
    gc.collect()
    before = [sys.getrefcount(x) for x in (plan, function, a, b)]
    for _ in range(1000):
        repeat(1000, [a, b])
        repeat(1000, [a, Buffer()])
    assert [sys.getrefcount(x) for x in (plan, function, a, b)] == before


@pytest.mark.parametrize("buffers", [[], [None], ["a", None, "b"], ("a", "b", "a")])
@pytest.mark.parametrize("grid", [1000, (4, 4), metalgpu.MetalSize(8, 2)])
def test_the_compiled_key_is_the_plan_caches_own(module, grid, buffers):
    """The key the compiled path looks a dispatch up by is dispatch.PlanCache.key's for default sizes."""
    function, a, b = object(), Buffer(), Buffer()
    given = type(buffers)({"a": a, "b": b, None: None}[name] for name in buffers)
    assert module.plan_key(function, grid, given) == PlanCache.key(function, grid, None, None, given)
    assert module.plan_key(function, grid, iter(given)) is None  # not a list or tuple: no key


def test_it_finds_the_plans_the_interface_caches(module):
    """The compiled key must be the Interface's own: a plan cached by a real dispatch is found."""
    gpu = metalgpu.Interface("cpu")
    gpu.load_shader_from_str("#include <metal_stdlib>\nusing namespace metal;\n"
                             "kernel void k(device float* a [[buffer(0)]], device float* b [[buffer(1)]], "
                             "uint i [[thread_position_in_grid]]) { b[i] = a[i]; }")
    gpu.set_function("k")
    a, b = gpu.create_buffer(4, "float"), gpu.create_buffer(4, "float")
    gpu.run_function(4, [a, b])
    (plan,) = gpu._plans.plans()
    record = Plan(placed=0).record
    plan.packed = SimpleNamespace(repeat_address=record.ctypes.data)
    driver, accesses, plans = FakeDriver(), np.zeros(1, dtype=np.uint64), gpu._plans.table
    assert module.repeat(on_error, *driver.addresses, accesses.ctypes.data, plans, gpu._function, 4, [a, b])
    assert driver.calls[0][1] == 0x1000
    assert not module.repeat(on_error, *driver.addresses, accesses.ctypes.data, plans, gpu._function, 4, [b, a])


def test_cuda_repeat_on_the_gpu():
    """A loop of synchronous dispatches on a GPU: after the first, they take the compiled path; a host access
    sends the next one through the Python path (which places the buffers), and results stay right."""
    try:
        gpu = metalgpu.Interface("cuda")
    except metalgpu.BackendUnavailableError as error:
        pytest.skip(f"no GPU here: {error}")
    assert cuda_repeat.wait(120), cuda_repeat.failure
    gpu.load_shader_from_str("#include <metal_stdlib>\nusing namespace metal;\n"
                             "kernel void add_one(device int* a [[buffer(0)]], uint i [[thread_position_in_grid]]) "
                             "{ a[i] += 1; }")
    gpu.set_function("add_one")
    data = gpu.array_to_buffer(np.zeros(1000, dtype=np.int32))
    backend = gpu._backend
    python_launches = []
    launch = backend.launch
    backend.launch = lambda *args: python_launches.append(1) or launch(*args)
    for _ in range(10):
        gpu.run_function(1000, [data])
    assert len(python_launches) == 1 and backend.compiled_repeat is not None
    np.testing.assert_array_equal(data.contents, 10)  # a host access
    data.contents[:5] = -1
    for _ in range(10):
        gpu.run_function(1000, [data])
    placed_again = len(python_launches)
    assert 2 <= placed_again <= 4  # the Python path placed the buffer again (cuda_memory.py decides where)
    for _ in range(10):
        gpu.run_function(1000, [data])
    assert len(python_launches) == placed_again  # and the compiled path took over again
    np.testing.assert_array_equal(data.contents[:5], 19)
    np.testing.assert_array_equal(data.contents[5:], 30)
    gpu.close()
    with pytest.raises(metalgpu.MetalError, match="closed"):
        gpu.run_function(1000, [data])


FAULT_IN_A_REPEAT = '''
import numpy as np
import metalgpu
from metalgpu.backends import cuda_repeat

SOURCE = """
#include <metal_stdlib>
using namespace metal;
kernel void poke(device float* out [[buffer(0)]], device const uint* wild [[buffer(1)]],
                 uint i [[thread_position_in_grid]]) {
    device float* p = wild[0] ? (device float*)8 : out;  // address 8: never mapped
    p[i] = 1.0f;
}
kernel void aim(device uint* wild [[buffer(0)]], uint i [[thread_position_in_grid]]) { wild[0] = 1; }
"""
gpu = metalgpu.Interface("cuda")
assert cuda_repeat.wait(120), cuda_repeat.failure
gpu.load_shader_from_str(SOURCE)
out, wild = gpu.create_buffer(64, "float"), gpu.array_to_buffer(np.zeros(1, dtype=np.uint32))
for _ in range(3):
    gpu.run_function(64, [out, wild], function_name="poke")
assert gpu._backend.compiled_repeat is not None
gpu.run_function(1, [wild], function_name="aim")  # on the GPU: no host access, the next poke is a repeat
try:
    gpu.run_function(64, [out, wild], function_name="poke")
except metalgpu.DispatchError as error:
    print("DISPATCH_ERROR", str(error))
try:
    gpu.run_function(64, [out, wild], function_name="poke")
except metalgpu.DispatchError as error:
    print("THEN", str(error))
'''


def test_a_fault_in_a_compiled_repeat_is_a_dispatch_error(tmp_path):
    try:
        metalgpu.Interface("cuda").close()
    except metalgpu.BackendUnavailableError as error:
        pytest.skip(f"no GPU here: {error}")
    script = tmp_path / "fault.py"
    script.write_text(FAULT_IN_A_REPEAT)
    env = dict(os.environ, PYTHONPATH=str(Path(metalgpu.__file__).parent.parent))
    # A subprocess: the fault leaves CUDA unusable for the rest of the process.
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "DISPATCH_ERROR kernel 'poke': CUDA_ERROR_ILLEGAL_ADDRESS" in result.stdout, output
    assert "THEN this Interface's CUDA context failed earlier (CUDA_ERROR_ILLEGAL_ADDRESS)" in result.stdout, output


FAILED_BUILDS = '''
import sys, sysconfig, tempfile
from pathlib import Path
from metalgpu.backends import cuda_repeat
from metalgpu.cache import CompileCache
cache = CompileCache(tempfile.mkdtemp())
if sys.argv[1] == "no headers":
    sysconfig.get_paths = lambda: {"include": tempfile.mkdtemp()}
else:
    broken = Path(tempfile.mkdtemp()) / "broken.cpp"
    broken.write_text("this is not C++")
    cuda_repeat.SOURCE = broken
cuda_repeat.start(cache)
print("WAIT", cuda_repeat.wait(300), "READY", cuda_repeat.ready())
print("FAILURE", cuda_repeat.failure)
log = cuda_repeat.failure.rpartition("build log: ")[2].rstrip(")")
print("LOG", Path(log).exists() and "error" in Path(log).read_text())
cuda_repeat._path = cuda_repeat.failure = None  # as a later process with the same cache would start
cuda_repeat.start(cache)
print("AGAIN", cuda_repeat.failure)
'''


@pytest.mark.parametrize("case", ["no headers", "broken build"])
def test_without_the_compiled_path_it_says_why(tmp_path, case):
    script = tmp_path / "failed.py"
    script.write_text(FAILED_BUILDS)
    env = dict(os.environ, PYTHONPATH=str(Path(metalgpu.__file__).parent.parent))
    result = subprocess.run([sys.executable, str(script), case], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WAIT False READY None" in result.stdout
    if case == "no headers":
        assert "FAILURE not built: Python's C headers are not installed" in result.stdout
    else:
        assert "FAILURE not loaded from" in result.stdout and "LOG True" in result.stdout, result.stdout
        assert "AGAIN not built: an earlier build failed" in result.stdout, result.stdout  # no rebuild each time
