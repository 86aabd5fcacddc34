"""Runtime cases of candle's random.metal: uniform and normal (Box-Muller) samples from its combined Tausworthe
and LCG generator (GPU Gems 3, ch. 37), dispatched as candle's call_random_* does (one thread per pair of outputs).

The generator is specified bit for bit by its definition (seeding with the golden-ratio constants, three
Tausworthe steps and an LCG step, 32-bit arithmetic), so the reference computes every thread's state exactly in
integers and the samples from it in float64; the tests also check the moments. Two races of candle's kernel are
allowed for: thread 0 stores the next seed while other threads may still load it (nothing orders them), so a
thread may have read the old seed, the stored one, or a word of each (two separate atomics); and the threads that
whole threadgroups add past the last pair write over their partners' outputs. Each output is accepted as any
store it may receive."""
from __future__ import annotations

import numpy as np

from .cases import case
from .harness import check, from_device, round_to, to_device

MASK32 = (1 << 32) - 1
PHI = (0x9E3779B97F4A7C15, 0xF39CC0605CEDC834, 0x1082276BF3A27251, 0xF86C6A11D0C18E95)
SEED_SCALE = 1099087573
SHIFTS = ((13, 19, 12), (2, 25, 4), (3, 11, 17))
FIRST_MASKS, NEXT_MASKS = (4294967294, 4294967288, 4294967280), (429496729, 4294967288, 429496280)


def _taus(z: np.ndarray, shifts, mask: int) -> np.ndarray:
    a, b, c = shifts
    mixed = (((z << a) & MASK32) ^ z) >> b
    return (((z & mask) << c) & MASK32) ^ mixed


def _lcg(z: np.ndarray) -> np.ndarray:
    return (1664525 * z + 1013904223) & MASK32


def _step(z: np.ndarray, masks) -> np.ndarray:
    """One combined step from a 32-bit seed: the xor of three Tausworthe generators and an LCG."""
    return _taus(z, SHIFTS[0], masks[0]) ^ _taus(z, SHIFTS[1], masks[1]) ^ _taus(z, SHIFTS[2], masks[2]) ^ _lcg(z)


def _as_state(z: np.ndarray) -> np.ndarray:
    """The float state: the 32-bit value rounded to float32, times 2^-32."""
    return z.astype(np.float32).astype(np.float64) * 2.0 ** -32


def _states(seed: int, threads: np.ndarray, count: int) -> list[np.ndarray]:
    """The first ``count`` values rand() returns in each thread (float64 holding float32 values)."""
    words = [(value * phi * SEED_SCALE) & MASK32 for value, phi in zip((seed, 0, 1, 1), PHI)]  # (s, tid, 1, 1)
    x = np.full(threads.shape, words[0], np.uint64)
    y = (threads.astype(np.uint64) * np.uint64(PHI[1] * SEED_SCALE & MASK32)) & np.uint64(MASK32)
    z, w = np.uint64(words[2]), np.uint64(words[3])
    # seed #1: each generator starts from its own word of the per-thread seed, with its own masks
    first = _taus(x, SHIFTS[0], FIRST_MASKS[0]) ^ _taus(y, SHIFTS[1], FIRST_MASKS[1])
    mixed = first ^ _taus(z, SHIFTS[2], FIRST_MASKS[2]) ^ _lcg(x) ^ y
    mixed = _step(mixed, NEXT_MASKS) ^ z
    mixed = _step(mixed, NEXT_MASKS) ^ w
    state = _as_state(_step(mixed, NEXT_MASKS))
    out = []
    for _ in range(count):
        out.append(state)
        # rand(): the state times 2^32 is float32(z) exactly, back to an integer seed for the next step
        state = _as_state(_step((state * 2.0 ** 32).astype(np.uint64), NEXT_MASKS))
    return out


def _seed_words(seed: int) -> np.ndarray:
    """The seed buffer as candle writes it: one little-endian u64 over the kernel's two 32-bit atomics."""
    return np.array([seed & MASK32, seed >> 32], np.uint32)


def _kernel_seed(words) -> int:
    return (int(words[0]) << 32) | int(words[1])  # the kernel reads word 0 as the high half


def _writes(kind: str, seed: int, size: int, grid: int, first: float, second: float) -> tuple[np.ndarray, ...]:
    """Every store the kernel makes when all threads read ``seed``: (output indices, values), and the seed thread
    0 stores. Each thread below ``size`` writes its first sample at its own index and its second at the mirrored
    one; the grid, rounded up to whole threadgroups, may hold more threads than pairs (candle's guard compares
    the thread with ``size``, not with the number of pairs), and those write over their partners' outputs."""
    threads = np.arange(min(grid, size))
    off = 1 - size % 2
    draws = _states(seed, threads, 3)
    if kind == "uniform":
        diff = abs(np.float32(first) - np.float32(second))
        direct = draws[0] * diff + first
        mirror = draws[1] * diff + first
        mirror[0] = draws[2][0] * diff + first  # thread 0 spent its second draw on the next seed
        stored = draws[1][0]
    else:
        radius = second * np.sqrt(-2.0 * np.log(draws[0]))
        # the angle as the kernel rounds it: float32(float32(2 pi) * u2)
        angle = (np.float32(2 * np.pi) * draws[1].astype(np.float32)).astype(np.float64)
        direct, mirror = radius * np.cos(angle) + first, radius * np.sin(angle) + first
        stored = draws[2][0]
    mirrored = size - off - threads
    keep = ((threads > 0) | (off == 1)) & (mirrored >= 0)
    return (np.concatenate([threads, mirrored[keep]]), np.concatenate([direct, mirror[keep]]),
            int(stored * 2.0 ** 32))


@case("candle.random")
def random(gpu, kernel, dtype: str, kind: str, first: float, second: float, size: int = 20001,
           seed: int = 0x0123456789ABCDEF) -> None:
    """rand_uniform_<t>(size, min, max, seed, out) and rand_normal_<t>(size, mean, stddev, seed, out)."""
    seed_buffer = to_device(gpu, _seed_words(seed), "uint32")
    out = to_device(gpu, np.zeros(size), dtype)
    threads = size // 2 + size % 2
    width = min(gpu.maxThreadsPerGroup(), threads)
    gpu.run_function(-(-threads // width) * width, [size, first, second, seed_buffer, out],
                     threads_per_threadgroup=width)
    actual = from_device(out, dtype)

    start = _kernel_seed(_seed_words(seed))
    grid = -(-threads // width) * width
    indices, samples, stored = _writes(kind, start, size, grid, first, second)
    stored_words = np.array([stored >> 32, stored & MASK32], np.uint32)
    assert np.array_equal(seed_buffer.read().view(np.uint32), stored_words), \
        f"{kernel.name}: next seed {seed_buffer.read()}, expected {stored_words}"
    # Any store may be the one that remains, from any seed a thread may have read: keep each output's nearest
    # candidate, then check it within the tolerance (every output must have one).
    for high, low in ((stored >> 32, stored & MASK32), (start >> 32, stored & MASK32), (stored >> 32, start & MASK32)):
        more_indices, more_samples, _ = _writes(kind, (high << 32) | low, size, grid, first, second)
        indices, samples = np.concatenate([indices, more_indices]), np.concatenate([samples, more_samples])
    samples = round_to(samples, dtype)
    order = np.argsort(-np.abs(samples - actual[indices]), kind="stable")  # the nearest is assigned last
    nearest = np.full(size, np.nan)
    nearest[indices[order]] = samples[order]
    assert not np.isnan(nearest).any(), f"{kernel.name}: outputs no thread writes"
    check(actual, nearest, kernel.family, dtype, kernel.name)

    mean, spread = ((first + second) / 2, abs(second - first) / np.sqrt(12)) if kind == "uniform" else \
        (first, second)
    assert abs(actual.mean() - mean) < 5 * spread / np.sqrt(size), f"{kernel.name}: mean {actual.mean()}"
    assert abs(actual.std() / spread - 1) < 0.05, f"{kernel.name}: standard deviation {actual.std()}"
    if kind == "uniform":
        assert first <= actual.min() and actual.max() <= second, f"{kernel.name}: values outside [min, max]"
