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
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

from ..cache import CompileCache
from ..errors import BackendUnavailableError
from ..msl.abi import INCLUDE_DIR, headers_checksum
from .base import CompileOptions, Compiler, CompilerFailed

PRELUDE = "#include <metal_stdlib>\n#include <metal/_launch_cpu.h>\n"  # what every translation starts with


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


def compile_flags(options: CompileOptions) -> list[str]:
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
    return flags


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
            self._fingerprint = f"cpu {' '.join(self.command[1:])} {identity} -fwrapv {_cpu_identity()}"
        return self._fingerprint

    def compile(self, source: str, options: CompileOptions) -> bytes:
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
            command = [*self.command, *compile_flags(options), "-I", str(INCLUDE_DIR)]
            if prelude is not None:
                command += ["-include", str(prelude)]
            (folder / "module.cpp").write_text(source)
            command += ["-c", str(folder / "module.cpp"), "-o", str(folder / "module.o")]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise CompilerFailed(done.stderr + done.stdout, tuple(command))
            # Linked apart from the fast-math compile: a fast-math link adds crtfastmath.o, whose constructor
            # would switch the whole Python process to flushing subnormals to zero (numpy included).
            link = [*self.command, "-shared", "-pthread", str(folder / "module.o"), "-o", str(folder / "module.so")]
            done = subprocess.run(link, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise CompilerFailed(done.stderr + done.stdout, tuple(link))
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
            command = [*self.command, *compile_flags(options), "-I", str(INCLUDE_DIR), "-x", "c++-header",
                       str(header), "-o", str(temporary)]
            self._prelude_builds[key] = CompileCache.build_artifact(command, temporary, precompiled)
