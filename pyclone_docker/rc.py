"""rclone's remote control (`--rc`): flush the directory cache of ONE volume, and the client.

    pyclone-docker serve docker --rc --rc-no-auth ...
    pyclone-docker rc vfs/forget fs=myvolume dir=path/to/dir     (or: rclone rc vfs/forget ...)

The server speaks rclone's rc protocol (fs/rc/rcserver): `POST /<method>`; parameters from the URL
query, a form body or a JSON body (JSON wins); replies are tab-indented JSON; errors are
{"error", "input", "path", "status"} with rclone's texts and status codes. Methods: rc/noop,
rc/list, core/version, vfs/list, vfs/forget, vfs/refresh; anything else is a 404.

Authentication is rclone's (>= 1.74): with --rc-user every request needs HTTP Basic auth; without
it, only the read-only methods (rc/noop, rc/list, core/version, vfs/list) answer, the others are
403 unless --rc-no-auth is given.

`fs` names a VFS as rclone does (vfs/list: the fs.ConfigString of the volume's backend, e.g.
`:local:/srv/x`) or, as an extension, by Docker volume name. With one mounted volume it may be
left out; with several it is required (rclone's error otherwise).

The HTTP side is docker/httpserver.py on its own thread; the subclass below only keeps the URL
query and adds response headers, which the Docker API never needs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import http.client
import itertools
import json
import logging
import os
import platform
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import __version__
from .lib.httpserver import REASONS, HttpServer, Request, Response, parse_request
from .parsers import _go_quote, parse_bool

if TYPE_CHECKING:
    from .docker.driver import ActiveVFS
    from .docker.serve import Listener

log = logging.getLogger("pyclone.rc")

DEFAULT_ADDR = "localhost:5572"
DEFAULT_URL = "http://localhost:5572/"
REALM = "rclone"
MAX_PATH = 4096
# rclone's job parameters: accepted and ignored (there are no jobs here)
_JOB_PARAMS = ("_group", "_config", "_filter")

Params = dict[str, Any]


class RcError(Exception):
    """An error reply: `message` goes to the client as "error" with this HTTP status."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


# --- parameters -----------------------------------------------------------------------------


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """Content-Type -> (media type in lower case, parameters), as Go's mime.ParseMediaType."""
    head, *rest = value.split(";")
    media = head.strip().lower()
    if not media or "/" not in media:
        raise ValueError("mime: no media type" if not media else "mime: expected slash after first token")
    params = {}
    for part in rest:
        key, eq, val = part.strip().partition("=")
        if not part.strip():
            continue
        if not eq or not key.strip():
            raise ValueError("mime: invalid media parameter")
        params[key.strip().lower()] = val.strip().strip('"')
    return media, params


def request_params(query: str, content_type: str, body: bytes) -> Params:
    """rclone's handlePost: URL query (or form body and query), then a JSON body on top.

    A body without a Content-Type that looks like a JSON object is read as JSON too
    (rclone ignores it; curl and Python clients often leave the header out).
    """
    media, ctparams = "", {}
    if content_type:
        try:
            media, ctparams = parse_media_type(content_type)
        except ValueError as e:
            raise RcError(f"failed to parse Content-Type: {e}", 400) from None
    pairs = []
    if media == "application/x-www-form-urlencoded":
        try:
            pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError) as e:
            raise RcError(f"failed to parse form/URL parameters: {e}", 400) from None
    pairs += parse_qsl(query, keep_blank_values=True)
    params: Params = {}
    for key, value in pairs:
        params[key] = value  # the last value of a repeated key wins, as in rclone
    is_json = media == "application/json" or (not media and body.lstrip()[:1] == b"{")
    if is_json:
        charset = ctparams.get("charset")
        if charset is not None and charset.lower() != "utf-8":
            raise RcError(f"unsupported charset {_go_quote(charset)} for JSON input", 400)
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else None
        except (UnicodeDecodeError, ValueError) as e:
            raise RcError(f"failed to read input JSON: {e}", 400) from None
        if data is not None and not isinstance(data, dict):
            raise RcError(f"failed to read input JSON: json: cannot unmarshal {type(data).__name__} "
                          "into Go value of type rc.Params", 400)
        params.update(data or {})
    return params


def string_value(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise RcError(f"value must be string {_go_quote(key)}={json.dumps(value)}")
    return value


def clean_path(key: str, value: Any) -> str:
    """A path parameter as the VFS keys it: relative, '/'-separated, no `.`/`..`/empty parts.

    Leading and trailing slashes are dropped, as rclone's strings.Trim(path, "/"): `/a/b/` is
    `a/b` of the volume, never a host path. `..` is refused rather than resolved.
    """
    raw = string_value(key, value)
    if "\0" in raw or len(raw) > MAX_PATH:
        raise RcError(f"invalid path {_go_quote(raw[:64])} for {_go_quote(key)}", 400)
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RcError(f'invalid path {_go_quote(raw)} for {_go_quote(key)}: ".." is not allowed', 400)
    return "/".join(parts)


def forget_plan(params: Params) -> list[tuple[str, bool]]:
    """vfs/forget's parameters (`fs` already taken out): (path, is_dir) for every `file*` and
    `dir*` key, in the order given. Everything is checked before anything is forgotten."""
    plan = []
    for key, value in params.items():
        if key.startswith("file"):
            plan.append((clean_path(key, value), False))
        elif key.startswith("dir"):
            plan.append((clean_path(key, value), True))
        else:
            raise RcError(f"unknown key {_go_quote(key)}")
    return plan


# --- naming VFSes ---------------------------------------------------------------------------


def list_names(active: Sequence[ActiveVFS]) -> list[str]:
    """vfs/list's names: the VFS name, or `name[i]` for each of several VFSes sharing one."""
    counts: dict[str, int] = {}
    for a in active:
        counts[a.name] = counts.get(a.name, 0) + 1
    seen: dict[str, int] = {}
    names = []
    for a in active:
        if counts[a.name] == 1:
            names.append(a.name)
        else:
            i = seen.get(a.name, 0)
            seen[a.name] = i + 1
            names.append(f"{a.name}[{i}]")
    return names


def _redact(fs_string: str) -> str:
    from .fs import redact

    return redact(fs_string)


def get_vfs(driver: Any, params: Params) -> ActiveVFS:
    """rclone's getVFS: `fs` picks the VFS (and is taken out of params); without it the only
    active VFS is used."""
    if "fs" not in params:
        active = driver.active_vfses()
        if len(active) == 1:
            return active[0]
        if not active:
            raise RcError('no VFS active and "fs" parameter not supplied')
        raise RcError('more than one VFS active - need "fs" parameter')
    name = params["fs"]
    if not isinstance(name, str):
        raise RcError(f'expecting string value for key "fs" (was {type(name).__name__})', 400)
    matches = driver.vfs_by_name(name)
    if not matches:
        active = driver.active_vfses()
        matches = [a for a, listed in zip(active, list_names(active), strict=True) if listed == name]
    shown = _go_quote(_redact(name))
    if not matches:
        hint = " (the volume is not mounted)" if driver.has_volume(name) else ""
        raise RcError(f"no VFS found with name {shown}{hint}")
    if len(matches) > 1:
        raise RcError(f"more than one VFS active with name {shown} (give the Docker volume name instead)")
    del params["fs"]
    return matches[0]


# --- methods --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    path: str
    fn: Callable[[Any, Params], Params]
    title: str
    help: str = ""
    no_auth: bool = False  # rclone's NoAuth: answers without authentication
    slow: bool = False  # may touch a backend: runs on a worker thread


_GET_VFS_HELP = """
This command takes an "fs" parameter: a name from vfs/list, or a Docker volume name. If this
parameter is not supplied and if there is only one VFS in use then that VFS will be used. If
there is more than one VFS in use then the "fs" parameter must be supplied."""


def _noop(_driver: Any, params: Params) -> Params:
    return params


def _version(_driver: Any, _params: Params) -> Params:
    nums = [int(p) if p.isdigit() else 0 for p in __version__.split("-")[0].split(".")[:3]]
    uname = os.uname()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm"}.get(uname.machine, uname.machine)
    return {
        "version": f"v{__version__}",
        "decomposed": [*nums, 0, 0, 0][:3],
        "isGit": False,
        "isBeta": False,
        "os": "linux" if uname.sysname == "Linux" else uname.sysname.lower(),
        "osKernel": f"{uname.release} ({uname.machine})",
        "arch": arch,
        "pythonVersion": platform.python_version(),
    }


def _vfs_list(driver: Any, _params: Params) -> Params:
    active = driver.active_vfses()
    names = list_names(active)
    # "volumes" is ours: which Docker volume each VFS serves
    return {"vfses": names, "volumes": {a.volume: n for a, n in zip(active, names, strict=True)}}


def _vfs_forget(driver: Any, params: Params) -> Params:
    target = get_vfs(driver, params)
    if not params:
        target.vfs.forget_all()
        log.info('rc: volume "%s": forgot the whole directory cache', target.volume)
        return {"forgotten": []}
    plan = forget_plan(params)
    for path, is_dir in plan:
        target.vfs.forget_path(path, is_dir)
    log.info('rc: volume "%s": forgot %d path(s)', target.volume, len(plan))
    return {"forgotten": [path for path, _ in plan]}


def _vfs_refresh(driver: Any, params: Params) -> Params:
    target = get_vfs(driver, params)
    recursive = False
    if "recursive" in params:
        raw = string_value("recursive", params.pop("recursive"))
        try:
            recursive = parse_bool(raw)
        except ValueError:
            raise RcError(f"invalid value {_go_quote('recursive')}={raw}") from None
    wanted: list[tuple[str, str]] = []  # (as given, clean)
    if not params:
        wanted.append(("", ""))
    for key, value in params.items():
        if not key.startswith("dir"):
            raise RcError(f"unknown key {_go_quote(key)}")
        wanted.append((string_value(key, value), clean_path(key, value)))
    result = {}
    for given, path in wanted:
        try:
            target.vfs.refresh_dir(path, recursive)
            result[given] = "OK"
        except OSError as e:
            result[given] = (e.strerror or str(e)).lower() if e.errno else str(e)
    return {"result": result}


def _rc_list(_driver: Any, _params: Params) -> Params:
    return {"commands": [{"Path": c.path, "Title": c.title, "Help": c.help, "NoAuth": c.no_auth,
                          "AuthRequired": not c.no_auth, "NeedsRequest": False, "NeedsResponse": False}
                         for c in sorted(CALLS.values(), key=lambda c: c.path)]}


CALLS: dict[str, Call] = {c.path: c for c in (
    Call("rc/noop", _noop, "Echo the input to the output parameters", no_auth=True,
         help="This echoes the input parameters to the output parameters for testing purposes."),
    Call("rc/list", _rc_list, "List all the registered remote control commands", no_auth=True,
         help='This lists all the registered remote control commands as a JSON map in the commands response.'),
    Call("core/version", _version, "Shows the current version of pyclone-docker and the OS", no_auth=True),
    Call("vfs/list", _vfs_list, "List active VFSes.", no_auth=True,
         help='This lists the active VFSes (one per mounted volume) under the key "vfses": the names that\n'
              'can be passed to the other VFS commands in the "fs" parameter. "volumes" maps each\n'
              "Docker volume name to its VFS name."),
    Call("vfs/forget", _vfs_forget, "Forget files or directories in the directory cache.",
         help="This forgets the paths in the directory cache causing them to be re-read from the\n"
              "remote when needed. With no paths, the whole directory cache of the VFS is forgotten.\n\n"
              "    rclone rc vfs/forget fs=myvolume file=hello file2=goodbye dir=home/junk\n" + _GET_VFS_HELP,
         slow=True),
    Call("vfs/refresh", _vfs_refresh, "Refresh the directory cache.",
         help="This reads the directories for the specified paths (dir=path, dir2=path...) and\n"
              "freshens the directory cache; with no paths, the root. recursive=true reads the\n"
              "whole tree below them.\n" + _GET_VFS_HELP,
         slow=True),
)}


# --- HTTP -----------------------------------------------------------------------------------


def to_json(data: Any) -> bytes:
    """rclone's rc.WriteJSON: tab-indented, keys sorted (Go's maps), newline-terminated."""
    return (json.dumps(data, indent="\t", sort_keys=True, ensure_ascii=False) + "\n").encode()


def error_body(path: str, params: Params | None, message: str, status: int) -> bytes:
    return to_json({"error": message, "input": params, "path": path, "status": status})


def _bare_error(message: str) -> bytes:
    """Errors the HTTP layer itself answers (malformed requests, timeouts)."""
    return to_json({"error": message})


@dataclass
class RcResponse(Response):
    headers: dict[str, str] = field(default_factory=dict)


_EXTRA_REASONS = {401: "Unauthorized", 403: "Forbidden"}


def render(resp: Response, keep_alive: bool) -> bytes:
    status = resp.status
    reason = REASONS.get(status) or _EXTRA_REASONS.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {resp.content_type}",
             f"Content-Length: {len(resp.body)}", f"Server: pyclone-docker/{__version__}"]
    for name, value in getattr(resp, "headers", {}).items():
        lines.append(f"{name}: {value}")
    lines.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + resp.body


def check_basic_auth(header: str, user: str, password: str) -> bool:
    """HTTP Basic credentials against the one configured user (constant-time compare)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    got_user, sep, got_pass = decoded.partition(b":")
    if not sep:
        return False
    ok_user = hmac.compare_digest(got_user, user.encode())
    ok_pass = hmac.compare_digest(got_pass, password.encode())
    return ok_user and ok_pass


class _RcHttpServer(HttpServer):
    """The plugin's HTTP server, keeping what rc needs and the Docker API does not: the URL
    query of each request (the base parser drops it) and extra response headers."""

    def _parse(self, conn: Any) -> None:
        start = len(conn.queue)
        raw = bytes(conn.inbuf)
        super()._parse(conn)
        fresh = [r for r in itertools.islice(conn.queue, start, None) if isinstance(r, Request)]
        pos = 0
        for req in fresh:  # the same bytes parse the same way: find each request's target again
            parsed = parse_request(bytearray(raw[pos:]))
            if parsed is None:  # pragma: no cover - the base parser just accepted these bytes
                break
            line = raw[pos:raw.find(b"\r\n", pos)].decode("latin-1")
            target = line.split(" ")[1] if line.count(" ") == 2 else ""
            req.rc_query = target.partition("?")[2]  # type: ignore[attr-defined]
            pos += parsed[1]

    def _respond(self, conn: Any, resp: Response) -> None:
        if resp.close:
            conn.close_after = True
        conn.out += render(resp, not conn.close_after)
        conn.last = time.monotonic()
        self._flush(conn)


class RcHandler:
    """Routes one rc request: auth, parameters, method, reply (rclone's rcserver.handler)."""

    def __init__(self, driver: Any, user: str = "", password: str = "", no_auth: bool = False) -> None:
        self.driver = driver
        self.user = user
        self.password = password
        self.no_auth = no_auth

    @property
    def using_auth(self) -> bool:
        return bool(self.user)  # rclone: basic auth is on when a user name is set

    def handle(self, req: Request) -> Response | Callable[[], Response]:
        path = unquote(req.path).lstrip("/")
        authorization = req.headers.get("authorization", "")
        if (self.using_auth and req.method != "OPTIONS"
                and not check_basic_auth(authorization, self.user, self.password)):
            log.info("rc: %s: unauthorized request", _go_quote(path))
            return RcResponse(401, b"401 Unauthorized\n", "text/plain; charset=utf-8",
                              headers={"WWW-Authenticate": f'Basic realm="{REALM}"'})
        if req.method == "POST":
            return self._post(req, path)
        if req.method == "OPTIONS":
            return Response(200, b"", "text/plain; charset=utf-8")
        if req.method in ("GET", "HEAD"):
            body = b"" if req.method == "HEAD" else b"Not Found\n"
            return Response(404, body, "text/plain; charset=utf-8")
        return self._error(path, None, RcError(f"method {_go_quote(req.method)} not allowed", 405))

    def _post(self, req: Request, path: str) -> Response | Callable[[], Response]:
        try:
            params = request_params(getattr(req, "rc_query", ""), req.headers.get("content-type", ""), req.body)
        except RcError as e:
            return self._error(path, None, e)
        async_flag = params.pop("_async", None)
        for key in _JOB_PARAMS:
            params.pop(key, None)
        call = CALLS.get(path)
        if call is None:
            return self._error(path, params, RcError(f"couldn't find method {_go_quote(path)}", 404))
        if not call.no_auth and not self.no_auth and not self.using_auth:
            return self._error(path, params, RcError(
                f"authentication must be set up on the rc server to use {_go_quote(path)} "
                "or the --rc-no-auth flag must be in use", 403))
        if async_flag not in (None, False, "false", "0"):
            return self._error(path, params, RcError("_async: background jobs are not supported", 400))
        log.debug("rc: %s: with parameters %s", _go_quote(path), sorted(params))  # names only
        original = dict(params)
        if call.slow:
            return lambda: self._run(call, path, params, original)
        return self._run(call, path, params, original)

    def _run(self, call: Call, path: str, params: Params, original: Params) -> Response:
        try:
            out = call.fn(self.driver, params)
        except RcError as e:
            return self._error(path, original, e)
        except OSError as e:
            return self._error(path, original, RcError(str(e)))
        return Response(200, to_json(out if out is not None else {}), "application/json")

    def _error(self, path: str, params: Params | None, e: RcError) -> Response:
        level = logging.ERROR if e.status >= 500 else logging.INFO
        log.log(level, "rc: %s: error: %s", _go_quote(path), e)
        return Response(e.status, error_body(path, params, str(e), e.status), "application/json")


class RcServer:
    """The rc HTTP server on its own thread, beside the Docker API loop."""

    def __init__(self, driver: Any, listener: Listener, user: str = "", password: str = "",
                 no_auth: bool = False) -> None:
        self.listener = listener
        self.handler = RcHandler(driver, user, password, no_auth)
        self.http = _RcHttpServer(listener.sock, self.handler.handle, _bare_error, workers=2)
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="rc", daemon=True)
        self._thread.start()
        log.warning("Serving remote control on %s", self.listener.description)
        if not self.handler.using_auth and not self.handler.no_auth:
            log.info("rc: no --rc-user: only the read-only methods answer (vfs/forget needs auth or --rc-no-auth)")

    def _serve(self) -> None:
        try:
            self.http.serve()
        except Exception:
            log.exception("rc server failed")

    def close(self) -> None:
        """Stop serving and close the socket (a unix socket file is removed). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.http.stop()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._thread is None or not self._thread.is_alive():
            self.http.close()
        self.listener.close()


# --- addresses ------------------------------------------------------------------------------


def parse_rc_addr(addr: str) -> tuple[str, str, int]:
    """--rc-addr -> ("unix", path, 0) or ("tcp", host, port), with rclone's forms:
    `unix:///path` or `/path`; `host:port`, `[v6]:port`, `:port` (every interface), `http://`."""
    addr = addr.strip()
    if addr.startswith("unix://") or addr.startswith("/"):
        path = addr.removeprefix("unix://")
        if not path.startswith("/"):
            raise ValueError(f"bad --rc-addr {addr!r}: a unix socket needs an absolute path")
        return "unix", path, 0
    if addr.startswith(("tls://", "https://")):
        raise ValueError(f"bad --rc-addr {addr!r}: TLS is not supported")
    hostport = addr.removeprefix("http://").rstrip("/")
    host, sep, port_text = hostport.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"bad --rc-addr {addr!r}: want host:port, :port or unix:///path")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"bad --rc-addr {addr!r}: write an IPv6 address as [addr]:port")
    return "tcp", host, int(port_text)


# --- client ---------------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket (what `rclone rc --unix-socket` does)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def normalise_url(url: str) -> str:
    """rclone rc's fix-ups: `:port` -> localhost:port, add http://, end with /."""
    if url.startswith(":"):
        url = "localhost" + url
    if not url.startswith(("http:", "https:")):
        url = "http://" + url
    if not url.endswith("/"):
        url += "/"
    return url


def client_call(method: str, params: Params, url: str = DEFAULT_URL, unix_socket: str = "",
                user: str | None = None, password: str | None = None,
                timeout: float = 300.0) -> tuple[Params, str | None]:
    """POST params as JSON to <url><method>, as `rclone rc` does: (reply, error or None).

    On failure the reply is the server's JSON error, or one made up like rclone's client makes.
    """
    method = method.strip("/")
    if url.startswith("unix://") or url.startswith("/"):
        unix_socket, url = url.removeprefix("unix://"), DEFAULT_URL
    url = normalise_url(url)
    parts = urlsplit(url)
    if user is None and parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
    target = (parts.path or "/") + method

    def failed(status: int, message: str) -> tuple[Params, str]:
        return {"error": message, "path": method, "status": status}, message

    conn: Any
    if unix_socket:
        conn = UnixHTTPConnection(unix_socket, timeout)
    elif parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "localhost", parts.port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "localhost", parts.port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if user or password:
        token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
        headers["Authorization"] = "Basic " + token
    try:
        conn.request("POST", target, body=json.dumps(params).encode(), headers=headers)
        resp = conn.getresponse()
        status, body = resp.status, resp.read()
    except (OSError, http.client.HTTPException) as e:
        where = unix_socket or f"{parts.scheme}://{parts.netloc}{target}"
        return failed(503, f"connection failed: Post {_go_quote(where)}: {e}")
    finally:
        conn.close()
    text = body.decode("utf-8", "replace").strip()
    try:
        out = json.loads(text)
        if not isinstance(out, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        return failed(status, f"failed to decode response: {e}: {text[:200]}")
    if status != 200:
        return out, f"operation {_go_quote(method)} failed: {out.get('error')}"
    return out, None
