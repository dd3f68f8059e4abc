"""rclone.conf remotes, alias, command-line defaults, mount options and the small subcommands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyclone_docker import obscure

from .conftest import REPO, Plugin


def mountinfo_options(mp: str) -> str:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == mp:
                return line
    raise AssertionError(f"{mp} is not mounted")


def test_named_remotes_and_alias_from_rclone_conf(plugin_factory, tmp_root: Path, data_dir: Path) -> None:
    conf = tmp_root / "rclone.conf"
    conf.write_text(f"[mylocal]\ntype = local\n\n[myalias]\ntype = alias\nremote = mylocal:{data_dir}\n")
    p = plugin_factory(["--config", str(conf)])
    c = p.client
    c.ok("VolumeDriver.Create", {"Name": "al", "Opts": {"remote": "myalias:sub"}})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": "al", "ID": "a"})["Mountpoint"])
    try:
        (mp / "via-alias.txt").write_text("aliased")
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "al", "ID": "a"})
    assert (data_dir / "sub" / "via-alias.txt").read_text() == "aliased"
    # a named remote's backend options take its type as prefix
    c.ok("VolumeDriver.Create", {"Name": "ml", "Opts": {"remote": f"mylocal:{data_dir}", "local-copy-links": "true"}})
    err = c.err("VolumeDriver.Create", {"Name": "m2", "Opts": {"remote": "mylocal:/x", "sftp-host": "h"}})
    assert 'unsupported backend option "sftp-host"' in err


def test_remote_defined_by_environment(plugin_factory, data_dir: Path) -> None:
    p = plugin_factory(env={"RCLONE_CONFIG_ENVREM_TYPE": "local"})
    c = p.client
    c.ok("VolumeDriver.Create", {"Name": "env", "Opts": {"remote": f"envrem:{data_dir}"}})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": "env", "ID": "a"})["Mountpoint"])
    try:
        (mp / "e.txt").write_text("env")
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "env", "ID": "a"})
    assert (data_dir / "e.txt").read_text() == "env"


def test_obscured_passwords_are_revealed_and_bad_ones_refused_without_echo(plugin: Plugin) -> None:
    c = plugin.client
    good = obscure.obscure("s3cr3t-value")
    err = c.err("VolumeDriver.Create", {"Name": "o", "Opts": {"type": "sftp", "sftp-host": "h", "sftp-pass": good}})
    # got past the reveal: Create connects (as rclone's), and names the server, not the password
    assert "couldn't connect SSH to root@h:22" in err and "s3cr3t" not in err and good not in err
    err = c.err("VolumeDriver.Create", {"Name": "o", "Opts": {"type": "sftp", "sftp-host": "h",
                                                              "sftp-pass": "plain!text"}})
    assert "couldn't decrypt pass" in err and "plain!text" not in err


def test_command_line_flags_are_volume_defaults(plugin_factory, data_dir: Path) -> None:
    (data_dir / "f.txt").write_text("x")
    p = plugin_factory(["--read-only", "--allow-other", "--attr-timeout", "2s"])
    c = p.client
    c.ok("VolumeDriver.Create", {"Name": "d", "Opts": {"type": "local", "path": str(data_dir)}})
    c.ok("VolumeDriver.Create", {"Name": "w", "Opts": {"type": "local", "path": str(data_dir), "read-only": "false"}})
    mp = c.ok("VolumeDriver.Mount", {"Name": "d", "ID": "a"})["Mountpoint"]
    mpw = c.ok("VolumeDriver.Mount", {"Name": "w", "ID": "a"})["Mountpoint"]
    try:
        assert "allow_other" in mountinfo_options(mp)
        with pytest.raises(OSError) as ei:
            Path(mp, "new.txt").write_text("no")
        assert ei.value.errno == 30
        Path(mpw, "new.txt").write_text("yes")  # per-volume option overrides the default
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "d", "ID": "a"})
        c.ok("VolumeDriver.Unmount", {"Name": "w", "ID": "a"})


def test_uid_gid_umask_override(plugin: Plugin, data_dir: Path) -> None:
    (data_dir / "f.txt").write_text("x")
    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": "u", "Opts": {"type": "local", "path": str(data_dir), "uid": "1234",
                                                       "gid": "5678", "umask": "077"}})
    mp = c.ok("VolumeDriver.Mount", {"Name": "u", "ID": "a"})["Mountpoint"]
    try:
        st = os.stat(Path(mp, "f.txt"))
        assert (st.st_uid, st.st_gid) == (1234, 5678)
        assert st.st_mode & 0o777 == 0o600  # rclone: file-perms 0666 &^ umask 077
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "u", "ID": "a"})


def test_devname_hides_connection_string_secrets(plugin: Plugin, data_dir: Path) -> None:
    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": "dn", "Opts": {"remote": f":local,description=topsecret:{data_dir}"}})
    mp = c.ok("VolumeDriver.Mount", {"Name": "dn", "ID": "a"})["Mountpoint"]
    try:
        line = mountinfo_options(mp)
        assert "topsecret" not in line and "fuse.rclone" in line
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "dn", "ID": "a"})


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyclone_docker", *args], capture_output=True, text=True,
                          cwd=REPO, input=stdin, timeout=30)


def test_obscure_and_reveal_subcommands() -> None:
    res = run_cli("obscure", "potato")
    assert res.returncode == 0
    assert obscure.reveal(res.stdout.strip()) == "potato"
    res = run_cli("reveal", "YWFhYWFhYWFhYWFhYWFhYXMaGgIlEQ")
    assert (res.returncode, res.stdout.strip()) == (0, "potato")
    res = run_cli("obscure", "-", stdin="from stdin\n")
    assert obscure.reveal(res.stdout.strip()) == "from stdin"
    res = run_cli("reveal", "not-obscured!")
    assert res.returncode != 0 and "is it obscured" in res.stderr


def test_version_help_and_bad_flags() -> None:
    assert run_cli("version").stdout.startswith("pyclone-docker v")
    out = run_cli("serve", "docker", "--help").stdout
    assert "--vfs-cache-mode" in out and "--socket-addr" in out and "--allow-other" in out
    res = run_cli("serve", "docker", "--no-such-flag")
    assert res.returncode == 2 and "unknown flag: --no-such-flag" in res.stderr
    res = run_cli("serve", "docker", "--attr-timeout", "soon")
    assert res.returncode == 2 and "--attr-timeout" in res.stderr


def test_unparsable_connection_string_is_not_echoed(plugin: Plugin) -> None:
    err = plugin.client.err("VolumeDriver.Create", {"Name": "x", "Opts": {"remote": ":sftp,pass=s3cr3tpw,bad param:/"}})
    assert "cannot parse remote/fs" in err and "s3cr3tpw" not in err


def test_max_read_ahead_sets_the_mounts_readahead(plugin: Plugin, data_dir: Path) -> None:
    from pyclone_docker.fuse import mount as mountmod

    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": "ra", "Opts": {"type": "local", "path": str(data_dir),
                                                        "max-read-ahead": "1Mi"}})
    mp = c.ok("VolumeDriver.Mount", {"Name": "ra", "ID": "a"})["Mountpoint"]
    try:
        if mountmod.fuse_binding().fuse_version_major != 3:
            pytest.skip("libfuse2 takes max_readahead as a mount option")
        dev = os.stat(mp).st_dev
        assert Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb").read_text().strip() == "1024"
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "ra", "ID": "a"})


def _plugin_read_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


@pytest.mark.parametrize("buffer_size", ["8M", "0"])
def test_buffer_size_reads_a_stream_ahead_in_memory(plugin_factory, data_dir: Path, buffer_size: str) -> None:
    """--no-seek makes local a stream (as every network backend is): --buffer-size is read ahead."""
    data = os.urandom(24 << 20)
    (data_dir / "big.bin").write_bytes(data)
    p = plugin_factory(["--buffer-size", buffer_size])
    c = p.client
    # a generous --vfs-read-wait: the kernel's parallel read-ahead must not look like a seek on a busy host
    c.ok("VolumeDriver.Create", {"Name": "b", "Opts": {"type": "local", "path": str(data_dir), "no-seek": "true",
                                                       "vfs-read-wait": "2s"}})
    mp = c.ok("VolumeDriver.Mount", {"Name": "b", "ID": "a"})["Mountpoint"]
    try:
        # counted from before the open: the read-ahead starts with the handle, not the first read
        before = _plugin_read_bytes(p.proc.pid)
        with open(Path(mp, "big.bin"), "rb", buffering=0) as f:
            head = f.read(1 << 20)
            # the reader is idle now: only a read-ahead thread can read more from the backend
            deadline = time.monotonic() + (10 if buffer_size == "8M" else 1)
            while time.monotonic() < deadline:
                ahead = _plugin_read_bytes(p.proc.pid) - before
                if buffer_size == "8M" and ahead >= 9 << 20:
                    break
                time.sleep(0.05)
            time.sleep(0.2)
            settled = _plugin_read_bytes(p.proc.pid) - before
            rest = f.read()
        assert head + rest == data
        if buffer_size == "8M":  # 1 MiB read, 8 ahead, and no further: the buffer is bounded
            assert 9 << 20 <= settled < 11 << 20, f"{settled} bytes read from the backend"
        else:
            assert settled < 4 << 20, f"{settled} bytes read with --buffer-size 0"
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "b", "ID": "a"})
