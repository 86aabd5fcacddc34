"""Runtime cases of candle's quantized.metal (its copy of ggml's kernels): quantised matrix-vector products
kernel_mul_mv_<q>_f32, dispatched as candle's call_quantized_matmul_mv_t does. The weights are random blocks in
ggml's block formats (the format is the specification: ggml-common.h's block_q* structs and ggml-quants.c's
dequantize_row_q*), dequantised exactly in float64 for the reference."""
from __future__ import annotations

import numpy as np

from .candle_support import RNG_SEED
from .cases import case
from .harness import check, from_device, to_device

QK = 32     # elements per block of the simple formats
QK_K = 256  # elements per super-block of the k-quants

BLOCKS = {
    "q4_0": np.dtype([("d", "<f2"), ("qs", "u1", 16)]),
    "q4_1": np.dtype([("d", "<f2"), ("m", "<f2"), ("qs", "u1", 16)]),
    "q5_0": np.dtype([("d", "<f2"), ("qh", "u1", 4), ("qs", "u1", 16)]),
    "q8_0": np.dtype([("d", "<f2"), ("qs", "i1", 32)]),
    "q4_K": np.dtype([("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", 12), ("qs", "u1", 128)]),
    "q6_K": np.dtype([("ql", "u1", 128), ("qh", "u1", 64), ("scales", "i1", 16), ("d", "<f2")]),
}
# candle's (threads per threadgroup x, y) and rows per threadgroup for each format (kernels/quantized.rs)
DISPATCH = {"q4_0": (8, 8, 8), "q4_1": (8, 8, 8), "q5_0": (8, 8, 8), "q8_0": (8, 8, 8), "q4_K": (4, 8, 4),
            "q6_K": (2, 32, 2)}


def _random_blocks(kind: str, count: int, rng) -> np.ndarray:
    blocks = np.zeros(count, BLOCKS[kind])
    for name in BLOCKS[kind].names:
        field = blocks[name]
        if name in ("d", "dmin", "m"):
            blocks[name] = rng.uniform(-0.05, 0.05, size=field.shape).astype(np.float16)
        else:
            info = np.iinfo(field.dtype)
            blocks[name] = rng.integers(info.min, info.max + 1, size=field.shape, dtype=field.dtype)
    return blocks


def _dequantize(kind: str, blocks: np.ndarray) -> np.ndarray:
    """ggml's dequantize_row_<kind>: (blocks,) -> (blocks, elements per block), float64."""
    if kind in ("q4_0", "q4_1", "q5_0"):
        low, high = (blocks["qs"] & 0xF).astype(np.int64), (blocks["qs"] >> 4).astype(np.int64)
        if kind == "q5_0":
            qh = blocks["qh"].astype(np.uint32) @ (1 << np.arange(0, 32, 8, dtype=np.uint32))
            bits = (qh[:, None] >> np.arange(32, dtype=np.uint32)) & 1
            low, high = low | (bits[:, :16] << 4), high | (bits[:, 16:] << 4)
        q = np.concatenate([low, high], axis=1)
        d = blocks["d"].astype(np.float64)[:, None]
        if kind == "q4_1":
            return d * q + blocks["m"].astype(np.float64)[:, None]
        return d * (q - (16 if kind == "q5_0" else 8))
    if kind == "q8_0":
        return blocks["d"].astype(np.float64)[:, None] * blocks["qs"]
    if kind == "q4_K":
        return np.stack([_dequantize_q4_k(block) for block in blocks])
    return np.stack([_dequantize_q6_k(block) for block in blocks])


def _scale_min_k4(j: int, q: np.ndarray) -> tuple[int, int]:
    """ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j, packed in 12 bytes."""
    q = q.astype(np.int64)
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def _dequantize_q4_k(block) -> np.ndarray:
    d, dmin = float(block["d"]), float(block["dmin"])
    out = []
    for chunk in range(4):  # 64 elements each: the low nibbles of 32 bytes, then their high nibbles
        q = block["qs"][32 * chunk:32 * chunk + 32].astype(np.int64)
        for sub, nibbles in ((2 * chunk, q & 0xF), (2 * chunk + 1, q >> 4)):
            scale, minimum = _scale_min_k4(sub, block["scales"])
            out.append(d * scale * nibbles - dmin * minimum)
    return np.concatenate(out)


def _dequantize_q6_k(block) -> np.ndarray:
    d, out = float(block["d"]), np.zeros(QK_K)
    ql, qh, scales = (block[name].astype(np.int64) for name in ("ql", "qh", "scales"))
    for half in range(2):  # 128 elements each, from 64 bytes of ql, 32 of qh and 8 scales
        l_, h_, s_, y = ql[64 * half:], qh[32 * half:], scales[8 * half:], out[128 * half:]
        for lane in range(32):
            group = lane // 16
            y[lane] = d * s_[group] * (((l_[lane] & 0xF) | ((h_[lane] & 3) << 4)) - 32)
            y[lane + 32] = d * s_[group + 2] * (((l_[lane + 32] & 0xF) | (((h_[lane] >> 2) & 3) << 4)) - 32)
            y[lane + 64] = d * s_[group + 4] * (((l_[lane] >> 4) | (((h_[lane] >> 4) & 3) << 4)) - 32)
            y[lane + 96] = d * s_[group + 6] * (((l_[lane + 32] >> 4) | (((h_[lane] >> 6) & 3) << 4)) - 32)
    return out


@case("candle.quantized_mv")
def quantized_mv(gpu, kernel, kind: str, rows: int, cols: int, vectors: int = 2, batch: int = 1,
                 dtype: str = "float32") -> None:
    """dst[b, m, n] = sum_k W[b, n, k] x[b, m, k] for W (batch, rows, cols) in ``kind`` blocks along k."""
    rng = np.random.default_rng(RNG_SEED)
    per_block = QK_K if kind.endswith("_K") else QK
    blocks = _random_blocks(kind, batch * rows * cols // per_block, rng)
    weights = _dequantize(kind, blocks).reshape(batch, rows, cols)
    x = rng.uniform(-1, 1, size=(batch, vectors, cols)).astype(np.float32)
    weights_buffer = to_device(gpu, np.frombuffer(blocks.tobytes(), np.uint8), "uint8")
    out = to_device(gpu, np.zeros(batch * vectors * rows), "float32")
    nth0, nth1, rows_per_group = DISPATCH[kind]
    gpu.run_function((-(-rows // rows_per_group) * nth0, vectors * nth1, batch),
                     [weights_buffer, to_device(gpu, x, "float32"), out, cols, rows, batch, 0, 0, 0, cols, vectors,
                      batch, 0, 0, 0, rows, vectors, 1, 1], threads_per_threadgroup=(nth0, nth1, 1))
    expected = np.einsum("bnk,bmk->bmn", weights, x.astype(np.float64))
    check(from_device(out, "float32").reshape(expected.shape), expected, kernel.family, dtype, kernel.name)
