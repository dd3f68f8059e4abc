"""Seed 002's "Getting started", verbatim, as a Docker e2e test (issue 11): sftp volumes.

A real OpenSSH sshd (tests/support/sshd.py) listens on 127.0.0.1; the plugin runs on the host
(conftest's v1 plugin, or the managed plugin with host networking), so loopback reaches it and
the containers only see the mount. The seed's

    docker volume create firstvolume -d rclone -o type=sftp -o sftp-host=_hostname_ \
        -o sftp-user=_username_ -o sftp-pass=_password_ -o allow-other=true
    docker run --rm -it -v firstvolume:/mnt --workdir /mnt ubuntu:latest bash
    docker volume list
    docker volume remove firstvolume

becomes: the obscured password made by the plugin's own `obscure -` (stdin), `sftp-port` added
(the sshd has a random port), a container writing a text file, 20 MB of /dev/urandom (md5 taken
in the container) and a subdirectory, a second container reading them back, and the bytes
checked on the server's disk (owned by the sftp user: they went through sshd). Then the other
ways the seed names: `-o path=`, the connection string, an rclone.conf section, a key file in
the config dir (`/data/config/...` in the managed plugin), and a wrong password.

Volume names get a random suffix (dockerd's volume names are global: concurrent runs must not
collide). The seed's no-path volume writes into the sftp user's home: only names made for the
test, removed afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.sshd import SshServer, sshd_server

if TYPE_CHECKING:  # helpers come in through the fixtures, never by importing conftest
    from conftest import PluginProcess, Resources

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
BIG_MB = 20
RUN_TIMEOUT = 300.0
DOCKERD_LOG = Path(os.environ.get("DOCKERD_LOG", "/tmp/dockerd.log"))


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sshd(docker_ready: str) -> Iterator[SshServer]:
    yield from sshd_server()


def obscure_cli(secret: str) -> str:
    """`pyclone-docker obscure -`: the secret on stdin, never in argv."""
    python = os.environ.get("PYCLONE_PYTHON") or sys.executable
    pyz = os.environ.get("PYCLONE_PYZ")
    head = [python, os.path.abspath(pyz)] if pyz else [python, "-m", "pyclone_docker"]
    p = subprocess.run([*head, "obscure", "-"], input=secret + "\n", capture_output=True, text=True,
                       cwd=REPO, timeout=60, check=False)
    assert p.returncode == 0, f"obscure failed: {p.stderr}"
    value = p.stdout.strip()
    assert value and value != secret and secret not in value, "obscure printed nothing usable"
    return value


def tag() -> str:
    return secrets.token_hex(4)


def o_args(opts: list[str] | tuple[str, ...]) -> list[str]:
    return [arg for o in opts for arg in ("-o", o)]


def create_volume(res: Resources, name: str, *opts: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """docker volume create NAME -d <driver> -o OPT...; the name is removed at teardown."""
    res.volumes.append(name)
    r = res.docker("volume", "create", name, "-d", res.plugin.driver, *o_args(opts), check=False)
    if check:  # not the CLI's argv in the message: it holds the obscured password
        rc, out = r.returncode, r.stdout.strip()
        assert rc == 0, f"docker volume create {name} failed ({rc}): {r.stderr}"
        assert out == name, f"docker volume create printed {out!r}"
    return r


def sftp_opts(srv: SshServer, *extra: str) -> list[str]:
    """The seed's split options; the password comes with the call (obscured)."""
    return ["type=sftp", f"sftp-host={srv.host}", f"sftp-port={srv.port}", f"sftp-user={srv.user}", *extra]


def seed_run(res: Resources, volume: str, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The seed's container: docker run --rm -v VOLUME:/mnt --workdir /mnt IMAGE sh -c SCRIPT."""
    return res.docker("run", "--rm", *res.run_args(), "-v", f"{volume}:/mnt", "--workdir", "/mnt",
                      res.image, "sh", "-c", script, timeout=RUN_TIMEOUT, check=check)


def write_script(t: str) -> str:
    return (
        "set -e\n"
        'echo "cwd=$(pwd)"\n'
        f'echo "hello from {t}" > hello-{t}.txt\n'
        f"dd if=/dev/urandom of=big-{t}.bin bs=1M count={BIG_MB} 2>/dev/null\n"
        f"mkdir -p dir-{t}/sub\n"
        f"echo nested > dir-{t}/sub/nested.txt\n"
        f'echo "md5=$(md5sum big-{t}.bin | cut -d" " -f1)"\n'
        f'echo "hello=$(cat hello-{t}.txt)"\n'
        'echo "ls=$(ls | tr "\\n" " ")"\n'
    )


def read_script(t: str) -> str:
    return (
        "set -e\n"
        f'echo "md5=$(md5sum big-{t}.bin | cut -d" " -f1)"\n'
        f'echo "size=$(wc -c < big-{t}.bin)"\n'
        f'echo "hello=$(cat hello-{t}.txt)"\n'
        f'echo "nested=$(cat dir-{t}/sub/nested.txt)"\n'
        f'echo "ls=$(ls | tr "\\n" " ")"\n'
    )


def fields(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def seed_roundtrip(res: Resources, srv: SshServer, volume: str, server_dir: Path) -> str:
    """Write in one container, read back in a second one, check the server's disk; the tag."""
    t = tag()
    out = fields(seed_run(res, volume, write_script(t)).stdout)
    assert out.get("cwd") == "/mnt", out
    assert out.get("hello") == f"hello from {t}", out
    for name in (f"hello-{t}.txt", f"big-{t}.bin", f"dir-{t}"):
        assert name in out.get("ls", "").split(), f"{name} not listed in the container: {out}"
    written = out["md5"]
    assert len(written) == 32, out

    back = fields(seed_run(res, volume, read_script(t)).stdout)
    assert back.get("md5") == written, f"a second container read other bytes: {back}"
    assert back.get("size", "").strip() == str(BIG_MB << 20), back
    assert back.get("hello") == f"hello from {t}" and back.get("nested") == "nested", back

    big = server_dir / f"big-{t}.bin"
    res.wait_for(lambda: big.is_file() and big.stat().st_size == BIG_MB << 20, 30, f"{big} on the server")
    assert md5_file(big) == written, "the server's file differs from what the container wrote"
    assert (server_dir / f"hello-{t}.txt").read_text() == f"hello from {t}\n"
    assert (server_dir / f"dir-{t}" / "sub" / "nested.txt").read_text() == "nested\n"
    for p in (big, server_dir / f"hello-{t}.txt", server_dir / f"dir-{t}" / "sub"):
        assert p.stat().st_uid == srv.uid, f"{p} is not owned by {srv.user}: not written over sftp?"
    leftovers = [p.name for p in server_dir.iterdir() if p.name.startswith(f"big-{t}") and p != big]
    assert not leftovers, f"partial uploads left on the server: {leftovers}"
    return t


def remove_tagged(server_dir: Path, t: str) -> None:
    for p in server_dir.glob(f"*-{t}*"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def listed(res: Resources, name: str) -> bool:
    # `docker volume list`, filtered by driver: unfiltered it asks every v1 plugin dockerd has
    # seen, and stalls ~15 s on dead ones (conftest's module doc)
    out = res.docker("volume", "list", "--filter", f"driver={res.plugin.driver}",
                     "--format", "{{.Driver}} {{.Name}}").stdout
    return f"{res.plugin.driver} {name}" in out.splitlines()


def remove_volume(res: Resources, name: str) -> None:
    res.docker("volume", "remove", name)
    assert not listed(res, name)


def log_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def assert_no_secret(what: str, text: str, *secrets_: str) -> None:
    for s in secrets_:
        assert s not in text, f"{what} holds a secret ({len(s)} characters)"


def server_subdir(srv: SshServer, name: str) -> Path:
    d = Path(srv.root_dir) / name
    d.mkdir()
    os.chown(d, srv.uid, srv.gid)
    return d


def copy_key(srv: SshServer, dest: Path) -> Path:
    shutil.copyfile(srv.key_file, dest)
    os.chmod(dest, 0o600)
    return dest


# --------------------------------------------------------------------------
# 1. the seed's volume: type=sftp, sftp-host, sftp-user, sftp-pass, allow-other
# --------------------------------------------------------------------------


def test_getting_started_sftp_volume(plugin: PluginProcess, res: Resources, sshd: SshServer) -> None:
    obscured = obscure_cli(sshd.password)
    log_start, sshd_start = plugin.log_size(), len(sshd.log_text())
    name = f"firstvolume{tag()}"
    create_volume(res, name, *sftp_opts(sshd, f"sftp-pass={obscured}", "allow-other=true"))
    assert listed(res, name), "docker volume list does not show the new volume"
    home = Path(sshd.home)
    t = ""
    try:
        t = seed_roundtrip(res, sshd, name, home)  # no path: the sftp user's login directory
        remove_volume(res, name)
        assert (home / f"big-{t}.bin").is_file(), "removing the volume removed its data"
        assert "Accepted password for " + sshd.user in sshd.log_text()[sshd_start:]
    finally:
        if t:
            remove_tagged(home, t)
    assert_no_secret("the plugin log", log_from(plugin.log_path, log_start), sshd.password, obscured)


def test_getting_started_with_path(plugin: PluginProcess, res: Resources, sshd: SshServer) -> None:
    """The seed's "-o path=/home/username", here the sshd's own directory under the home."""
    d = server_subdir(sshd, "withpath")
    name = f"firstvolume{tag()}"
    create_volume(res, name, *sftp_opts(sshd, f"sftp-pass={obscure_cli(sshd.password)}", "allow-other=true",
                                        f"path={d}"))
    t = seed_roundtrip(res, sshd, name, d)
    remove_volume(res, name)
    assert md5_file(d / f"big-{t}.bin"), "data gone after docker volume remove"


# --------------------------------------------------------------------------
# 2. the connection string
# --------------------------------------------------------------------------


def test_connection_string(plugin: PluginProcess, res: Resources, sshd: SshServer) -> None:
    obscured = obscure_cli(sshd.password)
    d = server_subdir(sshd, "connstr")
    name = f"sftpconn{tag()}"
    remote = f":sftp,host={sshd.host},port={sshd.port},user={sshd.user},pass={obscured}:{d}"
    create_volume(res, name, f"remote={remote}", "allow-other=true")
    seed_roundtrip(res, sshd, name, d)

    # while mounted, the kernel's mount table shows the remote without its password
    ctr = res.container()
    res.docker("run", "-d", *res.run_args(ctr), "-v", f"{name}:/mnt", res.image, "sleep", "300")
    res.wait_for(lambda: plugin.mounts(), 20, "the volume mounted on the host")
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        assert_no_secret("/proc/self/mountinfo", f.read(), sshd.password, obscured)
    out = res.docker("exec", ctr, "sh", "-c", "ls /mnt; echo live > /mnt/live.txt; cat /mnt/live.txt").stdout
    assert out.splitlines()[-1] == "live", out
    res.docker("rm", "-f", ctr, timeout=90)
    res.containers.remove(ctr)
    assert (d / "live.txt").read_text() == "live\n"
    remove_volume(res, name)


# --------------------------------------------------------------------------
# 3. an rclone.conf section; 4. a key file in the config dir
# --------------------------------------------------------------------------


@pytest.fixture
def config_section(plugin: PluginProcess) -> Iterator[Path]:
    """plugin.config_path (the plugin's RCLONE_CONFIG) restored to what it held afterwards."""
    before = plugin.config_path.read_bytes()
    try:
        yield plugin.config_path
    finally:
        plugin.config_path.write_bytes(before)


def box_section(srv: SshServer, key_file: Path) -> str:
    return (f"[box]\ntype = sftp\nhost = {srv.host}\nport = {srv.port}\nuser = {srv.user}\n"
            f"key_file = {key_file}\nknown_hosts_file = {srv.known_hosts_file}\n")


def test_rclone_conf_section(plugin: PluginProcess, res: Resources, sshd: SshServer,
                             config_section: Path) -> None:
    d = server_subdir(sshd, "conf")
    sshd_start = len(sshd.log_text())
    config_section.write_text(box_section(sshd, Path(sshd.key_file)))
    plugin.restart()  # the plugin reads rclone.conf at start (see test_rclone_conf_written_after_start)
    name = f"sftpbox{tag()}"
    create_volume(res, name, f"remote=box:{d}", "allow-other=true")
    seed_roundtrip(res, sshd, name, d)
    remove_volume(res, name)
    assert "Accepted publickey for " + sshd.user in sshd.log_text()[sshd_start:]


def test_rclone_conf_written_after_start(plugin: PluginProcess, res: Resources, sshd: SshServer,
                                         config_section: Path) -> None:
    d = server_subdir(sshd, "conflate")
    section = box_section(sshd, Path(sshd.key_file)).replace("[box]", f"[late{tag()}]")
    config_section.write_text(section)
    remote = section.split("]", 1)[0].lstrip("[")
    name = f"sftplate{tag()}"
    r = create_volume(res, name, f"remote={remote}:{d}", "allow-other=true", check=False)
    rc = r.returncode
    assert rc == 0, f"a section written to rclone.conf after the plugin started is unknown: {r.stderr}"
    assert fields(seed_run(res, name, "echo ok=yes").stdout).get("ok") == "yes"
    remove_volume(res, name)


def test_key_file_in_config_dir(plugin: PluginProcess, res: Resources, sshd: SshServer) -> None:
    """The seed's managed-plugin text: a key file put in the config dir, named by its path
    (/data/config/sftp-box1.key in the managed plugin, the config dir on the host here)."""
    key = copy_key(sshd, plugin.config_path.parent / "sftp-box1.key")
    d = server_subdir(sshd, "keyfile")
    name = f"sftpkey{tag()}"
    try:
        create_volume(res, name, *sftp_opts(sshd, f"sftp-key-file={key}", f"path={d}", "allow-other=true"))
        seed_roundtrip(res, sshd, name, d)
        remove_volume(res, name)
    finally:
        key.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# 5. a wrong password
# --------------------------------------------------------------------------


def wrong_password_volume(res: Resources, srv: SshServer) -> tuple[str, str, str, subprocess.CompletedProcess[str]]:
    wrong = "wrong-" + secrets.token_urlsafe(12)
    obscured = obscure_cli(wrong)
    name = f"sftpwrong{tag()}"
    r = create_volume(res, name, *sftp_opts(srv, f"sftp-pass={obscured}", "allow-other=true"), check=False)
    return name, wrong, obscured, r


def test_wrong_password_fails_clearly(plugin: PluginProcess, res: Resources, sshd: SshServer) -> None:
    """Wherever it fails (create, or the mount of `docker run`), the error names the server and
    holds neither the password nor its obscured form; neither does the plugin's log."""
    log_start, dockerd_start = plugin.log_size(), DOCKERD_LOG.stat().st_size if DOCKERD_LOG.exists() else 0
    sshd_start = len(sshd.log_text())
    name, wrong, obscured, r = wrong_password_volume(res, sshd)
    if r.returncode == 0:
        r = seed_run(res, name, "echo should-not-run", check=False)
        rc = r.returncode
        assert rc != 0 and "should-not-run" not in r.stdout, "a container ran on a wrong password"
    err = r.stderr
    print(f"wrong password: {err.strip()}")
    assert f"{sshd.host}:{sshd.port}" in err or f"{sshd.user}@{sshd.host}" in err, f"the error names no server: {err}"
    assert "auth" in err.lower() or "denied" in err.lower(), f"the error does not say authentication failed: {err}"
    assert_no_secret("the docker CLI's error", r.stdout + err, wrong, obscured)
    assert_no_secret("the plugin log", log_from(plugin.log_path, log_start), wrong, obscured)
    assert_no_secret("the dockerd log", log_from(DOCKERD_LOG, dockerd_start), wrong)
    assert f"Failed password for {sshd.user}" in sshd.log_text()[sshd_start:], "sshd saw no password attempt"


def test_wrong_password_fails_at_create(plugin: PluginProcess, res: Resources, sshd: SshServer) -> None:
    name, _wrong, _obscured, r = wrong_password_volume(res, sshd)
    rc = r.returncode
    assert rc != 0, "docker volume create succeeded with a wrong sftp password"
    assert not listed(res, name)


# --------------------------------------------------------------------------
# 4m. the managed plugin: a key file under /data/config
# --------------------------------------------------------------------------

with warnings.catch_warnings():  # `slow` is not registered in conftest.py (as in test_managed_plugin.py)
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    slow = pytest.mark.slow

MANAGED = "pyclonetest/pyclone-sftp:e2e"


@pytest.fixture
def managed_sftp(sshd: SshServer, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The managed plugin (`make plugin`), created under its own name with config/cache in
    tmp_path; removed with its volumes at the end."""
    from test_managed_plugin import host_arch, remove_plugin

    arch = host_arch()
    p = subprocess.run(["make", "-C", str(REPO), "plugin", f"PLUGIN_ARCH={arch}"], capture_output=True,
                       text=True, timeout=1800, check=False)
    if p.returncode:
        pytest.fail(f"make plugin failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}", pytrace=False)
    plugin_dir = REPO / "build" / "plugin" / f"pyclone-{arch}"
    assert (plugin_dir / "rootfs" / "usr" / "bin" / "ssh").exists(), "the managed plugin's rootfs has no ssh"
    config, cache = tmp_path / "config", tmp_path / "cache"
    config.mkdir()
    cache.mkdir()
    (config / "rclone.conf").touch()
    remove_plugin(MANAGED)
    subprocess.run(["docker", "plugin", "create", MANAGED, str(plugin_dir)], check=True, capture_output=True,
                   timeout=300)
    try:
        subprocess.run(["docker", "plugin", "set", MANAGED, f"config.source={config}", f"cache.source={cache}",
                        "args=-v"], check=True, capture_output=True, timeout=60)
        yield MANAGED, config
    finally:
        remove_plugin(MANAGED)


@slow
def test_managed_plugin_key_file_under_data_config(docker_ready: str, sshd: SshServer,
                                                   managed_sftp: tuple[str, Path]) -> None:
    from dockercli import docker

    driver, config = managed_sftp
    copy_key(sshd, config / "sftp-box1.key")
    d = server_subdir(sshd, "managed")
    docker("plugin", "enable", "--timeout", "60", driver)
    name = f"sftpmanaged{tag()}"
    docker("volume", "create", name, "-d", driver, *o_args(sftp_opts(
        sshd, "sftp-key-file=/data/config/sftp-box1.key", f"path={d}", "allow-other=true")))
    removed = False
    try:
        assert name in docker("volume", "list", "-q", "--filter", f"driver={driver}").stdout.split()
        t = tag()
        out = fields(docker("run", "--rm", "-v", f"{name}:/mnt", "--workdir", "/mnt", docker_ready, "sh", "-c",
                            write_script(t)).stdout)
        assert out.get("hello") == f"hello from {t}", out
        big = d / f"big-{t}.bin"
        assert big.is_file() and md5_file(big) == out["md5"], "the server's file differs"
        assert big.stat().st_uid == sshd.uid
        assert (d / f"dir-{t}" / "sub" / "nested.txt").read_text() == "nested\n"
        docker("volume", "remove", name)
        removed = True
        assert big.is_file()
    finally:
        if not removed:  # a second rm of a gone volume makes dockerd ask every plugin it knows (dead ones stall)
            docker("volume", "rm", "-f", name, check=False)
