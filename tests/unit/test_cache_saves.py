"""How often a new cached file's metadata is saved: once, with one write (no temp file and
rename), however the open goes (the small-file rate of the cache modes depends on it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.vfs.cache import Cache


class FakePassthrough:
    def open_backing(self, fd: int) -> int:
        return 7

    def close_backing(self, backing_id: int) -> None:
        pass


@pytest.mark.parametrize("kernel_writes", [False, True])
def test_a_new_file_saves_its_record_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          kernel_writes: bool) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    cache = Cache(LocalBackend("local", str(remote), {}), str(tmp_path / "cache"), "v", write_back=3600)
    saves: list[str] = []
    from pyclone_docker.vfs.cache import files

    real_new, real_atomic = files._write_new, files.atomic_write
    monkeypatch.setattr(files, "_write_new", lambda path, data: (saves.append("new"), real_new(path, data)))
    monkeypatch.setattr(files, "atomic_write",
                        lambda path, data, **kw: (saves.append("atomic"), real_atomic(path, data, **kw)))
    item = cache.get("f")
    item.open(lambda: None, truncate=True)  # what create() does
    if kernel_writes:
        assert item.open_passthrough(FakePassthrough(), writable=True, readable=False) == 7
    assert saves == ["new"]
    assert os.path.exists(item.meta_path)
    if kernel_writes:
        item.close_passthrough(FakePassthrough(), writable=True)
    item.close()
    cache.shutdown(1)
