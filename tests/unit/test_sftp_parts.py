"""The sftp backend's pure parts: the ssh command line from rclone's options, the askpass
server's refusals, rclone's shell quoting, partial names and the SFTP packet codec."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pyclone_docker.backends import sftp
from pyclone_docker.backends.sftp import proto, ssh
from pyclone_docker.backends.sftp.hashes import quote_cmd, quote_powershell, quote_unix
from pyclone_docker.lib import askpass

REPO = Path(__file__).resolve().parents[2]


def _opts(**kw: str) -> dict:
    raw = {"host": "example.org", "user": "me", **kw}
    return sftp.INFO.parse_options(raw)


def _o(argv: list[str]) -> dict[str, str]:
    out = {}
    for i, a in enumerate(argv):
        if a == "-o":
            k, _, v = argv[i + 1].partition("=")
            out[k] = v
    return out


def test_no_host_key_option_validates_nothing_and_logs_rclones_notice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(20, logger="pyclone"):
        cfg = ssh.build(_opts(**{"pass": "pw"}), 60)
    o = _o(cfg.argv)
    assert o["StrictHostKeyChecking"] == "no" and o["UserKnownHostsFile"] == "/dev/null"
    assert not cfg.validates_host_key
    assert ssh.NO_VALIDATION_NOTICE in caplog.text
    assert "pw" not in " ".join(cfg.argv) and "pw" not in str(cfg)  # the password is no argument
    assert cfg.argv[:3] == ["ssh", "-F", "none"]  # no ssh_config: as rclone's own client


def test_known_hosts_none_silences_the_notice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(20, logger="pyclone"):
        ssh.build(_opts(**{"pass": "pw", "known_hosts_file": "none"}), 60)
    assert ssh.NO_VALIDATION_NOTICE not in caplog.text


def test_known_hosts_file_is_checked_strictly(tmp_path: Path) -> None:
    kh = tmp_path / "kh"
    kh.write_text("")
    o = _o(ssh.build(_opts(**{"pass": "pw", "known_hosts_file": str(kh)}), 60).argv)
    assert (o["UserKnownHostsFile"], o["StrictHostKeyChecking"]) == (str(kh), "yes")


def test_host_keys_pin_the_key_and_its_algorithms() -> None:
    cfg = ssh.build(_opts(**{"pass": "pw", "port": "2222", "host_keys": "ssh-ed25519 AAAAC3Nza,ssh-rsa AAAAB3Nz"}), 60)
    o = _o(cfg.argv)
    assert o["StrictHostKeyChecking"] == "yes"
    known = Path(o["UserKnownHostsFile"])
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    assert known.read_text().split("\n")[:2] == ["[example.org]:2222 ssh-ed25519 AAAAC3Nza",
                                                 "[example.org]:2222 ssh-rsa AAAAB3Nz"]
    assert o["HostKeyAlgorithms"] == "ssh-ed25519,rsa-sha2-512,rsa-sha2-256"
    cfg.close()
    assert not known.exists()


def test_key_pem_is_written_private_and_removed() -> None:
    cfg = ssh.build(_opts(key_pem="-----BEGIN KEY-----\\nabc\\n-----END KEY-----"), 60)
    key = Path(cfg.argv[cfg.argv.index("-i") + 1])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text() == "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    cfg.close()
    assert not key.exists()


def test_option_lists_and_conflicts() -> None:
    o = _o(ssh.build(_opts(**{"pass": "p", "ciphers": "aes128-ctr aes256-ctr", "macs": "hmac-sha2-256"}), 60).argv)
    assert o["Ciphers"] == "aes128-ctr,aes256-ctr" and o["MACs"] == "hmac-sha2-256"
    with pytest.raises(ValueError, match="use_insecure_cipher must be false"):
        ssh.build(_opts(**{"pass": "p", "ciphers": "aes128-ctr", "use_insecure_cipher": "true"}), 60)
    with pytest.raises(ValueError, match="SSH_AUTH_SOCK"):
        env = os.environ.pop("SSH_AUTH_SOCK", None)
        try:
            ssh.build(_opts(key_use_agent="true"), 60)
        finally:
            if env is not None:
                os.environ["SSH_AUTH_SOCK"] = env


def test_external_ssh_runs_the_users_command_line() -> None:
    cfg = ssh.build(_opts(ssh="ssh -i /k 'me@host'"), 60)
    assert cfg.session_argv(None) == ["ssh", "-i", "/k", "me@host", "-s", "sftp"]
    assert cfg.exec_argv(None, "md5sum x") == ["ssh", "-i", "/k", "me@host", "md5sum x"]
    with pytest.raises(ValueError, match="can't set environment variables"):
        ssh.build(_opts(ssh="ssh host", set_env="A=b"), 60)


def test_missing_ssh_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ValueError, match="apt-get install openssh-client"):
        ssh.build(_opts(**{"pass": "p"}), 60)


def test_askpass_answers_only_a_registered_parent(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    server = askpass.AskpassServer(str(tmp_path))
    helper = askpass.helper_command(str(tmp_path), server.path)
    try:
        # a child of this process asks: not registered yet, so refused
        r = subprocess.run([helper, "user@host's password:"], capture_output=True, check=False)
        assert r.returncode != 0 and r.stdout == b""
        server.register(os.getpid(), lambda prompt: "s3cret" if "password" in prompt else None, uses=1)
        r = subprocess.run([helper, "user@host's password:"], capture_output=True, check=False)
        assert (r.returncode, r.stdout) == (0, b"s3cret\n")
        # used up: a second prompt (a wrong password asked again) is refused
        r = subprocess.run([helper, "user@host's password:"], capture_output=True, check=False)
        assert r.returncode != 0 and r.stdout == b""
        server.register(os.getpid(), lambda prompt: None)
        r = subprocess.run([helper, "Are you sure you want to continue connecting?"], capture_output=True, check=False)
        assert r.returncode != 0
    finally:
        server.close()
    assert "s3cret" not in helper and "s3cret" not in Path(helper).read_text()


def test_askpass_refuses_a_process_that_is_not_a_child(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    server = askpass.AskpassServer(str(tmp_path))
    other = subprocess.Popen(["sleep", "30"])  # registered: some other process, not our parent
    server.register(other.pid, lambda prompt: "s3cret")
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(server.path)
        got = b""
        s.settimeout(5)
        try:
            s.sendall(b"password:\n")
            while chunk := s.recv(100):
                got += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed unanswered
        assert got == b""
    finally:
        other.kill()
        other.wait()
        server.close()


def test_askpass_helper_runs_from_the_source_tree(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pyclone_docker", "askpass"], capture_output=True, cwd=REPO,
                       check=False)
    assert r.returncode == 2 and b"usage" in r.stderr


def test_rclone_shell_quoting() -> None:
    assert quote_unix("a b/c'd$e") == "a\\ b/c\\'d\\$e"
    assert quote_unix("ünï-code_1.txt") == "ünï-code_1.txt"
    assert quote_unix("a\nb") == "a'\n'b"
    assert quote_powershell("it's") == "'it''s'"
    assert quote_cmd("a b") == '"a b"'
    with pytest.raises(OSError):
        quote_cmd('a"b')


def test_attrs_round_trip_and_status_errors() -> None:
    a = proto.Attrs(size=1 << 40, uid=1, gid=2, mode=0o100644, mtime=1_700_000_000)
    b = proto.Decoder(a.pack()).attrs()
    assert (b.size, b.uid, b.gid, b.mode, b.mtime, b.atime) == (1 << 40, 1, 2, 0o100644, 1_700_000_000, 1_700_000_000)
    st = proto.Decoder(proto.u32(proto.FX_NO_SUCH_FILE) + proto.string("gone") + proto.string("")).status("p")
    assert isinstance(st, OSError) and st.errno == 2 and st.filename == "p"
    with pytest.raises(ValueError):
        proto.Decoder(b"\x00\x00").u32()


def test_channel_against_a_real_sftp_server(tmp_path: Path) -> None:
    """The channel over OpenSSH's sftp-server itself (no ssh): pipelined writes and reads."""
    server = "/usr/lib/openssh/sftp-server"
    if not os.path.exists(server):
        pytest.skip("openssh-sftp-server is not installed")
    from pyclone_docker.backends.sftp.channel import Channel

    p = subprocess.Popen([server], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=tmp_path)
    ch = Channel(p.stdout.fileno(), p.stdin.fileno(), "local sftp-server", timeout=30)
    try:
        ch.start()
        assert "posix-rename@openssh.com" in ch.extensions
        kind, d = ch.call(proto.OPEN, proto.string("f"), proto.u32(proto.FXF_WRITE | proto.FXF_CREAT),
                          proto.Attrs().pack())
        assert kind == proto.HANDLE
        hs = proto.string(d.raw())
        data = os.urandom(1 << 20)
        calls = [ch.submit(proto.WRITE, hs, proto.u64(i), proto.u32(32768), data[i:i + 32768])
                 for i in range(0, len(data), 32768)]
        assert all(c.wait()[0] == proto.STATUS for c in calls)
        reads = [ch.submit(proto.READ, hs, proto.u64(i), proto.u32(32768)) for i in range(0, len(data), 32768)]
        # the handle was opened write-only: every read fails, every reply still comes back
        assert all(r.wait()[0] == proto.STATUS for r in reads)
        ch.call(proto.CLOSE, hs)
        assert (tmp_path / "f").read_bytes() == data
        errors: list[BaseException] = []

        def stat_many() -> None:
            try:
                for _ in range(200):
                    kind, _d = ch.call(proto.STAT, proto.string("f"))
                    assert kind == proto.ATTRS
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=stat_many) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
    finally:
        p.kill()
        p.wait()
    # the server is gone: a waiter is woken with ChannelClosed, never left hanging
    from pyclone_docker.backends.sftp.channel import ChannelClosed

    with pytest.raises(ChannelClosed):
        ch.call(proto.STAT, proto.string("f"))


def test_hash_kinds_that_are_not_built_are_said_loudly(caplog: pytest.LogCaptureFixture) -> None:
    from pyclone_docker.backends.sftp.hashes import RemoteCommands

    class Host:
        label = "me@example.org:22"

    with caplog.at_level(20, logger="pyclone"):
        rc = RemoteCommands(Host(), _opts(hashes="sha256,crc32", crc32sum_command="crc32"))  # type: ignore[arg-type]
    assert rc.hash_names() == ("sha256",)
    assert "crc32 are not supported" in caplog.text and "crc32sum_command not used" in caplog.text
    assert RemoteCommands(Host(), _opts(disable_hashcheck="true")).hash_names() == ()  # type: ignore[arg-type]
    assert RemoteCommands(Host(), _opts()).hash_names() == ("md5", "sha1")  # type: ignore[arg-type]


def test_create_without_ssh_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Create resolves the volume without connecting: the missing program is found there."""
    from pyclone_docker import fs as fsmod

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ValueError, match="apt-get install openssh-client"):
        fsmod.resolve(":sftp,host=example.org:", fsmod.FsContext())
    # with its own ssh command line, the program is the user's business
    fsmod.resolve(":sftp,ssh='/opt/ssh/bin/ssh me@host':", fsmod.FsContext())
