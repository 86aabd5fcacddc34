"""Runtime cases of ggml's Metal kernels (ggml-metal.metal, the kernels of llama.cpp): elementwise, GLU, softmax,
norms, rope, reductions, sorting, row gathers and copies.

Each case selects its kernel with the function constants ggml's host code sets for it
(``ggml-metal-device.cpp``), builds the ``ggml_metal_kargs_*`` struct through ``struct_dtype`` and dispatches as
``ggml-metal-ops.cpp`` does (threadgroups, threads per threadgroup, threadgroup memory), then checks against numpy.
"""
from __future__ import annotations

import math

import numpy as np

from .cases import case
from .ggml_support import (
    FORMATS,
    RNG_SEED,
    Tensor,
    constant,
    dispatch,
    download,
    ggml_shape,
    kargs,
    output,
    quantize_random,
    quantize_reference,
    softmax_rows,
    upload,
    upload_quantized,
    upload_stack,
    values,
)
from .harness import check, round_to

# --- unary (kernel_unary_*: one kernel, the op chosen by a function constant) ------------------------------------


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf)(x)


UNARY = {  # ggml's definition of each op, in float64; ops with parameters take them from ``PARAMS``
    "scale": lambda x, p: p["scale"] * x + p["bias"],
    "clamp": lambda x, p: np.clip(x, p["min"], p["max"]),
    "sqr": lambda x, p: x * x,
    "leaky_relu": lambda x, p: np.where(x > 0, x, p["slope"] * x),
    "tanh": lambda x, p: np.tanh(x),
    "relu": lambda x, p: np.maximum(x, 0),
    "sigmoid": lambda x, p: 1 / (1 + np.exp(-x)),
    "gelu": lambda x, p: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
    "gelu_erf": lambda x, p: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "gelu_quick": lambda x, p: x / (1 + np.exp(-1.702 * x)),
    "silu": lambda x, p: x / (1 + np.exp(-x)),
    "elu": lambda x, p: np.where(x > 0, x, np.expm1(x)),
    "neg": lambda x, p: -x,
    "abs": lambda x, p: np.abs(x),
    "hardswish": lambda x, p: x * np.clip(x / 6 + 0.5, 0, 1),
    "exp": lambda x, p: np.exp(x),
    "softplus": lambda x, p: np.where(x > 20, x, np.log1p(np.exp(x))),
    "floor": lambda x, p: np.floor(x),
}
PARAMS = {"slope": 0.125, "scale": -1.75, "bias": 0.5, "val": 0.0, "min": -0.75, "max": 1.25}


@case("ggml.unary", selects_function=True)
def unary(gpu, kernel, dtype: str, ops: list[str], shape: list[int], row_pad: int = 0) -> None:
    """kernel_unary_<t>_<t>[_4] for each op: contiguous tensors under 32768 elements take the flat path (one
    threadgroup of one thread per element), others one threadgroup row per (i01, i02, i03)."""
    rng = np.random.default_rng(RNG_SEED)
    x = values(shape, dtype, rng, -3.0, 3.0)
    c4 = kernel.name.endswith("_4")
    for op in ops:
        src = upload(gpu, x, dtype, row_pad=row_pad)
        dst = output(gpu, shape, dtype)
        cnt = row_pad == 0 and x.size < 32768
        gpu.set_function(kernel.name, constants={constant("FC_UNARY"): constant(f"OP_UNARY_NUM_{op.upper()}"),
                                                 constant("FC_UNARY") + 1: cnt})
        ne00 = src.ne[0] // 4 if c4 else src.ne[0]
        args = kargs(gpu, "ggml_metal_kargs_unary", **src.fields("0"), **dst.fields(""), **PARAMS)
        args["ne00"], args["ne0"] = ne00, ne00
        if cnt:
            dispatch(gpu, (x.size // 4 if c4 else x.size, 1, 1), (1, 1, 1), [args, src.buffer, dst.buffer])
        else:
            nth = min(ne00, 256, gpu.maxThreadsPerGroup())
            groups = (-(-ne00 // nth) * src.ne[1], src.ne[2], src.ne[3])
            dispatch(gpu, groups, (nth, 1, 1), [args, src.buffer, dst.buffer])
        expected = round_to(UNARY[op](x, PARAMS), dtype)
        check(download(dst), expected, kernel.family, dtype, f"{kernel.name} op={op}")


# --- binary (kernel_bin_fuse_*: add/sub/mul/div with broadcasting, up to 8 fused right-hand sides) --------------

BINARY = {"add": (0, np.add), "sub": (1, np.subtract), "mul": (2, np.multiply), "div": (3, np.divide)}


@case("ggml.binary", selects_function=True)
def binary(gpu, kernel, dtype: str, op: str, shape: list[int], rhs_shape: list[int], fused: int = 1) -> None:
    """dst = src0 op b[0] op b[1] ... (``fused`` right-hand sides at byte offsets o1[j] of one buffer, as ggml fuses
    a chain of ADDs), src1 broadcast over dims where its count is 1 or divides (repeats along dim 0: ``cb``)."""
    rng = np.random.default_rng(RNG_SEED)
    number, function = BINARY[op]
    a = values(shape, dtype, rng)
    rhs = [values(rhs_shape, dtype, rng, 0.5, 2.0) for _ in range(fused)]  # away from zero: div
    src0 = upload(gpu, a, dtype)
    src1, offsets = upload_stack(gpu, rhs, dtype)  # the fused operands, one after another in one buffer
    dst = output(gpu, shape, dtype)
    ne00, ne10 = src0.ne[0], src1.ne[0]
    c4 = kernel.name.endswith("_4")
    cb = ne00 != ne10
    rb = int(np.prod(rhs_shape[:-1])) == 1 and a.size < 65536  # one row of src1, both contiguous
    gpu.set_function(kernel.name, constants={constant("FC_BIN"): number, constant("FC_BIN") + 1: fused,
                                             constant("FC_BIN") + 2: rb, constant("FC_BIN") + 3: cb})
    args = kargs(gpu, "ggml_metal_kargs_bin", **src0.fields("0"), **src1.fields("1"), **dst.fields(""), offs=0,
                 o1=offsets + [0] * (8 - fused))
    if c4:
        args["ne00"], args["ne10"], args["ne0"] = ne00 // 4, ne10 // 4, ne00 // 4
    if rb:
        rows = a.size // ne00
        dispatch(gpu, (args["ne0"], rows, 1), (1, 1, 1), [args, src0.buffer, src1.buffer, dst.buffer])
    else:
        nth = 1
        while 2 * nth < args["ne0"] and nth < min(256, gpu.maxThreadsPerGroup()):
            nth *= 2
        dispatch(gpu, src0.ne[1:], (nth, 1, 1), [args, src0.buffer, src1.buffer, dst.buffer])
    expected = a
    for operand in rhs:
        tiled = np.tile(operand, [1] * (operand.ndim - 1) + [ne00 // ne10])  # cb: src1 repeats along dim 0
        expected = round_to(function(expected, tiled), dtype)  # half: each fused step rounds, as the kernel's does
    check(download(dst), expected, kernel.family, dtype, kernel.name)


# --- GLU (kernel_swiglu/geglu/reglu_*: two halves of one row, or two tensors) -------------------------------------

GLU = {
    "swiglu": lambda x, g: x / (1 + np.exp(-x)) * g,
    "geglu": lambda x, g: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))) * g,
    "reglu": lambda x, g: np.maximum(x, 0) * g,
}


@case("ggml.glu")
def glu(gpu, kernel, dtype: str, rows: int = 5, width: int = 96, swapped: bool = False) -> None:
    """One input of 2*width per row: dst = f(first half) * second half (swapped: the halves' roles exchange)."""
    rng = np.random.default_rng(RNG_SEED)
    x = values((rows, 2 * width), dtype, rng, -3.0, 3.0)
    src = upload(gpu, x, dtype)
    dst = output(gpu, (rows, width), dtype)
    i00, i10 = (width, 0) if swapped else (0, width)
    args = kargs(gpu, "ggml_metal_kargs_glu", ne00=2 * width, nb01=src.nb[1], ne10=2 * width, nb11=src.nb[1],
                 ne0=width, nb1=dst.nb[1], i00=i00, i10=i10, alpha=0.0, limit=0.0)
    nth = min(gpu.maxThreadsPerGroup(), width)
    dispatch(gpu, (rows, 1, 1), (nth, 1, 1), [args, src.buffer, src.buffer, dst.buffer])
    op = kernel.name.split("_")[1]
    expected = round_to(GLU[op](x[:, i00:i00 + width], x[:, i10:i10 + width]), dtype)
    check(download(dst), expected, kernel.family, dtype, kernel.name)


# --- soft_max (kernel_soft_max_<mask type>[_4]: scale, mask, ALiBi slopes, attention sinks) ---------------------

@case("ggml.soft_max")
def soft_max(gpu, kernel, shape: list[int], mask: bool, scale: float = 1.0, max_bias: float = 0.0,
             sinks: bool = False, mask_heads: int = 0) -> None:
    """softmax(x*scale + slope*mask) along dim 0, per row; ``sinks`` adds one more logit per head to the
    denominator only; the mask (rows >= ne01) broadcasts over heads when it has ``mask_heads`` of them."""
    rng = np.random.default_rng(RNG_SEED)
    rows, heads, cols = shape[-2], shape[-3], shape[-1]
    x = values(shape, "float32", rng, -4.0, 4.0)
    mask_type = "float16" if "_f16" in kernel.name else "float32"
    m = values((mask_heads or heads, rows + 2, cols), mask_type, rng, -2.0, 2.0)
    m[..., 1, ::5] = -np.inf  # masked positions
    sink = values(heads, "float32", rng)
    src0, dst = upload(gpu, x, "float32"), output(gpu, shape, "float32")
    src1 = upload(gpu, m, mask_type) if mask else src0
    src2 = upload(gpu, sink, "float32") if sinks else src0
    n_head_log2 = 1 << math.floor(math.log2(heads))
    m0 = 2.0 ** (-max_bias / n_head_log2)
    m1 = 2.0 ** (-(max_bias / 2.0) / n_head_log2)
    args = kargs(gpu, "ggml_metal_kargs_soft_max", ne00=src0.ne[0], ne01=src0.ne[1], ne02=src0.ne[2],
                 nb01=src0.nb[1], nb02=src0.nb[2], nb03=src0.nb[3], ne11=src1.ne[1], ne12=src1.ne[2],
                 ne13=src1.ne[3], nb11=src1.nb[1], nb12=src1.nb[2], nb13=src1.nb[3], nb1=dst.nb[1], nb2=dst.nb[2],
                 nb3=dst.nb[3], scale=scale, max_bias=max_bias, m0=m0, m1=m1, n_head_log2=n_head_log2)
    nrows = rows * heads * src0.ne[3]
    nth, limit = 32, cols // 4 if cols % 4 == 0 else cols
    while nth < limit and nth * nrows < 256:
        nth *= 2
    dispatch(gpu, src0.ne[1:], (nth, 1, 1), [args, src0.buffer, src1.buffer, src2.buffer, dst.buffer],
             threadgroup_memory=32 * 4)
    logits = x * scale
    if mask:
        h = np.arange(heads)
        slope = np.where(h < n_head_log2, m0 ** (h + 1), m1 ** (2 * (h - n_head_log2) + 1)) if max_bias else 1.0
        slope = np.broadcast_to(slope, (heads,)).reshape(heads, 1, 1)
        logits = logits + slope * m[np.arange(heads) % m.shape[0]][:, :rows, :]
    expected = softmax_rows(logits, sink if sinks else None)
    check(download(dst).reshape(shape), expected, kernel.family, "float32", kernel.name)


# --- norms (kernel_norm_* / kernel_rms_norm_*: optionally fused with a following MUL and ADD) ---------------------

@case("ggml.norm")
def norm(gpu, kernel, shape: list[int], eps: float = 1e-5, row_pad: int = 0) -> None:
    """Along dim 0: rms_norm x/sqrt(mean(x^2)+eps), norm (x-mean)/sqrt(var+eps); ``_mul`` then multiplies by a
    weight row broadcast over all rows, ``_mul_add`` adds a bias broadcast over dims 2 and 3."""
    rng = np.random.default_rng(RNG_SEED)
    cols = shape[-1]
    x = values(shape, "float32", rng, -3.0, 3.0) + 0.5
    weight = values((1, cols), "float32", rng, 0.5, 1.5)
    bias = values(shape[-2:], "float32", rng)
    src0 = upload(gpu, x, "float32", row_pad=row_pad)
    src_w, src_b = upload(gpu, weight, "float32"), upload(gpu, bias, "float32")
    dst = output(gpu, shape, "float32")
    fused = 1 + ("_mul" in kernel.name) + ("_add" in kernel.name)
    ne00_t = cols // 4 if cols % 4 == 0 else cols
    # as the host fills them: entry 0 is src0's, entry k the k-th fused operand's, the unused ones zero
    operands = [src0, src_w, src_b][:fused]
    shapes = {f"nef{d}": [t.ne[d] for t in operands] + [0] * (3 - fused) for d in (1, 2, 3)}
    strides = {f"nbf{d}": [t.nb[d] for t in operands] + [0] * (3 - fused) for d in (1, 2, 3)}
    args = kargs(gpu, "ggml_metal_kargs_norm", ne00=cols, ne00_t=ne00_t, nb1=dst.nb[1], nb2=dst.nb[2], nb3=dst.nb[3],
                 eps=eps, **shapes, **strides)
    nth = 32
    while nth < ne00_t and nth < gpu.maxThreadsPerGroup():
        nth *= 2
    nth = min(nth, gpu.maxThreadsPerGroup(), (ne00_t + 31) // 32 * 32)
    buffers = [args, src0.buffer, (src_w if fused > 1 else src0).buffer, (src_b if fused > 2 else src0).buffer,
               dst.buffer]
    dispatch(gpu, src0.ne[1:], (nth, 1, 1), buffers, threadgroup_memory=32 * 4)
    if "rms" in kernel.name:
        expected = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
    else:
        centred = x - x.mean(axis=-1, keepdims=True)
        expected = centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)
    if fused > 1:
        expected = expected * weight
    if fused > 2:
        expected = expected + bias
    check(download(dst), expected, kernel.family, "float32", kernel.name)


# --- rope (kernel_rope_norm_* rotates adjacent pairs, kernel_rope_neox_* pairs half a rotation apart) ------------

@case("ggml.rope", selects_function=True)
def rope(gpu, kernel, dtype: str, head_dim: int, n_dims: int, heads: int = 3, tokens: int = 5,
         freq_base: float = 10000.0, freq_scale: float = 1.0, attn_factor: float = 1.0,
         freq_factors: bool = False) -> None:
    """Token t at position pos[t]: pair i of the first n_dims values turns by pos * freq_scale *
    freq_base^(-2i/n_dims) / freq_factor[i], scaled by attn_factor; the other values pass through."""
    rng = np.random.default_rng(RNG_SEED)
    x = values((tokens, heads, head_dim), dtype, rng, -1.0, 1.0)
    pos = rng.permutation(8)[:tokens]
    factors = rng.uniform(1.0, 4.0, n_dims // 2).astype(np.float32)
    src0, dst = upload(gpu, x, dtype), output(gpu, x.shape, dtype)
    src1 = upload(gpu, pos, "int32")
    src2 = upload(gpu, factors, "float32") if freq_factors else src0
    gpu.set_function(kernel.name, constants={constant("FC_ROPE"): False, constant("FC_ROPE") + 1: False})
    args = kargs(gpu, "ggml_metal_kargs_rope", **src0.fields("0"), **dst.fields(""), n_past=0, n_dims=n_dims,
                 n_offs=0, n_ctx_orig=4096, freq_base=freq_base, freq_scale=freq_scale, ext_factor=0.0,
                 attn_factor=attn_factor, beta_fast=32.0, beta_slow=1.0, sect_0=0, sect_1=0, sect_2=0, sect_3=0,
                 src2=freq_factors, inplace=False)
    nth = min(1024, head_dim, gpu.maxThreadsPerGroup())
    dispatch(gpu, src0.ne[1:], (nth, 1, 1), [args, src0.buffer, src1.buffer, src2.buffer, dst.buffer])
    i = np.arange(n_dims // 2)
    theta = pos.reshape(-1, 1) * freq_scale * freq_base ** (-2.0 * i / n_dims)
    if freq_factors:
        theta = theta / factors.astype(np.float64)
    cos, sin = (np.cos(theta) * attn_factor)[:, None, :], (np.sin(theta) * attn_factor)[:, None, :]
    if "neox" in kernel.name:
        first, second = slice(0, n_dims // 2), slice(n_dims // 2, n_dims)
    else:
        first, second = slice(0, n_dims, 2), slice(1, n_dims, 2)
    expected = x.copy()
    expected[..., first] = x[..., first] * cos - x[..., second] * sin
    expected[..., second] = x[..., first] * sin + x[..., second] * cos
    check(download(dst), round_to(expected, dtype), kernel.family, dtype, kernel.name)


# --- reductions ---------------------------------------------------------------------------------------------------

@case("ggml.argmax")
def argmax(gpu, kernel, rows: int = 2, cols: int = 200) -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = np.stack([rng.permutation(cols) for _ in range(rows)]) * 0.25 - cols / 8  # distinct: one answer
    src, dst = upload(gpu, x, "float32"), output(gpu, (rows,), "int32")
    args = kargs(gpu, "ggml_metal_kargs_argmax", ne00=cols, nb01=src.nb[1])
    nth = 32
    while nth < cols and nth * rows < 256:
        nth *= 2
    dispatch(gpu, (rows, 1, 1), (nth, 1, 1), [args, src.buffer, dst.buffer], threadgroup_memory=32 * (4 + 4))
    check(download(dst), np.argmax(x, axis=-1), kernel.family, "int32", kernel.name)


@case("ggml.sum_rows", selects_function=True)
def sum_rows(gpu, kernel, shape: list[int], mean: bool = False) -> None:
    """Sum (or mean) along dim 0; rows narrower than 32 * k threads leave the last SIMD-group partial."""
    rng = np.random.default_rng(RNG_SEED)
    x = values(shape, "float32", rng)
    out_shape = (*shape[:-1], 1)
    src, dst = upload(gpu, x, "float32"), output(gpu, out_shape, "float32")
    c4 = kernel.name.endswith("_4")
    op = constant("OP_SUM_ROWS_NUM_MEAN" if mean else "OP_SUM_ROWS_NUM_SUM_ROWS")
    gpu.set_function(kernel.name, constants={constant("FC_SUM_ROWS"): op})
    args = kargs(gpu, "ggml_metal_kargs_sum_rows", **src.fields("0"), **dst.fields(""))
    if c4:
        args["ne00"], args["ne0"] = src.ne[0] // 4, dst.ne[0] // 4
    nth = 32
    while nth < args["ne00"] and nth < gpu.maxThreadsPerGroup():
        nth *= 2
    nth = min(nth, gpu.maxThreadsPerGroup(), int(args["ne00"]))
    dispatch(gpu, src.ne[1:], (nth, 1, 1), [args, src.buffer, dst.buffer], threadgroup_memory=32 * 4 * (4 if c4 else 1))
    expected = x.mean(axis=-1, keepdims=True) if mean else x.sum(axis=-1, keepdims=True)
    check(download(dst), expected, kernel.family, "float32", kernel.name)


# --- argsort (bitonic sort of each row within a threadgroup, then merges of sorted runs) --------------------------

def _argsort_args(gpu, src: Tensor, top_k: int) -> np.ndarray:
    return kargs(gpu, "ggml_metal_kargs_argsort", **src.fields("0"), ne0=src.ne[0], ne1=src.ne[1], ne2=src.ne[2],
                 ne3=src.ne[3], top_k=top_k)


@case("ggml.argsort", selects_function=True)
def argsort(gpu, kernel, rows: int, cols: int, descending: bool) -> None:
    """Rows up to the threadgroup limit sort in one dispatch (kernel_argsort_f32_i32_<order>); longer rows sort
    in threadgroup-sized runs that kernel_argsort_merge_f32_i32_<order> merges pairwise, ping-ponging between
    the result and a scratch buffer so that the last merge lands in the result."""
    rng = np.random.default_rng(RNG_SEED)
    x = np.stack([rng.permutation(cols) for _ in range(rows)]) * 0.5 - cols / 4  # distinct: one order
    order = "desc" if descending else "asc"
    sort_name, merge_name = f"kernel_argsort_f32_i32_{order}", f"kernel_argsort_merge_f32_i32_{order}"
    src = upload(gpu, x, "float32")
    result = output(gpu, x.shape, "int32")
    gpu.set_function(sort_name)
    nth = 1
    while nth < cols and 2 * nth <= gpu.maxThreadsPerGroup():
        nth *= 2
    runs = -(-cols // nth)
    merges = math.ceil(math.log2(runs))
    # each merge reads one buffer and writes the other: start in the scratch one when the count is odd
    current, other = (output(gpu, x.shape, "int32"), result) if merges % 2 else (result, output(gpu, x.shape, "int32"))
    dispatch(gpu, (runs * rows, 1, 1), (nth, 1, 1), [_argsort_args(gpu, src, nth), src.buffer, current.buffer],
             threadgroup_memory=-(-nth * 4 // 16) * 16)
    if merges:
        assert kernel.name == merge_name, f"{kernel.name}: rows of {cols} need merges, the manifest names no merge"
        gpu.set_function(merge_name)
    length = nth
    while length < cols:
        merge_args = kargs(gpu, "ggml_metal_kargs_argsort_merge", **src.fields("0"), ne0=cols, ne1=rows, ne2=1,
                           ne3=1, top_k=cols, len=length)
        threads = min(512, gpu.maxThreadsPerGroup())
        dispatch(gpu, (-(-cols // (2 * length)) * rows, 1, 1), (threads, 1, 1),
                 [merge_args, src.buffer, current.buffer, other.buffer])
        current, other = other, current
        length *= 2
    expected = np.argsort(-x if descending else x, axis=-1, kind="stable")
    check(download(result), expected, kernel.family, "int32", kernel.name)


# --- get_rows (gather rows by int32 ids, dequantising quantised rows) ---------------------------------------------

@case("ggml.get_rows")
def get_rows(gpu, kernel, dtype: str, cols: int = 64, rows: int = 7, ids: int = 5, batch: int = 2) -> None:
    """dst[b, j] = src[b, ids[b, j]] for a batch of matrices, converted to float32 (quantised: dequantised)."""
    rng = np.random.default_rng(RNG_SEED)
    index = rng.integers(0, rows, size=(batch, ids))
    if dtype in ("float32", "float16"):
        table = values((batch, rows, cols), dtype, rng)
        src = upload(gpu, table, dtype)
        ne00t = cols
    else:
        blocks = quantize_random(gpu, dtype, (batch, rows, cols), rng)
        table, src = blocks.values, upload_quantized(gpu, blocks)
        ne00t = cols // 16
    src1 = upload(gpu, index, "int32")
    dst = output(gpu, (batch, ids, cols), "float32")
    args = kargs(gpu, "ggml_metal_kargs_get_rows", ne00t=ne00t, ne00=cols, nb01=src.nb[1], nb02=src.nb[2],
                 nb03=src.nb[3], ne10=ids, nb10=src1.nb[0], nb11=src1.nb[1], nb12=src1.nb[2], nb1=dst.nb[1],
                 nb2=dst.nb[2], nb3=dst.nb[3])
    nth = min(ne00t, gpu.maxThreadsPerGroup())
    dispatch(gpu, (-(-ne00t // nth) * ids, batch, 1), (nth, 1, 1), [args, src.buffer, src1.buffer, dst.buffer])
    expected = np.take_along_axis(table, index[:, :, None], axis=1)
    family = "quantized" if dtype not in ("float32", "float16") else kernel.family
    check(download(dst), expected, family, "float32", kernel.name)


# --- cpy (element-wise copy with conversion, any strides in, any shape of the same count out) --------------------

@case("ggml.cpy")
def cpy(gpu, kernel, src_dtype: str, dst_dtype: str, shape: list[int], dst_shape: list[int],
        transposed: bool = False) -> None:
    """dst (dst_shape) takes src's elements in src's logical order; ``transposed`` reads src through swapped
    strides of dims 0 and 1, a transposed view."""
    rng = np.random.default_rng(RNG_SEED)
    stored_shape = (*shape[:-2], shape[-1], shape[-2]) if transposed else tuple(shape)
    stored = values(stored_shape, src_dtype, rng, -300.0, 300.0)
    src = upload(gpu, stored, src_dtype)
    logical = np.swapaxes(stored, -1, -2) if transposed else stored
    if transposed:
        src = Tensor(src.buffer, src.dtype, (src.ne[1], src.ne[0], src.ne[2], src.ne[3]),
                     (src.nb[1], src.nb[0], src.nb[2], src.nb[3]), logical.shape)
    dst = output(gpu, dst_shape, dst_dtype)
    nk0 = src.ne[0]
    nth, nrptg = min(nk0 * src.ne[1], 256), 1
    if nth > nk0:
        nrptg, nth = -(-nth // nk0), nk0
        if nrptg * nth > 256:
            nrptg -= 1
    nth = min(nth, nk0)
    args = kargs(gpu, "ggml_metal_kargs_cpy", nk0=nk0, **src.fields("0"), **dst.fields(""))
    nw0 = -(-nk0 // nth) if nrptg == 1 else 1
    dispatch(gpu, (nw0 * -(-src.ne[1] // nrptg), src.ne[2], src.ne[3]), (nth, nrptg, 1),
             [args, src.buffer, dst.buffer])
    expected = round_to(logical.reshape(dst_shape), dst_dtype)
    check(download(dst), expected, kernel.family, dst_dtype, kernel.name)


# --- quantising copies: cpy to q8_0/q4_0 (ggml's quantisers, one block per thread) and set_rows ------------------

def _quantized_output(gpu, shape, kind: str) -> Tensor:
    """A result tensor of ``kind`` blocks, every byte 0xA5 (a pattern no quantiser writes everywhere), its size
    rounded up to whole words (the kernels take it as ``device float *``)."""
    block_bytes = gpu.struct_dtype(f"block_{kind}").itemsize
    ne = ggml_shape(shape)
    row = ne[0] // FORMATS[kind].elements * block_bytes
    count = -(-row * ne[1] * ne[2] * ne[3] // 16) * 16
    buffer = gpu.create_buffer(count, "uchar")
    buffer.contents[:] = 0xA5
    return Tensor(buffer, "uint8", ne, (block_bytes, row, row * ne[1], row * ne[1] * ne[2]), tuple(shape))


def _blocks_of(tensor: Tensor) -> np.ndarray:
    return tensor.buffer.read()[:tensor.nb[3] * tensor.ne[3]]


@case("ggml.cpy_quantize")
def cpy_quantize(gpu, kernel, kind: str, shape: list[int]) -> None:
    """kernel_cpy_f32_<kind>: every 32 values of a row become one block, bit for bit as ggml-quants.c's
    reference quantiser makes it (the scale as half, rounded to nearest even)."""
    rng = np.random.default_rng(RNG_SEED)
    x = values(shape, "float32", rng, -3.0, 3.0)
    x[..., 0, :32] = 0.0  # a block of zeros: scale 0, no division
    src, dst = upload(gpu, x, "float32"), _quantized_output(gpu, shape, kind)
    nk0 = src.ne[0] // FORMATS[kind].elements
    nth = min(nk0 * src.ne[1], 256, nk0)
    args = kargs(gpu, "ggml_metal_kargs_cpy", nk0=nk0, **src.fields("0"), **dst.fields(""))
    dispatch(gpu, (-(-nk0 // nth) * src.ne[1], src.ne[2], src.ne[3]), (nth, 1, 1), [args, src.buffer, dst.buffer])
    check(_blocks_of(dst), quantize_reference(gpu, x, kind), kernel.family, "uint8", kernel.name)


@case("ggml.set_rows")
def set_rows(gpu, kernel, dst_type: str, index_type: str, cols: int = 64, rows: int = 5, dst_rows: int = 9,
             heads: int = 3) -> None:
    """dst[h, ids[h % ne11, i]] = src[h, i] for i < rows (a KV-cache write: each new token's row lands at its
    slot), converted to dst_type (f16, f32, or quantised blocks); the other rows keep what they held."""
    rng = np.random.default_rng(RNG_SEED)
    x = values((heads, rows, cols), "float32", rng, -3.0, 3.0)
    ids = np.stack([rng.permutation(dst_rows)[:rows] for _ in range(1)])  # ne11 = 1: shared by every head
    src, src1 = upload(gpu, x, "float32"), upload(gpu, ids, index_type)
    if dst_type in FORMATS:
        dst = _quantized_output(gpu, (heads, dst_rows, cols), dst_type)
        nk0 = cols // FORMATS[dst_type].elements
    else:
        initial = values((heads, dst_rows, cols), dst_type, rng)
        dst, nk0 = upload(gpu, initial, dst_type), cols
    nth, limit = 32, gpu.maxThreadsPerGroup()
    while nth < nk0 and nth < limit:
        nth *= 2
    nrptg = 1
    if nth > nk0:
        nrptg, nth = -(-nth // nk0), nk0
        if nrptg * nth > limit:
            nrptg -= 1
    nth = min(nth, nk0)
    args = kargs(gpu, "ggml_metal_kargs_set_rows", nk0=nk0, ne01=rows, nb01=src.nb[1], nb02=src.nb[2],
                 nb03=src.nb[3], ne11=src1.ne[1], ne12=src1.ne[2], nb10=src1.nb[0], nb11=src1.nb[1],
                 nb12=src1.nb[2], nb1=dst.nb[1], nb2=dst.nb[2], nb3=dst.nb[3])
    # ggml declares dst `device float *` whatever it holds (half rows too) and addresses it in bytes: bind its bytes
    dst_bytes = dst.buffer.view("uchar")
    dispatch(gpu, (-(-rows // nrptg), heads, 1), (nth, nrptg, 1), [args, src.buffer, src1.buffer, dst_bytes])
    if dst_type in FORMATS:
        expected = np.frombuffer(np.full(dst.nb[3], 0xA5, np.uint8), np.uint8).copy().reshape(heads, dst_rows, -1)
        written = quantize_reference(gpu, x, dst_type).reshape(heads, rows, -1)
        expected[:, ids[0], :] = written
        check(_blocks_of(dst).reshape(expected.shape), expected, kernel.family, "uint8", kernel.name)
        return
    expected = initial.copy()
    expected[:, ids[0], :] = round_to(x, dst_type)
    check(download(dst), expected, kernel.family, dst_type, kernel.name)
