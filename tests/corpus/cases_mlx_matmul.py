"""Runtime cases of MLX's matrix kernels: steel GEMM (steel_gemm_fused), GEMV (gemv), attention (sdpa_vector,
steel_attention) and affine-quantised products (quantized), arguments and grids as MLX's host code (matmul.cpp,
scaled_dot_product_attention.cpp, quantized.cpp) passes them; argument structs are built from MLX's own headers
through Interface.struct_dtype. References are float64 numpy products of the same rounded inputs."""
from __future__ import annotations

import re

import numpy as np

from .cases import case
from .cases_mlx import SHAPES, STRIDES, bool_buffer, ceildiv, values
from .harness import check, from_device, to_device

RNG_SEED = 37


def unused(gpu, dtype: str = "int32"):
    """A zero for a parameter MLX's host code leaves unbound where the kernel does not read it (metalgpu binds
    every parameter)."""
    return to_device(gpu, np.zeros(1), dtype)


def _tile(name: str, *keys: str) -> list[int]:
    """The integers that follow each of ``keys`` in a kernel name (``bm64`` or ``bm_64``)."""
    return [int(re.search(rf"_{key}_?(\d+)", name).group(1)) for key in keys]


# --- steel/gemm/kernels/steel_gemm_fused.metal --------------------------------------------------------------------

@case("mlx.gemm")
def gemm(gpu, kernel, dtype: str, M: int, N: int, K: int, batch: int = 1, alpha: float | None = None,
         beta: float | None = None, broadcast_b: bool = False) -> None:
    """D = A @ B (A is M x K, B is K x N, either stored transposed as the name's nn/nt/tn/tt says), per batch
    entry; with alpha and beta D = alpha A @ B + beta C (use_out_source, do_axpby); ``broadcast_b``: a batch of
    shape (2, batch / 2) where B is the same for the first axis (has_batch, batch_shape and batch_strides)."""
    rng = np.random.default_rng(RNG_SEED)
    transposes = re.search(r"steel_gemm_fused_([nt])([nt])_", kernel.name).groups()
    transpose_a, transpose_b = (t == "t" for t in transposes)
    bm, bn, bk, wm, wn = _tile(kernel.name, "bm", "bn", "bk", "wm", "wn")
    a = values((batch, M, K), dtype, rng, -1.0, 1.0)
    b_batches = batch // 2 if broadcast_b else batch
    b = values((b_batches, K, N), dtype, rng, -1.0, 1.0)
    stored_a = a.transpose(0, 2, 1) if transpose_a else a
    stored_b = b.transpose(0, 2, 1) if transpose_b else b
    use_out_source = alpha is not None
    tiles_m, tiles_n = ceildiv(M, bm), ceildiv(N, bn)
    params = {"M": M, "N": N, "K": K, "lda": M if transpose_a else K, "ldb": K if transpose_b else N, "ldd": N,
              "tiles_n": tiles_n, "tiles_m": tiles_m, "batch_stride_a": M * K, "batch_stride_b": K * N,
              "batch_stride_d": M * N, "swizzle_log": 0, "gemm_k_iterations_aligned": K // bk,
              "batch_ndim": 2 if broadcast_b else 1}
    out = to_device(gpu, np.zeros(batch * M * N), dtype)
    packed_params = np.zeros(1, gpu.struct_dtype("GEMMParams"))  # the layout of MLX's steel/gemm/params.h
    for name, value in params.items():
        packed_params[name] = value
    buffers = [to_device(gpu, stored_a, dtype), to_device(gpu, stored_b, dtype), None, out, packed_params]
    expected = a @ (np.repeat(b, 2, axis=0).reshape(2, b_batches, K, N).transpose(1, 0, 2, 3).reshape(batch, K, N)
                    if broadcast_b else b)
    buffers += [None, None, None]
    if use_out_source:
        c = values((batch, M, N), dtype, rng, -1.0, 1.0)
        buffers[2] = to_device(gpu, c, dtype)
        buffers[5] = {"ldc": N, "fdc": 1, "batch_stride_c": M * N, "alpha": alpha, "beta": beta}
        expected = alpha * expected + beta * c
    if broadcast_b:  # batch index z = (i, j) over shape (2, batch / 2); B repeats along i
        shape = [2, batch // 2]
        strides_a, strides_b = [batch // 2 * M * K, M * K], [0, K * N]
        strides_c = [batch // 2 * M * N, M * N]
        buffers[6] = np.array(shape, SHAPES)
        buffers[7] = np.array(strides_a + strides_b + (strides_c if use_out_source else []), STRIDES)
    gpu.set_function(kernel.name, constants={10: broadcast_b, 100: use_out_source,
                                             110: use_out_source and (alpha != 1 or beta != 1),
                                             200: M % bm == 0, 201: N % bn == 0, 202: K % bk == 0})
    gpu.run_function((32 * tiles_n, wn * tiles_m, wm * batch), buffers, threads_per_threadgroup=(32, wn, wm))
    check(from_device(out, dtype).reshape(batch, M, N), expected, kernel.family, dtype, kernel.name)


# --- gemv.metal ---------------------------------------------------------------------------------------------------

@case("mlx.gemv")
def gemv(gpu, kernel, dtype: str, out_size: int, in_size: int, batch: int = 1, alpha: float = 1.0,
         beta: float = 0.0) -> None:
    """``gemv_*``: out = mat @ vec with mat out_size x in_size; ``gemv_t_*``: out = vec @ mat with mat
    in_size x out_size; ``axpby1``: alpha * that + beta * bias. One batch entry a threadgroup row in z."""
    rng = np.random.default_rng(RNG_SEED)
    transposed = kernel.name.startswith("gemv_t_")
    bm, bn, sm, sn, tm, tn = _tile(kernel.name, "bm", "bn", "sm", "sn", "tm", "tn")
    axpby = kernel.name.endswith("axpby1")
    mat = values((batch, in_size, out_size) if transposed else (batch, out_size, in_size), dtype, rng, -1.0, 1.0)
    vec = values((batch, in_size), dtype, rng, -1.0, 1.0)
    bias = values((batch, out_size), dtype, rng, -1.0, 1.0)
    out = to_device(gpu, np.zeros(batch * out_size), dtype)
    per_group = bn * sn * tn if transposed else bm * sm * tm
    buffers = [to_device(gpu, mat, dtype), to_device(gpu, vec, dtype),
               to_device(gpu, bias, dtype) if axpby else unused(gpu, dtype), out, np.int32(in_size),
               np.int32(out_size), np.int32(out_size if transposed else in_size), np.float32(alpha if axpby else 0),
               np.float32(beta if axpby else 0), np.int32(1), np.array([batch], SHAPES), np.array([in_size], STRIDES),
               np.array([mat[0].size], STRIDES), np.array([out_size if axpby else 0], STRIDES), np.int32(axpby)]
    gpu.run_function((32 * ceildiv(out_size, per_group), bn, bm * batch), buffers, threads_per_threadgroup=(32, bn, bm))
    product = np.einsum("bk,bko->bo", vec, mat) if transposed else np.einsum("bok,bk->bo", mat, vec)
    expected = alpha * product + beta * bias if axpby else product
    check(from_device(out, dtype).reshape(batch, out_size), expected, kernel.family, dtype, kernel.name)


# --- scaled_dot_product_attention.metal (sdpa_vector: one threadgroup of 32 SIMD-groups a query row) ----------------

def _attention(q, k, v, scale, allowed=None, additive=None):
    """softmax(scale q k^T + additive, over the allowed keys) v, per (batch * head, query) row; q, k, v as
    (rows, L, D) with k and v already expanded to the query heads."""
    scores = scale * np.einsum("hqd,hkd->hqk", q, k)
    if additive is not None:
        scores = scores + additive
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    return np.einsum("hqk,hkv->hqv", weights / weights.sum(axis=-1, keepdims=True), v)


@case("mlx.sdpa_vector")
def sdpa_vector(gpu, kernel, dtype: str, batch: int, q_heads: int, kv_heads: int, queries: int, keys: int,
                mask: str = "none", causal: bool = False, scale: float = 0.125) -> None:
    """``mask``: none, bool (keys masked out) or float (added to the scores, -inf masks out); ``causal``: query i
    of L sees keys up to N - L + i."""
    rng = np.random.default_rng(RNG_SEED)
    qk_dim, v_dim = (int(d) for d in kernel.name.rsplit("_", 2)[1:])
    q = values((batch, q_heads, queries, qk_dim), dtype, rng, -1.0, 1.0)
    k = values((batch, kv_heads, keys, qk_dim), dtype, rng, -1.0, 1.0)
    v = values((batch, kv_heads, keys, v_dim), dtype, rng, -1.0, 1.0)
    out = to_device(gpu, np.zeros(batch * q_heads * queries * v_dim), dtype)
    buffers = [to_device(gpu, q, dtype), to_device(gpu, k, dtype), to_device(gpu, v, dtype), out,
               np.int32(q_heads // kv_heads), np.int32(keys), np.uint64(keys * qk_dim), np.uint64(qk_dim),
               np.uint64(keys * v_dim), np.uint64(v_dim), np.float32(scale)] + [None] * 7
    rows = batch * q_heads
    allowed = additive = None
    if mask == "bool":
        allowed = rng.random((rows, queries, keys)) < 0.7
        allowed[..., 0] = True  # every row keeps a key
        buffers[11] = bool_buffer(gpu, allowed)
    elif mask == "float":
        additive = values((rows, queries, keys), dtype, rng, -2.0, 2.0)
        additive[rng.random(additive.shape) < 0.2] = -np.inf
        additive[..., 0] = 0.0
        buffers[12] = to_device(gpu, additive, dtype)
    if mask != "none":
        buffers[13:16] = [np.int32(1), np.int32(keys), np.int32(queries * keys)]
    if causal:
        allowed = np.arange(keys)[None, :] <= keys - queries + np.arange(queries)[:, None]
        allowed = np.broadcast_to(allowed, (rows, queries, keys))
    gpu.set_function(kernel.name, constants={20: mask != "none", 21: False, 22: causal, 23: mask == "bool",
                                             24: mask == "float", 25: False})
    gpu.run_function((1024 * rows, queries), buffers, threads_per_threadgroup=(1024, 1))
    expand = q_heads // kv_heads
    k_rows = np.repeat(k, expand, axis=1).reshape(rows, keys, qk_dim)
    v_rows = np.repeat(v, expand, axis=1).reshape(rows, keys, v_dim)
    expected = _attention(q.reshape(rows, queries, qk_dim), k_rows, v_rows, np.float32(scale), allowed, additive)
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


# --- steel/attn/kernels/steel_attention.metal (one threadgroup of 4 SIMD-groups a block of 32 queries) ----------

@case("mlx.steel_attention")
def steel_attention(gpu, kernel, dtype: str, batch: int, heads: int, kv_heads: int, queries: int, keys: int,
                    masked: bool = False, causal: bool = False, scale: float = 0.125) -> None:
    """softmax(scale q k^T + mask) v over (batch, heads) with grouped-query heads; the mask is boolean (keys masked
    out) or additive in T, as the kernel name's mask type says; ``causal``: query i sees keys up to
    i + keys - queries. AttnParams and AttnMaskParams come from MLX's steel/attn/params.h."""
    rng = np.random.default_rng(RNG_SEED)
    bq, bk, bd, wm, wn = _tile(kernel.name, "bq", "bk", "bd", "wm", "wn")
    q = values((batch, heads, queries, bd), dtype, rng, -1.0, 1.0)
    k = values((batch, kv_heads, keys, bd), dtype, rng, -1.0, 1.0)
    v = values((batch, kv_heads, keys, bd), dtype, rng, -1.0, 1.0)
    out = to_device(gpu, np.zeros(q.size), dtype)

    def strides(shape):
        return [int(np.prod(shape[i + 1:])) for i in range(3)]

    params = np.zeros(1, gpu.struct_dtype("AttnParams"))
    fields = {"B": batch, "H": heads, "D": bd, "qL": queries, "kL": keys, "gqa_factor": heads // kv_heads,
              "scale": scale, "NQ": ceildiv(queries, bq), "NK": ceildiv(keys, bk), "NQ_aligned": queries // bq,
              "NK_aligned": keys // bk, "qL_rem": queries % bq, "kL_rem": keys % bk, "qL_off": keys - queries,
              "Q_strides": strides(q.shape), "K_strides": strides(k.shape), "V_strides": strides(v.shape),
              "O_strides": strides(q.shape)}
    for name, value in fields.items():
        params[name] = value
    buffers = [to_device(gpu, q, dtype), to_device(gpu, k, dtype), to_device(gpu, v, dtype), out, params,
               None, None, None]
    rows = batch * heads
    allowed = additive = None
    if masked:
        mask_shape = (batch, heads, queries, keys)
        mask_params = np.zeros(1, gpu.struct_dtype("AttnMaskParams"))
        mask_params["M_strides"] = strides(mask_shape)
        buffers[5] = mask_params
        if kernel.name.endswith("maskbool_"):
            allowed = rng.random(mask_shape) < 0.7
            allowed[..., 0] = True
            buffers[6] = bool_buffer(gpu, allowed)
            allowed = allowed.reshape(rows, queries, keys)
        else:
            additive = values(mask_shape, dtype, rng, -2.0, 2.0)
            buffers[6] = to_device(gpu, additive, dtype)
            additive = additive.reshape(rows, queries, keys)
    if causal:
        seen = np.arange(keys)[None, :] <= np.arange(queries)[:, None] + keys - queries
        allowed = seen if allowed is None else allowed & seen
    gpu.set_function(kernel.name, constants={200: queries % bq == 0, 201: keys % bk == 0, 300: masked,
                                             301: causal, 302: False})
    gpu.run_function((32 * ceildiv(queries, bq), wm * heads, wn * batch), buffers,
                     threads_per_threadgroup=(32, wm, wn))
    expand = heads // kv_heads
    k_rows = np.repeat(k, expand, axis=1).reshape(rows, keys, bd)
    v_rows = np.repeat(v, expand, axis=1).reshape(rows, keys, bd)
    if allowed is not None:
        allowed = np.broadcast_to(allowed, (rows, queries, keys))
    expected = _attention(q.reshape(rows, queries, bd), k_rows, v_rows, np.float32(scale), allowed, additive)
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


# --- quantized.metal (MLX's affine format) --------------------------------------------------------------------------

def _no_batch(gpu) -> list:
    """The batch arguments of a _batch_0 kernel (x and w batch ranks, shapes and strides, scale and bias strides),
    which it does not read: MLX's host code leaves them unbound."""
    return [np.int32(0), unused(gpu), unused(gpu, "int64"), np.int32(0), unused(gpu), unused(gpu, "int64"),
            unused(gpu, "int64"), unused(gpu, "int64")]


def _affine_quantized(rows: int, columns: int, group_size: int, bits: int, dtype: str, rng):
    """Random affine-quantised rows, as MLX documents the format: each group of ``group_size`` consecutive values
    of a row is w = scale * q + bias with q in [0, 2^bits); the q are packed little-endian into uint32 words,
    32 / bits to a word, the first in the lowest bits. Returns (packed words, scales, biases, w in float64).
    Only ``bits`` 4 (and 2, 8): the others pack across words."""
    q = rng.integers(0, 2 ** bits, size=(rows, columns), dtype=np.uint64)
    per_word = 32 // bits
    shifts = (np.arange(per_word, dtype=np.uint64) * bits)
    packed = (q.reshape(rows, columns // per_word, per_word) << shifts).sum(axis=2).astype(np.uint32)
    # Scales and biases on a grid of 1/128 with few significant bits: every w = scale * q + bias (|128 w| < 256) is
    # exact in bfloat16 and half, so the kernel's own dequantisation (in T, fused or not) rounds nothing.
    scales = rng.integers(1, 8, size=(rows, columns // group_size)) / 128
    biases = rng.integers(-64, 65, size=(rows, columns // group_size)) / 128
    w = q.astype(np.float64) * np.repeat(scales, group_size, axis=1) + np.repeat(biases, group_size, axis=1)
    return packed, scales, biases, w


@case("mlx.affine_qmv")
def affine_qmv(gpu, kernel, dtype: str, out_size: int, in_size: int) -> None:
    """y = W x, W (out_size x in_size) affine-quantised; ``_fast`` needs out_size % 8 == 0 and in_size % 512 == 0."""
    rng = np.random.default_rng(RNG_SEED)
    group_size, bits = _tile(kernel.name, "gs", "b")
    packed, scales, biases, w = _affine_quantized(out_size, in_size, group_size, bits, dtype, rng)
    x = values(in_size, dtype, rng, -1.0, 1.0)
    y = to_device(gpu, np.zeros(out_size), dtype)
    gpu.run_function((32, 2 * ceildiv(out_size, 8)),
                     [to_device(gpu, packed, "uint32"), to_device(gpu, scales, dtype), to_device(gpu, biases, dtype),
                      to_device(gpu, x, dtype), y, np.int32(in_size), np.int32(out_size), *_no_batch(gpu)],
                     threads_per_threadgroup=(32, 2))
    check(from_device(y, dtype), w @ x, kernel.family, dtype, kernel.name)


def _affine_qmm(gpu, kernel, dtype: str, M: int, N: int, K: int, transposed: bool) -> None:
    """y = x W^T with W (N x K) affine-quantised along K, or y = x W with W (K x N) quantised along N, x (M x K);
    tiles of 32 x 32, 2 x 2 SIMD-groups."""
    rng = np.random.default_rng(RNG_SEED)
    group_size, bits = _tile(kernel.name, "gs", "b")
    packed, scales, biases, w = _affine_quantized(*((N, K) if transposed else (K, N)), group_size, bits, dtype, rng)
    x = values((M, K), dtype, rng, -1.0, 1.0)
    y = to_device(gpu, np.zeros(M * N), dtype)
    gpu.run_function((32 * ceildiv(N, 32), 2 * ceildiv(M, 32), 2),
                     [to_device(gpu, packed, "uint32"), to_device(gpu, scales, dtype), to_device(gpu, biases, dtype),
                      to_device(gpu, x, dtype), y, np.int32(K), np.int32(N), np.int32(M), *_no_batch(gpu)],
                     threads_per_threadgroup=(32, 2, 2))
    check(from_device(y, dtype).reshape(M, N), x @ (w.T if transposed else w), kernel.family, dtype, kernel.name)


@case("mlx.affine_qmm_t")
def affine_qmm_t(gpu, kernel, dtype: str, M: int, N: int, K: int) -> None:
    _affine_qmm(gpu, kernel, dtype, M, N, K, transposed=True)


@case("mlx.affine_qmm_n")
def affine_qmm_n(gpu, kernel, dtype: str, M: int, N: int, K: int) -> None:
    _affine_qmm(gpu, kernel, dtype, M, N, K, transposed=False)


@case("mlx.affine_dequantize")
def affine_dequantize(gpu, kernel, dtype: str, rows: int, columns: int) -> None:
    rng = np.random.default_rng(RNG_SEED)
    group_size, bits = _tile(kernel.name, "gs", "b")
    packed, scales, biases, w = _affine_quantized(rows, columns, group_size, bits, dtype, rng)
    out = to_device(gpu, np.zeros(w.size), dtype)
    threads = packed.size * 4  # one a byte: 8 / bits values each
    gpu.run_function((threads // rows, rows), [to_device(gpu, packed.view(np.uint8), "uint8"),
                                               to_device(gpu, scales, dtype), to_device(gpu, biases, dtype), out])
    check(from_device(out, dtype).reshape(rows, columns), w, kernel.family, dtype, kernel.name)



# --- steel/conv/kernels/steel_conv.metal (2-D convolution as an implicit GEMM) ----------------------------------

def _conv2d_reference(x, w, stride, padding, dilation, groups):
    """Cross-correlation of x (N, H, W, C) with w (O, KH, KW, C / groups) into (N, OH, OW, O), channels split into
    groups."""
    n, h, width, _ = x.shape
    o, kh, kw, c_group = w.shape
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (width + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    padded = np.pad(x, ((0, 0), (padding[0], padding[0]), (padding[1], padding[1]), (0, 0)))
    out = np.zeros((n, oh, ow, o))
    o_group = o // groups
    for i in range(kh):
        for j in range(kw):
            rows = padded[:, i * dilation[0]:i * dilation[0] + stride[0] * (oh - 1) + 1:stride[0],
                          j * dilation[1]:j * dilation[1] + stride[1] * (ow - 1) + 1:stride[1], :]
            for g in range(groups):
                out[..., g * o_group:(g + 1) * o_group] += (
                    rows[..., g * c_group:(g + 1) * c_group] @ w[g * o_group:(g + 1) * o_group, i, j, :].T)
    return out


@case("mlx.conv2d")
def conv2d(gpu, kernel, dtype: str, batch: int, size: list, channels: int, out_channels: int, filter: list,
           stride: list, padding: list, dilation: list, groups: int = 1) -> None:
    """MLX's implicit-GEMM 2-D convolution over NHWC input and OHWC weights, arguments as conv.cpp's
    implicit_gemm_conv_2D_gpu computes them (MLXConvParams<2> and ImplicitGemmConv2DParams through struct_dtype).
    As MLX's dispatch_conv_2D_gpu, ``channel_l`` kernels take channels a multiple of 16 (a group's, with groups) and
    output channels up to 16 or a multiple of 16; ``channel_1``..``channel_4`` take that many channels."""
    rng = np.random.default_rng(RNG_SEED)
    bm, bn, bk, wm, wn = _tile(kernel.name, "bm", "bn", "bk", "wm", "wn")
    x = values((batch, *size, channels), dtype, rng, -1.0, 1.0)
    w = values((out_channels, *filter, channels // groups), dtype, rng, -1.0, 1.0)
    expected = _conv2d_reference(x, w, stride, padding, dilation, groups)
    out = to_device(gpu, np.zeros(expected.size), dtype)

    def strides(shape):
        return [int(np.prod(shape[i + 1:])) for i in range(len(shape))]

    conv = np.zeros(1, gpu.struct_dtype("MLXConvParams<2>"))
    for name, value in {"N": batch, "C": channels, "O": out_channels, "iS": size, "wS": filter,
                        "oS": expected.shape[1:3], "str": stride, "pad": padding, "kdil": dilation, "idil": [1, 1],
                        "in_strides": strides(x.shape), "wt_strides": strides(w.shape),
                        "out_strides": strides(expected.shape), "groups": groups, "flip": False}.items():
        conv[name] = value
    c_group, o_group = channels // groups, out_channels // groups
    implicit_m, implicit_k = batch * expected.shape[1] * expected.shape[2], filter[0] * filter[1] * c_group
    channel_name = re.search(r"_channel_(\w)_", kernel.name).group(1)
    if channel_name == "l":
        k_iterations = filter[0] * filter[1] * ceildiv(c_group, bk)
    elif c_group <= 2:
        k_iterations = ceildiv(implicit_k, bk)
    else:
        k_iterations = ceildiv(filter[0] * filter[1] * 4, bk)
    jump_w = strides(x.shape)[2] * dilation[1]
    jump_h = strides(x.shape)[1] * dilation[0]
    tiles_n, tiles_m = ceildiv(o_group, bn), ceildiv(implicit_m, bm)
    gemm = np.zeros(1, gpu.struct_dtype("ImplicitGemmConv2DParams"))
    for name, value in {"M": implicit_m, "N": o_group, "K": implicit_k, "gemm_k_iterations": k_iterations,
                        "inp_jump_w": jump_w, "inp_jump_h": jump_h - (filter[1] - 1) * jump_w,
                        "inp_jump_c": bk - (filter[0] - 1) * jump_h - (filter[1] - 1) * jump_w,
                        "tiles_n": tiles_n, "tiles_m": tiles_m, "swizzle_log": 0}.items():
        gemm[name] = value
    gpu.run_function((32 * tiles_n, wn * tiles_m, wm * groups),
                     [to_device(gpu, x, dtype), to_device(gpu, w, dtype), out, conv, gemm],
                     threads_per_threadgroup=(32, wn, wm))
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)
