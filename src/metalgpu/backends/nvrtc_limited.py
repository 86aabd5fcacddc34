"""NVRTC held to the compile limits: every compile runs in a worker process (nvrtc_worker.py), which is ended
when COMPILE_TIMEOUT passes and whose data segment is held to COMPILE_MEMORY (Linux). A worker is started once and
reused for later compiles; compiles in several threads at once each get a worker of their own.

A worker that is ended (a limit, Ctrl-C, a crash, a kill from outside) is replaced at the next compile. A child
process made by fork starts workers of its own, and workers end with the process that started them. Where no
worker can start, compiling fails with a CompilerFailed that says why: NVRTC never runs in this process unbounded.
"""
from __future__ import annotations

import atexit
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..limits import COMPILE_MEMORY, COMPILE_TIMEOUT
from . import nvrtc_worker as protocol
from .base import CompilerFailed

# Run by path rather than `-m`, so that the worker imports no metalgpu module (metalgpu/__init__ imports numpy),
# and without the current folder on sys.path, so that nothing there can shadow `cuda`.
_BOOT = "import runpy, sys; del sys.path[0]; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
_WORKER = str(Path(protocol.__file__).resolve())
_MAX_IDLE = 4  # workers kept for later compiles; more than that were started only by a burst of threads
_STDERR_TAIL = 2000  # characters of a worker's error output quoted when it dies
# how a compiler that fails to allocate may end, where it does not say so (an unchecked allocation, an abort)
_MEMORY_CRASHES = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS}


class _TimedOut(Exception):
    pass


class _Ended(Exception):
    pass


class _Worker:
    """One worker process and the pipes to it."""

    def __init__(self):
        self.owner = os.getpid()
        self.ready = False  # it said it had loaded NVRTC
        self.errors = tempfile.TemporaryFile()  # its stderr, quoted if it dies
        try:
            self.process = subprocess.Popen([sys.executable, "-c", _BOOT, _WORKER, str(os.getpid())],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
                                            bufsize=0, start_new_session=True)
        except BaseException:
            self.errors.close()
            raise

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def compile(self, source: bytes, flags: bytes, memory_limit: int, deadline: float) -> tuple[int, bytes]:
        """Send one compile and wait for its reply until ``deadline`` (time.monotonic)."""
        if not self.ready:
            status, payload = self._receive(deadline)
            if status != protocol.READY:
                why = payload.decode(errors="replace")
                raise CompilerFailed(f"NVRTC's compile process could not load NVRTC: {why}")
            self.ready = True
        request = protocol.REQUEST.pack(len(source), len(flags), memory_limit) + source + flags
        view = memoryview(request)
        try:
            while view:  # the worker reads each request whole, at once
                view = view[self.process.stdin.write(view):]
        except BrokenPipeError:
            raise _Ended from None
        return self._receive(deadline)

    def _receive(self, deadline: float) -> tuple[int, bytes]:
        status, size = protocol.REPLY.unpack(self._read_exactly(protocol.REPLY.size, deadline))
        return status, self._read_exactly(size, deadline)

    def _read_exactly(self, size: int, deadline: float) -> bytes:
        fd = self.process.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _TimedOut
            if not poller.poll(max(1, int(remaining * 1000))):  # Ctrl-C interrupts the wait
                continue
            chunk = os.read(fd, min(size - len(data), 1 << 20))
            if not chunk:
                raise _Ended
            data += chunk
        return bytes(data)

    def why_ended(self) -> str:
        """How the worker ended, with the end of its error output."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        if code is not None and code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        message = f"NVRTC's compile process (pid {self.process.pid}) {how} while compiling"
        self.errors.seek(0)
        errors = self.errors.read().decode(errors="replace").strip()[-_STDERR_TAIL:]
        if "out of memory" in errors.lower() or "bad_alloc" in errors:
            message = COMPILE_MEMORY.exceeded("NVRTC") + "\n" + message
        elif code is not None and -code in _MEMORY_CRASHES and sys.platform.startswith("linux"):
            message += (f" (NVRTC may have run out of memory under the limit of {COMPILE_MEMORY.value()} MiB: "
                        f"{COMPILE_MEMORY.how_to_raise()})")
        return message + (f"; its error output:\n{errors}" if errors else "")

    def kill(self) -> None:
        """End the worker and its whole process group, and wait for it."""
        if self.owner != os.getpid():  # inherited through fork: the parent's to end
            return
        if self.process.poll() is None:  # once waited for, its process group id may belong to another
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
        self.close_files()

    def close_files(self) -> None:
        for stream in (self.process.stdin, self.process.stdout, self.errors):
            try:
                stream.close()
            except OSError:
                pass


def _name_memory_limit(log: str) -> str:
    """NVRTC's log of a compile that ran out of memory, saying which limit: on NVRTC's own error line, which
    points at the user's source where it has a place, else on a line of its own."""
    limit = COMPILE_MEMORY.exceeded("NVRTC")
    at = log.find("out of memory")
    if at < 0:
        return f"{limit}\n{log}"
    end = at + len("out of memory")
    return f"{log[:end]}: {limit}{log[end:]}"


class WorkerPool:
    """The workers of this process: those idle, and every one started, to end them at exit."""

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()

    def prestart(self) -> None:
        """Start a worker now unless one is idle, so that it loads NVRTC while the front end works. A worker that
        cannot start is left to the first compile to report."""
        with self._lock:
            if self._idle:
                return
            try:
                worker = _Worker()
            except OSError:
                return
            self._idle.append(worker)
            self._all.add(worker)

    def compile(self, source: str, flags: list[str]) -> bytes:
        """NVRTC's cubin of ``source``, within COMPILE_TIMEOUT and COMPILE_MEMORY; CompilerFailed otherwise."""
        command = tuple(flags)
        deadline = time.monotonic() + COMPILE_TIMEOUT.value()
        limit = COMPILE_MEMORY.value() << 20 if sys.platform.startswith("linux") else 0
        worker = self._take(command)
        try:
            status, payload = worker.compile(source.encode(), "\0".join(flags).encode(), limit, deadline)
        except _TimedOut:
            self._retire(worker)
            raise CompilerFailed(COMPILE_TIMEOUT.exceeded("NVRTC"), command) from None
        except _Ended:
            message = worker.why_ended()
            self._retire(worker)
            raise CompilerFailed(message, command) from None
        except BaseException:  # Ctrl-C, or a worker that could not load NVRTC: it is not left half way
            self._retire(worker)
            raise
        if status == protocol.DONE:
            self._give_back(worker)
            return payload
        log = payload.decode(errors="replace")
        if status == protocol.OUT_OF_MEMORY:
            self._retire(worker)  # NVRTC is not trusted to be sound after an allocation failed
            raise CompilerFailed(_name_memory_limit(log), command)
        self._give_back(worker)
        raise CompilerFailed(log, command)

    def _take(self, command: tuple[str, ...]) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    return worker
                self._all.discard(worker)  # ended while idle (killed from outside): replaced
                worker.close_files()
            try:
                worker = _Worker()
            except OSError as error:
                raise CompilerFailed(f"NVRTC's compile process could not start ({error}); NVRTC is not run in "
                                     "this process instead, where its time and memory could not be limited",
                                     command) from None
            self._all.add(worker)
            return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if len(self._idle) < _MAX_IDLE and worker.owner == os.getpid():
                self._idle.append(worker)
                return
        self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)

    def close(self) -> None:
        """End every worker (at interpreter exit)."""
        with self._lock:
            workers, self._idle, self._all = list(self._all), [], set()
        for worker in workers:
            worker.kill()

    def forget_inherited(self) -> None:
        """In a child made by fork: the workers belong to the parent. Close this process's copies of their pipes, so
        that they still see the parent's end, and start afresh (a lock held by another thread stays held here)."""
        for worker in self._all:
            worker.close_files()
        self._lock = threading.Lock()
        self._idle, self._all = [], set()

    def worker_pids(self) -> list[int]:
        """The process ids of the idle workers (for tests)."""
        with self._lock:
            return [worker.process.pid for worker in self._idle]


WORKERS = WorkerPool()
atexit.register(WORKERS.close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WORKERS.forget_inherited)
