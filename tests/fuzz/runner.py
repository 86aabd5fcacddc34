"""The tests' side of the fuzz worker (worker.py): one worker process per test session, restarted after it
crashed or hung. ``Runner.check(operation, payload, timeout)`` fails the test for an undocumented exception, a
crash (the worker died: its exit status or signal and the end of its stderr are shown) or a hang (no answer in
``timeout`` seconds: the worker is killed)."""
from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_ROOT = HERE.parent.parent / "src"


class FuzzFailure(AssertionError):
    """The library crashed, hung or raised an exception that API.md does not list."""


class Runner:
    def __init__(self):
        self._process: subprocess.Popen | None = None
        self._stderr = None
        self.counts: Counter = Counter()  # (strategy, outcome) -> examples
        self.seconds: Counter = Counter()  # strategy -> seconds spent waiting for the worker
        self.slowest: dict[str, tuple[float, str]] = {}  # strategy -> its slowest example: seconds, the start of it

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        # the tree under test, as pytest imports it (pyproject's pythonpath), and this folder for the worker's
        # helper modules
        env["PYTHONPATH"] = os.pathsep.join([str(SOURCE_ROOT), str(HERE), env.get("PYTHONPATH", "")])
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen([sys.executable, str(HERE / "worker.py")], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        return self._process

    def check(self, operation: str, payload, timeout: float, label: str | None = None) -> tuple[str, str]:
        """Send one request; (outcome, detail) where outcome is "ok" or "documented"; FuzzFailure otherwise.
        ``label`` names the strategy in the counts (the operation by default)."""
        label = label or operation
        started = time.monotonic()
        try:
            return self._check(operation, payload, timeout, label)
        finally:
            seconds = time.monotonic() - started
            self.seconds[label] += seconds
            if seconds > self.slowest.get(label, (0.0, ""))[0]:
                self.slowest[label] = (seconds, repr(payload)[:300])

    def _check(self, operation: str, payload, timeout: float, label: str) -> tuple[str, str]:
        process = self._process if self._process is not None and self._process.poll() is None else self._start()
        data = pickle.dumps((operation, payload))
        try:
            process.stdin.write(struct.pack("<Q", len(data)) + data)
            process.stdin.flush()
            answer = self._answer(process, timeout)
        except BrokenPipeError:
            answer = None
        if answer is None:
            self.counts[label, "failure"] += 1
            raise FuzzFailure(self._death(process, timeout))
        outcome, detail = answer
        self.counts[label, outcome] += 1
        if outcome == "undocumented":
            raise FuzzFailure(f"an exception outside API.md's list escaped:\n{detail}")
        return outcome, detail

    def _answer(self, process: subprocess.Popen, timeout: float):
        stream = process.stdout
        deadline = time.monotonic() + timeout
        header = self._read(stream, 8, deadline)
        if header is None:
            return None
        (size,) = struct.unpack("<Q", header)
        body = self._read(stream, size, deadline)
        return None if body is None else pickle.loads(body)

    @staticmethod
    def _read(stream, size: int, deadline: float) -> bytes | None:
        chunks, missing = [], size
        descriptor = stream.fileno()
        while missing:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([descriptor], [], [], left)[0]:
                return None
            chunk = os.read(descriptor, missing)
            if not chunk:
                return None
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def _death(self, process: subprocess.Popen, timeout: float) -> str:
        """What went wrong with a worker that gave no answer; the worker is gone afterwards."""
        if process.poll() is None:
            what = f"hang: no answer in {timeout:g} s (the worker was killed)"
            process.kill()
        else:
            code = process.returncode
            what = f"crash: the worker ended with {_describe_exit(code)}"
        process.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-3000:].decode(errors="replace")
        self._process = None
        return f"{what}\n--- worker stderr (end) ---\n{tail}"

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
