"""Runtime cases of PyTorch's MPS pooling and upsampling kernels (Pooling.metal: max_pool with indices, its atomic
backward, and avg_pool, parameters packed as Pooling.h's structs with 32-bit index arrays, over 3-D pooling of an
(N, C, D, H, W) tensor; UpSample.metal: bicubic upsampling); each against a numpy reference of our own."""
from __future__ import annotations

import itertools

import numpy as np

from .cases import case
from .harness import check, from_device, round_to, to_device

RNG_SEED = 29
SHAPE = (2, 2, 4, 5, 6)  # N, C and the three pooled dimensions


def _strides(shape) -> list[int]:
    return [int(np.prod(shape[i + 1:])) for i in range(len(shape))]


def _ints(*arrays) -> bytes:
    return b"".join(np.asarray(a, np.int32).tobytes() for a in arrays)


def _distinct_values(dtype: str) -> np.ndarray:
    """Distinct integers (exact in half and bfloat16), so the maximum and its index are unique."""
    count = int(np.prod(SHAPE))
    return np.random.default_rng(RNG_SEED).permutation(count).reshape(SHAPE).astype(np.float64) - count // 2


def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _max_pool_reference(x, kernel, stride, padding, dilation):
    pooled = x.shape[2:]
    out_shape = [_out_size(n, k, s, p, d) for n, k, s, p, d in zip(pooled, kernel, stride, padding, dilation)]
    values = np.zeros((*x.shape[:2], *out_shape))
    indices = np.zeros(values.shape, np.int64)
    for n, c, *o in itertools.product(*map(range, values.shape)):
        ranges = [range(s * oi - p, s * oi - p + k * d, d) for oi, k, s, p, d in
                  zip(o, kernel, stride, padding, dilation)]
        best = None
        for i in itertools.product(*ranges):
            if all(0 <= ii < size for ii, size in zip(i, pooled)) and (best is None or x[(n, c, *i)] > best[0]):
                best = (x[(n, c, *i)], (i[0] * pooled[1] + i[1]) * pooled[2] + i[2])
        values[(n, c, *o)], indices[(n, c, *o)] = best
    return values, indices


def _pooling_params(out_shape, kernel, stride, padding, dilation, return_indices: bool) -> bytes:
    """PoolingParams<5>: dims, pooling_dims, six arrays of 5 and four of 3 int32, then bool return_indices."""
    out_strides = _strides(out_shape)
    packed = _ints([5, 3], SHAPE, _strides(SHAPE), out_shape, out_strides, out_shape, out_strides,
                   kernel, stride, padding, dilation)
    return packed + bytes([return_indices, 0, 0, 0])


@case("pytorch.max_pool")
def max_pool(gpu, kernel, dtype: str, window=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0),
             dilation=(1, 1, 2)) -> None:
    """max_pool_<T>: one thread per output element; the flat index of the maximum within the pooled dimensions."""
    x = _distinct_values(dtype)
    expected, expected_indices = _max_pool_reference(x, window, stride, padding, dilation)
    out = to_device(gpu, np.zeros(expected.size), dtype)
    indices = gpu.create_buffer(expected.size, "long")
    params = _pooling_params(expected.shape, window, stride, padding, dilation, True)
    gpu.run_function(expected.size, [to_device(gpu, x, dtype), out, indices, params])
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)
    np.testing.assert_array_equal(indices.contents.reshape(expected.shape), expected_indices)


@case("pytorch.max_pool_backward")
def max_pool_backward(gpu, kernel, dtype: str, window=(2, 2, 3), stride=(1, 1, 1), padding=(0, 1, 1),
                      dilation=(1, 1, 1)) -> None:
    """max_pool_backward_<T>: each output gradient added (atomically: overlapping windows share their maxima) to
    the input element its index names; half and bfloat through a compare-and-swap on the 32-bit word."""
    x = _distinct_values("float32")
    _, forward_indices = _max_pool_reference(x, window, stride, padding, dilation)
    rng = np.random.default_rng(RNG_SEED + 1)
    grad_out = round_to(rng.integers(-8, 9, size=forward_indices.shape) / 4.0, dtype)  # sums stay exact
    grad_in = to_device(gpu, np.zeros(x.size), dtype)
    out_strides = _strides(forward_indices.shape)
    params = _ints([5, 3], SHAPE, _strides(SHAPE), forward_indices.shape, out_strides, out_strides)
    gpu.run_function(grad_out.size, [grad_in, to_device(gpu, grad_out, dtype),
                                     gpu.array_to_buffer(forward_indices.reshape(-1)), params])
    expected = np.zeros((*SHAPE[:2], int(np.prod(SHAPE[2:]))))
    for (n, c, *_), index, g in zip(itertools.product(*map(range, grad_out.shape)), forward_indices.reshape(-1),
                                    grad_out.reshape(-1)):
        expected[n, c, index] += g
    check(from_device(grad_in, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


@case("pytorch.avg_pool")
def avg_pool(gpu, kernel, dtype: str, window=(2, 3, 3), stride=(2, 1, 2), padding=(1, 1, 1),
             count_include_pad: bool = False, divisor_override: int = 0) -> None:
    """avg_pool_<T>: the window's sum (in T) over its element count, with or without the padding, or a fixed
    divisor."""
    x = round_to(np.random.default_rng(RNG_SEED).uniform(-4, 4, size=SHAPE), dtype)
    pooled = SHAPE[2:]
    out_shape = [_out_size(n, k, s, p, 1) for n, k, s, p in zip(pooled, window, stride, padding)]
    expected = np.zeros((*SHAPE[:2], *out_shape))
    for n, c, *o in itertools.product(*map(range, expected.shape)):
        starts = [s * oi - p for oi, s, p in zip(o, stride, padding)]
        lows = [max(st, 0) for st in starts]
        highs = [min(st + k, size) for st, k, size in zip(starts, window, pooled)]
        block = x[n, c, lows[0]:highs[0], lows[1]:highs[1], lows[2]:highs[2]]
        if divisor_override:
            divisor = divisor_override
        elif count_include_pad:
            divisor = np.prod([min(st + k, size + p) - st for st, k, size, p in zip(starts, window, pooled, padding)])
        else:
            divisor = block.size
        expected[(n, c, *o)] = block.sum() / divisor
    out = to_device(gpu, np.zeros(expected.size), dtype)
    out_strides = _strides(expected.shape)
    # AvgPoolingParams<5>: dims, pooling_dims, four arrays of 5 and three of 3 int32, two bools, int32 divisor
    params = (_ints([5, 3], SHAPE, _strides(SHAPE), expected.shape, out_strides, window, stride, padding)
              + bytes([count_include_pad, divisor_override != 0, 0, 0]) + _ints([divisor_override]))
    gpu.run_function(expected.size, [to_device(gpu, x, dtype), out, params])
    check(from_device(out, dtype).reshape(expected.shape), expected, kernel.family, dtype, kernel.name)


# --- UpSample.metal ----------------------------------------------------------------------------------------------

def _cubic_weights(t: float, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution weights of the four taps around a point at fraction t past the second."""
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.array([far(t + 1), near(t), near(1 - t), far(2 - t)])


@case("pytorch.upsample_bicubic2d")
def upsample_bicubic2d(gpu, kernel, dtype: str, size=(2, 3, 5, 7), out_hw=(9, 11),
                       align_corners: bool = False) -> None:
    """upsample_bicubic2d_<T>: one thread an output pixel (x fastest), looping over batch and channels; source
    coordinates from the host's scales, taps clamped to the edges; sizes and strides as long4/ulong4 in (W, H, C, N)
    order. Each output sums 4 x 4 weighted taps (weights of both signs) in float: a convolution's tolerance."""
    n, c, h, w = size
    oh, ow = out_hw
    x = round_to(np.random.default_rng(RNG_SEED).uniform(-4, 4, size=size), dtype)
    if align_corners:
        scales = ((w - 1) / (ow - 1), (h - 1) / (oh - 1))
    else:
        scales = (w / ow, h / oh)
    scales = np.array(scales, np.float32)
    expected = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            source = [s * d if align_corners else s * (d + 0.5) - 0.5 for s, d in zip(scales.astype(np.float64),
                                                                                      (ox, oy))]
            ix, iy = int(np.floor(source[0])), int(np.floor(source[1]))
            wx, wy = _cubic_weights(source[0] - ix), _cubic_weights(source[1] - iy)
            cols = np.clip(np.arange(ix - 1, ix + 3), 0, w - 1)
            rows = np.clip(np.arange(iy - 1, iy + 3), 0, h - 1)
            patch = x[:, :, rows][:, :, :, cols]  # (n, c, 4, 4)
            expected[:, :, oy, ox] = np.einsum("ncij,i,j->nc", patch, wy, wx)
    out = to_device(gpu, np.zeros(expected.size), dtype)
    strides_in = np.array([1, w, h * w, c * h * w], np.uint64)
    strides_out = np.array([1, ow, oh * ow, c * oh * ow], np.uint64)
    gpu.run_function(oh * ow, [to_device(gpu, x, dtype), out, strides_in, strides_out,
                               np.array([w, h, c, n], np.int64), np.array([ow, oh, c, n], np.int64), scales,
                               align_corners])
    check(from_device(out, dtype).reshape(expected.shape), round_to(expected, dtype), kernel.family, dtype,
          kernel.name)
