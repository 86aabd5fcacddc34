"""The fuzzers' worker process: it runs what the tests send it (a source through the front end, a compile and
run, a list of arguments for a dispatch) and answers how the library reacted. It runs apart from pytest so that
a crash or a hang is seen and reported, not fatal.

Protocol (runner.py's side): length-prefixed pickles on stdin and stdout. A request is ``(operation, payload)``;
the answer is ``("ok", detail)``, ``("documented", "ClassName: message")`` for an exception of API.md's list, or
``("undocumented", traceback)`` for any other.
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import sys
import tempfile
import traceback
import warnings

import numpy as np
from seeds import HELPER_HEADER  # beside this file

import metalgpu
from metalgpu.backends import open_compiler
from metalgpu.backends.base import CompileOptions
from metalgpu.cache import CompileCache
from metalgpu.library import Library, read_source

# What API.md allows out of the library: its own errors (every one a MetalError), and KeyboardInterrupt when the
# user presses Ctrl-C (never sent here).
DOCUMENTED = (metalgpu.MetalError,)

RUN_TIMEOUT = 2.0  # seconds a fuzzed kernel may run before the library stops it (a mutated loop may never end)
_STRUCT_RE = re.compile(r"\bstruct\s+([A-Za-z_]\w*)")


class Worker:
    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="metalgpu-fuzz-")
        with open(os.path.join(self.folder, "fuzz_helper.h"), "w") as header:
            header.write(HELPER_HEADER)
        if os.environ.get("METALGPU_CACHE_DIR"):  # before the working folder changes
            os.environ["METALGPU_CACHE_DIR"] = os.path.abspath(os.environ["METALGPU_CACHE_DIR"])
        os.chdir(self.folder)  # where the includes of a source given as a string resolve
        self.cache = CompileCache()
        self.compiler = open_compiler("cpu", self.cache)
        self._arguments = None  # arguments.ArgumentWorld, made on first use

    # -- sources ---------------------------------------------------------------------------------------------
    def _text(self, source: str | bytes) -> tuple[str, str, tuple[str, ...]]:
        """A fuzzed source as the library reads it: text as given, bytes through a file (read_source decodes)."""
        if isinstance(source, str):
            return source, "<string>", (os.getcwd(),)
        path = os.path.join(self.folder, "fuzzed.metal")
        with open(path, "wb") as file:
            file.write(source)
        return read_source(path), path, (self.folder,)

    def front(self, source: str | bytes) -> str:
        """Preprocess, parse and translate for both targets, as load_shader does before it compiles; and lay out
        every struct the source seems to declare, as struct_dtype does."""
        text, filename, folders = self._text(source)
        library = Library(None, self.cache, CompileOptions(), text, filename, folders, compiler=self.compiler)
        front = library.front_end()
        constants = {fc.index: 1 for fc in front.program.function_constants}
        for target, check_bounds in (("cpu", False), ("cuda", False), ("cuda", True)):
            translator = front.translator(target, check_bounds)
            translator.translate({})
            if constants:
                translator.translate(constants)
        for name in dict.fromkeys(_STRUCT_RE.findall(text)):
            try:
                library.structs.dtype(name)
            except DOCUMENTED:
                pass
        return f"{len(front.program.kernels)} kernels"

    def compile(self, source: str | bytes, run: bool) -> str:
        """load_shader on the cpu backend (compile and load); with ``run``, each kernel dispatched once over 64
        threads with zeroed byte buffers of 256 elements for every buffer and threadgroup parameter."""
        text, filename, folders = self._text(source)
        with metalgpu.Interface("cpu") as gpu:
            if isinstance(source, str):
                gpu.load_shader_from_str(text)
            else:
                gpu.load_shader(filename)
            ran = []
            for name in gpu.function_names:
                try:
                    gpu.set_function(name)
                    if run:
                        self._run_with_zeros(gpu)
                    ran.append(name)
                except DOCUMENTED:
                    pass
            return f"kernels that ran: {ran}"

    def run_kernel(self, payload) -> np.ndarray:
        """A valid kernel run on inputs: its output buffer (uint) of ``count`` elements."""
        source, name, inputs, count = payload
        with metalgpu.Interface("cpu") as gpu:
            gpu.load_shader_from_str(source)
            gpu.set_function(name)
            buffers = [gpu.array_to_buffer(values) for values in inputs] + [gpu.create_buffer(count, "uint")]
            gpu.run_function(count, buffers, timeout=60)
            return buffers[-1].read()

    @staticmethod
    def _run_with_zeros(gpu: metalgpu.Interface) -> None:
        function = gpu._function
        buffers: list = []
        memory = {}
        for binding in function.bindings:
            nbytes = max(binding.elem_size, 1) * 256
            if binding.kind == "buffer":
                buffers += [None] * (binding.index + 1 - len(buffers))
                buffers[binding.index] = gpu.create_buffer(nbytes, "uchar")
            elif binding.kind == "threadgroup":
                memory[binding.index] = min(nbytes, 4096)
        gpu.run_function(64, buffers, threadgroup_memory=memory or None, timeout=RUN_TIMEOUT)

    # -- arguments -------------------------------------------------------------------------------------------
    def arguments(self, recipe) -> str:
        if self._arguments is None:
            from arguments_world import ArgumentWorld  # beside this file
            self._arguments = ArgumentWorld()
        return self._arguments.run(recipe)

    def sane(self, _payload) -> str:
        """The argument fuzzer's Interface still runs a kernel right after everything it was sent."""
        if self._arguments is None:
            return "no argument fuzzing yet"
        return self._arguments.check_sane()


def _read_message(stream):
    header = stream.read(8)
    if len(header) < 8:
        return None
    (size,) = struct.unpack("<Q", header)
    return pickle.loads(stream.read(size))


def _write_message(stream, message) -> None:
    data = pickle.dumps(message)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def main() -> None:
    warnings.simplefilter("ignore")  # the library's warnings (a debug fallback, a cache) are no failures here
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # whatever the library prints must not mix with the answers
    worker = Worker()
    while (request := _read_message(requests)) is not None:
        operation, payload = request
        try:
            if operation == "front":
                answer = ("ok", worker.front(payload))
            elif operation == "compile":
                answer = ("ok", worker.compile(*payload))
            else:
                answer = ("ok", getattr(worker, operation)(payload))
        except DOCUMENTED as error:
            answer = ("documented", f"{type(error).__name__}: {str(error)[:300]}")
        except Exception:  # noqa: BLE001 - any other exception is what the fuzzers look for
            answer = ("undocumented", traceback.format_exc())
        _write_message(answers, answer)


if __name__ == "__main__":
    main()
