"""Buffer memory of the isolated cpu backend (Interface(isolate=True)): pages of one memory file (memfd) per
Interface, which this process and the sandboxed worker process both map, so that ``contents`` stays a zero-copy
numpy view of the memory the kernels write, and survives the worker: a worker that faults, times out or is ended
takes nothing with it, and the next one maps the same pages.

- A *segment* is a range of whole pages of the file. This process maps each segment once, read-write, with no guard
  pages (no kernel runs here); the worker maps it with the guard pages of cpu_memory.py's buffers: the data ends
  where a page that reads as zeros and faults on writes begins (debug=True: inaccessible, and one before the data
  too). A buffer gets a segment of its own, its data ending at the segment's end, while segments use less than a
  quarter of the process's mapping limit (the worker takes up to three mappings a segment); beyond that, buffers of
  at most SLAB_ITEM_BYTES share 1 MiB slab segments, as cpu_memory.py's do.
- Each segment's place in the file is new (offsets are never reused, so a worker's stale mapping can never see
  another buffer's data); when its last view goes, its pages are returned to the system (a hole is punched in the
  file) and the worker is told to unmap it.
- A child process forked from this one gets copy-on-write mappings of the file instead of shared ones: its writes
  stay in the child, as cpu_memory.py's private mappings behave (the child cannot dispatch on the parent's
  isolated Interface).
"""
from __future__ import annotations

import ctypes
import mmap
import os
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from ..dispatch import Allocation
from ..errors import OutOfMemoryError
from .cpu_memory import SLAB_ALIGNMENT, SLAB_BYTES, SLAB_ITEM_BYTES, START_ALIGNMENT

PAGE = mmap.PAGESIZE
MAPPING_SHARE = 4  # own segments may use 1/MAPPING_SHARE of the mapping limit (the worker maps each up to 3 times)
_FALLOC_PUNCH_HOLE = 0x01 | 0x02  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE
_MAP_FIXED = 0x10  # Linux's, on x86-64 and ARM64 (the mmap module does not name it)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int64]
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


@dataclass(frozen=True)
class Segment:
    """A range of the memory file, as the worker maps it."""

    id: int
    file_offset: int
    pages: int
    leading_guard: bool
    address: int  # where this process maps it


class SharedAllocation(Allocation):
    """A buffer in a segment: ``offset`` bytes after the segment's start (its own segment, or a slab)."""

    __slots__ = ("host", "address", "nbytes", "segment", "offset", "own_segment")

    def __init__(self, host: np.ndarray, segment: Segment, offset: int, own_segment: bool):
        self.host = host
        self.address = segment.address + offset
        self.nbytes = host.size
        self.segment = segment
        self.offset = offset
        self.own_segment = own_segment

    def locate(self, address: int) -> str | None:
        """Where ``address`` (this process's equivalent of a worker's faulting address) lies relative to this
        buffer, if in one of its segment's guard pages."""
        if not self.own_segment:
            return None
        end = self.segment.address + self.segment.pages * PAGE
        if self.segment.leading_guard and self.segment.address - PAGE <= address < self.segment.address:
            return f"{self.address - address} bytes before its start"
        if end <= address < end + PAGE:
            return f"{address - self.address - self.nbytes} bytes past its end ({self.nbytes} bytes)"
        return None

    def free(self) -> None:
        self.host = None


class SharedArena:
    """The memory file of one isolated Interface and the segments mapped from it."""

    def __init__(self):
        try:
            self.fd = os.memfd_create("metalgpu-isolated-buffers", os.MFD_CLOEXEC)
        except (AttributeError, OSError) as error:
            raise OutOfMemoryError(f"cannot create the shared memory file of an isolated Interface: {error}") \
                from None
        weakref.finalize(self, os.close, self.fd)  # once no segment refers to the arena any more
        # Reentrant: a mapping dropped while the lock is held (the slab replaced) releases its segment at once.
        self._lock = threading.RLock()
        self._file_bytes = 0
        self._next_id = 1  # segment 0 means "the constants of a run message" to the worker
        self.segments: dict[int, Segment] = {}  # live ones
        self._mappings: dict[int, weakref.ref] = {}
        self.unmapped: list[int] = []  # segments gone since the worker last heard, for it to unmap
        self.budget = _mapping_limit() // MAPPING_SHARE
        self._slab: tuple[mmap.mmap, Segment] | None = None
        self._slab_used = 0

    def allocate(self, nbytes: int, debug: bool) -> SharedAllocation:
        """A buffer of ``nbytes`` (cpu.py's allocate checks the memory available first)."""
        with self._lock:
            own = nbytes > SLAB_ITEM_BYTES or len(self.segments) < self.budget
            if not own:
                return self._from_slab(nbytes)
            padded = nbytes if debug else -(-nbytes // START_ALIGNMENT) * START_ALIGNMENT
            pages = max(1, -(-padded // PAGE))
            mapping, segment = self._new_segment(pages, leading_guard=debug)
        offset = pages * PAGE - padded  # the data ends at the segment's end, where the worker's guard page is
        host = np.frombuffer(mapping, dtype=np.uint8, count=nbytes, offset=offset)
        return SharedAllocation(host, segment, offset, own_segment=True)

    def _from_slab(self, nbytes: int) -> SharedAllocation:
        size = -(-nbytes // SLAB_ALIGNMENT) * SLAB_ALIGNMENT
        if self._slab is None or self._slab_used + size > SLAB_BYTES:
            self._slab = self._new_segment(SLAB_BYTES // PAGE, leading_guard=False)  # the old one lives on in views
            self._slab_used = 0
        mapping, segment = self._slab
        offset = SLAB_BYTES - self._slab_used - size  # from the guard page down: the first item touches it
        self._slab_used += size
        host = np.frombuffer(mapping, dtype=np.uint8, count=nbytes, offset=offset)
        return SharedAllocation(host, segment, offset, own_segment=False)

    def _new_segment(self, pages: int, leading_guard: bool) -> tuple[mmap.mmap, Segment]:
        """A new range at the end of the file, mapped here; called with the lock held."""
        length = pages * PAGE
        file_offset = self._file_bytes
        try:
            os.ftruncate(self.fd, file_offset + length)
            # An anonymous mmap object holds the addresses (and unmaps them when its last view goes) without
            # holding a descriptor of its own; the file's pages are then mapped over it.
            mapping = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE)
        except OSError as error:
            raise OutOfMemoryError(f"cannot map {length:,} bytes of shared memory on the cpu backend: "
                                   f"{error.strerror}") from None
        handle = ctypes.c_char.from_buffer(mapping)
        address = ctypes.addressof(handle)
        del handle  # an exported buffer would keep the mapping from ever closing
        if not self._map_file(address, length, file_offset, mmap.MAP_SHARED):
            raise OutOfMemoryError(f"cannot map {length:,} bytes of shared memory on the cpu backend: errno "
                                   f"{ctypes.get_errno()}")
        self._file_bytes += length
        segment = Segment(self._next_id, file_offset, pages, leading_guard, address)
        self._next_id += 1
        self.segments[segment.id] = segment
        self._mappings[segment.id] = weakref.ref(mapping)
        weakref.finalize(mapping, self._release, segment)
        return mapping, segment

    def _map_file(self, address: int, length: int, file_offset: int, sharing: int) -> bool:
        protection = mmap.PROT_READ | mmap.PROT_WRITE
        return _libc.mmap(address, length, protection, sharing | _MAP_FIXED, self.fd, file_offset) == address

    def _release(self, segment: Segment) -> None:
        """The segment's mapping is gone here: its pages go back to the system, and the worker is to unmap it."""
        _libc.fallocate(self.fd, _FALLOC_PUNCH_HOLE, segment.file_offset, segment.pages * PAGE)
        with self._lock:
            self.segments.pop(segment.id, None)
            self._mappings.pop(segment.id, None)
            self.unmapped.append(segment.id)

    def take_unmapped(self) -> list[int]:
        with self._lock:
            gone, self.unmapped = self.unmapped, []
        return gone

    def after_fork_in_child(self) -> None:
        """Every segment becomes a copy-on-write mapping of the file: the child's writes stay in the child."""
        self._lock = threading.RLock()
        for segment in list(self.segments.values()):
            self._map_file(segment.address, segment.pages * PAGE, segment.file_offset, mmap.MAP_PRIVATE)


def _mapping_limit() -> int:
    try:
        with open("/proc/sys/vm/max_map_count") as limit:
            return int(limit.read())
    except (OSError, ValueError):
        return 65530
