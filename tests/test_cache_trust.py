"""The compile cache loads only what this user wrote where nobody else could change it, and never fails a compile
for want of disk space: an untrusted folder or entry is not loaded (a warning, then a private folder); a full disk
falls back to memory with one warning; `metalgpu cache --clear` on a folder it cannot change says so in a line."""
from __future__ import annotations

import errno
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest

import metalgpu
import metalgpu.cache
from metalgpu.__main__ import main
from metalgpu.cache import CacheFallbackWarning, CacheTrustWarning, CompileCache, untrusted_reason

BINARY = b"\x7fELF pretend module " * 10
META = {"kernels": ["k"]}
OTHER_UID = 54321

SHADER = """#include <metal_stdlib>
using namespace metal;
kernel void scale(device float* values [[buffer(0)]], uint i [[thread_position_in_grid]]) { values[i] *= %s; }
"""


@pytest.fixture
def foreign(monkeypatch):
    """Make files look written by another user: chown where we may (root), else change who we are."""
    def make_foreign(*paths: Path) -> None:
        if os.geteuid() == 0:
            for path in paths:
                os.chown(path, OTHER_UID, OTHER_UID)
        else:
            real = os.geteuid()
            monkeypatch.setattr(metalgpu.cache.os, "geteuid", lambda: real + 1)
    return make_foreign


def stored(folder: Path, name: str = "entry") -> tuple[str, Path]:
    """An entry written by a trusted cache in ``folder``: (its key, its binary's path)."""
    cache = CompileCache(folder)
    key = cache.key(name)
    return key, cache.store(key, BINARY, META).path


def quiet_load(cache: CompileCache, key: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a trusted folder loads without a word
        return cache.load(key)


def test_folders_and_files_are_created_private(tmp_path):
    key, path = stored(tmp_path / "deep" / "cache")
    for folder in (tmp_path / "deep" / "cache", path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert quiet_load(CompileCache(tmp_path / "deep" / "cache"), key).binary == BINARY
    assert (CompileCache(tmp_path / "deep" / "cache").artifact_folder().stat().st_mode & 0o777) == 0o700


@pytest.mark.parametrize("mode, who", [(0o775, "its group"), (0o757, "others"), (0o777, "others")])
def test_a_folder_others_can_write_is_not_loaded(tmp_path, mode, who):
    folder = tmp_path / f"shared-{mode:o}"
    key, _ = stored(folder)
    folder.chmod(mode)
    cache = CompileCache(folder)
    with pytest.warns(CacheTrustWarning, match=f"{folder} is writable by {who}.*chmod go-w"):
        assert cache.load(key) is None
    entry = cache.store(key, BINARY, META)  # compiled afresh into a private folder, not into the shared one
    assert not entry.path.is_relative_to(folder) and stat.S_IMODE(entry.path.parent.parent.stat().st_mode) == 0o700
    assert cache.load(key) == entry
    assert not cache.artifact_folder().is_relative_to(folder)


def test_a_sticky_shared_folder_is_trusted_for_our_own_entries(tmp_path):
    folder = tmp_path / "sticky"
    key, _ = stored(folder)
    folder.chmod(0o1777)  # as /tmp: others may add files, not replace ours
    assert untrusted_reason(folder) is None
    assert quiet_load(CompileCache(folder), key).binary == BINARY


def test_an_entry_planted_by_another_user_is_not_loaded(tmp_path, foreign):
    folder = tmp_path / "sticky-planted"
    key, path = stored(folder)
    folder.chmod(0o1777)
    foreign(path.parent, path, path.with_suffix(".json"))  # its checksum matches: only its owner gives it away
    cache = CompileCache(folder)
    with pytest.warns(CacheTrustWarning, match="belongs to another user"):
        assert cache.load(key) is None
    assert not cache.store(key, BINARY, META).path.is_relative_to(folder)


def test_a_cache_folder_of_another_user_is_not_loaded(tmp_path, foreign):
    folder = tmp_path / "theirs"
    key, _ = stored(folder)
    foreign(folder)
    with pytest.warns(CacheTrustWarning, match=f"{folder} belongs to another user"):
        assert CompileCache(folder).load(key) is None


def test_a_group_writable_entry_file_is_not_loaded(tmp_path):
    key, path = stored(tmp_path / "mine")
    path.chmod(0o664)
    with pytest.warns(CacheTrustWarning, match="writable by other users"):
        assert CompileCache(tmp_path / "mine").load(key) is None


def test_interfaces_compile_afresh_beside_an_untrusted_cache_with_one_warning(tmp_path, monkeypatch):
    folder = tmp_path / "group-cache"
    monkeypatch.setenv("METALGPU_CACHE_DIR", str(folder))
    with metalgpu.Interface(backend="cpu") as gpu:  # fills the cache while it is still private
        gpu.load_shader_from_str(SHADER % "2.0f")
    entries = len(CompileCache(folder).entries())
    folder.chmod(0o770)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        for _ in range(2):
            with metalgpu.Interface(backend="cpu") as gpu:
                gpu.load_shader_from_str(SHADER % "2.0f")
                values = gpu.array_to_buffer(np.arange(4, dtype=np.float32))
                gpu.run_function(4, [values], function_name="scale")
                assert values.contents.tolist() == [0, 2, 4, 6]
    trust = [w for w in warned if issubclass(w.category, CacheTrustWarning)]
    assert len(trust) == 1 and "writable by its group" in str(trust[0].message)
    assert len(CompileCache(folder).entries()) == entries  # nothing written into the untrusted folder


# -- a full disk ----------------------------------------------------------------------------------------------------

@pytest.fixture
def full_disk(monkeypatch):
    def no_space(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    monkeypatch.setattr(metalgpu.cache, "_write_atomically", no_space)


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memory files are Linux's (memfd_create)")
def test_a_full_disk_keeps_entries_in_memory_with_one_warning(tmp_path, full_disk):
    cache = CompileCache(tmp_path / "full")
    with pytest.warns(CacheFallbackWarning, match="No space left on device.*kept in memory") as warned:
        first = cache.store(cache.key("one"), BINARY, META)
        second = cache.store(cache.key("two"), BINARY[::-1], META)
    assert len(warned) == 1
    assert first.path.read_bytes() == BINARY and second.path.read_bytes() == BINARY[::-1]
    assert cache.load(cache.key("one")) == first and cache.load(cache.key("two")).binary == BINARY[::-1]


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memory files are Linux's (memfd_create)")
def test_kernels_compile_and_run_on_a_full_disk(tmp_path, monkeypatch, full_disk):
    monkeypatch.setenv("METALGPU_CACHE_DIR", str(tmp_path / "full-cache"))
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        for _ in range(2):  # every later load too
            with metalgpu.Interface(backend="cpu") as gpu:
                gpu.load_shader_from_str(SHADER % "3.0f")
                values = gpu.array_to_buffer(np.arange(4, dtype=np.float32))
                gpu.run_function(4, [values], function_name="scale")
                assert values.contents.tolist() == [0, 3, 6, 9]
    fallbacks = [w for w in warned if issubclass(w.category, CacheFallbackWarning)]
    assert 1 <= len(fallbacks) <= 2 and all("kept in memory" in str(w.message) for w in fallbacks)  # one per Interface


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memory files are Linux's (memfd_create)")
def test_an_untrusted_folder_is_never_written_even_without_a_temporary_folder(tmp_path, monkeypatch):
    folder = tmp_path / "untrusted-full"
    key, _ = stored(folder)
    folder.chmod(0o777)

    def no_space(prefix=None):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(metalgpu.cache.tempfile, "mkdtemp", no_space)
    cache = CompileCache(folder)
    with pytest.warns(CacheFallbackWarning) as warned:
        entry = cache.store(cache.key("new"), BINARY, META)
    assert any(issubclass(w.category, CacheTrustWarning) for w in warned)
    assert entry.path.read_bytes() == BINARY and not entry.path.is_relative_to(folder)
    assert CompileCache(tmp_path / "untrusted-full").entries() == [key]  # nothing added there
    with pytest.raises(OSError):
        cache.artifact_folder()  # callers treat it as "no precompiled headers"


# -- metalgpu cache --clear -------------------------------------------------------------------------------------------

def test_cache_clear_on_a_read_only_folder_is_one_line_and_fails(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "read-only"
    stored(folder)
    monkeypatch.setenv("METALGPU_CACHE_DIR", str(folder))

    def refuse(self, missing_ok=False):
        raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), str(self))
    monkeypatch.setattr(Path, "unlink", refuse)
    assert main(["cache", "--clear"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"metalgpu: cannot clear the compile cache in {folder}: ")
    assert "Read-only file system" in err and "Traceback" not in err


def test_cache_clear_works(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "clearable"
    stored(folder, "a"), stored(folder, "b")
    monkeypatch.setenv("METALGPU_CACHE_DIR", str(folder))
    assert main(["cache", "--clear"]) == 0
    assert capsys.readouterr().out == f"removed 2 entries from {folder}\n"
