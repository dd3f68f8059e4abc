"""FIFOs, unix sockets and device nodes on real mounts (vfs/special.py): they work as on a
local disk while the volume is mounted, never reach the remote, and vanish at unmount."""

from __future__ import annotations

import errno
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from .conftest import Plugin
from .test_cache_modes import mount, unmount


@pytest.mark.parametrize("mode", ["off", "full"])
def test_fifo_socket_and_device_nodes(plugin: Plugin, data_dir: Path, mode: str) -> None:
    mp = mount(plugin, data_dir, f"sp-{mode}", **({"vfs-cache-mode": mode} if mode != "off" else {}))
    # a FIFO carries data between two openers
    os.mkfifo(mp / "fifo", 0o640)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append((mp / "fifo").read_bytes()), daemon=True)
    reader.start()
    (mp / "fifo").write_bytes(b"through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"]
    st = os.stat(mp / "fifo")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640 and st.st_size == 0

    # a unix socket bound in the volume accepts connections
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(str(mp / "app.sock"))
        server.listen(1)
        client.connect(str(mp / "app.sock"))
        conn, _ = server.accept()
        with conn:
            client.sendall(b"ping")
            assert conn.recv(4) == b"ping"
    assert stat.S_ISSOCK(os.stat(mp / "app.sock").st_mode)

    # a device node keeps its number (a FUSE mount is nodev: it cannot be opened)
    os.mknod(mp / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    st = os.stat(mp / "null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3

    # metadata changes are kept, each moving the ctime
    before = os.stat(mp / "fifo").st_ctime_ns
    os.chmod(mp / "fifo", 0o600)
    os.chown(mp / "fifo", 123, 456)
    os.utime(mp / "fifo", ns=(1_000_000_000, 2_000_000_000))
    st = os.stat(mp / "fifo")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns) == (0o600, 123, 456, 2_000_000_000)
    assert st.st_ctime_ns >= before

    # listings, renames, directories
    assert sorted(os.listdir(mp)) == ["app.sock", "fifo", "null"]
    os.mkdir(mp / "dir")
    os.mkfifo(mp / "dir" / "inner")
    with pytest.raises(OSError) as e:
        os.rmdir(mp / "dir")
    assert e.value.errno == errno.ENOTEMPTY
    os.rename(mp / "dir", mp / "moved")
    assert stat.S_ISFIFO(os.stat(mp / "moved" / "inner").st_mode)
    assert not (mp / "dir").exists()
    (mp / "moved" / "inner").unlink()
    os.rmdir(mp / "moved")
    (mp / "file").write_bytes(b"replaced by the node")
    os.rename(mp / "fifo", mp / "file")
    assert stat.S_ISFIFO(os.stat(mp / "file").st_mode) and not (mp / "fifo").exists()
    os.mkfifo(mp / "other")
    (mp / "data").write_bytes(b"kept")
    os.rename(mp / "data", mp / "other")  # a regular file over a node
    assert (mp / "other").read_bytes() == b"kept"
    with pytest.raises(FileExistsError):
        os.mkfifo(mp / "other")
    with pytest.raises(OSError) as e:
        os.symlink("other", mp / "link")
    assert e.value.errno == errno.EPERM

    # nothing of the nodes reached the remote, and they end with the mount
    unmount(plugin, f"sp-{mode}")
    assert sorted(os.listdir(data_dir)) == ["other"]
    assert (data_dir / "other").read_bytes() == b"kept"
    plugin.client.ok("VolumeDriver.Mount", {"Name": f"sp-{mode}", "ID": "t"})
    assert sorted(os.listdir(mp)) == ["other"]
    unmount(plugin, f"sp-{mode}")


def test_read_only_volume_refuses_nodes(plugin: Plugin, data_dir: Path) -> None:
    mp = mount(plugin, data_dir, "sp-ro", **{"read-only": "true"})
    with pytest.raises(OSError) as e:
        os.mkfifo(mp / "fifo")
    assert e.value.errno == errno.EROFS
    unmount(plugin, "sp-ro")


def test_uid_and_gid_options_apply_to_nodes_too(plugin: Plugin, data_dir: Path) -> None:
    mp = mount(plugin, data_dir, "sp-uid", uid="1234", gid="4321")
    os.mkfifo(mp / "fifo")
    st = os.stat(mp / "fifo")
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    unmount(plugin, "sp-uid")
