"""Inputs, error measures and the harness shared by the conformance tests (test_math.py,
test_integer_relational.py, test_vectors_matrices_pack.py): edge values of every type, ULP distances, the
exact integer semantics (two's complement wrap-around at the type's width) that numpy's fixed-width
arithmetic does not give for mulhi, saturation and the like, and running a kernel file of this folder.

Set METALGPU_CONFORMANCE_REPORT=<file> to append "family function max_ulp bound" lines (for the docs table).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent  # the kernel files, one per family
N = 1024                       # elements of a float or int input
CR = 0.5                       # the bound of a correctly rounded function, in ulp

F32 = np.float32
TINY = float(np.finfo(F32).tiny)          # smallest normal float, 2**-126
DENORM_MIN = float(np.float32(2.0**-149))  # smallest subnormal float

FLOAT_EDGES = np.array(
    [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, DENORM_MIN, -DENORM_MIN, TINY * 0.5, TINY, -TINY,
     float(np.finfo(F32).max), -float(np.finfo(F32).max), 1.0, -1.0, 0.5, -0.5, 2.0, np.pi, -np.pi,
     np.pi / 2, 1e-7, -1e-7, 100.0, -100.0, 88.5, -87.5, 1e10, -1e10, 0.999, -0.999, 1.001],
    dtype=F32)


def float_inputs(count: int, seed: int) -> np.ndarray:
    """Edge values, then values spread over the interesting ranges: [-1, 1], [-10, 10], and magnitudes
    from 1e-30 to 1e30 of either sign."""
    rng = np.random.default_rng(seed)
    rest = count - len(FLOAT_EDGES)
    third = rest // 3
    unit = rng.uniform(-1.0, 1.0, third)
    ten = rng.uniform(-10.0, 10.0, third)
    wide = (np.exp(rng.uniform(np.log(1e-30), np.log(1e30), rest - 2 * third)) *
            rng.choice([-1.0, 1.0], rest - 2 * third))
    return np.concatenate([FLOAT_EDGES, unit.astype(F32), ten.astype(F32), wide.astype(F32)])


def ulp_of(reference: np.ndarray, dtype=F32) -> np.ndarray:
    """The spacing of `dtype` at |reference| (a subnormal's spacing at the bottom), from the exponent bits.

    Computed on integers and float64 only: a process that loaded a library built with -ffast-math may run
    with denormals flushed to zero (x86 FTZ/DAZ), which would make np.spacing of a float32 subnormal 0.
    """
    r = np.abs(np.asarray(reference, dtype=np.float64))
    finfo = np.finfo(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        narrowed = np.minimum(r, float(finfo.max)).astype(dtype)
    mantissa_bits, exponent_bias = finfo.nmant, finfo.maxexp - 1
    bits = narrowed.view(np.uint32 if dtype == F32 else np.uint16).astype(np.int64)
    exponent = np.maximum((bits >> mantissa_bits) & (2 * exponent_bias + 1), 1)
    return np.ldexp(1.0, (exponent - exponent_bias - mantissa_bits).astype(np.int32))


def ulp_error(got: np.ndarray, reference: np.ndarray, dtype=F32, flush_ok: bool = True) -> np.ndarray:
    """|got - reference| in units of the last place of `reference` rounded to `dtype`, per element.

    NaN against NaN and equal infinities count 0; a NaN or infinity against anything else counts inf.
    Metal may flush subnormal inputs and results to zero (spec, "Numerical compliance"): with flush_ok, a
    zero where the reference is subnormal counts 0.
    """
    got = np.asarray(got, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ref_narrow = reference.astype(dtype).astype(np.float64)
        err = np.abs(got - reference) / ulp_of(reference, dtype)
        both_nan = np.isnan(got) & np.isnan(reference)
        same_inf = np.isinf(got) & (got == ref_narrow)
        err = np.where(both_nan | same_inf, 0.0, err)
        err = np.where((np.isnan(got) | np.isnan(reference)) & ~both_nan, np.inf, err)
        if flush_ok:
            subnormal = (np.abs(ref_narrow) < float(np.finfo(dtype).tiny)) & (got == 0)
            err = np.where(subnormal, 0.0, err)
    return err


def widen(x: np.ndarray) -> np.ndarray:
    """float32 values as float64, exactly, subnormals included (not through a conversion that DAZ flushes)."""
    bits = np.asarray(x, dtype=F32).view(np.uint32).astype(np.int64)
    sign = np.where(bits >> 31, -1.0, 1.0)
    exponent = (bits >> 23) & 0xFF
    mantissa = bits & 0x7FFFFF
    value = np.where(exponent == 0, np.ldexp(mantissa.astype(np.float64), -149),
                     np.ldexp((mantissa | 0x800000).astype(np.float64), (exponent - 150).astype(np.int32)))
    special = exponent == 0xFF
    value = np.where(special, np.where(mantissa != 0, np.nan, np.inf), value)
    return np.copysign(value, sign)  # keeps the sign of NaNs too


def flushed(x: np.ndarray) -> np.ndarray:
    """x with subnormals replaced by zeros of the same sign (what a flush-to-zero device may read)."""
    x64 = widen(x)
    return np.where(np.abs(x64) < float(np.finfo(F32).tiny), np.copysign(0.0, x64), x64)


# ---- integers ---------------------------------------------------------------------------------------------
INT_TYPES = {  # Metal name: numpy dtype
    "char": np.int8, "uchar": np.uint8, "short": np.int16, "ushort": np.uint16,
    "int": np.int32, "uint": np.uint32, "long": np.int64, "ulong": np.uint64,
}


def int_edges(dtype) -> list[int]:
    info = np.iinfo(dtype)
    bits = info.bits
    values = {info.min, info.max, 0, 1, 2, 3, bits - 1, bits, bits + 1, 2 * bits, info.max // 2, info.max // 2 + 1,
              info.min + 1, info.max - 1}
    if info.min < 0:
        values |= {-1, -2, -bits, info.min // 2}
    return sorted(values)


def int_inputs(dtype, count: int, seed: int) -> np.ndarray:
    """Edge values of the type (extremes, 0, +-1, shift counts at and past the width), shuffled against
    uniform random values over the whole range."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    edges = np.array(int_edges(dtype), dtype=dtype)
    edges = rng.permutation(np.resize(edges, count // 2))
    rand = rng.integers(info.min, info.max, count - len(edges), dtype=dtype, endpoint=True)
    return np.concatenate([edges, rand])


def wrap(values, dtype) -> np.ndarray:
    """Python ints reduced to the two's complement range of dtype."""
    info = np.iinfo(dtype)
    span = 1 << info.bits
    return np.array([((int(v) - info.min) % span) + info.min for v in values], dtype=dtype)


# ---- running kernels and checking results -------------------------------------------------------------------
def report(family: str, name: str, err: float, bound: float) -> None:
    path = os.environ.get("METALGPU_CONFORMANCE_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(f"{family} {name} {err:.3g} {bound}\n")


def run(iface, filename: str, kernel: str, inputs: list, outputs: list[tuple[int, str]], grid: int):
    """Run `kernel` of `filename` with buffers from `inputs` (arrays) and fresh `outputs` ((count, type)),
    returning the outputs' contents."""
    iface.load_shader(str(HERE / filename))
    iface.set_function(kernel)
    in_bufs = [iface.array_to_buffer(np.ascontiguousarray(a)) for a in inputs]
    out_bufs = [iface.create_buffer(count, kind) for count, kind in outputs]
    iface.run_function(grid, in_bufs + out_bufs)
    return [np.array(b.contents) for b in out_bufs]


def check_ulp(family, name, got, reference, bound, mask=None, dtype=F32, flush_ok=True):
    err = ulp_error(got, reference, dtype, flush_ok)
    if mask is not None:
        err = np.where(mask, err, 0.0)
    worst = float(np.max(err)) if err.size else 0.0
    report(family, name, worst, bound)
    i = int(np.argmax(err))
    assert worst <= bound, (f"{name}: {worst:.3g} ulp > {bound} at element {i}: got {np.ravel(got)[i]!r}, "
                            f"expected {np.ravel(reference)[i]!r}")
