"""SIMD-group and quad-group functions, each checked against a model of Apple's semantics: 200 threads in
threadgroups of 80, so every threadgroup has a partial last SIMD-group (16 lanes) and the last threadgroup is
partial too (40 threads: SIMD-groups of 32 and 8); divergent code sees only its active lanes."""
from __future__ import annotations

import numpy as np
import pytest

import metalgpu

GRID, GROUP = 200, 80


def _simdgroups(width: int = 32) -> list[list[int]]:
    """The threads (grid indices) of each SIMD-group (width 32) or quad (width 4), in lane order."""
    out = []
    for start in range(0, GRID, GROUP):
        size = min(GROUP, GRID - start)
        for sg in range(0, size, 32):
            lanes = list(range(start + sg, start + min(sg + 32, size)))
            out += [lanes[q:q + width] for q in range(0, len(lanes), width)] if width < 32 else [lanes]
    return out


UNDEFINED = object()


def _model(name: str, x: np.ndarray, y: np.ndarray, width: int) -> list:
    """The expected result of each thread (or UNDEFINED where Metal leaves it undefined)."""
    expected: list = [None] * GRID
    for members in _simdgroups(width):
        for j, gid in enumerate(members):
            expected[gid] = _lane_result(name, [x[m] for m in members], [y[m] for m in members], j, width)
    return expected


def _lane_result(name, xs, ys, j, width):
    n = len(xs)

    def at(values, k):
        return values[k] if 0 <= k < n else UNDEFINED

    reduce = {"sum": np.add, "product": np.multiply, "min": np.minimum, "max": np.maximum,
              "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}
    if name in reduce:
        return _fold(reduce[name], xs)
    if name.startswith("prefix_"):
        op = np.add if name.endswith("sum") else np.multiply
        part = xs[:j + 1] if "inclusive" in name else xs[:j]
        return _fold(op, part) if part else op.identity * np.ones_like(xs[0])
    if name == "shuffle":
        return at(xs, (j * 7 + 3) % width)
    if name == "broadcast":
        return at(xs, 2)
    if name == "broadcast_first":
        return xs[0]
    if name == "shuffle_xor":
        return at(xs, j ^ (5 % width))
    delta = 3 if width == 32 else 1
    if name == "shuffle_up":
        return xs[j] if j < delta else xs[j - delta]
    if name == "shuffle_down":
        return xs[j] if j + delta >= width else at(xs, j + delta)
    if name == "shuffle_rotate_up":
        return at(xs, (j - delta) % width)
    if name == "shuffle_rotate_down":
        return at(xs, (j + delta) % width)
    if name == "shuffle_and_fill_up":
        return at(xs, j - delta) if j >= delta else at(ys, j - delta + width)
    if name == "shuffle_and_fill_down":
        return at(xs, j + delta) if j + delta < width else at(ys, j + delta - width)
    if name == "shuffle_and_fill_up_modulo":
        k, segment = j % 8 if width == 32 else j % 2, 8 if width == 32 else 2
        base = j - k
        d = 3 if width == 32 else 1
        return at(xs, j - d) if k >= d else at(ys, base + k - d + segment)
    if name == "all":
        return int(all(v > 0 for v in xs))
    if name == "any":
        return int(any(v > 5 for v in xs))
    if name == "ballot":
        return sum(1 << k for k, v in enumerate(xs) if v > 0)
    if name == "is_first":
        return int(j == 0)
    if name == "active_threads_mask":
        return (1 << n) - 1
    raise AssertionError(name)


def _fold(op, values):
    result = values[0]
    for v in values[1:]:
        result = op(result, v)
    return result


_EXPRESSIONS = {
    "sum": "P_sum(x[gid])", "product": "P_product(x[gid])", "min": "P_min(x[gid])", "max": "P_max(x[gid])",
    "and": "P_and(x[gid])", "or": "P_or(x[gid])", "xor": "P_xor(x[gid])",
    "prefix_inclusive_sum": "P_prefix_inclusive_sum(x[gid])",
    "prefix_exclusive_sum": "P_prefix_exclusive_sum(x[gid])",
    "prefix_inclusive_product": "P_prefix_inclusive_product(x[gid])",
    "prefix_exclusive_product": "P_prefix_exclusive_product(x[gid])",
    "shuffle": "P_shuffle(x[gid], ushort((lane * 7 + 3) % W))", "broadcast": "P_broadcast(x[gid], 2)",
    "broadcast_first": "P_broadcast_first(x[gid])", "shuffle_xor": "P_shuffle_xor(x[gid], 5 % W)",
    "shuffle_up": "P_shuffle_up(x[gid], D)", "shuffle_down": "P_shuffle_down(x[gid], D)",
    "shuffle_rotate_up": "P_shuffle_rotate_up(x[gid], D)", "shuffle_rotate_down": "P_shuffle_rotate_down(x[gid], D)",
    "shuffle_and_fill_up": "P_shuffle_and_fill_up(x[gid], y[gid], D)",
    "shuffle_and_fill_down": "P_shuffle_and_fill_down(x[gid], y[gid], D)",
    "shuffle_and_fill_up_modulo": "P_shuffle_and_fill_up(x[gid], y[gid], D, W == 32 ? 8 : 2)",
    "all": "uint(P_all(x[gid] > 0))", "any": "uint(P_any(x[gid] > 5))",
    "ballot": "ulong(P_vote::vote_t(P_ballot(x[gid] > 0)))", "is_first": "uint(P_is_first())",
    "active_threads_mask": "ulong(P_vote::vote_t(P_active_threads_mask()))",
}
_RESULT_TYPES = {"all": ("uint", np.uint32), "any": ("uint", np.uint32), "is_first": ("uint", np.uint32),
                 "ballot": ("ulong", np.uint64), "active_threads_mask": ("ulong", np.uint64)}
_TYPES = {"float": np.float32, "int": np.int32, "uint": np.uint32, "short": np.int16, "ushort": np.uint16,
          "uchar": np.uint8, "half": np.float16}
_INTEGER_ONLY = {"and", "or", "xor"}
_CASES = [(name, t) for name in _EXPRESSIONS for t in ("float", "int")
          if not (name in _INTEGER_ONLY and t == "float")] + \
         [(name, t) for name in ("sum", "min", "max", "prefix_exclusive_sum", "shuffle_xor", "broadcast")
          for t in ("uint", "short", "ushort", "half")] + [("and", "uchar"), ("or", "ushort"), ("xor", "uint")]


def _kernel_name(prefix: str, name: str, type_name: str) -> str:
    return f"{prefix}_{name}_{type_name}"


def _simd_source() -> str:
    kernels = ["#include <metal_stdlib>", "using namespace metal;"]
    for prefix, width, delta in (("simd", 32, 3), ("quad", 4, 1)):
        for name, t in _CASES:
            result = _RESULT_TYPES.get(name, (t, None))[0]
            expression = _EXPRESSIONS[name].replace("P_", f"{prefix}_").replace("W", str(width)) \
                .replace("D", str(delta))
            kernels.append(f"""
kernel void {_kernel_name(prefix, name, t)}(device const {t}* x [[buffer(0)]], device const {t}* y [[buffer(1)]],
        device {result}* out [[buffer(2)]], uint gid [[thread_position_in_grid]],
        ushort lane [[thread_index_in_{prefix}group]]) {{
    out[gid] = {expression};
}}""")
    # float4: the same functions component by component
    for name in ("sum", "min", "max", "prefix_inclusive_sum", "shuffle_xor", "shuffle_down"):
        expression = _EXPRESSIONS[name].replace("P_", "simd_").replace("W", "32").replace("D", "3")
        kernels.append(f"""
kernel void simd_{name}_float4(device const float4* x [[buffer(0)]], device const float4* y [[buffer(1)]],
        device float4* out [[buffer(2)]], uint gid [[thread_position_in_grid]],
        ushort lane [[thread_index_in_simdgroup]]) {{
    out[gid] = {expression};
}}""")
    return "\n".join(kernels)


@pytest.fixture(scope="module")
def simd_interface(backend):
    interface = metalgpu.Interface(backend=backend)
    interface.load_shader_from_str(_simd_source())
    yield interface
    interface.close()


@pytest.mark.parametrize("prefix", ["simd", "quad"])
@pytest.mark.parametrize("name,type_name", _CASES)
def test_group_function_against_model(simd_interface, prefix, name, type_name):
    dtype = _TYPES[type_name]
    rng = np.random.default_rng(10)
    if np.issubdtype(dtype, np.floating) or "product" in name:
        low = 0 if np.issubdtype(dtype, np.unsignedinteger) else -2
        x = rng.integers(low, 3, GRID).astype(dtype)   # products of up to 32 values of |v| <= 2 stay exact
        if "product" in name and np.issubdtype(dtype, np.floating):
            x[np.abs(x) == 0] = 1
    else:
        info = np.iinfo(dtype)
        x = rng.integers(max(info.min, -40), min(info.max, 40) + 1, GRID).astype(dtype)
    y = (x + 7).astype(dtype)
    result_type, result_dtype = _RESULT_TYPES.get(name, (type_name, dtype))
    out = simd_interface.create_buffer(GRID, result_type)
    simd_interface.run_function(GRID, [simd_interface.array_to_buffer(x), simd_interface.array_to_buffer(y), out],
                                _kernel_name(prefix, name, type_name), threads_per_threadgroup=GROUP)
    expected = _model(name, x, y, 32 if prefix == "simd" else 4)
    got = out.contents
    defined = [gid for gid in range(GRID) if expected[gid] is not UNDEFINED]
    assert len(defined) > GRID // 2
    want = np.array([expected[gid] for gid in defined]).astype(result_dtype)
    np.testing.assert_array_equal(got[defined], want)


@pytest.mark.parametrize("name", ["sum", "min", "max", "prefix_inclusive_sum", "shuffle_xor", "shuffle_down"])
def test_simd_function_on_float4(simd_interface, name):
    x = np.random.default_rng(11).integers(-9, 10, (GRID, 4)).astype(np.float32)
    out = simd_interface.create_buffer(GRID * 4, "float")
    simd_interface.run_function(GRID, [simd_interface.array_to_buffer(x), simd_interface.array_to_buffer(x), out],
                                f"simd_{name}_float4", threads_per_threadgroup=GROUP)
    got = out.contents.reshape(GRID, 4)
    for component in range(4):
        expected = _model(name, x[:, component], x[:, component], 32)
        defined = [g for g in range(GRID) if expected[g] is not UNDEFINED]
        np.testing.assert_array_equal(got[defined, component], np.array([expected[g] for g in defined]))


DIVERGENT = """
#include <metal_stdlib>
using namespace metal;

// Lanes whose index is a multiple of 3 skip the SIMD-group functions: the others are the active lanes.
kernel void divergent(device const int* x [[buffer(0)]], device int* sums [[buffer(1)]],
                      device int* prefix [[buffer(2)]], device ulong* active [[buffer(3)]],
                      uint gid [[thread_position_in_grid]], ushort lane [[thread_index_in_simdgroup]])
{
    sums[gid] = -1;
    if (lane % 3 != 0) {
        sums[gid] = simd_sum(x[gid]);
        prefix[gid] = simd_prefix_exclusive_sum(x[gid]);
        active[gid] = ulong(simd_active_threads_mask());
    }
    threadgroup_barrier(mem_flags::mem_device);
}
"""


def test_simd_functions_see_only_active_lanes(iface):
    iface.load_shader_from_str(DIVERGENT)
    x = np.random.default_rng(12).integers(-40, 40, GRID).astype(np.int32)
    sums, prefix = iface.create_buffer(GRID, "int"), iface.create_buffer(GRID, "int")
    active = iface.create_buffer(GRID, "ulong")
    iface.run_function(GRID, [iface.array_to_buffer(x), sums, prefix, active], "divergent",
                       threads_per_threadgroup=GROUP)
    for members in _simdgroups():
        lanes = [j for j in range(len(members)) if j % 3 != 0]
        total = sum(int(x[members[j]]) for j in lanes)
        mask = sum(1 << j for j in lanes)
        for j, gid in enumerate(members):
            if j % 3 == 0:
                assert sums.contents[gid] == -1
                continue
            assert sums.contents[gid] == total
            assert prefix.contents[gid] == sum(int(x[members[k]]) for k in lanes if k < j)
            assert active.contents[gid] == mask
