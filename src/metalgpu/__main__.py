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


def _check(args) -> int:
    """Translate and compile without running. CUDA needs only NVRTC (no GPU, no driver)."""
    import metalgpu

    try:
        if args.target == "cuda":
            names = _check_cuda(Path(args.file), args.arch)
        else:
            with metalgpu.Interface(args.target) as gpu:
                gpu.load_shader(args.file)
                names = gpu.function_names
    except metalgpu.ShaderCompileError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.file}: compiles for {args.target}; kernels: {', '.join(names)}")
    return 0


def _check_cuda(path: Path, arch: str) -> list[str]:
    from metalgpu.backends.base import CompileOptions, CompilerFailed
    from metalgpu.backends.nvrtc import nvrtc_compile
    from metalgpu.errors import ShaderCompileError
    from metalgpu.msl.diagnostics import parse_log
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess
    from metalgpu.msl.translate import translate

    pre = preprocess(path.read_text(), str(path), (str(path.resolve().parent),))
    translation = translate(pre, parse(pre.tokens, pre.sources), "cuda")
    try:
        nvrtc_compile(translation.source, CompileOptions(), arch)
    except CompilerFailed as failure:
        raise ShaderCompileError(parse_log(failure.log, pre.sources, translation.columns), log=failure.log,
                                 backend="cuda", source=pre.sources.get(str(path), "")) from None
    return [kernel.host_name for kernel in translation.kernels]


def _translate(args) -> int:
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess
    from metalgpu.msl.translate import translate

    path = Path(args.file)
    pre = preprocess(path.read_text(), str(path), (str(path.resolve().parent),))
    print(translate(pre, parse(pre.tokens), args.target).source)
    return 0


def _cache(args) -> int:
    from metalgpu.cache import CompileCache

    cache = CompileCache()
    if args.clear:
        print(f"removed {cache.clear()} entries from {cache.directory}")
    else:
        print(f"{cache.directory}: {len(list(cache.entries()))} entries, {cache.size_bytes() / 1e6:.1f} MB")
    return 0


def main(argv: list[str] | None = None) -> int:
    import metalgpu

    parser = argparse.ArgumentParser(prog="metalgpu", description="Metal Shading Language kernels from Python")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="version, working backends, cache folder").set_defaults(run=_info)
    demo = commands.add_parser("demo", help="compile and run a kernel on the best backend, with timings")
    demo.add_argument("--backend", default=None)
    demo.add_argument("--size", type=int, default=10_000_000)
    demo.set_defaults(run=_demo)
    for name, run, helptext in (("check", _check, "compile a .metal file without running it"),
                                ("translate", _translate, "print the C++ a .metal file becomes")):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("file")
        command.add_argument("--target", default="cpu", choices=("cpu", "cuda"))
        command.add_argument("--arch", default="sm_90", help="CUDA architecture for check --target cuda")
        command.set_defaults(run=run)
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
