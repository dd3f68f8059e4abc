"""Real WebDAV servers on loopback for the webdav backend's tests, each with basic auth.

    with dav_server("wsgidav", tmp) as srv:     # wsgidav 4 on cheroot (PyPI, test-only)
    with dav_server("apache", tmp) as srv:      # Debian's apache2 with mod_dav_fs
    with dav_server("rclone", tmp) as srv:      # rclone 1.75.2's own `serve webdav` (vendor rclone)
        srv.url, srv.user, srv.password, srv.root   # root: the directory it serves

Each runs as a child on a free port, in its own temp dir, and is stopped (and waited for) at
the end. Nothing here is imported by pyclone_docker/.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "davuser", "dav-pass-1234"

_WSGIDAV = r"""
import sys
from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp
root, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.stdin.readline().strip()
app = WsgiDAVApp({
    "host": "127.0.0.1", "port": port, "provider_mapping": {"/dav": root},
    "http_authenticator": {"domain_controller": None, "accept_basic": True, "accept_digest": False,
                           "default_to_digest": False},
    "simple_dc": {"user_mapping": {"*": {user: {"password": password}}}},
    "verbose": 1, "logging": {"enable": False}, "property_manager": True, "lock_storage": True,
    "dir_browser": {"enable": False},
})
server = wsgi.Server(("127.0.0.1", port), app, numthreads=8)
server.start()
"""

_APACHE_MODULES = ("mpm_event", "authz_core", "authn_core", "authn_file", "authz_user", "auth_basic", "dav",
                   "dav_fs", "alias", "mime", "dir", "setenvif")


@dataclass
class DavServer:
    kind: str
    url: str
    root: Path
    user: str = USER
    password: str = PASSWORD
    vendor: str = "other"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("OPTIONS", "/")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer on port {port} within {timeout:.0f} s")


def stop_child(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _apache_conf(d: Path, port: int, root: Path) -> Path:
    mods = "\n".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in _APACHE_MODULES)
    digest = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    (d / "htpasswd").write_text(f"{USER}:{{SHA}}{digest}\n")
    (d / "logs").mkdir(exist_ok=True)
    conf = d / "httpd.conf"
    conf.write_text(f"""{mods}
ServerRoot "{d}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{d}/httpd.pid"
ErrorLog "{d}/logs/error.log"
LogLevel warn
User www-data
Group www-data
TypesConfig /etc/mime.types
DavLockDB "{d}/davlock"
Alias /dav "{root}"
<Directory "{root}">
    Dav On
    Options None
    AllowOverride None
    AuthType Basic
    AuthName "dav"
    AuthUserFile "{d}/htpasswd"
    Require valid-user
</Directory>
""")
    return conf


@contextlib.contextmanager
def dav_server(kind: str, tmp: Path) -> Iterator[DavServer]:
    """One server of `kind` (wsgidav, apache, rclone) serving a fresh directory under `tmp`."""
    tmp.mkdir(parents=True, exist_ok=True)
    root = tmp / "served"
    root.mkdir()
    port = free_port()
    cleanup: list[Path] = []
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "LANG": "C.UTF-8"}
    if kind == "wsgidav":
        proc = subprocess.Popen([sys.executable, "-c", _WSGIDAV, str(root), str(port), USER], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=open(tmp / "wsgidav.log", "wb"), env=env)
        assert proc.stdin is not None
        proc.stdin.write(PASSWORD.encode() + b"\n")
        proc.stdin.close()
        srv = DavServer(kind, f"http://127.0.0.1:{port}/dav", root)
    elif kind == "apache":
        apache = shutil.which("apache2") or "/usr/sbin/apache2"
        if not os.path.exists(apache):
            raise RuntimeError("apache2 is not installed (apt-get install apache2; make system-deps)")
        # Apache's workers run as www-data: its directories live where that user can reach them
        # (pytest's temp dirs are root's, 0700), and are removed at the end
        import pwd
        import tempfile

        www = pwd.getpwnam("www-data")
        base = Path(tempfile.mkdtemp(prefix="pyc-apache-", dir="/var/tmp"))
        cleanup.append(base)
        os.chmod(base, 0o755)
        root.rmdir()
        root = base / "served"
        root.mkdir()
        state = base / "state"
        state.mkdir()
        for p in (root, state):
            os.chown(p, www.pw_uid, www.pw_gid)
        conf = _apache_conf(state, port, root)
        env.update({"APACHE_RUN_DIR": str(state), "APACHE_LOCK_DIR": str(state), "APACHE_LOG_DIR": str(state)})
        proc = subprocess.Popen([apache, "-f", str(conf), "-DFOREGROUND"], stdout=subprocess.DEVNULL,
                                stderr=open(tmp / "apache.log", "wb"), env=env)
        srv = DavServer(kind, f"http://127.0.0.1:{port}/dav", root)
    elif kind == "rclone":
        from tests import rclone_ref

        rc_env = {**env, "RCLONE_CONFIG": "/dev/null", "RCLONE_PASS": PASSWORD}  # the password never in argv
        proc = subprocess.Popen([rclone_ref.require(), "serve", "webdav", "--addr", f"127.0.0.1:{port}", "--user", USER,
                                 str(root)], stdout=subprocess.DEVNULL, stderr=open(tmp / "rclone.log", "wb"),
                                env=rc_env)
        srv = DavServer(kind, f"http://127.0.0.1:{port}/", root, vendor="rclone")
    else:
        raise ValueError(kind)
    try:
        wait_http(port, proc, kind)
        yield srv
    finally:
        stop_child(proc)
        for p in cleanup:
            shutil.rmtree(p, ignore_errors=True)
