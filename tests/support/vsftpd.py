"""A real vsftpd (Debian's package) for tests: plain or explicit TLS, one local user.

vsftpd logs in system users through PAM, so the server gets a user of its own
(`pyclone-ftp-<n>`, shell /bin/sh, no home directory made) whose random password is set with
chpasswd (on stdin, never in argv); the user is deleted again when the server stops. It
serves `root_dir` (local_root: the login directory, not a chroot) with MDTM writes, UTF-8
and a passive port range of its own. Needs root and /usr/sbin/vsftpd.

    with VsFtpServer(tls=True) as srv:
        srv.host, srv.port, srv.user, srv.password, srv.root_dir, srv.ca_file
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .pyftpd import TestCA, free_port, free_range, make_test_ca

VSFTPD = "/usr/sbin/vsftpd"


class VsFtpServer:
    def __init__(self, tls: bool = False, ca: TestCA | None = None) -> None:
        self.tmp = tempfile.mkdtemp(prefix="pyc-vsftpd-", dir="/var/tmp")
        os.chmod(self.tmp, 0o755)
        self.tls = tls
        self.ca = ca if ca is not None else make_test_ca(self.tmp) if tls else None
        self.root_dir = os.path.join(self.tmp, "root")
        os.mkdir(self.root_dir)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.pasv = free_range()
        self.user = f"pyclone-ftp-{os.getpid() % 100000}{'t' if tls else 'p'}"
        self.password = os.urandom(9).hex()
        self.log = os.path.join(self.tmp, "vsftpd.log")
        self.conf = os.path.join(self.tmp, "vsftpd.conf")
        self.proc: subprocess.Popen[bytes] | None = None
        self._made_user = False

    @property
    def ca_file(self) -> str:
        return self.ca.ca_file if self.ca else ""

    def __enter__(self) -> VsFtpServer:
        try:
            self._add_user()
            self._write_conf()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_user(self) -> None:
        subprocess.run(["userdel", self.user], capture_output=True)  # a leftover of a killed run
        subprocess.run(["useradd", "-M", "-d", self.root_dir, "-s", "/bin/sh", self.user], check=True,
                       capture_output=True)
        self._made_user = True
        subprocess.run(["chpasswd"], input=f"{self.user}:{self.password}\n".encode(), check=True,
                       capture_output=True)
        shutil.chown(self.root_dir, self.user, self.user)

    def _write_conf(self) -> None:
        lines = [
            "listen=YES", "listen_ipv6=NO", f"listen_address={self.host}", f"listen_port={self.port}",
            "background=NO", "anonymous_enable=NO", "local_enable=YES", "write_enable=YES",
            "local_umask=022", f"local_root={self.root_dir}", "chroot_local_user=NO", "pam_service_name=vsftpd",
            "userlist_enable=NO", "seccomp_sandbox=NO", "secure_chroot_dir=/var/run/vsftpd/empty",
            "pasv_enable=YES", f"pasv_min_port={self.pasv[0]}", f"pasv_max_port={self.pasv[1] - 1}",
            f"pasv_address={self.host}", "mdtm_write=YES", "utf8_filesystem=YES", "use_localtime=NO",
            "xferlog_enable=YES", f"vsftpd_log_file={self.log}", "dual_log_enable=YES", "log_ftp_protocol=NO",
            "max_clients=200", "max_per_ip=200", "idle_session_timeout=600", "connect_from_port_20=NO",
        ]
        if self.tls and self.ca:
            lines += ["ssl_enable=YES", f"rsa_cert_file={self.ca.cert_file}",
                      f"rsa_private_key_file={self.ca.key_file}", "force_local_logins_ssl=YES",
                      "force_local_data_ssl=YES", "ssl_tlsv1=NO", "ssl_sslv2=NO", "ssl_sslv3=NO",
                      "require_ssl_reuse=YES", "ssl_ciphers=HIGH"]
        Path(self.conf).write_text("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o600)  # vsftpd wants its config owned by root

    def start(self) -> None:
        self.proc = subprocess.Popen([VSFTPD, self.conf], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"vsftpd exited: {err.strip()}")
            try:
                with socket.create_connection((self.host, self.port), 1) as s:
                    s.recv(100)
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("vsftpd does not listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None
        # its session processes (one per login) end when their control connections close;
        # end them now so that the user can be deleted
        subprocess.run(["pkill", "-KILL", "-f", f"^{VSFTPD} {self.conf}$"], capture_output=True)
        subprocess.run(["pkill", "-KILL", "-u", self.user], capture_output=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(Path(self.log).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def close(self) -> None:
        self.stop()
        if self._made_user:
            for _ in range(20):
                if subprocess.run(["userdel", self.user], capture_output=True).returncode in (0, 6):
                    break
                time.sleep(0.1)
            self._made_user = False
        shutil.rmtree(self.tmp, ignore_errors=True)


def vsftpd_server(**kwargs: object) -> Iterator[VsFtpServer]:
    """A generator fixture body; skips without vsftpd or root."""
    import pytest

    if not os.path.exists(VSFTPD):
        pytest.skip("vsftpd is not installed (apt-get install vsftpd)")
    if os.geteuid() != 0:
        pytest.skip("vsftpd needs root (it logs in a system user)")
    with VsFtpServer(**kwargs) as srv:  # type: ignore[arg-type]
        yield srv
