"""Whole-file compile report of the corpus: ``python -m tests.corpus.report --target cpu`` (from the repository root).

For every file of the manifest: does the front end read it, does every kernel compile for the target (with the
compiler alone, as ``metalgpu check FILE --target T`` does: the system C++ compiler, or NVRTC with no GPU), how
many kernels it has and how many compile, and, where the target's backend runs here, how many of the manifest's
runtime kernels run and pass. Prints a table per library
and, with ``--files``, one line per file with the first error.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from dataclasses import dataclass, field

from .harness import ENVIRONMENT, corpus_dir, libraries, load, missing_reason


@dataclass
class FileResult:
    label: str
    status: str          # "skipped", "missing", "front", "compile", "ok"
    kernels: int = 0
    error: str = ""
    seconds: float = 0.0
    ran: int = 0
    passed: int = 0
    failures: list[str] = field(default_factory=list)
    failed: int = 0      # kernels that do not compile


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def compile_file(args: tuple) -> FileResult:
    """Front end and whole-file compile of one file, in a worker process."""
    library_index, file_index, target, jobs = args
    source = libraries()[library_index].files[file_index]
    started = time.perf_counter()
    if source.skip:
        return FileResult(source.label, "skipped", error=source.skip)
    reason = missing_reason(source)
    if reason:
        return FileResult(source.label, "missing", error=reason)
    from metalgpu.msl.parser import parse
    from metalgpu.msl.preprocess import preprocess
    from metalgpu.msl.translate import translate

    folders = (str(source.location.resolve().parent), *source.include_dirs)
    try:
        pre = preprocess(source.location.read_text(), str(source.location), folders)
        program = parse(pre.tokens, pre.sources)
        translate(pre, program, target)
    except Exception as error:  # noqa: BLE001  (any front-end failure is this file's result)
        return FileResult(source.label, "front", error=_first_line(error), seconds=time.perf_counter() - started)
    kernels = len(program.kernels)
    try:  # every kernel, as `metalgpu check FILE --target T` compiles them: the compiler alone, no device
        check = check_file(source, target, jobs)
    except Exception as error:  # noqa: BLE001
        return FileResult(source.label, "compile", kernels, _first_line(error), time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if not check.failures:
        return FileResult(source.label, "ok", kernels, seconds=seconds)
    first = check.failures[min(check.failures)]
    log = first.log or str(first)
    line = next((line for line in log.splitlines() if "error" in line), _first_line(first))
    return FileResult(source.label, "compile", kernels, f"{len(check.failures)} kernels fail: {line.strip()[:300]}",
                      seconds, failed=len(check.failures))


def check_file(source, target: str, jobs: int):
    """Compile every kernel of ``source`` for ``target`` with the compiler alone: library_check.CheckResult."""
    from metalgpu.backends import open_compiler
    from metalgpu.backends.base import CompileOptions
    from metalgpu.cache import CompileCache
    from metalgpu.library import Library
    from metalgpu.library_check import check_library

    cache = CompileCache()
    folders = (str(source.location.resolve().parent), *source.include_dirs)
    library = Library(None, cache, CompileOptions(), source.location.read_text(), str(source.location), folders,
                      compiler=open_compiler(target, cache))
    return check_library(library, jobs)


def run_kernels(source, result: FileResult, backend: str) -> None:
    """Run the file's manifest kernels on ``backend`` (the file compiled; the cache holds it)."""
    import metalgpu

    from .cases import run_case

    with metalgpu.Interface(backend) as interface:
        try:
            load(interface, source)
        except metalgpu.MetalError as error:
            result.failures += [f"{k.name}: {_first_line(error)}" for k in source.kernels]
            result.ran += len(source.kernels)
            return
        for kernel in source.kernels:
            result.ran += 1
            try:
                run_case(interface, kernel)
                result.passed += 1
            except Exception as error:  # noqa: BLE001  (a failing kernel is a row of the report)
                result.failures.append(f"{kernel.name}: {_first_line(error)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus.report", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--corpus", help=f"the corpus folder (default: ${ENVIRONMENT})")
    parser.add_argument("--library", action="append", help="only these libraries (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="compiler runs at once (default 2)")
    parser.add_argument("--no-run", action="store_true", help="compile only, run no kernels")
    parser.add_argument("--files", action="store_true", help="one line per file, with its first error")
    parser.add_argument("--failures", action="store_true", help="list the runtime kernels that failed")
    args = parser.parse_args(argv)
    if args.corpus:
        os.environ[ENVIRONMENT] = os.path.abspath(args.corpus)
    if corpus_dir() is None:
        print(f"no corpus: set ${ENVIRONMENT} or pass --corpus DIR (python -m tests.corpus.fetch DIR fills one)",
              file=sys.stderr)
        return 2
    chosen = [(n, lib) for n, lib in enumerate(libraries()) if not args.library or lib.name in args.library]
    files = [(n, k, args.target, max(1, args.jobs)) for n, lib in chosen for k in range(len(lib.files))]
    by_file = {}
    for job in files:  # one file at a time, its kernels compiled --jobs at a time
        result = compile_file(job)
        by_file[job[:2]] = result
        print(f"{result.status:8} {result.kernels:5} {result.seconds:6.1f}s {result.label}", file=sys.stderr,
              flush=True)
    runnable = _backend_runs(args.target) and not args.no_run
    for (n, k), result in by_file.items():
        source = libraries()[n].files[k]
        if runnable and result.status == "ok" and source.kernels:
            try:
                run_kernels(source, result, args.target)
            except Exception:  # noqa: BLE001
                traceback.print_exc()
    _print_table(args.target, chosen, by_file, runnable)
    if args.files or args.failures:
        for result in by_file.values():
            if args.files:
                print(f"{result.status:8} {result.kernels:5} {result.seconds:6.1f}s {result.label}  {result.error}")
            if args.failures:
                for failure in result.failures:
                    print(f"  FAIL {result.label}::{failure}")
    return 0


def _backend_runs(target: str) -> bool:
    import metalgpu

    return target in metalgpu.backends()


def _print_table(target: str, chosen, by_file: dict, runnable: bool) -> None:
    header = (f"{'library':10} {'files':>5} {'in scope':>8} {'front ok':>8} {f'{target} ok':>8} {'kernels':>8} "
              f"{'compile':>8} {'run':>5} {'passed':>6}")
    print(header)
    print("-" * len(header))
    totals = [0] * 8
    for n, library in chosen:
        results = [by_file[(n, k)] for k in range(len(library.files))]
        row = [len(results), sum(r.status not in ("skipped",) for r in results),
               sum(r.status in ("compile", "ok") for r in results), sum(r.status == "ok" for r in results),
               sum(r.kernels for r in results),
               sum(r.kernels - r.failed for r in results if r.status in ("compile", "ok")),
               sum(r.ran for r in results), sum(r.passed for r in results)]
        totals = [a + b for a, b in zip(totals, row)]
        missing = sum(r.status == "missing" for r in results)
        note = f"  ({missing} files missing from the corpus folder)" if missing else ""
        print(f"{library.name:10} {row[0]:5} {row[1]:8} {row[2]:8} {row[3]:8} {row[4]:8} {row[5]:8} "
              f"{row[6] if runnable else '-':>5} {row[7] if runnable else '-':>6}{note}")
    print(f"{'total':10} {totals[0]:5} {totals[1]:8} {totals[2]:8} {totals[3]:8} {totals[4]:8} {totals[5]:8} "
          f"{totals[6] if runnable else '-':>5} {totals[7] if runnable else '-':>6}")
    if not runnable:
        print(f"(kernels not run: the {target} backend does not run here, or --no-run)")


if __name__ == "__main__":
    sys.exit(main())
