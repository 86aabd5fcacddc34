"""Dispatches whose constant values change from one to the next (constant_plans.py): each runs with its own values,
the checks of its buffers and sizes are reused from a recent dispatch like it, and its values are checked as
build_plan checks them."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import metalgpu
import metalgpu.interface
from metalgpu.constant_plans import TemplateCache, kind_of

SOURCE = """
#include <metal_stdlib>
using namespace metal;
struct Affine { float scale; int shift; };
kernel void set_value(device float* out [[buffer(0)]], constant float& a [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) { out[i] = a; }
kernel void twice_plus(device float* x [[buffer(0)]], constant float& a [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) { x[i] = 2.0f * x[i] + a; }
kernel void add_int(device int* out [[buffer(0)]], constant int& k [[buffer(1)]],
                    uint i [[thread_position_in_grid]]) { out[i] += k; }
kernel void affine(device float* out [[buffer(0)]], constant Affine& p [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) { out[i] = out[i] * p.scale + float(p.shift); }
kernel void weigh(device float* out [[buffer(0)]], const device float* w [[buffer(1)]],
                  uint i [[thread_position_in_grid]]) { out[i] = w[i]; }
"""


@pytest.fixture
def counted(monkeypatch):
    """How many times the Interface built a plan from scratch (dispatch.build_plan)."""
    calls = []
    build = metalgpu.interface.build_plan

    def counting(*args, **kwargs):
        calls.append(args[0].name)
        return build(*args, **kwargs)

    monkeypatch.setattr(metalgpu.interface, "build_plan", counting)
    return calls


@pytest.fixture
def gpu(iface):
    iface.load_shader_from_str(SOURCE)
    return iface


def test_a_loop_with_a_changing_scalar_checks_its_arguments_once(gpu, counted):
    out = gpu.create_buffer(8, "float")
    values = [0.5 + step for step in range(20)]  # a new float object every dispatch, as a loop makes them
    for value in values:
        gpu.run_function(8, [out, value], "set_value")
        assert out.contents.tolist() == [value] * 8  # exact: every value is a float32
    x = gpu.array_to_buffer(np.zeros(8, dtype=np.float32))
    for value in values:
        gpu.run_function(8, [x, value], "twice_plus")
    expected = np.float32(0)
    for value in values:
        expected = np.float32(2) * expected + np.float32(value)
    np.testing.assert_array_equal(x.contents, np.full(8, expected, dtype=np.float32))  # exact: below 2**24
    assert counted == ["set_value", "twice_plus"]
    assert len(gpu._plans.templates) == 2 and len(gpu._plans) == 0  # the id table holds no plan with constants


def test_numpy_scalars_convert_as_they_do_without_a_cached_plan(gpu, counted):
    out = gpu.create_buffer(4, "float")
    gpu.run_function(4, [out, 1.0], "set_value")
    for value in [np.float32(0.1), np.float64(0.1), 0.1, np.float16(0.1), 3, np.int32(-7), np.float64(0.7)]:
        gpu.run_function(4, [out, value], "set_value")
        assert out.contents.tolist() == [float(np.float32(value))] * 4, value  # float64 rounds to nearest float32
    ints = gpu.array_to_buffer(np.zeros(4, dtype=np.int32))
    for value in [5, np.int8(-3), np.uint32(7), np.int64(-(2**31)), np.int64(2**31 - 1)]:
        before = ints.contents.copy()
        gpu.run_function(4, [ints, value], "add_int")
        np.testing.assert_array_equal(ints.contents, before + np.int32(value))
    # one plan per kind of value (float, np.float32, ...), each then re-packed: fewer than one per dispatch
    assert counted.count("set_value") == 6 and counted.count("add_int") == 4


def _error(call) -> str:
    with pytest.raises(metalgpu.ArgumentError) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize("kernel, good, bad", [("add_int", 5, 2**31), ("add_int", np.int64(1), np.int64(-(2**40))),
                                               ("set_value", 2.0, 1e300), ("set_value", 2.0, float("-1e39"))])
def test_a_value_out_of_range_raises_as_without_a_cached_plan(gpu, kernel, good, bad):
    out = gpu.create_buffer(4, "int" if kernel == "add_int" else "float")
    fresh = _error(lambda: gpu.run_function(4, [out, bad], kernel))
    assert len(gpu._plans.templates) == 0  # a refused dispatch leaves no template
    gpu.run_function(4, [out, good], kernel)
    assert len(gpu._plans.templates) == 1
    assert _error(lambda: gpu.run_function(4, [out, bad], kernel)) == fresh
    assert "parameter 'k'" in fresh or "parameter 'a'" in fresh
    gpu.run_function(4, [out, good], kernel)  # the template still serves good values
    assert out.contents.tolist() == [good * 2 if kernel == "add_int" else good] * 4


def test_struct_fields_change_and_are_checked(gpu, counted):
    out = gpu.array_to_buffer(np.ones(4, dtype=np.float32))
    expected = np.ones(4, dtype=np.float32)
    for scale, shift in [(2.0, 1), (0.5, -3), (4.0, 7)]:
        gpu.run_function(4, [out, {"scale": scale, "shift": shift}], "affine")
        expected = expected * np.float32(scale) + np.float32(shift)
        np.testing.assert_array_equal(out.contents, expected)  # exact: small binary fractions
    assert counted == ["affine"]
    missing = _error(lambda: gpu.run_function(4, [out, {"scale": 1.0}], "affine"))
    unknown = _error(lambda: gpu.run_function(4, [out, {"scale": 1.0, "shift": 0, "bias": 2}], "affine"))
    too_big = _error(lambda: gpu.run_function(4, [out, {"scale": 1.0, "shift": 2**31}], "affine"))
    gpu._plans.clear()  # the same dispatches without a template say the same
    assert _error(lambda: gpu.run_function(4, [out, {"scale": 1.0}], "affine")) == missing
    assert "'shift' are not given" in missing and "no field 'bias'" in unknown and "parameter 'p'" in too_big
    gpu.run_function(4, [out, {"scale": 1.0, "shift": 0}], "affine")
    assert _error(lambda: gpu.run_function(4, [out, {"scale": 1.0, "shift": 0, "bias": 2}], "affine")) == unknown
    assert _error(lambda: gpu.run_function(4, [out, {"scale": 1.0, "shift": 2**31}], "affine")) == too_big


def test_small_arrays_change_and_keep_their_own_conversion(gpu, counted):
    out = gpu.create_buffer(4, "float")
    for step in range(3):
        weights = np.arange(4, dtype=np.float32) + step
        gpu.run_function(4, [out, weights], "weigh")
        np.testing.assert_array_equal(out.contents, weights)
    converted = np.array([0.1, 0.2, 0.3, 0.4])  # float64: converted to float, not reinterpreted
    gpu.run_function(4, [out, converted], "weigh")
    np.testing.assert_array_equal(out.contents, converted.astype(np.float32))
    gpu.run_function(4, [out, converted * 2], "weigh")
    np.testing.assert_array_equal(out.contents, (converted * 2).astype(np.float32))
    gpu.run_function(4, [out, [9.0, 8.0, 7.0, 6.0]], "weigh")
    assert out.contents.tolist() == [9.0, 8.0, 7.0, 6.0]
    gpu.run_function(4, [out, gpu.array_to_buffer(np.full(4, 3.0, dtype=np.float32))], "weigh")  # a Buffer there
    assert out.contents.tolist() == [3.0] * 4
    assert counted == ["weigh"] * 4  # float32 arrays, float64 arrays, a list, a Buffer: one plan each
    with pytest.raises(metalgpu.ArgumentError):
        gpu.run_function(4, [out, np.zeros((2, 2), dtype=np.float32)[:, :0]], "weigh")  # no bytes at all


def test_asynchronous_dispatches_keep_their_own_values(gpu):
    x = gpu.array_to_buffer(np.zeros(64, dtype=np.float32))
    values = [float(step + 1) for step in range(12)]
    handles = [gpu.run_function(64, [x, value], "twice_plus", wait_for_completion=False) for value in values]
    for handle in handles:
        handle.wait()
    expected = sum(value * 2 ** (len(values) - 1 - step) for step, value in enumerate(values))  # order-sensitive
    assert x.contents.tolist() == [expected] * 64  # exact: integers below 2**24


def test_a_recorded_batch_replays_its_own_values(gpu):
    x = gpu.array_to_buffer(np.zeros(16, dtype=np.float32))
    with gpu.batch() as batch:
        for value in [1.0, 2.0, 3.0]:
            gpu.run_function(16, [x, value], "twice_plus")
    assert x.contents.tolist() == [11.0] * 16  # ((0 * 2 + 1) * 2 + 2) * 2 + 3
    for value in [100.0, 200.0]:  # dispatches like the batch's, with other values, after it was recorded
        gpu.run_function(16, [x, value], "twice_plus")
    x.write(np.zeros(16, dtype=np.float32))
    batch.replay()
    assert x.contents.tolist() == [11.0] * 16
    handle = batch.replay(wait=False)
    gpu.run_function(16, [x, 0.5], "twice_plus", wait_for_completion=False)
    handle.wait()
    gpu.synchronize()
    assert x.contents.tolist() == [(11.0 * 8 + 11.0) * 2 + 0.5] * 16


def test_a_template_goes_with_its_buffers(gpu, counted):
    out, other = gpu.create_buffer(4, "float"), gpu.create_buffer(4, "float")
    gpu.run_function(4, [out, 1.0], "set_value")
    gpu.run_function(4, [other, 1.0], "set_value")
    assert len(gpu._plans.templates) == 2
    del other
    gc.collect()
    assert len(gpu._plans.templates) == 1
    gpu.create_buffer(4, "float").release()  # any release forgets every plan
    assert len(gpu._plans.templates) == 0
    gpu.run_function(4, [out, 2.0], "set_value")
    assert out.contents.tolist() == [2.0] * 4 and len(counted) == 3


class Owner:
    """Stands for a Buffer: a key holds its id, the cache a weak reference to it."""


def test_a_template_key_names_buffers_by_id_and_values_by_kind():
    cache, function, buffer = TemplateCache(Owner), object(), Owner()
    key, found = cache.find(function, 64, None, None, [buffer, 0.5, None])
    assert found is None and key == (function, 64, None, None, id(buffer), float, id(None))
    assert cache.key(function, 64, None, None, [buffer, 2.5, None]) == key
    assert cache.key(function, 64, None, None, [buffer, np.float32(2.5), None]) != key
    assert cache.key(function, 64, None, None, [Owner(), 2.5, None]) != key
    assert kind_of(np.zeros(3, np.float32)) == kind_of(np.ones(3, np.float32)) != kind_of(np.zeros(4, np.float32))
    assert kind_of(np.zeros(3, np.float32)) != kind_of(np.zeros(3, np.float64))
    point = np.zeros((), np.dtype([("x", np.float32), ("y", np.float32)]))[()]
    assert kind_of(point) == (np.void, point.dtype) != kind_of(np.zeros((), np.dtype([("x", np.int64)]))[()])


def test_an_isolated_worker_runs_each_dispatch_with_its_values():
    """Interface(isolate=True) packs constants into each run message (cpu_isolated.py): from each plan's own."""
    try:
        gpu = metalgpu.Interface(backend="cpu", isolate=True)
    except metalgpu.BackendUnavailableError as error:
        if "seccomp" in str(error):
            pytest.skip(f"this kernel lacks what the sandbox needs: {error}")
        raise
    with gpu:
        gpu.load_shader_from_str(SOURCE)
        x = gpu.array_to_buffer(np.zeros(16, dtype=np.float32))
        for value in [1.0, 2.0, 3.0]:
            gpu.run_function(16, [x, value], "twice_plus")
        handles = [gpu.run_function(16, [x, value], "twice_plus", wait_for_completion=False) for value in [4.0, 5.0]]
        with gpu.batch() as batch:
            for value in [6.0, 7.0]:
                gpu.run_function(16, [x, value], "twice_plus")
        for handle in handles:
            handle.wait()
        batch.replay()
        expected = 0.0
        for value in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 6.0, 7.0]:
            expected = 2 * expected + value
        assert x.contents.tolist() == [expected] * 16  # exact: integers below 2**24
        assert len(gpu._plans.templates) == 1
