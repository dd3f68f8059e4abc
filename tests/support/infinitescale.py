"""A stand-in for ownCloud Infinite Scale's WebDAV and tus endpoints, for the tus upload tests
(no oCIS can run on this machine: no registry is reachable and it is in no Debian archive).

wsgidav (real WebDAV, basic auth) serves `/dav/spaces/space-1/`; in front of it a small WSGI
layer implements tus 1.0.0's creation, core and termination as oCIS answers them to rclone
1.75.2: a POST with `Tus-Resumable` to a collection, with `Upload-Length` and `Upload-Metadata`
(filename, mtime, filetype), gets 201 and a `Location` under `/data/<id>`; a PATCH there with
the right `Upload-Offset` and `Content-Type: application/offset+octet-stream` appends (409 for
another offset) and answers 204 with the new offset; HEAD tells the offset; DELETE ends the
upload. When the last byte is in, the file is put in its collection with the metadata's mtime.

Every request is logged (`method`, `path`, `length`, and the tus headers `offset`, `upload_length`,
`metadata`, `x_oc_mtime`) to `srv.log`; `srv.faults(...)` arms, at each PATCH:
- `patch_cut`: the server keeps the first half of the piece, then answers 500 (a link that
  broke mid-piece, as far as the client can tell);
- `patch_503`: 503 and nothing kept.

    with infinitescale_server(tmp) as srv:
        srv.url, srv.vendor ("infinitescale"), srv.user, srv.password, srv.root, srv.requests(),
        srv.uploads_left()   # ids of the uploads the server still holds
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .nextcloud import CHILD_HELPERS, NextcloudServer, stand_in

SPACE = "/dav/spaces/space-1"

_CHILD = r"""
import base64, hashlib, json, os, sys, uuid
from urllib.parse import quote
from cheroot import wsgi

root, uploads, log_path, faults_path, port, user, FILES = sys.argv[1:8]
port = int(port)
password = sys.stdin.readline().strip()
AUTH = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
""" + CHILD_HELPERS + r"""
dav = make_dav()

def tus(headers=()):
    return [("Tus-Resumable", "1.0.0"), ("Cache-Control", "no-store"), *headers]


def state(uid):
    try:
        with open(os.path.join(uploads, uid + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def save(uid, st):
    with open(os.path.join(uploads, uid + ".json.tmp"), "w") as f:
        json.dump(st, f)
    os.replace(os.path.join(uploads, uid + ".json.tmp"), os.path.join(uploads, uid + ".json"))


def finish(uid, st):
    target = os.path.join(st["dir"], st["name"])
    os.replace(os.path.join(uploads, uid + ".bin"), target)
    if st["mtime"]:
        os.utime(target, (int(st["mtime"]),) * 2)
    os.remove(os.path.join(uploads, uid + ".json"))
    # oCIS keeps the SHA1 it computed on upload and lists it as oc:checksums
    digest = hashlib.sha1()
    with open(target, "rb") as f:
        while piece := f.read(1 << 20):
            digest.update(piece)
    rel = os.path.relpath(target, root).replace(os.sep, "/")
    value = ('<oc:checksums xmlns:oc="http://owncloud.org/ns"><oc:checksum>SHA1:' + digest.hexdigest()
             + '</oc:checksum></oc:checksums>').encode()  # stored as wsgidav stores a PROPPATCH's value
    dav.prop_manager.write_property(quote(FILES + "/" + rel), "{http://owncloud.org/ns}checksums", value)


def create(environ, start):
    path = environ["PATH_INFO"].encode("latin-1").decode("utf-8")
    d = os.path.join(root, path[len(FILES):].strip("/"))
    if not os.path.isdir(d):
        return reply(start, "409 Conflict", tus())
    try:
        length = int(environ["HTTP_UPLOAD_LENGTH"])
        meta = dict(p.split(" ", 1) for p in environ.get("HTTP_UPLOAD_METADATA", "").split(","))
        meta = {k: base64.b64decode(v).decode() for k, v in meta.items()}
    except (KeyError, ValueError):
        return reply(start, "400 Bad Request", tus())
    if length < 0 or "/" in meta.get("filename", "/"):
        return reply(start, "400 Bad Request", tus())
    uid = uuid.uuid4().hex
    st = {"dir": d, "name": meta["filename"], "length": length, "offset": 0, "mtime": meta.get("mtime", "")}
    open(os.path.join(uploads, uid + ".bin"), "wb").close()
    save(uid, st)
    if length == 0:
        finish(uid, st)
    return reply(start, "201 Created", tus([("Location", f"http://127.0.0.1:{port}/data/{uid}")]))


def data(environ, start):
    method = environ["REQUEST_METHOD"]
    uid = environ["PATH_INFO"][len("/data/"):]
    st = state(uid) if uid.isalnum() else None
    if st is None:
        return reply(start, "404 Not Found", tus())
    if method == "HEAD":
        return reply(start, "200 OK", tus([("Upload-Offset", str(st["offset"])), ("Upload-Length", str(st["length"]))]))
    if method == "DELETE":
        os.remove(os.path.join(uploads, uid + ".bin"))
        os.remove(os.path.join(uploads, uid + ".json"))
        return reply(start, "204 No Content", tus())
    if method != "PATCH":
        return reply(start, "405 Method Not Allowed", tus())
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n)
    if environ.get("CONTENT_TYPE") != "application/offset+octet-stream":
        return reply(start, "415 Unsupported Media Type", tus())
    if environ.get("HTTP_UPLOAD_OFFSET") != str(st["offset"]):
        return reply(start, "409 Conflict", tus())
    if st["offset"] + len(body) > st["length"]:
        return reply(start, "413 Request Entity Too Large", tus())
    if fault("patch_503"):
        return reply(start, "503 Service Unavailable", tus())
    cut = fault("patch_cut")
    if cut:
        body = body[:len(body) // 2]
    with open(os.path.join(uploads, uid + ".bin"), "ab") as f:
        f.write(body)
    st["offset"] += len(body)
    save(uid, st)
    if cut:
        return reply(start, "500 Internal Server Error", tus())
    if st["offset"] == st["length"]:
        finish(uid, st)
    return reply(start, "204 No Content", tus([("Upload-Offset", str(st["offset"]))]))


def app(environ, start):
    with open(log_path, "a") as f:
        f.write(json.dumps({"method": environ["REQUEST_METHOD"],
                            "path": environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace"),
                            "length": int(environ.get("CONTENT_LENGTH") or 0),
                            "offset": environ.get("HTTP_UPLOAD_OFFSET"),
                            "upload_length": environ.get("HTTP_UPLOAD_LENGTH"),
                            "metadata": environ.get("HTTP_UPLOAD_METADATA"),
                            "x_oc_mtime": environ.get("HTTP_X_OC_MTIME")}) + "\n")
    method = environ["REQUEST_METHOD"]
    if environ["PATH_INFO"].startswith("/data/") or (method == "POST" and environ.get("HTTP_TUS_RESUMABLE")):
        if environ.get("HTTP_AUTHORIZATION") != AUTH:
            return reply(start, "401 Unauthorized", [("WWW-Authenticate", 'Basic realm="ocis"')])
        if environ.get("HTTP_TUS_RESUMABLE") != "1.0.0":
            return reply(start, "412 Precondition Failed", tus())
        if environ["PATH_INFO"].startswith("/data/"):
            return data(environ, start)
        return create(environ, start)
    if method == "PROPPATCH":
        return proppatch(environ, start)
    return dav(environ, start)


server = wsgi.Server(("127.0.0.1", port), app, numthreads=8)
server.start()
"""


class InfiniteScaleServer(NextcloudServer):
    def uploads_left(self) -> list[str]:
        return sorted(n[:-5] for n in os.listdir(self.root.parent / "uploads") if n.endswith(".json"))


def infinitescale_server(tmp: Path) -> contextlib.AbstractContextManager[InfiniteScaleServer]:
    return stand_in(tmp, _CHILD, [SPACE], lambda port, root: InfiniteScaleServer(  # type: ignore[return-value]
        "infinitescale", f"http://127.0.0.1:{port}{SPACE}", root, vendor="infinitescale"), "infinite scale stand-in")
