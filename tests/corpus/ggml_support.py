"""What ggml's cases share: the constants of ggml's own Metal header, argument structs built through
``Interface.struct_dtype``, tensors described as ggml describes them (``ne`` element counts and ``nb`` byte strides,
dimension 0 innermost), dispatches given as ggml's host code gives them (threadgroups and threads per threadgroup),
and the quantisation block formats of ``ggml-common.h``.

The block formats are the specification (``ggml-common.h`` and the dequantisers of ``ggml-quants.c`` define what a
block means), so the dequantisers here follow them directly; the blocks hold random codes and scales, packed
through the struct layouts Metal sees (``struct_dtype("block_q4_0")``), and every reference dequantises those very
blocks in float64.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .harness import corpus_dir, from_device, libraries, round_to, to_device

RNG_SEED = 13
_DEFINE = re.compile(r"^#define\s+(\w+)\s+(-?\d+)\s*(?://.*)?$", re.MULTILINE)


@lru_cache(maxsize=1)
def header_constants() -> dict[str, int]:
    """The integer ``#define``s of ggml-metal-impl.h (function-constant offsets ``FC_*``, rows and SIMD-groups per
    mat-vec threadgroup ``N_R0_*``/``N_SG_*``, unary op numbers ``OP_UNARY_NUM_*``), read from the corpus."""
    library = next(entry for entry in libraries() if entry.name == "ggml")
    text = (corpus_dir() / library.folder / "src/ggml-metal/ggml-metal-impl.h").read_text()
    return {name: int(value) for name, value in _DEFINE.findall(text)}


def constant(name: str) -> int:
    return header_constants()[name]


def kargs(gpu, struct: str, **fields) -> np.ndarray:
    """One ``ggml_metal_kargs_*`` value laid out by the library's own header; every field must be given, as
    ggml's host code initialises every one."""
    dtype = gpu.struct_dtype(struct)
    missing = [name for name in dtype.names if name not in fields]
    unknown = [name for name in fields if name not in dtype.names]
    if missing or unknown:
        raise ValueError(f"{struct}: fields missing {missing}, unknown {unknown}")
    record = np.zeros((), dtype)
    for name, value in fields.items():
        record[name] = value
    return record


def dispatch(gpu, groups, threads, buffers, threadgroup_memory: int | None = None, function: str | None = None
             ) -> None:
    """ggml's ``dispatch_threadgroups(groups, threads)`` as a dispatch of whole threadgroups; ``threadgroup_memory``
    bytes for ``[[threadgroup(0)]]``, as ggml's ``set_threadgroup_memory_size(enc, smem, 0)`` (0 included)."""
    groups, threads = tuple(groups) + (1,) * (3 - len(groups)), tuple(threads) + (1,) * (3 - len(threads))
    grid = tuple(g * t for g, t in zip(groups, threads))
    memory = {0: threadgroup_memory} if threadgroup_memory is not None else None
    gpu.run_function(grid, buffers, function, threads_per_threadgroup=threads, threadgroup_memory=memory)


# --- tensors ------------------------------------------------------------------------------------------------------

ELEMENT_SIZE = {"float32": 4, "float16": 2, "int32": 4, "int64": 8}


def ggml_shape(shape) -> tuple[int, int, int, int]:
    """numpy's shape (outermost first) as ggml's ``ne`` (innermost first), padded to four dimensions."""
    shape = tuple(shape)
    return tuple(reversed((1,) * (4 - len(shape)) + shape))


@dataclass
class Tensor:
    buffer: object
    dtype: str          # element type (a harness dtype name), or "uint8" for quantised blocks
    ne: tuple[int, int, int, int]
    nb: tuple[int, int, int, int]
    shape: tuple[int, ...]  # numpy's shape of the elements (ne reversed, without the leading ones)

    def fields(self, prefix: str, dims: str = "0123") -> dict:
        """``{prefix}{d}`` counts and strides as the kargs structs name them: ``fields("0")`` -> ne00, nb00, ..."""
        out = {}
        for d in dims:
            out[f"ne{prefix}{d}"] = self.ne[int(d)]
            out[f"nb{prefix}{d}"] = self.nb[int(d)]
        return out


def upload(gpu, values: np.ndarray, dtype: str, row_pad: int = 0, slack: int = 0) -> Tensor:
    """A tensor holding ``values`` (numpy order) as ``dtype``. ``row_pad`` elements of filler after each row make
    it non-contiguous (``nb1 > ne0 * size``, as a view of a wider tensor); ``slack`` spare rows after the end let a
    kernel read a whole block of rows past the last, as ggml's buffers allow."""
    ne = ggml_shape(values.shape)
    size = ELEMENT_SIZE[dtype]
    rows = values.reshape(-1, ne[0])
    padded = np.full((rows.shape[0] + slack, ne[0] + row_pad), 1e4 if dtype != "int32" else -99, dtype=np.float64)
    padded[:rows.shape[0], :ne[0]] = rows
    nb0, nb1 = size, size * (ne[0] + row_pad)
    nb = (nb0, nb1, nb1 * ne[1], nb1 * ne[1] * ne[2])
    return Tensor(to_device(gpu, padded, dtype), dtype, ne, nb, values.shape)


def upload_stack(gpu, arrays: list[np.ndarray], dtype: str) -> tuple[Tensor, list[int]]:
    """Several contiguous tensors of one shape, one after another in one buffer (as ggml places the operands of
    a fused op): the tensor of the first and the byte offset of each."""
    first = upload(gpu, arrays[0], dtype)
    flat = np.concatenate([array.reshape(-1) for array in arrays])
    step = arrays[0].size * ELEMENT_SIZE[dtype]
    return Tensor(to_device(gpu, flat, dtype), dtype, first.ne, first.nb, first.shape), [k * step for k in
                                                                                         range(len(arrays))]


def output(gpu, shape, dtype: str) -> Tensor:
    """A contiguous result tensor prefilled with a value no kernel computes here (NaN, or -77 for integers), so
    that an element left unwritten fails its check."""
    ne = ggml_shape(shape)
    size = ELEMENT_SIZE[dtype]
    count = int(np.prod(shape))
    fill = np.full(count, -77 if dtype == "int32" else np.nan)
    nb = (size, size * ne[0], size * ne[0] * ne[1], size * ne[0] * ne[1] * ne[2])
    return Tensor(to_device(gpu, fill, dtype), dtype, ne, nb, tuple(shape))


def download(tensor: Tensor) -> np.ndarray:
    """A tensor's elements (through its strides) in numpy order, float64 (or the integers as they are)."""
    flat = from_device(tensor.buffer, tensor.dtype)
    size = ELEMENT_SIZE[tensor.dtype]
    strides = [n // size for n in reversed(tensor.nb)]
    shape = list(reversed(tensor.ne))
    index = sum(np.arange(n).reshape([-1 if k == axis else 1 for k in range(4)]) * s
                for axis, (n, s) in enumerate(zip(shape, strides)))
    return flat[index].reshape(tensor.shape)


def values(shape, dtype: str, rng, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    """Random inputs already representable in ``dtype`` (so the reference sees what the device holds)."""
    return round_to(rng.uniform(low, high, size=shape), dtype)


# --- quantisation blocks (ggml-common.h) --------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockFormat:
    name: str           # ggml's type name: the struct is block_<name>
    elements: int       # values per block (QK4_0, QK_K, ...)


FORMATS = {name: BlockFormat(name, elements) for name, elements in
           (("q4_0", 32), ("q4_1", 32), ("q5_0", 32), ("q8_0", 32), ("q6_K", 256))}


def _halves(rng, count: int, low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, size=count).astype(np.float16)


def _random_blocks(blocks: np.ndarray, kind: str, rng) -> None:
    """Random codes and scales in every field of ``blocks`` (a structured array of block_<kind>)."""
    count = blocks.shape[0]
    if kind == "q4_1":
        blocks["d"] = _halves(rng, count, 0.01, 0.05)  # d and m overlay dm (a union): set through d and m
        blocks["m"] = _halves(rng, count, -0.3, 0.3)
    else:
        blocks["d"] = _halves(rng, count, 0.01, 0.05) if kind != "q6_K" else _halves(rng, count, 0.0005, 0.002)
    for field in blocks.dtype.names:
        if field in ("d", "m", "dm"):
            continue
        base, shape = blocks.dtype.fields[field][0].subdtype
        low, high = (-128, 128) if base == np.int8 else (0, 256)
        if kind == "q6_K" and field == "scales":
            low, high = -60, 60
        blocks[field] = rng.integers(low, high, size=(count, *shape)).astype(base)


def _dequantize(blocks: np.ndarray, kind: str) -> np.ndarray:
    """The values of ``blocks`` in float64, one row of ``elements`` per block, as ggml-quants.c defines them."""
    d = blocks["d"].astype(np.float64)[:, None]
    if kind == "q8_0":
        return d * blocks["qs"].astype(np.float64)
    if kind in ("q4_0", "q4_1", "q5_0"):
        qs = blocks["qs"].astype(np.int64)
        codes = np.concatenate([qs & 0x0F, qs >> 4], axis=1)   # element j and j + 16 share byte j
        if kind == "q4_1":
            return d * codes + blocks["m"].astype(np.float64)[:, None]
        if kind == "q4_0":
            return d * (codes - 8)
        high = blocks["qh"].astype(np.int64) @ (1 << (8 * np.arange(4)))   # qh as a little-endian uint32
        bits = (high[:, None] >> np.arange(32)) & 1                        # bit j: fifth bit of element j
        return d * ((codes | (bits << 4)) - 16)
    if kind == "q6_K":
        ql, qh = blocks["ql"].astype(np.int64), blocks["qh"].astype(np.int64)
        scales = blocks["scales"].astype(np.float64)
        out = np.empty((blocks.shape[0], 256))
        for half in range(2):  # two halves of 128 values: 64 bytes of ql, 32 of qh, 8 scales each
            low, high, sc = ql[:, 64 * half:64 * half + 64], qh[:, 32 * half:32 * half + 32], scales[:, 8 * half:]
            for quarter, (nibbles, shift) in enumerate(((low[:, :32] & 0xF, 0), (low[:, 32:] & 0xF, 2),
                                                        (low[:, :32] >> 4, 4), (low[:, 32:] >> 4, 6))):
                q = (nibbles | (((high >> shift) & 3) << 4)) - 32
                for l16 in range(2):  # the scale changes every 16 values
                    part = slice(16 * l16, 16 * l16 + 16)
                    column = 128 * half + 32 * quarter + 16 * l16
                    out[:, column:column + 16] = d * sc[:, 2 * quarter + l16:2 * quarter + l16 + 1] * q[:, part]
        return out
    raise ValueError(f"no dequantiser for {kind}")


@dataclass
class Quantized:
    raw: np.ndarray         # the blocks' bytes, row after row
    values: np.ndarray      # what they mean, float64, numpy shape
    kind: str
    block_bytes: int

    @property
    def row_bytes(self) -> int:
        return self.values.shape[-1] // FORMATS[self.kind].elements * self.block_bytes


def quantize_random(gpu, kind: str, shape, rng) -> Quantized:
    """Random blocks of ``kind`` for a tensor of ``shape`` (numpy order, the last dimension a multiple of the
    block size), laid out as ``block_<kind>`` is in Metal, with their exact values."""
    fmt = FORMATS[kind]
    shape = tuple(shape)
    assert shape[-1] % fmt.elements == 0, f"{kind}: rows of {shape[-1]} are not whole blocks of {fmt.elements}"
    count = int(np.prod(shape)) // fmt.elements
    blocks = np.zeros(count, gpu.struct_dtype(f"block_{kind}"))
    _random_blocks(blocks, kind, rng)
    dequantized = _dequantize(blocks, kind).reshape(shape)
    return Quantized(blocks.view(np.uint8).copy(), dequantized, kind, blocks.dtype.itemsize)


def upload_quantized(gpu, quantized: Quantized, slack_rows: int = 0) -> Tensor:
    """The blocks as a ggml tensor (``nb0`` is a block's size, as ggml gives it), with ``slack_rows`` spare rows
    after the end for kernels that read whole groups of rows."""
    ne = ggml_shape(quantized.values.shape)
    raw = np.concatenate([quantized.raw, np.zeros(slack_rows * quantized.row_bytes, np.uint8)])
    nb1 = quantized.row_bytes
    buffer = gpu.create_buffer(raw.size, "uchar")
    buffer.contents[:] = raw
    nb = (quantized.block_bytes, nb1, nb1 * ne[1], nb1 * ne[1] * ne[2])
    return Tensor(buffer, "uint8", ne, nb, quantized.values.shape)


def quantize_reference(gpu, x: np.ndarray, kind: str) -> np.ndarray:
    """ggml-quants.c's reference quantisers (quantize_row_<kind>_ref), in float32 as they compute: the blocks of
    ``x`` (rows of whole blocks) as bytes, row after row."""
    rows = np.asarray(x, np.float32).reshape(-1, FORMATS[kind].elements)
    blocks = np.zeros(rows.shape[0], gpu.struct_dtype(f"block_{kind}"))
    with np.errstate(divide="ignore"):
        if kind == "q8_0":
            d = (np.abs(rows).max(axis=1) / np.float32(127)).astype(np.float32)
            inverse = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
            scaled = (rows * inverse[:, None]).astype(np.float64)
            blocks["qs"] = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)  # roundf: halves away from zero
        elif kind == "q4_0":
            largest = rows[np.arange(rows.shape[0]), np.argmax(np.abs(rows), axis=1)]  # the first of equal |x|
            d = (largest / np.float32(-8)).astype(np.float32)
            inverse = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
            shifted = (rows * inverse[:, None]).astype(np.float32) + np.float32(8.5)
            codes = np.minimum(15, np.trunc(shifted)).astype(np.uint8)             # (int8_t) truncates
            blocks["qs"] = codes[:, :16] | (codes[:, 16:] << 4)
        else:
            raise ValueError(f"no reference quantiser for {kind}")
    blocks["d"] = d.astype(np.float16)
    return blocks.view(np.uint8)


def softmax_rows(logits: np.ndarray, sink: np.ndarray | None = None) -> np.ndarray:
    """Softmax along the last axis of (..., heads, rows, columns) logits; a head's sink (ggml's attention sinks) is
    one more logit in every row's denominator that takes no share of the output."""
    top = logits.max(axis=-1, keepdims=True)
    if sink is not None:
        top = np.maximum(top, sink.reshape(-1, 1, 1))
    weights = np.exp(logits - top)
    total = weights.sum(axis=-1, keepdims=True)
    if sink is not None:
        total = total + np.exp(sink.reshape(-1, 1, 1) - top)
    return weights / total
