"""Runtime cases of candle's matrix kernels: the steel GEMM of mlx_gemm.metal, the GEMV of gemv.metal,
attention (scaled_dot_product_attention.metal: sdpa_vector and the tiled steel attention), and ggml's quantised
matrix-vector products (quantized.metal), with argument structs from the files' own declarations
(``Interface.struct_dtype``) and the tile choices, grids and function constants of candle's host code
(kernels/mlx_gemm.rs, sdpa.rs, quantized.rs)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import metalgpu

from .candle_support import RNG_SEED, values
from .cases import case
from .harness import check, from_device, round_to, to_device

_MLX_TYPE = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}
_SDPA_TYPE = {"float32": "float", "float16": "float16_t", "bfloat16": "bfloat16_t"}


def _struct(gpu, name: str, **fields) -> np.ndarray:
    """A struct declared in the loaded file, as one numpy record with Metal's layout."""
    record = np.zeros((), gpu.struct_dtype(name))
    for key, value in fields.items():
        record[key] = value
    return record


# --- mlx_gemm.metal -----------------------------------------------------------------------------------------------

@case("candle.gemm")
def gemm(gpu, kernel, dtype: str, batch: int, m: int, n: int, k: int) -> None:
    """gemm_<trans>_<t>_<t>_<bm>_<bn>_<bk>_<wm>_<wn>: D[b] = A[b] @ B[b], A stored (k, m) when transposed ('t'
    first), B stored (n, k) when transposed ('t' second); batch strides m*k and n*k."""
    _, trans, _, _, *tile = kernel.name.split("_")
    bm, bn, bk, wm, wn = map(int, tile)
    a_trans, b_trans = trans[0] == "t", trans[1] == "t"
    rng = np.random.default_rng(RNG_SEED)
    a, b = values((batch, m, k), dtype, rng, -1, 1), values((batch, k, n), dtype, rng, -1, 1)
    a_stored = np.swapaxes(a, 1, 2) if a_trans else a
    b_stored = np.swapaxes(b, 1, 2) if b_trans else b
    gpu.set_function(kernel.name, constants={10: batch > 1, 100: False, 110: False, 200: m % bm == 0,
                                             201: n % bn == 0, 202: k % bk == 0, 300: False})
    tiles_n, tiles_m = -(-n // bn), -(-m // bm)
    params = _struct(gpu, "GEMMParams", M=m, N=n, K=k, lda=m if a_trans else k, ldb=k if b_trans else n, ldd=n,
                     tiles_n=tiles_n, tiles_m=tiles_m, batch_stride_a=m * k, batch_stride_b=n * k,
                     batch_stride_d=m * n, swizzle_log=0, gemm_k_iterations_aligned=k // bk, batch_ndim=1)
    out = to_device(gpu, np.zeros(batch * m * n), dtype)
    gpu.run_function((tiles_n * 32, tiles_m * wn, batch * wm),
                     [to_device(gpu, a_stored, dtype), to_device(gpu, b_stored, dtype), None, out, params, None,
                      np.array([batch], np.int32), np.array([m * k, n * k], np.uint64)],
                     threads_per_threadgroup=(32, wn, wm))
    check(from_device(out, dtype).reshape(batch, m, n), round_to(a @ b, dtype), kernel.family, dtype, kernel.name)


# --- gemv.metal ---------------------------------------------------------------------------------------------------

def _gemv_tiles(transposed: bool, in_size: int, out_size: int) -> tuple[int, ...]:
    """candle's call_mlx_gemv tile choice: (bm, bn, sm, sn, tm, tn)."""
    if transposed:
        sm, sn = (4, 8) if in_size >= 8192 and out_size >= 2048 else (8, 4)
        bn = 16 if out_size >= 2048 else 4 if out_size >= 512 else 2
        return 1, bn, sm, sn, 4, 1 if out_size < 4 else 4
    if in_size <= 64:
        bm, bn, sm, sn = 1, 1, 8, 4
    elif in_size >= 16 * out_size:
        bm, bn, sm, sn = 1, 8, 1, 32
    elif out_size >= 4096:
        bm, bn, sm, sn = 8, 1, 1, 32
    else:
        bm, bn, sm, sn = 4, 1, 1, 32
    return bm, bn, sm, sn, 1 if out_size < 4 else 4, 4


@case("candle.gemv")
def gemv(gpu, kernel, dtype: str, batch: int, in_size: int, out_size: int) -> None:
    """gemv: out[b] = mat[b] (out, in) @ vec[b] (in); gemv_t: out[b] = vec[b] (in) @ mat (in, out), the matrix
    shared by the batch (batch stride 0), as candle multiplies a batch of rows by one weight matrix."""
    transposed = kernel.name.startswith("gemv_t")
    bm, bn, sm, sn, tm, tn = _gemv_tiles(transposed, in_size, out_size)
    prefix = "gemv_t" if transposed else "gemv"
    name = f"{prefix}_{_MLX_TYPE[dtype]}_bm{bm}_bn{bn}_sm{sm}_sn{sn}_tm{tm}_tn{tn}_nc0_axpby0"
    assert name == kernel.name, f"candle picks {name} for these sizes, not {kernel.name}"
    rng = np.random.default_rng(RNG_SEED)
    vec = values((batch, in_size), dtype, rng, -1, 1)
    if transposed:
        mat, mat_stride = values((in_size, out_size), dtype, rng, -1, 1), 0
        expected = vec @ mat
    else:
        mat, mat_stride = values((batch, out_size, in_size), dtype, rng, -1, 1), out_size * in_size
        expected = np.einsum("boi,bi->bo", mat, vec)
    out = to_device(gpu, np.zeros(batch * out_size), dtype)
    # candle leaves the bias unbound (nothing reads it without axpby); metalgpu binds every pointer parameter
    unused_bias = to_device(gpu, np.zeros(1), dtype)
    per_group = bn * sn * tn if transposed else bm * sm * tm
    groups = -(-out_size // per_group)
    gpu.run_function((groups * 32, bn, batch * bm),
                     [to_device(gpu, mat, dtype), to_device(gpu, vec, dtype), unused_bias, out, in_size, out_size,
                      out_size if transposed else in_size, 1.0, 0.0, 1, np.array([batch], np.int32),
                      np.array([in_size], np.int64), np.array([mat_stride], np.int64), np.array([0], np.int64), 1],
                     threads_per_threadgroup=(32, bn, bm))
    check(from_device(out, dtype).reshape(batch, out_size), round_to(expected, dtype), kernel.family, dtype,
          kernel.name)


# --- scaled_dot_product_attention.metal ---------------------------------------------------------------------------

def _attention(q, k, v, scale: float, softcapping: float = 1.0, keep=None):
    """softmax(q k^T * scale) v per (batch, head), k/v heads shared by groups of q heads; softcapping s replaces
    each score x by s * tanh(x / s); ``keep`` (bool, broadcast to the scores) removes keys."""
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    scores = np.einsum("bhqd,bhkd->bhqk", q, k) * scale
    if softcapping != 1.0:
        scores = softcapping * np.tanh(scores / softcapping)
    if keep is not None:
        scores = np.where(keep, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return np.einsum("bhqk,bhkd->bhqd", weights / weights.sum(axis=-1, keepdims=True), v)


@case("candle.sdpa_vector")
def sdpa_vector(gpu, kernel, dtype: str, head_dim: int, kv_len: int, heads: int = 4, kv_heads: int = 2,
                batch: int = 2, softcapping: float = 1.0) -> None:
    """One query per (batch, head) against kv_len keys: one threadgroup of 1024 threads per query head."""
    assert kernel.name == f"sdpa_vector_{_SDPA_TYPE[dtype]}_{head_dim}"
    gpu.set_function(kernel.name, constants={20: False})
    rng = np.random.default_rng(RNG_SEED)
    q = values((batch, heads, 1, head_dim), dtype, rng, -1, 1)
    k = values((batch, kv_heads, kv_len, head_dim), dtype, rng, -1, 1)
    v = values((batch, kv_heads, kv_len, head_dim), dtype, rng, -1, 1)
    scale = 1 / np.sqrt(head_dim)
    alpha = scale / softcapping if softcapping != 1.0 else scale
    out = to_device(gpu, np.zeros(q.size), dtype)
    gpu.run_function((1024, batch * heads, 1),
                     [to_device(gpu, q, dtype), to_device(gpu, k, dtype), to_device(gpu, v, dtype), out,
                      heads // kv_heads, kv_len, kv_len * head_dim, kv_len * head_dim, alpha, softcapping],
                     threads_per_threadgroup=(1024, 1, 1))
    expected = _attention(q, k, v, np.float32(alpha) * softcapping, softcapping)
    check(from_device(out, dtype).reshape(q.shape), round_to(expected, dtype), kernel.family, dtype, kernel.name)


@case("candle.steel_attention")
def steel_attention(gpu, kernel, dtype: str, q_len: int, kv_len: int, heads: int = 2, kv_heads: int = 2,
                    batch: int = 1, causal: bool = False, mask: str = "none", over_limit: str = "") -> None:
    """steel_attention_<t>_bq<BQ>_bk<BK>_bd<D>_wm<WM>_wn<WN>_mask<M>: (batch, heads, q_len, D) queries against
    kv_len keys, one threadgroup of (32, WM, WN) threads per BQ queries. causal: query i sees keys up to
    i + kv_len - q_len. mask "bool": a boolean mask of the keys each query keeps. ``over_limit`` names a kernel
    of the same file whose threadgroup memory passes Metal's 32 KiB: making its pipeline must fail, alone."""
    if over_limit:
        with pytest.raises(metalgpu.MetalError, match="32 KiB"):
            gpu.set_function(over_limit)
    block_q, block_k, head_dim, wm, wn = map(int, re.search(r"_bq(\d+)_bk(\d+)_bd(\d+)_wm(\d+)_wn(\d+)_",
                                                            kernel.name).groups())
    has_mask = mask != "none"
    gpu.set_function(kernel.name, constants={200: q_len % block_q == 0, 201: kv_len % block_k == 0,
                                             300: has_mask, 301: causal})
    rng = np.random.default_rng(RNG_SEED)
    q = values((batch, heads, q_len, head_dim), dtype, rng, -1, 1)
    k = values((batch, kv_heads, kv_len, head_dim), dtype, rng, -1, 1)
    v = values((batch, kv_heads, kv_len, head_dim), dtype, rng, -1, 1)
    scale = 1 / np.sqrt(head_dim)
    nq, nk = -(-q_len // block_q), -(-kv_len // block_k)
    q_strides, kv_strides = [heads * q_len * head_dim, q_len * head_dim, head_dim], \
        [kv_heads * kv_len * head_dim, kv_len * head_dim, head_dim]
    params = _struct(gpu, "AttnParams", B=batch, H=heads, D=head_dim, qL=q_len, kL=kv_len,
                     gqa_factor=heads // kv_heads, scale=scale, softcapping=1.0, NQ=nq, NK=nk,
                     NQ_aligned=q_len // block_q, NK_aligned=kv_len // block_k,
                     qL_rem=q_len - (q_len // block_q) * block_q, kL_rem=kv_len - (kv_len // block_k) * block_k,
                     qL_off=kv_len - q_len, Q_strides=q_strides, K_strides=kv_strides, V_strides=kv_strides,
                     O_strides=q_strides)
    keep = None
    out = to_device(gpu, np.zeros(q.size), dtype)
    arguments = [to_device(gpu, q, dtype), to_device(gpu, k, dtype), to_device(gpu, v, dtype), out, params]
    if causal:
        keep = np.arange(kv_len)[None, :] <= np.arange(q_len)[:, None] + (kv_len - q_len)
    if has_mask:
        keep = rng.random((batch, heads, q_len, kv_len)) < 0.7
        keep[..., 0] = True  # every query keeps a key
        m_strides = [heads * q_len * kv_len, q_len * kv_len, kv_len]
        arguments += [_struct(gpu, "AttnMaskParams", M_strides=m_strides), to_device(gpu, keep, "uint8")]
    gpu.run_function((nq * 32, heads * wm, batch * wn), arguments, threads_per_threadgroup=(32, wm, wn))
    expected = _attention(q, k, v, scale, keep=keep)
    check(from_device(out, dtype).reshape(q.shape), round_to(expected, dtype), kernel.family, dtype, kernel.name)
