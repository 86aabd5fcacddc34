"""The NVRTC compile worker: a process of its own that compiles CUDA C++ to cubins for nvrtc_limited.py, so that a
compile past its time limit can be ended and its memory held to a limit without touching the process that asked.

It runs as a script and imports nothing of metalgpu or numpy, only cuda-bindings' NVRTC module, which loads the
same libnvrtc as in the parent process. nvrtc.py uses ``compile_cubin`` in-process too.

The protocol, over the worker's stdin and stdout: the worker first sends one frame, READY with NVRTC's version or
NO_NVRTC with why not, then answers each request with one reply.
    request: REQUEST (source length, flags length, memory limit in bytes or 0), the source, the flags joined by NUL
    reply:   REPLY (status, payload length), then the cubin (DONE) or NVRTC's log
"""
from __future__ import annotations

import os
import signal
import struct
import sys
import threading
import time

REQUEST = struct.Struct("<QQQ")
REPLY = struct.Struct("<BQ")
READY, DONE, FAILED, OUT_OF_MEMORY, NO_NVRTC = range(5)
PARENT_CHECK_SECONDS = 0.2


def compile_cubin(nvrtc, source: bytes, flags: list[bytes]) -> tuple[bool, bytes]:
    """(True, the cubin) or (False, NVRTC's log), with ``nvrtc`` cuda-bindings' NVRTC module."""
    success = nvrtc.nvrtcResult.NVRTC_SUCCESS
    err, program = nvrtc.nvrtcCreateProgram(source, b"module.cu", 0, [], [])
    if err != success:
        return False, f"nvrtcCreateProgram failed: {err}".encode()
    try:
        (err,) = nvrtc.nvrtcCompileProgram(program, len(flags), flags)
        if err != success:
            _, size = nvrtc.nvrtcGetProgramLogSize(program)
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(program, log)
            return False, log.rstrip(b"\0 ") or str(err).encode()
        _, size = nvrtc.nvrtcGetCUBINSize(program)
        cubin = b" " * size
        (err,) = nvrtc.nvrtcGetCUBIN(program, cubin)
        return (True, cubin) if err == success else (False, f"nvrtcGetCUBIN failed: {err}".encode())
    finally:
        nvrtc.nvrtcDestroyProgram(program)


def out_of_memory(log: bytes) -> bool:
    """Did a failed compile run out of memory? NVRTC's front end says so in its log ("catastrophic error: out of
    memory") and returns a compile error; other stages return NVRTC_ERROR_OUT_OF_MEMORY, which compile_cubin
    gives as the log when there is none."""
    return b"out of memory" in log.lower() or b"OUT_OF_MEMORY" in log


class _MemoryLimit:
    """The worker's data segment (heap and private writable mappings) held to a limit for the length of a compile:
    RLIMIT_DATA, not RLIMIT_AS, so that the limit counts what the compiler allocates, not libnvrtc's 150 MiB of
    mapped code. Linux only; elsewhere nothing is limited."""

    def __init__(self):
        self.resource = None
        if sys.platform.startswith("linux"):
            import resource
            self.resource = resource
            self.original = resource.getrlimit(resource.RLIMIT_DATA)

    def set(self, limit: int) -> None:
        if self.resource is None:
            return
        soft, hard = self.original
        if limit:
            soft = limit if soft == self.resource.RLIM_INFINITY else min(limit, soft)
            soft = soft if hard == self.resource.RLIM_INFINITY else min(soft, hard)
        self.resource.setrlimit(self.resource.RLIMIT_DATA, (soft, hard))


def _read_exactly(fd: int, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _send(fd: int, status: int, payload: bytes) -> None:
    view = memoryview(REPLY.pack(status, len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


def _end_with_parent(parent: int) -> None:
    """End this worker soon after the process that started it ends, even in the middle of a compile (NVRTC runs
    without the GIL). Not PR_SET_PDEATHSIG: that fires when the parent's thread that started the worker ends."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGKILL)  # at once, even while NVRTC compiles in the main thread
    threading.Thread(target=watch, daemon=True).start()


def main(parent: int) -> None:
    requests, replies = os.dup(0), os.dup(1)
    # whatever NVRTC or Python prints goes to stderr, never into the replies
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a compile ends
    _end_with_parent(parent)
    try:
        from cuda.bindings import nvrtc
        _, major, minor = nvrtc.nvrtcVersion()
        # NVRTC initialises itself at its first compile (it loads libnvrtc-builtins, among others): done now,
        # while the parent works, and outside the memory limit, under which that first compile fails as a missing
        # library or a crash rather than as memory
        compile_cubin(nvrtc, b"", [])
    except Exception as error:  # ImportError, or cuda-bindings' error when it finds no libnvrtc
        _send(replies, NO_NVRTC, f"{type(error).__name__}: {error}".encode())
        return
    _send(replies, READY, f"{major}.{minor}".encode())
    memory = _MemoryLimit()
    while True:
        header = _read_exactly(requests, REQUEST.size)
        if header is None:
            return  # the parent closed the pipe: it has ended or has no more work
        source_size, flags_size, limit = REQUEST.unpack(header)
        source = _read_exactly(requests, source_size)
        flags = _read_exactly(requests, flags_size)
        if source is None or flags is None:
            return
        memory.set(limit)
        try:
            ok, payload = compile_cubin(nvrtc, source, flags.split(b"\0") if flags else [])
            status = DONE if ok else OUT_OF_MEMORY if out_of_memory(payload) else FAILED
        except MemoryError:
            status, payload = OUT_OF_MEMORY, b"out of memory"
        finally:
            memory.set(0)
        _send(replies, status, payload)


if __name__ == "__main__":
    main(int(sys.argv[1]))
