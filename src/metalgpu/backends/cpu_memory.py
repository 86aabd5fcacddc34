"""Buffer memory of the CPU backend, placed so that a kernel reading or writing past a buffer's end faults (and the
fault guard reports a DispatchError) instead of reaching other memory.

- Each buffer has a mapping of its own whose data ends where a guard page begins. The start is 16-byte aligned
  (what Metal's vector types need), so the end lies within 15 bytes of the guard page: a write up to a page past
  the end faults, and one inside those few bytes of padding reaches nothing else. The guard page reads as zeros:
  production kernels read past the ends of their operands and discard what they read (MLX's steel GEMM,
  convolutions and quantised products load whole tiles at a matrix's edge), which Apple's GPUs allow; a read
  cannot harm other memory, a write could. A buffer whose size
  is a multiple of 64 starts on a cache line. With ``debug=True`` the end is exact and a second guard page
  precedes the data, so an access just before the start faults too, and the fault names the buffer.
- Mappings are a process-wide resource (``vm.max_map_count``, 65530 by default on Linux) that numpy, the loaded
  modules and the fiber stacks need too. A buffer with a guard page costs two (three in debug), so buffers may
  use half the limit. Beyond that, buffers of at most ``SLAB_ITEM_BYTES`` share slabs: one mapping of 1 MiB
  ending at a guard page, buffers packed at 64-byte alignment. An overrun of a buffer in a slab reaches its
  neighbours in the slab (never other memory of the process); Interface(debug=True) keeps a guard page for each
  buffer, up to its own share of the limit.
"""
from __future__ import annotations

import ctypes
import mmap
import threading
import warnings
import weakref

import numpy as np

from ..dispatch import Allocation
from ..errors import OutOfMemoryError

PAGE = mmap.PAGESIZE
START_ALIGNMENT = 16  # of a buffer with a guard page of its own (Metal's float4 and friends need 16)
SLAB_ALIGNMENT = 64
SLAB_BYTES = 1 << 20
SLAB_ITEM_BYTES = 64 * 1024  # larger buffers always get a mapping of their own
MAPPING_SHARE = 2  # buffers may use 1/MAPPING_SHARE of the process's mapping limit
HUGE_PAGE_THRESHOLD = 4 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _mapping_limit() -> int:
    try:
        with open("/proc/sys/vm/max_map_count") as limit:
            return int(limit.read())
    except (OSError, ValueError):
        return 65530


def _guarded_mapping(data_bytes: int, leading_guard: bool) -> tuple[mmap.mmap, int, int]:
    """An anonymous mapping of ``data_bytes`` (rounded up to pages) followed by a guard page, and preceded by an
    inaccessible one if ``leading_guard`` (debug). The trailing guard can be read (zeros) but not written, unless
    ``leading_guard``: then it is inaccessible. Returns the mapping, its address and the trailing guard's."""
    data_pages = -(-data_bytes // PAGE)
    lead = PAGE if leading_guard else 0
    try:
        # private, as numpy's memory: a forked child gets a copy, and huge pages apply (not to shared memory)
        mapping = mmap.mmap(-1, lead + (data_pages + 1) * PAGE, flags=mmap.MAP_PRIVATE)
    except OSError as error:  # ENOMEM: no memory, or no mapping left
        raise OutOfMemoryError(f"cannot map {data_bytes:,} bytes on the cpu backend: {error.strerror}") from None
    handle = ctypes.c_char.from_buffer(mapping)
    base = ctypes.addressof(handle)
    del handle  # an exported buffer would keep the mapping from ever closing
    end_guard = base + lead + data_pages * PAGE
    if data_bytes >= HUGE_PAGE_THRESHOLD and hasattr(mmap, "MADV_HUGEPAGE"):
        # as numpy does for its large arrays: with transparent huge pages "on request" (a common default), a
        # streaming kernel over 4 KiB pages spends much of its time on TLB misses
        mapping.madvise(mmap.MADV_HUGEPAGE, 0, lead + data_pages * PAGE)
    guards = ((base, 0), (end_guard, 0)) if leading_guard else ((end_guard, mmap.PROT_READ),)
    for guard, protection in guards:
        if _libc.mprotect(guard, PAGE, protection) != 0:
            raise OutOfMemoryError(f"cannot protect a guard page: errno {ctypes.get_errno()}")
    return mapping, base, end_guard


class PagedAllocation(Allocation):
    """A buffer with a mapping of its own, its data ending at a guard page (see the top of this file)."""

    __slots__ = ("host", "address", "nbytes", "base", "end_guard", "leading_guard", "mapping")

    def __init__(self, nbytes: int, debug: bool):
        padded = nbytes if debug else -(-nbytes // START_ALIGNMENT) * START_ALIGNMENT
        mapping, self.base, self.end_guard = _guarded_mapping(padded, leading_guard=debug)
        self.mapping = weakref.ref(mapping)
        self.leading_guard = debug
        self.address = self.end_guard - padded
        self.nbytes = nbytes
        # The view holds the mapping: it is unmapped when neither this nor any `contents` view refers to it.
        self.host = np.frombuffer(mapping, dtype=np.uint8, count=nbytes, offset=self.address - self.base)

    def locate(self, address: int) -> str | None:
        """Where a faulting address lies relative to this buffer, if in one of its guard pages."""
        if self.leading_guard and self.base <= address < self.base + PAGE:
            return f"{self.address - address} bytes before its start"
        if self.end_guard <= address < self.end_guard + PAGE:
            return f"{address - self.address - self.nbytes} bytes past its end ({self.nbytes} bytes)"
        return None

    def free(self) -> None:
        self.host = None


class SlabAllocation(Allocation):
    """A small buffer inside a shared slab (when buffers have used their share of the mapping limit)."""

    __slots__ = ("host", "address", "nbytes")

    def __init__(self, host: np.ndarray):
        self.host = host
        self.address = host.ctypes.data
        self.nbytes = host.size

    def locate(self, address: int) -> str | None:
        return None

    def free(self) -> None:
        self.host = None


class HostMemory:
    """Hands out the CPU backend's buffers: a guarded mapping each while the mapping budget lasts, else small
    buffers from shared slabs. One per process, as the mapping limit is."""

    def __init__(self):
        self._lock = threading.Lock()
        self._live_mappings = 0
        self.budget = _mapping_limit() // MAPPING_SHARE
        self._slab: mmap.mmap | None = None
        self._slab_used = 0
        self._warned = False

    def allocate(self, nbytes: int, debug: bool) -> Allocation:
        cost = 3 if debug else 2
        with self._lock:
            own = nbytes > SLAB_ITEM_BYTES or self._live_mappings + cost <= self.budget
            if own:
                self._live_mappings += cost
            else:
                return self._from_slab(nbytes)
        try:
            allocation = PagedAllocation(nbytes, debug)
        except BaseException:
            self._unmapped(cost)
            raise
        weakref.finalize(allocation.mapping(), self._unmapped, cost)  # when the mapping goes
        return allocation

    def _unmapped(self, cost: int) -> None:
        with self._lock:
            self._live_mappings -= cost

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # a parent's thread may have held it

    @property
    def live_mappings(self) -> int:
        return self._live_mappings

    def _from_slab(self, nbytes: int) -> SlabAllocation:
        if not self._warned:
            self._warned = True
            warnings.warn(f"metalgpu: the cpu backend's buffers use {self.budget:,} memory mappings; small buffers "
                          "now share guarded slabs, where an overrun reaches the neighbouring buffers instead of "
                          "faulting", RuntimeWarning, stacklevel=4)
        size = -(-nbytes // SLAB_ALIGNMENT) * SLAB_ALIGNMENT
        if self._slab is None or self._slab_used + size > SLAB_BYTES:
            # The old slab stays mapped while a buffer or view of it lives.
            self._slab, _, _ = _guarded_mapping(SLAB_BYTES, leading_guard=False)
            self._slab_used = 0
        offset = SLAB_BYTES - self._slab_used - size  # from the guard page down: the first item touches it
        self._slab_used += size
        return SlabAllocation(np.frombuffer(self._slab, dtype=np.uint8, count=nbytes, offset=offset))


HOST_MEMORY = HostMemory()
