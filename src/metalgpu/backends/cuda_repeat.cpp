// The repeat of a CUDA dispatch, and the kernel nodes of a batch's CUDA graph, in compiled code (built and loaded by
// backends/cuda_repeat.py).
//
// A loop of run_function calls spends most of its host time in Python: finding the cached plan, checking it and
// calling the driver through cuda-bindings cost about as much as the launch itself (benchmarks/README.md). This
// does the same steps for the case that dominates, a dispatch that repeats a cached plan: it finds the plan in the
// Interface's plan cache (dispatch.PlanCache), checks that nothing has changed since the plan last went through the
// Python path, and calls cuLaunchKernel, then cuStreamSynchronize (repeat) or nothing (submit: an asynchronous
// dispatch, ordered after the others by the stream). Anything else answers False or None, and the Python path
// (interface.py, backends/cuda.py) does the whole work, as it does when this is not built.
//
// graph_chain and graph_set add and update the kernel nodes of a batch's CUDA graph (backends/cuda_graph.py): a
// thousand driver calls through cuda-bindings would cost milliseconds in Python.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>

namespace {

using launch_fn = int (*)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**,
                          void**);
using sync_fn = int (*)(void*);

// CUDA_KERNEL_NODE_PARAMS_v2 (cuda.h), which cuGraphAddKernelNode and cuGraphExecKernelNodeSetParams take in the
// versions cuda_graph.py asks cuGetProcAddress for (CUDA 12.0's).
struct KernelNodeParams {
  void* func;
  unsigned grid[3];
  unsigned block[3];
  unsigned shared_bytes;
  void** kernel_params;
  void** extra;
  void* kernel;
  void* context;
};
static_assert(sizeof(KernelNodeParams) == 72, "CUDA_KERNEL_NODE_PARAMS_v2 is 72 bytes");
using add_node_fn = int (*)(void** node, void* graph, void* const* dependencies, size_t count,
                            const KernelNodeParams* params);
using set_node_fn = int (*)(void* exec, void* node, const KernelNodeParams* params);
// CUgraphEdgeData (cuda.h, CUDA 12.3), which cuGraphAddDependencies_v2 takes: a programmatic edge lets the driver
// launch the kernel it leads to before the one it leaves has finished; that kernel waits in its first instruction
// (mg::wait_for_predecessor in metal/_launch_cuda.h).
struct GraphEdgeData {
  unsigned char from_port;  // CU_GRAPH_KERNEL_NODE_PORT_PROGRAMMATIC: 1
  unsigned char to_port;
  unsigned char type;       // CU_GRAPH_DEPENDENCY_TYPE_PROGRAMMATIC: 1
  unsigned char reserved[5];
};
static_assert(sizeof(GraphEdgeData) == 8, "CUgraphEdgeData is 8 bytes");
using add_dependencies_fn = int (*)(void* graph, void* const* from, void* const* to, const GraphEdgeData* edges,
                                    size_t count);

// The uint64 fields of a plan's launch (backends/cuda_module.py, CudaLaunch.repeat_fields; msl/abi.py's
// REPEAT_FIELDS): what cuLaunchKernel takes, and the count of host accesses when the plan's buffers were last
// placed. The backend writes a count that never matches while the plan must take the Python path (debug checks,
// buffers kept in host memory, constants in device memory).
enum Field { kFunction, kStream, kParams, kPlacedAt, kGrid, kBlock = kGrid + 3, kShared = kBlock + 3, kFieldCount };

PyObject* packed_name = nullptr;          // LaunchPlan.packed: the backend's launch of the plan
PyObject* repeat_address_name = nullptr;  // CudaLaunch.repeat_address: where its repeat_fields are
PyObject* pending_box_name = nullptr;     // Buffer._pending_box: the last asynchronous dispatch of its memory
PyObject* kernel_name_name = nullptr;     // LaunchPlan.kernel_name, and Dispatch.kernel_name
PyObject* backend_name = nullptr;         // _CudaDispatch._backend
PyObject* number_name = nullptr;          // _CudaDispatch._number

// dispatch.PlanCache.key(function, grid, None, None, buffers): the key of a dispatch with default sizes. A new
// reference, nullptr with an exception set, or nullptr without one when `buffers` cannot make a key.
PyObject* plan_key(PyObject* function, PyObject* grid, PyObject* buffers) {
  if (!PyList_CheckExact(buffers) && !PyTuple_CheckExact(buffers)) return nullptr;
  const Py_ssize_t count = PySequence_Fast_GET_SIZE(buffers);
  PyObject* key = PyTuple_New(4 + count);
  if (key == nullptr) return nullptr;
  if (PySequence_Fast_GET_SIZE(buffers) != count) {  // a finalizer run by the allocation changed the list
    Py_DECREF(key);
    return nullptr;
  }
  PyObject** items = PySequence_Fast_ITEMS(buffers);  // read after the allocation, which may have moved them
  PyObject* head[4] = {function, grid, Py_None, Py_None};
  for (int i = 0; i < 4; ++i) {
    Py_INCREF(head[i]);
    PyTuple_SET_ITEM(key, i, head[i]);
  }
  for (Py_ssize_t i = 0; i < count; ++i) {
    PyObject* id = PyLong_FromVoidPtr(items[i]);
    if (id == nullptr) {
      Py_DECREF(key);
      return nullptr;
    }
    PyTuple_SET_ITEM(key, 4 + i, id);
  }
  return key;
}

// plan_key(function, grid, buffers) -> tuple or None: the key repeat() looks plans up by (for tests).
PyObject* plan_key_py(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "plan_key() takes 3 arguments");
    return nullptr;
  }
  PyObject* key = plan_key(args[0], args[1], args[2]);
  if (key == nullptr && !PyErr_Occurred()) Py_RETURN_NONE;
  return key;
}

// The address of a plan's repeat_fields, nullptr without an exception where it has none yet (packed is None).
const uint64_t* repeat_fields(PyObject* plan) {
  PyObject* packed = PyObject_GetAttr(plan, packed_name);
  if (packed == nullptr) return nullptr;
  if (packed == Py_None) {
    Py_DECREF(packed);
    return nullptr;
  }
  PyObject* address = PyObject_GetAttr(packed, repeat_address_name);
  Py_DECREF(packed);
  if (address == nullptr) return nullptr;
  const auto* fields = static_cast<const uint64_t*>(PyLong_AsVoidPtr(address));
  Py_DECREF(address);
  return fields;
}

// The memo of the last plan found (dispatch.PlanCache.memo, uint64): whether it holds, the function it was found
// for (its address), the grid (its values: an int, or a tuple of 1 to 3 ints), the buffers (their addresses) and
// the plan (its address). PlanCache clears kMemoValid whenever its table changes, so a plan the memo names is still
// in the table, which keeps it and the function alive, and a Buffer that dies first drops its plans (and so the
// memo): a dispatch of the last one's objects skips building a key and looking it up. The grid is compared by
// value, as the key is: an int equal to the last one may be another object, and a dead one's address is reused.
enum Memo {
  kMemoValid, kMemoFunction, kMemoGridCount, kMemoGrid, kMemoCount = kMemoGrid + 3, kMemoPlan, kMemoBuffers,
  kMemoMaxBuffers = 8, kMemoWords = kMemoBuffers + kMemoMaxBuffers
};

uint64_t address_of(PyObject* object) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(object)); }

// A grid's values as the memo keeps them: how many (1 for an int, 1 to 3 for a tuple of ints), 0 for any other grid.
int grid_values(PyObject* grid, uint64_t (&values)[3]) {
  PyObject* const* items = &grid;
  Py_ssize_t count = 1;
  if (PyTuple_CheckExact(grid)) {
    count = PyTuple_GET_SIZE(grid);
    if (count < 1 || count > 3) return 0;
    items = PySequence_Fast_ITEMS(grid);
  }
  for (Py_ssize_t i = 0; i < count; ++i) {
    if (!PyLong_CheckExact(items[i])) return 0;
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(items[i], &overflow);
    if (overflow != 0 || (value == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      return 0;
    }
    values[i] = static_cast<uint64_t>(value);
  }
  return static_cast<int>(count);
}

// The plan the memo names for this dispatch (a borrowed reference), or nullptr.
PyObject* memo_plan(const uint64_t* memo, PyObject* function, PyObject* grid, PyObject* buffers) {
  if (memo[kMemoValid] != 1 || memo[kMemoFunction] != address_of(function)) return nullptr;
  if (!PyList_CheckExact(buffers) && !PyTuple_CheckExact(buffers)) return nullptr;
  const Py_ssize_t count = PySequence_Fast_GET_SIZE(buffers);
  if (memo[kMemoCount] != static_cast<uint64_t>(count)) return nullptr;
  PyObject** items = PySequence_Fast_ITEMS(buffers);
  for (Py_ssize_t i = 0; i < count; ++i)
    if (memo[kMemoBuffers + i] != address_of(items[i])) return nullptr;
  uint64_t values[3];
  const int values_count = grid_values(grid, values);
  if (values_count == 0 || memo[kMemoGridCount] != static_cast<uint64_t>(values_count)) return nullptr;
  for (int i = 0; i < values_count; ++i)
    if (memo[kMemoGrid + i] != values[i]) return nullptr;
  return reinterpret_cast<PyObject*>(static_cast<uintptr_t>(memo[kMemoPlan]));
}

void remember_plan(uint64_t* memo, PyObject* function, PyObject* grid, PyObject* buffers, PyObject* plan) {
  const Py_ssize_t count = PySequence_Fast_GET_SIZE(buffers);  // find_plan made a key of it: a list or a tuple
  uint64_t values[3] = {0, 0, 0};
  const int values_count = grid_values(grid, values);
  if (count > kMemoMaxBuffers || values_count == 0) return;
  memo[kMemoValid] = 0;
  PyObject** items = PySequence_Fast_ITEMS(buffers);
  for (Py_ssize_t i = 0; i < count; ++i) memo[kMemoBuffers + i] = address_of(items[i]);
  for (int i = 0; i < 3; ++i) memo[kMemoGrid + i] = values[i];
  memo[kMemoGridCount] = static_cast<uint64_t>(values_count);
  memo[kMemoFunction] = address_of(function);
  memo[kMemoCount] = static_cast<uint64_t>(count);
  memo[kMemoPlan] = address_of(plan);
  memo[kMemoValid] = 1;
}

// The cached plan of a dispatch that may take the compiled path, and its launch's fields: a new reference, or nullptr
// (with an exception set on an error, without one where the Python path must do the dispatch).
//   plans: the Interface's PlanCache.compiled_state, (table, address of memo), or the table alone
//   function, grid, buffers: the dispatch
//   host_accesses: address of the backend's uint64 count of host accesses (a plan placed at another is declined)
PyObject* find_plan(PyObject* plans, PyObject* function, PyObject* grid, PyObject* buffers, PyObject* host_accesses,
                    const uint64_t** fields) {
  uint64_t* memo = nullptr;
  if (PyTuple_CheckExact(plans) && PyTuple_GET_SIZE(plans) == 2) {
    memo = static_cast<uint64_t*>(PyLong_AsVoidPtr(PyTuple_GET_ITEM(plans, 1)));
    if (memo == nullptr) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a null memo address");
      return nullptr;
    }
    plans = PyTuple_GET_ITEM(plans, 0);
  }
  if (!PyDict_CheckExact(plans)) {
    PyErr_SetString(PyExc_TypeError, "the plan cache must be a dict");
    return nullptr;
  }
  // Held from here on: the launch reads memory the plan owns, and another thread may drop it from the cache.
  PyObject* plan = memo == nullptr ? nullptr : memo_plan(memo, function, grid, buffers);
  if (plan != nullptr) {
    Py_INCREF(plan);
  } else {
    PyObject* key = plan_key(function, grid, buffers);
    if (key == nullptr) return nullptr;
    plan = PyDict_GetItemWithError(plans, key);
    Py_XINCREF(plan);
    Py_DECREF(key);
    if (plan == nullptr) {
      if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_TypeError))
        PyErr_Clear();  // an unhashable grid, such as a list: the Python path reports or handles it
      return nullptr;
    }
    if (memo != nullptr) remember_plan(memo, function, grid, buffers, plan);
  }
  const uint64_t* record = repeat_fields(plan);
  const auto* accesses = record == nullptr ? nullptr : static_cast<const uint64_t*>(PyLong_AsVoidPtr(host_accesses));
  if (accesses == nullptr || record[kPlacedAt] != *accesses) {
    Py_DECREF(plan);
    return nullptr;
  }
  *fields = record;
  return plan;
}

// Raises the backend's error for a driver error `code` (on_error(plan, code, waited) raises it); steals `plan`.
PyObject* raise_driver_error(PyObject* on_error, PyObject* plan, int code, int waited) {
  PyObject* result = PyObject_CallFunction(on_error, "Oii", plan, code, waited);
  Py_DECREF(plan);
  if (result == nullptr) return nullptr;
  Py_DECREF(result);
  PyErr_SetString(PyExc_RuntimeError, "on_error returned instead of raising");
  return nullptr;
}

int launch_fields(launch_fn launch, const uint64_t* record) {
  return launch(reinterpret_cast<void*>(record[kFunction]), unsigned(record[kGrid]), unsigned(record[kGrid + 1]),
                unsigned(record[kGrid + 2]), unsigned(record[kBlock]), unsigned(record[kBlock + 1]),
                unsigned(record[kBlock + 2]), unsigned(record[kShared]), reinterpret_cast<void*>(record[kStream]),
                reinterpret_cast<void**>(record[kParams]), nullptr);
}

// repeat(on_error, launch, sync, host_accesses, plans, function, grid, buffers) -> bool
//   on_error(plan, code, waited): raises the DispatchError of a driver error
//   launch, sync: addresses of cuLaunchKernel and cuStreamSynchronize
//   host_accesses, plans, function, grid, buffers: as find_plan takes them
PyObject* repeat(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 8) {
    PyErr_SetString(PyExc_TypeError, "repeat() takes 8 arguments");
    return nullptr;
  }
  const uint64_t* record = nullptr;
  PyObject* plan = find_plan(args[4], args[5], args[6], args[7], args[3], &record);
  if (plan == nullptr) {
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_FALSE;
  }
  const auto launch = reinterpret_cast<launch_fn>(PyLong_AsVoidPtr(args[1]));
  const auto sync = reinterpret_cast<sync_fn>(PyLong_AsVoidPtr(args[2]));
  if (launch == nullptr || sync == nullptr) {
    Py_DECREF(plan);
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "repeat(): no driver entry points");
    return nullptr;
  }
  int code, waited = 0;
  Py_BEGIN_ALLOW_THREADS
  code = launch_fields(launch, record);
  if (code == 0) {
    waited = 1;
    code = sync(reinterpret_cast<void*>(record[kStream]));
  }
  Py_END_ALLOW_THREADS
  if (code != 0) return raise_driver_error(args[0], plan, code, waited);
  Py_DECREF(plan);
  Py_RETURN_TRUE;
}

// The handle of a dispatch the compiled path launched, as backends/cuda.py's _numbered makes it: an instance of
// `type` made without __init__ (its class gives the defaults), with _backend, kernel_name and _number (the next of
// `numbers`, an itertools.count: its number in launch order) set. A new reference, or nullptr with an exception.
PyObject* numbered_dispatch(PyObject* type, PyObject* backend, PyObject* numbers, PyObject* plan) {
  if (!PyType_Check(type)) {
    PyErr_SetString(PyExc_TypeError, "submit(): the dispatch type must be a class");
    return nullptr;
  }
  PyObject* dispatch = reinterpret_cast<PyTypeObject*>(type)->tp_alloc(reinterpret_cast<PyTypeObject*>(type), 0);
  if (dispatch == nullptr) return nullptr;
  PyObject* name = PyObject_GetAttr(plan, kernel_name_name);
  PyObject* number = name == nullptr ? nullptr : PyIter_Next(numbers);
  const bool ok = number != nullptr && PyObject_SetAttr(dispatch, backend_name, backend) == 0 &&
                  PyObject_SetAttr(dispatch, kernel_name_name, name) == 0 &&
                  PyObject_SetAttr(dispatch, number_name, number) == 0;
  Py_XDECREF(name);
  Py_XDECREF(number);
  if (!ok) {
    Py_DECREF(dispatch);
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "submit(): no dispatch number");
    return nullptr;
  }
  return dispatch;
}

// submit(on_error, launch, host_accesses, dispatch_type, backend, numbers, plans, function, grid, buffers)
//   -> Dispatch or None
//   the asynchronous repeat: launches without waiting, makes the dispatch's handle after the launch (numbered in
//   launch order, numbered_dispatch) and marks each Buffer of `buffers` pending on it, as Interface._dispatch
//   does. None: the Python path must do it.
PyObject* submit(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 10) {
    PyErr_SetString(PyExc_TypeError, "submit() takes 10 arguments");
    return nullptr;
  }
  const uint64_t* record = nullptr;
  PyObject* plan = find_plan(args[6], args[7], args[8], args[9], args[2], &record);
  if (plan == nullptr) {
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_NONE;
  }
  const auto launch = reinterpret_cast<launch_fn>(PyLong_AsVoidPtr(args[1]));
  if (launch == nullptr) {
    Py_DECREF(plan);
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "submit(): no driver entry point");
    return nullptr;
  }
  int code;
  // Released: the launch blocks while the driver's queue of pending launches is full.
  Py_BEGIN_ALLOW_THREADS
  code = launch_fields(launch, record);
  Py_END_ALLOW_THREADS
  if (code != 0) return raise_driver_error(args[0], plan, code, 0);
  PyObject* dispatch = numbered_dispatch(args[3], args[4], args[5], plan);
  Py_DECREF(plan);
  if (dispatch == nullptr) return nullptr;
  PyObject* buffers = args[9];  // a list or a tuple: find_plan made a key of it
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(buffers); ++i) {
    PyObject* item = PySequence_Fast_GET_ITEM(buffers, i);
    if (item == Py_None) continue;
    PyObject* box = PyObject_GetAttr(item, pending_box_name);  // a cached plan binds Buffers only
    if (box == nullptr || !PyList_CheckExact(box) || PyList_GET_SIZE(box) < 1) {
      Py_XDECREF(box);
      PyErr_Clear();
      continue;
    }
    Py_INCREF(dispatch);
    PyList_SetItem(box, 0, dispatch);  // steals the reference, drops the one it held
    Py_DECREF(box);
  }
  return dispatch;
}

// repeat and submit with their leading arguments bound (bind_repeat, bind_submit): the callable's self is the
// tuple of those arguments, and a call appends its own on the stack (functools.partial would allocate the
// joined arguments on every call).
constexpr Py_ssize_t kMaxArguments = 10;

PyObject* call_bound(PyCFunction target, PyObject* bound, PyObject* const* args, Py_ssize_t nargs) {
  const Py_ssize_t count = PyTuple_GET_SIZE(bound);
  if (count + nargs > kMaxArguments) {
    PyErr_SetString(PyExc_TypeError, "too many arguments");
    return nullptr;
  }
  PyObject* all[kMaxArguments];
  for (Py_ssize_t i = 0; i < count; ++i) all[i] = PyTuple_GET_ITEM(bound, i);
  for (Py_ssize_t i = 0; i < nargs; ++i) all[count + i] = args[i];
  using fastcall = PyObject* (*)(PyObject*, PyObject* const*, Py_ssize_t);
  return reinterpret_cast<fastcall>(reinterpret_cast<void (*)(void)>(target))(nullptr, all, count + nargs);
}

PyObject* bound_repeat(PyObject* bound, PyObject* const* args, Py_ssize_t nargs) {
  return call_bound(reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(repeat)), bound, args, nargs);
}
PyObject* bound_submit(PyObject* bound, PyObject* const* args, Py_ssize_t nargs) {
  return call_bound(reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(submit)), bound, args, nargs);
}

PyMethodDef bound_repeat_def = {"compiled_repeat", reinterpret_cast<PyCFunction>(
    reinterpret_cast<void (*)(void)>(bound_repeat)), METH_FASTCALL, "repeat() with its leading arguments bound."};
PyMethodDef bound_submit_def = {"compiled_submit", reinterpret_cast<PyCFunction>(
    reinterpret_cast<void (*)(void)>(bound_submit)), METH_FASTCALL, "submit() with its leading arguments bound."};

PyObject* bind(PyMethodDef* def, PyObject* const* args, Py_ssize_t nargs) {
  PyObject* bound = PyTuple_New(nargs);
  if (bound == nullptr) return nullptr;
  for (Py_ssize_t i = 0; i < nargs; ++i) {
    Py_INCREF(args[i]);
    PyTuple_SET_ITEM(bound, i, args[i]);
  }
  PyObject* function = PyCFunction_New(def, bound);
  Py_DECREF(bound);
  return function;
}

// bind_repeat(on_error, launch, sync, host_accesses) -> repeat(on_error, launch, sync, host_accesses, ...)
PyObject* bind_repeat(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  return bind(&bound_repeat_def, args, nargs);
}
// bind_submit(on_error, launch, host_accesses, dispatch_type, backend, numbers) -> submit(those, ...)
PyObject* bind_submit(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  return bind(&bound_submit_def, args, nargs);
}

// The kernel node of the launch whose REPEAT_FIELDS are at `address`.
KernelNodeParams node_params(uint64_t address) {
  const auto* record = reinterpret_cast<const uint64_t*>(address);
  KernelNodeParams params = {};
  params.func = reinterpret_cast<void*>(record[kFunction]);
  for (int i = 0; i < 3; ++i) {
    params.grid[i] = unsigned(record[kGrid + i]);
    params.block[i] = unsigned(record[kBlock + i]);
  }
  params.shared_bytes = unsigned(record[kShared]);
  params.kernel_params = reinterpret_cast<void**>(record[kParams]);
  return params;
}

// The uint64 array at the address an int gives (a numpy array's), or nullptr with an exception set.
uint64_t* u64_array(PyObject* address) {
  auto* array = static_cast<uint64_t*>(PyLong_AsVoidPtr(address));
  if (array == nullptr && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a null array address");
  return array;
}

// graph_chain(add_node, graph, launches, count, nodes, depend) -> None, or (code, index) of the node the driver
// refused
//   add_node: cuGraphAddKernelNode (CUDA 12.0's version); graph: the CUgraph's address
//   launches: address of `count` uint64 addresses of launches' REPEAT_FIELDS
//   nodes: address of `count` uint64, where each node's handle goes
//   depend: cuGraphAddDependencies_v2 to make the edges programmatic, or 0 for plain ones
//   Each node depends on the one before: the batch's dispatches in order, as a stream runs them.
PyObject* graph_chain(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 6) {
    PyErr_SetString(PyExc_TypeError, "graph_chain() takes 6 arguments");
    return nullptr;
  }
  const auto add = reinterpret_cast<add_node_fn>(PyLong_AsVoidPtr(args[0]));
  void* graph = PyLong_AsVoidPtr(args[1]);
  const uint64_t* launches = u64_array(args[2]);
  const Py_ssize_t count = PyLong_AsSsize_t(args[3]);
  uint64_t* nodes = launches == nullptr ? nullptr : u64_array(args[4]);
  const auto depend = reinterpret_cast<add_dependencies_fn>(PyLong_AsVoidPtr(args[5]));
  if (add == nullptr || nodes == nullptr || count < 0 || PyErr_Occurred()) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "graph_chain(): bad arguments");
    return nullptr;
  }
  int code = 0;
  Py_ssize_t failed = 0;
  Py_BEGIN_ALLOW_THREADS
  const GraphEdgeData programmatic = {1, 0, 1, {}};
  void* previous = nullptr;
  for (Py_ssize_t i = 0; i < count && code == 0; ++i) {
    const KernelNodeParams params = node_params(launches[i]);
    void* node = nullptr;
    const bool joined_after = previous != nullptr && depend != nullptr;  // by a programmatic edge, once added
    code = add(&node, graph, &previous, previous != nullptr && !joined_after ? 1 : 0, &params);
    if (code == 0 && joined_after) code = depend(graph, &previous, &node, &programmatic, 1);
    nodes[i] = reinterpret_cast<uint64_t>(node);
    previous = node;
    failed = i;
  }
  Py_END_ALLOW_THREADS
  if (code != 0) return Py_BuildValue("(in)", code, failed);
  Py_RETURN_NONE;
}

// graph_set(set_node, exec, nodes, launches, indices, count) -> None, or (code, index) of the update refused
//   set_node: cuGraphExecKernelNodeSetParams (CUDA 12.0's version); exec: the CUgraphExec's address
//   nodes: address of the graph's uint64 node handles; launches: address of uint64 addresses of REPEAT_FIELDS,
//   one per node; indices: address of `count` uint64, the nodes to set from their launches
PyObject* graph_set(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 6) {
    PyErr_SetString(PyExc_TypeError, "graph_set() takes 6 arguments");
    return nullptr;
  }
  const auto set = reinterpret_cast<set_node_fn>(PyLong_AsVoidPtr(args[0]));
  void* exec = PyLong_AsVoidPtr(args[1]);
  const uint64_t* nodes = u64_array(args[2]);
  const uint64_t* launches = nodes == nullptr ? nullptr : u64_array(args[3]);
  const uint64_t* indices = launches == nullptr ? nullptr : u64_array(args[4]);
  const Py_ssize_t count = PyLong_AsSsize_t(args[5]);
  if (set == nullptr || indices == nullptr || count < 0) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "graph_set(): bad arguments");
    return nullptr;
  }
  int code = 0;
  uint64_t failed = 0;
  Py_BEGIN_ALLOW_THREADS
  for (Py_ssize_t k = 0; k < count && code == 0; ++k) {
    const uint64_t i = indices[k];
    const KernelNodeParams params = node_params(launches[i]);
    code = set(exec, reinterpret_cast<void*>(nodes[i]), &params);
    failed = i;
  }
  Py_END_ALLOW_THREADS
  if (code != 0) return Py_BuildValue("(iK)", code, static_cast<unsigned long long>(failed));
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"repeat", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(repeat)), METH_FASTCALL,
     "Launch and wait for a cached plan's repeat; False when the Python path must do it."},
    {"submit", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(submit)), METH_FASTCALL,
     "Launch a cached plan's asynchronous repeat and return its Dispatch; None when the Python path must do it."},
    {"bind_repeat", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(bind_repeat)), METH_FASTCALL,
     "repeat with its first arguments bound: a callable of (plans, function, grid, buffers)."},
    {"bind_submit", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(bind_submit)), METH_FASTCALL,
     "submit with its first arguments bound: a callable of (plans, function, grid, buffers)."},
    {"graph_chain", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(graph_chain)), METH_FASTCALL,
     "Add a batch's kernel nodes to a CUDA graph, each after the one before."},
    {"graph_set", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(graph_set)), METH_FASTCALL,
     "Set the parameters of some kernel nodes of an executable CUDA graph."},
    {"plan_key", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(plan_key_py)), METH_FASTCALL,
     "The plan cache key repeat() looks a dispatch up by; None where it makes none."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "metalgpu_cuda_repeat", nullptr, -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit_metalgpu_cuda_repeat() {
  packed_name = PyUnicode_InternFromString("packed");
  repeat_address_name = PyUnicode_InternFromString("repeat_address");
  pending_box_name = PyUnicode_InternFromString("_pending_box");
  kernel_name_name = PyUnicode_InternFromString("kernel_name");
  backend_name = PyUnicode_InternFromString("_backend");
  number_name = PyUnicode_InternFromString("_number");
  if (packed_name == nullptr || repeat_address_name == nullptr || pending_box_name == nullptr ||
      kernel_name_name == nullptr || backend_name == nullptr || number_name == nullptr)
    return nullptr;
  PyObject* created = PyModule_Create(&module);
  if (created == nullptr) return nullptr;
  // The memo's size, for tests/test_cuda_repeat.py to compare with dispatch.PlanCache.MEMO_WORDS.
  if (PyModule_AddIntConstant(created, "MEMO_WORDS", kMemoWords) != 0) {
    Py_DECREF(created);
    return nullptr;
  }
  // The field order, for tests/test_abi.py to compare with msl/abi.py's REPEAT_FIELDS.
  const int fields[] = {kFunction, kStream, kParams, kPlacedAt, kGrid, kBlock, kShared, kFieldCount};
  const char* names[] = {"FIELD_FUNCTION", "FIELD_STREAM",  "FIELD_PARAMS", "FIELD_PLACED_AT",
                         "FIELD_GRID",     "FIELD_BLOCK", "FIELD_SHARED", "FIELD_COUNT"};
  for (int i = 0; i < 8; ++i) {
    if (PyModule_AddIntConstant(created, names[i], fields[i]) != 0) {
      Py_DECREF(created);
      return nullptr;
    }
  }
  return created;
}
