"""The corpus harness: the pinned manifest, where the sources are, loading a file, buffers and checks.

The sources live outside the project, in the folder ``$METALGPU_CORPUS_DIR`` names (layout
``<folder>/<path>``, as ``manifest.toml`` gives them; ``python -m tests.corpus.fetch`` fills it by git). When the
variable is unset or a library's folder is missing, the tests that need it skip and say so.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from .tolerances import tolerance

MANIFEST = Path(__file__).with_name("manifest.toml")
ENVIRONMENT = "METALGPU_CORPUS_DIR"


@dataclass(frozen=True)
class Kernel:
    name: str
    case: str
    family: str
    params: dict[str, Any]
    xfail: str | None = None  # why the library's own kernel is wrong here (undefined behaviour, a race)
    xfail_cuda: str | None = None  # why it is wrong on CUDA only (undefined behaviour that Apple's GPUs forgive)


@dataclass(frozen=True)
class SourceFile:
    library: Library
    path: str
    commit: str
    skip: str | None
    kernels: tuple[Kernel, ...]
    # Folders of this file's own header versions, searched before the library's (a kernel file of one commit with
    # the headers of that era), and the headers fetch.py writes into the first: ((path, commit), ...).
    own_include_dirs: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def location(self) -> Path | None:
        root = corpus_dir()
        return root / self.library.folder / self.path if root is not None else None

    @property
    def include_dirs(self) -> list[str]:
        root = corpus_dir()
        folders = (*self.own_include_dirs, *self.library.include_dirs)
        return [str(root / self.library.folder / folder) for folder in folders] if root else []

    @property
    def label(self) -> str:
        return f"{self.library.name}/{Path(self.path).name}"


@dataclass(frozen=True)
class Library:
    name: str
    repository: str
    commit: str
    folder: str
    include_dirs: tuple[str, ...]
    files: list[SourceFile] = field(default_factory=list, compare=False, hash=False)


@lru_cache(maxsize=1)
def libraries() -> tuple[Library, ...]:
    """The manifest, read once."""
    data = tomllib.loads(MANIFEST.read_text())
    found = []
    for entry in data["library"]:
        library = Library(entry["name"], entry["repository"], entry["commit"], entry["folder"],
                          tuple(entry.get("include_dirs", ())))
        for item in entry.get("file", ()):
            kernels = tuple(Kernel(k["name"], k["case"], k["family"],
                                   {key: value for key, value in k.items()
                                    if key not in ("name", "case", "family", "xfail", "xfail_cuda")},
                                   k.get("xfail"), k.get("xfail_cuda"))
                            for k in item.get("kernels", ()))
            headers = tuple((h["path"], h["commit"]) for h in item.get("headers", ()))
            library.files.append(SourceFile(library, item["path"], item.get("commit", library.commit),
                                            item.get("skip"), kernels, tuple(item.get("include_dirs", ())),
                                            headers))
        found.append(library)
    return tuple(found)


def corpus_dir() -> Path | None:
    value = os.environ.get(ENVIRONMENT, "").strip()
    return Path(value) if value else None


def missing_reason(source: SourceFile) -> str | None:
    """Why ``source`` cannot be read here, or None when it can."""
    root = corpus_dir()
    if root is None:
        return (f"{ENVIRONMENT} is not set: point it at a folder of the corpus sources "
                "(python -m tests.corpus.fetch fills one)")
    if not source.location.is_file():
        return f"{source.location} is missing: {source.library.repository} at {source.commit[:12]} is not in {root}"
    return None


def load(interface, source: SourceFile) -> None:
    """Load ``source`` with its library's include folders into ``interface``."""
    interface.load_shader(str(source.location), include_dirs=source.include_dirs)


# --- buffers ----------------------------------------------------------------------------------------------------

NUMPY_OF = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8, "uint32": np.uint32,
            "int32": np.int32, "int64": np.int64, "int16": np.int16, "uint16": np.uint16, "int8": np.int8,
            "uint64": np.uint64}
METAL_OF = {"float32": "float", "float16": "half", "bfloat16": "bfloat", "uint8": "uchar", "uint32": "uint",
            "int32": "int", "int64": "long", "int16": "short", "uint16": "ushort", "int8": "char", "uint64": "ulong"}


def round_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` as the device will hold them in ``dtype``, as float64 (bfloat16: round to nearest even)."""
    values = np.asarray(values)
    if dtype == "bfloat16":
        bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint32) << 16
        return rounded.astype(np.uint32).view(np.float32).astype(np.float64)
    return values.astype(NUMPY_OF[dtype]).astype(np.float64)


def to_device(interface, values: Any, dtype: str):
    """A new buffer holding ``values`` converted to ``dtype`` (a numpy name, or "bfloat16")."""
    values = np.asarray(values)
    buffer = interface.create_buffer(max(values.size, 1), METAL_OF[dtype])
    if values.size:
        if dtype == "bfloat16":  # the bit patterns: Buffer.write would truncate to integers without ml_dtypes
            bits = (round_to(values.reshape(-1), dtype).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
            buffer.contents.view(np.uint16)[:] = bits
        else:
            buffer.contents[:] = values.reshape(-1).astype(NUMPY_OF[dtype])
    return buffer


def from_device(buffer, dtype: str) -> np.ndarray:
    """A buffer's values: 64-bit integers as they are (exact), bfloat16 decoded from its bits, the rest float64."""
    raw = buffer.read().reshape(-1)
    if dtype == "bfloat16":
        bits = raw.view(np.uint16) if raw.dtype.itemsize == 2 else raw
        return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return raw if raw.dtype in (np.int64, np.uint64) else raw.astype(np.float64)


def check(actual: np.ndarray, expected: np.ndarray, family: str, dtype: str, what: str) -> None:
    """Assert ``actual`` matches ``expected`` within the family's tolerance for ``dtype``."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    rtol, atol = tolerance(family, dtype)
    if rtol == 0 and atol == 0:
        bad = ~((actual == expected) | (np.isnan(actual) & np.isnan(expected)))
    else:
        bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        where = np.argwhere(bad)[:5].tolist()
        got = [actual[tuple(w)] for w in where]
        want = [expected[tuple(w)] for w in where]
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} values differ beyond rtol={rtol} "
                             f"atol={atol} ({family}, {dtype}); first at {where}: got {got}, expected {want}")
