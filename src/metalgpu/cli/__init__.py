"""The command line: ``python -m metalgpu`` (or ``metalgpu``) ``info | demo | bench | check | translate | cache``.

Every command fails on bad input with one line on stderr, ``metalgpu: <what went wrong>``, and a non-zero exit
code (1; 2 for a command line argparse cannot read; 130 after Ctrl-C); ``--traceback`` shows Python's traceback
instead. Output piped into a reader that stops early (``| head``) ends quietly. Long steps (compiles, the builds a
first run makes) show on a terminal's stderr while they run; ``--verbose`` logs them, terminal or not.

Example::

    $ python -m metalgpu info
    $ python -m metalgpu check shader.metal --target cuda
    $ python -m metalgpu translate shader.metal | head
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings

from .._version import __version__
from ..errors import MetalError

ISSUES = "https://github.com/Al0den/metalgpu/issues"
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE if hasattr(signal, "SIGPIPE") else 1  # what a shell reports for SIGPIPE


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (the usage is one `--help` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from ..backends import COMPILE_TARGETS
    from . import bench, commands, demo

    parser = _Parser(prog="metalgpu", description="Metal Shading Language compute kernels from Python, on Metal, "
                     "NVIDIA GPUs or the CPU.", epilog=f"Report bugs at {ISSUES}")
    parser.add_argument("--version", action="version", version=f"metalgpu {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show Python's traceback when a command fails")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each long step (compiles, builds)")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    subcommands.add_parser("info", help="version, each backend (and why one does not work), the compile cache"
                           ).set_defaults(run=commands.info)

    running = subcommands.add_parser("demo", help="compile and run a kernel on the best backend, with timings")
    running.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best that works)")
    running.add_argument("--size", type=int, default=10_000_000, help="floats (default: 10,000,000)")
    running.set_defaults(run=demo.demo)

    timing = subcommands.add_parser("bench", help="a quick benchmark suite against numpy (and CuPy on cuda)")
    timing.add_argument("--backend", default=None, help="metal, cuda or cpu (default: the best that works)")
    timing.add_argument("--size", type=int, default=10_000_000, help="floats of the streaming kernels")
    timing.add_argument("--matrix", type=int, default=256, help="side of the matrix product (a multiple of 16)")
    timing.add_argument("--repeat", type=int, default=5, help="runs of each, after one warm-up (default: 5)")
    timing.set_defaults(run=bench.bench)

    for name, run, helptext in (("check", commands.check, "compile every kernel of a .metal file without running it"),
                                ("translate", commands.translate, "print the C++ a .metal file becomes")):
        command = subcommands.add_parser(name, help=helptext)
        command.add_argument("file")
        command.add_argument("--target", default="cpu", choices=COMPILE_TARGETS if name == "check" else ("cpu", "cuda"))
        command.add_argument("-I", dest="include", action="append", default=[], metavar="DIR",
                             help="a folder where #include resolves (after the file's own folder)")
        command.set_defaults(run=run)
    checking = subcommands.choices["check"]
    checking.add_argument("--arch", default="sm_90", help="CUDA architecture for --target cuda")
    checking.add_argument("--jobs", type=int, default=0, help="compiler runs at a time (default: one per core)")
    subcommands.choices["translate"].add_argument("--kernel", action="append", default=[], metavar="NAME",
                                                  help="only this kernel (repeatable; default: all)")
    clearing = subcommands.add_parser("cache", help="show or clear the compile cache")
    clearing.add_argument("--clear", action="store_true", help="remove every entry and build artifact")
    clearing.set_defaults(run=commands.cache)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (the ``metalgpu`` script and ``python -m metalgpu`` exit with it)."""
    from .progress import show_progress, stop_progress

    args = build_parser().parse_args(argv)
    progress = show_progress(args.verbose)
    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        code = args.run(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        if args.traceback:
            raise
        print("metalgpu: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.traceback:
            raise
        return _report(error)
    finally:
        warnings.formatwarning = formatwarning
        stop_progress(progress)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as the command line says it: what, not where in metalgpu's code."""
    return f"metalgpu: {category.__name__}: {message}\n"


def _report(error: Exception) -> int:
    """One line for a failure: metalgpu's own errors and the system's say what went wrong; anything else is a bug."""
    if isinstance(error, MetalError):  # a compile error's first line is followed by the user's source line
        print(f"metalgpu: {type(error).__name__}: {error}", file=sys.stderr)
    elif isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        print(f"metalgpu: {error.strerror or error}{where}", file=sys.stderr)
    else:
        print(f"metalgpu: internal error, {type(error).__name__}: {error} (run again with --traceback, and please "
              f"report it at {ISSUES})", file=sys.stderr)
    return 1


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (``| head``): stop writing, say nothing. Python would report the
    failed flush of stdout at exit, so stdout is pointed at the null device first."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no file descriptor
        pass
    return EXIT_BROKEN_PIPE
