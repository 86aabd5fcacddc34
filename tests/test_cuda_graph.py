"""The CUDA backend's asynchronous dispatches and batches without a GPU: the decisions of its graph cache
(backends/cuda_graph.py: build, replay, update in place, rebuild), the kernel nodes the compiled helpers add and
set, the compiled asynchronous repeat (cuda_repeat.cpp's submit), and how CudaBackend numbers asynchronous
dispatches and waits for them without events, all over stand-ins for the driver. On a GPU, tests/test_batches.py
and tests/test_async_ordering.py run on cuda too, and test_compiled_submit_on_the_gpu below checks the real path."""
from __future__ import annotations

import ctypes
import itertools
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import metalgpu
from metalgpu.backends import cuda_repeat
from metalgpu.backends.cuda_graph import DriverGraphs, GraphCache, NodeRefused, PackedBatch, same_node
from metalgpu.backends.cuda_module import NEVER, CudaLaunch
from metalgpu.cache import CompileCache
from metalgpu.dispatch import BatchEntry, PlanCache, RecordedBatch, build_plan
from metalgpu.msl.abi import BindingInfo

HAS_HEADERS = (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()


def launch(function: int, record: bytes, grid=(4, 1, 1), block=(256, 1, 1), shared=0, placed=0) -> CudaLaunch:
    """A CudaLaunch as pack_launch makes one: ``record`` is its kernel parameter (the launch record's bytes)."""
    memory = np.frombuffer(record, dtype=np.uint8).copy()
    params = (ctypes.c_void_p * 1)(memory.ctypes.data)
    arguments = (function, *grid, *block, shared, 0x5, ctypes.addressof(params), 0)
    fields = np.array([function, 0x5, arguments[9], placed, *grid, *block, shared], dtype=np.uint64)
    return CudaLaunch(arguments, [], (memory, params), fields)


class FakeGraphs:
    """A GraphDriver that records what GraphCache asks of it."""

    def __init__(self):
        self.calls, self.refuse_update, self.refuse_node = [], False, None
        self.made = 0

    def build(self, launches):
        if self.refuse_node is not None:
            raise NodeRefused("CUDA_ERROR_INVALID_VALUE", self.refuse_node)
        self.made += 1
        self.calls.append(("build", len(launches)))
        return f"graph{self.made}", f"exec{self.made}", np.arange(len(launches), dtype=np.uint64)

    def update(self, exec_, nodes, launches, indices):
        self.calls.append(("update", exec_, list(indices)))
        return not self.refuse_update

    def launch(self, exec_):
        self.calls.append(("launch", exec_))

    def destroy(self, graph, exec_):
        self.calls.append(("destroy", exec_))

    def error(self, code):
        return metalgpu.DispatchError(f"the driver said {code}")


def packed(*launches, names=None) -> PackedBatch:
    """A batch of ``launches``, its kernels named ``names`` (each "k" when not given)."""
    return PackedBatch(list(launches), tuple(int(item.repeat_fields[0]) for item in launches),
                       kernel_names=list(names or ["k"] * len(launches)))


def test_a_batch_is_built_once_then_replayed():
    driver = FakeGraphs()
    cache = GraphCache(driver)
    a, b = launch(0xA, b"a" * 16), launch(0xB, b"b" * 16)
    batch = packed(a, b, names=["ka", "kb"])
    cache.submit(batch)
    cache.submit(batch)  # replay(): the same launches
    cache.submit(packed(a, b, names=["ka", "kb"]))  # recorded again with cached plans: the same launch objects
    assert driver.calls == [("build", 2), ("launch", "exec1"), ("launch", "exec1"), ("launch", "exec1")]
    assert (cache.builds, cache.replays, cache.updates) == (1, 2, 0)


def test_only_the_nodes_that_changed_are_updated():
    driver = FakeGraphs()
    cache = GraphCache(driver)
    cache.submit(packed(launch(0xA, b"k=1"), launch(0xB, b"x"), launch(0xA, b"k=2"), names=["a", "b", "a"]))
    # a new plan with the same values (its own launch object): left as it is; other values: updated in place
    cache.submit(packed(launch(0xA, b"k=1"), launch(0xB, b"x"), launch(0xA, b"k=3"), names=["a", "b", "a"]))
    cache.submit(packed(launch(0xA, b"k=1", grid=(8, 1, 1)), launch(0xB, b"x"), launch(0xA, b"k=3"),
                        names=["a", "b", "a"]))
    assert driver.calls[2:] == [("update", "exec1", [2]), ("launch", "exec1"), ("update", "exec1", [0]),
                                ("launch", "exec1")]
    assert (cache.builds, cache.updates) == (1, 2)


def test_other_kernels_build_another_graph_and_the_oldest_goes():
    driver = FakeGraphs()
    cache = GraphCache(driver)
    cache.LIMIT = 2
    for function in (0xA, 0xB, 0xA, 0xC):
        cache.submit(packed(launch(function, b"r"), names=["k"]))
    # 0xA and 0xB built, 0xA replayed (now the newest), 0xC built: 0xB, the oldest, is destroyed
    assert [call for call in driver.calls if call[0] != "launch"] == [("build", 1), ("build", 1), ("build", 1),
                                                                      ("destroy", "exec2")]
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0 and driver.calls[-2:] == [("destroy", "exec1"), ("destroy", "exec3")]


def test_a_refused_update_builds_the_graph_anew():
    driver = FakeGraphs()
    cache = GraphCache(driver)
    cache.submit(packed(launch(0xA, b"1"), names=["k"]))
    driver.refuse_update = True
    cache.submit(packed(launch(0xA, b"2"), names=["k"]))
    assert driver.calls[2:] == [("update", "exec1", [0]), ("destroy", "exec1"), ("build", 1), ("launch", "exec2")]


def test_a_refused_node_names_its_dispatch():
    driver = FakeGraphs()
    driver.refuse_node = 1
    with pytest.raises(metalgpu.DispatchError, match="batch dispatch 1 \\(kernel 'b'\\): the driver said") as caught:
        GraphCache(driver).submit(packed(launch(0xA, b"1"), launch(0xB, b"2"), names=["a", "b"]))
    assert caught.value.batch_index == 1


def test_same_node_compares_kernel_sizes_and_parameters_not_placement_or_address():
    a = launch(0xA, b"abc", placed=3)
    assert same_node(launch(0xA, b"abc", placed=NEVER), a)
    assert not same_node(launch(0xB, b"abc"), a)
    assert not same_node(launch(0xA, b"abd"), a)
    assert not same_node(launch(0xA, b"abc", block=(128, 1, 1)), a)
    assert not same_node(launch(0xA, b"abc", shared=16), a)


# -- the compiled helpers, with ctypes stand-ins for the driver's functions ------------------------------------

class KernelNodeParams(ctypes.Structure):  # CUDA_KERNEL_NODE_PARAMS_v2
    _fields_ = [("func", ctypes.c_void_p), ("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3),
                ("shared", ctypes.c_uint), ("kernel_params", ctypes.c_void_p), ("extra", ctypes.c_void_p),
                ("kernel", ctypes.c_void_p), ("context", ctypes.c_void_p)]


ADD_NODE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p,
                            ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.POINTER(KernelNodeParams))
SET_NODE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(KernelNodeParams))


class GraphEdgeData(ctypes.Structure):  # CUgraphEdgeData
    _fields_ = [("from_port", ctypes.c_ubyte), ("to_port", ctypes.c_ubyte), ("type", ctypes.c_ubyte),
                ("reserved", ctypes.c_ubyte * 5)]


ADD_DEPENDENCIES = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                    ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(GraphEdgeData), ctypes.c_size_t)
LAUNCH = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, *([ctypes.c_uint] * 7), ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.c_void_p)


def node_fields(params) -> tuple:
    p = params.contents
    return p.func, tuple(p.grid), tuple(p.block), p.shared, p.kernel_params, p.extra, p.kernel, p.context


class FakeNodes:
    """cuGraphAddKernelNode and cuGraphExecKernelNodeSetParams that record their calls."""

    def __init__(self):
        self.calls, self.code, self.next_node = [], 0, 0x100

    def _add(self, node, graph, dependencies, count, params):
        self.calls.append(("add", graph, [dependencies[i] for i in range(count)], node_fields(params)))
        node[0] = self.next_node
        self.next_node += 1
        return self.code

    def _set(self, exec_, node, params):
        self.calls.append(("set", exec_, node, node_fields(params)))
        return self.code

    def _depend(self, graph, sources, targets, edges, count):
        self.calls.append(("depend", graph, [(sources[i], targets[i], edges[i].from_port, edges[i].to_port,
                                              edges[i].type) for i in range(count)]))
        return self.code

    def functions(self):
        self.add, self.set = ADD_NODE(self._add), SET_NODE(self._set)
        self.depend = ADD_DEPENDENCIES(self._depend)
        return tuple(ctypes.cast(f, ctypes.c_void_p).value for f in (self.add, self.set, self.depend))


@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    if not HAS_HEADERS:
        pytest.skip("Python's C headers are not installed: the compiled helpers are not built here")
    cuda_repeat.start(CompileCache(tmp_path_factory.mktemp("cache")))
    assert cuda_repeat.wait(300), cuda_repeat.failure
    return cuda_repeat.extension


class GraphDriverCalls:
    """The driver module's graph calls as DriverGraphs makes them (cuda-bindings' return conventions)."""

    def __init__(self, nodes: FakeNodes):
        self.nodes, self.calls = nodes, []
        self.CUresult = SimpleNamespace(CUDA_SUCCESS=0)
        self.addresses = nodes.functions()

    def cuGetProcAddress(self, name, version, flags):
        return 0, {(b"cuGraphAddKernelNode", 12000): self.addresses[0],
                   (b"cuGraphExecKernelNodeSetParams", 12000): self.addresses[1],
                   (b"cuGraphAddDependencies", 12030): self.addresses[2]}[name, version], 0

    def cuGraphCreate(self, flags):
        return 0, 0x6000

    def cuGraphInstantiate(self, graph, flags):
        self.calls.append(("instantiate", graph))
        return 0, 0x7000

    def cuGraphLaunch(self, exec_, stream):
        self.calls.append(("launch", exec_, stream))
        return (0,)

    def cuGraphExecDestroy(self, exec_):
        self.calls.append(("destroy exec", exec_))

    def cuGraphDestroy(self, graph):
        self.calls.append(("destroy graph", graph))


def test_compiled_nodes_are_chained_and_set_from_their_launches(extension):
    nodes = FakeNodes()
    driver = GraphDriverCalls(nodes)
    driver.CUresult = lambda code: f"code {code}"
    driver.CUresult.CUDA_SUCCESS = 0
    graphs = DriverGraphs(driver, 0x5, lambda err, what: None, lambda: extension)
    launches = [launch(0xA, b"first", grid=(3, 2, 1), block=(64, 2, 1), shared=32), launch(0xB, b"second")]
    graph, exec_, handles = graphs.build(launches)
    assert (graph, exec_, handles.tolist()) == (0x6000, 0x7000, [0x100, 0x101])
    first, second = (launch_.arguments[9] for launch_ in launches)
    assert nodes.calls == [("add", 0x6000, [], (0xA, (3, 2, 1), (64, 2, 1), 32, first, None, None, None)),
                           ("add", 0x6000, [0x100], (0xB, (4, 1, 1), (256, 1, 1), 0, second, None, None, None))]
    changed = [launches[0], launch(0xB, b"third", grid=(9, 1, 1))]
    nodes.calls.clear()
    assert graphs.update(exec_, handles, changed, [1])
    assert nodes.calls == [("set", 0x7000, 0x101, (0xB, (9, 1, 1), (256, 1, 1), 0, changed[1].arguments[9], None,
                                                   None, None))]
    nodes.code = 1
    assert not graphs.update(exec_, handles, changed, [0, 1])  # refused: the cache builds anew
    with pytest.raises(NodeRefused) as refused:
        graphs.build(launches)
    assert (refused.value.code, refused.value.index) == ("code 1", 0)
    graphs.launch(exec_)
    graphs.destroy(graph, exec_)
    assert driver.calls[-3:] == [("launch", 0x7000, 0x5), ("destroy exec", 0x7000), ("destroy graph", 0x6000)]


def test_compiled_nodes_get_programmatic_edges_where_the_device_launches_dependents_early(extension):
    """On sm_90 and later each node is added alone, then joined to the one before by an edge from its programmatic
    port (the kernel waits for its predecessor in its first instruction)."""
    nodes = FakeNodes()
    driver = GraphDriverCalls(nodes)
    driver.CUresult = lambda code: f"code {code}"
    driver.CUresult.CUDA_SUCCESS = 0
    graphs = DriverGraphs(driver, 0x5, lambda err, what: None, lambda: extension, programmatic=True)
    launches = [launch(0xA, b"first"), launch(0xB, b"second"), launch(0xC, b"third")]
    _, _, handles = graphs.build(launches)
    assert handles.tolist() == [0x100, 0x101, 0x102]
    assert [call[:3] for call in nodes.calls] == [("add", 0x6000, []), ("add", 0x6000, []),
                                                  ("depend", 0x6000, [(0x100, 0x101, 1, 0, 1)]),
                                                  ("add", 0x6000, []), ("depend", 0x6000, [(0x101, 0x102, 1, 0, 1)])]
    nodes.calls.clear()
    nodes.code = 2
    with pytest.raises(NodeRefused) as refused:
        graphs.build(launches)
    assert (refused.value.code, refused.value.index) == ("code 2", 0)


def test_nodes_through_cuda_bindings_before_the_compiled_helpers_are_built():
    bindings = pytest.importorskip("cuda.bindings.driver")
    added, updates = [], []

    class Driver(GraphDriverCalls):
        CUDA_KERNEL_NODE_PARAMS = bindings.CUDA_KERNEL_NODE_PARAMS
        CUgraphNode = bindings.CUgraphNode

        def cuGraphAddKernelNode(self, graph, dependencies, count, params):
            added.append(([int(node) for node in dependencies], count, params.gridDimX, params.blockDimX,
                          params.sharedMemBytes, params.kernelParams))
            return 0, bindings.CUgraphNode(0x200 + len(added))

        def cuGraphExecKernelNodeSetParams(self, exec_, node, params):
            updates.append((int(node), params.gridDimX))
            return (0,)

    driver = Driver(FakeNodes())
    graphs = DriverGraphs(driver, 0x5, lambda err, what: None, lambda: None)
    launches = [launch(bindings.CUfunction(0xA), b"one", grid=(5, 1, 1), shared=16),
                launch(bindings.CUfunction(0xB), b"two")]
    _, _, handles = graphs.build(launches)
    assert handles.tolist() == [0x201, 0x202]
    assert added == [([], 0, 5, 256, 16, launches[0].arguments[9]), ([0x201], 1, 4, 256, 0, launches[1].arguments[9])]
    assert graphs.update(0x7000, handles, [launches[0], launch(bindings.CUfunction(0xB), b"x", grid=(7, 1, 1))], [1])
    assert updates == [(0x202, 7)]


# -- the compiled asynchronous repeat (cuda_repeat.cpp's submit) ------------------------------------------------

class Buffer:
    def __init__(self):
        self._pending_box = [None]


@pytest.mark.parametrize("bound", [False, True], ids=["submit", "bind_submit"])
def test_compiled_submit_launches_without_waiting_and_marks_the_buffers(extension, bound):
    launches = []
    launch_function = LAUNCH(lambda *args: launches.append(args) or 0)
    address = ctypes.cast(launch_function, ctypes.c_void_p).value
    accesses = np.array([3], dtype=np.uint64)
    function, a, b = object(), Buffer(), Buffer()
    item = launch(0xF00, b"record", placed=3)
    plan = SimpleNamespace(packed=SimpleNamespace(repeat_address=item.repeat_address), kernel_name="k")
    plans = {PlanCache.key(function, 64, None, None, [a, None, b]): plan}
    backend, numbers = object(), itertools.count(7)

    class Made(metalgpu.Dispatch):
        def __init__(self):
            raise AssertionError("made without __init__")

    def on_error(failed, code, waited):
        raise metalgpu.DispatchError(f"{failed.kernel_name}: {code}, waited {waited}")

    def submit(buffers, grid=64):  # as the backend calls it: its leading arguments bound, or all given
        leading = (on_error, address, accesses.ctypes.data, Made, backend, numbers)
        if bound:
            return extension.bind_submit(*leading)(plans, function, grid, buffers)
        return extension.submit(*leading, plans, function, grid, buffers)

    first = submit([a, None, b])
    assert type(first) is Made and (first._backend, first.kernel_name, first._number) == (backend, "k", 7)
    assert len(launches) == 1 and launches[0][0] == 0xF00
    assert a._pending_box == [first] and b._pending_box == [first]
    second = submit((a, None, b))
    assert second._number == 8 and a._pending_box == [second]
    assert submit([b, None, a]) is None and submit([a, None, b], grid=65) is None  # not cached: the Python path
    accesses[0] = 4  # the host touched a buffer since the plan was placed
    assert submit([a, None, b]) is None
    assert len(launches) == 2
    accesses[0] = 3
    failing = LAUNCH(lambda *args: 700)
    address = ctypes.cast(failing, ctypes.c_void_p).value
    with pytest.raises(metalgpu.DispatchError, match="k: 700, waited 0"):
        submit([a, None, b])
    assert a._pending_box == [second] and next(numbers) == 9  # a launch that failed marks and numbers nothing


# -- CudaBackend: numbers instead of events, and batches ----------------------------------------------------------

class Driver:
    """The driver calls of CudaBackend's asynchronous paths, recorded; memory is host memory."""

    CUresult = SimpleNamespace(CUDA_SUCCESS=0, CUDA_ERROR_NOT_READY=600)
    CUmemLocationType = SimpleNamespace(CU_MEM_LOCATION_TYPE_DEVICE="device", CU_MEM_LOCATION_TYPE_HOST="host")
    CUmem_advise = SimpleNamespace(**{name: name for name in (
        "CU_MEM_ADVISE_SET_PREFERRED_LOCATION", "CU_MEM_ADVISE_SET_ACCESSED_BY",
        "CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION", "CU_MEM_ADVISE_UNSET_ACCESSED_BY")})
    CUmemAttach_flags = SimpleNamespace(CU_MEM_ATTACH_GLOBAL=SimpleNamespace(value=1))

    class CUmemLocation:
        type = id = None

    def __init__(self):
        self.calls, self.memory, self.idle = [], [], True

    def _record(self, name, *args):
        self.calls.append(name)
        return (0,)

    def cuLaunchKernel(self, *args):
        return self._record("launch")

    def cuStreamSynchronize(self, stream):
        return self._record("sync")

    def cuStreamQuery(self, stream):
        self.calls.append("query")
        return (0 if self.idle else 600,)

    def cuEventCreate(self, flags):
        return 0, f"event{len(self.calls)}"

    def cuEventRecord(self, event, stream):
        return self._record("event")

    def cuEventQuery(self, event):
        return self._record("event query")

    def cuEventSynchronize(self, event):
        return self._record("event sync")

    def cuEventElapsedTime(self, start, end):
        return 0, 1.5

    def cuMemPrefetchAsync(self, address, nbytes, location, flags, stream):
        return self._record("prefetch")

    def cuMemAdvise(self, address, nbytes, advice, location):
        return self._record("advise")

    def cuMemAllocManaged(self, nbytes, flags):
        self.memory.append(np.zeros(nbytes, dtype=np.uint8))
        return 0, self.memory[-1].ctypes.data

    def cuMemGetInfo(self):
        return 0, 1 << 30, 1 << 30


class Kernel:
    """A kernel as build_plan sees it: out (device uint*, slot 0), k (constant uint&, slot 1)."""

    name, max_threads, preferred_threads, absent_slots = "k", 1024, 256, frozenset()
    bindings = [BindingInfo(0, "buffer", 0, 4, False, False, "unsigned", 4, 1),
                BindingInfo(1, "buffer", 1, 4, True, True, "unsigned", 4, 1)]

    def describe_param(self, binding) -> str:
        return f"parameter {binding.param}"


def _backend():
    """A CudaBackend over Driver, with what its constructor would have set up, and its graphs recorded."""
    from metalgpu.backends.cuda import CudaBackend
    from metalgpu.backends.cuda_memory import Placement
    from metalgpu.msl.abi import CudaLaunchLayout

    backend = object.__new__(CudaBackend)
    driver = Driver()
    backend.driver, backend.poisoned, backend.stream, backend.debug = driver, None, 0x5, False
    backend._launch_kernel, backend._synchronize_stream = driver.cuLaunchKernel, driver.cuStreamSynchronize
    backend.compiled_repeat = backend.compiled_submit = backend._entry_points = None
    backend.resident_threads = 1 << 20
    backend._events, backend._spare_events, backend._unchecked, backend._launches = [], [], [], 0
    backend._numbers, backend._completed, backend.tracking = itertools.count(1), 0, False
    backend.placement = Placement(backend, 0)
    backend.graphs = GraphCache(FakeGraphs())
    module = SimpleNamespace(functions={0: 0xF00}, launch_layouts={0: CudaLaunchLayout(2, 0, inline_slots=0b10)},
                             groups_per_block={0: 1}, static_shared={0: 0}, debug_bytes=None)
    return backend, driver, module


def _calls(driver) -> list[str]:
    calls, driver.calls[:] = list(driver.calls), []
    return calls


def test_asynchronous_dispatches_record_no_events_and_a_wait_synchronises_once():
    backend, driver, module = _backend()
    out = backend.allocate(4 * 1024, "shared")
    first = backend.launch(module, 0, build_plan(Kernel(), [out, 1], 1024, None, None, 32 * 1024), False)
    second = backend.launch(module, 0, build_plan(Kernel(), [out, 2], 1024, None, None, 32 * 1024), False)
    assert _calls(driver) == ["prefetch", "launch", "launch"]  # placed once; no event, no wait
    second.wait()
    assert _calls(driver) == ["sync"]
    first.wait()
    second.wait()
    assert _calls(driver) == []  # known done: numbered below what the synchronisation covered
    third = backend.launch(module, 0, build_plan(Kernel(), [out, 3], 1024, None, None, 32 * 1024), False)
    backend.synchronize()
    third.wait()
    assert _calls(driver) == ["launch", "sync"]


def test_asking_done_or_gpu_time_turns_events_on():
    backend, driver, module = _backend()
    out = backend.allocate(4 * 1024, "shared")
    backend.compiled_submit = "the compiled path"
    first = backend.launch(module, 0, build_plan(Kernel(), [out, 1], 1024, None, None, 32 * 1024), False)
    driver.idle = False
    assert not first.done and first.gpu_time is None
    assert backend.tracking and backend.compiled_submit is None  # events from now on, so the Python path
    driver.idle = True
    assert first.done
    _calls(driver)
    second = backend.launch(module, 0, build_plan(Kernel(), [out, 2], 1024, None, None, 32 * 1024), False)
    assert _calls(driver) == ["event", "launch", "event"]
    assert second.gpu_time == 1.5e-3
    second.wait()
    assert _calls(driver) == ["event query", "event sync"]


def test_a_batch_is_placed_once_and_launched_as_one_graph():
    backend, driver, module = _backend()
    out = backend.allocate(4 * 1024, "shared")
    plans = [build_plan(Kernel(), [out, k], 1024, None, None, 32 * 1024) for k in (1, 2)]
    batch = RecordedBatch([BatchEntry(i, module, 0, plan) for i, plan in enumerate(plans)])
    dispatch = backend.submit_batch(batch, wait=True)
    assert _calls(driver) == ["prefetch", "sync"]  # the buffer moved to the device once; the graph; the wait
    assert backend.graphs._driver.calls == [("build", 2), ("launch", "exec1")]
    assert dispatch.done and isinstance(batch.packed, PackedBatch)
    backend.submit_batch(batch, wait=False)
    assert _calls(driver) == [] and backend.graphs.replays == 1


def test_compiled_submit_on_the_gpu():
    """A loop of asynchronous dispatches on a GPU: after the first, they take the compiled path, with no events;
    reading done turns events on and sends them to the Python path."""
    try:
        gpu = metalgpu.Interface("cuda")
    except metalgpu.BackendUnavailableError as error:
        pytest.skip(f"no GPU here: {error}")
    assert cuda_repeat.wait(120), cuda_repeat.failure
    gpu.load_shader_from_str("#include <metal_stdlib>\nusing namespace metal;\n"
                             "kernel void add_one(device int* a [[buffer(0)]], uint i [[thread_position_in_grid]]) "
                             "{ a[i] += 1; }")
    gpu.set_function("add_one")
    data = gpu.array_to_buffer(np.zeros(1000, dtype=np.int32))
    backend = gpu._backend
    python_launches = []
    launch_ = backend.launch
    backend.launch = lambda *args: python_launches.append(1) or launch_(*args)
    handles = [gpu.run_function(1000, [data], wait_for_completion=False) for _ in range(20)]
    assert len(python_launches) <= 2 and backend.compiled_submit is not None
    np.testing.assert_array_equal(data.contents, 20)
    assert all(handle.done for handle in handles)  # turns events on
    assert backend.tracking and backend.compiled_submit is None
    timed = gpu.run_function(1000, [data], wait_for_completion=False)
    timed.wait()
    assert timed.gpu_time is not None and timed.gpu_time > 0
    np.testing.assert_array_equal(data.contents, 21)
    gpu.close()


@pytest.mark.parametrize("check_bounds", [False, True], ids=["plain", "bounds-checked"])
@pytest.mark.parametrize("module", ["test_batches", "test_async_ordering"])
def test_the_kernels_of_the_batch_and_ordering_tests_compile_for_cuda(module, check_bounds):
    """What those tests run on a GPU compiles with NVRTC here (debug=True compiles the bounds checks in)."""
    pytest.importorskip("cuda.bindings.nvrtc", reason="NVRTC is not installed (pip install 'metalgpu[cuda]')")
    import importlib

    from metalgpu.backends.base import CompileOptions
    from metalgpu.backends.nvrtc import nvrtc_compile
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess
    from metalgpu.msl.translate import translate

    pre = preprocess(importlib.import_module(module).SOURCE, f"<{module}>", ())
    translation = translate(pre, parse(pre.tokens, pre.sources), "cuda", check_bounds=check_bounds)
    cubin = nvrtc_compile(translation.source, CompileOptions(), "sm_90")
    assert cubin[:4] == b"\x7fELF"
    for i in translation.selected:
        assert f"mg_run_{i}".encode() in cubin
