"""The remote control (rc): parameters, path checks, VFS naming, auth, routing, the client's
command line, and vfs/forget on a real VFS over a local directory (no FUSE needed)."""

from __future__ import annotations

import base64
import errno
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pyclone_docker import backends, rc
from pyclone_docker import fs as fsmod
from pyclone_docker.cli import UsageError, parse_rc_args
from pyclone_docker.docker.driver import Driver, vfs_name
from pyclone_docker.docker.state import StateFile
from pyclone_docker.docker.volume import Volume
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
from pyclone_docker.lib.httpserver import Request, Response
from pyclone_docker.rc.server import open_listener as open_rc_listener
from pyclone_docker.vfs import rc as vfsrc
from pyclone_docker.vfs.dircache import DirCache
from pyclone_docker.vfs.vfs import VFS

# --- parameters ----------------------------------------------------------------------------


def test_params_from_query_form_and_json() -> None:
    assert rc.request_params("a=1&b=&c=x%2Fy", "", b"") == {"a": "1", "b": "", "c": "x/y"}
    assert rc.request_params("a=1&a=2", "", b"") == {"a": "2"}  # the last value wins
    # a form body and the query: the query comes last, so it wins (Go's r.Form)
    form = rc.request_params("a=q", "application/x-www-form-urlencoded", b"a=f&b=2")
    assert form == {"a": "q", "b": "2"}
    # a JSON body goes on top of the query
    got = rc.request_params("fs=q&x=1", "application/json; charset=utf-8", b'{"fs": "j", "n": [1]}')
    assert got == {"fs": "j", "x": "1", "n": [1]}
    # without Content-Type rclone ignores the body; we read an object-looking one as JSON
    assert rc.request_params("", "", b'{"dir": ""}') == {"dir": ""}
    assert rc.request_params("", "", b"dir=x") == {}
    assert rc.request_params("", "application/json", b"") == {}
    assert rc.request_params("", "application/json", b"null") == {}


@pytest.mark.parametrize("content_type, body, fragment", [
    ("application/json", b"{broken", "failed to read input JSON"),
    ("application/json", b"[1, 2]", "cannot unmarshal list"),
    ("application/json; charset=latin-1", b"{}", 'unsupported charset "latin-1"'),
    (";", b"", "failed to parse Content-Type"),
    ("application/json", b"\xff", "failed to read input JSON"),
])
def test_bad_input_is_400(content_type: str, body: bytes, fragment: str) -> None:
    with pytest.raises(rc.RcError) as e:
        rc.request_params("", content_type, body)
    assert e.value.status == 400 and fragment in str(e.value)


@pytest.mark.parametrize("raw, clean", [
    ("", ""), ("/", ""), ("a", "a"), ("/a/b/", "a/b"), ("a//b/./c", "a/b/c"), ("./a", "a"),
    ("name with spaces/ü", "name with spaces/ü"), ("...", "..."), ("a..b", "a..b"),
])
def test_clean_path(raw: str, clean: str) -> None:
    assert rc.clean_path("dir", raw) == clean


@pytest.mark.parametrize("raw", ["..", "../etc", "a/../../b", "/a/..", "a/..", "x\0y", "a/" * 3000])
def test_paths_that_could_escape_are_refused(raw: str) -> None:
    with pytest.raises(rc.RcError) as e:
        rc.clean_path("file", raw)
    assert e.value.status == 400


def test_path_values_must_be_strings() -> None:
    with pytest.raises(rc.RcError, match=r'value must be string "file"=1'):
        rc.clean_path("file", 1)


def test_forget_plan_keys_and_order() -> None:
    plan = vfsrc.forget_plan({"file": "a/b.txt", "dir": "/x/", "file2": "c", "dir_other": ""})
    assert plan == [("a/b.txt", False), ("x", True), ("c", False), ("", True)]
    with pytest.raises(rc.RcError, match='unknown key "path"'):
        vfsrc.forget_plan({"file": "a", "path": "b"})
    with pytest.raises(rc.RcError) as e:  # checked before anything is forgotten
        vfsrc.forget_plan({"file": "a", "dir": "../b"})
    assert e.value.status == 400


# --- naming and choosing a VFS -------------------------------------------------------------


@dataclass
class FakeBackend:
    name: str
    root: str
    type_name: str = "local"


@dataclass
class FakeVFS:
    backend: FakeBackend
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def forget_all(self) -> None:
        self.calls.append(("all",))

    def forget_path(self, path: str, is_dir: bool) -> None:
        self.calls.append(("path", path, is_dir))

    def refresh_dir(self, path: str, recursive: bool = False) -> int:
        if path == "missing":
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        self.calls.append(("refresh", path, recursive))
        return 1


def make_driver(tmp_path: Path, *vols: tuple[str, str, str, bool]) -> Driver:
    """Volumes as (name, backend name, root, mounted)."""
    d = Driver(str(tmp_path / "base"), StateFile(str(tmp_path)), OptionValues.defaults(VOLUME_OPTIONS),
               frozenset(), fsmod.FsContext(env={}))
    for name, backend_name, root, mounted in vols:
        fs = root if backend_name == "local" else f"{backend_name}:{root}"
        vol = Volume(name=name, mountpoint=str(tmp_path / name), created_ns=0, fs=fs, fs_type="", path="",
                     options={})
        if mounted:
            vol.vfs = FakeVFS(FakeBackend(backend_name, root))
        d._volumes[name] = vol
    return d


def test_vfs_names_are_rclones_config_strings() -> None:
    assert vfs_name(FakeBackend("local", "/srv/x")) == "/srv/x"
    assert vfs_name(FakeBackend(":local", "/srv/x")) == ":local:/srv/x"
    assert vfs_name(FakeBackend(":local{dTos-}", "/srv/x")) == ":local{dTos-}:/srv/x"
    assert vfs_name(FakeBackend("myremote", "dir", "sftp")) == "myremote:dir"
    # the names a real backend gets from the fs strings volumes are made of
    for fs_string, want in (("/srv/x/", "/srv/x"), (":local:/srv/x", ":local:/srv/x"),
                            (":local,case_sensitive:/srv/x", ":local{dTos-}:/srv/x")):
        r = fsmod.resolve(fs_string, fsmod.FsContext(env={}, cwd="/"))
        backend = r.info.factory(r.name, r.root, r.options)
        assert vfs_name(backend) == want


def test_get_vfs_follows_rclone(tmp_path: Path) -> None:
    none = make_driver(tmp_path)
    with pytest.raises(rc.RcError, match='no VFS active and "fs" parameter not supplied'):
        vfsrc.get_vfs(none, {})

    one = make_driver(tmp_path, ("va", ":local", "/srv/a", True), ("idle", ":local", "/srv/i", False))
    params: dict[str, Any] = {"dir": "x"}
    assert vfsrc.get_vfs(one, params).volume == "va" and params == {"dir": "x"}

    two = make_driver(tmp_path, ("va", ":local", "/srv/a", True), ("vb", "local", "/srv/b", True),
                      ("idle", ":local", "/srv/i", False))
    with pytest.raises(rc.RcError, match='more than one VFS active - need "fs" parameter') as e:
        vfsrc.get_vfs(two, {"dir": ""})
    assert e.value.status == 500  # as rclone: a plain error
    for fs in (":local:/srv/a", "va"):  # rclone's VFS name, or the Docker volume name
        params = {"fs": fs, "dir": ""}
        assert vfsrc.get_vfs(two, params).volume == "va"
        assert params == {"dir": ""}  # fs is taken out, as rclone does
    assert vfsrc.get_vfs(two, {"fs": "/srv/b"}).volume == "vb"
    with pytest.raises(rc.RcError, match='no VFS found with name "nope"'):
        vfsrc.get_vfs(two, {"fs": "nope"})
    with pytest.raises(rc.RcError, match=r'no VFS found with name "idle" \(the volume is not mounted\)'):
        vfsrc.get_vfs(two, {"fs": "idle"})
    with pytest.raises(rc.RcError) as e:
        vfsrc.get_vfs(two, {"fs": 3})
    assert e.value.status == 400
    with pytest.raises(rc.RcError) as e:
        vfsrc.get_vfs(two, {"fs": ":sftp,pass=hunter2:/x"})
    assert "hunter2" not in str(e.value)


def test_several_vfses_with_one_name(tmp_path: Path) -> None:
    d = make_driver(tmp_path, ("v1", ":local", "/srv/same", True), ("v2", ":local", "/srv/same", True),
                    ("v3", "local", "/srv/other", True))
    out = rc.CALLS["vfs/list"].fn(d, {})
    assert out["vfses"] == [":local:/srv/same[0]", ":local:/srv/same[1]", "/srv/other"]
    assert out["volumes"] == {"v1": ":local:/srv/same[0]", "v2": ":local:/srv/same[1]", "v3": "/srv/other"}
    with pytest.raises(rc.RcError, match='more than one VFS active with name ":local:/srv/same"'):
        vfsrc.get_vfs(d, {"fs": ":local:/srv/same"})
    assert vfsrc.get_vfs(d, {"fs": ":local:/srv/same[1]"}).volume == "v2"  # vfs/list's names work
    assert vfsrc.get_vfs(d, {"fs": "v1"}).volume == "v1"


def test_forget_and_refresh_calls(tmp_path: Path) -> None:
    d = make_driver(tmp_path, ("va", ":local", "/srv/a", True), ("vb", ":local", "/srv/b", True))
    va, vb = d._volumes["va"].vfs, d._volumes["vb"].vfs
    out = rc.CALLS["vfs/forget"].fn(d, {"fs": "va", "file": "/a/b.txt", "dir": "c/"})
    assert out == {"forgotten": ["a/b.txt", "c"]}
    assert va.calls == [("path", "a/b.txt", False), ("path", "c", True)] and vb.calls == []
    assert rc.CALLS["vfs/forget"].fn(d, {"fs": "vb"}) == {"forgotten": []}
    assert vb.calls == [("all",)]
    out = rc.CALLS["vfs/refresh"].fn(d, {"fs": "va", "dir": "x", "dir2": "missing", "recursive": "true"})
    assert out == {"result": {"x": "OK", "missing": "no such file or directory"}}
    assert rc.CALLS["vfs/refresh"].fn(d, {"fs": "vb"}) == {"result": {"": "OK"}}
    with pytest.raises(rc.RcError, match='invalid value "recursive"=maybe'):
        rc.CALLS["vfs/refresh"].fn(d, {"fs": "va", "recursive": "maybe"})
    with pytest.raises(rc.RcError, match='unknown key "file"'):
        rc.CALLS["vfs/refresh"].fn(d, {"fs": "va", "file": "x"})


# --- routing and authentication ------------------------------------------------------------


def post(handler: rc.RcHandler, path: str, body: Any = None, auth: str | None = None,
         method: str = "POST", query: str = "") -> tuple[int, Any, Response]:
    headers = {"content-type": "application/json"}
    if auth is not None:
        headers["authorization"] = auth
    req = Request(method, path, headers, json.dumps(body).encode() if body is not None else b"")
    req.query = query
    resp = handler.handle(req)
    if not isinstance(resp, Response):
        resp = resp()  # a slow call: what the worker thread would run
    try:
        data = json.loads(resp.body) if resp.body else None
    except ValueError:
        data = resp.body.decode()
    return resp.status, data, resp


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_methods_needing_auth_without_auth_configured(tmp_path: Path) -> None:
    d = make_driver(tmp_path, ("va", ":local", "/srv/a", True))
    h = rc.RcHandler(d)
    assert post(h, "/rc/noop", {"a": "1"})[:2] == (200, {"a": "1"})
    assert post(h, "/vfs/list")[0] == 200
    assert post(h, "/core/version")[1]["version"].startswith("v")
    status, data, _ = post(h, "/vfs/forget", {"dir": ""})
    assert status == 403
    assert data == {"error": 'authentication must be set up on the rc server to use "vfs/forget" or the '
                             "--rc-no-auth flag must be in use", "input": {"dir": ""}, "path": "vfs/forget",
                    "status": 403}
    assert d._volumes["va"].vfs.calls == []
    h = rc.RcHandler(d, no_auth=True)
    assert post(h, "/vfs/forget", {"dir": ""})[:2] == (200, {"forgotten": [""]})


def test_basic_auth_guards_everything(tmp_path: Path) -> None:
    d = make_driver(tmp_path, ("va", ":local", "/srv/a", True))
    h = rc.RcHandler(d, user="admin", password="s3cret:pw")
    for auth in (None, basic("admin", "wrong"), basic("other", "s3cret:pw"), "Bearer x", "Basic !!!"):
        status, _, resp = post(h, "/rc/noop", {}, auth=auth)
        assert status == 401
        assert isinstance(resp, Response) and resp.headers["WWW-Authenticate"] == 'Basic realm="rclone"'
    assert post(h, "/vfs/forget", {"file": "a"}, auth=basic("admin", "s3cret:pw"))[:2] == (
        200, {"forgotten": ["a"]})
    assert post(h, "/nope", {}, auth=basic("admin", "s3cret:pw"))[0] == 404
    assert post(h, "/rc/noop", method="OPTIONS")[0] == 200  # CORS preflight needs no auth


def test_routing_and_errors(tmp_path: Path) -> None:
    d = make_driver(tmp_path, ("va", ":local", "/srv/a", True), ("vb", ":local", "/srv/b", True))
    h = rc.RcHandler(d, no_auth=True)
    status, data, _ = post(h, "/core/nope", {"x": "1"})
    assert (status, data) == (404, {"error": 'couldn\'t find method "core/nope"', "input": {"x": "1"},
                                    "path": "core/nope", "status": 404})
    status, data, _ = post(h, "/vfs/forget", {"dir": ""})
    assert status == 500 and data["error"] == 'more than one VFS active - need "fs" parameter'
    assert post(h, "/vfs/forget", {"fs": "va", "dir": "../x"})[0] == 400
    assert post(h, "/vfs/forget", {"fs": "vb", "file": 7})[1]["error"] == 'value must be string "file"=7'
    assert post(h, "/vfs/forget", {"_async": True})[0] == 400
    assert post(h, "/vfs/forget", None, query="fs=va&file=q")[:2] == (200, {"forgotten": ["q"]})
    assert post(h, "/rc/noop", {"_group": "g", "_config": {}, "k": "v"})[1] == {"k": "v"}
    assert post(h, "/", method="GET")[0] == 404
    assert post(h, "/rc/noop", method="PUT")[1]["error"] == 'method "PUT" not allowed'
    listed = post(h, "/rc/list")[1]["commands"]
    assert {c["Path"] for c in listed} == set(rc.CALLS)
    assert {c["Path"] for c in listed if c["NoAuth"]} == {"rc/noop", "rc/list", "core/version", "vfs/list"}


def test_replies_are_rclones_json_shape() -> None:
    assert rc.to_json({"b": 1, "a": ["x"]}) == b'{\n\t"a": [\n\t\t"x"\n\t],\n\t"b": 1\n}\n'


def test_check_basic_auth() -> None:
    assert rc.check_basic_auth(basic("u", "p"), "u", "p")
    assert rc.check_basic_auth("basic " + base64.b64encode(b"u:").decode(), "u", "")
    assert not rc.check_basic_auth(basic("u", "p"), "u", "q")
    assert not rc.check_basic_auth("Basic " + base64.b64encode(b"up").decode(), "u", "p")
    assert not rc.check_basic_auth("", "u", "p")


# --- addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize("addr, want", [
    ("localhost:5572", ("tcp", "localhost", 5572)),
    ("127.0.0.1:0", ("tcp", "127.0.0.1", 0)),
    (":5572", ("tcp", "", 5572)),
    ("[::1]:5572", ("tcp", "::1", 5572)),
    ("http://localhost:5572/", ("tcp", "localhost", 5572)),
    ("unix:///run/rc.sock", ("unix", "/run/rc.sock", 0)),
    ("/run/rc.sock", ("unix", "/run/rc.sock", 0)),
])
def test_rc_addr_forms(addr: str, want: tuple[str, str, int]) -> None:
    assert rc.parse_rc_addr(addr) == want


@pytest.mark.parametrize("addr", ["localhost", "unix://rel.sock", "tls://:5572", "::1:5572", "host:99999",
                                  "rc.sock"])
def test_bad_rc_addrs(addr: str) -> None:
    with pytest.raises(ValueError):
        rc.parse_rc_addr(addr)


# --- the server and the client over real sockets -------------------------------------------


def test_server_and_client_over_tcp_and_unix(tmp_path: Path) -> None:
    d = make_driver(tmp_path, ("va", ":local", "/srv/a", True))
    server = rc.RcServer(d, open_rc_listener("127.0.0.1:0"), user="u", password="p")
    server.start()
    url = server.listener.description
    assert url.startswith("http://127.0.0.1:")
    port = int(url.rsplit(":", 1)[1].rstrip("/"))
    try:
        out, err = rc.client_call("rc/noop", {"a": "1"}, url=url, user="u", password="p")
        assert (out, err) == ({"a": "1"}, None)
        out, err = rc.client_call("vfs/forget", {"dir": "d"}, url=f":{port}", user="u", password="p")
        assert (out, err) == ({"forgotten": ["d"]}, None)
        out, err = rc.client_call("vfs/forget", {}, url=f"http://u:p@127.0.0.1:{port}")  # user:pass@ in URL
        assert err is None
        out, err = rc.client_call("rc/noop", {}, url=url)
        assert err is not None and out["status"] == 401 and "failed to decode response" in out["error"]
        # the URL query reaches the method, also for pipelined requests on one connection
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            auth = basic("u", "p")
            reqs = b"".join(f"POST /rc/noop?n={i}&x=%2F HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                            f"Content-Length: 0\r\n\r\n".encode() for i in range(3))
            s.sendall(reqs)
            got = b""
            while got.count(b"HTTP/1.1 200") < 3 or not got.rstrip().endswith(b"}"):
                chunk = s.recv(65536)
                assert chunk
                got += chunk
        bodies = [json.loads(part[part.index(b"{"):]) for part in got.split(b"HTTP/1.1 ")[1:]]
        assert bodies == [{"n": str(i), "x": "/"} for i in range(3)]
    finally:
        server.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    server.close()  # idempotent

    sock_path = tmp_path / "rc.sock"
    server = rc.RcServer(d, open_rc_listener(f"unix://{sock_path}"), no_auth=True)
    server.start()
    try:
        assert (os.stat(sock_path).st_mode & 0o777) == 0o660
        assert rc.client_call("vfs/forget", {"file": "f"}, unix_socket=str(sock_path)) == ({"forgotten": ["f"]}, None)
        assert rc.client_call("rc/noop", {}, url=f"unix://{sock_path}")[1] is None
    finally:
        server.close()
    assert not sock_path.exists()


def test_client_connection_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out, err = rc.client_call("rc/noop", {}, url=f"127.0.0.1:{port}", timeout=5)
    assert err is not None and "connection failed" in err and out["status"] == 503


def test_client_command_line() -> None:
    method, params, conn = parse_rc_args(["vfs/forget", "fs=va", "dir=", "--url", ":5599", "file=a=b"], {})
    assert (method, params) == ("vfs/forget", {"fs": "va", "dir": "", "file": "a=b"})
    assert conn["url"] == ":5599" and not conn["user"]
    method, params, conn = parse_rc_args(["--json", '{"fs": "va", "n": 1}', "/vfs/forget/", "--user=u",
                                          "--pass", "p", "-o", "k=v", "-okey", "-a", "x", "--no-output"], {})
    assert method == "vfs/forget"
    assert params == {"fs": "va", "n": 1, "opt": {"k": "v", "key": ""}, "arg": ["x"]}
    assert (conn["user"], conn["pass"], conn["no_output"]) == ("u", "p", "true")
    # rclone: --rc-addr/--rc-user/--rc-pass stand in for --url/--user/--pass, also from the environment
    _, _, conn = parse_rc_args(["rc/noop", "--url", "x:1", "--rc-addr", "y:2"], {})
    assert conn["url"] == "y:2"
    env = {"RCLONE_RC_USER": "eu", "RCLONE_RC_PASS": "ep", "RCLONE_RC_ADDR": "z:3"}
    _, _, conn = parse_rc_args(["rc/noop"], env)
    assert (conn["url"], conn["user"], conn["pass"]) == ("z:3", "eu", "ep")
    _, _, conn = parse_rc_args(["rc/noop", "--user", "cli"], env)
    assert conn["user"] == "cli"
    for bad in (["vfs/forget", "nokey"], ["vfs/forget", "--json", "{}", "a=b"], ["x", "--json", "[1]"],
                ["x", "--bogus"], ["x", "-z"], ["x", "--url"]):
        with pytest.raises(UsageError):
            parse_rc_args(bad, {})


# --- forgetting in a real VFS --------------------------------------------------------------


def test_dircache_forget_path() -> None:
    listed: list[str] = []

    def lister(path: str) -> list[Any]:
        listed.append(path)
        return []

    dc = DirCache(lister, 3600.0)
    for p in ("", "a", "a/b", "a/b/c", "ab", "x"):
        dc.children(p)
    dc.forget_path("a/b/f.txt", False)  # a file: its directory is listed again, nothing else
    assert sorted(dc._dirs) == ["", "a", "a/b/c", "ab", "x"]
    dc.forget_path("a", True)  # a directory: its parent and its whole subtree
    assert sorted(dc._dirs) == ["ab", "x"]
    dc.forget_path("", True)
    assert len(dc) == 0
    dc.children("x")
    dc.forget_path("", False)  # file="" names nothing
    assert sorted(dc._dirs) == ["x"]
    listed.clear()
    assert dc.refill("x") == {} and listed == ["x"]


def local_vfs(root: Path, **opts: str) -> VFS:
    values = OptionValues.defaults(VOLUME_OPTIONS)
    values.set("dir_cache_time", "1h")
    for k, v in opts.items():
        values.set(k, v)
    info = backends.find("local")
    assert info.factory is not None
    return VFS(info.factory(":local", str(root), {}), values)


def exists(vfs: VFS, path: str) -> bool:
    try:
        vfs.stat(path)
        return True
    except FileNotFoundError:
        return False


def test_vfs_forget_path_and_refresh(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    vfs = local_vfs(tmp_path)
    for d in ("", "sub", "sub/deep", "other"):
        vfs.dircache.children(d)
    (tmp_path / "new.txt").write_text("x")
    (tmp_path / "sub" / "deep" / "f").write_text("x")
    (tmp_path / "other" / "o").write_text("x")
    assert not exists(vfs, "/new.txt") and not exists(vfs, "/sub/deep/f") and not exists(vfs, "/other/o")

    vfs.forget_path("new.txt", False)
    assert exists(vfs, "/new.txt")
    assert not exists(vfs, "/sub/deep/f")
    vfs.forget_path("sub", True)
    assert exists(vfs, "/sub/deep/f")
    assert not exists(vfs, "/other/o")  # a sibling keeps its cached listing

    (tmp_path / "other" / "o2").write_text("x")
    assert vfs.refresh_dir("other") == 1
    assert exists(vfs, "/other/o") and exists(vfs, "/other/o2")
    (tmp_path / "sub" / "deep" / "g").write_text("x")
    assert vfs.refresh_dir("", recursive=True) == 4
    assert exists(vfs, "/sub/deep/g")
    with pytest.raises(FileNotFoundError):
        vfs.refresh_dir("nope")
    with pytest.raises(OSError) as e:
        vfs.refresh_dir("new.txt")
    assert e.value.errno == errno.EINVAL
    (tmp_path / "late").mkdir()
    assert vfs.refresh_dir("late") == 1  # a directory made behind the VFS's back can be refreshed


def test_forget_waits_for_a_listing_in_flight(tmp_path: Path) -> None:
    """A listing read before the forget must not be stored after it."""
    import threading

    started, release = threading.Event(), threading.Event()

    def slow_lister(path: str) -> list[Any]:
        started.set()
        release.wait(5)
        return []

    dc = DirCache(slow_lister, 3600.0)
    t = threading.Thread(target=dc.children, args=("",))
    t.start()
    started.wait(5)
    done = threading.Event()
    f = threading.Thread(target=lambda: (dc.forget_path("", True), done.set()))
    f.start()
    time.sleep(0.05)
    assert not done.is_set()
    release.set()
    t.join(5)
    f.join(5)
    assert done.is_set() and len(dc) == 0
