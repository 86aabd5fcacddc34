"""Where the CUDA backend's buffers live. Shared buffers are managed memory, placed by how they are used (the
hints never decide correctness: managed memory stays coherent):

- a buffer the GPU uses in two dispatches in a row, with no host access between them, lives on the GPU: it is
  prefetched once, and never again while the host leaves it alone (even a prefetch of resident memory has a fixed
  cost);
- a buffer the host touches between every two dispatches (numpy writes, kernel, numpy reads, again) stays in host
  memory and the GPU reaches it over the bus: the kernel's own reads and writes there cost about what two explicit
  pinned copies do, where migrating the pages back and forth costs several times more (benchmarks/README.md);
- a kernel that re-reads a host-kept buffer would crawl over the bus: a dispatch that takes longer than moving its
  host-kept buffers there and back would have (Placement.keep_on_device_if_slow) sends them to the GPU for good.

Private buffers are device memory (cuMemAlloc) and never move.
"""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

import numpy as np

from .base import Allocation

if TYPE_CHECKING:
    from .cuda import CudaBackend


class ManagedAllocation(Allocation):
    """Managed (or, for private buffers, device) memory with its placement state:

    - ``on_host``: the host may have touched it since the GPU last did;
    - ``touched_before_last_launch``: it was so at the last dispatch that used it too;
    - ``remote``: it is advised to stay in host memory, mapped for the GPU;
    - ``keep_on_device``: never again: a dispatch with it in host memory took longer than moving it would have.

    Every numpy view of it keeps this object alive (through the view's base), so memory that Python still sees is
    never freed by the garbage collector; only an explicit release() frees it while views exist."""

    def __init__(self, backend: "CudaBackend", nbytes: int, managed: bool):
        driver = backend.driver
        self._backend = backend
        if managed:
            err, pointer = driver.cuMemAllocManaged(nbytes, driver.CUmemAttach_flags.CU_MEM_ATTACH_GLOBAL.value)
        else:
            err, pointer = driver.cuMemAlloc(nbytes)
        backend.check(err, f"allocating {nbytes:,} bytes")
        # A new buffer reads zero, as on the other backends: the driver hands out memory that freed buffers held.
        if managed:
            ctypes.memset(int(pointer), 0, nbytes)  # on the host, where a shared buffer starts (on_host below)
        else:
            backend.check(driver.cuMemsetD8Async(pointer, 0, nbytes, backend.stream)[0], "zeroing a new buffer")
        self.address = int(pointer)
        self.nbytes = nbytes
        self.managed = managed
        self.on_host = managed
        self.touched_before_last_launch = False
        self.remote = False
        self.keep_on_device = False

    @property
    def host(self) -> np.ndarray | None:
        if not self.managed or not self.address:
            return None
        return np.asarray(_HostView(self))

    def free(self) -> None:
        if self.address:
            self._backend.free(self)
            self.address = 0

    def __del__(self):
        try:
            self.free()
        except Exception:
            pass  # at interpreter exit, or after the context failed


class _HostView:
    """The bytes of a managed allocation as numpy sees them, holding the allocation while a view exists."""

    def __init__(self, allocation: ManagedAllocation):
        self.owner = allocation
        self.__array_interface__ = {"shape": (allocation.nbytes,), "typestr": "|u1",
                                    "data": (allocation.address, False), "version": 3}


class Placement:
    """The rule of this module's docstring, for one backend's device and stream."""

    # The cost of moving a buffer to the GPU and back: the bandwidths of a prefetch there and of a migration back, and
    # what a prefetch costs whatever its size (benchmarks/README.md, "Figures behind the code").
    MIGRATION_SECONDS_PER_BYTE = 1 / 43e9 + 1 / 8e9
    MIGRATION_SECONDS_EACH = 2 * 45e-6

    def __init__(self, backend: "CudaBackend", device: int):
        driver = self._driver = backend.driver
        self._backend = backend
        self._device = driver.CUmemLocation()
        self._device.type = driver.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        self._device.id = device
        self._host = driver.CUmemLocation()
        self._host.type = driver.CUmemLocationType.CU_MEM_LOCATION_TYPE_HOST
        # CUDA 13's bindings take memory locations in these two; CUDA 12's (12.2 and later) in their _v2 forms.
        self._prefetch = getattr(driver, "cuMemPrefetchAsync_v2", driver.cuMemPrefetchAsync)
        self._advise = getattr(driver, "cuMemAdvise_v2", driver.cuMemAdvise)
        self.host_accesses = 0  # host_access() calls so far: a plan placed since none came needs no placing
        self.host_accesses_cell = np.zeros(1, dtype=np.uint64)  # the same count, where compiled code reads it

    def host_access(self, allocation: ManagedAllocation) -> None:
        """Before the host reads or writes a shared buffer (its dispatches already waited for): GPU-resident pages
        come back in one prefetch rather than by page faults."""
        if not allocation.managed:
            return
        self.host_accesses += 1
        self.host_accesses_cell[0] = self.host_accesses
        if not allocation.on_host and not allocation.remote:
            stream = self._backend.stream
            self._prefetch(allocation.address, allocation.nbytes, self._host, 0, stream)
            self._backend.check(self._driver.cuStreamSynchronize(stream)[0], "bringing a buffer to the host")
        allocation.on_host = True

    def place_all(self, allocations: list[ManagedAllocation]) -> tuple[list[ManagedAllocation] | None, int]:
        """Before a dispatch: place the buffers it binds (``allocations``) that the host touched or that live in host
        memory. Returns those that stay there (None if none), and the count of host accesses the placement holds
        for: until another host access, a dispatch of the same buffers needs no placing (-1 while some stay in host
        memory, which every dispatch places again)."""
        remote = None
        for allocation in allocations:
            if (allocation.on_host or allocation.remote) and self.place(allocation):
                remote = [allocation] if remote is None else remote + [allocation]
        return remote, -1 if remote else self.host_accesses

    def place(self, allocation: ManagedAllocation) -> bool:
        """Before a dispatch, for a buffer the host touched since the last one or one kept in host memory: where
        it should be while the kernel runs. Returns whether it stays in host memory."""
        advise = self._driver.CUmem_advise
        touched = allocation.on_host
        stay_on_host = touched and allocation.touched_before_last_launch and not allocation.keep_on_device
        if stay_on_host != allocation.remote:
            address, nbytes = allocation.address, allocation.nbytes
            if stay_on_host:
                self._advise(address, nbytes, advise.CU_MEM_ADVISE_SET_PREFERRED_LOCATION, self._host)
                self._advise(address, nbytes, advise.CU_MEM_ADVISE_SET_ACCESSED_BY, self._device)
            else:
                self._advise(address, nbytes, advise.CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION, self._host)
                self._advise(address, nbytes, advise.CU_MEM_ADVISE_UNSET_ACCESSED_BY, self._device)
        if not stay_on_host:  # touched by the host, or coming back from host memory
            self._prefetch(allocation.address, allocation.nbytes, self._device, 0, self._backend.stream)
        allocation.remote = stay_on_host
        allocation.touched_before_last_launch = touched
        allocation.on_host = False
        return stay_on_host

    def keep_on_device_if_slow(self, allocations: list[ManagedAllocation], seconds: float) -> None:
        """After a dispatch that reached host-kept buffers over the bus: if it ran longer than moving them to the GPU
        and back would have taken, the kernel re-reads them (a matrix product, say), and they stay on the GPU from
        now on. So the rule costs at most one slow dispatch per buffer."""
        moving = sum(a.nbytes * self.MIGRATION_SECONDS_PER_BYTE + self.MIGRATION_SECONDS_EACH for a in allocations)
        if seconds > moving:
            for allocation in allocations:
                allocation.keep_on_device = True
