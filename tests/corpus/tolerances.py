"""Tolerances of the corpus kernels, per kernel family and element type: (rtol, atol) for numpy.isclose.

The references are float64 numpy over the same (rounded) inputs, so the tolerance is the device's own rounding:
- exact (0, 0): data movement and integer results (indexing, gather/scatter of integers, fill, sort and argsort
  indices, arg-reduce indices, im2col) must match bit for bit.
- float32 one-step results (elementwise, interpolation): a few ulp of float32 plus fast-math transcendentals,
  rtol 2e-6 relative (2^-19), atol 1e-6 for values near zero.
- accumulations of n terms in another order (reductions, scans, norms, softmax, GEMM/GEMV, convolutions,
  attention): float32 rtol 1e-5 with atol 1e-5 for cancellation near zero; the sizes used keep n <= 4096.
- half results: one rounding to 11 significant bits is 2^-11 = 4.9e-4 relative; two roundings (input, output)
  and a half accumulator allow 2e-3, accumulations 5e-3. bfloat16 (8 bits): 2^-8 = 3.9e-3, so 1e-2 and 2e-2.
- rope: a 2-term dot product per element (x1 c - x2 s). Kernels that compute it in the element type (candle's)
  round each product and the sum: with inputs and cos/sin in [-1, 1] that is at most 3 roundings at magnitude 1,
  an absolute 3 * 2^-12 = 7.3e-4 for half and 3 * 2^-9 = 5.9e-3 for bfloat16 (cancellation leaves it absolute).
- quantised mat-vec: the reference dequantises the same blocks exactly; float32 accumulation of a few thousand
  products, rtol 1e-4 atol 1e-4.
"""
from __future__ import annotations

EXACT = (0.0, 0.0)
_ONE_STEP = {"float32": (2e-6, 1e-6), "float16": (2e-3, 1e-4), "bfloat16": (1e-2, 1e-3)}
_TWO_TERMS = {"float32": (2e-6, 1e-6), "float16": (2e-3, 7.5e-4), "bfloat16": (1e-2, 6e-3)}
_ACCUMULATED = {"float32": (1e-5, 1e-5), "float16": (5e-3, 1e-3), "bfloat16": (2e-2, 1e-2)}
_FAMILIES = {
    "indexing": None, "fill": None, "sort": None, "arg-reduce": None, "copy": None,
    "elementwise": _ONE_STEP, "interpolation": _ONE_STEP,
    "reduction": _ACCUMULATED, "scan": _ACCUMULATED, "softmax": _ACCUMULATED, "norm": _ACCUMULATED,
    "rope": _TWO_TERMS, "gemm": _ACCUMULATED, "gemv": _ACCUMULATED, "convolution": _ACCUMULATED,
    "attention": _ACCUMULATED, "quantized": {"float32": (1e-4, 1e-4), "float16": (5e-3, 1e-3),
                                             "bfloat16": (2e-2, 1e-2)},
}
FAMILIES = tuple(_FAMILIES)


def tolerance(family: str, dtype: str) -> tuple[float, float]:
    if family not in _FAMILIES:
        raise KeyError(f"unknown kernel family {family!r}; known: {', '.join(FAMILIES)}")
    table = _FAMILIES[family]
    if table is None or dtype not in table:  # integer types and data movement are exact
        return EXACT
    return table[dtype]
