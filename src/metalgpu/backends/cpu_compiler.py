"""The CPU target's compiler: C++ source to a shared object, with the system C++ compiler. It needs no device, so
`metalgpu check --target cpu` and the cpu backend use the same one.

GCC's precompiled form of the emulation headers (a ``.gch`` in the cache's artifact folder) saves every compile
parsing them again. It is built in a detached compiler process, once per compiler, flags and header version, after
the first compile that finds none (``prepare``).
"""
from __future__ import annotations

import hashlib
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path

from ..cache import CompileCache
from ..errors import BackendUnavailableError
from ..limits import COMPILE_MEMORY, COMPILE_TIMEOUT
from ..msl.abi import INCLUDE_DIR, headers_checksum
from ..progress import logger
from .base import CompileOptions, Compiler, CompilerFailed
from .cpu_module_check import init_entries, locate_call, math_symbols, refusal

PRELUDE = "#include <metal_stdlib>\n#include <metal/_launch_cpu.h>\n"  # what every translation starts with
_BASELINE_INIT_ENTRIES: dict[str, int] = {}  # by compiler fingerprint: see CpuCompiler._baseline_init_entries
_BASELINE_LOCK = threading.Lock()
_HEADER_BUILDS: list[subprocess.Popen] = []  # precompiled-header builds this process started


def find_compiler() -> list[str]:
    """The C++ compiler command: $CXX, else g++/clang++/c++ on PATH, else the `ziglang` package."""
    if os.environ.get("CXX"):
        return shlex.split(os.environ["CXX"])
    for name in ("g++", "clang++", "c++"):
        path = shutil.which(name)
        if path:
            return [path]
    try:
        import ziglang  # noqa: F401  (the `compiler` extra: a C++ compiler from the package index)
        return [sys.executable, "-m", "ziglang", "c++"]
    except ImportError:
        pass
    raise BackendUnavailableError(
        "the cpu backend needs a C++17 compiler and found none: install g++ or clang++ "
        "(Debian/Ubuntu: apt install g++; macOS: xcode-select --install), set $CXX, "
        "or pip install 'metalgpu[compiler]' for one from the package index")


def compile_flags(options: CompileOptions, command: tuple[str, ...]) -> list[str]:
    """The flags of a compile by ``command`` (the compiler, as find_compiler gives it)."""
    # -fwrapv: signed integer overflow wraps, as on Apple's GPUs, where hash and random-number kernels rely on it.
    # -fstack-clash-protection: a frame larger than a page (a big private array) touches each page it takes, so
    # it reaches the guard page below a fiber's or thread's stack and faults instead of skipping past it.
    flags = ["-std=c++17", "-O3", "-fPIC", "-fvisibility=hidden", "-march=native", "-w", "-fwrapv",
             "-fstack-clash-protection", "-DMG_TARGET_CPU=1"]
    if platform.machine() in ("x86_64", "AMD64"):
        flags.append("-mprefer-vector-width=512")
    if options.fast_math:
        # Metal's default is fast math. NaN and infinity stay meaningful (isnan, isinf work) while glibc still
        # gets to offer its vectorised math (it checks __FAST_MATH__).
        flags += ["-ffast-math", "-fno-finite-math-only", "-D__FAST_MATH__=1", "-DMG_FAST_MATH=1"]
    return flags + list(half_rounding_flags(command))  # after -ffast-math, which resets the excess precision


# Metal rounds the result of every half operation to binary16, and so does the cuda backend. Left alone, a C++
# compiler may not: with C++'s excess precision (g++ 13, clang 16) it evaluates a whole half expression in float and
# rounds once, and with x86's native half arithmetic (AVX512-FP16, which -march=native turns on where the CPU has
# it) it fuses a half multiply and add. -fexcess-precision=16 turns off the first (it must follow -ffast-math, which
# sets it to fast), -mno-avx512fp16 the second: half then goes through float one operation at a time, as on CPUs
# without it.
HALF_ROUNDING_FLAGS = ("-fexcess-precision=16", "-mno-avx512fp16")


@lru_cache(maxsize=None)
def half_rounding_flags(command: tuple[str, ...]) -> tuple[str, ...]:
    """Those of HALF_ROUNDING_FLAGS that ``command`` accepts, each tried once per process (a compiler that predates
    one has nothing for it to turn off)."""
    accepted = []
    for flag in HALF_ROUNDING_FLAGS:
        if flag == "-mno-avx512fp16" and platform.machine() not in ("x86_64", "AMD64"):
            continue
        try:
            probe = subprocess.run([*command, flag, "-std=c++17", "-fsyntax-only", "-x", "c++", "-"],
                                   input="_Float16 f(_Float16 a) { return a * a + a; }", capture_output=True,
                                   text=True, timeout=COMPILE_TIMEOUT.value())
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            accepted.append(flag)
    return tuple(accepted)


def run_limited(command: list[str]) -> None:
    """Run a compiler command within COMPILE_TIMEOUT and, on Linux, COMPILE_MEMORY of address space; raise
    CompilerFailed with its output if it fails, saying which limit stopped it. The compiler runs in a session of
    its own, so that a timeout or Ctrl-C ends its subprocesses (cc1plus, as, ld) too."""
    limited = command
    if sys.platform.startswith("linux"):
        kib = COMPILE_MEMORY.value() * 1024
        limited = ["/bin/sh", "-c", f'ulimit -v {kib} && exec "$@"', "metalgpu-compiler", *command]
    process = subprocess.Popen(limited, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=os.name == "posix")
    try:
        out, err = process.communicate(timeout=COMPILE_TIMEOUT.value())
    except BaseException as stopped:
        _kill_session(process)
        if isinstance(stopped, subprocess.TimeoutExpired):
            raise CompilerFailed(COMPILE_TIMEOUT.exceeded(f"the C++ compiler {command[0]}"), tuple(command)) from None
        raise
    if process.returncode != 0:
        log = err + out
        if limited is not command and _OUT_OF_MEMORY.search(log):
            log = COMPILE_MEMORY.exceeded(f"the C++ compiler {command[0]}") + "\n" + log
        raise CompilerFailed(log, tuple(command))


# how GCC, clang, the linker and the loader of their programs say that an allocation failed
_OUT_OF_MEMORY = re.compile(r"out of memory|memory exhausted|Cannot allocate memory|std::bad_alloc|"
                            r"failed to map segment")


def _kill_session(process: subprocess.Popen) -> None:
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    process.communicate()


@lru_cache(maxsize=1)
def _cpu_identity() -> str:
    """What -march=native depends on."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line for line in info if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return f"{platform.machine()} {platform.system()} {hashlib.sha256(flags.encode()).hexdigest()[:16]}"


class CpuCompiler(Compiler):
    target = "cpu"

    def __init__(self, cache: CompileCache | None = None):
        self.command = find_compiler()
        self._cache = cache or CompileCache()
        self._fingerprint: str | None = None
        self._prelude_usable: bool | None = None  # GCC precompiled headers work with this compiler
        self._prelude_builds: dict[str, subprocess.Popen] = {}
        self._prelude_lock = threading.Lock()  # `metalgpu check` compiles in several threads

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            binary = shutil.which(self.command[0]) or self.command[0]
            try:
                stat = os.stat(binary)
                identity = f"{os.path.realpath(binary)} {stat.st_size} {stat.st_mtime_ns}"
            except OSError:
                identity = binary
            # "checked": every module in the cache was built under the module check (cpu_module_check.py)
            self._fingerprint = (f"cpu {' '.join(self.command[1:])} {identity} -fwrapv {' '.join(HALF_ROUNDING_FLAGS)} "
                                 f"checked {_cpu_identity()}")
        return self._fingerprint

    def compile(self, source: str, options: CompileOptions) -> bytes:
        """A shader's translation to a shared object, refused unless it reaches nothing outside the shader and the
        Metal library and runs nothing when loaded (cpu_module_check.py)."""
        binary = self._compile_translation(source, options)
        problem = refusal(binary, math_symbols(tuple(self.command)), self._baseline_init_entries())
        if problem:
            message, outside = problem
            where = next(filter(None, (locate_call(source, name) for name in outside)), None)
            raise CompilerFailed(f"{where}: error: {message}" if where else message, tuple(self.command))
        return binary

    def _baseline_init_entries(self) -> int:
        """How many load and unload functions the toolchain puts in a module of its own (GCC: frame_dummy and
        __do_global_dtors_aux)."""
        with _BASELINE_LOCK:
            if self.fingerprint() not in _BASELINE_INIT_ENTRIES:
                empty = self.compile_plain("", CompileOptions(fast_math=False))
                _BASELINE_INIT_ENTRIES[self.fingerprint()] = init_entries(empty)
            return _BASELINE_INIT_ENTRIES[self.fingerprint()]

    def _compile_translation(self, source: str, options: CompileOptions) -> bytes:
        prelude = self._prelude(options)
        ready = prelude is not None and prelude[1].exists() and prelude[0].exists()
        try:
            return self.compile_plain(source, options, prelude[0] if ready else None)
        except CompilerFailed:
            if not ready:
                raise
        finally:
            if not ready:
                self.prepare(options)  # after this compile, so that the two do not compete
        # GCC's precompiled headers are fragile (a .gch from another header version, or a compiler that crashes
        # loading it): a failure with one is retried without, and a success then stops using it.
        binary = self.compile_plain(source, options, None)
        self._prelude_usable = False
        return binary

    def compile_plain(self, source: str, options: CompileOptions, prelude: Path | None = None) -> bytes:
        """Source to a shared object (pure). ``prelude`` is a header holding PRELUDE; when GCC finds its
        precompiled ``.gch`` beside it, the emulation headers are not parsed again."""
        with tempfile.TemporaryDirectory(prefix="metalgpu-") as folder:
            folder = Path(folder)
            command = [*self.command, *compile_flags(options, tuple(self.command)), "-I", str(INCLUDE_DIR)]
            if prelude is not None:
                command += ["-include", str(prelude)]
            (folder / "module.cpp").write_text(source)
            command += ["-c", str(folder / "module.cpp"), "-o", str(folder / "module.o")]
            run_limited(command)
            # Linked apart from the fast-math compile: a fast-math link adds crtfastmath.o, whose constructor
            # would switch the whole Python process to flushing subnormals to zero (numpy included).
            run_limited([*self.command, "-shared", "-pthread", str(folder / "module.o"), "-o",
                         str(folder / "module.so")])
            return (folder / "module.so").read_bytes()

    def _prelude(self, options: CompileOptions) -> tuple[Path, Path, str] | None:
        """(header, its precompiled form, key) where GCC's precompiled headers may be used, else None."""
        if self._prelude_usable is None:
            version = subprocess.run([*self.command, "--version"], capture_output=True, text=True, check=False).stdout
            self._prelude_usable = "clang" not in version and "zig" not in " ".join(self.command)
        if not self._prelude_usable:
            return None
        key = CompileCache.key("cpu-prelude-pch", self.fingerprint(), repr(options), headers_checksum())
        try:
            folder = self._cache.artifact_folder()
        except OSError:
            return None
        return folder / f"{key}.h", folder / f"{key}.h.gch", key

    def prepare(self, options: CompileOptions) -> None:
        """Start building the precompiled headers for ``options`` unless they exist or are being built: in a
        detached compiler process, renamed into place only when complete, so that a compile never sees half a
        file."""
        prelude = self._prelude(options)
        if prelude is None:
            return
        header, precompiled, key = prelude
        with self._prelude_lock:
            if key in self._prelude_builds or precompiled.exists():
                return
            temporary = header.with_name(f"{key}.{os.getpid()}.tmp")
            header_temporary = header.with_name(f"{key}.{os.getpid()}.h")
            header_temporary.write_text(PRELUDE)
            os.replace(header_temporary, header)
            command = [*self.command, *compile_flags(options, tuple(self.command)), "-I", str(INCLUDE_DIR), "-x",
                       "c++-header", str(header), "-o", str(temporary)]
            self._prelude_builds[key] = CompileCache.build_artifact(command, temporary, precompiled)
            _HEADER_BUILDS.append(self._prelude_builds[key])
            logger.info("building the precompiled headers in the background, once per compiler and options: %s",
                        precompiled)


def wait_for_header_builds(timeout: float | None = None) -> int:
    """Wait for the precompiled-header builds this process started, up to ``timeout`` seconds in all; return
    how many it started. They run detached (a process ending does not stop them): the demo waits to report one."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for build in _HEADER_BUILDS:
        try:
            build.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            break
    return len(_HEADER_BUILDS)
