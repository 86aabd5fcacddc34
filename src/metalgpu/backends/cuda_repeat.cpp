// The repeat of a synchronous CUDA dispatch, in compiled code (built and loaded by backends/cuda_repeat.py).
//
// A loop of run_function calls spends most of its host time in Python: finding the cached plan, checking it and
// calling the driver through cuda-bindings cost about as much as the launch itself (benchmarks/README.md). This
// does the same steps for the one case that dominates, a dispatch that repeats a cached plan and waits: it finds
// the plan in the Interface's plan cache (dispatch.PlanCache), checks that nothing has changed since the plan last
// went through the Python path, and calls cuLaunchKernel and cuStreamSynchronize. Anything else answers False, and
// the Python path (interface.py, backends/cuda.py) does the whole work, as it does when this is not built.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>

namespace {

using launch_fn = int (*)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**,
                          void**);
using sync_fn = int (*)(void*);

// The uint64 fields of a plan's launch (backends/cuda_module.py, CudaLaunch.repeat_fields; msl/abi.py's
// REPEAT_FIELDS): what cuLaunchKernel takes, and the count of host accesses when the plan's buffers were last
// placed. The backend writes a count that never matches while the plan must take the Python path (debug checks,
// buffers kept in host memory, constants in device memory).
enum Field { kFunction, kStream, kParams, kPlacedAt, kGrid, kBlock = kGrid + 3, kShared = kBlock + 3, kFieldCount };

PyObject* packed_name = nullptr;          // LaunchPlan.packed: the backend's launch of the plan
PyObject* repeat_address_name = nullptr;  // CudaLaunch.repeat_address: where its repeat_fields are

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

// repeat(on_error, launch, sync, host_accesses, plans, function, grid, buffers) -> bool
//   on_error(plan, code, waited): raises the DispatchError of a driver error
//   launch, sync: addresses of cuLaunchKernel and cuStreamSynchronize
//   host_accesses: address of the backend's uint64 count of host accesses (a plan placed at another is declined)
//   plans, function, grid, buffers: the Interface's PlanCache.table and the dispatch
PyObject* repeat(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 8) {
    PyErr_SetString(PyExc_TypeError, "repeat() takes 8 arguments");
    return nullptr;
  }
  PyObject *on_error = args[0], *plans = args[4], *function = args[5], *grid = args[6], *buffers = args[7];
  if (!PyDict_CheckExact(plans)) {
    PyErr_SetString(PyExc_TypeError, "repeat(): the plan cache must be a dict");
    return nullptr;
  }
  PyObject* key = plan_key(function, grid, buffers);
  if (key == nullptr) {
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_FALSE;
  }
  // Held from here on: the launch reads memory the plan owns, and another thread may drop it from the cache.
  PyObject* plan = PyDict_GetItemWithError(plans, key);
  Py_XINCREF(plan);
  Py_DECREF(key);
  if (plan == nullptr) {
    if (!PyErr_Occurred()) Py_RETURN_FALSE;
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) return nullptr;
    PyErr_Clear();  // an unhashable grid, such as a list: the Python path reports or handles it
    Py_RETURN_FALSE;
  }
  const uint64_t* record = repeat_fields(plan);
  const auto* host_accesses =
      record == nullptr ? nullptr : static_cast<const uint64_t*>(PyLong_AsVoidPtr(args[3]));
  if (host_accesses == nullptr || record[kPlacedAt] != *host_accesses) {
    Py_DECREF(plan);
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
  code = launch(reinterpret_cast<void*>(record[kFunction]), unsigned(record[kGrid]), unsigned(record[kGrid + 1]),
                unsigned(record[kGrid + 2]), unsigned(record[kBlock]), unsigned(record[kBlock + 1]),
                unsigned(record[kBlock + 2]), unsigned(record[kShared]), reinterpret_cast<void*>(record[kStream]),
                reinterpret_cast<void**>(record[kParams]), nullptr);
  if (code == 0) {
    waited = 1;
    code = sync(reinterpret_cast<void*>(record[kStream]));
  }
  Py_END_ALLOW_THREADS
  if (code != 0) {
    PyObject* result = PyObject_CallFunction(on_error, "Oii", plan, code, waited);
    Py_DECREF(plan);
    if (result == nullptr) return nullptr;
    Py_DECREF(result);
    PyErr_SetString(PyExc_RuntimeError, "repeat(): on_error returned instead of raising");
    return nullptr;
  }
  Py_DECREF(plan);
  Py_RETURN_TRUE;
}

PyMethodDef methods[] = {
    {"repeat", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(repeat)), METH_FASTCALL,
     "Launch and wait for a cached plan's repeat; False when the Python path must do it."},
    {"plan_key", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(plan_key_py)), METH_FASTCALL,
     "The plan cache key repeat() looks a dispatch up by; None where it makes none."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "metalgpu_cuda_repeat", nullptr, -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit_metalgpu_cuda_repeat() {
  packed_name = PyUnicode_InternFromString("packed");
  repeat_address_name = PyUnicode_InternFromString("repeat_address");
  if (packed_name == nullptr || repeat_address_name == nullptr) return nullptr;
  PyObject* created = PyModule_Create(&module);
  if (created == nullptr) return nullptr;
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
