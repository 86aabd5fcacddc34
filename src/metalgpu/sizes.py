"""Grid and threadgroup sizes: ``MetalSize``, and what a dispatch's sizes become (three positive ints each, and the
default threadgroup when none is given)."""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from .errors import ArgumentError


@dataclass(frozen=True)
class MetalSize:
    """A 3-D size, as Metal's ``MTLSize``: a grid or a threadgroup size for :meth:`Interface.run_function`.

    Height and depth default to 1 (the original metalgpu required all three). An int ``n`` or a tuple works
    wherever a MetalSize does; each component must be a positive int (checked when it is used, with
    :class:`ArgumentError`).

    Example:
        >>> import metalgpu
        >>> size = metalgpu.MetalSize(640, 480)
        >>> tuple(size)
        (640, 480, 1)
        >>> size.width * size.height
        307200
    """

    width: int
    height: int = 1
    depth: int = 1

    def __iter__(self):
        return iter((self.width, self.height, self.depth))


def normalize_size(value: Any, what: str) -> tuple[int, int, int]:
    """An int, a 1-3 tuple or a MetalSize as (x, y, z), every component a positive integer."""
    if type(value) is int and 0 < value <= 0xFFFFFFFF:  # the common case, kept cheap
        return value, 1, 1
    if isinstance(value, MetalSize):
        parts = tuple(value)
    elif isinstance(value, numbers.Integral):
        parts = (value,)
    elif isinstance(value, (tuple, list)) and 1 <= len(value) <= 3:
        parts = tuple(value)
    else:
        raise ArgumentError(f"{what} must be an int, a tuple of 1 to 3 ints or a MetalSize, not {value!r}")
    for part in parts:
        if not isinstance(part, numbers.Integral) or isinstance(part, bool):
            raise ArgumentError(f"{what} must hold integers, got {value!r}")
        if part < 1:
            raise ArgumentError(f"{what} must be at least 1 in every dimension, got {value!r}")
        if part > 0xFFFFFFFF:
            raise ArgumentError(f"{what} {value!r} exceeds 2**32 - 1 in one dimension")
    x, y, z = (tuple(int(p) for p in parts) + (1, 1))[:3]
    return x, y, z


def default_threadgroup(grid: tuple[int, int, int], max_threads: int) -> tuple[int, int, int]:
    """Fill x first (rows stay contiguous), then y, then z, up to ``max_threads``."""
    x = min(grid[0], max_threads)
    y = min(grid[1], max(1, max_threads // x))
    z = min(grid[2], max(1, max_threads // (x * y)))
    return x, y, z
