"""metalgpu.dask: kernels over Dask arrays, on the threaded scheduler and on a LocalCluster of two worker processes,
checked against numpy. The cluster starts once for the module."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="metalgpu.dask needs dask[array] (pip install 'metalgpu[dask]')")
distributed = pytest.importorskip("distributed", reason="the cluster tests need distributed")

import dask  # noqa: E402

import metalgpu  # noqa: E402
import metalgpu.dask as mgd  # noqa: E402
from metalgpu.dask import worker  # noqa: E402
from metalgpu.dask.blocks import kernel_spec  # noqa: E402

SAXPY = """
#include <metal_stdlib>
using namespace metal;
kernel void saxpy(device const float* x [[buffer(0)]], device const float* y [[buffer(1)]],
                  device float* out [[buffer(2)]], constant float& a [[buffer(3)]],
                  uint i [[thread_position_in_grid]]) {
    out[i] = a * x[i] + y[i];
}
"""

# A 3x3 box sum that clamps its reads to the block it is given: over blocks with halos it must give what it gives
# over the whole image.
BOX = """
#include <metal_stdlib>
using namespace metal;
kernel void box3(device const int* image [[buffer(0)]], device int* out [[buffer(1)]],
                 constant uint& width [[buffer(2)]], constant uint& height [[buffer(3)]],
                 uint2 p [[thread_position_in_grid]]) {
    int total = 0;
    for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
            int x = clamp(int(p.x) + dx, 0, int(width) - 1), y = clamp(int(p.y) + dy, 0, int(height) - 1);
            total += image[y * int(width) + x];
        }
    out[p.y * width + p.x] = total;
}
"""

REDUCE = """
#include <metal_stdlib>
using namespace metal;
kernel void atomic_sum(device const int* x [[buffer(0)]], device atomic_int* total [[buffer(1)]],
                       uint i [[thread_position_in_grid]]) {
    atomic_fetch_add_explicit(total, x[i], memory_order_relaxed);
}
// each thread takes the maximum of eight consecutive elements: n elements become ceil(n / 8) partials
kernel void max8(device const float* x [[buffer(0)]], device float* partial [[buffer(1)]],
                 constant uint& n [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    float best = x[i * 8];
    for (uint k = i * 8 + 1; k < min(n, i * 8 + 8); ++k) best = max(best, x[k]);
    partial[i] = best;
}
"""

TABLE = """
#include <metal_stdlib>
using namespace metal;
kernel void lookup(device const uchar* codes [[buffer(0)]], constant float* table [[buffer(1)]],
                   device float* out [[buffer(2)]], device uint* count [[buffer(3)]],
                   constant float& scale [[buffer(4)]], constant uint& offset [[buffer(5)]],
                   uint i [[thread_position_in_grid]]) {
    out[i] = table[codes[i]] * scale;
    count[i] += offset;
}
"""

FAULTY = """
#include <metal_stdlib>
using namespace metal;
kernel void fault_on_negative(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                              uint i [[thread_position_in_grid]]) {
    if (x[i] < 0) *(device float*)(ulong(8)) = x[i];  // address 8 is never mapped
    out[i] = x[i];
}
kernel void copy_first(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                       constant uint& first [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    out[i] = x[i + first];
}
"""

RNG = np.random.default_rng(18)


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each; they inherit the session's compile cache folder."""
    yield from _client_of(distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                   dashboard_address=None, silence_logs=40))


def _client_of(cluster):
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _computer(request, client_fixture: str):
    """Compute Dask collections with the threaded scheduler, or with the cluster of ``client_fixture``."""
    if request.param == "threads":
        return lambda *collections: dask.compute(*collections, scheduler="threads")
    client = request.getfixturevalue(client_fixture)
    return lambda *collections: client.compute(list(collections), sync=True)


@pytest.fixture(params=["threads", "cluster"])
def compute(request):
    """Compute Dask collections with the threaded scheduler, or with the LocalCluster."""
    return _computer(request, "client")


def test_elementwise_kernel_over_a_chunked_array(compute, backend):
    x = RNG.standard_normal((300, 70), dtype=np.float32)
    y = RNG.standard_normal((300, 70), dtype=np.float32)
    result = mgd.map_blocks(SAXPY, "saxpy", da.from_array(x, chunks=(128, 40)), da.from_array(y, chunks=(128, 40)),
                            1.5, backend=backend)
    assert result.dtype == np.float32 and result.chunks == ((128, 128, 44), (40, 30))
    (value,) = compute(result)
    # float32: one multiply and one add (fused or not): within 2 ulp of numpy's float32 result
    np.testing.assert_allclose(value, np.float32(1.5) * x + y, rtol=2.5e-7, atol=1e-6)


def test_stencil_with_overlap(compute, backend):
    image = RNG.integers(-1000, 1000, size=(90, 130), dtype=np.int32)
    result = mgd.map_overlap(BOX, "box3", da.from_array(image, chunks=(40, 50)), depth=1, boundary="none",
                             constants={"width": lambda shape: shape[1], "height": lambda shape: shape[0]},
                             backend=backend)
    (value,) = compute(result)
    padded = np.pad(image, 1, mode="edge")
    expected = sum(padded[1 + dy:91 + dy, 1 + dx:131 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    assert value.shape == image.shape
    np.testing.assert_array_equal(value, expected)


def test_reduction_with_a_numpy_combine(compute, backend):
    values = RNG.integers(-10**4, 10**4, size=(257, 33), dtype=np.int32)
    total = mgd.reduction(REDUCE, "atomic_sum", da.from_array(values, chunks=(64, 16)), out_dtype=np.int32,
                          combine=np.sum, split_every=3, backend=backend)
    (value,) = compute(total)
    assert value.shape == () and int(value) == int(values.sum(dtype=np.int64))


def test_reduction_with_the_kernel_as_its_own_combine(compute, backend):
    values = RNG.standard_normal((101, 99)).astype(np.float32)
    values[77, 80] = 9.5  # deep inside block (2, 1): every element of a block must be read
    largest = mgd.reduction(REDUCE, "max8", da.from_array(values, chunks=(30, 45)), combine="kernel",
                            partials=lambda n: -(-n // 8), grid=lambda shape: -(-shape[0] // 8),
                            constants={"n": lambda shape: shape[0]}, split_every=4, backend=backend)
    (value,) = compute(largest)
    assert value.dtype == np.float32 and value == values.max()


def test_kernel_with_constants_a_table_and_an_inout_output(compute, backend):
    codes = RNG.integers(0, 16, size=5000, dtype=np.uint8)
    counts = RNG.integers(0, 100, size=5000, dtype=np.uint32)
    table = np.linspace(-1, 1, 16, dtype=np.float32)
    out, count = mgd.map_blocks(TABLE, "lookup", da.from_array(codes, chunks=1200), table,
                                da.from_array(counts, chunks=1000), inout="count",
                                constants={"scale": 4.0, "offset": lambda shape: shape[0]}, backend=backend)
    out_value, count_value = compute(out, count)
    np.testing.assert_array_equal(out_value, table[codes] * np.float32(4.0))
    # the second array was rechunked to the first's blocks: each block adds its own length
    block_lengths = np.repeat([1200, 1200, 1200, 1200, 200], [1200, 1200, 1200, 1200, 200])
    np.testing.assert_array_equal(count_value, counts + block_lengths.astype(np.uint32))


def test_empty_blocks_run_no_kernel():
    x = da.from_array(np.arange(10, dtype=np.float32), chunks=((5, 0, 5),))
    result = mgd.map_blocks(SAXPY, "saxpy", x, x, 2.0, backend="cpu")
    np.testing.assert_array_equal(result.compute(scheduler="threads"), 3 * np.arange(10, dtype=np.float32))
    values = np.array([3, -7, 12, 5, 1, 8, 2, -4, 6, 9], dtype=np.float32)
    largest = mgd.reduction(REDUCE, "max8", da.from_array(values, chunks=((4, 0, 6),)), combine=np.max,
                            partials=lambda n: -(-n // 8), grid=lambda shape: -(-shape[0] // 8),
                            constants={"n": lambda shape: shape[0]}, backend="cpu")
    assert largest.compute(scheduler="threads") == 12


def test_a_fault_in_a_worker_reaches_the_client_naming_the_block(compute):
    # cpu only: on a GPU a fault is sticky, and would leave the process (or worker) unable to use the device
    x = np.ones(4000, dtype=np.float32)
    x[2500] = -1  # in block 2 of 1000-element blocks
    result = mgd.map_blocks(FAULTY, "fault_on_negative", da.from_array(x, chunks=1000), backend="cpu")
    with pytest.raises(metalgpu.DispatchError) as caught:
        compute(result)
    assert caught.value.block == (2,)
    assert "kernel 'fault_on_negative', block (2,)" in str(caught.value)
    assert "faulted" in str(caught.value)


def test_an_argument_error_in_a_worker_keeps_its_type(compute, backend):
    x = da.from_array(np.arange(30, dtype=np.float32), chunks=10)
    result = mgd.map_blocks(FAULTY, "copy_first", x, lambda shape: -shape[0], backend=backend)
    with pytest.raises(metalgpu.ArgumentError) as caught:
        compute(result)
    assert "kernel 'copy_first', block (" in str(caught.value) and "first" in str(caught.value)
    assert caught.value.block in {(0,), (1,), (2,)}


def test_a_compile_error_surfaces_when_the_graph_is_built():
    broken = "kernel void k(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) { x[i] = y; }\n"
    with pytest.raises(metalgpu.ShaderCompileError) as caught:
        mgd.map_blocks(broken, "k", da.zeros(10, dtype=np.float32, chunks=5), backend="cpu")
    assert caught.value.pos.line == 1 and caught.value.backend == "cpu"


def test_a_compile_error_in_a_worker_reaches_the_client_with_its_fields(compute):
    # the graph map_blocks makes, without the client's own compile: as when a worker's backend refuses a kernel
    # that the client's compiled
    broken = "kernel void k(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n  x[i] = y;\n}\n"
    kernel = kernel_spec(broken, "k", backend="cpu")
    call = worker.BlockCall((), (), (np.dtype(np.float32),))
    x = da.zeros(20, dtype=np.float32, chunks=10)
    result = da.map_blocks(worker.run_block, kernel, call, x, dtype=np.float32)
    with pytest.raises(metalgpu.ShaderCompileError) as caught:
        compute(result)
    error = caught.value
    assert str(error).startswith("kernel 'k', block (") and error.block in {(0,), (1,)}
    assert (error.pos.line, error.pos.column) == (2, 10) and error.backend == "cpu" and error.source == broken
    assert "declared" in error.diagnostics[0].message and error.log  # g++: not declared; clang++: undeclared


def test_a_graph_for_gpu_workers_builds_on_a_client_without_one():
    if "cuda" in metalgpu.backends():
        pytest.skip("this machine has a CUDA GPU")
    x = da.from_array(np.arange(20, dtype=np.float32), chunks=10)
    result = mgd.map_blocks(SAXPY, "saxpy", x, x, 2.0, backend="cuda")  # the signature is read on the cpu here
    assert result.dtype == np.float32
    with pytest.raises(metalgpu.BackendUnavailableError) as caught:
        result.compute(scheduler="threads")
    assert str(caught.value).startswith("kernel 'saxpy', block (")


def test_a_compile_error_crosses_processes_with_its_fields_and_the_block_named():
    with metalgpu.Interface("cpu") as gpu, pytest.raises(metalgpu.ShaderCompileError) as caught:
        gpu.load_shader_from_str("kernel void k(device float* x [[buffer(0)]]) { x[0] = y; }")
    error = caught.value
    annotated = worker.in_chunk(error, "kernel 'k', block (1, 2)", (1, 2))
    copy = pickle.loads(pickle.dumps(annotated))
    assert type(copy) is metalgpu.ShaderCompileError
    assert str(copy).startswith("kernel 'k', block (1, 2): ") and str(copy).endswith(str(error))
    assert copy.diagnostics == error.diagnostics and copy.block == (1, 2) and copy.log == error.log


@pytest.mark.parametrize("cls", [value for value in vars(metalgpu.errors).values() if isinstance(value, type)
                                 and issubclass(value, metalgpu.MetalError)], ids=lambda cls: cls.__name__)
def test_every_error_pickles_under_the_hooks_distributed_installs(cls):
    from tblib import pickling_support
    pickling_support.install()  # what importing distributed does, for every exception class defined by then
    error = cls([]) if cls is metalgpu.ShaderCompileError else cls("went wrong")
    error.block = (3, 1)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls and str(copy) == str(error) and copy.block == (3, 1)


def test_arguments_that_do_not_fit_the_signature_are_refused_on_the_client():
    x = da.zeros(10, dtype=np.float32, chunks=5)
    with pytest.raises(metalgpu.ArgumentError, match=r"takes 3 positional arguments \(x, y, a\), got 2"):
        mgd.map_blocks(SAXPY, "saxpy", x, x, backend="cpu")
    with pytest.raises(metalgpu.ArgumentError, match="reads float32, but the Dask array given has int32"):
        mgd.map_blocks(SAXPY, "saxpy", x, x.astype(np.int32), 1.0, backend="cpu")
    with pytest.raises(metalgpu.ArgumentError, match="is one constant value, not a Dask array"):
        mgd.map_blocks(SAXPY, "saxpy", x, x, x, backend="cpu")
    with pytest.raises(metalgpu.ArgumentError, match="constants names 'out', which is no input or constant"):
        mgd.map_blocks(SAXPY, "saxpy", x, x, 1.0, constants={"out": 0.0}, backend="cpu")
    with pytest.raises(metalgpu.ArgumentError, match="give out_dtype"):
        mgd.reduction(REDUCE, "atomic_sum", x.astype(np.int32), backend="cpu")
    with pytest.raises(metalgpu.FunctionNotFoundError, match="kernels: saxpy"):
        mgd.map_blocks(SAXPY, "saxpz", x, x, 1.0, backend="cpu")
    vectors = "kernel void v(device const float4* a [[buffer(0)]], device float* b [[buffer(1)]], uint i " \
              "[[thread_position_in_grid]]) { b[i] = a[i].x; }\n"
    with pytest.raises(metalgpu.ArgumentError, match=r"reads vectors \(float4\)"):
        mgd.map_blocks(vectors, "v", da.zeros((8, 4), dtype=np.float32, chunks=4), backend="cpu")


def test_a_kernel_file_with_an_include_beside_it(tmp_path):
    (tmp_path / "scale.h").write_text("inline float scaled(float v) { return v * 3.0f - 1.0f; }\n")
    (tmp_path / "scale.metal").write_text('#include "scale.h"\n'
                                          "kernel void scale(device const float* x [[buffer(0)]], device float* y "
                                          "[[buffer(1)]], uint i [[thread_position_in_grid]]) {\n"
                                          "    y[i] = scaled(x[i]);\n}\n")
    values = np.arange(100, dtype=np.float32)
    result = mgd.map_blocks(str(tmp_path / "scale.metal"), "scale", da.from_array(values, chunks=30), backend="cpu")
    np.testing.assert_array_equal(result.compute(scheduler="threads"), values * np.float32(3) - np.float32(1))


def test_the_source_is_one_key_of_the_graph():
    x = da.from_array(np.zeros(4000, dtype=np.float32), chunks=500)
    result = mgd.map_blocks(SAXPY + "// marker-of-this-source\n", "saxpy", x, x, 2.0, backend="cpu")
    cloudpickle = pytest.importorskip("cloudpickle")
    graph = dict(result.__dask_graph__())
    holding = [key for key, task in graph.items() if b"marker-of-this-source" in cloudpickle.dumps(task)]
    assert len(holding) == 1 and str(holding[0]).startswith("metalgpu-kernel-")
    (optimized,) = dask.optimize(result)  # what a scheduler gets: Dask's fusing does not copy it into the tasks
    assert sum(b"marker-of-this-source" in cloudpickle.dumps(task)
               for task in dict(optimized.__dask_graph__()).values()) == 1
    assert sum(isinstance(key, tuple) and key[0] == result.name for key in graph) == 8  # the result's blocks


def test_each_worker_compiles_a_kernel_once_from_the_shared_cache(client, tmp_path):
    source = SAXPY + "// compiled once per worker\n"
    x = da.from_array(np.ones(8000, dtype=np.float32), chunks=500)
    first = mgd.map_blocks(source, "saxpy", x, x, 2.0, backend="cpu")  # compiled here, into the shared cache
    cache_files = set(_cache_folder().glob("*/*.json"))
    second = mgd.map_blocks(source, "saxpy", x, x, 3.0, backend="cpu")
    values = client.compute([first, second], sync=True)
    np.testing.assert_array_equal(values[0], np.full(8000, 3.0, np.float32))
    np.testing.assert_array_equal(values[1], np.full(8000, 4.0, np.float32))

    digest = kernel_spec(source, "saxpy", backend="cpu").digest

    def compiled_here(digest=digest):
        from metalgpu.dask import worker as process
        device = process._devices.get(("cpu", 0))
        return None if device is None else sorted(k for k in device._functions if k == digest)

    per_worker = client.run(compiled_here)
    assert len(per_worker) == 2 and all(found == [digest] for found in per_worker.values()), per_worker
    # the workers found the client's binary: no module of saxpy was compiled into the shared cache since (other
    # tests' work may add entries of their own meanwhile, so the entries' sidecars are read, not counted)
    added = set(_cache_folder().glob("*/*.json")) - cache_files
    assert not [p for p in added if "saxpy" in json.loads(p.read_text())["meta"].get("kernels", [])], added


def _cache_folder() -> Path:
    return Path(os.environ["METALGPU_CACHE_DIR"])


@pytest.mark.parametrize("source", [SAXPY, BOX, REDUCE, TABLE, FAULTY], ids=["saxpy", "box", "reduce", "table",
                                                                           "faulty"])
def test_the_kernels_compile_for_cuda(source):
    """What a cuda worker compiles, with NVRTC and no GPU."""
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
    from metalgpu.backends.base import CompileOptions
    from metalgpu.backends.nvrtc import nvrtc_compile
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess
    from metalgpu.msl.translate import translate

    pre = preprocess(source, "<dask test>", ())
    translation = translate(pre, parse(pre.tokens, pre.sources), "cuda")
    cubin = nvrtc_compile(translation.source, CompileOptions(), "sm_90")
    assert cubin[:4] == b"\x7fELF" and all(f"mg_run_{i}".encode() in cubin for i in translation.selected)


def test_the_image_example_runs_and_agrees_with_numpy():
    import re
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "examples" / "dask_image.py"
    result = subprocess.run([sys.executable, str(script), "--size", "300", "--chunk", "128", "--backend", "cpu"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    found = re.search(r"difference from numpy's blur: (\S+); brightest pixel (\S+) \(numpy: (\S+)\)", result.stdout)
    assert found, result.stdout
    assert float(found[1]) < 1e-6 and found[2] == found[3]  # 25 float32 additions of values under 2, then a divide


def test_default_grids_follow_the_kernels_thread_position():
    from metalgpu.dask.kernel import default_grid
    assert default_grid((40, 50), 1) == (2000,)
    assert default_grid((40, 50), 2) == (50, 40)
    assert default_grid((3, 40, 50), 2) == (50, 120)
    assert default_grid((3, 40, 50), 3) == (50, 40, 3)
    assert default_grid((7,), 3) == (7,)


# -- CuPy blocks on a GPU: with the threaded scheduler, and with dask_cuda's LocalCUDACluster (one worker per GPU) --

def _cupy():
    cupy = pytest.importorskip("cupy", reason="CuPy blocks need cupy")
    if "cuda" not in metalgpu.backends():
        pytest.skip("no CUDA GPU here")
    return cupy


@pytest.fixture(scope="module")
def cuda_client():
    _cupy()
    dask_cuda = pytest.importorskip("dask_cuda", reason="LocalCUDACluster needs dask-cuda")
    yield from _client_of(dask_cuda.LocalCUDACluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
                                                     silence_logs=40))


@pytest.fixture(params=["threads", "LocalCUDACluster"])
def compute_on_gpu(request):
    return _computer(request, "cuda_client")


def test_cupy_blocks_are_used_in_place_on_cuda(compute_on_gpu):
    cupy = _cupy()
    x = RNG.standard_normal((3000, 70), dtype=np.float32)
    y = RNG.standard_normal((3000, 70), dtype=np.float32)
    blocks = [da.from_array(cupy.asarray(a), chunks=(1000, 70), asarray=False) for a in (x, y)]
    result = mgd.map_blocks(SAXPY, "saxpy", *blocks, 2.0)
    assert isinstance(result._meta, cupy.ndarray)
    (value,) = compute_on_gpu(result)
    assert isinstance(value, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(value), np.float32(2.0) * x + y, rtol=2.5e-7, atol=1e-6)


def test_cupy_stencil_and_reduction_on_cuda(compute_on_gpu):
    cupy = _cupy()
    image = RNG.integers(-1000, 1000, size=(90, 130), dtype=np.int32)
    blurred = mgd.map_overlap(BOX, "box3", da.from_array(cupy.asarray(image), chunks=(40, 50), asarray=False),
                              depth=1, constants={"width": lambda shape: shape[1], "height": lambda shape: shape[0]})
    total = mgd.reduction(REDUCE, "atomic_sum", blurred, out_dtype=np.int32, combine=cupy.sum)
    blurred_value, total_value = compute_on_gpu(blurred, total)
    padded = np.pad(image, 1, mode="edge")
    expected = sum(padded[1 + dy:91 + dy, 1 + dx:131 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    np.testing.assert_array_equal(cupy.asnumpy(blurred_value), expected)
    assert int(total_value) == int(expected.sum(dtype=np.int64))


def test_an_argument_error_on_a_gpu_worker_reaches_the_client(compute_on_gpu):
    cupy = _cupy()
    x = da.from_array(cupy.arange(30, dtype=cupy.float32), chunks=10, asarray=False)
    with pytest.raises(metalgpu.ArgumentError) as caught:
        compute_on_gpu(mgd.map_blocks(FAULTY, "copy_first", x, lambda shape: -shape[0]))
    assert "kernel 'copy_first', block (" in str(caught.value) and caught.value.block in {(0,), (1,), (2,)}
