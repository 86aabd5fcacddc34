"""The on-disk compile cache: compiled binaries, found by a hash of everything that made them.

Backends never touch the disk; the library asks this cache. Layout under the cache folder:

    <key[:2]>/<key>.bin    the binary, raw, so a backend can dlopen it where it lies
    <key[:2]>/<key>.json   the sidecar: {"format", "sha256", "size", "meta"}, JSON only

Each file is written to a temporary file in its own folder and moved into place with ``os.replace``, binary
first, so a reader sees a whole old file or a whole new one, and an entry exists only once its sidecar does.
A sidecar that does not describe its binary exactly reads as a miss. There are no locks: writers of one key
write the same bytes, because the key covers everything that changes them.

A binary is native code this process loads, so the cache trusts only what this user (or root) wrote where nobody
else could change it (see ``untrusted_reason``): a folder that fails the test is neither read nor written, with
a warning, and the process caches in a private temporary folder instead; an entry that fails it is a miss. A
folder that cannot be written (read-only, a full disk) falls back the same way, and where the temporary folder
cannot be written either, compiled modules stay in memory (Linux: an anonymous memory file), with one warning.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FORMAT_VERSION", "CacheEntry", "CacheFallbackWarning", "CacheTrustWarning", "CompileCache",
           "default_directory", "untrusted_reason"]

FORMAT_VERSION = 1  # bump when the layout, the sidecar or what a binary means changes

_KEY = re.compile(r"[0-9a-f]{64}")
# Background builds this process started (CompileCache.build_artifact). They outlive it by design; at exit those
# already done are reaped, so that only builds still running are left (and reported as such by subprocess).
_BUILDS: list[subprocess.Popen] = []
atexit.register(lambda: [build.poll() for build in _BUILDS])
_CACHE_FILE = re.compile(r"([0-9a-f]{64})\.(bin|json)(\..+\.tmp)?")


class CacheFallbackWarning(UserWarning):
    """The cache folder cannot be written; this process caches in a temporary folder (or in memory) instead."""


class CacheTrustWarning(CacheFallbackWarning):
    """The cache folder, or an entry in it, could have been written by another user: it is not loaded."""


_warned_untrusted: set[str] = set()  # folders already reported in this process: one warning each


@dataclass(frozen=True)
class CacheEntry:
    """A cached binary: ``path`` is its file (for dlopen), ``binary`` its bytes, ``meta`` what the compiler said
    about it (bindings and the like)."""

    path: Path
    binary: bytes
    meta: dict


def default_directory() -> Path:
    """``$METALGPU_CACHE_DIR`` if set, else this platform's per-user cache folder."""
    configured = os.environ.get("METALGPU_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "metalgpu"
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        return Path(local) / "metalgpu" / "Cache"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "metalgpu"


class CompileCache:
    """Compiled binaries on disk, by key. The folder is created on the first store.

    If it cannot be written, the cache warns once and keeps this process's entries in a private temporary
    folder, removed when the cache object goes away; entries already in the folder can still be read.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory).expanduser() if directory is not None else default_directory()
        self._fallback: Path | None = None
        self._trusted: bool | None = None  # whether self.directory passed the trust test; None: not asked yet
        self._in_memory: dict[str, CacheEntry] = {}  # where no folder can be written
        self._memory_files: list[int] = []

    @staticmethod
    def key(*parts: str | bytes) -> str:
        """The key of an entry: a SHA-256 over the format version and the length-prefixed ``parts``, which must
        name everything that changes the binary (source, options, target, compiler version, headers)."""
        digest = hashlib.sha256()
        for part in (f"metalgpu cache format {FORMAT_VERSION}", *parts):
            if isinstance(part, str):
                part = part.encode()
            elif not isinstance(part, (bytes, bytearray, memoryview)):
                raise TypeError(f"cache key parts are str or bytes, not {type(part).__name__}")
            data = bytes(part)
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return digest.hexdigest()

    def load(self, key: str) -> CacheEntry | None:
        """The entry stored under ``key``, or ``None`` if there is no valid one."""
        if key in self._in_memory:
            return self._in_memory[key]
        for folder in self._folders():
            entry = _read_entry(folder, key)
            if entry is None:
                continue
            reason = _untrusted_entry(entry.path)
            if reason is None:
                return entry
            self._distrust(reason)
        return None

    def store(self, key: str, binary: bytes, meta: dict) -> CacheEntry:
        """Write an entry (replacing any under ``key``) and return it. ``meta`` must be JSON-serializable; the
        entry's ``meta`` is its JSON round trip, as a later :meth:`load` returns it."""
        binary = bytes(binary)
        if not isinstance(meta, dict):
            raise TypeError(f"cache meta must be a dict, not {type(meta).__name__}")
        sidecar = {"format": FORMAT_VERSION, "sha256": hashlib.sha256(binary).hexdigest(),
                   "size": len(binary), "meta": meta}
        try:
            text = json.dumps(sidecar, sort_keys=True)
        except (TypeError, ValueError) as e:
            raise TypeError(f"cache meta must be plain JSON data: {e}") from None
        meta = json.loads(text)["meta"]
        folder = self._writable_folder()
        error = OSError("no private temporary folder could be made")
        if folder is not None:
            try:
                return CacheEntry(_write_entry(folder, key, binary, text), binary, meta)
            except OSError as e:
                error = e
        if folder == self.directory:
            try:
                entry = CacheEntry(_write_entry(self._start_fallback(error, warn=False), key, binary, text), binary,
                                   meta)
            except OSError as e:
                error = e
            else:
                self._warn_fallback(error)
                return entry
        return self._store_in_memory(key, binary, meta, error)

    def get_or_build(self, key: str, build: Callable[[], tuple[bytes, dict]]) -> tuple[CacheEntry, bool]:
        """The entry under ``key``, built with ``build()`` and stored if missing; the bool says it was a hit."""
        entry = self.load(key)
        if entry is not None:
            return entry, True
        binary, meta = build()
        return self.store(key, binary, meta), False

    def artifact_folder(self) -> Path:
        """A folder for files a compiler itself writes and validates (GCC's precompiled headers), created if
        needed. Files there must be written under a temporary name and renamed into place."""
        folder = self._writable_folder()
        if folder is not None:
            try:
                return self._artifacts_in(folder)
            except OSError:
                pass
        if self._fallback is not None and folder != self._fallback:  # the cache folder was just found untrusted
            return self._artifacts_in(self._fallback)
        if folder is not None and folder == self._fallback:
            raise OSError("no writable cache folder")
        return self._artifacts_in(self._start_fallback(OSError("not writable")))

    def _artifacts_in(self, folder: Path) -> Path:
        artifacts = folder / "artifacts"
        _make_private_folder(artifacts)
        reason = untrusted_reason(artifacts)
        if reason is not None:
            self._distrust(reason)
            raise OSError(reason)
        return artifacts

    @staticmethod
    def build_artifact(command: list[str], temporary: Path, final: Path, log: Path | None = None) -> subprocess.Popen:
        """Run ``command``, a compiler writing ``temporary`` in the artifact folder, in a process of its own that
        outlives ours, and rename its output to ``final`` only when complete, so nobody sees half a file. A failed
        build leaves its error output in ``log``, if given, and nothing else."""
        script = ('tmp=$1; final=$2; log=$3; shift 3; if "$@" 2>"${log:-/dev/null}"; then mv -f "$tmp" "$final"; '
                  'if [ -n "$log" ]; then rm -f "$log"; fi; else rm -f "$tmp"; fi')
        build = subprocess.Popen(["sh", "-c", script, "sh", str(temporary), str(final), str(log or ""), *command],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        _BUILDS.append(build)
        return build

    def entries(self) -> list[str]:
        """The keys that have an entry (not verified: :meth:`load` does that)."""
        return sorted({match[1] for _, match in self._cache_files() if _is_sidecar(match)})

    def artifacts(self) -> list[Path]:
        """The files in the artifact folders: what compilers wrote there themselves (GCC's precompiled headers,
        the cuda backend's compiled repeat path), with their logs and any leftover temporary file."""
        files = []
        for folder in self._all_folders():
            with contextlib.suppress(OSError):  # no artifact folder yet, or not readable
                files += [path for path in (folder / "artifacts").iterdir() if path.is_file()]
        return sorted(files)

    def size_bytes(self, artifacts: bool = True) -> int:
        """The bytes the cache's files take: its entries and (``artifacts``) its artifact files."""
        paths = [path for path, _ in self._cache_files()] + (self.artifacts() if artifacts else [])
        total = 0
        for path in paths:
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def clear(self) -> int:
        """Remove every entry (and leftover temporary files); return how many entries there were. A file that
        cannot be removed (a read-only folder) raises its OSError."""
        removed = 0
        for path, match in self._cache_files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                if _is_sidecar(match):
                    removed += 1
        for folder in self._all_folders():
            for sub in _subfolders(folder):
                with contextlib.suppress(OSError):
                    sub.rmdir()  # only when empty: the folder may hold files that are not ours
            shutil.rmtree(folder / "artifacts", ignore_errors=True)
        return removed

    def _folders(self) -> list[Path]:
        """The folders entries are read from: the cache folder unless it is untrusted, then any fallback."""
        if self._trusted is None:
            reason = untrusted_reason(self.directory)
            self._trusted = True
            if reason is not None:
                self._distrust(reason)
        mine = [self.directory] if self._trusted else []
        return mine + ([self._fallback] if self._fallback is not None else [])

    def _writable_folder(self) -> Path | None:
        """Where a store goes: the fallback once there is one (the cache folder failed a write, or trust), else
        the cache folder if trusted; None where neither can be used."""
        self._folders()
        if self._fallback is not None:
            return self._fallback
        return self.directory if self._trusted else None

    def _distrust(self, reason: str) -> None:
        """Stop using the cache folder for this process: warn once, and cache in a private folder instead."""
        self._trusted = False
        if str(self.directory) not in _warned_untrusted:
            _warned_untrusted.add(str(self.directory))
            warnings.warn(f"not using the compile cache in {self.directory}: {reason}; shaders are compiled "
                          "afresh into a private folder. Make the folder yours and writable only by you "
                          "(chmod go-w), or set METALGPU_CACHE_DIR to such a folder", CacheTrustWarning,
                          stacklevel=4)
        if self._fallback is None:
            with contextlib.suppress(OSError):  # none can be made (a full disk): stores go to memory
                self._fallback = Path(tempfile.mkdtemp(prefix="metalgpu-cache-"))
                weakref.finalize(self, shutil.rmtree, str(self._fallback), ignore_errors=True)

    def _store_in_memory(self, key: str, binary: bytes, meta: dict, error: OSError) -> CacheEntry:
        """No folder can be written (a full disk): keep the entry in this process, in a memory file that a backend
        can still load by its path (Linux); elsewhere the write's error stands."""
        if not hasattr(os, "memfd_create"):
            raise error
        if not self._in_memory:
            warnings.warn(f"cannot write the compile cache in {self.directory} nor in a temporary folder ({error}); "
                          "compiled shaders are kept in memory for this process only", CacheFallbackWarning,
                          stacklevel=4)
        fd = os.memfd_create(f"metalgpu-{key[:16]}")
        if not self._memory_files:
            weakref.finalize(self, _close_all, self._memory_files)
        self._memory_files.append(fd)
        os.write(fd, binary)
        entry = CacheEntry(Path(f"/proc/self/fd/{fd}"), binary, meta)
        self._in_memory[key] = entry
        return entry

    def _all_folders(self) -> list[Path]:
        """Every folder that may hold entries, trusted or not: what entries(), size_bytes() and clear() see."""
        return [self.directory] + ([self._fallback] if self._fallback is not None else [])

    def _cache_files(self):
        for folder in self._all_folders():
            for sub in _subfolders(folder):
                for path in sub.iterdir():
                    match = _CACHE_FILE.fullmatch(path.name)
                    if match and match[1][:2] == sub.name:
                        yield path, match

    def _start_fallback(self, error: OSError, warn: bool = True) -> Path:
        """The private temporary folder stores go to from now on (raises OSError where none can be made)."""
        self._fallback = Path(tempfile.mkdtemp(prefix="metalgpu-cache-"))
        weakref.finalize(self, shutil.rmtree, str(self._fallback), ignore_errors=True)
        if warn:
            self._warn_fallback(error)
        return self._fallback

    def _warn_fallback(self, error: OSError) -> None:
        warnings.warn(f"cannot write the compile cache in {self.directory} ({error}); caching in "
                      f"{self._fallback} for this process only", CacheFallbackWarning, stacklevel=4)


def untrusted_reason(folder: Path) -> str | None:
    """Why ``folder`` (an existing one; a missing one is fine, it will be made private) could hold files that
    another user wrote, or None: it must belong to this user or root, and be writable by nobody else unless it is
    sticky (as /tmp is: then others cannot replace what is ours). Windows has no such bits: always None."""
    if not hasattr(os, "geteuid"):
        return None
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot inspect it ({error.strerror})"
    if info.st_uid not in (os.geteuid(), 0):
        return f"{folder} belongs to another user (uid {info.st_uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        return f"{folder} is writable by {'others' if info.st_mode & stat.S_IWOTH else 'its group'}"
    return None


def _untrusted_entry(binary_path: Path) -> str | None:
    """Why an entry found in a trusted cache folder may not be loaded: its subfolder or a file of it may have been
    written by another user (see untrusted_reason), or None."""
    if not hasattr(os, "geteuid"):
        return None
    reason = untrusted_reason(binary_path.parent)
    if reason is not None:
        return reason
    for path in (binary_path, binary_path.with_suffix(".json")):
        try:
            info = os.stat(path)
        except OSError:
            continue  # gone since it was read: the next load misses
        if info.st_uid not in (os.geteuid(), 0):
            return f"{path} belongs to another user (uid {info.st_uid})"
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"{path} is writable by other users"
    return None


def _make_private_folder(folder: Path) -> None:
    """Create ``folder`` readable and writable by this user only, and its parents as usual; an existing one is
    left as it is."""
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)


def _close_all(descriptors: list[int]) -> None:
    for fd in descriptors:
        with contextlib.suppress(OSError):
            os.close(fd)


def _paths(folder: Path, key: str) -> tuple[Path, Path]:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"not a cache key (use CompileCache.key): {key!r}")
    sub = folder / key[:2]
    return sub / f"{key}.bin", sub / f"{key}.json"


def _is_sidecar(match: re.Match) -> bool:
    return match[2] == "json" and match[3] is None


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [sub for sub in folder.iterdir() if len(sub.name) == 2 and sub.is_dir()]
    except OSError:  # no folder yet, or not readable
        return []


def _read_entry(folder: Path, key: str) -> CacheEntry | None:
    binary_path, sidecar_path = _paths(folder, key)
    try:
        sidecar_bytes = sidecar_path.read_bytes()
    except OSError:
        return None  # no entry
    try:
        sidecar = json.loads(sidecar_bytes)
        binary = binary_path.read_bytes()
    except (OSError, ValueError):  # not JSON, or the binary is gone
        _discard(sidecar_path)
        return None
    if not _describes(sidecar, binary):
        _discard(sidecar_path)
        return None
    return CacheEntry(binary_path, binary, sidecar["meta"])


def _describes(sidecar: object, binary: bytes) -> bool:
    return (isinstance(sidecar, dict)
            and sidecar.get("format") == FORMAT_VERSION
            and sidecar.get("size") == len(binary)
            and isinstance(sidecar.get("meta"), dict)
            and sidecar.get("sha256") == hashlib.sha256(binary).hexdigest())


def _discard(sidecar_path: Path) -> None:
    """Unmake a bad entry by removing its sidecar, best effort. The binary stays until the next store replaces
    it: another process may have just been handed its path and be about to open it."""
    with contextlib.suppress(OSError):
        sidecar_path.unlink()


def _write_entry(folder: Path, key: str, binary: bytes, sidecar_text: str) -> Path:
    binary_path, sidecar_path = _paths(folder, key)
    _make_private_folder(folder)
    _make_private_folder(binary_path.parent)
    _write_atomically(binary_path, binary)
    _write_atomically(sidecar_path, sidecar_text.encode())
    return binary_path


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
