"""SIMD-group matrix products on tensor cores (metal/_simdgroup_mma.h), against numpy in float64.

Two engines run the same tests:
- ``emulated-<mode>``: the cpu backend compiled with -DMG_EMULATE_TENSOR_CORES=1 (through $CXX), which runs the
  tensor-core path with mma.sync, movmatrix and cvt.rna emulated from the PTX ISA's fragment layouts: the layouts,
  the TF32 splits and the copies kept beside thread_elements() are checked in CI, with no GPU;
- ``cuda-<mode>``: the cuda backend (skipped without an NVIDIA GPU), on tensor cores from sm_80.
``mode`` is the Interface's ``simdgroup_float``: "3xtf32", "tf32" or "exact".

Tolerances, from the formats, per output (i, j) against M = sum_k |a_ik b_kj| + |c_ij| (so cancellation is judged
against the sizes of the terms, not of the result), with u = 2**-24 (float), and K / 8 products of 8x8 matrices:
- splitting a float operand: plain TF32 keeps 11 significant bits (|x - hi| <= 2**-11 |x|); 3xTF32 adds lo, itself
  rounded to 11 bits (|x - hi - lo| <= 2**-22 |x|); half and bfloat are exact in TF32. A product then errs by
  e_a + e_b + e_a e_b of |a b|.
- a tensor-core multiply-accumulate (mma.sync m16n8k8) adds 8 exact products to the accumulator; the hardware
  aligns them to the largest and truncates, so it is taken as recursive summation of 9 terms under truncation:
  9 * 2**-23 of the step's terms (at most M); two steps run as one m16n8k16 (17 terms) stay inside twice that.
  3xTF32 runs two of them and adds their halves once more (u).
- the shuffle path ("exact" for float operands): 8 fused multiply-adds per step, u each.
- a half or bfloat accumulator rounds once per step: 2**-11 or 2**-8.
"""
from __future__ import annotations

import ast
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

import metalgpu

KERNELS = Path(__file__).parent / "kernels" / "simdgroup_tensor_cores.metal"
BENCHMARK_GEMM = Path(__file__).parents[1] / "benchmarks" / "cuda_gemm.py"
MODES = {"3xtf32": 3, "tf32": 1, "exact": 0}
U = 2.0**-24
TENSOR_STEP = 9 * 2.0**-23
SPLIT = {"3xtf32": 2.0**-22, "tf32": 2.0**-11, "exact": 0.0}
ROUNDING = {"float": 0.0, "half": 2.0**-11, "bfloat": 2.0**-8}


def _cpu_compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")


def _engines() -> list:
    params = []
    for mode in MODES:
        params.append(pytest.param(("emulated", mode), id=f"emulated-{mode}", marks=pytest.mark.skipif(
            _cpu_compiler() is None or "cpu" not in metalgpu.backends(), reason="needs the cpu backend")))
    for mode in MODES:
        params.append(pytest.param(("cuda", mode), id=f"cuda-{mode}", marks=pytest.mark.skipif(
            "cuda" not in metalgpu.backends(), reason="needs an NVIDIA GPU (the cuda backend)")))
    return params


@pytest.fixture(params=_engines())
def engine(request, monkeypatch):
    """(Interface with the kernels loaded, mode)."""
    backend, mode = request.param
    if backend == "emulated":
        monkeypatch.setenv("CXX", f"{_cpu_compiler()} -DMG_EMULATE_TENSOR_CORES=1 -DMG_SIMDGROUP_FLOAT={MODES[mode]}")
        gpu = metalgpu.Interface(backend="cpu")
    else:
        gpu = metalgpu.Interface(backend="cuda", simdgroup_float=mode)
    gpu.load_shader(str(KERNELS))
    try:
        yield gpu, mode
    finally:
        gpu.close()


# ---- element types: numpy arrays of float values exactly representable in the type, and their buffers ----------
def to_bfloat_bits(x: np.ndarray) -> np.ndarray:
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bfloat_bits(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def representable(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "half":
        return x.astype(np.float16).astype(np.float64)
    if kind == "bfloat":
        return from_bfloat_bits(to_bfloat_bits(x.astype(np.float32))).astype(np.float64)
    return x.astype(np.float32).astype(np.float64)


def to_buffer(gpu, x: np.ndarray, kind: str):
    if kind == "bfloat":
        buf = gpu.create_buffer(x.size, "bfloat")
        buf.contents.view(np.uint16)[:] = to_bfloat_bits(x).ravel()
        return buf
    return gpu.array_to_buffer(x.astype(np.float16 if kind == "half" else np.float32).ravel())


def from_buffer(buf, kind: str) -> np.ndarray:
    if kind == "bfloat":
        return from_bfloat_bits(buf.contents.view(np.uint16)).astype(np.float64)
    return buf.contents.astype(np.float64)


# ---- products -------------------------------------------------------------------------------------------------
PRODUCTS = {  # kernel: (A's type, B's type, the accumulator's)
    "product_float": ("float", "float", "float"),
    "product_half_into_float": ("half", "half", "float"),
    "product_half": ("half", "half", "half"),
    "product_bfloat_into_float": ("bfloat", "bfloat", "float"),
    "product_bfloat": ("bfloat", "bfloat", "bfloat"),
    "product_float_half": ("float", "half", "float"),
    "product_half_float": ("half", "float", "float"),
    "product_half_bfloat": ("half", "bfloat", "float"),
    "paired_half_into_float": ("half", "half", "float"),  # two steps of k at a time (one m16n8k16 on CUDA)
    "paired_bfloat_into_float": ("bfloat", "bfloat", "float"),
    "row_paired_half_into_float": ("half", "half", "float"),  # two row blocks in pairs (one mma.sync on CUDA)
    "row_paired_bfloat_into_float": ("bfloat", "bfloat", "float"),
    "row_paired_float": ("float", "float", "float"),
    "staged_half_into_float": ("half", "half", "float"),  # operands through aligned threadgroup memory (ldmatrix)
    "staged_bfloat": ("bfloat", "bfloat", "bfloat"),
    "staged_float": ("float", "float", "float"),
}


def relative_bound(mode: str, a_type: str, b_type: str, acc_type: str, k: int) -> tuple[float, float]:
    """(error per |a b| from splitting the operands, error per step of the step's terms)."""
    narrow_pair = a_type == b_type and a_type != "float"
    if mode == "exact" and not narrow_pair:
        return 0.0, 8 * U + ROUNDING[acc_type]
    split_a = SPLIT[mode] if a_type == "float" else 0.0
    split_b = SPLIT[mode] if b_type == "float" else 0.0
    split = split_a + split_b + split_a * split_b
    if narrow_pair or mode == "tf32":
        return split, TENSOR_STEP + ROUNDING[acc_type]
    return split, 2 * TENSOR_STEP + U + ROUNDING[acc_type]


def operands(kind: str, a_type: str, b_type: str, acc_type: str, n: int, k: int, m: int, seed: int):
    """A, B, C0 as float64 values exact in their types. "random": normal (float) or uniform in [-2, 2]; "ill":
    magnitudes spread over 2**-12..2**12 (2**-4..2**4 with a 16-bit accumulator, which must not overflow) and C0 =
    -(A B) rounded to the accumulator, so that the result is the cancellation's residue."""
    rng = np.random.default_rng(seed)

    def draw(shape, kind_of):
        x = rng.standard_normal(shape) if kind_of == "float" else rng.uniform(-2, 2, shape)
        if kind == "ill":
            spread = 12 if acc_type == "float" else 4
            x = x * 2.0 ** rng.integers(-spread, spread + 1, shape)
        return representable(x, kind_of)

    a, b = draw((n, k), a_type), draw((k, m), b_type)
    c = -(a @ b) if kind == "ill" else rng.uniform(-1, 1, (n, m))
    return a, b, representable(c, acc_type)


def in_memory(x: np.ndarray, transposed: bool, padding: int) -> tuple[np.ndarray, int]:
    """x (or its transpose) in rows of a wider array: the memory and its stride."""
    held = x.T if transposed else x
    memory = np.zeros((held.shape[0], held.shape[1] + padding))
    memory[:, :held.shape[1]] = held
    return memory, memory.shape[1]


def assert_within(got: np.ndarray, exact: np.ndarray, tolerance: np.ndarray, terms: np.ndarray, what: str) -> None:
    """|got - exact| <= tolerance everywhere; else the worst element against its bound and its terms' size."""
    error = np.abs(got - exact)
    worst = np.unravel_index(np.argmax(error - tolerance), error.shape)
    assert (error <= tolerance).all(), (f"{what}: error {error[worst]:.3e} at {worst} over the bound "
                                        f"{tolerance[worst]:.3e} (terms {terms[worst]:.3e})")


@pytest.mark.parametrize("transposed", [False, True], ids=["plain", "transposed"])
@pytest.mark.parametrize("inputs", ["random", "ill"])
@pytest.mark.parametrize("kernel", list(PRODUCTS))
def test_products_against_float64(engine, kernel, inputs, transposed):
    gpu, mode = engine
    a_type, b_type, acc_type = PRODUCTS[kernel]
    n, k, m = 16, 32 if acc_type != "float" else 64, 24
    a, b, c = operands(inputs, a_type, b_type, acc_type, n, k, m, seed=zlib.crc32(f"{kernel} {inputs}".encode()))
    a_memory, lda = in_memory(a, transposed, 3)
    b_memory, ldb = in_memory(b, transposed, 5)
    c_memory, ldc = in_memory(c, transposed, 2)
    c_buffer = to_buffer(gpu, c_memory, acc_type)
    layout = dict(n=n, k=k, m=m, lda=lda, ldb=ldb, ldc=ldc, a_transposed=int(transposed),
                  b_transposed=int(transposed), c_transposed=int(transposed))
    gpu.set_function(kernel)
    tile_rows = 16 if kernel.startswith("row_paired_") else 8  # a threadgroup's rows of C
    gpu.run_function((m // 8 * 32, n // tile_rows), [to_buffer(gpu, a_memory, a_type), to_buffer(gpu, b_memory, b_type),
                                             c_buffer, layout], threads_per_threadgroup=(32, 1))
    got_memory = from_buffer(c_buffer, acc_type).reshape(c_memory.shape)
    got = (got_memory[:, :n].T if transposed else got_memory[:, :m])
    np.testing.assert_array_equal(got_memory[:, ldc - 2:], 0.0)  # the padding is left alone

    exact = a @ b + c
    terms = np.abs(a) @ np.abs(b)
    split, per_step = relative_bound(mode, a_type, b_type, acc_type, k)
    tolerance = split * terms + (k // 8) * per_step * (terms + np.abs(c))
    assert_within(got, exact, tolerance, terms, f"{mode} {kernel} {inputs}")


@pytest.mark.parametrize("bits", [0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0xFFFFFFFF], ids=hex)
def test_nan_operands_give_nan(engine, bits):
    """A NaN in A or B makes its row or column of the product NaN in every mode, whatever its payload: 3xTF32's
    split may turn NaN's high part into another value, and then carries the NaN in its low part. Plain TF32 reads
    only an operand's top 19 bits, as the tensor cores do, so a NaN whose payload lies below them reads as an
    infinity: not finite either, but not NaN."""
    gpu, mode = engine
    n = k = m = 16
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal((16, 16)).astype(np.float32) for _ in range(2))
    a.view(np.uint32)[3, 5] = b.view(np.uint32)[7, 2] = bits
    c = gpu.array_to_buffer(np.zeros(n * m, np.float32))
    layout = dict(n=n, k=k, m=m, lda=k, ldb=m, ldc=m, a_transposed=0, b_transposed=0, c_transposed=0)
    gpu.set_function("product_float")
    gpu.run_function((m // 8 * 32, n // 8), [gpu.array_to_buffer(a.ravel()), gpu.array_to_buffer(b.ravel()), c, layout],
                     threads_per_threadgroup=(32, 1))
    got = c.contents.reshape(n, m)
    bad = np.zeros((n, m), dtype=bool)
    bad[3, :] = bad[:, 2] = True
    np.testing.assert_array_equal(~np.isfinite(got), bad)
    if not (mode == "tf32" and bits & 0x007FE000 == 0):
        np.testing.assert_array_equal(np.isnan(got), bad)


# ---- thread_elements() around products --------------------------------------------------------------------------
LANES = np.arange(32)
ROWS = (LANES // 16) * 4 + (LANES // 2) % 4  # Apple's layout of a lane's two elements
COLUMNS = ((LANES // 8) % 2) * 4 + (LANES % 2) * 2


def doubled_by_every_third_lane() -> np.ndarray:
    """2 where lanes 0, 3, 6, ... hold the element (which the kernels double through thread_elements()), else 1."""
    doubled = np.ones((8, 8))
    for lane in LANES[LANES % 3 == 0]:
        doubled[ROWS[lane], COLUMNS[lane]:COLUMNS[lane] + 2] = 2
    return doubled

@pytest.mark.parametrize("element", ["float", "half", "bfloat"])
def test_thread_elements_around_products(engine, element):
    """Entries in {-1, 0, 1}: every result is a small integer, exact in every type and mode."""
    gpu, _ = engine
    rng = np.random.default_rng(7)
    a, b = (rng.integers(-1, 2, (8, 8)).astype(np.float64) for _ in range(2))
    out = gpu.create_buffer(8 * 64, element)
    gpu.set_function(f"elements_{element}")
    gpu.run_function(32, [to_buffer(gpu, a, element), to_buffer(gpu, b, element), out], threads_per_threadgroup=32)
    slots = from_buffer(out, element).reshape(8, 8, 8)

    doubled = doubled_by_every_third_lane()
    p = (a @ b) * doubled
    expected = [a, a @ b, p, p @ b, a @ p, a @ (a @ b), a @ b, 2 * a + 1]
    for slot, want in enumerate(expected):
        np.testing.assert_array_equal(slots[slot], want, err_msg=f"slot {slot}")


@pytest.mark.parametrize("transposed", [False, True], ids=["plain", "transposed"])
@pytest.mark.parametrize("element", ["half", "bfloat"])
def test_a_matrix_loaded_as_a_b_operand_reads_right_everywhere(engine, element, transposed):
    """A matrix whose loads read the B operand's layout first (on tensor cores) gives the same values when it is
    stored, multiplied from the left and read by the lanes. Entries in {-1, 0, 1}: every result is exact."""
    gpu, _ = engine
    rng = np.random.default_rng(17)
    a, b = (rng.integers(-1, 2, (8, 8)).astype(np.float64) for _ in range(2))
    out = gpu.create_buffer(4 * 64, element)
    gpu.set_function(f"b_operand_reused_{element}")
    gpu.run_function(32, [to_buffer(gpu, a, element), to_buffer(gpu, b, element), out, np.uint32(transposed)],
                     threads_per_threadgroup=32)
    slots = from_buffer(out, element).reshape(4, 8, 8)
    for slot, want in enumerate([a @ b, b, b @ a, b]):
        np.testing.assert_array_equal(slots[slot], want, err_msg=f"slot {slot}")


@pytest.mark.parametrize("aligned", [True, False], ids=["aligned", "unaligned"])
@pytest.mark.parametrize("transposed", [False, True], ids=["plain", "transposed"])
@pytest.mark.parametrize("element", ["half", "bfloat"])
@pytest.mark.parametrize("kernel,depth,ld", [("a_pair", 8, 16), ("deep_operands", 16, 24),
                                             ("scattered_operands", 16, 24)],
                         ids=["a-halves", "depth-16", "depth-16-scattered"])
def test_joined_loads_read_right(engine, kernel, depth, ld, element, transposed, aligned):
    """Loads joined into one call (one instruction on tensor cores where the rows are aligned: ld, not ld + 1): the
    two halves of an A operand (16 x 8 A), and the operands of a product of depth 16 written as two pairs of depth
    8 (A's four blocks in one call, B's two in another), the blocks in one array each or scattered over arrays of
    different strides. Entries in {-1, 0, 1}: every result is exact."""
    gpu, _ = engine
    rng = np.random.default_rng(19)
    a = rng.integers(-1, 2, (16, depth)).astype(np.float64)
    b = rng.integers(-1, 2, (depth, 8)).astype(np.float64)
    out = gpu.create_buffer(2 * 64, "float")
    gpu.set_function(f"{kernel}_{element}")
    gpu.run_function(32, [to_buffer(gpu, a, element), to_buffer(gpu, b, element), out,
                          np.array([ld if aligned else ld + 1, transposed], dtype=np.uint32)],
                     threads_per_threadgroup=32)
    np.testing.assert_array_equal(out.contents.astype(np.float64).reshape(16, 8), a @ b)


@pytest.mark.parametrize("element", ["half", "bfloat"])
def test_products_chained_into_one_accumulator(engine, element):
    """Eight products of one 16-bit type into a float accumulator, read between them: stored, read by the lanes,
    rewritten by some lanes, used in a float product, and with a product of the other 16-bit type among them (the
    tensor-core path may hold a product back to run it with the next). Entries in {-1, 0, 1}: every result is exact."""
    gpu, _ = engine
    other = "bfloat" if element == "half" else "half"
    rng = np.random.default_rng(11)
    a, b = (rng.integers(-1, 2, (8, 8, 8)).astype(np.float64) for _ in range(2))
    x, y = (rng.integers(-1, 2, (8, 8)).astype(np.float64) for _ in range(2))
    out = gpu.create_buffer(8 * 64, "float")
    gpu.set_function(f"chained_{element}")
    gpu.run_function(32, [to_buffer(gpu, a, element), to_buffer(gpu, b, element), to_buffer(gpu, x, other),
                          to_buffer(gpu, y, other), out], threads_per_threadgroup=32)
    slots = out.contents.astype(np.float64).reshape(8, 8, 8)

    doubled = doubled_by_every_third_lane()
    fresh = np.zeros((8, 8))  # each lane's elements: its number and -1
    for lane in LANES:
        fresh[ROWS[lane], COLUMNS[lane]:COLUMNS[lane] + 2] = lane, -1
    p = [a[i] @ b[i] for i in range(8)]
    two = 0.5 + p[0] + p[1]
    three = two + p[2]
    four = three + p[3]
    six = (four + p[4]) * doubled + p[5]
    seven = six + p[6]
    eight = seven + p[7]
    expected = [two, three, four, six, 2 * seven, eight, eight + p[0] + x @ y + p[1], fresh + p[2] + p[3]]
    for slot, want in enumerate(expected):
        np.testing.assert_array_equal(slots[slot], want, err_msg=f"slot {slot}")


@pytest.mark.parametrize("element", ["half", "bfloat"])
def test_products_in_pairs_of_statements(engine, element):
    """Pairs of products into two float matrices that read one B matrix (which the tensor-core path runs as one
    instruction, and may hold back to run with the next pair), read between them, and pairs that must run one after
    the other. Entries in {-1, 0, 1}: every result is exact."""
    gpu, _ = engine
    rng = np.random.default_rng(13)
    a = rng.integers(-1, 2, (8, 8, 8)).astype(np.float64)
    b = rng.integers(-1, 2, (4, 8, 8)).astype(np.float64)
    out = gpu.create_buffer(11 * 64, "float")
    gpu.set_function(f"row_pairs_{element}")
    gpu.run_function(32, [to_buffer(gpu, a, element), to_buffer(gpu, b, element), out], threads_per_threadgroup=32)
    slots = out.contents.astype(np.float64).reshape(11, 8, 8)

    doubled = doubled_by_every_third_lane()
    p = 0.5 + a[0] @ b[0] + a[2] @ b[1]
    q = -1.0 + a[1] @ b[0] + a[3] @ b[1]
    expected = [p, q]
    p, q = p + a[4] @ b[2], q + a[5] @ b[2]
    expected.append(p)
    p, q = p + a[6] @ b[3], q + a[7] @ b[3]
    expected.append(q)
    p, q = p * doubled + a[0] @ b[1], q + a[1] @ b[1]
    expected.append(p)
    r = q + a[2] @ b[2]
    q = r + a[3] @ b[2]
    expected += [r, q]
    r, p = p + a[4] @ b[3], p + a[5] @ b[3]
    expected += [r, p]
    expected += [r + a[6] @ b[0], p + a[7] @ b[1]]
    for slot, want in enumerate(expected):
        np.testing.assert_array_equal(slots[slot], want, err_msg=f"slot {slot}")


def benchmark_gemm(element: str) -> tuple[str, str, int]:
    """The GEMM kernel of benchmarks/cuda_gemm.py for ``element``, read from the file (importing it needs CuPy): its
    source, its name and a threadgroup's threads."""
    values = {}
    for node in ast.parse(BENCHMARK_GEMM.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("SOURCE", "KERNELS"):
                values[node.targets[0].id] = ast.literal_eval(node.value)
    instantiation, name, threads = values["KERNELS"][element]
    return values["SOURCE"] + instantiation, name, threads


@pytest.mark.parametrize("element", ["half", "bfloat", "float"])
@pytest.mark.parametrize("engine", [param for param in _engines() if param.values[0][1] == "3xtf32"],
                         indirect=True)
def test_the_benchmark_gemm(engine, element):
    """The benchmark's GEMM (tiles in threadgroup memory refilled each step of k, the next blocks read from device
    memory while these are multiplied, products in statement pairs) on 256 x 256 matrices, 2 x 2 threadgroups,
    against float64; C is rounded to the element type.
    In the default float mode: the others' products are checked above."""
    gpu, mode = engine
    n = 256
    a, b, _ = operands("random", element, element, "float", n, n, n, seed=zlib.crc32(element.encode()))
    c = gpu.create_buffer(n * n, element)
    source, name, threads = benchmark_gemm(element)
    gpu.load_shader_from_str(source)
    gpu.set_function(name)
    gpu.run_function((n // 128 * threads, n // 128), [to_buffer(gpu, a, element), to_buffer(gpu, b, element), c,
                                                      np.uint32(n)], threads_per_threadgroup=(threads, 1))
    got = from_buffer(c, element).reshape(n, n)
    exact, terms = a @ b, np.abs(a) @ np.abs(b)
    split, per_step = relative_bound(mode, element, element, "float", n)
    tolerance = split * terms + (n // 8) * per_step * terms
    tolerance += ROUNDING[element] * (np.abs(exact) + tolerance)  # the float result rounded to C's type
    assert_within(got, exact, tolerance, terms, f"{mode} {element}")


def test_the_mode_is_checked():
    with pytest.raises(metalgpu.ArgumentError, match="simdgroup_float"):
        metalgpu.Interface(backend="cpu", simdgroup_float="fp16")


def test_the_mode_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("METALGPU_SIMDGROUP_FLOAT", "tf33")
    with pytest.raises(metalgpu.ArgumentError, match="METALGPU_SIMDGROUP_FLOAT"):
        metalgpu.Interface(backend="cpu")


# ---- what NVRTC makes of them (no GPU needed) -------------------------------------------------------------------
def _ptx(arch: str, mode: str) -> str:
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
    from test_cuda_translation import cuda_source, ptx_of

    from metalgpu.backends.base import CompileOptions

    translation, _ = cuda_source(KERNELS)
    return ptx_of(translation.source, CompileOptions(simdgroup_float=mode), arch.replace("sm_", "compute_"))


def _kernel_ptx(ptx: str, host_name: str, names: list[str]) -> str:
    """The PTX of one kernel: the wrappers are mg_run_<index in the file>."""
    index = names.index(host_name)
    start = ptx.index(f".entry mg_run_{index}(")
    end = ptx.find(".entry", start + 1)
    return ptx[start:end if end >= 0 else None]


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_products_compile_to_tensor_core_instructions(arch):
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess

    names = [k.host_name for k in parse(preprocess(KERNELS.read_text(), str(KERNELS)).tokens).kernels]
    ptx = _ptx(arch, "3xtf32")
    mma = "mma.sync.aligned.m16n8k8.row.col.f32"
    assert f"{mma}.tf32.tf32.f32" in _kernel_ptx(ptx, "product_float", names)
    assert _kernel_ptx(ptx, "product_float", names).count(f"{mma}.tf32") == 2  # 3xTF32: two per product
    assert _kernel_ptx(ptx, "product_float_half", names).count(f"{mma}.tf32") == 1  # half is exact in TF32
    assert f"{mma}.f16.f16.f32" in _kernel_ptx(ptx, "product_half", names)
    assert f"{mma}.bf16.bf16.f32" in _kernel_ptx(ptx, "product_bfloat", names)
    assert "movmatrix" in _kernel_ptx(ptx, "elements_half", names)  # a product's result as a B operand
    exact = _ptx(arch, "exact")
    assert f"{mma}.tf32" not in _kernel_ptx(exact, "product_float", names)
    assert f"{mma}.f16.f16.f32" in _kernel_ptx(exact, "product_half", names)  # half products in every mode


def _nvrtc_knows_constants() -> bool:
    """Whether this NVRTC has __builtin_constant_p (13.5 has, 13.0 has not), through which the optimiser drops
    the layout copies a matrix's known freshness does not pick."""
    from cuda.bindings import nvrtc

    source = b"__global__ void k(int* p) { if (__builtin_constant_p(*p)) *p = 1; }"
    err, program = nvrtc.nvrtcCreateProgram(source, b"probe.cu", 0, [], [])
    try:
        (err,) = nvrtc.nvrtcCompileProgram(program, 0, [])
        return err == nvrtc.nvrtcResult.NVRTC_SUCCESS
    finally:
        nvrtc.nvrtcDestroyProgram(program)


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_loaded_operands_need_no_transpose(arch):
    """A loaded B operand is read from memory in the layout mma.sync takes: no transpose in a product, also where
    the load is one ldmatrix (staged_*: read as the B operand's layout, msl/operand_loads.py)."""
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess

    if not _nvrtc_knows_constants():
        pytest.skip("this NVRTC has no __builtin_constant_p: products keep a transpose of their loaded operands "
                    "(right, and slower; docs/differences.md)")
    names = [k.host_name for k in parse(preprocess(KERNELS.read_text(), str(KERNELS)).tokens).kernels]
    ptx = _ptx(arch, "3xtf32")
    for kernel in PRODUCTS:
        assert "movmatrix" not in _kernel_ptx(ptx, kernel, names), kernel


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_aligned_threadgroup_loads_use_ldmatrix(arch):
    """Half and bfloat matrices loaded from threadgroup rows 16 bytes apart: one ldmatrix a load, plain or
    transposed; rows 9 elements apart are not aligned and stay scalar."""
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess

    if not _nvrtc_knows_constants():
        pytest.skip("this NVRTC has no __builtin_constant_p: loads stay scalar (faster there; _simdgroup_mma.h)")
    names = [k.host_name for k in parse(preprocess(KERNELS.read_text(), str(KERNELS)).tokens).kernels]
    ptx = _ptx(arch, "3xtf32")
    for staged in ("staged_half_into_float", "staged_bfloat"):
        for form in ("ldmatrix.sync.aligned.m8n8.x1.shared.b16", "ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16"):
            assert form in _kernel_ptx(ptx, staged, names), (staged, form)
    assert "ldmatrix" not in _kernel_ptx(ptx, "product_half", names)


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("kernel,counts", [("a_pair", ["x2"]), ("deep_operands", ["x4", "x2"]),
                                           ("scattered_operands", ["x4", "x2"])],
                         ids=["a-halves", "depth-16", "depth-16-scattered"])
def test_joined_loads_take_one_ldmatrix_an_operand(arch, kernel, counts):
    """Loads in a row that the translator joins: the two halves of an A operand one ldmatrix.x2; the four A blocks
    of a product of depth 16 one .x4 and its two B blocks one .x2. Each plain and transposed (B's transposing where
    its rows lie in memory as they are)."""
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess

    if not _nvrtc_knows_constants():
        pytest.skip("this NVRTC has no __builtin_constant_p: loads stay scalar (faster there; _simdgroup_mma.h)")
    names = [k.host_name for k in parse(preprocess(KERNELS.read_text(), str(KERNELS)).tokens).kernels]
    ptx = _ptx(arch, "3xtf32")
    for element in ("half", "bfloat"):
        code = _kernel_ptx(ptx, f"{kernel}_{element}", names)
        for form in (f"ldmatrix.sync.aligned.m8n8.{count}{trans}.shared.b16" for count in counts
                     for trans in ("", ".trans")):
            assert form in code, (element, form)


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_products_into_one_accumulator_pair_up(arch):
    """Two half (or bfloat) products into one float accumulator in straight code, or two a step of a loop, run as one
    m16n8k16; one product a step of a loop whose trip count the compiler does not know runs at once, as an m16n8k8."""
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess

    if not _nvrtc_knows_constants():
        pytest.skip("this NVRTC has no __builtin_constant_p: every product runs at once (_simdgroup_mma.h)")
    names = [k.host_name for k in parse(preprocess(KERNELS.read_text(), str(KERNELS)).tokens).kernels]
    ptx = _ptx(arch, "3xtf32")
    for element, kind in (("half", "f16"), ("bfloat", "bf16")):
        paired = f"mma.sync.aligned.m16n8k16.row.col.f32.{kind}.{kind}.f32"
        # chained: products 0-1, 2-3 and 6-7 at least (kernels/simdgroup_tensor_cores.metal)
        assert _kernel_ptx(ptx, f"chained_{element}", names).count(paired) >= 3, element
        assert paired in _kernel_ptx(ptx, f"paired_{element}_into_float", names), element
        assert paired not in _kernel_ptx(ptx, f"product_{element}_into_float", names), element


def test_products_before_sm80_stay_on_shuffles():
    ptx = _ptx("sm_75", "3xtf32")
    assert "mma.sync" not in ptx and "movmatrix" not in ptx and "shfl.sync" in ptx
