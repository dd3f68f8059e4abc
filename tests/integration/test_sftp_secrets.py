"""Passwords never leave the plugin (issue 11): sftp volumes with an obscured password and with
a passphrase-protected key, over a real sshd, through real FUSE mounts.

While the volumes are created, mounted and used, a scanner thread reads /proc/*/cmdline and
/proc/*/environ of every process on the machine, over and over (so the short-lived askpass
helpers and ssh processes are seen too): neither secret, nor the obscured form the volume was
given, may appear. The plugin's -vv log and the API's error texts are checked the same way.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyclone_docker import obscure
from tests.support.sshd import SshServer, sshd_server

from .conftest import Plugin


@pytest.fixture(scope="module")
def srv() -> Iterator[SshServer]:
    yield from sshd_server()


def server_dir(srv: SshServer, name: str) -> Path:
    """A fresh directory on the server, owned by the login user."""
    d = Path(srv.root_dir) / name
    d.mkdir()
    os.chown(d, srv.uid, srv.gid)
    return d


def read_proc(pid: str, what: str) -> bytes | None:
    try:
        with open(f"/proc/{pid}/{what}", "rb") as f:
            return f.read()
    except OSError:  # gone already (or a kernel thread's empty files)
        return None


def cmdline(pid: int | str) -> list[str]:
    raw = read_proc(str(pid), "cmdline") or b""
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def ppid(pid: int | str) -> int:
    raw = read_proc(str(pid), "stat") or b""
    try:
        return int(raw[raw.rindex(b")") + 2:].split()[1])
    except ValueError:
        return -1


def ssh_processes(port: int) -> list[int]:
    """Processes whose command is ssh and which name the server's port."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            argv = cmdline(pid)
            if argv and os.path.basename(argv[0]) == "ssh" and str(port) in argv:
                out.append(int(pid))
    return out


class ProcScanner:
    """Reads every process's cmdline and environ in a loop until stopped; records hits."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = {label: value.encode() for label, value in secrets.items()}
        self.hits: set[str] = set()  # each distinct finding once
        self.rounds = 0
        self.files_read = 0
        self.ssh_seen: set[int] = set()  # ssh processes whose environ we could read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="proc-scanner", daemon=True)

    def __enter__(self) -> ProcScanner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def scan_once(self) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            for what in ("cmdline", "environ"):
                raw = read_proc(pid, what)
                if raw is None:
                    continue
                self.files_read += 1
                for label, secret in self.secrets.items():
                    if secret in raw:
                        argv = cmdline(pid)
                        self.hits.add(f"{label} in /proc/{pid}/{what} ({' '.join(argv)[:200]})")
                if what == "environ" and raw:
                    argv = cmdline(pid)
                    if argv and os.path.basename(argv[0]) == "ssh":
                        self.ssh_seen.add(int(pid))
        self.rounds += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.scan_once()


def assert_clean(text: str, secrets: dict[str, str], where: str) -> None:
    for label, value in secrets.items():
        assert value not in text, f"{label} appears in {where}"


def test_passwords_and_passphrases_never_leave_the_process(plugin: Plugin, srv: SshServer) -> None:
    c = plugin.client
    pass_obscured = obscure.obscure(srv.password)
    phrase_obscured = obscure.obscure(srv.key_passphrase)
    secrets = {"the password": srv.password, "the obscured password": pass_obscured,
               "the key passphrase": srv.key_passphrase, "the obscured passphrase": phrase_obscured}
    common = {"type": "sftp", "sftp-host": srv.host, "sftp-port": str(srv.port), "sftp-user": srv.user,
              "sftp-known-hosts-file": srv.known_hosts_file}
    dirs = {"pw": server_dir(srv, "pw"), "kp": server_dir(srv, "kp")}
    opts = {
        "pw": {**common, "path": str(dirs["pw"]), "sftp-pass": pass_obscured},
        "kp": {**common, "path": str(dirs["kp"]), "sftp-key-file": srv.key_file_pass_protected,
               "sftp-key-file-pass": phrase_obscured},
    }
    payload = os.urandom(3 << 20)
    mounted: list[str] = []
    with ProcScanner(secrets) as scanner:
        try:
            for name, o in opts.items():
                c.ok("VolumeDriver.Create", {"Name": name, "Opts": o})
                mp = Path(c.ok("VolumeDriver.Mount", {"Name": name, "ID": "t"})["Mountpoint"])
                mounted.append(name)
                (mp / "f.bin").write_bytes(payload)
                assert (dirs[name] / "f.bin").read_bytes() == payload  # mode off: on the server at close
                assert hashlib.md5((mp / "f.bin").read_bytes()).digest() == hashlib.md5(payload).digest()
                assert sorted(os.listdir(mp)) == ["f.bin"]
            # the ssh processes are alive now (the pools keep them for idle_timeout): the scan
            # below reads their cmdline and environ, and the plugin's own
            ssh = [p for p in ssh_processes(srv.port) if ppid(p) == plugin.proc.pid]
            assert len(ssh) >= 2, f"expected an ssh per volume under the plugin, found {ssh}"
            for p in ssh:
                env = read_proc(str(p), "environ")
                assert env is not None and b"SSH_ASKPASS=" in env  # it does get its secret that way
            assert read_proc(str(plugin.proc.pid), "environ")  # readable: the scan is not blind
            scanner.scan_once()  # one more full round with every ssh alive, whatever the thread's timing
            assert set(ssh) <= scanner.ssh_seen
            for name in opts:
                c.ok("VolumeDriver.Get", {"Name": name})
            c.ok("VolumeDriver.List")
        finally:
            for name in mounted:
                c.call("VolumeDriver.Unmount", {"Name": name, "ID": "t"})
    assert scanner.rounds >= 2 and scanner.files_read > 0
    assert not scanner.hits, "\n".join(sorted(scanner.hits))
    # the API's answers (Get/List echo the options, redacted) and the -vv log
    for name in opts:
        status, data = c.call("VolumeDriver.Get", {"Name": name})
        assert status == 200
        assert_clean(str(data), secrets, f"Get {name}")
    assert_clean(str(c.call("VolumeDriver.List")[1]), secrets, "List")
    log = plugin.log_text()
    assert 'mounted volume "pw"' in log and 'mounted volume "kp"' in log  # the log is the right one
    assert_clean(log, secrets, "the plugin's log")
    for name in opts:
        c.ok("VolumeDriver.Remove", {"Name": name})
    plugin.stop()
    assert_clean(plugin.log_text(), secrets, "the plugin's log")


def bad_volumes(srv: SshServer, d: Path, wrong_obscured: str) -> dict[str, dict[str, str]]:
    common = {"type": "sftp", "sftp-host": srv.host, "sftp-port": str(srv.port), "sftp-user": srv.user,
              "sftp-known-hosts-file": srv.known_hosts_file, "path": str(d)}
    return {
        "badpass": {**common, "sftp-pass": wrong_obscured},
        # the passphrase-protected key with a wrong passphrase, and no other way in
        "badkey": {**common, "sftp-key-file": srv.key_file_pass_protected, "sftp-key-file-pass": wrong_obscured},
    }


def test_a_wrong_password_is_a_clear_create_error_without_the_password(plugin: Plugin, srv: SshServer) -> None:
    """Create connects (as rclone's fs.NewFs in Volume.setup): its error names user@host:port and
    says why, and never holds the secrets; no volume is left behind."""
    c = plugin.client
    wrong = "wrong-" + srv.password[::-1]
    wrong_obscured = obscure.obscure(wrong)
    secrets = {"the wrong password": wrong, "its obscured form": wrong_obscured,
               "the real password": srv.password, "the key passphrase": srv.key_passphrase}
    d = server_dir(srv, "wrong")
    errors: dict[str, str] = {}
    with ProcScanner(secrets) as scanner:
        for name, opts in bad_volumes(srv, d, wrong_obscured).items():
            errors[name] = c.err("VolumeDriver.Create", {"Name": name, "Opts": opts})
            assert c.call("VolumeDriver.Get", {"Name": name})[0] == 500  # not created
    for name, err in errors.items():
        assert f"couldn't connect SSH to {srv.user}@{srv.host}:{srv.port}" in err, (name, err)
        assert "permission denied" in err.lower(), (name, err)
        assert_clean(err, secrets, f"the error for {name}")
    assert_clean(plugin.log_text(), secrets, "the plugin's log")
    assert not scanner.hits, "\n".join(sorted(scanner.hits))
    assert scanner.rounds >= 1
    assert not [p for p in ssh_processes(srv.port) if ppid(p) == plugin.proc.pid]  # none left behind
