"""Command line: ``python -m metalgpu {info,demo,check,translate,cache}``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DEMO_SHADER = """\
#include <metal_stdlib>
using namespace metal;

kernel void saxpy(constant float& a [[buffer(0)]], device const float* x [[buffer(1)]],
                  device float* y [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    y[i] = a * x[i] + y[i];
}
"""


def _info(args) -> int:
    import metalgpu
    from metalgpu.cache import CompileCache

    print(f"metalgpu {metalgpu.__version__}")
    print(f"backends that work here (best first): {', '.join(metalgpu.backends()) or 'none'}")
    print(f"compile cache: {CompileCache().directory}")
    return 0


def _demo(args) -> int:
    import metalgpu

    n = args.size
    started = time.perf_counter()
    with metalgpu.Interface(args.backend) as gpu:
        opened = time.perf_counter()
        gpu.load_shader_from_str(DEMO_SHADER)
        gpu.set_function("saxpy")
        compiled = time.perf_counter()
        x = gpu.array_to_buffer(np.arange(n, dtype=np.float32))
        y = gpu.create_buffer(n, "float")
        y.contents[:] = 1.0
        gpu.run_function(n, [2.0, x, y])  # warm-up: first touch of the memory
        y.contents[:] = 1.0
        run_started = time.perf_counter()
        gpu.run_function(n, [2.0, x, y])
        ran = time.perf_counter()
        expected = 2.0 * np.arange(n, dtype=np.float32) + 1.0
        ok = np.array_equal(y.contents, expected)
        print(f"metalgpu {metalgpu.__version__} demo: saxpy y = 2 x + y over {n:,} floats")
        print(f"  backend   {gpu!r}")
        print(f"  open      {1e3 * (opened - started):8.2f} ms")
        print(f"  compile   {1e3 * (compiled - opened):8.2f} ms (includes the on-disk compile cache)")
        print(f"  run       {1e3 * (ran - run_started):8.2f} ms ({n * 12 / (ran - run_started) / 1e9:.1f} GB/s)")
        print(f"  result    {'correct' if ok else 'WRONG'} (checked against numpy)")
    return 0 if ok else 1


def _shader_source(args) -> tuple[str, str, tuple[str, ...]]:
    """The file's text, its name, and where its includes resolve: next to it, then in each -I folder."""
    from metalgpu.errors import ArgumentError
    from metalgpu.library import read_source

    path = Path(args.file)
    text = read_source(path)
    folders = [path.resolve().parent]
    for folder in args.include:
        if not Path(folder).is_dir():
            raise ArgumentError(f"include folder {folder!r} does not exist")
        folders.append(Path(folder).resolve())
    return text, str(path), tuple(dict.fromkeys(str(folder) for folder in folders))


def _check(args) -> int:
    """Compile every kernel without running any: a compiler needs no device (CUDA: NVRTC, no GPU, no driver)."""
    import os

    from metalgpu.backends import open_compiler
    from metalgpu.backends.base import CompileOptions
    from metalgpu.cache import CompileCache
    from metalgpu.library import Library
    from metalgpu.library_check import check_library, error_summary

    cache = CompileCache()
    compiler = open_compiler(args.target, cache, args.arch)
    library = Library(None, cache, CompileOptions(), *_shader_source(args), compiler=compiler)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    jobs = args.jobs or cores
    result = check_library(library, jobs)
    names = result.names
    summary = (f"{args.file}: {len(names) - len(result.failures)} of {len(names)} kernels compile for {args.target} "
               f"({result.seconds:.1f} s, {result.compiles} compiler runs, {jobs} at a time)")
    if not result.failures:
        print(f"{args.file}: compiles for {args.target}; kernels: {', '.join(names)}")
        print(summary)
        return 0
    by_error: dict[tuple, list[int]] = {}  # failures that print alike, printed once
    errors = {}
    for index, error in sorted(result.failures.items()):
        by_error.setdefault(error_summary(error), []).append(index)
        errors.setdefault(error_summary(error), error)
    for key, indices in by_error.items():
        failing = [names[i] for i in indices]
        shown = ", ".join(failing[:8]) + (f" and {len(failing) - 8} more" if len(failing) > 8 else "")
        print(f"{len(failing)} kernel{'s' if len(failing) > 1 else ''} fail ({shown}):\n{errors[key]}\n",
              file=sys.stderr)
    if result.unisolated:
        print(f"{len(result.unisolated)} of the failing kernels were not compiled alone (the budget of compiler runs "
              "ran out): each shares a run with a kernel that fails, and may itself compile", file=sys.stderr)
    print(f"kernels: {', '.join(names)}")
    print(summary, file=sys.stderr)
    return 1


def _translate(args) -> int:
    from metalgpu.errors import ArgumentError
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess
    from metalgpu.msl.translate import translate

    text, filename, include_dirs = _shader_source(args)
    pre = preprocess(text, filename, include_dirs)
    program = parse(pre.tokens, pre.sources)
    kernels = None
    if args.kernel:
        names = [kernel.host_name for kernel in program.kernels]
        missing = [name for name in args.kernel if name not in names]
        if missing:
            raise ArgumentError(f"no kernel named {', '.join(missing)}; kernels: {', '.join(names)}")
        kernels = [names.index(name) for name in args.kernel]
    print(translate(pre, program, args.target, kernels=kernels).source)
    return 0


def _cache(args) -> int:
    from metalgpu.cache import CompileCache

    cache = CompileCache()
    try:
        if args.clear:
            print(f"removed {cache.clear()} entries from {cache.directory}")
        else:
            print(f"{cache.directory}: {len(list(cache.entries()))} entries, {cache.size_bytes() / 1e6:.1f} MB")
    except OSError as error:  # a read-only or unreadable folder: say so in one line, not a traceback
        where = f" ({error.filename})" if error.filename else ""
        action = "clear" if args.clear else "read"
        print(f"metalgpu: cannot {action} the compile cache in {cache.directory}: {error.strerror or error}{where}",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    import metalgpu
    from metalgpu.backends import COMPILE_TARGETS

    parser = argparse.ArgumentParser(prog="metalgpu", description="Metal Shading Language kernels from Python")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="version, working backends, cache folder").set_defaults(run=_info)
    demo = commands.add_parser("demo", help="compile and run a kernel on the best backend, with timings")
    demo.add_argument("--backend", default=None)
    demo.add_argument("--size", type=int, default=10_000_000)
    demo.set_defaults(run=_demo)
    for name, run, helptext in (("check", _check, "compile every kernel of a .metal file without running it"),
                                ("translate", _translate, "print the C++ a .metal file becomes")):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("file")
        command.add_argument("--target", default="cpu", choices=COMPILE_TARGETS if name == "check" else ("cpu", "cuda"))
        command.add_argument("-I", dest="include", action="append", default=[], metavar="DIR",
                             help="a folder where #include resolves (after the file's own folder)")
        command.set_defaults(run=run)
    checking = commands.choices["check"]
    checking.add_argument("--arch", default="sm_90", help="CUDA architecture for --target cuda")
    checking.add_argument("--jobs", type=int, default=0, help="compiler runs at a time (default: one per core)")
    commands.choices["translate"].add_argument("--kernel", action="append", default=[], metavar="NAME",
                                               help="only this kernel (repeatable; default: all)")
    cache = commands.add_parser("cache", help="show or clear the compile cache")
    cache.add_argument("--clear", action="store_true")
    cache.set_defaults(run=_cache)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except metalgpu.MetalError as error:
        print(f"metalgpu: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
