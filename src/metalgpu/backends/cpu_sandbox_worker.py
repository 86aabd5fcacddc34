"""The first stage of a sandboxed worker process (Interface(isolate=True)). backends/cpu_sandbox.py runs this file
as ``python -I -S cpu_sandbox_worker.py``: it imports nothing of metalgpu (nor numpy), only the standard library.

It reads its order as JSON on stdin; loads the native runner, the sandbox loop (cpu_sandbox.cpp) and the kernel
modules from file descriptors the parent opened (so it loads exactly the files the parent's cache checked, and
nothing by name); looks up each kernel's functions without calling any; and hands over to the sandbox loop,
which seals the process (limits, seccomp) and never returns. The modules' code runs only after the seal: their
initialisers were refused when they were built (cpu_module_check.py), and the loop calls their functions.
"""
import ctypes
import json
import os
import sys


def _load(fd: int, mode: int = ctypes.RTLD_LOCAL) -> ctypes.CDLL:
    library = ctypes.CDLL(f"/proc/self/fd/{fd}", mode=mode)
    os.close(fd)
    return library


def _address(library: ctypes.CDLL, name: str) -> int:
    return ctypes.cast(library[name], ctypes.c_void_p).value


def main() -> None:
    order = json.loads(sys.stdin.read())
    runner = _load(order["runner"], ctypes.RTLD_GLOBAL)  # the modules take their fiber stacks from it
    sandbox = _load(order["sandbox"])
    entries = []  # for each kernel: mg_run_<i>, mg_info_<i>, mg_max_threads_<i>
    for fd, kernels in order["modules"]:
        module = _load(fd)
        for kernel in kernels:
            entries += [_address(module, f"{name}_{kernel}") for name in ("mg_run", "mg_info", "mg_max_threads")]
    serve = sandbox.mg_sandbox_serve
    serve.restype = None
    serve.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32,
                      ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_uint64]
    table = (ctypes.c_void_p * max(1, len(entries)))(*entries)
    serve(order["socket"], order["arena"], order["parent"], _address(runner, "mg_parallel_run"), table,
          len(entries) // 3, order["record_bytes"], order["threads"], order["memory_bytes"], order["cpu_seconds"])


if __name__ == "__main__":
    main()
