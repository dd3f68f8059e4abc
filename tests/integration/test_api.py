"""The volume plugin API over a real unix socket, with real FUSE mounts of a local backend."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import time
from pathlib import Path

import pytest

from .conftest import Plugin


def local(path: Path, **extra: str) -> dict[str, str]:
    return {"type": "local", "path": str(path), **extra}


def test_activate_capabilities_and_empty_list(plugin: Plugin) -> None:
    c = plugin.client
    status, headers, body = c.raw("POST", "/Plugin.Activate", b"")
    assert status == 200
    assert json.loads(body) == {"Implements": ["VolumeDriver"]}
    assert headers["content-type"] == "application/vnd.docker.plugins.v1.2+json"
    assert body.endswith(b"\n")
    assert c.ok("VolumeDriver.Capabilities", {}) == {"Capabilities": {"Scope": "local"}}
    assert c.ok("VolumeDriver.List", {}) == {"Volumes": []}


def test_socket_mode_is_0660(plugin: Plugin) -> None:
    st = os.stat(plugin.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660


def test_create_get_list_path_remove(plugin: Plugin, data_dir: Path) -> None:
    c = plugin.client
    assert c.ok("VolumeDriver.Create", {"Name": "v1", "Opts": local(data_dir)}) == {}
    vol = c.ok("VolumeDriver.Get", {"Name": "v1"})["Volume"]
    assert vol["Name"] == "v1"
    assert vol["Mountpoint"] == str(plugin.base / "v1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", vol["CreatedAt"])
    assert vol["Status"] == {"Mounts": []}
    assert c.ok("VolumeDriver.List", {})["Volumes"] == [{"Name": "v1", "Mountpoint": str(plugin.base / "v1")}]
    assert c.ok("VolumeDriver.Path", {"Name": "v1"})["Mountpoint"] == str(plugin.base / "v1")
    assert c.ok("VolumeDriver.Remove", {"Name": "v1"}) == {}
    assert c.err("VolumeDriver.Get", {"Name": "v1"}) == "volume not found"
    assert c.ok("VolumeDriver.List", {}) == {"Volumes": []}
    assert not (plugin.base / "v1").exists()


def test_field_names_are_case_insensitive_and_unknown_fields_ignored(plugin: Plugin, data_dir: Path) -> None:
    c = plugin.client
    c.ok("VolumeDriver.Create", {"name": "ci", "OPTS": local(data_dir), "Extra": 1})
    assert c.ok("VolumeDriver.Get", {"NAME": "ci"})["Volume"]["Name"] == "ci"


def test_create_is_idempotent_and_refuses_changed_options(plugin: Plugin, data_dir: Path) -> None:
    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": "v", "Opts": local(data_dir)})
    c.ok("VolumeDriver.Create", {"Name": "v", "Opts": local(data_dir)})
    err = c.err("VolumeDriver.Create", {"Name": "v", "Opts": local(data_dir, **{"read-only": "true"})})
    assert "already exists with different options" in err and "docker volume rm v" in err


@pytest.mark.parametrize("opts, fragment", [
    (None, "volume must have either remote or backend type"),
    ({}, "volume must have either remote or backend type"),
    ({"type": "local", "remote": "/x"}, "volume must have either remote or backend type"),
    ({"type": "nosuchbackend"}, 'didn\'t find backend called "nosuchbackend"'),
    ({"type": "local", "bogus-option": "1"}, 'unsupported backend option "bogus-option"'),
    ({"type": "local", "sftp-host": "h"}, 'unsupported backend option "sftp-host"'),
    ({"type": "local", "vfs-cache-mode": "sometimes"}, "vfs_cache_mode"),
    ({"type": "local", "read-only": "yes"}, "read_only"),
    ({"type": "local", "attr-timeout": "soon"}, "attr_timeout"),
    ({"type": "local", "persist": "true"}, "persist remotes is prohibited"),
    ({"type": "local", "persist": "maybe"}, 'cannot parse option "persist"'),
    ({"type": "local", "mount-type": "cmount9"}, 'unsupported mount type "cmount9"'),
    ({"type": "local", "daemon": "true"}, "daemon"),
    ({"remote": "nosuchremote:path"}, "didn't find section in config file"),
    ({"remote": ":local,bad param:/x"}, "cannot parse remote/fs"),
])
def test_bad_options_are_refused_and_nothing_is_created(plugin: Plugin, opts, fragment: str) -> None:
    c = plugin.client
    err = c.err("VolumeDriver.Create", {"Name": "bad", "Opts": opts})
    assert fragment in err
    assert c.ok("VolumeDriver.List", {}) == {"Volumes": []}
    assert not (plugin.base / "bad").exists()
    state = plugin.cache / "docker-plugin.state"
    assert not state.exists() or json.loads(state.read_text()) == []


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "-x", "sp ace", "x" * 256, "a\0b"])
def test_bad_names_never_escape_base_dir(plugin: Plugin, data_dir: Path, name: str) -> None:
    c = plugin.client
    err = c.err("VolumeDriver.Create", {"Name": name, "Opts": local(data_dir)})
    assert "volume name" in err
    assert c.ok("VolumeDriver.List", {}) == {"Volumes": []}
    assert not (plugin.root / "evil").exists()


def test_options_accept_rclone_spellings(plugin: Plugin, data_dir: Path) -> None:
    c = plugin.client
    for i, opts in enumerate([
        {"type": "local", "path": str(data_dir), "vfs_cache_mode": "off", "--attr-timeout": "2s",
         "allow-other": "true", "uid": "1000", "umask": "022", "dir-perms": "0755", "max-read-ahead": "256Ki",
         "local-case-sensitive": "true", "local_no_check_updated": "1", "mount_type": "mount", "persist": "false",
         "volname": "ignored-on-linux", "network-mode": "true"},
        {"remote": f":local,case_sensitive:{data_dir}", "dir-cache-time": "1h30m"},
        {"fs": str(data_dir), "poll-interval": "0"},
    ]):
        c.ok("VolumeDriver.Create", {"Name": f"s{i}", "Opts": opts})
    assert len(c.ok("VolumeDriver.List", {})["Volumes"]) == 3


def test_mount_refcount_by_id(plugin: Plugin, data_dir: Path) -> None:
    c = plugin.client
    mp = str(plugin.base / "m")
    c.ok("VolumeDriver.Create", {"Name": "m", "Opts": local(data_dir)})
    assert c.ok("VolumeDriver.Mount", {"Name": "m", "ID": "id1"})["Mountpoint"] == mp
    assert plugin.mounts() == [mp]
    Path(mp, "hello.txt").write_text("banana")
    assert (data_dir / "hello.txt").read_text() == "banana"
    assert c.ok("VolumeDriver.Mount", {"Name": "m", "ID": "id1"})["Mountpoint"] == mp  # duplicate tolerated
    c.ok("VolumeDriver.Mount", {"Name": "m", "ID": "id2"})
    assert c.ok("VolumeDriver.Get", {"Name": "m"})["Volume"]["Status"]["Mounts"] == ["id1", "id2"]
    assert c.err("VolumeDriver.Remove", {"Name": "m"}) == "volume is in use"
    c.ok("VolumeDriver.Unmount", {"Name": "m", "ID": "id1"})
    assert plugin.mounts() == [mp]  # id2 still uses it
    assert Path(mp, "hello.txt").read_text() == "banana"
    c.ok("VolumeDriver.Unmount", {"Name": "m", "ID": "id2"})
    assert plugin.mounts() == []
    c.ok("VolumeDriver.Unmount", {"Name": "m", "ID": "never-mounted"})  # lost Unmounts are tolerated
    c.ok("VolumeDriver.Remove", {"Name": "m"})
    assert (data_dir / "hello.txt").read_text() == "banana"  # data is never deleted


def test_failed_mount_leaves_no_count(plugin: Plugin, tmp_root: Path) -> None:
    c = plugin.client
    notdir = tmp_root / "afile"
    notdir.write_text("x")
    c.ok("VolumeDriver.Create", {"Name": "f", "Opts": {"type": "local", "path": str(notdir)}})
    err = c.err("VolumeDriver.Mount", {"Name": "f", "ID": "id1"})
    assert "failed to mount" in err
    assert c.ok("VolumeDriver.Get", {"Name": "f"})["Volume"]["Status"]["Mounts"] == []
    assert plugin.mounts() == []
    c.ok("VolumeDriver.Remove", {"Name": "f"})


def test_mount_unknown_volume(plugin: Plugin) -> None:
    assert plugin.client.err("VolumeDriver.Mount", {"Name": "nope", "ID": "x"}) == "volume not found"


def test_files_through_the_mount(plugin: Plugin, data_dir: Path) -> None:
    c = plugin.client
    (data_dir / "pre.txt").write_text("existing")
    (data_dir / "sub").mkdir()
    c.ok("VolumeDriver.Create", {"Name": "io", "Opts": local(data_dir)})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": "io", "ID": "a"})["Mountpoint"])
    try:
        assert sorted(os.listdir(mp)) == ["pre.txt", "sub"]
        assert (mp / "pre.txt").read_text() == "existing"
        payload = os.urandom(3 * 1024 * 1024 + 17)
        (mp / "sub" / "big.bin").write_bytes(payload)
        assert (data_dir / "sub" / "big.bin").read_bytes() == payload
        assert (mp / "sub" / "big.bin").read_bytes() == payload
        assert (mp / "sub" / "big.bin").stat().st_size == len(payload)
        (mp / "newdir").mkdir()
        assert (data_dir / "newdir").is_dir()
        (mp / "sub" / "big.bin").rename(mp / "newdir" / "moved.bin")
        assert (data_dir / "newdir" / "moved.bin").read_bytes() == payload
        assert not (mp / "sub" / "big.bin").exists()
        (mp / "newdir" / "moved.bin").unlink()
        (mp / "newdir").rmdir()
        assert not (data_dir / "newdir").exists()
        # chmod, chown and utimens are stored by the local backend
        f = mp / "pre.txt"
        os.chmod(f, 0o640)
        os.chown(f, 1234, 4321)
        os.utime(f, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
        st = (data_dir / "pre.txt").stat()
        assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (1234, 4321)
        assert st.st_mtime_ns == 1_600_000_000_123_456_789
        st2 = f.stat()
        assert stat.S_IMODE(st2.st_mode) == 0o640 and st2.st_uid == 1234 and st2.st_mtime_ns == st.st_mtime_ns
        # statfs is the backend's
        assert os.statvfs(mp).f_blocks > 0
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "io", "ID": "a"})


def test_cache_mode_off_rules(plugin: Plugin, data_dir: Path) -> None:
    """rclone's --vfs-cache-mode off: no read+write opens, no seeking writes, O_TRUNC needed."""
    c = plugin.client
    (data_dir / "exists.txt").write_text("old content")
    c.ok("VolumeDriver.Create", {"Name": "off", "Opts": local(data_dir)})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": "off", "ID": "a"})["Mountpoint"])
    try:
        with pytest.raises(PermissionError):
            open(mp / "exists.txt", "r+b")
        fd = os.open(mp / "exists.txt", os.O_WRONLY)  # existing file without O_TRUNC
        try:
            with pytest.raises(PermissionError):
                os.write(fd, b"x")
        finally:
            os.close(fd)
        assert (data_dir / "exists.txt").read_text() == "old content"  # nothing lost
        fd = os.open(mp / "seek.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, b"abc")
            with pytest.raises(OSError) as ei:
                os.pwrite(fd, b"z", 100)
            assert ei.value.errno == 29  # ESPIPE, as rclone
        finally:
            os.close(fd)
        with open(mp / "exists.txt", "wb") as f:  # O_TRUNC: allowed
            f.write(b"new")
        assert (data_dir / "exists.txt").read_bytes() == b"new"
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "off", "ID": "a"})


def test_read_only_volume(plugin: Plugin, data_dir: Path) -> None:
    c = plugin.client
    (data_dir / "r.txt").write_text("r")
    c.ok("VolumeDriver.Create", {"Name": "ro", "Opts": local(data_dir, **{"read-only": "true"})})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": "ro", "ID": "a"})["Mountpoint"])
    try:
        assert (mp / "r.txt").read_text() == "r"
        with pytest.raises(OSError) as ei:
            (mp / "w.txt").write_text("w")
        assert ei.value.errno == 30  # EROFS
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "ro", "ID": "a"})


def test_state_file_format_and_restore(plugin_factory, data_dir: Path) -> None:
    p = plugin_factory()
    c = p.client
    c.ok("VolumeDriver.Create", {"Name": "keep", "Opts": local(data_dir, **{"vfs-cache-mode": "off"})})
    c.ok("VolumeDriver.Create", {"Name": "conn", "Opts": {"remote": f":local:{data_dir}", "path": str(data_dir)}})
    state = p.cache / "docker-plugin.state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    recs = json.loads(state.read_text())
    assert [r["name"] for r in recs] == ["conn", "keep"]
    keep = recs[1]
    assert set(keep) >= {"name", "mountpoint", "created", "fs", "type", "path", "options", "mounts"}
    assert keep["type"] == "local" and keep["path"] == str(data_dir) and keep["fs"] == ""
    assert keep["options"] == {"vfs-cache-mode": "off"} and keep["mounts"] == []
    assert p.stop() == 0
    assert not os.path.exists(p.sock)  # socket removed at exit
    p.start()
    assert [v["Name"] for v in c.ok("VolumeDriver.List", {})["Volumes"]] == ["conn", "keep"]
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": "keep", "ID": "x"})["Mountpoint"])
    (mp / "after-restart.txt").write_text("ok")
    assert (data_dir / "after-restart.txt").read_text() == "ok"  # path survived the restore (#9853)
    c.ok("VolumeDriver.Unmount", {"Name": "keep", "ID": "x"})


def test_sigterm_unmounts_everything_and_forgets_mount_ids(plugin_factory, data_dir: Path) -> None:
    p = plugin_factory()
    c = p.client
    for i in range(3):
        c.ok("VolumeDriver.Create", {"Name": f"t{i}", "Opts": local(data_dir)})
        c.ok("VolumeDriver.Mount", {"Name": f"t{i}", "ID": f"id{i}"})
    assert len(p.mounts()) == 3
    started = time.monotonic()
    assert p.stop() == 0
    assert time.monotonic() - started < 5
    assert p.mounts() == []
    recs = json.loads((p.cache / "docker-plugin.state").read_text())
    assert all(r["mounts"] == [] for r in recs)


def test_sigterm_with_a_busy_mount_exits_cleanly(plugin_factory, data_dir: Path) -> None:
    """A file held open keeps the mount busy: it is detached lazily and its libfuse workers
    still run at exit, holding Python thread states; the process must end without the
    interpreter's teardown freeing those under them (a crash there is SIGSEGV or SIGABRT)."""
    p = plugin_factory()
    c = p.client
    c.ok("VolumeDriver.Create", {"Name": "busy", "Opts": local(data_dir)})
    mp = c.ok("VolumeDriver.Mount", {"Name": "busy", "ID": "b"})["Mountpoint"]
    for i in range(50):
        Path(mp, f"f{i}").write_bytes(b"x" * 4096)  # workers serve (and keep their states)
    held = open(Path(mp, "f0"), "rb")
    try:
        started = time.monotonic()
        assert p.stop() == 0
        assert time.monotonic() - started < 10
        assert "still being served at exit" in p.log_text()
        assert p.mounts() == []  # detached
    finally:
        with contextlib.suppress(OSError):  # ENOTCONN: the connection ended with the process
            held.close()


def test_sigkill_then_restart_remounts_live_ids(plugin_factory, data_dir: Path) -> None:
    import signal as sig

    p = plugin_factory()
    c = p.client
    c.ok("VolumeDriver.Create", {"Name": "crash", "Opts": local(data_dir)})
    mp = c.ok("VolumeDriver.Mount", {"Name": "crash", "ID": "live-id"})["Mountpoint"]
    p.stop(sig.SIGKILL)
    assert p.mounts() == [mp]  # dead FUSE mount left behind
    with pytest.raises(OSError):
        os.listdir(mp)
    p.start()
    # answers at once from state, remounts in the background
    assert c.ok("VolumeDriver.Get", {"Name": "crash"})["Volume"]["Status"]["Mounts"] == ["live-id"]
    deadline = time.monotonic() + 10
    parent_dev = os.stat(os.path.dirname(mp)).st_dev
    while time.monotonic() < deadline:  # until the new FUSE mount is in place
        try:
            if os.stat(mp).st_dev != parent_dev:
                os.listdir(mp)
                break
        except OSError:
            pass
        time.sleep(0.05)
    Path(mp, "alive.txt").write_text("yes")
    assert (data_dir / "alive.txt").read_text() == "yes"
    assert p.mounts() == [mp]
    c.ok("VolumeDriver.Unmount", {"Name": "crash", "ID": "live-id"})
    assert p.mounts() == []


def test_external_unmount_is_noticed(plugin: Plugin, data_dir: Path) -> None:
    import subprocess

    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": "ext", "Opts": local(data_dir)})
    mp = c.ok("VolumeDriver.Mount", {"Name": "ext", "ID": "a"})["Mountpoint"]
    subprocess.run(["umount", mp], check=True)
    deadline = time.monotonic() + 5
    while c.ok("VolumeDriver.Get", {"Name": "ext"})["Volume"]["Status"]["Mounts"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c.ok("VolumeDriver.Get", {"Name": "ext"})["Volume"]["Status"]["Mounts"] == []
    c.ok("VolumeDriver.Unmount", {"Name": "ext", "ID": "a"})  # Docker's late Unmount still succeeds
    c.ok("VolumeDriver.Mount", {"Name": "ext", "ID": "b"})  # and it can be mounted again
    assert plugin.mounts() == [mp]
    c.ok("VolumeDriver.Unmount", {"Name": "ext", "ID": "b"})


def test_sighup_flushes_directory_cache(plugin: Plugin, data_dir: Path) -> None:
    import signal as sig

    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": "hup", "Opts": local(data_dir)})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": "hup", "ID": "a"})["Mountpoint"])
    try:
        assert os.listdir(mp) == []
        (data_dir / "outside.txt").write_text("behind the VFS's back")
        assert os.listdir(mp) == []  # cached for --dir-cache-time
        assert plugin.proc is not None
        plugin.proc.send_signal(sig.SIGHUP)
        deadline = time.monotonic() + 5
        while os.listdir(mp) == [] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.listdir(mp) == ["outside.txt"]
        assert plugin.proc.poll() is None  # SIGHUP does not kill the plugin
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "hup", "ID": "a"})


def test_secrets_never_reach_logs_or_errors(plugin: Plugin) -> None:
    c = plugin.client
    err = c.err("VolumeDriver.Create", {"Name": "s", "Opts": {"type": "sftp", "sftp-host": "h",
                                                              "sftp-pass": "hunter2-secret"}})
    assert "hunter2-secret" not in err
    err = c.err("VolumeDriver.Create", {"Name": "s", "Opts": {"remote": ":sftp,pass=hunter2-secret:/x"}})
    assert "hunter2-secret" not in err
    assert "hunter2-secret" not in plugin.log_text()


def test_second_plugin_on_same_cache_dir_refuses(plugin: Plugin, tmp_root: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "pyclone_docker", "serve", "docker",
                          "--socket-addr", str(tmp_root / "other.sock"), "--base-dir", str(tmp_root / "b2"),
                          "--cache-dir", str(plugin.cache)], capture_output=True, text=True, timeout=20,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode != 0
    assert "already using cache dir" in res.stderr


def test_stale_socket_file_is_replaced(plugin_factory) -> None:
    p = plugin_factory(start=False)
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(p.sock)  # a dead socket file from an earlier run
    s.close()
    p.start()
    assert p.client.ok("VolumeDriver.List", {}) == {"Volumes": []}


def test_subdirectory_listing_and_fd_metadata_calls(plugin: Plugin, data_dir: Path) -> None:
    """readdir of a subdirectory lists that directory; fchmod/futimens touch that file only."""
    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": "sub", "Opts": local(data_dir)})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": "sub", "ID": "a"})["Mountpoint"])
    try:
        for i in range(5):
            (mp / f"top{i}").write_text("t")
        (mp / "d").mkdir()
        (mp / "d" / "inner").write_text("i")
        assert sorted(os.listdir(mp / "d")) == ["inner"]
        root_mode = stat.S_IMODE(os.stat(data_dir).st_mode)
        fd = os.open(mp / "d" / "inner", os.O_RDONLY)
        try:
            os.fchmod(fd, 0o600)
            os.utime(fd, ns=(10**18, 10**18))
        finally:
            os.close(fd)
        assert stat.S_IMODE(os.stat(data_dir / "d" / "inner").st_mode) == 0o600
        assert os.stat(data_dir / "d" / "inner").st_mtime_ns == 10**18
        assert stat.S_IMODE(os.stat(data_dir).st_mode) == root_mode
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "sub", "ID": "a"})
