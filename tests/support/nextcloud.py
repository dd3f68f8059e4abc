"""A stand-in for Nextcloud's WebDAV endpoints, for the chunked-upload tests (no Nextcloud can
be installed on this machine: it is in no Debian 12 archive and no registry is reachable).

wsgidav (real WebDAV, basic auth) serves `/remote.php/dav/files/davuser/`; in front of it a
small WSGI layer implements Nextcloud's chunked uploads as rclone 1.75.2 uses them
(`/remote.php/dav/uploads/davuser/<dir>/`: MKCOL, PUT of each piece, MOVE of `.file` with
`Destination`, which assembles the pieces in name order, sets X-OC-Mtime and answers
`X-OC-Mtime: accepted`; DELETE). A PUT of more than `max_put` bytes to the files endpoint gets
413, as from a proxy in front of a real Nextcloud, so a big file only gets there in pieces.

Every request is logged, one JSON line each (`method`, `path`, `length`), to `srv.log`, and
`srv.faults(...)` arms faults read at each request:
- `move_423`: the next MOVEs of `.file` answer 423 Locked, the first of them assembling the
  file meanwhile (the way Nextcloud's background merge makes the next MOVE a 404);
- `chunk_507`: the next PUTs of pieces answer 507 Insufficient Storage;
- `move_touches`: the next MOVEs of a file ignore X-OC-Mtime and stamp it with the time of the
  move (no `X-OC-Mtime: accepted`).
On the files endpoint a PUT or MOVE with X-OC-Mtime sets that modtime and says `accepted`, and a
PROPPATCH of `<d:lastmodified>` sets it, as Nextcloud does.

    with nextcloud_server(tmp, max_put=12 << 20) as srv:
        srv.url, srv.vendor ("nextcloud"), srv.user, srv.password, srv.root, srv.requests()
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from .davservers import PASSWORD, USER, DavServer, free_port, stop_child, wait_http

# what both stand-ins' children share (the child's FILES, root, AUTH and faults_path are theirs):
# wsgidav with basic auth, faults read from a JSON file, empty answers, and Nextcloud's and oCIS's PROPPATCH of
# <d:lastmodified>, which sets the file's modtime
CHILD_HELPERS = r"""
import json, os
from urllib.parse import unquote, urlsplit
from wsgidav.wsgidav_app import WsgiDAVApp


def make_dav():
    return WsgiDAVApp({
        "host": "127.0.0.1", "port": port, "provider_mapping": {FILES: root},
        "http_authenticator": {"domain_controller": None, "accept_basic": True, "accept_digest": False,
                               "default_to_digest": False},
        "simple_dc": {"user_mapping": {"*": {user: {"password": password}}}},
        "verbose": 1, "logging": {"enable": False}, "property_manager": True, "lock_storage": True,
        "dir_browser": {"enable": False},
    })


def fault(name):
    try:
        with open(faults_path) as f:
            faults = json.load(f)
    except (OSError, ValueError):
        return False
    if faults.get(name, 0) <= 0:
        return False
    faults[name] -= 1
    with open(faults_path + ".tmp", "w") as f:
        json.dump(faults, f)
    os.replace(faults_path + ".tmp", faults_path)
    return True


def reply(start, status, headers=()):
    start(status, [("Content-Length", "0"), *headers])
    return [b""]


def files_path(url_or_path):
    if not url_or_path:
        return None
    path = unquote(urlsplit(url_or_path).path) if "://" in url_or_path else \
        url_or_path.encode("latin-1").decode("utf-8")
    return os.path.join(root, path[len(FILES) + 1:]) if path.startswith(FILES + "/") else None


def proppatch(environ, start):
    # Nextcloud's PROPPATCH of <d:lastmodified> (seconds) sets the file's modtime
    import re
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
    target = files_path(environ["PATH_INFO"])
    m = re.search(r"<lastmodified[^>]*>(\d+)</lastmodified>", body)
    if environ.get("HTTP_AUTHORIZATION") != AUTH or target is None or not os.path.exists(target) or not m:
        return reply(start, "404 Not Found" if target and not os.path.exists(target) else "400 Bad Request")
    os.utime(target, (int(m.group(1)),) * 2)
    xml = ('<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>'
           + environ["PATH_INFO"] + '</d:href><d:propstat><d:prop><d:lastmodified/></d:prop>'
           '<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>').encode()
    start("207 Multi-Status", [("Content-Type", "application/xml"), ("Content-Length", str(len(xml)))])
    return [xml]
"""

_CHILD = r"""
import base64, json, os, shutil, sys
from urllib.parse import unquote, urlsplit
from cheroot import wsgi

root, uploads, log_path, faults_path, port, user, max_put = sys.argv[1:8]
port, max_put = int(port), int(max_put)
password = sys.stdin.readline().strip()
FILES = f"/remote.php/dav/files/{user}"
UPLOADS = f"/remote.php/dav/uploads/{user}/"
AUTH = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
""" + CHILD_HELPERS + r"""
dav = make_dav()

def assemble(d, environ):
    dest = urlsplit(environ.get("HTTP_DESTINATION", ""))
    path = unquote(dest.path)
    if not path.startswith(FILES + "/"):
        return None
    target = os.path.join(root, path[len(FILES) + 1:])
    if not os.path.isdir(os.path.dirname(target)):
        return "409 Conflict"
    existed = os.path.exists(target)
    tmp = target + ".assembling"
    with open(tmp, "wb") as out:
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                shutil.copyfileobj(f, out)
    os.replace(tmp, target)
    mtime = environ.get("HTTP_X_OC_MTIME")
    if mtime:
        os.utime(target, (int(mtime), int(mtime)))
    shutil.rmtree(d)
    return "204 No Content" if existed else "201 Created"


def uploads_app(environ, start):
    if environ.get("HTTP_AUTHORIZATION") != AUTH:
        return reply(start, "401 Unauthorized", [("WWW-Authenticate", 'Basic realm="nextcloud"')])
    method = environ["REQUEST_METHOD"]
    rel = environ["PATH_INFO"].encode("latin-1").decode("utf-8")[len(UPLOADS):].strip("/")
    parts = rel.split("/")
    if not parts or ".." in parts or not parts[0]:
        return reply(start, "400 Bad Request")
    d = os.path.join(uploads, parts[0])
    if method == "MKCOL" and len(parts) == 1:
        if os.path.exists(d):
            return reply(start, "405 Method Not Allowed")
        os.mkdir(d)
        return reply(start, "201 Created")
    if method == "DELETE" and len(parts) == 1:
        if not os.path.isdir(d):
            return reply(start, "404 Not Found")
        shutil.rmtree(d)
        return reply(start, "204 No Content")
    if method == "PUT" and len(parts) == 2:
        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n)
        if fault("chunk_507"):
            return reply(start, "507 Insufficient Storage")
        if not os.path.isdir(d):
            return reply(start, "404 Not Found")
        with open(os.path.join(d, parts[1]), "wb") as f:
            f.write(body)
        return reply(start, "201 Created")
    if method == "MOVE" and len(parts) == 2 and parts[1] == ".file":
        if not os.path.isdir(d):
            return reply(start, "404 Not Found")
        if fault("move_423"):
            assemble(d, environ)  # the merge goes on in the background: the next MOVE finds nothing
            return reply(start, "423 Locked")
        status = assemble(d, environ)
        if status is None:
            return reply(start, "400 Bad Request")
        return reply(start, status, [("X-OC-Mtime", "accepted")])
    return reply(start, "405 Method Not Allowed")


def app(environ, start):
    with open(log_path, "a") as f:
        f.write(json.dumps({"method": environ["REQUEST_METHOD"],
                            "path": environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace"),
                            "length": int(environ.get("CONTENT_LENGTH") or 0)}) + "\n")
    if environ["PATH_INFO"].startswith(UPLOADS):
        return uploads_app(environ, start)
    method = environ["REQUEST_METHOD"]
    if method == "PUT" and int(environ.get("CONTENT_LENGTH") or 0) > max_put:
        return reply(start, "413 Request Entity Too Large")
    if method == "PROPPATCH":
        return proppatch(environ, start)
    target = files_path(environ.get("HTTP_DESTINATION", "") if method == "MOVE" else environ["PATH_INFO"])
    mtime = environ.get("HTTP_X_OC_MTIME")
    out = dav(environ, start_with_mtime(environ, start))  # wsgidav rewrites PATH_INFO
    if method in ("PUT", "MOVE"):
        out = list(out)
        if target and os.path.isfile(target):
            if method == "MOVE" and fault("move_touches"):
                os.utime(target)  # a server that stamps a moved file with the time of the move
            elif mtime:
                os.utime(target, (int(mtime),) * 2)
    return out


def start_with_mtime(environ, start):
    # Nextcloud sets X-OC-Mtime on PUT and MOVE and says so; "move_touches" makes a MOVE ignore it
    def wrapped(status, headers, exc_info=None):
        if environ.get("HTTP_X_OC_MTIME") and environ["REQUEST_METHOD"] in ("PUT", "MOVE") and \
                not (environ["REQUEST_METHOD"] == "MOVE" and peek("move_touches")):
            headers = [*headers, ("X-OC-Mtime", "accepted")]
        return start(status, headers, exc_info)
    return wrapped


def peek(name):
    try:
        with open(faults_path) as f:
            return json.load(f).get(name, 0) > 0
    except (OSError, ValueError):
        return False


server = wsgi.Server(("127.0.0.1", port), app, numthreads=8)
server.start()
"""


class NextcloudServer(DavServer):
    log: Path
    faults_file: Path

    def requests(self) -> list[dict]:
        try:
            return [json.loads(line) for line in self.log.read_text().splitlines()]
        except OSError:
            return []

    def faults(self, **counts: int) -> None:
        tmp = self.faults_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(counts))
        os.replace(tmp, self.faults_file)

    def uploads_left(self) -> list[str]:
        return sorted(os.listdir(self.root.parent / "uploads"))


@contextlib.contextmanager
def stand_in(tmp: Path, child: str, extra: list[str], make: Callable[[int, Path], NextcloudServer],
             what: str) -> Iterator[NextcloudServer]:
    """A stand-in's child (`child`: root, uploads, log, faults, port, user, *extra on its argv,
    the password on its stdin, never argv) on a free port; `make(port, root)` describes it."""
    tmp.mkdir(parents=True, exist_ok=True)
    root, uploads = tmp / "served", tmp / "uploads"
    root.mkdir()
    uploads.mkdir()
    port = free_port()
    log, faults = tmp / "requests.jsonl", tmp / "faults.json"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "LANG": "C.UTF-8"}
    proc = subprocess.Popen([sys.executable, "-c", child, str(root), str(uploads), str(log), str(faults), str(port),
                             USER, *extra], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "stand-in.log", "wb"), env=env)
    assert proc.stdin is not None
    proc.stdin.write(PASSWORD.encode() + b"\n")
    proc.stdin.close()
    srv = make(port, root)
    srv.log, srv.faults_file = log, faults
    try:
        wait_http(port, proc, what)
        yield srv
    finally:
        stop_child(proc)


def nextcloud_server(tmp: Path, max_put: int = 12 << 20) -> contextlib.AbstractContextManager[NextcloudServer]:
    return stand_in(tmp, _CHILD, [str(max_put)], lambda port, root: NextcloudServer(
        "nextcloud", f"http://127.0.0.1:{port}/remote.php/dav/files/{USER}", root, vendor="nextcloud"),
        "nextcloud stand-in")
