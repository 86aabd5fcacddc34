"""Every contract between C++ and Python, in one place: the emulation headers' folder and checksum, the records the
compiled module and the backends' native helpers share with Python (their fields, offsets and enum values), each
written once here and checked against the C++ compiler's own answer by tests/test_abi.py.

The backends import this module, never the translator; the translator's wrappers emit what it describes.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from ..dispatch import MAX_BINDINGS  # Metal's argument tables, which the C++ tables are sized by

INCLUDE_DIR = Path(__file__).resolve().parent / "include"  # `#include <metal_stdlib>` and metal/*.h


@lru_cache(maxsize=1)
def headers_checksum() -> str:
    """Changes whenever an emulation header changes, so modules built against old headers miss the cache.
    Names, sizes and modification times are enough (as for Python's own .pyc files) and cost no reading."""
    digest = hashlib.sha256()
    for folder in (INCLUDE_DIR, INCLUDE_DIR / "metal"):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_file():
                stat = entry.stat()
                digest.update(f"{folder.name}/{entry.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


# -- mg::binding_info (metal/_launch_common.h): one record per bound kernel parameter, every field an int32 --------

BINDING_FIELDS = ("param", "kind", "index", "elem_size", "is_const", "is_reference", "scalar_kind", "scalar_size",
                  "lanes")
BINDING_DTYPE = np.dtype([(name, np.int32) for name in BINDING_FIELDS])  # all int32: read_bindings reads rows
BINDING_KINDS = ("buffer", "threadgroup", "builtin")                        # mg::binding_kind, by value
SCALAR_KINDS = ("other", "signed", "unsigned", "float", "bool", "bfloat")  # mg::scalar_kind, by value


@dataclass(frozen=True)
class BindingInfo:
    """One bound kernel parameter, as the compiled module describes it (mg::binding_info)."""

    param: int          # position in the kernel's signature
    kind: str           # "buffer", "threadgroup" or "builtin"
    index: int          # [[buffer(i)]] / [[threadgroup(i)]] index
    elem_size: int      # sizeof what the pointer points at, or of the referenced value
    is_const: bool      # the kernel cannot write through it
    is_reference: bool  # `constant T& x` (one value) rather than `T* x` (an array)
    scalar_kind: str    # "signed", "unsigned", "float", "bfloat", "bool" or "other" (structs)
    scalar_size: int
    lanes: int


def read_bindings(raw: bytes, count: int) -> list[BindingInfo]:
    """The first ``count`` mg::binding_info records of ``raw`` (their bytes, as the module holds them)."""
    rows = np.frombuffer(raw, np.int32, count * len(BINDING_FIELDS)).reshape(count, len(BINDING_FIELDS)).tolist()
    return [BindingInfo(param, BINDING_KINDS[kind], index, elem_size, bool(is_const), bool(is_reference),
                        SCALAR_KINDS[scalar_kind], scalar_size, lanes)
            for param, kind, index, elem_size, is_const, is_reference, scalar_kind, scalar_size, lanes in rows]


# -- the CPU target: mg::dispatch_t (metal/_launch_cpu.h) and the statuses of mg::coop (metal/_fibers_cpu.h) ----------

CPU_DISPATCH_FIELDS = (("grid", 3), ("group", 3), ("groups", 3), ("threadgroup_bytes", MAX_BINDINGS))  # uint32 each


def cpu_dispatch_record(grid, group, groups, threadgroup_bytes) -> np.ndarray:
    """mg::dispatch_t as uint32s, its fields in CPU_DISPATCH_FIELDS' order."""
    return np.array((*grid, *group, *groups, *threadgroup_bytes), dtype=np.uint32)


STATUS_DEADLOCK = 1001  # mg::coop::status_deadlock: report = returned threads, threads, threadgroup x, y, z
STATUS_NO_STACK = 1002  # mg::coop::status_no_stack: no fiber stacks for a threadgroup


# -- the CUDA target: mg::launch_t<Slots, Threadgroups, ConstantBytes> (metal/_launch_cuda.h) --------------------------

INLINE_CONSTANT_BYTES = 1024  # the most bytes of small constant arguments a CUDA launch record carries
# (name, numpy type, count, alignment), in the struct's order. A count is a number or the template parameter that
# gives it: "slots", "threadgroups" (at least 1) or "constant_bytes" (at least 1).
LAUNCH_FIELDS = (
    ("slots", np.uint64, "slots", 8),  # void*: a device address, or an offset into `constants`
    ("slot_bytes", np.uint64, "slots", 8),
    ("grid", np.uint32, 3, 4),
    ("group", np.uint32, 3, 4),
    ("groups", np.uint32, 3, 4),
    ("inline_mask", np.uint32, 1, 4),
    ("groups_per_block", np.uint32, 1, 4),
    ("threadgroup_offset", np.uint32, "threadgroups", 4),
    ("constants", np.uint8, "constant_bytes", 16),  # alignas(16)
)
LAUNCH_ALIGNMENT = 16


@dataclass(frozen=True)
class CudaLaunchLayout:
    """One kernel's mg::launch_t: its template arguments, and where that puts each field (bytes). The module
    holds the three numbers of each kernel as ``mg_layout_<i>``, in this order."""

    slots: int
    threadgroups: int
    inline_slots: int = 0  # bit i: slot i may hold an inline constant (else it always holds a device address)

    @property
    def constant_bytes(self) -> int:
        """Room for inline constants: only where some slot may hold one."""
        return INLINE_CONSTANT_BYTES if self.inline_slots else 0

    def _count(self, count) -> int:
        if isinstance(count, int):
            return count
        return self.slots if count == "slots" else max(getattr(self, count), 1)

    @property
    def offsets(self) -> dict[str, int]:
        offsets, end = {}, 0
        for name, scalar, count, alignment in LAUNCH_FIELDS:
            offsets[name] = -(-end // alignment) * alignment
            end = offsets[name] + np.dtype(scalar).itemsize * self._count(count)
        return offsets

    @property
    def size(self) -> int:
        name, scalar, count, _ = LAUNCH_FIELDS[-1]
        end = self.offsets[name] + np.dtype(scalar).itemsize * self._count(count)
        return -(-end // LAUNCH_ALIGNMENT) * LAUNCH_ALIGNMENT

    @cached_property
    def dtype(self) -> np.dtype:
        """The record as a numpy structured type, at the header's offsets: made once per layout, as numpy builds a
        structured type more slowly than the rest of a launch is packed (and a plan with constant values is packed
        anew each time)."""
        offsets = self.offsets
        formats = [scalar if count == 1 else (scalar, self._count(count)) for _, scalar, count, _ in LAUNCH_FIELDS]
        return np.dtype({"names": [field[0] for field in LAUNCH_FIELDS], "formats": formats,
                         "offsets": list(offsets.values()), "itemsize": self.size})


# What a module compiled with bounds checks (debug=True on cuda, metal/_debug_cuda.h) holds beside its kernels:
# mg_debug_bytes, unsigned long long[32]: the bytes bound at each slot, then the launch's number;
# mg_debug_fault, long long[4]: the first out-of-bounds access (slot + 1, element, element count, launch number).
DEBUG_BYTES_COUNT = MAX_BINDINGS + 1
DEBUG_FAULT_FIELDS = ("slot_plus_one", "element", "count", "launch")


# -- backends/cuda_repeat.cpp: the launch of a plan as its compiled repeat path reads it, uint64 each ---------------

REPEAT_FIELDS = ("function", "stream", "params", "placed_at", "grid_x", "grid_y", "grid_z", "block_x", "block_y",
                 "block_z", "shared_bytes")


# -- backends/cpu_queue.cpp: the cpu backend's asynchronous queue and batches, uint64 each ---------------------------
# An entry is one dispatch as mg_parallel_run takes it (the kernel's mg_run_<i>, its slot array, its mg::dispatch_t,
# its threadgroups, threads and chunks, its timeout in milliseconds); a submission is an array of entries. Its
# status record is written by the queue: done once the state is 1, then the status (0, or what stopped it), which
# entry that was, its fault address, the nanoseconds it all ran, and the runner's report (8 values).
CPU_QUEUE_ENTRY_FIELDS = ("run", "slots", "record", "groups", "threads", "chunks", "timeout_ms")
CPU_QUEUE_STATUS_FIELDS = ("state", "status", "failed_index", "address", "nanoseconds",
                           *(f"report{i}" for i in range(8)))
STATUS_CANCELLED = 1006  # the dispatch never started: its queue was cancelled (Ctrl-C, exit) first
