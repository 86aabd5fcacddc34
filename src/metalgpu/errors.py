"""The exceptions of metalgpu: every one derives from :class:`MetalError`.

Errors carry fields, not only text, so callers and tests can inspect them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class MetalError(Exception):
    """Base class of every metalgpu error."""

    def __reduce__(self):
        # What BaseException's own gives (the class, its args, the fields set since), as a method of our own:
        # pickling hooks that second-guess BaseException's reduction (tblib's, which Dask's distributed installs
        # for every exception class) then leave ours alone, where they would fail on OutOfMemoryError (a
        # MemoryError, which they cannot create without its constructor).
        return type(self), self.args, self.__dict__ or None


class BackendUnavailableError(MetalError):
    """The requested backend cannot run here; the message says why."""


@dataclass(frozen=True)
class SourcePos:
    """A position in the user's own source: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def line_in(text: str, line: int) -> str | None:
    """Line ``line`` (1-based) of ``text``, without its end, or None past the end. Lines end at "\\n", as the lexer
    counts them; a "\\r" before it is not part of the line."""
    lines = text.split("\n")
    return lines[line - 1].removesuffix("\r") if 0 < line <= len(lines) else None


def source_line(sources: Mapping[str, str], pos: SourcePos | None) -> str | None:
    """The text of ``pos``'s line in the user's files (``sources``: file name -> text), for the caret display of
    a Diagnostic; None where the file or the line is not known."""
    if pos is None or pos.file not in sources:
        return None
    return line_in(sources[pos.file], pos.line)


@dataclass(frozen=True)
class Diagnostic:
    """One compiler or front-end message, located in the user's source when possible."""

    message: str
    pos: SourcePos | None = None
    severity: str = "error"
    source_line: str | None = None  # the text of pos.line, for the caret display

    def format(self) -> str:
        where = f"{self.pos}: " if self.pos else ""
        text = f"{where}{self.severity}: {self.message}"
        if self.pos and self.source_line is not None:
            caret_pad = "".join(c if c == "\t" else " " for c in self.source_line[: self.pos.column - 1])
            text += f"\n    {self.source_line}\n    {caret_pad}^"
        return text


class ShaderCompileError(MetalError):
    """The shader did not compile. ``str(e)`` shows the first errors on the user's lines.

    Fields: ``diagnostics`` (all messages, located), ``log`` (the full compiler output),
    ``backend``, ``source`` (the user's text), ``options``.
    """

    def __init__(self, diagnostics: list[Diagnostic], *, log: str = "", backend: str = "",
                 source: str = "", options: tuple[str, ...] = ()):
        self.diagnostics = list(diagnostics)
        self.log = log
        self.backend = backend
        self.source = source
        self.options = tuple(options)
        errors = [d for d in self.diagnostics if d.severity == "error"] or self.diagnostics
        shown = "\n".join(d.format() for d in errors[:3])
        more = f"\n({len(errors) - 3} more errors; see .diagnostics)" if len(errors) > 3 else ""
        super().__init__(shown + more if shown else (log or "shader compilation failed"))

    def __reduce__(self):
        # Exception pickles its args (here the shown text), which __init__ cannot take back: rebuild from the fields
        # instead, so the error crosses process boundaries (multiprocessing, Dask) whole.
        fields = {"log": self.log, "backend": self.backend, "source": self.source, "options": self.options}
        # The message travels too: a caller may have reworded it (metalgpu.dask names the chunk that failed).
        return _rebuild_compile_error, (type(self), self.diagnostics, fields, self.__dict__, self.args)

    @classmethod
    def at(cls, pos: SourcePos | None, message: str, source_line: str | None = None) -> "ShaderCompileError":
        """A single located error, as the front end raises it; ``source_line`` is the text of ``pos``'s line
        (the function source_line() finds it)."""
        return cls([Diagnostic(message, pos, "error", source_line)])

    @property
    def pos(self) -> SourcePos | None:
        return self.diagnostics[0].pos if self.diagnostics else None

    def dump(self) -> str:
        """The user's source with line numbers, for debugging."""
        width = len(str(self.source.count("\n") + 1))
        return "\n".join(f"{i:>{width}} | {line}" for i, line in enumerate(self.source.splitlines(), 1))


def _rebuild_compile_error(cls, diagnostics, fields, state, args=None):
    error = cls(diagnostics, **fields)
    error.__dict__.update(state)
    if args is not None:
        error.args = args
    return error


class FunctionNotFoundError(MetalError, KeyError):
    """No kernel of that name; the message lists the kernels the library has."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ArgumentError(MetalError, ValueError, TypeError):
    """The arguments do not fit the kernel's signature, the type system or the device's limits."""


class BufferReleasedError(MetalError):
    """The buffer was released; its memory is gone."""


class OutOfMemoryError(MetalError, MemoryError):
    """An allocation failed; the message names the size, the device and what is free."""


class DispatchError(MetalError):
    """The kernel faulted while running."""
