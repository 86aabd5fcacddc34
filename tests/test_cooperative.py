"""Threadgroups, barriers, SIMD-groups and atomics, checked against numpy.

Integer-valued float inputs keep every sum exact, so float results are compared exactly unless a tolerance is
stated. The SIMD-group and quad-group functions against their model are in test_simdgroup_functions.py."""
from __future__ import annotations

import numpy as np
import pytest

import metalgpu
from conftest import load_kernel
from metalgpu.msl.analysis import cooperative_kernels
from metalgpu.msl.parser import parse
from metalgpu.msl.preprocess import preprocess

# -- the front end's choice: cooperative or the plain loop ------------------------------------------------------


def _cooperative(source: str) -> dict[str, bool]:
    pre = preprocess(source, "<test>")
    program = parse(pre.tokens)
    return {k.host_name: flag for k, flag in zip(program.kernels, cooperative_kernels(pre.tokens, program))}


def test_analysis_marks_only_kernels_that_need_it():
    source = """
    #define SYNC threadgroup_barrier(mem_flags::mem_threadgroup)
    struct Acc { float v; void add(float x) { v += simd_sum(x); } };
    static float helper(float x) { return x * 2.0f; }
    static void deep(device float* p) { SYNC; }
    static void middle(device float* p) { deep(p); }
    template <class T> T twice(T x) { return quad_broadcast(x, 0); }
    kernel void plain(device float* a [[buffer(0)]], uint i [[thread_position_in_grid]]) { a[i] = helper(a[i]); }
    kernel void atomics_only(device atomic_uint* a [[buffer(0)]]) {
        atomic_fetch_add_explicit(a, 1u, memory_order_relaxed);
    }
    kernel void transitive(device float* a [[buffer(0)]]) { middle(a); }
    kernel void member(device float* a [[buffer(0)]]) { Acc acc{0}; acc.add(a[0]); }
    kernel void templated(device float* a [[buffer(0)]]) { a[0] = twice(a[0]); }
    kernel void declared(device float* a [[buffer(0)]]) { threadgroup float t[4]; t[0] = a[0]; a[1] = t[0]; }
    kernel void param(device float* a [[buffer(0)]], threadgroup float* t [[threadgroup(0)]]) { t[0] = a[0]; }
    """
    assert _cooperative(source) == {"plain": False, "atomics_only": False, "transitive": True, "member": True,
                                    "templated": True, "declared": True, "param": True}


def test_analysis_is_conservative_about_operators():
    source = """
    struct V { float x; };
    V operator+(V a, V b) { threadgroup_barrier(mem_flags::mem_none); return V{a.x + b.x}; }
    kernel void k(device float* a [[buffer(0)]]) { a[0] = 1.0f; }
    """
    assert _cooperative(source) == {"k": True}


def test_an_address_space_qualified_member_function_needs_no_fibers():
    # MLX's complex.h: a conversion operator qualified `const threadgroup` (no name the analysis reads) and an
    # operator on threadgroup references declare no threadgroup memory; they made every MLX kernel run as fibers
    source = """
    template <class T> struct vec2 { T x, y; };
    struct cplx {
        float re, im;
        constexpr operator vec2<float>() const threadgroup { return {re, im}; }
        float real() const threadgroup { return re; }
    };
    template <class T> constexpr threadgroup T& operator+=(threadgroup T& a, const threadgroup T& b) { return a; }
    kernel void k(device float* a [[buffer(0)]], uint i [[thread_position_in_grid]]) { a[i] = a[i] + 1.0f; }
    """
    assert _cooperative(source) == {"k": False}
    declared = source.replace("a[i] = a[i] + 1.0f;", "threadgroup float t[4]; t[0] = a[i]; a[i] = t[0];")
    assert _cooperative(declared) == {"k": True}


# -- threadgroup memory and barriers ----------------------------------------------------------------------------

@pytest.mark.parametrize("group", [256, 1024, 100])
def test_tree_reduction_in_threadgroup_memory(iface, group):
    load_kernel(iface, "coop_reduce.metal")
    n = group * 300  # large enough to run on every OS thread of the pool
    values = np.random.default_rng(1).integers(-50, 50, n).astype(np.float32)
    partial = iface.create_buffer(-(-n // group), "float")
    iface.run_function(n, [iface.array_to_buffer(values), partial], "tree_sum", threads_per_threadgroup=group)
    np.testing.assert_array_equal(partial.contents, values.reshape(-1, group).sum(axis=1))


def test_tree_reduction_through_threadgroup_parameter_and_helper(iface):
    load_kernel(iface, "coop_reduce.metal")
    n, group = 64 * 512, 64
    values = np.random.default_rng(2).integers(-50, 50, n).astype(np.float32)
    partial = iface.create_buffer(n // group, "float")
    iface.run_function(n, [iface.array_to_buffer(values), partial], "tree_sum_param", threads_per_threadgroup=group,
                       threadgroup_memory={0: group * 4})
    np.testing.assert_array_equal(partial.contents, values.reshape(-1, group).sum(axis=1))


def test_reads_just_past_a_threadgroup_array_are_discarded_not_fatal(iface):
    """A merge step loads its next candidate before knowing it needs it, a few elements past the array's end, as
    production sort kernels do; Apple's GPUs allow it, and so must CUDA's end of a block's shared memory."""
    source = """
        #include <metal_stdlib>
        using namespace metal;
        kernel void shift_down(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                               uint i [[thread_position_in_grid]], uint t [[thread_position_in_threadgroup]]) {
            threadgroup float tile[64];
            tile[t] = in[i];
            threadgroup_barrier(mem_flags::mem_threadgroup);
            float ahead = tile[t + 8];  // past the end for the last 8 threads: loaded, then not used
            out[i] = t + 8 < 64 ? ahead : -1.0f;
        }
    """
    iface.load_shader_from_str(source)
    values = np.arange(256, dtype=np.float32)
    out = iface.create_buffer(256, "float")
    iface.run_function(256, [iface.array_to_buffer(values), out], "shift_down", threads_per_threadgroup=64)
    t = np.arange(256) % 64
    np.testing.assert_array_equal(out.contents, np.where(t + 8 < 64, values + 8, -1.0))


def test_threadgroup_parameter_over_32_kib_is_refused(iface):
    load_kernel(iface, "coop_reduce.metal")
    buffer = iface.create_buffer(64, "float")
    with pytest.raises(metalgpu.ArgumentError, match="limit"):
        iface.run_function(64, [buffer, buffer], "tree_sum_param", threads_per_threadgroup=64,
                           threadgroup_memory={0: 32 * 1024 + 4})


def test_lanes_read_before_the_leading_lane_overwrites(iface):
    # Apple's lockstep SIMD-groups: every lane reads a threadgroup value, then lane 0 overwrites it, no barrier
    load_kernel(iface, "simdgroup_leader_writes.metal")
    out = iface.create_buffer(64, "float")
    iface.run_function(64, [out], "read_then_leader_writes", threads_per_threadgroup=64, threadgroup_memory={0: 256})
    np.testing.assert_array_equal(out.contents, np.repeat([0.0, 100.0], 32))
    iface.run_function(64, [out], "combine_then_leader_writes", threads_per_threadgroup=64,
                       threadgroup_memory={0: 16})
    np.testing.assert_array_equal(out.contents[:32], np.full(32, (1 + 2) + 10 * 20))


def test_threadgroup_parameter_of_zero_bytes_is_accepted(iface):
    # Metal takes setThreadgroupMemoryLength:0 for a parameter the kernel never touches (ggml sets it so)
    load_kernel(iface, "threadgroup_unused.metal", "simd_sums_unused_scratch")
    values = np.arange(128, dtype=np.float32)
    sums = iface.create_buffer(4, "float")
    iface.run_function(128, [iface.array_to_buffer(values), sums], threads_per_threadgroup=64,
                       threadgroup_memory={0: 0})
    np.testing.assert_array_equal(sums.contents, values.reshape(4, 32).sum(axis=1))
    with pytest.raises(metalgpu.ArgumentError, match="non-negative"):
        iface.run_function(128, [iface.array_to_buffer(values), sums], threadgroup_memory={0: -16})


def test_two_level_reduction_with_simd_sum(iface):
    load_kernel(iface, "coop_reduce.metal")
    n, group = 1000 * 256 + 77, 256  # the last threadgroup is partial: 77 threads, a partial SIMD-group
    values = np.random.default_rng(3).integers(-50, 50, n).astype(np.float32)
    groups = -(-n // group)
    partial = iface.create_buffer(groups, "float")
    iface.run_function(n, [iface.array_to_buffer(values), partial], "simd_two_level", threads_per_threadgroup=group)
    padded = np.concatenate([values, np.zeros(groups * group - n, np.float32)])
    np.testing.assert_array_equal(partial.contents, padded.reshape(-1, group).sum(axis=1))


@pytest.mark.parametrize("m,k,n", [(37, 29, 51), (64, 48, 16), (5, 70, 3)])
def test_tiled_matmul_with_partial_edge_tiles(iface, m, k, n):
    load_kernel(iface, "coop_matmul.metal")
    rng = np.random.default_rng(4)
    a = rng.integers(-4, 5, (m, k)).astype(np.float32)
    b = rng.integers(-4, 5, (k, n)).astype(np.float32)
    c = iface.create_buffer(m * n, "float")
    grid = (-(-n // 16) * 16, -(-m // 16) * 16)  # whole tiles: every thread of a tile loads and waits
    iface.run_function(grid, [iface.array_to_buffer(a), iface.array_to_buffer(b), c, np.array([m, k, n], np.uint32)],
                       "tiled_matmul", threads_per_threadgroup=(16, 16))
    np.testing.assert_array_equal(c.contents.reshape(m, n), a @ b)


@pytest.mark.parametrize("group", [1024, 96])
def test_hillis_steele_scan(iface, group):
    load_kernel(iface, "coop_scan.metal")
    n = group * 40
    values = np.random.default_rng(6).integers(-100, 100, n).astype(np.int32)
    out = iface.create_buffer(n, "int")
    iface.run_function(n, [iface.array_to_buffer(values), out], "hillis_steele", threads_per_threadgroup=group)
    np.testing.assert_array_equal(out.contents, np.cumsum(values.reshape(-1, group), axis=1).reshape(-1))


# -- atomics ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", ["histogram", "histogram_local"])
def test_histogram_with_contended_atomics(iface, kernel):
    load_kernel(iface, "coop_atomics.metal")
    n, bins = 1 << 18, 7
    values = np.random.default_rng(7).integers(0, 1 << 30, n).astype(np.uint32)
    counts = iface.array_to_buffer(np.zeros(bins, np.uint32))
    args = [iface.array_to_buffer(values), counts, np.uint32(bins)]
    if kernel == "histogram_local":
        args.append(np.uint32(n))
    iface.run_function(n, args, kernel, threads_per_threadgroup=256)
    np.testing.assert_array_equal(counts.contents, np.bincount(values % bins, minlength=bins))


def test_stream_compaction_by_tickets(iface):
    load_kernel(iface, "coop_atomics.metal")
    n = 1 << 18
    values = np.random.default_rng(8).permutation(n).astype(np.int32)
    out = iface.array_to_buffer(np.full(n, -1, np.int32))
    counter = iface.array_to_buffer(np.zeros(1, np.uint32))
    iface.run_function(n, [iface.array_to_buffer(values), out, counter], "compact")
    kept = values[values % 3 == 0]
    count = int(counter.contents[0])
    assert count == kept.size
    np.testing.assert_array_equal(np.sort(out.contents[:count]), np.sort(kept))  # nothing lost, none twice
    assert (out.contents[count:] == -1).all()


def test_other_atomic_operations(iface):
    load_kernel(iface, "coop_atomics.metal")
    n = 1 << 16
    ints = iface.array_to_buffer(np.array([0, 0, 0, 0, 5, 0], np.int32))
    total = iface.array_to_buffer(np.zeros(1, np.float32))
    extremes = iface.array_to_buffer(np.array([0, np.iinfo(np.uint64).max], np.uint64))
    flags = iface.array_to_buffer(np.array([0, 0, 0xFFFFFFFF], np.uint32))
    iface.run_function(n, [ints, total, extremes, flags], "atomic_ops")
    assert list(ints.contents) == [-1000, n - 1, -2 * n, 3 * n, 77, 5]
    assert total.contents[0] == n * 0.5  # multiples of 0.5 up to 2**15: exact in float
    assert list(extremes.contents) == [(n - 1) << 40, 7]
    assert list(flags.contents) == [0xFFFFFFFF, 0, 0]


# -- SIMD-groups ------------------------------------------------------------------------------------------------

def test_softmax_over_rows_with_simd_max_and_sum(iface):
    load_kernel(iface, "coop_softmax.metal")
    rows, columns = 57, 100
    x = np.random.default_rng(9).normal(0, 3, (rows, columns)).astype(np.float32)
    out = iface.create_buffer(rows * columns, "float")
    iface.run_function((32, rows), [iface.array_to_buffer(x), out, np.uint32(columns)], "softmax_rows",
                       threads_per_threadgroup=(32, 4))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    # float32 exp and a 100-term sum in another order: a few ulp of relative error
    np.testing.assert_allclose(out.contents.reshape(rows, columns), e / e.sum(axis=1, keepdims=True), rtol=2e-5)


# -- grids, deadlock ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("grid,group", [((37, 23), (8, 4)), ((13, 7, 5), (4, 2, 2)), ((37, 23), (16, 16))])
def test_odd_grids_run_each_thread_once(iface, grid, group):
    load_kernel(iface, "coop_grid.metal")
    count = int(np.prod(grid))
    visits = iface.array_to_buffer(np.zeros(count, np.uint32))
    sizes = iface.create_buffer(count, "uint")
    iface.run_function(grid, [visits, sizes], "visit", threads_per_threadgroup=group)
    assert (visits.contents == 1).all()
    # every thread saw all of its (possibly partial) threadgroup's threads in threadgroup memory
    full = np.array(grid + (1,) * (3 - len(grid)))
    g = np.array(group + (1,) * (3 - len(group)))
    z, y, x = np.meshgrid(*(np.arange(s) for s in full[::-1]), indexing="ij")
    expected = np.ones(count, np.uint32)
    for axis, coords in enumerate((x, y, z)):
        origin = coords // g[axis] * g[axis]
        expected = expected * np.minimum(g[axis], full[axis] - origin).reshape(-1)
    np.testing.assert_array_equal(sizes.contents, expected)


def test_threads_that_returned_do_not_hold_a_barrier(iface):
    """Apple's GPUs (and CUDA's) wait at a barrier for the threads still running; the Metal specification asks
    every thread to reach it, but production kernels (MLX's gemv) return early."""
    load_kernel(iface, "coop_grid.metal")
    out = iface.array_to_buffer(np.full(64, -1.0, np.float32))
    iface.run_function(64, [out], "early_return", threads_per_threadgroup=64)
    lid = np.arange(64)
    expected = np.where(lid % 4 == 0, -1.0, np.where(lid % 4 == 3, lid - 2, lid + 1)).astype(np.float32)
    np.testing.assert_array_equal(out.contents, expected)


def test_barrier_reached_by_lane_zero_of_each_running_simdgroup(iface):
    load_kernel(iface, "coop_grid.metal")
    values = np.arange(256, dtype=np.float32)
    out = iface.create_buffer(1, "float")
    iface.run_function(256, [iface.array_to_buffer(values), out, np.uint32(5)], "lane_zero_barrier",
                       threads_per_threadgroup=256)
    assert out.contents[0] == values[:5 * 32].sum()  # integers below 2**24: exact


FAULTING = """
#include <metal_stdlib>
using namespace metal;
kernel void fault_in_fiber(device float* out [[buffer(0)]], uint lid [[thread_index_in_threadgroup]])
{
    threadgroup_barrier(mem_flags::mem_none);
    if (lid == 17) {
        *(device volatile int*)16 = 1;
    }
    threadgroup_barrier(mem_flags::mem_none);
    out[lid] = 1.0f;
}
kernel void reverse(device float* data [[buffer(0)]], uint lid [[thread_index_in_threadgroup]],
                    uint size [[threads_per_threadgroup]])
{
    threadgroup float copy[1024];
    copy[lid] = data[lid];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    data[lid] = copy[size - 1 - lid];
}
"""


def test_fault_inside_a_fiber_is_a_dispatch_error(iface, backend):
    if backend != "cpu":  # a fault on a GPU leaves the context unusable; this tests the CPU's fault guard in fibers
        pytest.skip("fault inside a fiber: CPU fiber runner only")
    iface.load_shader_from_str(FAULTING)
    out = iface.create_buffer(64, "float")
    with pytest.raises(metalgpu.DispatchError, match="faulted"):
        iface.run_function(64, [out], "fault_in_fiber", threads_per_threadgroup=64)
    data = iface.array_to_buffer(np.arange(100, dtype=np.float32))  # fibers work again on this OS thread
    iface.run_function(100, [data], "reverse", threads_per_threadgroup=100)
    np.testing.assert_array_equal(data.contents, np.arange(100, dtype=np.float32)[::-1])


def test_max_threads_per_group(iface):
    load_kernel(iface, "coop_reduce.metal", "tree_sum")
    assert iface.maxThreadsPerGroup() == 1024


OVERSIZED = """
#include <metal_stdlib>
using namespace metal;
kernel void big(device float* out [[buffer(0)]], uint i [[thread_position_in_grid]],
                uint l [[thread_index_in_threadgroup]]) {
    threadgroup float a[4096];
    threadgroup float b[4097];
    a[l] = 1.0f;
    b[l] = 2.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[i] = a[l] + b[l];
}
kernel void two(device float* out [[buffer(0)]], threadgroup float* p [[threadgroup(0)]],
                threadgroup float* q [[threadgroup(1)]], uint i [[thread_position_in_grid]]) {
    p[0] = 1.0f;
    q[0] = 2.0f;
    out[i] = p[0] + q[0];
}
"""


def test_declared_threadgroup_memory_over_32_kib_is_a_compile_error(iface):
    # 4096 + 4097 floats: 32 KiB and 4 bytes, declared in the kernel; Metal refuses such a pipeline, and only it:
    # the library loads and its other kernels run
    iface.load_shader_from_str(OVERSIZED)
    with pytest.raises(metalgpu.ShaderCompileError, match="32 KiB") as info:
        iface.set_function("big")
    assert info.value.pos.line == 7  # the declaration that goes over
    with pytest.raises(metalgpu.ShaderCompileError, match="32 KiB"):
        iface.set_function("big")  # and every time it is asked for
    out = iface.create_buffer(1, "float")
    iface.run_function(1, [out], function_name="two", threadgroup_memory={0: 16, 1: 16})
    assert out.contents[0] == 3.0


def test_threadgroup_parameters_count_together_against_32_kib(iface):
    iface.load_shader_from_str(OVERSIZED.replace("4097", "4"))
    out = iface.create_buffer(1, "float")
    with pytest.raises(metalgpu.ArgumentError, match="in all"):
        iface.run_function(1, [out], function_name="two", threadgroup_memory={0: 16 * 1024, 1: 16 * 1024 + 16})
    iface.run_function(1, [out], function_name="two", threadgroup_memory={0: 16 * 1024, 1: 16 * 1024})
    assert out.contents[0] == 3.0


SIMDGROUP_MATRIX = """
#include <metal_stdlib>
using namespace metal;

// C (16 x 16) = A (16 x 8) * B (8 x 16) + D, one 8x8 tile of C per SIMD-group (4 SIMD-groups in one threadgroup).
kernel void tiles(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                  device const float* D [[buffer(2)]], device float* C [[buffer(3)]],
                  uint sg [[simdgroup_index_in_threadgroup]]) {
    const ulong2 tile = ulong2(8 * (sg % 2), 8 * (sg / 2));  // (column, row) of this SIMD-group's tile of C
    simdgroup_float8x8 a, b, d;
    simdgroup_load(a, A, 8, ulong2(0, tile.y));
    simdgroup_load(b, B, 16, ulong2(tile.x, 0));
    simdgroup_load(d, D, 16, tile);
    simdgroup_multiply_accumulate(d, a, b, d);
    simdgroup_store(d, C, 16, tile);
}

// out = transpose(M) * diag(2) in half, and the identity scaled by 3, through threadgroup memory.
kernel void small(device const half* M [[buffer(0)]], device half* out [[buffer(1)]], device float* eye [[buffer(2)]],
                  uint lane [[thread_index_in_simdgroup]]) {
    threadgroup half staged[64];
    staged[2 * lane] = M[2 * lane];
    staged[2 * lane + 1] = M[2 * lane + 1];
    simdgroup_barrier(mem_flags::mem_threadgroup);
    simdgroup_half8x8 m, r;
    simdgroup_load(m, staged, 8, ulong2(0), true);
    simdgroup_multiply(r, m, simdgroup_half8x8(half(2.0h)));
    simdgroup_store(r, out);
    simdgroup_store(simdgroup_float8x8(3.0f), eye);
}
"""


def test_simdgroup_matrices(iface):
    """Metal's 8x8 SIMD-group matrices: loads at an origin and with a stride, transposed loads, products with and
    without accumulation, the diagonal constructor, float and half; against numpy (small integers: exact)."""
    iface.load_shader_from_str(SIMDGROUP_MATRIX)
    rng = np.random.default_rng(5)
    a, b, d = (rng.integers(-4, 5, shape).astype(np.float32) for shape in ((16, 8), (8, 16), (16, 16)))
    c = iface.create_buffer(256, "float")
    iface.run_function(128, [a.ravel(), b.ravel(), d.ravel(), c], function_name="tiles", threads_per_threadgroup=128)
    np.testing.assert_array_equal(c.contents.reshape(16, 16), a @ b + d)

    m = rng.integers(-8, 9, (8, 8)).astype(np.float16)
    out, eye = iface.create_buffer(64, "half"), iface.create_buffer(64, "float")
    iface.run_function(32, [m.ravel(), out, eye], function_name="small", threads_per_threadgroup=32)
    np.testing.assert_array_equal(out.contents.reshape(8, 8), m.T * 2)
    np.testing.assert_array_equal(eye.contents.reshape(8, 8), np.eye(8) * 3)
