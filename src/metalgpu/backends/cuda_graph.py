"""A batch on the CUDA backend as one CUDA graph: a kernel node per dispatch, each depending on the one before (the
order the stream would give them), instantiated once and found again by the kernels it runs.

GraphCache.submit decides, for each submission of a batch:
- its kernels in order (their CUfunction handles) are the key. A key not seen builds a graph, instantiates it and
  keeps it (``LIMIT`` graphs, the oldest destroyed first);
- a graph found runs again as it is when every node would get what it got last time: the same launch (a cached
  plan's, so the same buffers) or one with the same grid, block, shared memory and parameter bytes. The other
  nodes (changed scalar arguments, other buffers, another grid) are updated in place in the executable graph
  (cuGraphExecKernelNodeSetParams); a refused update builds the graph anew;
- then one cuGraphLaunch on the Interface's stream.

The driver's part is a GraphDriver, so the decisions run in tests with a stand-in (tests/test_cuda_graph.py). The
real one adds and sets nodes in compiled code (cuda_repeat.cpp's graph_chain and graph_set, through the versions of
cuGraphAddKernelNode and cuGraphExecKernelNodeSetParams that cuGetProcAddress gives for CUDA 12.0) once that is
built, and through cuda-bindings before. On sm_90 and later its edges are programmatic (cuGraphAddDependencies_v2 of
CUDA 12.3): the driver launches each kernel while the one before it ends, and the kernel waits for it in its first
instruction (mg::wait_for_predecessor), so a node costs less than a kernel launched after its predecessor is done;
the edges made through cuda-bindings are plain ones.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ..dispatch import name_batch_dispatch
from .cuda_module import CudaLaunch


class NodeRefused(Exception):
    """The driver refused a node: ``code`` (a CUresult) at node ``index``."""

    def __init__(self, code: Any, index: int):
        super().__init__(code, index)
        self.code, self.index = code, index


class GraphDriver(Protocol):
    def build(self, launches: Sequence[CudaLaunch]) -> tuple[Any, Any, np.ndarray]:
        """A graph of a kernel node per launch, chained, and its executable form: (graph, exec, node handles).
        Raises NodeRefused for a node the driver refuses, the backend's error for anything else."""

    def update(self, exec_: Any, nodes: np.ndarray, launches: Sequence[CudaLaunch], indices: Sequence[int]) -> bool:
        """Sets nodes ``indices`` of ``exec_`` from their launches; False where the driver refuses an update."""

    def launch(self, exec_: Any) -> None: ...

    def destroy(self, graph: Any, exec_: Any) -> None: ...

    def error(self, code: Any) -> Exception:
        """The backend's exception for a driver error ``code`` (a CUresult)."""


@dataclass
class PackedBatch:
    """A recorded batch as this module runs it (RecordedBatch.packed): its launches, its key, the device copies of
    constant arguments its launches point at (freed with the batch, see CudaBackend.submit_batch), its kernels'
    names and what its failure would say, and the count of host accesses its buffers were last placed for (-1:
    place them at every submission)."""

    launches: list[CudaLaunch]
    key: tuple[int, ...]
    device_constants: list = field(default_factory=list)
    kernel_names: list[str] = field(default_factory=list)
    what: str = "a batch"
    placed_at: int = -1


@dataclass
class _Graph:
    graph: Any
    exec_: Any
    nodes: np.ndarray
    launches: list[CudaLaunch]  # what each node got last: the exec runs with their parameters


class GraphCache:
    """The executable graphs of recent batches, by the kernels they run."""

    LIMIT = 16

    def __init__(self, driver: GraphDriver):
        self._driver = driver
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self.builds = self.updates = self.replays = 0  # what submit() decided, counted (benchmarks and tests)

    def submit(self, batch: PackedBatch) -> None:
        """Launches ``batch`` as a graph: the one kept for its kernels, updated where its launches differ, or a new
        one. A node the driver refuses raises the backend's error naming that dispatch (``batch.kernel_names``)."""
        graph = self._graphs.get(batch.key)
        if graph is not None:
            self._graphs.move_to_end(batch.key)
            if graph.launches is not batch.launches:
                changed = [i for i, (new, old) in enumerate(zip(batch.launches, graph.launches))
                           if not same_node(new, old)]
                if changed and not self._driver.update(graph.exec_, graph.nodes, batch.launches, changed):
                    self._forget(batch.key)
                    graph = None
                elif changed:
                    self.updates += 1
                if graph is not None:
                    graph.launches = batch.launches
        if graph is None:
            graph = self._build(batch)
        else:
            self.replays += 1
        self._driver.launch(graph.exec_)

    def _build(self, batch: PackedBatch) -> _Graph:
        try:
            handles = self._driver.build(batch.launches)
        except NodeRefused as refused:
            error = self._driver.error(refused.code)
            raise name_batch_dispatch(error, refused.index, batch.kernel_names[refused.index]) from None
        graph = _Graph(*handles, launches=batch.launches)
        while len(self._graphs) >= self.LIMIT:
            self._forget(next(iter(self._graphs)))
        self._graphs[batch.key] = graph
        self.builds += 1
        return graph

    def _forget(self, key: tuple) -> None:
        graph = self._graphs.pop(key)
        self._driver.destroy(graph.graph, graph.exec_)

    def clear(self) -> None:
        while self._graphs:
            self._forget(next(iter(self._graphs)))

    def __len__(self) -> int:
        return len(self._graphs)


def same_node(new: CudaLaunch, old: CudaLaunch) -> bool:
    """Whether a node set from ``old`` runs ``new`` as it is: the same kernel, grid, block and shared memory
    (REPEAT_FIELDS but the stream, the parameters' address and the placement) and the same parameter bytes."""
    if new is old:
        return True
    a, b = new.repeat_fields, old.repeat_fields
    return a[0] == b[0] and a[4:].tobytes() == b[4:].tobytes() and new.memory[0].tobytes() == old.memory[0].tobytes()


class DriverGraphs:
    """GraphDriver over the CUDA driver: ``driver`` (cuda-bindings' module), ``stream``, ``check(err, what)`` (the
    backend's, which raises), and ``compiled`` (cuda_repeat's extension, or a function giving it once built)."""

    def __init__(self, driver: Any, stream: Any, check: Callable[[Any, str], None], compiled: Callable[[], Any],
                 programmatic: bool = False):
        self._driver, self._stream, self._check = driver, stream, check
        self._compiled = compiled
        self._programmatic = programmatic  # the device launches dependents early (sm_90 and later)
        self._entry_points: tuple[int, int, int] | None = None

    def error(self, code: Any) -> Exception:
        try:
            self._check(code, "adding a kernel node to the batch's CUDA graph")
        except Exception as error:  # the backend's DispatchError (or OutOfMemoryError)
            return error
        return RuntimeError(f"the CUDA driver refused a kernel node without an error: {code}")

    def _compiled_calls(self):
        """(extension, cuGraphAddKernelNode, cuGraphExecKernelNodeSetParams, cuGraphAddDependencies_v2 or 0 for
        plain edges) in compiled code, or None."""
        extension = self._compiled()
        if extension is None:
            return None
        if self._entry_points is None:
            self._entry_points = (self._proc_address("cuGraphAddKernelNode", 12000),
                                  self._proc_address("cuGraphExecKernelNodeSetParams", 12000),
                                  self._proc_address("cuGraphAddDependencies", 12030) if self._programmatic else 0)
        if 0 in self._entry_points[:2]:
            return None
        return (extension, *self._entry_points)

    def _proc_address(self, name: str, version: int) -> int:
        """The driver's function of that CUDA version's signature (12.0: CUDA_KERNEL_NODE_PARAMS_v2; 12.3: edges
        with data), or 0."""
        try:
            result = self._driver.cuGetProcAddress(name.encode(), version, 0)
            return int(result[1]) if result[0] == self._driver.CUresult.CUDA_SUCCESS and result[1] else 0
        except (TypeError, ValueError, AttributeError):  # bindings that give it otherwise: cuda-bindings' calls
            return 0

    def build(self, launches: Sequence[CudaLaunch]) -> tuple[Any, Any, np.ndarray]:
        driver = self._driver
        err, graph = driver.cuGraphCreate(0)
        self._check(err, "creating a CUDA graph for a batch")
        try:
            nodes = self._add_nodes(graph, launches)
            err, exec_ = driver.cuGraphInstantiate(graph, 0)
            self._check(err, f"instantiating the CUDA graph of a batch of {len(launches)} dispatches")
        except BaseException:
            driver.cuGraphDestroy(graph)
            raise
        return graph, exec_, nodes

    def _add_nodes(self, graph: Any, launches: Sequence[CudaLaunch]) -> np.ndarray:
        nodes = np.zeros(len(launches), dtype=np.uint64)
        calls = self._compiled_calls()
        if calls is not None:
            extension, add, _, depend = calls
            addresses = np.array([launch.repeat_address for launch in launches], dtype=np.uint64)
            refused = extension.graph_chain(add, int(graph), addresses.ctypes.data, len(launches), nodes.ctypes.data,
                                            depend)
            if refused is not None:
                raise NodeRefused(self._driver.CUresult(refused[0]), refused[1])
            return nodes
        driver, previous = self._driver, []
        for index, launch in enumerate(launches):
            err, node = driver.cuGraphAddKernelNode(graph, previous, len(previous), self._params(launch))
            if err != driver.CUresult.CUDA_SUCCESS:
                raise NodeRefused(err, index)
            nodes[index], previous = int(node), [node]
        return nodes

    def _params(self, launch: CudaLaunch):
        arguments = launch.arguments  # cuLaunchKernel's: function, grid x y z, block x y z, shared, stream, params
        params = self._driver.CUDA_KERNEL_NODE_PARAMS()
        params.func = arguments[0]
        params.gridDimX, params.gridDimY, params.gridDimZ = arguments[1:4]
        params.blockDimX, params.blockDimY, params.blockDimZ = arguments[4:7]
        params.sharedMemBytes = arguments[7]
        params.kernelParams = arguments[9]
        return params

    def update(self, exec_: Any, nodes: np.ndarray, launches: Sequence[CudaLaunch], indices: Sequence[int]) -> bool:
        calls = self._compiled_calls()
        if calls is not None:
            extension, _, set_node, _ = calls
            addresses = np.array([launch.repeat_address for launch in launches], dtype=np.uint64)
            chosen = np.array(indices, dtype=np.uint64)
            return extension.graph_set(set_node, int(exec_), nodes.ctypes.data, addresses.ctypes.data,
                                       chosen.ctypes.data, len(chosen)) is None
        driver = self._driver
        for index in indices:
            node = driver.CUgraphNode(int(nodes[index]))
            err, = driver.cuGraphExecKernelNodeSetParams(exec_, node, self._params(launches[index]))
            if err != driver.CUresult.CUDA_SUCCESS:
                return False
        return True

    def launch(self, exec_: Any) -> None:
        self._check(self._driver.cuGraphLaunch(exec_, self._stream)[0], "launching a batch's CUDA graph")

    def destroy(self, graph: Any, exec_: Any) -> None:
        # An executable graph still running is freed by the driver once it is done.
        self._driver.cuGraphExecDestroy(exec_)
        self._driver.cuGraphDestroy(graph)
