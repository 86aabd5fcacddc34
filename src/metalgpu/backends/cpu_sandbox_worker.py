"""The first stage of a sandboxed worker process (Interface(isolate=True)). backends/cpu_sandbox.py runs this file
as ``python -I -S cpu_sandbox_worker.py``: it imports nothing of metalgpu (nor numpy), only the standard library.

It reads its order as JSON on stdin; loads the native runner, the sandbox loop (cpu_sandbox.cpp) and the kernel
modules from file descriptors the parent opened (so it loads exactly the files the parent's cache checked, and
nothing by name); writes the bindings of the modules the parent asks about as JSON on stdout; and hands over to
the sandbox loop, which seals the process (limits, seccomp) and never returns. Nothing of the shaders runs before
the seal: the modules' initialisers were refused when they were built (cpu_module_check.py), and only their
binding records are read here.
"""
import ctypes
import json
import os
import sys


def _load(fd: int, mode: int = ctypes.RTLD_LOCAL) -> ctypes.CDLL:
    library = ctypes.CDLL(f"/proc/self/fd/{fd}", mode=mode)
    os.close(fd)
    return library


def _describe(module: ctypes.CDLL, kernel: int, record_bytes: int) -> list:
    """The kernel's binding records (msl/abi.py's mg::binding_info, as hex) and its own limit on threads."""
    info = module[f"mg_info_{kernel}"]
    info.restype = ctypes.c_void_p
    info.argtypes = [ctypes.POINTER(ctypes.c_int32)]
    count = ctypes.c_int32(0)
    records = info(ctypes.byref(count))
    limit = module[f"mg_max_threads_{kernel}"]
    limit.restype = ctypes.c_uint32
    return [ctypes.string_at(records, count.value * record_bytes).hex(), count.value, limit()]


def main() -> None:
    order = json.loads(sys.stdin.read())
    runner = _load(order["runner"], ctypes.RTLD_GLOBAL)  # the modules take their fiber stacks from it
    sandbox = _load(order["sandbox"])
    entries, described = [], {}
    for number, (fd, kernels) in enumerate(order["modules"]):
        module = _load(fd)
        entries += [ctypes.cast(module[f"mg_run_{kernel}"], ctypes.c_void_p).value for kernel in kernels]
        if number in order["describe"]:
            described[number] = [_describe(module, kernel, order["record_bytes"]) for kernel in kernels]
    sys.stdout.write(json.dumps(described))
    sys.stdout.flush()
    serve = sandbox.mg_sandbox_serve
    serve.restype = None
    serve.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32,
                      ctypes.c_uint32, ctypes.c_uint64, ctypes.c_uint64]
    table = (ctypes.c_void_p * max(1, len(entries)))(*entries)
    serve(order["socket"], order["arena"], order["parent"], ctypes.cast(runner.mg_parallel_run, ctypes.c_void_p),
          table, len(entries), order["threads"], order["memory_bytes"], order["cpu_seconds"])


if __name__ == "__main__":
    main()
