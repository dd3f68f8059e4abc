"""Plain web servers with directory index pages on loopback, for the http backend's tests.

    with web_server("nginx", tmp) as srv:     # Debian's nginx with autoindex on
    with web_server("python", tmp) as srv:    # python3 -m http.server
    with web_server("apache", tmp) as srv:    # Debian's apache2 with mod_autoindex
        srv.url, srv.root                     # root: the directory served (fill it at will)

Each runs as a child on a free port in its own directory and is stopped at the end. The served
directory is readable by the server's workers (nginx and Apache run them as www-data).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.davservers import free_port, stop_child, wait_http

_APACHE_MODULES = ("mpm_event", "authz_core", "alias", "mime", "dir", "autoindex")


@dataclass
class WebServer:
    kind: str
    url: str
    root: Path


@contextlib.contextmanager
def web_server(kind: str, tmp: Path) -> Iterator[WebServer]:
    base = Path(tempfile.mkdtemp(prefix=f"pyc-web-{kind}-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    root = base / "served"
    root.mkdir()
    os.chmod(root, 0o755)
    state = base / "state"
    state.mkdir()
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "python":
            proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                     "--directory", str(root)], stdout=subprocess.DEVNULL,
                                    stderr=open(tmp / "python-http.log", "wb"), env=env)
            srv = WebServer(kind, f"http://127.0.0.1:{port}/", root)
        elif kind == "nginx":
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            if not os.path.exists(nginx):
                raise RuntimeError("nginx is not installed (apt-get install nginx-light; make system-deps)")
            conf = state / "nginx.conf"
            conf.write_text(f"""daemon off;
pid {state}/nginx.pid;
error_log {state}/error.log;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {state}/body; proxy_temp_path {state}/proxy; fastcgi_temp_path {state}/fastcgi;
    uwsgi_temp_path {state}/uwsgi; scgi_temp_path {state}/scgi;
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    charset utf-8;
    server {{
        listen 127.0.0.1:{port};
        location /files/ {{ alias {root}/; autoindex on; }}
    }}
}}
""")
            proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(state)], stdout=subprocess.DEVNULL,
                                    stderr=open(tmp / "nginx.log", "wb"), env=env)
            srv = WebServer(kind, f"http://127.0.0.1:{port}/files/", root)
        elif kind == "apache":
            apache = shutil.which("apache2") or "/usr/sbin/apache2"
            mods = "\n".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in _APACHE_MODULES)
            www = pwd.getpwnam("www-data")
            os.chown(state, www.pw_uid, www.pw_gid)
            conf = state / "httpd.conf"
            conf.write_text(f"""{mods}
ServerRoot "{state}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{state}/httpd.pid"
ErrorLog "{state}/error.log"
User www-data
Group www-data
TypesConfig /etc/mime.types
AddDefaultCharset UTF-8
Alias /files "{root}"
<Directory "{root}">
    Options +Indexes
    IndexOptions FancyIndexing HTMLTable Charset=UTF-8
    Require all granted
</Directory>
""")
            env.update({"APACHE_RUN_DIR": str(state), "APACHE_LOCK_DIR": str(state), "APACHE_LOG_DIR": str(state)})
            proc = subprocess.Popen([apache, "-f", str(conf), "-DFOREGROUND"], stdout=subprocess.DEVNULL,
                                    stderr=open(tmp / "apache-http.log", "wb"), env=env)
            srv = WebServer(kind, f"http://127.0.0.1:{port}/files/", root)
        else:
            raise ValueError(kind)
        try:
            wait_http(port, proc, kind)
            yield srv
        finally:
            stop_child(proc)
    finally:
        shutil.rmtree(base, ignore_errors=True)
