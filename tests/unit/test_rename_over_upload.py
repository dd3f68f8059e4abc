"""A rename over a file whose upload is running: the upload ends first, so it cannot land on
the remote after the move and put the replaced bytes back over the renamed file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
from pyclone_docker.fuse.ops import FuseOps
from pyclone_docker.vfs.cache import Cache
from pyclone_docker.vfs.vfs import VFS


class SlowUpload(LocalBackend):
    """Holds every upload between its start and the remote's first byte until `go` is set."""

    def __init__(self, root: str) -> None:
        super().__init__("local", root, {})
        self.started, self.go = threading.Event(), threading.Event()

    def open_write(self, path, size=-1, mtime_ns=None, mode=None):
        self.started.set()
        assert self.go.wait(10)
        return super().open_write(path, size, mtime_ns, mode)


def test_a_rename_over_a_file_being_uploaded_waits_for_the_upload(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "b").write_bytes(b"b, the renamed file")
    backend = SlowUpload(str(remote))
    cache = Cache(backend, str(tmp_path / "cache"), "vol", write_back=3600)
    opts = OptionValues.defaults(VOLUME_OPTIONS)
    opts.vfs_cache_mode = "writes"
    vfs = FuseOps(VFS(backend, opts, cache=cache))
    item = cache.get("a")  # a file written here and not uploaded yet
    item.open(lambda: None, truncate=True)
    item.write_from(memoryview(b"a, being uploaded"), 0)
    item.close()
    upload = threading.Thread(target=cache.writeback._upload, args=("a",))
    upload.start()
    assert backend.started.wait(10)  # the upload of a holds its item now
    renamer = threading.Thread(target=vfs.rename, args=("/b", "/a"))
    renamer.start()
    time.sleep(0.3)
    assert renamer.is_alive()  # waits for the upload of the file it replaces
    backend.go.set()
    upload.join(10)
    renamer.join(10)
    assert (remote / "a").read_bytes() == b"b, the renamed file"
    assert not (remote / "b").exists()
    assert cache.writeback.flush(5)  # and nothing queued brings the old bytes back
    assert (remote / "a").read_bytes() == b"b, the renamed file"


def test_a_failed_rename_leaves_the_upload_queued(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "b").write_bytes(b"b")
    backend = LocalBackend("local", str(remote), {})
    cache = Cache(backend, str(tmp_path / "cache"), "vol", write_back=3600)
    opts = OptionValues.defaults(VOLUME_OPTIONS)
    opts.vfs_cache_mode = "writes"
    vfs = FuseOps(VFS(backend, opts, cache=cache))
    item = cache.get("a")
    item.open(lambda: None, truncate=True)
    item.write_from(memoryview(b"pending"), 0)
    item.close()

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "refused by the remote")

    backend.move = refuse
    with pytest.raises(PermissionError):
        vfs.rename("/b", "/a")
    assert item.dirty and cache.writeback.flush(5)
    assert (remote / "a").read_bytes() == b"pending"
