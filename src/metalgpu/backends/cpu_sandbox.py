"""The sandboxed worker process of the isolated cpu backend (cpu_isolated.py): how it is started, what it is told,
and the records it exchanges with cpu_sandbox.cpp, whose loop it runs.

A worker is ``python -I -S cpu_sandbox_worker.py``: a fresh interpreter (spawned, never forked from this threaded
process) that loads the native runner and the kernel modules from descriptors this process opened, then seals
itself (resource limits, then a seccomp filter) and serves one socket: it describes kernels (their binding
records), maps the buffers' memory and runs dispatches. Messages are datagrams of a SOCK_SEQPACKET socket: one read
is one whole message, in both directions.
"""
from __future__ import annotations

import json
import os
import queue
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from ..errors import BackendUnavailableError
from ..limits import Limit

HERE = Path(__file__).resolve().parent
SANDBOX_SOURCE = HERE / "cpu_sandbox.cpp"
WORKER_SCRIPT = HERE / "cpu_sandbox_worker.py"
START_SECONDS = 60.0  # for a worker to load its modules and seal itself

# The worker's limits. Buffers are shared memory of this process and count against neither.
SANDBOX_MEMORY = Limit("METALGPU_SANDBOX_MEMORY", 0, "MiB of private memory")  # 0: MEMORY_BASE + per thread
MEMORY_BASE_MIB, MEMORY_PER_THREAD_MIB = 1024, 128  # fiber stacks of 1024-thread groups take 68 MiB a thread
SANDBOX_CPU = Limit("METALGPU_SANDBOX_CPU", 0, "CPU seconds")  # 0: CPU_PER_THREAD_SECONDS a thread
CPU_PER_THREAD_SECONDS = 3600

# -- the records of cpu_sandbox.cpp (tests/test_sandbox.py compares them with mg_sandbox_layout) --------------------
SLOTS, DISPATCH_WORDS = 31, 3 + 3 + 3 + 31
MESSAGE_RUN, MESSAGE_MAP, MESSAGE_UNMAP, MESSAGE_SELF_TEST, MESSAGE_DESCRIBE = 1, 2, 3, 4, 5
STATUS_FORBIDDEN_CALL, STATUS_BAD_MESSAGE, STATUS_MAP_FAILED, STATUS_SETUP_FAILED = 1101, 1102, 1103, 1104
SELF_TESTS = {"open": 1, "socket": 2, "exec": 3, "exec_memory": 4, "hang": 5, "allowed": 6}
UNBOUND = (1 << 64) - 1  # slot_offset of a slot bound to nothing
RUN_FIELDS = (("type", "I"), ("kernel", "I"), ("groups", "Q"), ("threads", "I"), ("chunks", "I"),
              ("timeout_ms", "I"), ("constant_bytes", "I"), ("slot_segment", f"{SLOTS}Q"),
              ("slot_offset", f"{SLOTS}Q"), ("dispatch", f"{DISPATCH_WORDS}I"))
RUN = struct.Struct("<" + "".join(code for _, code in RUN_FIELDS))
CONSTANTS_AT = -(-RUN.size // 64) * 64  # the inline constants follow the record, 64-byte aligned
MAP_HEADER = struct.Struct("<II")  # type, count; then `count` MAP_ENTRY: segment, file offset, pages, leading guard
MAP_ENTRY = struct.Struct("<QQQQ")
UNMAP_HEADER = struct.Struct("<II")  # type, count; then `count` segment ids (uint64)
SELF_TEST = struct.Struct("<II")  # type, test
DESCRIBE = struct.Struct("<II")  # type, kernel; answered by a REPLY and the kernel's binding records
REPLY_FIELDS = (("status", "i"), ("reserved", "I"), ("fault_segment", "Q"), ("fault_offset", "q"),
                ("fault_address", "Q"), ("report", "8I"), ("cpu_ns", "Q"))
REPLY = struct.Struct("<" + "".join(code for _, code in REPLY_FIELDS))
MAX_MESSAGE = 64 * 1024


def field_offset(fields: tuple, name: str) -> int:
    """Where a field of RUN_FIELDS or REPLY_FIELDS starts (the records need no padding between fields)."""
    codes = [code for field, code in fields[:[field for field, _ in fields].index(name)]]
    return struct.calcsize("<" + "".join(codes))


TIMEOUT_OFFSET = field_offset(RUN_FIELDS, "timeout_ms")
# what mg_sandbox_layout reports, in its order
LAYOUT = (RUN.size, *(field_offset(RUN_FIELDS, name) for name, _ in RUN_FIELDS[1:]), CONSTANTS_AT, MAP_HEADER.size,
          MAP_ENTRY.size, UNMAP_HEADER.size, SELF_TEST.size, DESCRIBE.size, REPLY.size,
          *(field_offset(REPLY_FIELDS, name) for name, _ in REPLY_FIELDS[2:]), MAX_MESSAGE)


def memory_limit_bytes(threads: int) -> int:
    mib = SANDBOX_MEMORY.value() or MEMORY_BASE_MIB + MEMORY_PER_THREAD_MIB * threads
    return mib << 20


def cpu_limit_seconds(threads: int) -> int:
    return SANDBOX_CPU.value() or CPU_PER_THREAD_SECONDS * threads


# Names of the calls a message is most likely to meet; others are given by number.
_CALL_NAMES = {
    "x86_64": {0: "read", 1: "write", 2: "open", 9: "mmap", 10: "mprotect", 41: "socket", 42: "connect",
               56: "clone", 57: "fork", 58: "vfork", 59: "execve", 62: "kill", 101: "ptrace", 257: "openat",
               322: "execveat", 435: "clone3"},
    "aarch64": {56: "openat", 63: "read", 64: "write", 117: "ptrace", 129: "kill", 198: "socket", 203: "connect",
                220: "clone", 221: "execve", 222: "mmap", 226: "mprotect", 281: "execveat", 435: "clone3"},
}
_AUDIT_ARCHES = {0xC000003E: "x86_64", 0xC00000B7: "aarch64"}


def describe_call(number: int, audit_arch: int) -> str:
    arch = _AUDIT_ARCHES.get(audit_arch, f"architecture {audit_arch:#x}")
    name = _CALL_NAMES.get(arch, {}).get(number)
    return f"{name} (number {number} on {arch})" if name else f"number {number} on {arch}"


class WorkerEnded(Exception):
    """The worker is gone (or was ended), with why."""


class Worker:
    """One sandboxed worker process and its socket. Its methods are called by one thread at a time (the isolated
    backend's worker lock), except kill(), which any thread may call."""

    def __init__(self, process: subprocess.Popen, channel: socket.socket):
        self.process = process
        self.pid = process.pid
        self.channel = channel
        self.mapped: set[int] = set()  # segments of the shared memory file it maps
        self.killed_because: str | None = None

    @classmethod
    def start(cls, order: dict, pass_fds: tuple[int, ...]) -> "Worker":
        """Starts a worker with ``order`` (cpu_sandbox_worker.py reads it) and waits until it has sealed itself.
        Raises BackendUnavailableError if it cannot start."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        order = dict(order, socket=theirs.fileno(), parent=os.getpid())  # the child keeps the descriptor's number
        try:
            process = _spawn([sys.executable, "-I", "-S", str(WORKER_SCRIPT)], pass_fds=(theirs.fileno(), *pass_fds))
        except OSError as error:
            ours.close()
            raise BackendUnavailableError(f"cannot start the sandboxed worker process ({sys.executable}): "
                                          f"{error}") from None
        finally:
            theirs.close()
        worker = cls(process, ours)
        try:
            worker._handshake(order)
        except BaseException:
            worker.close()
            raise
        return worker

    def _handshake(self, order: dict) -> None:
        deadline = time.monotonic() + START_SECONDS
        try:
            self.process.stdin.write(json.dumps(order).encode())
            self.process.stdin.close()
            ready = self.receive(deadline)
        except (OSError, WorkerEnded) as error:
            self.kill()
            self.process.wait()
            log = self.process.stderr.read().decode(errors="replace").strip()
            raise BackendUnavailableError(f"the sandboxed worker process did not start: {log or error}") from None
        status, report = ready[0], ready[5:13]
        if status == STATUS_SETUP_FAILED:
            step, error = report[1], os.strerror(report[0])
            if step == 6:
                raise BackendUnavailableError(f"Interface(isolate=True) needs seccomp filters, which this Linux "
                                              f"kernel refused ({error})")
            raise BackendUnavailableError(f"the sandboxed worker process could not seal itself (step {step}: "
                                          f"{error})")
        self.process.stderr.close()

    def send(self, message: bytes | bytearray) -> None:
        try:
            self.channel.send(message)
        except OSError:
            raise self.ended() from None

    def receive(self, deadline: float | None = None) -> tuple:
        """The next reply; at ``deadline`` (time.monotonic()) the worker is ended and WorkerEnded raised."""
        return REPLY.unpack(self._receive(REPLY.size, deadline))

    def describe(self, kernel: int, deadline: float) -> tuple[int, int, bytes]:
        """The kernel's own limit on threads per group and its binding records (count, bytes), as the worker's
        call of its mg_info_<i> gave them: untrusted."""
        self.send(DESCRIBE.pack(MESSAGE_DESCRIBE, kernel))
        data = self._receive(REPLY.size + MAX_MESSAGE, deadline)
        reply = REPLY.unpack_from(data)
        if reply[0] != 0:
            raise WorkerEnded(f"the worker could not describe kernel {kernel} (status {reply[0]})")
        return reply[6], reply[5], data[REPLY.size:]

    def _receive(self, size: int, deadline: float | None) -> bytes:
        if deadline is not None and not _wait_readable(self.channel.fileno(), deadline):
            self.kill("it did not answer in time")
        try:
            data = self.channel.recv(size)
        except OSError:
            data = b""
        if len(data) < REPLY.size:
            raise self.ended()
        return data

    def exchange(self, message: bytes | bytearray, deadline: float | None = None) -> tuple:
        self.send(message)
        return self.receive(deadline)

    def kill(self, because: str | None = None) -> None:
        """Ends the process now (from any thread): a thread waiting for its reply gets WorkerEnded."""
        if because is not None and self.killed_because is None:
            self.killed_because = because
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def ended(self) -> WorkerEnded:
        """Why the process is gone, once it is (its end of the socket closed)."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.wait()
        if self.killed_because is not None:
            return WorkerEnded(self.killed_because)
        if code >= 0:
            return WorkerEnded(f"the worker process exited with status {code}")
        number = -code
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        if number == signal.SIGXCPU:
            return WorkerEnded(f"the sandbox's CPU limit was reached ({SANDBOX_CPU.how_to_raise()}, in CPU seconds "
                               "of all the worker's threads)")
        if number == signal.SIGSYS:
            return WorkerEnded("the worker process made a system call the sandbox forbids")
        if number == signal.SIGKILL:
            return WorkerEnded("the worker process was killed (SIGKILL: the system's out-of-memory killer, or the "
                               "sandbox's CPU limit)")
        return WorkerEnded(f"the worker process was ended by {name}")

    def close(self) -> None:
        """Ends the process and waits for it (the thread that owns the worker)."""
        self.kill()
        self.process.wait()
        self.channel.close()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


def _wait_readable(fd: int, deadline: float) -> bool:
    """Whether ``fd`` has something to read (or its end of file) before ``deadline``."""
    poller = select.poll()  # not select.select: it refuses descriptors above 1023
    poller.register(fd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if poller.poll(left * 1000):
            return True


# -- spawning --------------------------------------------------------------------------------------------------------
# A worker asks to be killed when its parent ends (PR_SET_PDEATHSIG), and Linux counts the *thread* that started it
# as the parent: workers are started from one thread that lives as long as the process, never from a thread of the
# user's that may end first.
_spawn_requests: queue.SimpleQueue = queue.SimpleQueue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def _spawn(command: list[str], pass_fds: tuple[int, ...]) -> subprocess.Popen:
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_serve_spawns, name="metalgpu-sandbox-spawner", daemon=True)
            _spawner.start()
    done: Future = Future()
    _spawn_requests.put((command, pass_fds, done))
    return done.result()


def _serve_spawns() -> None:
    while True:
        command, pass_fds, done = _spawn_requests.get()
        try:
            # A session of its own: Ctrl-C at a terminal reaches this process, which then ends the worker. No
            # environment but where libraries are found: a kernel can read the worker's memory, and variables
            # often hold secrets.
            done.set_result(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, pass_fds=pass_fds, start_new_session=True,
                                             cwd="/", env=_worker_environment()))
        except BaseException as error:  # noqa: BLE001  (the caller gets it)
            done.set_exception(error)


def _worker_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in ("LD_LIBRARY_PATH",) if name in os.environ}


def _after_fork_in_child() -> None:
    global _spawner, _spawn_requests
    _spawner, _spawn_requests = None, queue.SimpleQueue()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
