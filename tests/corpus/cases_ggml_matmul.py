"""Runtime cases of ggml's matrix kernels: mat-vec products (float and quantised weights, one kernel per row group
and the small-batch ``mul_mv_ext`` kernels), mat-mat products on SIMD-group matrices, and flash attention for a few
queries at a time (``flash_attn_ext_vec`` and its reduction over workgroups).

As ggml's ``mul_mat`` means it: src0 holds ne01 rows of ne00 weights (per matrix of a batch of ne02, broadcast
over src1's ne12 matrices when ne12 is a multiple), src1 holds ne11 vectors of ne10 = ne00 values, and
``dst[i12, i11, i01] = dot(src0[i12 / r2, i01], src1[i12, i11])``. Weights in a quantised format are random
blocks (ggml_support); the reference multiplies their exact values in float64. The kernels that stage operands
as half in threadgroup memory (``mul_mm``, attention) are compared with references over the half-rounded
operands, which is what they multiply.
"""
from __future__ import annotations

import math

import numpy as np

from .cases import case
from .ggml_support import (
    RNG_SEED,
    constant,
    dispatch,
    download,
    kargs,
    output,
    quantize_random,
    softmax_rows,
    upload,
    upload_quantized,
    values,
)
from .harness import check, round_to

FLOAT_TYPES = {"f32": "float32", "f16": "float16"}


def _weights(gpu, src0_type: str, shape, rng, slack_rows: int):
    """src0 as a tensor and its exact values: float types rounded to the type, quantised ones as random blocks."""
    if src0_type in FLOAT_TYPES:
        exact = values(shape, FLOAT_TYPES[src0_type], rng, -1.0, 1.0)
        return upload(gpu, exact, FLOAT_TYPES[src0_type], slack=slack_rows), exact
    blocks = quantize_random(gpu, src0_type, shape, rng)
    return upload_quantized(gpu, blocks, slack_rows=slack_rows), blocks.values


def _product(weights: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """mul_mat's result: weights (ne02, ne01, ne00) broadcast over vectors (ne12, ne11, ne00) -> (ne12, ne11, ne01)."""
    r2 = vectors.shape[0] // weights.shape[0]
    return np.einsum("bmk,bnk->bnm", np.repeat(weights, r2, axis=0), vectors)


def _mul_mv_params(src0_type: str, ne00: int) -> tuple[str, int, int, int]:
    """ggml_metal_library_get_pipeline_mul_mv: (name suffix, SIMD-groups, src0 rows per SIMD-group,
    threadgroup memory)."""
    if src0_type in FLOAT_TYPES:
        if ne00 < 32:
            return "_short", 1, 32, 0
        return ("_4" if ne00 % 4 == 0 else ""), min(4, (ne00 + 127) // 128), 2, 32 * 4 * 2
    upper = src0_type.upper()
    nsg, nr0 = constant(f"N_SG_{upper}"), constant(f"N_R0_{upper}")
    return "", nsg, nr0, (32 * 4 * nr0 if src0_type == "q8_0" else 0)


@case("ggml.mul_mv", selects_function=True)
def mul_mv(gpu, kernel, src0_type: str, ne00: int, ne01: int, ne02: int = 1, ne11: int = 1, ne12: int = 1,
           src1_type: str = "f32") -> None:
    """kernel_mul_mv_<src0>_<src1>[_4|_short]: each SIMD-group sums nr0 rows against one src1 vector."""
    rng = np.random.default_rng(RNG_SEED)
    suffix, nsg, nr0, smem = _mul_mv_params(src0_type, ne00)
    assert kernel.name == f"kernel_mul_mv_{src0_type}_{src1_type}{suffix}", f"ggml picks another kernel for {ne00}"
    src0, weights = _weights(gpu, src0_type, (ne02, ne01, ne00), rng, slack_rows=nr0 * nsg)
    vectors = values((ne12, ne11, ne00), FLOAT_TYPES[src1_type], rng, -1.0, 1.0)
    src1 = upload(gpu, vectors, FLOAT_TYPES[src1_type])
    dst = output(gpu, (ne12, ne11, ne01), "float32")
    r2 = ne12 // ne02
    gpu.set_function(kernel.name, constants={constant("FC_MUL_MV"): nsg, constant("FC_MUL_MV") + 2: ne12,
                                             constant("FC_MUL_MV") + 3: r2, constant("FC_MUL_MV") + 4: 1})
    args = kargs(gpu, "ggml_metal_kargs_mul_mv", **src0.fields("0", "012"), nb03=src0.nb[3],
                 **src1.fields("1", "012"), nb13=src1.nb[3], ne0=dst.ne[0], ne1=dst.ne[1], nr0=nr0, r2=r2, r3=1)
    rows_per_group = nr0 if src0_type in ("f32", "f16", "q8_0") else nr0 * nsg
    dispatch(gpu, (-(-ne01 // rows_per_group), ne11, ne12), (32, nsg, 1), [args, src0.buffer, src1.buffer, dst.buffer],
             threadgroup_memory=smem)
    check(download(dst), _product(weights, vectors), kernel.family, "float32", kernel.name)


@case("ggml.mul_mv_ext", selects_function=True)
def mul_mv_ext(gpu, kernel, src0_type: str, ne00: int, ne01: int, ne11: int, ne02: int = 1, ne12: int = 1) -> None:
    """kernel_mul_mv_ext_<src0>_f32_r1_<r1ptg>, for 2 to 8 src1 vectors: each SIMD-group takes 32/nxpsg rows,
    nxpsg threads along a row, r1ptg vectors per threadgroup."""
    rng = np.random.default_rng(RNG_SEED)
    nsg = 2
    nxpsg = 16 if ne00 % 256 == 0 and ne11 < 3 else 8 if ne00 % 128 == 0 else 4
    r1ptg = {2: 2, 3: 3, 6: 3, 4: 4, 7: 4, 8: 4, 5: 5}[ne11]
    assert kernel.name == f"kernel_mul_mv_ext_{src0_type}_f32_r1_{r1ptg}", f"ggml picks r1_{r1ptg} for {ne11} vectors"
    r0ptg = 32 // nxpsg * nsg
    src0, weights = _weights(gpu, src0_type, (ne02, ne01, ne00), rng, slack_rows=r0ptg)
    vectors = values((ne12, ne11, ne00), "float32", rng, -1.0, 1.0)
    src1, dst = upload(gpu, vectors, "float32"), output(gpu, (ne12, ne11, ne01), "float32")
    r2 = ne12 // ne02
    fc = constant("FC_MUL_MV")
    gpu.set_function(kernel.name, constants={fc: nsg, fc + 1: nxpsg, fc + 2: ne12, fc + 3: r2, fc + 4: 1})
    args = kargs(gpu, "ggml_metal_kargs_mul_mv_ext", **src0.fields("0", "012"), nb03=src0.nb[3],
                 **src1.fields("1", "012"), nb13=src1.nb[3], ne0=dst.ne[0], ne1=dst.ne[1], r2=r2, r3=1)
    dispatch(gpu, (-(-ne01 // r0ptg), -(-ne11 // r1ptg), ne12), (32, nsg, 1),
             [args, src0.buffer, src1.buffer, dst.buffer])
    check(download(dst), _product(weights, vectors), kernel.family, "float32", kernel.name)


@case("ggml.mul_mm", selects_function=True)
def mul_mm(gpu, kernel, src0_type: str, ne00: int, ne01: int, ne11: int, ne02: int = 1, ne12: int = 1) -> None:
    """kernel_mul_mm_<src0>_f32: 64x32 tiles of dst per threadgroup of four SIMD-groups, both operands staged as
    half in threadgroup memory and multiplied as 8x8 SIMD-group matrices into float accumulators; ``bc_inp``
    zero-fills a last partial K step, ``bc_out`` writes partial tiles through threadgroup memory."""
    rng = np.random.default_rng(RNG_SEED)
    src0, weights = _weights(gpu, src0_type, (ne02, ne01, ne00), rng, slack_rows=0)
    vectors = values((ne12, ne11, ne00), "float32", rng, -1.0, 1.0)
    src1, dst = upload(gpu, vectors, "float32"), output(gpu, (ne12, ne11, ne01), "float32")
    bc_inp, bc_out = ne00 % 32 != 0, ne01 % 64 != 0 or ne11 % 32 != 0
    r2 = ne12 // ne02
    fc = constant("FC_MUL_MM")
    gpu.set_function(kernel.name, constants={fc: bc_inp, fc + 1: bc_out, fc + 2: ne12, fc + 3: 1, fc + 4: r2,
                                             fc + 5: 1})
    args = kargs(gpu, "ggml_metal_kargs_mul_mm", ne00=ne00, ne02=ne02, nb01=src0.nb[1], nb02=src0.nb[2],
                 nb03=src0.nb[3], ne12=ne12, nb10=src1.nb[0], nb11=src1.nb[1], nb12=src1.nb[2], nb13=src1.nb[3],
                 ne0=dst.ne[0], ne1=dst.ne[1], r2=r2, r3=1)
    dispatch(gpu, (-(-ne11 // 32), -(-ne01 // 64), ne12), (32, 4, 1), [args, src0.buffer, src1.buffer, dst.buffer],
             threadgroup_memory=8192 if bc_out else 4096 + 2048)
    expected = _product(round_to(weights, "float16"), round_to(vectors, "float16"))
    check(download(dst), expected, kernel.family, "float32", kernel.name)


# --- flash attention, few queries (kernel_flash_attn_ext_vec_*, then kernel_flash_attn_ext_vec_reduce) ----------

@case("ggml.flash_attn_ext_vec", selects_function=True)
def flash_attn_ext_vec(gpu, kernel, head_dim: int, queries: int = 2, heads: int = 4, kv_heads: int = 2,
                       kv_len: int = 128, mask: bool = True, sinks: bool = False, kv_type: str = "f16") -> None:
    """softmax(scale * q k^T + mask) v per head, kv heads shared by heads/kv_heads query heads; ``sinks`` adds one
    logit per head to the softmax's denominator. 32 workgroups each take every 32nd block of 32 keys and leave
    their partial sums and maxima; the reduce kernel combines them. A quantised K/V cache (``kv_type``) is
    dequantised to half by the kernel as it reads it."""
    rng = np.random.default_rng(RNG_SEED)
    nwg, ncpsg = 32, constant("OP_FLASH_ATTN_EXT_VEC_NCPSG")
    assert kv_len % ncpsg == 0, "a partial block of keys needs ggml's pad kernel first"
    q = values((1, heads, queries, head_dim), "float32", rng, -1.0, 1.0)
    src_k, k = _weights(gpu, kv_type, (1, kv_heads, kv_len, head_dim), rng, slack_rows=0)
    src_v, v = _weights(gpu, kv_type, (1, kv_heads, kv_len, head_dim), rng, slack_rows=0)
    k, v = round_to(k, "float16"), round_to(v, "float16")  # what the kernel holds: half, dequantised or not
    m = values((1, 1, queries + 3, kv_len), "float16", rng, -1.0, 1.0)
    m[..., 0, ncpsg:2 * ncpsg] = -np.inf                  # a whole block of keys masked: skipped
    m[..., 1 % queries, ::7] = -np.inf
    sink = values(heads, "float32", rng)
    src_q = upload(gpu, q, "float32")
    src_m = upload(gpu, m, "float16") if mask else src_q
    src_s = upload(gpu, sink, "float32") if sinks else src_q
    dst = output(gpu, (1, queries, heads, head_dim), "float32")
    nrows = queries * heads
    partial = output(gpu, (nrows * head_dim * nwg + nrows * 2 * nwg,), "float32")
    nsg = 1
    while 2 * nwg * nsg * ncpsg < kv_len and nsg < 4:
        nsg *= 2
    scale = 1.0 / math.sqrt(head_dim)
    fc = constant("FC_FLASH_ATTN_EXT_VEC")
    gpu.set_function(kernel.name, constants={fc: mask, fc + 1: sinks, fc + 2: False, fc + 3: False, fc + 4: False,
                                             fc + 20: head_dim, fc + 21: head_dim, fc + 22: nsg, fc + 23: nwg})
    args = kargs(gpu, "ggml_metal_kargs_flash_attn_ext_vec", ne01=queries, ne02=heads, ne03=1, nb01=src_q.nb[1],
                 nb02=src_q.nb[2], nb03=src_q.nb[3], ne11=kv_len, ne_12_2=kv_heads, ne_12_3=1,
                 ns10=src_k.nb[1] // src_k.nb[0], nb11=src_k.nb[1], nb12=src_k.nb[2], nb13=src_k.nb[3],
                 ns20=src_v.nb[1] // src_v.nb[0], nb21=src_v.nb[1], nb22=src_v.nb[2], nb23=src_v.nb[3],
                 ne31=src_m.ne[1], ne32=src_m.ne[2], ne33=src_m.ne[3], nb31=src_m.nb[1], nb32=src_m.nb[2],
                 nb33=src_m.nb[3], ne1=heads, ne2=queries, ne3=1, scale=scale, max_bias=0.0, m0=0.0, m1=0.0,
                 n_head_log2=1 << math.floor(math.log2(heads)), logit_softcap=0.0)
    pad128 = -(-head_dim // 128) * 128
    smem = -(-((pad128 + 4 * ncpsg + 2 * pad128) * nsg * 2) // 16) * 16
    dispatch(gpu, (queries, heads, nwg), (32, nsg, 1),
             [args, src_q.buffer, src_k.buffer, src_v.buffer, src_m.buffer, src_s.buffer, partial.buffer,
              partial.buffer], threadgroup_memory=smem)
    gpu.set_function("kernel_flash_attn_ext_vec_reduce",
                     constants={constant("FC_FLASH_ATTN_EXT_VEC_REDUCE"): head_dim,
                                constant("FC_FLASH_ATTN_EXT_VEC_REDUCE") + 1: nwg})
    reduce_args = kargs(gpu, "ggml_metal_kargs_flash_attn_ext_vec_reduce", nrows=nrows)
    dispatch(gpu, (nrows, 1, 1), (32 * nwg, 1, 1), [reduce_args, partial.buffer, dst.buffer])

    group = heads // kv_heads
    qh = round_to(q[0], "float16")                       # the kernel holds q as half in threadgroup memory
    kh, vh = np.repeat(k[0], group, axis=0), np.repeat(v[0], group, axis=0)
    logits = scale * np.einsum("hqd,hkd->hqk", qh, kh)
    if mask:
        logits = logits + m[0, 0, :queries][None]
    expected = np.einsum("hqk,hkd->qhd", softmax_rows(logits, sink if sinks else None), vh)[None]
    check(download(dst), expected, kernel.family, "float32", kernel.name)
