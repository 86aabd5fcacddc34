"""The exceptions of metalgpu: every one derives from :class:`MetalError`.

Errors carry fields, not only text, so callers and tests can inspect them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class MetalError(Exception):
    """The base class of every error metalgpu raises: ``except metalgpu.MetalError`` catches them all.

    Raised as itself for misuse of an Interface's state: no shader loaded, no function set, the Interface closed.
    Every metalgpu exception pickles with its fields, so errors raised in Dask workers or other processes arrive
    whole.

    Example:
        >>> import metalgpu
        >>> gpu = metalgpu.Interface()
        >>> try:
        ...     gpu.set_function("add")
        ... except metalgpu.MetalError as error:
        ...     print(error)
        no shader is loaded: call load_shader() or load_shader_from_str() first
    """

    def __reduce__(self):
        # What BaseException's own gives (the class, its args, the fields set since), as a method of our own:
        # pickling hooks that second-guess BaseException's reduction (tblib's, which Dask's distributed installs
        # for every exception class) then leave ours alone, where they would fail on OutOfMemoryError (a
        # MemoryError, which they cannot create without its constructor).
        return type(self), self.args, self.__dict__ or None


class BackendUnavailableError(MetalError):
    """The backend asked for cannot run here: ``Interface(backend=...)``, or ``Interface()`` when none works.

    The message says why (no NVIDIA driver or GPU, no C++ compiler, the extra not installed, not in this release)
    and what to install. On cuda it is also raised by a new Interface after a kernel fault made the process's GPU
    context unusable: only a new process can use the GPU again.

    Example:
        >>> import metalgpu
        >>> try:
        ...     metalgpu.Interface(backend="metal")
        ... except metalgpu.BackendUnavailableError as error:
        ...     print(error)
        the metal backend is not in this release of metalgpu yet; use backend='cpu' or 'cuda'
    """


@dataclass(frozen=True)
class SourcePos:
    """A position in the user's own source: the file (``"<string>"`` for source text), the 1-based line and
    column. ``str(pos)`` is ``file:line:column``."""

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
    """One compiler or front-end message, located in the user's source when possible.

    Attributes:
        message: the message, without its position.
        pos: where it points (a :class:`SourcePos`), or None.
        severity: ``"error"``, ``"warning"`` or ``"note"``.
        source_line: the text of the line ``pos`` points at, for the caret display.
    """

    message: str
    pos: SourcePos | None = None
    severity: str = "error"
    source_line: str | None = None  # the text of pos.line, for the caret display

    def format(self) -> str:
        """``file:line:column: severity: message``, then the source line and a caret under the column."""
        where = f"{self.pos}: " if self.pos else ""
        text = f"{where}{self.severity}: {self.message}"
        if self.pos and self.source_line is not None:
            caret_pad = "".join(c if c == "\t" else " " for c in self.source_line[: self.pos.column - 1])
            text += f"\n    {self.source_line}\n    {caret_pad}^"
        return text


class ShaderCompileError(MetalError):
    """The shader did not compile: raised by ``load_shader``, ``load_shader_from_str`` and, for a kernel of a big
    library, ``set_function``.

    ``str(error)`` shows the first three errors, each on the user's own file, line and column (never on generated
    code), with the source line and a caret. The front end's own refusals (C++ that Metal has not, an include out
    of bounds, a compile limit) are ShaderCompileErrors too.

    Attributes:
        diagnostics: every message, as :class:`Diagnostic` records, located where possible.
        log: the compiler's whole output.
        backend: the target compiled for (``"cpu"``, ``"cuda"``).
        source: the user's source text (``dump()`` prints it with line numbers).
        options: the compiler command or options.

    Example:
        >>> import metalgpu
        >>> gpu = metalgpu.Interface()
        >>> try:
        ...     gpu.load_shader_from_str('''kernel void k(device float* x [[buffer(0)]]) {
        ...     x[0] = missing;
        ... }''')
        ... except metalgpu.ShaderCompileError as error:
        ...     first = error.diagnostics[0]
        >>> first.pos.line, first.pos.column, first.severity
        (2, 12, 'error')
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
        """The position of the first message, or None."""
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
    """No kernel of that name in the loaded shader (``set_function``, ``run_function(function_name=)``); the
    message lists the kernels the shader has. Also a ``KeyError``.

    Example:
        >>> import metalgpu
        >>> gpu = metalgpu.Interface()
        >>> gpu.load_shader_from_str("kernel void add(device float* x [[buffer(0)]]) { x[0] += 1.0f; }")
        >>> try:
        ...     gpu.set_function("ad")
        ... except metalgpu.FunctionNotFoundError as error:
        ...     print(error)
        no kernel named 'ad' in the loaded shader; kernels: add
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ArgumentError(MetalError, ValueError, TypeError):
    """The arguments do not fit: the kernel's signature, Metal's types or the device's limits. Nothing ran.

    ``run_function`` raises it, naming the kernel's parameter, for a missing or extra buffer slot, a buffer too
    small or of another element type, a value for a writable parameter, a threadgroup over the kernel's limit or
    threadgroup memory missing or too large; the Interface and Buffer methods raise it for arguments of the wrong
    kind or value. Also a ``ValueError`` and a ``TypeError``.

    Example:
        >>> import numpy as np
        >>> import metalgpu
        >>> gpu = metalgpu.Interface()
        >>> gpu.load_shader_from_str("kernel void neg(device float* x [[buffer(0)]]) { x[0] = -x[0]; }")
        >>> ints = gpu.array_to_buffer(np.arange(4, dtype=np.int32))
        >>> try:
        ...     gpu.run_function(1, [ints], "neg")
        ... except metalgpu.ArgumentError as error:
        ...     print(error)
        kernel 'neg' parameter 'x' (device float * [[buffer(0)]]) points at float (4-byte float), but the buffer
        holds int (4-byte integer); convert it (buffer.astype('float')) or reinterpret its bytes explicitly
        (buffer.view('float'))
    """


class BufferReleasedError(MetalError):
    """The buffer was released (``release()``): its memory is gone, and using it (``contents``, ``read``, binding
    it to a kernel) raises this.

    Example:
        >>> import metalgpu
        >>> gpu = metalgpu.Interface()
        >>> buffer = gpu.create_buffer(4, "float")
        >>> buffer.release()
        >>> try:
        ...     buffer.read()
        ... except metalgpu.BufferReleasedError:
        ...     print("released")
        released
    """


class OutOfMemoryError(MetalError, MemoryError):
    """An allocation failed, or would exceed the device's free memory; the message names the size, the device and
    what is free. Also a ``MemoryError``.

    Example:
        >>> import metalgpu
        >>> gpu = metalgpu.Interface()
        >>> try:
        ...     gpu.create_buffer(1 << 60, "float")
        ... except metalgpu.OutOfMemoryError:
        ...     print("too big")
        too big
    """


class DispatchError(MetalError):
    """The kernel faulted while running (an invalid address, an integer division by zero on the cpu), or ran
    longer than its ``timeout`` (cpu backend). Raised by ``run_function``, ``Dispatch.wait()`` or
    ``synchronize()``.

    Buffers the kernel wrote may hold partial results. The message says whether the Interface is still usable: on
    the cpu backend it is; on cuda a fault leaves the process's GPU context unusable (a new process is needed),
    which ``debug=True`` avoids by catching out-of-bounds accesses before they fault.

    Example:
        >>> import metalgpu
        >>> gpu = metalgpu.Interface(backend="cpu")
        >>> gpu.load_shader_from_str('''
        ... kernel void divide(device int* out [[buffer(0)]], constant int& d [[buffer(1)]]) { out[0] = 100 / d; }''')
        >>> out = gpu.create_buffer(1, "int")
        >>> try:
        ...     gpu.run_function(1, [out, 0], "divide")
        ... except metalgpu.DispatchError as error:
        ...     print(str(error).split(" (")[0])
        kernel 'divide' faulted
    """
