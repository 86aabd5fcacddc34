"""dispatch.PlanCache on its own (the key, the weak references, eviction), and the checks the Interface makes of
each Buffer before a plan is built from its memory."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import metalgpu
from metalgpu.dispatch import LaunchPlan, PlanCache


class Owner:
    """Stands for a Buffer: a key holds its id, the cache a weak reference to it."""


def _plan(name: str = "k") -> LaunchPlan:
    return LaunchPlan(name, (1, 1, 1), (1, 1, 1), (1, 1, 1), [0] * 31, [0] * 31)


def test_a_plan_is_found_by_the_objects_given():
    cache, function, a, b = PlanCache(), object(), Owner(), Owner()
    key, plan = cache.find(function, 64, None, None, [a, b])
    assert plan is None and key == (function, 64, None, None, id(a), id(b)) == PlanCache.key(function, 64, None,
                                                                                              None, (a, b))
    stored = _plan()
    cache.store(key, stored, [a, b])
    assert cache.find(function, 64, None, None, (a, b)) == (key, stored)  # a tuple keys as the list did
    assert cache.find(function, 64, None, None, [b, a])[1] is None
    assert cache.find(function, 64, 32, None, [a, b])[1] is None
    memory_key, _ = cache.find(function, 64, None, {1: 8, 0: 4}, [a, b])
    assert memory_key[3] == ((0, 4), (1, 8))  # threadgroup memory in index order


@pytest.mark.parametrize("grid, arguments", [([64], [Owner()]), (64, iter([Owner()])), (64, "ab")])
def test_what_cannot_be_a_key_finds_nothing(grid, arguments):
    assert PlanCache().find(object(), grid, None, None, arguments) == (None, None)


def test_a_plan_goes_with_any_object_its_key_names():
    cache, function, a, b = PlanCache(), object(), Owner(), Owner()
    key, _ = cache.find(function, 64, None, None, [a, b])
    cache.store(key, _plan(), [a, b])
    del b
    gc.collect()
    assert len(cache) == 0 and not cache._owners


def test_the_oldest_plan_goes_first_and_clear_forgets_all():
    cache, function = PlanCache(), object()
    owners = [Owner() for _ in range(PlanCache.LIMIT + 1)]
    keys = []
    for owner in owners:
        key, _ = cache.find(function, 64, None, None, [owner])
        cache.store(key, _plan(), [owner])
        keys.append(key)
    assert len(cache) == PlanCache.LIMIT and keys[0] not in cache.table and keys[-1] in cache.table
    del owners[0]  # the evicted plan's weak reference is gone with it: nothing fires
    gc.collect()
    assert len(cache) == PlanCache.LIMIT
    cache.clear()
    assert len(cache) == 0 and cache.plans() == []


SOURCE = """#include <metal_stdlib>
using namespace metal;
kernel void twice(device const int* a [[buffer(0)]], device int* b [[buffer(1)]], uint i [[thread_position_in_grid]]) {
    b[i] = 2 * a[i];
}
"""


def test_a_buffer_of_another_interface_is_refused_naming_the_parameter():
    with metalgpu.Interface("cpu") as gpu, metalgpu.Interface("cpu") as other:
        gpu.load_shader_from_str(SOURCE)
        gpu.set_function("twice")
        a, b = gpu.array_to_buffer(np.arange(4, dtype=np.int32)), other.create_buffer(4, "int")
        with pytest.raises(metalgpu.ArgumentError, match="parameter 'b' .* belongs to another Interface"):
            gpu.run_function(4, [a, b])
        released = gpu.create_buffer(4, "int")
        released.release()
        with pytest.raises(metalgpu.BufferReleasedError, match="parameter 'b' .* was released"):
            gpu.run_function(4, [a, released])
        with pytest.raises(metalgpu.BufferReleasedError, match=r"buffers\[2\]: the buffer was released"):
            gpu.run_function(4, [a, gpu.create_buffer(4, "int"), released])  # a slot no parameter binds
        out = gpu.create_buffer(4, "int")
        gpu.run_function(4, [a, out])
        np.testing.assert_array_equal(out.contents, [0, 2, 4, 6])
        (plan,) = gpu._plans.plans()
        assert plan.allocations == [a._allocation, out._allocation]  # the plan holds memory, not Buffers
