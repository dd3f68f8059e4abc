"""A real OpenSSH server for tests: `SshServer` runs its own `/usr/sbin/sshd -D -e -f <config>`.

Each instance has a private temp dir holding freshly generated host keys (ed25519 and rsa),
its own sshd_config (the system's /etc/ssh is never read), two client key pairs (ed25519: one
without a passphrase, one with), an authorized_keys file naming both, a known_hosts file and
the sshd log (LogLevel VERBOSE, sshd's stderr). Logins are as the system user `pyclone-test`
(created once with useradd -m and kept; its password is random, kept in a root-only file so
concurrent test runs agree on it, set with chpasswd through stdin and never put in argv or an
environment). `root_dir` is a fresh directory owned by that user, removed by close().

    with SshServer() as srv:          # start() on enter, close() on exit
        srv.host, srv.port, srv.user, srv.password, srv.key_file, srv.host_key_pub_lines
        srv.kill_sessions()           # SIGKILL every per-connection sshd, keep the listener
        srv.restart()                 # same port, same host keys

`netns="name"` runs sshd under `ip netns exec name` (pass the host address that sshd should
listen on in that namespace); the readiness probe then runs in the namespace too.

From a conftest, `sshd_server()` is a generator fixture body:

    @pytest.fixture(scope="module")
    def sshd() -> Iterator[SshServer]:
        yield from sshd_server()

It skips (or fails, with PYCLONE_REQUIRE_SSHD=1) when sshd is missing or not running as root.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
TEST_USER = "pyclone-test"
TEST_HOME = "/home/pyclone-test"
STATE_DIR = Path("/var/lib/pyclone-docker-tests")  # the test user's password, root only
_PASSWORD_FILE = STATE_DIR / "sshd-user-password"
_CHILD_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}


class SshdError(RuntimeError):
    """sshd did not come up (the message carries the tail of its log)."""


def sshd_unavailable() -> str:
    """'' when SshServer can run here, else the reason."""
    if not os.path.exists(SSHD):
        return f"{SSHD} missing (apt-get install openssh-server)"
    if not shutil.which(SSH_KEYGEN):
        return "ssh-keygen missing (apt-get install openssh-client)"
    if os.geteuid() != 0:
        return "SshServer needs root (a system test user, sshd's privilege separation)"
    return ""


def sshd_server(**kwargs: object) -> Iterator[SshServer]:
    """Fixture body: yields a started SshServer(**kwargs), closes it after; skips (or fails with
    PYCLONE_REQUIRE_SSHD=1) when sshd cannot run here."""
    import pytest

    reason = sshd_unavailable()
    if reason:
        if os.environ.get("PYCLONE_REQUIRE_SSHD") == "1":
            pytest.fail(f"sshd tests cannot run: {reason}")
        pytest.skip(f"sshd tests skipped: {reason}")
    with SshServer(**kwargs) as srv:  # type: ignore[arg-type]
        yield srv


def _run(argv: list[str], *, input: bytes | None = None, env: dict[str, str] | None = None,
         new_session: bool = False) -> None:
    p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env or _CHILD_ENV, start_new_session=new_session, check=False)
    if p.returncode != 0:
        raise SshdError(f"{argv[0]} failed ({p.returncode}): {p.stdout.decode(errors='replace').strip()}")


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ensure_test_user() -> tuple[pwd.struct_passwd, str]:
    """The test user (created if missing) and its password (made once, then kept)."""
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_path = STATE_DIR / "lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pw = pwd.getpwnam(TEST_USER)
        except KeyError:
            _run(["useradd", "-m", "-d", TEST_HOME, "-s", "/bin/sh", TEST_USER])
            pw = pwd.getpwnam(TEST_USER)
        if not os.path.isdir(pw.pw_dir):
            os.makedirs(pw.pw_dir, mode=0o750)
            os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
        try:
            password = _PASSWORD_FILE.read_text().strip()
        except FileNotFoundError:
            password = ""
        if not password:
            password = secrets.token_urlsafe(18)
            fd = os.open(_PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
        # The same password every time (a concurrent run's logins keep working); an account
        # someone locked or changed is set right again.
        _run(["chpasswd"], input=f"{TEST_USER}:{password}\n".encode())
    return pw, password


class SshServer:
    """A real OpenSSH sshd with its own keys and config; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, netns: str | None = None,
                 extra_config: Iterable[str] = (), sftp_subsystem: str = "internal-sftp",
                 startup_timeout: float = 20.0) -> None:
        self.host = host
        self.port = port  # 0: a free one is picked at the first start, then kept
        self.netns = netns
        self.extra_config = list(extra_config)
        self.sftp_subsystem = sftp_subsystem
        self.startup_timeout = startup_timeout
        self.user = TEST_USER
        self.password = ""
        self.uid = self.gid = -1
        self.home = TEST_HOME
        self.tmpdir = ""
        self.root_dir = ""
        self.key_file = ""
        self.key_file_pass_protected = ""
        self.key_passphrase = ""
        self.host_key_files: list[str] = []
        self.host_key_pubs: list[str] = []  # "ssh-ed25519 AAAA..." (no comment)
        self.host_key_pub_lines: list[str] = []  # known_hosts lines for host:port
        self.known_hosts_file = ""
        self.config_file = ""
        self.log_file = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._prepared = False
        self._auto_port = port == 0

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> SshServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- set-up ----------------------------------------------------------------------------
    def _prepare(self) -> None:
        if self._prepared:
            return
        pw, self.password = ensure_test_user()
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        self.tmpdir = tempfile.mkdtemp(prefix="pyclone-sshd-")
        # sshd reads authorized_keys as the user: the dir must be traversable (not listable).
        os.chmod(self.tmpdir, 0o711)
        tmp = Path(self.tmpdir)
        self.root_dir = tempfile.mkdtemp(prefix="sftp-", dir=self.home)
        os.chmod(self.root_dir, 0o755)
        os.chown(self.root_dir, self.uid, self.gid)
        for kind, extra in (("ed25519", []), ("rsa", ["-b", "3072"])):
            path = tmp / f"ssh_host_{kind}_key"
            _run([SSH_KEYGEN, "-q", "-t", kind, *extra, "-N", "", "-C", "pyclone-test-host", "-f", str(path)])
            self.host_key_files.append(str(path))
            self.host_key_pubs.append(" ".join(path.with_suffix(".pub").read_text().split()[:2]))
        self.key_file = str(tmp / "id_ed25519")
        _run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "pyclone-test-client", "-f", self.key_file])
        self.key_passphrase = secrets.token_urlsafe(12)
        self.key_file_pass_protected = str(tmp / "id_ed25519_pass")
        self._keygen_with_passphrase(self.key_file_pass_protected)
        auth = tmp / "authorized_keys"
        auth.write_text(Path(self.key_file + ".pub").read_text()
                        + Path(self.key_file_pass_protected + ".pub").read_text())
        os.chmod(auth, 0o644)
        self.known_hosts_file = str(tmp / "known_hosts")
        self.config_file = str(tmp / "sshd_config")
        self.log_file = str(tmp / "sshd.log")
        Path(self.log_file).touch(mode=0o600)
        # sshd's privilege separation directory (Debian's service unit makes it, we run none).
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self._prepared = True

    def _keygen_with_passphrase(self, path: str) -> None:
        """ssh-keygen -N would put the passphrase in argv: it is read through an askpass
        program instead (a script printing a root-only file), with no controlling tty."""
        tmp = Path(self.tmpdir)
        secret = tmp / "keygen-pass"
        script = tmp / "keygen-askpass"
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.key_passphrase + "\n")
        script.write_text(f"#!/bin/sh\nexec cat '{secret}'\n")
        os.chmod(script, 0o700)
        env = dict(_CHILD_ENV, SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force")
        try:
            _run([SSH_KEYGEN, "-q", "-t", "ed25519", "-C", "pyclone-test-client-pass", "-f", path],
                 env=env, input=b"", new_session=True)
        finally:
            secret.unlink(missing_ok=True)
            script.unlink(missing_ok=True)

    def known_hosts_lines(self, host: str | None = None, port: int | None = None) -> list[str]:
        """known_hosts lines for the host keys as reached at host:port (e.g. through a proxy)."""
        host = self.host if host is None else host
        port = self.port if port is None else port
        name = host if port == 22 else f"[{host}]:{port}"
        return [f"{name} {pub}" for pub in self.host_key_pubs]

    def write_known_hosts(self, path: str, host: str | None = None, port: int | None = None) -> str:
        Path(path).write_text("".join(line + "\n" for line in self.known_hosts_lines(host, port)))
        return path

    def _write_config(self) -> None:
        lines = [
            f"ListenAddress {self.host}:{self.port}" if ":" not in self.host
            else f"ListenAddress [{self.host}]:{self.port}",
            *(f"HostKey {p}" for p in self.host_key_files),
            "PidFile none",
            "UsePAM no",
            "PasswordAuthentication yes",
            "PermitEmptyPasswords no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            f"AuthorizedKeysFile {self.tmpdir}/authorized_keys",
            "StrictModes no",
            "PermitRootLogin no",
            f"AllowUsers {self.user}",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            f"Subsystem sftp {self.sftp_subsystem}",
            "MaxSessions 100",
            "MaxStartups 100:30:200",
            "MaxAuthTries 10",
            "LoginGraceTime 60",
            "LogLevel VERBOSE",
            *self.extra_config,
        ]
        Path(self.config_file).write_text("\n".join(lines) + "\n")
        os.chmod(self.config_file, 0o600)

    # -- process control -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The listener sshd's pid (None when stopped)."""
        return self.proc.pid if self.running and self.proc else None

    def start(self) -> None:
        """Start sshd (prepares keys, user and dirs at the first call); returns once it sends
        its SSH banner. Raises SshdError, with the log's tail, if it does not."""
        if self.running:
            return
        self._prepare()
        for attempt in range(5):
            if self.port == 0 or (attempt and self._auto_port):
                self.port = free_port(self.host) if self.netns is None else 20000 + secrets.randbelow(30000)
            try:
                self._start_once()
                break
            except SshdError as e:
                if not (self._auto_port and "Address already in use" in str(e)) or attempt == 4:
                    raise
        self.host_key_pub_lines = self.known_hosts_lines()
        self.write_known_hosts(self.known_hosts_file)

    def _start_once(self) -> None:
        self._write_config()
        log_start = os.path.getsize(self.log_file)
        argv = [SSHD, "-D", "-e", "-f", self.config_file]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=_CHILD_ENV, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        why = "no SSH banner"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                why = f"sshd exited with status {self.proc.returncode}"
                break
            banner = self._probe()
            if banner.startswith(b"SSH-2.0-"):
                return
            time.sleep(0.05)
        else:
            why = f"no SSH banner on {self.host}:{self.port} within {self.startup_timeout:.0f} s"
        self._kill_listener()
        with open(self.log_file, "rb") as f:
            f.seek(log_start)
            tail = f.read().decode(errors="replace").splitlines()[-40:]
        raise SshdError(f"sshd did not come up ({why}); config {self.config_file}; log {self.log_file}:\n"
                        + "\n".join(tail))

    def _probe(self) -> bytes:
        """The first line the server sends at host:port (b'' when nothing answers)."""
        if self.netns:
            code = ("import socket,sys\n"
                    "try:\n"
                    f"  s=socket.create_connection(({self.host!r},{self.port}),timeout=2)\n"
                    "  s.sendall(b'SSH-2.0-pyclone_probe\\r\\n')\n"
                    "  sys.stdout.buffer.write(s.makefile('rb').readline(256))\n"
                    "except OSError:\n  pass\n")
            p = subprocess.run(["ip", "netns", "exec", self.netns, sys.executable, "-c", code],
                               capture_output=True, env=_CHILD_ENV, timeout=10, check=False)
            return p.stdout
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as s:
                s.sendall(b"SSH-2.0-pyclone_probe\r\n")
                return s.makefile("rb").readline(256)
        except OSError:
            return b""

    def session_pids(self) -> list[int]:
        """The pids of every process under the listener (per-connection sshd and their children)."""
        return _descendants(self.proc.pid) if self.running and self.proc else []

    def kill_sessions(self, timeout: float = 10.0) -> int:
        """SIGKILL every per-connection sshd (and what runs under them), keep the listener;
        returns how many processes were killed, once the listener has reaped its children."""
        if not self.running or self.proc is None:
            return 0
        listener = self.proc.pid
        killed = _kill_tree(listener, include_root=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_ppid(pid) == listener for pid in killed):
            time.sleep(0.02)
        return len(killed)

    def stop(self) -> None:
        """Kill the sessions and the listener (keys, dirs and port stay for start())."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.kill_sessions()
        self._kill_listener()

    def _kill_listener(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _kill_tree(self.proc.pid, include_root=True)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        """stop() then start() on the same port with the same host keys."""
        self.stop()
        self._auto_port = False  # the same port or a loud failure
        self.start()

    def close(self) -> None:
        """stop(), then remove the temp dir (keys, config, log) and root_dir."""
        self.stop()
        if self.root_dir:
            shutil.rmtree(self.root_dir, ignore_errors=True)
            self.root_dir = ""
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = ""
        self._prepared = False

    # -- log -------------------------------------------------------------------------------
    def log_text(self) -> str:
        """Everything sshd logged so far (all starts of this instance)."""
        try:
            return Path(self.log_file).read_text(errors="replace")
        except (FileNotFoundError, OSError):
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


# -- process tree helpers ----------------------------------------------------------------------
def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return -1
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def _descendants(root: int) -> list[int]:
    by_parent: dict[int, list[int]] = {}
    for task in os.listdir("/proc"):
        if task.isdigit():
            by_parent.setdefault(_ppid(int(task)), []).append(int(task))
    out: list[int] = []
    todo = list(by_parent.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(by_parent.get(pid, []))
    return out


def _kill_tree(root: int, include_root: bool) -> list[int]:
    """SIGSTOP the tree under root until no new process appears (a stopped process cannot
    fork, and one reparented away is already in the list), then SIGKILL it all."""
    stopped: list[int] = []
    if include_root:
        with contextlib.suppress(ProcessLookupError):
            os.kill(root, signal.SIGSTOP)
    for _ in range(50):
        new = [p for p in _descendants(root) if p not in stopped]
        if not new:
            break
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if include_root:
        with contextlib.suppress(ProcessLookupError):
            os.kill(root, signal.SIGKILL)
    return stopped
