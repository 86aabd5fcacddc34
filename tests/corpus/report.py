"""Whole-file compile report of the corpus: ``python -m tests.corpus.report --target cpu`` (from the repository root).

For every file of the manifest: does the front end read it, does the whole file compile for the target (cpu: the
C++ compiler through the cpu backend; cuda: NVRTC, no GPU needed), how many kernels it has, and, where the
target's backend runs here, how many of the manifest's runtime kernels run and pass. Prints a table per library
and, with ``--files``, one line per file with the first error.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
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


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def compile_file(args: tuple) -> FileResult:
    """Front end and whole-file compile of one file, in a worker process."""
    library_index, file_index, target = args
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
        translation = translate(pre, program, target)
    except Exception as error:  # noqa: BLE001  (any front-end failure is this file's result)
        return FileResult(source.label, "front", error=_first_line(error), seconds=time.perf_counter() - started)
    kernels = len(program.kernels)
    try:
        if target == "cuda":
            from metalgpu.backends.base import CompileOptions
            from metalgpu.backends.nvrtc import nvrtc_compile

            nvrtc_compile(translation.source, CompileOptions(), "sm_90")
        else:
            import metalgpu

            with metalgpu.Interface("cpu") as interface:
                load(interface, source)
    except Exception as error:  # noqa: BLE001
        log = getattr(error, "log", "") or str(error)
        first = next((line for line in log.splitlines() if "error" in line), _first_line(error))
        return FileResult(source.label, "compile", kernels, first.strip()[:300], time.perf_counter() - started)
    return FileResult(source.label, "ok", kernels, seconds=time.perf_counter() - started)


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
    parser.add_argument("--jobs", type=int, default=2, help="compiles at once (default 2)")
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
    jobs = [(n, k, args.target) for n, lib in chosen for k in range(len(lib.files))]
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(compile_file, jobs))
    by_file = {(n, k): result for (n, k, _), result in zip(jobs, results)}
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
              f"{'run':>5} {'passed':>6}")
    print(header)
    print("-" * len(header))
    totals = [0] * 7
    for n, library in chosen:
        results = [by_file[(n, k)] for k in range(len(library.files))]
        row = [len(results), sum(r.status not in ("skipped",) for r in results),
               sum(r.status in ("compile", "ok") for r in results), sum(r.status == "ok" for r in results),
               sum(r.kernels for r in results), sum(r.ran for r in results), sum(r.passed for r in results)]
        totals = [a + b for a, b in zip(totals, row)]
        missing = sum(r.status == "missing" for r in results)
        note = f"  ({missing} files missing from the corpus folder)" if missing else ""
        print(f"{library.name:10} {row[0]:5} {row[1]:8} {row[2]:8} {row[3]:8} {row[4]:8} "
              f"{row[5] if runnable else '-':>5} {row[6] if runnable else '-':>6}{note}")
    print(f"{'total':10} {totals[0]:5} {totals[1]:8} {totals[2]:8} {totals[3]:8} {totals[4]:8} "
          f"{totals[5] if runnable else '-':>5} {totals[6] if runnable else '-':>6}")
    if not runnable:
        print(f"(kernels not run: the {target} backend does not run here, or --no-run)")


if __name__ == "__main__":
    sys.exit(main())
