"""A volume's cache as a whole: removed with its volume (Cache.drop_volume), and a new volume
of the same name in the same process caches again (the memo of made directories is per
Cache: a process-wide one kept the removed tree's directories, and every cached open of the
new volume failed with ENOENT)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.vfs.cache import Cache


def read_all(item) -> bytes:
    buf = bytearray(item.size)
    n = item.read_into(memoryview(buf), 0)
    return bytes(buf[:n])


def use_once(backend: LocalBackend, cache_dir: Path, volume: str, write_back: float = 0.0) -> Cache:
    """Mount-like life of one Cache: read a file in a subdirectory, write a new one beside it."""
    cache = Cache(backend, str(cache_dir), volume, write_back=write_back)
    cache.start()
    item = cache.get("d/f")
    item.open(lambda: backend.stat("d/f"), truncate=False)
    try:
        assert read_all(item) == b"remote bytes"
    finally:
        item.close()
    new = cache.get("d/new")
    new.open(lambda: None, truncate=True)
    try:
        new.write_from(memoryview(f"written by {volume}".encode()), 0)
    finally:
        new.close()
    return cache


def setup(tmp_path: Path) -> tuple[LocalBackend, Path]:
    remote = tmp_path / "remote"
    (remote / "d").mkdir(parents=True)
    (remote / "d" / "f").write_bytes(b"remote bytes")
    return LocalBackend("local", str(remote), {}), tmp_path / "cache"


def test_a_volume_removed_and_created_again_in_one_process_caches_again(tmp_path: Path) -> None:
    backend, cache_dir = setup(tmp_path)
    cache = use_once(backend, cache_dir, "v")
    assert cache.shutdown(10)  # everything uploaded: nothing to keep
    assert Cache.drop_volume(str(cache_dir), "v") is None
    assert not (cache_dir / "vfs" / "v").exists() and not (cache_dir / "vfsMeta" / "v").exists()
    cache = use_once(backend, cache_dir, "v")  # ENOENT here with a process-wide memo
    assert cache.shutdown(10)
    assert (tmp_path / "remote" / "d" / "new").read_bytes() == b"written by v"
    assert (cache_dir / "vfs" / "v" / "d" / "f").read_bytes() == b"remote bytes"


def test_dropping_a_volume_keeps_what_was_never_uploaded_aside(tmp_path: Path) -> None:
    backend, cache_dir = setup(tmp_path)
    cache = use_once(backend, cache_dir, "v", write_back=3600)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "the remote refuses uploads")

    backend.open_write = refuse
    assert not cache.shutdown(0.5)  # the new file is still to upload
    aside = Cache.drop_volume(str(cache_dir), "v")
    assert aside is not None and Path(aside).parent == cache_dir / "removed"
    assert (Path(aside) / "vfs" / "d" / "new").read_bytes() == b"written by v"
    assert json.loads((Path(aside) / "vfsMeta" / "d" / "new").read_text())["Dirty"] is True
    assert not (cache_dir / "vfs" / "v").exists()
    # the new volume of that name starts empty, and uploads nothing of the old one's
    del backend.open_write
    cache = Cache(backend, str(cache_dir), "v")
    cache.start()
    assert cache.peek("d/new") is None and cache.shutdown(10)
    assert not (tmp_path / "remote" / "d" / "new").exists()


def test_a_cache_dir_removed_behind_the_cache_is_made_again(tmp_path: Path) -> None:
    """A directory the memo knows but someone removed: the open makes it again."""
    import shutil

    backend, cache_dir = setup(tmp_path)
    cache = use_once(backend, cache_dir, "v")
    assert cache.shutdown(10)
    cache = Cache(backend, str(cache_dir), "v")
    cache.start()
    item = cache.get("d/f")
    item.open(lambda: backend.stat("d/f"), truncate=False)
    item.close()
    cache.remove("d/f")
    shutil.rmtree(cache_dir / "vfs" / "v" / "d")
    item = cache.get("d/f")
    item.open(lambda: backend.stat("d/f"), truncate=False)
    try:
        assert read_all(item) == b"remote bytes"
    finally:
        item.close()
    assert cache.shutdown(10)
    assert os.path.exists(cache_dir / "vfs" / "v" / "d" / "f")
