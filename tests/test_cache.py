"""The compile cache, in a temporary folder passed in (or named by METALGPU_CACHE_DIR)."""
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import metalgpu.cache
from metalgpu.cache import FORMAT_VERSION, CacheEntry, CacheFallbackWarning, CompileCache

BINARY = bytes(range(256)) * 40
META = {"kernels": {"add": [{"kind": "buffer", "index": 0, "elem_size": 4}]}, "compiler": "clang 18"}


def build():
    return BINARY, META


@pytest.fixture
def cache(tmp_path):
    return CompileCache(tmp_path / "cache")


def test_miss_then_hit_with_identical_bytes_and_meta(cache):
    key = cache.key("source", "options")
    assert cache.load(key) is None
    stored, hit = cache.get_or_build(key, build)
    assert not hit and stored.binary == BINARY and stored.meta == META
    loaded, hit = cache.get_or_build(key, lambda: pytest.fail("a hit must not build"))
    assert hit and loaded == CacheEntry(stored.path, BINARY, META)
    assert loaded.path.read_bytes() == BINARY  # the file itself holds the raw binary, ready to dlopen


def test_layout_and_sidecar(cache):
    key = cache.key("x")
    entry = cache.store(key, BINARY, META)
    assert entry.path == cache.directory / key[:2] / f"{key}.bin"
    sidecar = json.loads((cache.directory / key[:2] / f"{key}.json").read_text())
    assert sidecar["format"] == FORMAT_VERSION and sidecar["size"] == len(BINARY) and sidecar["meta"] == META
    assert not any(p.name.endswith(".tmp") for p in entry.path.parent.iterdir())


def test_meta_is_returned_as_json_reads_it(cache):
    entry = cache.store(cache.key("t"), b"x", {"shape": (1, 2)})
    assert entry.meta == {"shape": [1, 2]} == cache.load(cache.key("t")).meta


def test_meta_must_be_json(cache):
    with pytest.raises(TypeError, match="JSON"):
        cache.store(cache.key("t"), b"x", {"f": object()})


def test_keys_depend_on_every_part_and_its_boundaries():
    key = CompileCache.key
    assert key("a", "b") == key("a", "b") == key(b"a", b"b")
    assert len({key("ab", "c"), key("a", "bc"), key("abc"), key("a", "b", "c"), key("c", "ab"), key()}) == 6
    assert len(key("a")) == 64 and int(key("a"), 16) >= 0


def test_key_rejects_other_types():
    with pytest.raises(TypeError):
        CompileCache.key("a", 3)


def test_load_rejects_a_key_that_is_not_a_hash(cache):
    with pytest.raises(ValueError):
        cache.load("../../etc/passwd")


def flip_a_byte(binary_path, sidecar_path):
    data = bytearray(binary_path.read_bytes())
    data[100] ^= 0xFF
    binary_path.write_bytes(bytes(data))


def truncate(binary_path, sidecar_path):
    binary_path.write_bytes(binary_path.read_bytes()[:-1])


def empty_binary(binary_path, sidecar_path):
    binary_path.write_bytes(b"")


def garbage_sidecar(binary_path, sidecar_path):
    sidecar_path.write_bytes(b"\x00{not json")


def sidecar_of_another_format(binary_path, sidecar_path):
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["format"] = FORMAT_VERSION + 1
    sidecar_path.write_text(json.dumps(sidecar))


def sidecar_not_a_dict(binary_path, sidecar_path):
    sidecar_path.write_text("[1, 2]")


def delete_binary(binary_path, sidecar_path):
    binary_path.unlink()


@pytest.mark.parametrize("damage", [flip_a_byte, truncate, empty_binary, garbage_sidecar, sidecar_of_another_format,
                                    sidecar_not_a_dict, delete_binary])
def test_a_damaged_entry_is_a_miss_and_a_rebuild_works(cache, damage):
    key = cache.key("damaged")
    entry = cache.store(key, BINARY, META)
    damage(entry.path, entry.path.with_suffix(".json"))
    assert cache.load(key) is None
    assert not entry.path.with_suffix(".json").exists()  # the bad entry was removed
    rebuilt, hit = cache.get_or_build(key, build)
    assert not hit and rebuilt.binary == BINARY
    assert cache.load(key) == rebuilt


def test_a_missing_sidecar_is_a_miss(cache):
    key = cache.key("half written")
    entry = cache.store(key, BINARY, META)
    entry.path.with_suffix(".json").unlink()
    assert cache.load(key) is None


def test_nothing_is_created_until_the_first_store(tmp_path):
    cache = CompileCache(tmp_path / "later")
    assert cache.load(cache.key("a")) is None and cache.entries() == [] and cache.size_bytes() == 0
    assert not (tmp_path / "later").exists()


def test_environment_variable_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("METALGPU_CACHE_DIR", str(tmp_path / "from-env"))
    cache = CompileCache()
    assert cache.directory == tmp_path / "from-env"
    cache.store(cache.key("e"), b"bin", {})
    assert (tmp_path / "from-env").is_dir()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG folders are Linux's")
def test_default_folder_follows_xdg_on_linux(tmp_path, monkeypatch):
    monkeypatch.delenv("METALGPU_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert CompileCache().directory == tmp_path / "metalgpu"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert CompileCache().directory == Path.home() / ".cache" / "metalgpu"


def test_entries_size_and_clear(cache):
    keys = sorted(cache.key(str(i)) for i in range(3))
    for key in keys:
        cache.store(key, BINARY, META)
    (cache.directory / "notes.txt").write_text("not ours")
    assert cache.entries() == keys
    assert cache.size_bytes() > 3 * len(BINARY)
    assert cache.clear() == 3
    assert cache.entries() == [] and cache.size_bytes() == 0 and cache.load(keys[0]) is None
    assert (cache.directory / "notes.txt").read_text() == "not ours"  # clear removes only cache files


def test_unwritable_folder_falls_back_to_a_temporary_one(tmp_path):
    # A folder under a regular file can never be created, even by root (who ignores permission bits).
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = CompileCache(blocker / "cache")
    key = cache.key("fallback")
    with pytest.warns(CacheFallbackWarning, match="a-file"):
        entry = cache.store(key, BINARY, META)
    assert entry.path.read_bytes() == BINARY and not entry.path.is_relative_to(blocker)
    assert cache.load(key) == entry
    with warnings.catch_warnings(record=True) as warned:  # once per cache: later stores are quiet
        warnings.simplefilter("always")
        cache.store(cache.key("second"), BINARY, META)
    assert warned == []
    assert cache.entries() == sorted([key, cache.key("second")])


WORKER = textwrap.dedent("""
    import sys
    from metalgpu.cache import CompileCache
    cache = CompileCache(sys.argv[1])
    key = cache.key("shared key")
    binary = bytes(range(256)) * 800
    for i in range(int(sys.argv[2])):
        entry = cache.store(key, binary, {"kernels": ["add"]})
        assert entry.path.read_bytes() == binary
        loaded = cache.load(key)
        assert loaded is not None and loaded.binary == binary, "a valid entry must stay valid"
""")


def test_concurrent_stores_of_one_key_all_succeed(tmp_path):
    source_root = Path(metalgpu.cache.__file__).parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(source_root), os.environ.get("PYTHONPATH", "")]))
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), "200"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert err == ""
    cache = CompileCache(tmp_path)
    entry = cache.load(cache.key("shared key"))
    assert entry is not None and entry.binary == bytes(range(256)) * 800 and entry.meta == {"kernels": ["add"]}
    assert not [p for p in tmp_path.rglob("*.tmp")]
