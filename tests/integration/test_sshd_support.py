"""tests/support/sshd.py's SshServer (a real OpenSSH sshd) checked with the system ssh client,
directly and through tests/support/tcpproxy.py's DelayProxy."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sshd import SshdError, SshServer, sshd_server
from tests.support.tcpproxy import DelayProxy

GUARD = 60.0  # seconds before a hung ssh fails the test (not a timing assertion)


@pytest.fixture(scope="session", autouse=True)
def _require_fuse() -> None:
    """Overrides the integration conftest's FUSE check: nothing here mounts (sshd_server()
    makes its own check, PYCLONE_REQUIRE_SSHD=1 turns its skip into a failure)."""


@pytest.fixture(scope="module")
def srv() -> Iterator[SshServer]:
    yield from sshd_server()


def ssh_argv(srv: SshServer, *command: str, port: int | None = None, known_hosts: str | None = None,
             key: str | None = None, password: bool = False, host: str = "127.0.0.1") -> list[str]:
    argv = ["ssh", "-F", "/dev/null", "-p", str(port or srv.port),
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts or srv.known_hosts_file}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"]
    if password:
        argv += ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
                 "-o", "NumberOfPasswordPrompts=1", "-o", "BatchMode=no"]
    else:
        argv += ["-o", "BatchMode=yes", "-o", "PasswordAuthentication=no", "-i", key or srv.key_file]
    return [*argv, f"{srv.user}@{host}", *command]


def askpass_env(tmp_path: Path, secret: str) -> dict[str, str]:
    """An environment whose SSH_ASKPASS prints `secret` (kept in a 0600 file, not in the env)."""
    secret_file = tmp_path / "secret"
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    script = tmp_path / "askpass"
    script.write_text(f"#!/bin/sh\nexec cat '{secret_file}'\n")
    script.chmod(0o700)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SSH_ASKPASS": str(script),
            "SSH_ASKPASS_REQUIRE": "force"}


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env,
                          start_new_session=True, timeout=GUARD, check=False)


def ok(srv: SshServer, p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, f"ssh failed ({p.returncode}): {p.stderr}\n--- sshd log:\n{srv.log_tail()}"
    return p.stdout


def test_key_auth_exec(srv: SshServer) -> None:
    assert srv.host_key_pub_lines[0].startswith(f"[127.0.0.1]:{srv.port} ssh-ed25519 AAAA")
    assert any(" ssh-rsa AAAA" in line for line in srv.host_key_pub_lines)
    assert Path(srv.known_hosts_file).read_text().splitlines() == srv.host_key_pub_lines
    assert ok(srv, run(ssh_argv(srv, "echo ok"))) == "ok\n"
    assert ok(srv, run(ssh_argv(srv, "id -un"))).strip() == srv.user
    # root_dir belongs to the user, who can write in it.
    st = os.stat(srv.root_dir)
    assert (st.st_uid, st.st_gid) == (srv.uid, srv.gid)
    ok(srv, run(ssh_argv(srv, f"echo hi > {srv.root_dir}/f")))
    assert Path(srv.root_dir, "f").read_text() == "hi\n"
    assert os.stat(Path(srv.root_dir, "f")).st_uid == srv.uid


def test_sftp_subsystem(srv: SshServer, tmp_path: Path) -> None:
    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(300_000))
    argv = ssh_argv(srv)
    argv[0] = "sftp"
    argv[argv.index("-p")] = "-P"  # sftp's port flag
    batch = f"put {src} {srv.root_dir}/up.bin\nls -l {srv.root_dir}\n"
    p = subprocess.run([*argv[:-1], "-b", "-", argv[-1]], input=batch, capture_output=True,
                       text=True, start_new_session=True, timeout=GUARD, check=False)
    ok(srv, p)
    assert Path(srv.root_dir, "up.bin").read_bytes() == src.read_bytes()


def test_unknown_host_key_is_refused(srv: SshServer, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{srv.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")
    p = run(ssh_argv(srv, "echo ok", known_hosts=str(other)))
    assert p.returncode == 255 and "ok" not in p.stdout


def test_password_auth(srv: SshServer, tmp_path: Path) -> None:
    assert srv.password
    good = tmp_path / "good"
    good.mkdir()
    assert ok(srv, run(ssh_argv(srv, "echo ok", password=True), env=askpass_env(good, srv.password))) == "ok\n"
    bad = tmp_path / "bad"
    bad.mkdir()
    p = run(ssh_argv(srv, "echo ok", password=True), env=askpass_env(bad, srv.password + "x"))
    assert p.returncode == 255 and "Permission denied" in p.stderr
    assert srv.password not in srv.log_text()


def test_passphrase_protected_key(srv: SshServer, tmp_path: Path) -> None:
    assert srv.key_passphrase
    # It really is encrypted: without the passphrase it cannot be read.
    p = run(["ssh-keygen", "-y", "-P", "", "-f", srv.key_file_pass_protected])
    assert p.returncode != 0
    env = askpass_env(tmp_path, srv.key_passphrase)
    argv = ssh_argv(srv, "echo ok", key=srv.key_file_pass_protected)
    argv[argv.index("BatchMode=yes")] = "BatchMode=no"  # BatchMode would not ask for the passphrase
    assert ok(srv, run(argv, env=env)) == "ok\n"
    assert "pyclone-test-client-pass" in Path(srv.key_file_pass_protected + ".pub").read_text()


def test_through_delay_proxy(srv: SshServer, tmp_path: Path) -> None:
    with DelayProxy("127.0.0.1", srv.port, delay_up=0.02, delay_down=0.02) as proxy:
        known = srv.write_known_hosts(str(tmp_path / "known_hosts"), "127.0.0.1", proxy.port)
        t0 = time.monotonic()
        assert ok(srv, run(ssh_argv(srv, "echo ok", port=proxy.port, known_hosts=known))) == "ok\n"
        elapsed = time.monotonic() - t0
        assert proxy.connections_accepted == 1
        assert proxy.bytes_up > 0 and proxy.bytes_down > 0
        # An ssh login is several round trips (banner, kex, auth, channel): each costs 40 ms here.
        assert elapsed >= 4 * 0.04


def test_restart_keeps_port_and_host_keys(srv: SshServer) -> None:
    port, pid, lines = srv.port, srv.pid, list(srv.host_key_pub_lines)
    srv.restart()
    assert srv.running and srv.pid != pid
    assert pid is not None and not os.path.exists(f"/proc/{pid}")
    assert srv.port == port and srv.host_key_pub_lines == lines
    assert ok(srv, run(ssh_argv(srv, "echo ok"))) == "ok\n"  # the same known_hosts still matches


def test_kill_sessions_keeps_the_listener(srv: SshServer) -> None:
    live = subprocess.Popen(ssh_argv(srv, "echo started; exec sleep 300"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        assert live.stdout is not None
        assert live.stdout.readline() == "started\n"
        sessions = srv.session_pids()
        assert sessions, "no per-connection sshd under the listener"
        listener = srv.pid
        assert srv.kill_sessions() >= len(sessions)
        assert live.wait(timeout=GUARD) == 255  # the client saw its connection die
        assert srv.pid == listener and srv.running
        assert not any(os.path.exists(f"/proc/{p}") and _is_child(p, listener) for p in sessions)
        assert srv.session_pids() == []
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
    assert ok(srv, run(ssh_argv(srv, "echo ok"))) == "ok\n"


def _is_child(pid: int, parent: int | None) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return int(stat[stat.rindex(b")") + 2:].split()[1]) == parent


def test_bad_config_fails_loudly() -> None:
    srv = SshServer(extra_config=["NoSuchSshdOption yes"], startup_timeout=10)
    with pytest.raises(SshdError) as e, srv:
        pass
    assert "NoSuchSshdOption" in str(e.value)  # the log's tail is in the error
    assert srv.proc is None and not srv.tmpdir and not srv.root_dir


def test_close_cleans_up() -> None:
    with SshServer() as s:
        pid, tmpdir, root_dir = s.pid, s.tmpdir, s.root_dir
        assert pid and os.path.isdir(tmpdir) and os.path.isdir(root_dir)
    assert not os.path.exists(f"/proc/{pid}")
    assert not os.path.exists(tmpdir) and not os.path.exists(root_dir)


def test_in_a_network_namespace(tmp_path: Path) -> None:
    ns = f"pyclone-sshd-{secrets.token_hex(3)}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        with SshServer(netns=ns) as s:
            argv = ["ip", "netns", "exec", ns, *ssh_argv(s, "echo ok")]
            assert ok(s, run(argv)) == "ok\n"
            # Not reachable from the host's namespace: it really listens in ns.
            assert run(ssh_argv(s, "echo ok")).returncode == 255
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
