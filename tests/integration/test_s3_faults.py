"""Faults under the s3 backend (issue 12): real moto, a real FaultProxy between the client and
moto, the real backend (fs.new_fs) and the real plugin through FUSE.

- a GET body broken mid-way (reset, clean close, a stall past --timeout) is resumed with
  `Range: bytes=N-` and `If-Match` on the first ETag: exactly the object's bytes;
- more breaks than --low-level-retries: EIO, never short or wrong bytes;
- the object replaced between the break and the resume: EIO, never old and new bytes mixed;
- 503 SlowDown (Retry-After) and 500 InternalError on PutObject, HeadObject, GetObject,
  ListObjects, UploadPart and CompleteMultipartUpload: retried, and the operation succeeds;
  an answer lost after the server acted (PutObject, UploadPart, Complete): retried too;
- a failed multipart upload is aborted (unless leave_parts_on_error);
- an upload from the cache that fails stays dirty and is sent by the write-back's retry;
- responses later than --timeout are retried or fail with EIO, never hang;
- errors name the remote and the key, never the secret key (nor does the plugin's log).

Correctness only: every step runs under a generous guard, nothing asserts how long it took.
`heads` wraps the proxy's read_head to see the request headers. Three findings of this file
were fixed: a break inside one large readinto resumed from the start of that readinto (now from
where the bytes stopped, within one 64 KiB piece); --low-level-retries counted per readinto (now
per stream, as rclone's ReOpen); a failed read through the mount was not logged (now an ERROR).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import random
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyclone_docker import fs
from pyclone_docker.backends.base import Backend, BackendContext
from pyclone_docker.lib.httpclient.client import READ_PIECE
from tests.support import faultproxy
from tests.support.faultproxy import FaultProxy
from tests.support.moto import MotoServer, moto_server

from .conftest import Plugin

GUARD = 60.0
KiB, MiB = 1 << 10, 1 << 20
BUCKET = "pyc-faults"
BREAK = 100_000  # body bytes sent before a fault


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoServer]:
    for srv in moto_server():
        srv.make_bucket(BUCKET)
        yield srv


@pytest.fixture
def proxy(s3: MotoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", s3.port, io_timeout=GUARD) as px:
        yield px


Head = tuple[str, str, dict[str, str]]  # method, path, headers (lower-case names)


@pytest.fixture
def heads(monkeypatch: pytest.MonkeyPatch) -> list[Head]:
    """Every request head the proxy reads, in order."""
    seen: list[Head] = []
    real = faultproxy.read_head

    def spy(f: Any, first: bytes | None = None) -> Any:
        start, headers, raw = real(f, first)
        if first is not None:  # a request (a response head is read without a first line)
            method, target = start.decode("latin-1").split()[:2]
            seen.append((method, target.partition("?")[0], {k.lower(): v for k, v in headers}))
        return start, headers, raw

    monkeypatch.setattr(faultproxy, "read_head", spy)
    return seen


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """This test's own prefix in BUCKET."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)


@pytest.fixture
def backend(s3: MotoServer, proxy: FaultProxy, prefix: str) -> Iterator[Callable[..., Backend]]:
    """make(retries=, timeout=, **s3 options): a backend on BUCKET/prefix through the proxy."""
    made: list[Backend] = []

    def make(retries: int = 3, timeout: float = 10.0, **opts: str) -> Backend:
        extra = "".join(f",{k}={v}" for k, v in opts.items())
        spec = (f":s3,provider=Other,endpoint='{proxy.endpoint}',access_key_id={s3.access_key_id},"
                f"secret_access_key={s3.secret_access_key},chunk_size=5Mi,upload_cutoff=6Mi{extra}:{BUCKET}/{prefix}")
        ctx = fs.FsContext(env={}, backend=BackendContext(low_level_retries=retries, timeout=timeout, contimeout=5.0))
        b = fs.new_fs(spec, ctx)
        made.append(b)
        return b

    yield make
    for b in made:
        b.shutdown()


# --- helpers ---------------------------------------------------------------------------------

def content(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def guarded(fn: Callable[[], Any], timeout: float = GUARD) -> Any:
    """fn() in a thread; fails if it has not returned within `timeout` (a hang, not a timing)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the caller
            out["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"still running after {timeout:.0f} s: a hang"
    if "error" in out:
        raise out["error"]
    return out["value"]


def wait_for(cond: Callable[[], Any], timeout: float = GUARD, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def label(proxy: FaultProxy) -> str:
    """How every error names the remote."""
    return f"s3 (Other) at {proxy.endpoint}"


def key_rx(key: str) -> str:
    return f"^/{BUCKET}/{re.escape(key)}$"


def put(s3: MotoServer, key: str, data: bytes) -> str:
    """An object put straight into moto (not through the proxy); its ETag."""
    return s3.boto3_client().put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"].strip('"')


def server_bytes(s3: MotoServer, key: str) -> bytes | None:
    try:
        return s3.boto3_client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except s3.boto3_client().exceptions.NoSuchKey:
        return None


def read_all(b: Backend, name: str, offset: int = 0, length: int = -1,
             between: Callable[[int], None] | None = None, step: int = 32 * KiB) -> tuple[bytes, OSError | None]:
    """Read through open_read in `step` bytes at a time (calling between(bytes so far) after
    each): (the bytes, the error that stopped it)."""
    got = bytearray()
    buf = memoryview(bytearray(step))
    r = None
    try:
        r = b.open_read(name, offset, length)
        while n := r.readinto(buf):
            got += buf[:n]
            if between is not None:
                between(len(got))
    except OSError as e:
        return bytes(got), e
    finally:
        if r is not None:
            r.close()
    return bytes(got), None


def write_all(b: Backend, name: str, data: bytes) -> None:
    """Upload as the write-back does: one writer, aborted when a write or the close fails."""
    w = b.open_write(name, len(data), 1_600_000_000_000_000_000)
    try:
        for i in range(0, len(data), MiB):
            w.write(memoryview(data)[i:i + MiB])
        w.close()
    except BaseException:
        w.abort()
        raise


def no_secret(s3: MotoServer, *texts: str | BaseException | None) -> None:
    for t in texts:
        if isinstance(t, BaseException):
            t = "".join(traceback.format_exception(t))
        assert s3.secret_access_key not in (t or ""), "the secret access key leaked"


def statuses(proxy: FaultProxy, rule: faultproxy.Rule) -> list[int | None]:
    """What the proxy answered the requests `rule` matches (its record of a status is set just
    after the answer went out: a caller may see the answer first)."""
    return [r.status for r in list(proxy.requests) if rule.matches(r.method, r.path, r.query)]


def resumed_gets(heads: list[Head], key: str) -> list[dict[str, str]]:
    return [h for m, p, h in heads if m == "GET" and p == f"/{BUCKET}/{key}"]


def check_resume(heads: list[Head], key: str, etag: str, first_range: str | None = None) -> int:
    """The GETs of `key`: the first as asked, each later one `Range: bytes=N-` (N past the
    previous start) with If-Match on the ETag; the number of GETs."""
    gets = resumed_gets(heads, key)
    assert len(gets) >= 2, gets
    assert gets[0].get("range") == first_range and "if-match" not in gets[0], gets[0]
    last = -1
    for h in gets[1:]:
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", h.get("range", ""))
        assert m and int(m[1]) > last, h
        last = int(m[1])
        assert h.get("if-match") == f'"{etag}"', h
    return len(gets)


# --- reads: broken bodies --------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["reset_after", "truncate_after"])
@pytest.mark.parametrize("offset,length", [(0, -1), (7, 250_000)])
def test_a_broken_get_body_is_resumed_with_range_and_if_match(s3: MotoServer, proxy: FaultProxy, heads: list[Head],
                                                              backend: Callable[..., Backend], prefix: str, fault: str,
                                                              offset: int, length: int) -> None:
    b = backend()
    key = f"{prefix}/obj"
    data = content(key, 300 * KiB)
    etag = put(s3, key, data)
    getattr(proxy, fault)(BREAK, method="GET", path=key_rx(key))
    got, err = guarded(lambda: read_all(b, "obj", offset, length))
    assert err is None, err
    want = data[offset:offset + length] if length >= 0 else data[offset:]
    assert len(got) == len(want) and got == want
    first = None if (offset, length) == (0, -1) else f"bytes={offset}-{offset + length - 1}"
    assert check_resume(heads, key, etag, first) == 2
    assert proxy.count("GET", key_rx(key), fault=fault) == 1
    gets = resumed_gets(heads, key)
    start = int(re.match(r"bytes=(\d+)-", gets[1]["range"])[1])  # type: ignore[index]
    assert offset < start <= offset + BREAK  # resumed where it broke, not from the start
    if length >= 0:
        assert gets[1]["range"].endswith(f"-{offset + length - 1}")


@pytest.mark.parametrize("fault", ["reset_after", "stall_body"])
def test_a_break_inside_one_large_read_resumes_where_it_broke(s3: MotoServer, proxy: FaultProxy, heads: list[Head],
                                                              backend: Callable[..., Backend], prefix: str,
                                                              fault: str) -> None:
    b = backend(timeout=1.0)
    key = f"{prefix}/obj"
    data = content(key, 300 * KiB)
    etag = put(s3, key, data)
    if fault == "stall_body":
        proxy.stall_body(30.0, after=BREAK, method="GET", path=key_rx(key))
    else:
        proxy.reset_after(BREAK, method="GET", path=key_rx(key))
    got, err = guarded(lambda: read_all(b, "obj", step=256 * KiB))  # one readinto spans the break
    assert err is None and got == data, err  # right, either way
    gets = resumed_gets(heads, key)
    assert len(gets) == 2 and gets[1].get("if-match") == f'"{etag}"', gets
    # resumed where the bytes stopped, to within the piece the HTTP layer reads at a time
    start = int(gets[1].get("range", "bytes=0-").split("=")[1].split("-")[0])
    assert BREAK - READ_PIECE < start <= BREAK, gets[1]


def test_every_get_body_cut_short_never_gives_wrong_or_short_bytes(s3: MotoServer, proxy: FaultProxy,
                                                                    backend: Callable[..., Backend],
                                                                    prefix: str) -> None:
    b = backend(retries=2)
    key = f"{prefix}/obj"
    data = content(key, 350 * KiB)
    put(s3, key, data)
    proxy.truncate_after(BREAK, method="GET", path=key_rx(key), times=None)
    got, err = guarded(lambda: read_all(b, "obj"))
    assert got == data[:len(got)]
    assert (err is None and got == data) or (err is not None and err.errno == errno.EIO), err
    assert proxy.count("GET", key_rx(key), fault="truncate_after") >= 2


def test_breaks_with_progress_still_count_against_low_level_retries_as_rclone(
        s3: MotoServer, proxy: FaultProxy, backend: Callable[..., Backend], prefix: str) -> None:
    b = backend(retries=3)
    key = f"{prefix}/obj"
    data = content(key, 350 * KiB)  # four bodies of at most BREAK bytes: four opens needed
    put(s3, key, data)
    proxy.truncate_after(BREAK, method="GET", path=key_rx(key), times=None)
    got, err = guarded(lambda: read_all(b, "obj"))
    assert got == data[:len(got)]
    assert proxy.count("GET", key_rx(key)) == 3
    assert err is not None and err.errno == errno.EIO, err


@pytest.mark.parametrize("fault", ["reset_after", "truncate_after", "stall_body"])
def test_more_breaks_than_low_level_retries_is_eio_never_short(s3: MotoServer, proxy: FaultProxy,
                                                               backend: Callable[..., Backend], prefix: str,
                                                               fault: str) -> None:
    b = backend(retries=3, timeout=1.0)
    key = f"{prefix}/obj"
    data = content(key, 300 * KiB)
    put(s3, key, data)
    for nbytes, times in ((BREAK, 1), (0, None)):  # no progress after the first break
        if fault == "stall_body":  # the body stops longer than --timeout
            proxy.stall_body(30.0, after=nbytes, method="GET", path=key_rx(key), times=times)
        else:
            getattr(proxy, fault)(nbytes, method="GET", path=key_rx(key), times=times)
    got, err = guarded(lambda: read_all(b, "obj"))
    assert err is not None and err.errno == errno.EIO, err
    assert 0 < len(got) <= BREAK and got == data[:len(got)]  # what came is right, and it is not the end
    assert proxy.count("GET", key_rx(key)) == 3  # --low-level-retries opens, the first one counted (rclone's)
    assert f"{BUCKET}/{key}" in str(err) and label(proxy) in str(err), err
    no_secret(s3, err)


def test_the_object_replaced_between_break_and_resume_is_eio(s3: MotoServer, proxy: FaultProxy, heads: list[Head],
                                                             backend: Callable[..., Backend], prefix: str) -> None:
    b = backend()
    key = f"{prefix}/obj"
    old, new = content(key, 300 * KiB), content(key + "new", 300 * KiB)
    etag = put(s3, key, old)
    proxy.reset_after(BREAK, method="GET", path=key_rx(key))
    replaced: list[int] = []

    def between(so_far: int) -> None:  # before the break is seen: it comes after BREAK bytes
        if not replaced:
            replaced.append(so_far)
            put(s3, key, new)

    got, err = guarded(lambda: read_all(b, "obj", between=between))
    assert err is not None and err.errno == errno.EIO and "changed while it was read" in str(err), err
    assert got == old[:len(got)]  # old bytes only, never new ones after them
    gets = resumed_gets(heads, key)
    assert len(gets) == 2 and gets[1].get("if-match") == f'"{etag}"'
    assert wait_for(lambda: proxy.count("GET", key_rx(key), status=412) == 1, timeout=5)
    no_secret(s3, err)


# --- 503 SlowDown and 500 InternalError, retried ---------------------------------------------

def _op_put(s3: MotoServer, b: Backend, prefix: str) -> None:
    data = content("put", 200 * KiB)
    write_all(b, "obj", data)
    assert server_bytes(s3, f"{prefix}/obj") == data


def _op_head(s3: MotoServer, b: Backend, prefix: str) -> None:
    put(s3, f"{prefix}/obj", b"x" * 1234)
    assert b.stat("obj").size == 1234


def _op_get(s3: MotoServer, b: Backend, prefix: str) -> None:
    data = content("get", 200 * KiB)
    put(s3, f"{prefix}/obj", data)
    assert read_all(b, "obj") == (data, None)


def _op_list(s3: MotoServer, b: Backend, prefix: str) -> None:
    put(s3, f"{prefix}/obj", b"x" * 10)
    assert [(e.name, e.size) for e in b.list("")] == [("obj", 10)]


def _op_multipart(s3: MotoServer, b: Backend, prefix: str) -> None:
    data = content("multi", 11 * MiB)  # three parts of 5 MiB
    write_all(b, "obj", data)
    assert server_bytes(s3, f"{prefix}/obj") == data
    head = s3.boto3_client().head_object(Bucket=BUCKET, Key=f"{prefix}/obj")
    assert head["ETag"].strip('"').endswith("-3")


OPS: dict[str, tuple[Callable[[MotoServer, Backend, str], None], str, str | None, str | None]] = {
    # name: (operation, method, path (None: the object's), query)
    "PutObject": (_op_put, "PUT", None, "^$"),
    "HeadObject": (_op_head, "HEAD", None, None),
    "GetObject": (_op_get, "GET", None, None),
    "ListObjects": (_op_list, "GET", f"^/{BUCKET}/?$", r"(^|&)prefix="),
    "UploadPart": (_op_multipart, "PUT", None, r"(^|&)partNumber=2&"),
    "CompleteMultipartUpload": (_op_multipart, "POST", None, r"^uploadId="),
}


@pytest.mark.parametrize("kind", ["slowdown", "internal_error"])
@pytest.mark.parametrize("op", list(OPS))
def test_throttling_and_server_errors_are_retried(s3: MotoServer, proxy: FaultProxy, backend: Callable[..., Backend],
                                                  prefix: str, op: str, kind: str) -> None:
    b = backend(retries=4)
    run, method, path, query = OPS[op]
    path = path or key_rx(f"{prefix}/obj")
    times = 1 if kind == "slowdown" else 2  # SlowDown asks for 1 s (Retry-After: 1) each time
    rule = getattr(proxy, kind)(method=method, path=path, query=query, times=times)
    guarded(lambda: run(s3, b, prefix))
    assert rule.fired == times
    want = [503 if kind == "slowdown" else 500] * times + [200]
    assert wait_for(lambda: statuses(proxy, rule) == want, timeout=5), statuses(proxy, rule)


@pytest.mark.parametrize("op", ["PutObject", "UploadPart", "CompleteMultipartUpload"])
def test_an_answer_lost_after_the_server_acted_is_retried(s3: MotoServer, proxy: FaultProxy,
                                                          backend: Callable[..., Backend], prefix: str,
                                                          op: str) -> None:
    b = backend(retries=3)
    run, method, path, query = OPS[op]
    rule = proxy.drop_request(forward=True, method=method, path=path or key_rx(f"{prefix}/obj"), query=query)
    guarded(lambda: run(s3, b, prefix))  # checks the bytes on the server
    assert rule.fired == 1 and len(statuses(proxy, rule)) == 2


# --- failed uploads --------------------------------------------------------------------------

@pytest.mark.parametrize("leave", [False, True])
def test_a_failed_multipart_upload_is_aborted_unless_leave_parts_on_error(s3: MotoServer, proxy: FaultProxy,
                                                                          backend: Callable[..., Backend], prefix: str,
                                                                          leave: bool) -> None:
    b = backend(retries=2, **({"leave_parts_on_error": "true"} if leave else {}))
    key = f"{prefix}/obj"
    rule = proxy.internal_error(method="PUT", path=key_rx(key), query=r"(^|&)partNumber=2&", times=None)
    with pytest.raises(OSError) as e:
        guarded(lambda: write_all(b, "obj", content("mp", 11 * MiB)))
    assert rule.fired == 2  # --low-level-retries attempts of part 2
    assert "UploadPart 2" in str(e.value) and f"{BUCKET}/{key}" in str(e.value) and label(proxy) in str(e.value)
    no_secret(s3, e.value)
    uploads = s3.boto3_client().list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", [])
    assert [u["Key"] for u in uploads] == ([key] if leave else [])
    assert proxy.count("DELETE", key_rx(key)) == (0 if leave else 1)
    assert server_bytes(s3, key) is None


# --- slow responses --------------------------------------------------------------------------

def test_responses_later_than_nothing_but_under_timeout_succeed(s3: MotoServer, proxy: FaultProxy,
                                                                backend: Callable[..., Backend], prefix: str) -> None:
    b = backend(retries=3, timeout=5.0)
    key = f"{prefix}/obj"
    data = content(key, 200 * KiB)
    put(s3, key, data)
    proxy.delay(1.0, method="HEAD", path=key_rx(key))
    proxy.delay(1.0, method="GET", path=key_rx(key))
    assert guarded(lambda: b.stat("obj")).size == len(data)
    assert guarded(lambda: read_all(b, "obj")) == (data, None)
    assert proxy.count("HEAD", key_rx(key)) == 1 and proxy.count("GET", key_rx(key)) == 1  # no retry


def test_a_stall_longer_than_timeout_is_resumed(s3: MotoServer, proxy: FaultProxy, heads: list[Head],
                                                backend: Callable[..., Backend], prefix: str) -> None:
    b = backend(retries=3, timeout=1.0)
    key = f"{prefix}/obj"
    data = content(key, 300 * KiB)
    etag = put(s3, key, data)
    proxy.stall_body(30.0, after=BREAK, method="GET", path=key_rx(key))
    proxy.delay(30.0, method="HEAD", path=key_rx(key))  # a head that never comes in time: asked again
    assert guarded(lambda: b.stat("obj")).size == len(data)
    assert proxy.count("HEAD", key_rx(key)) == 2
    got, err = guarded(lambda: read_all(b, "obj"))
    assert err is None and got == data, err
    assert check_resume(heads, key, etag) == 2


def test_a_head_always_too_late_fails_naming_the_key(s3: MotoServer, proxy: FaultProxy,
                                                     backend: Callable[..., Backend], prefix: str) -> None:
    b = backend(retries=2, timeout=1.0)
    key = f"{prefix}/obj"
    put(s3, key, b"abc")
    proxy.delay(30.0, method="HEAD", path=key_rx(key), times=None)
    with pytest.raises(OSError) as e:
        guarded(lambda: b.stat("obj"))
    assert e.value.errno in (errno.ETIMEDOUT, errno.EIO), e.value
    assert proxy.count("HEAD", key_rx(key)) == 2
    assert key in str(e.value) and label(proxy) in str(e.value), e.value
    no_secret(s3, e.value)


@pytest.mark.parametrize("code,kind", [(403, "AccessDenied"), (500, "InternalError"), (404, "NoSuchKey")])
def test_errors_name_the_remote_and_key_never_the_secret(s3: MotoServer, proxy: FaultProxy,
                                                         backend: Callable[..., Backend], prefix: str,
                                                         code: int, kind: str) -> None:
    b = backend(retries=2)
    key = f"{prefix}/obj"
    put(s3, key, b"abc")
    for method in ("GET", "HEAD", "PUT"):
        proxy.status(code, faultproxy.s3_error_xml(kind, f"injected {kind}", f"/{BUCKET}/{key}"),
                     method=method, path=key_rx(key), times=None)
    errors = []
    for action in (lambda: b.stat("obj"), lambda: read_all(b, "obj"), lambda: write_all(b, "obj", b"new")):
        with pytest.raises(OSError) as e:
            got = guarded(action)
            if isinstance(got, tuple) and got[1] is not None:
                raise got[1]
        errors.append(e.value)
    for i, err in enumerate(errors):
        if isinstance(err, FileNotFoundError) and "HTTP" not in str(err):  # stat: HEAD 404, and nothing below
            assert "'obj'" in str(err), err
        else:
            assert f"{BUCKET}/{key}" in str(err) and label(proxy) in str(err) and str(code) in str(err), err
        want = {403: errno.EACCES, 404: errno.ENOENT, 500: errno.EIO}[code]
        if i == 2 and code == 404:
            want = errno.EIO  # an upload's 404 (NoSuchBucket) fails its close with EIO, as rclone's
        assert err.errno == want, err
        no_secret(s3, err, repr(err))
    assert server_bytes(s3, key) == b"abc"


# --- through the plugin's FUSE mount ---------------------------------------------------------

def vol_opts(s3: MotoServer, proxy: FaultProxy, path: str, **extra: str) -> dict[str, str]:
    return {"type": "s3", "s3-provider": "Other", "s3-endpoint": proxy.endpoint, "s3-access-key-id": s3.access_key_id,
            "s3-secret-access-key": s3.secret_access_key, "s3-upload-cutoff": "6Mi", "s3-chunk-size": "5Mi",
            "path": f"{BUCKET}/{path}", **extra}


@contextlib.contextmanager
def mounted(plugin: Plugin, name: str, opts: dict[str, str]) -> Iterator[Path]:
    plugin.client.ok("VolumeDriver.Create", {"Name": name, "Opts": opts})
    mp = Path(plugin.client.ok("VolumeDriver.Mount", {"Name": name, "ID": "t"})["Mountpoint"])
    try:
        yield mp
    finally:  # in the cache modes Unmount waits for the uploads
        guarded(lambda: plugin.client.ok("VolumeDriver.Unmount", {"Name": name, "ID": "t"}))


def read_file(path: Path) -> tuple[bytes, OSError | None]:
    got = bytearray()
    try:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(64 * KiB):
                got += chunk
    except OSError as e:
        return bytes(got), e
    return bytes(got), None


FLAGS = ["--low-level-retries", "3", "--timeout", "1s", "--contimeout", "5s"]


@pytest.mark.parametrize("fault", ["reset_after", "truncate_after", "stall_body"])
def test_mount_read_resumes_after_a_broken_body(plugin_factory: Callable[..., Plugin], s3: MotoServer,
                                                proxy: FaultProxy, heads: list[Head], fault: str) -> None:
    plugin = plugin_factory(FLAGS)
    key = f"mnt-read-{fault}/obj.bin"
    data = content(key, 2 * MiB + 3)
    etag = put(s3, key, data)
    if fault == "stall_body":
        proxy.stall_body(30.0, after=BREAK, method="GET", path=key_rx(key))
    else:
        getattr(proxy, fault)(BREAK, method="GET", path=key_rx(key))
    with mounted(plugin, f"r{fault[:5]}", vol_opts(s3, proxy, f"mnt-read-{fault}")) as mp:
        got, err = guarded(lambda: read_file(mp / "obj.bin"))
    assert err is None and len(got) == len(data) and md5(got) == md5(data), err
    gets = resumed_gets(heads, key)
    assert len(gets) >= 2 and proxy.count("GET", key_rx(key), fault=fault) == 1
    first = gets[0].get("range", "")
    assert re.fullmatch(r"bytes=0-\d+", first) and "if-match" not in gets[0], gets[0]
    for h in gets[1:]:  # the same range, from where it got to, of the same version
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", h.get("range", ""))
        assert m and m[2] == first.rpartition("-")[2] and h.get("if-match") == f'"{etag}"', h
    no_secret(s3, plugin.log_text())


def test_mount_read_with_too_many_breaks_is_eio(plugin_factory: Callable[..., Plugin], s3: MotoServer,
                                                proxy: FaultProxy) -> None:
    plugin = plugin_factory(FLAGS)
    key = "mnt-eio/obj.bin"
    data = content(key, 2 * MiB)
    put(s3, key, data)
    proxy.truncate_after(BREAK, method="GET", path=key_rx(key), times=1)
    proxy.truncate_after(0, method="GET", path=key_rx(key), times=None)
    with mounted(plugin, "eio", vol_opts(s3, proxy, "mnt-eio")) as mp:
        got, err = guarded(lambda: read_file(mp / "obj.bin"))
    assert err is not None and err.errno == errno.EIO, err
    assert len(got) < len(data) and got == data[:len(got)]
    assert proxy.count("GET", key_rx(key)) == 3  # --low-level-retries opens
    no_secret(s3, plugin.log_text())


def test_mount_read_failure_is_logged_naming_the_object(plugin_factory: Callable[..., Plugin], s3: MotoServer,
                                                        proxy: FaultProxy) -> None:
    plugin = plugin_factory(FLAGS)
    key = "mnt-eio-log/obj.bin"
    put(s3, key, content(key, 300 * KiB))
    proxy.truncate_after(0, method="GET", path=key_rx(key), times=None)
    with mounted(plugin, "eiolog", vol_opts(s3, proxy, "mnt-eio-log")) as mp:
        got, err = guarded(lambda: read_file(mp / "obj.bin"))
    assert err is not None and err.errno == errno.EIO and got == b"", err
    assert wait_for(lambda: "obj.bin" in plugin.log_text() and "ERROR" in plugin.log_text(), timeout=5), \
        plugin.log_text()


def test_mount_read_of_an_object_replaced_mid_read_is_eio(plugin_factory: Callable[..., Plugin], s3: MotoServer,
                                                          proxy: FaultProxy) -> None:
    plugin = plugin_factory(["--low-level-retries", "3", "--timeout", "2s"])
    key = "mnt-changed/obj.bin"
    old, new = content(key, 2 * MiB), content(key + "new", 2 * MiB)
    put(s3, key, old)
    proxy.stall_body(30.0, after=BREAK, method="GET", path=key_rx(key))

    def replace_during_the_stall() -> None:  # the old head (and BREAK bytes) sent: now replace it
        assert wait_for(lambda: proxy.count("GET", key_rx(key), fault="stall_body", status=200)
                        + proxy.count("GET", key_rx(key), fault="stall_body", status=206))
        put(s3, key, new)
    with mounted(plugin, "chg", vol_opts(s3, proxy, "mnt-changed")) as mp:
        t = threading.Thread(target=replace_during_the_stall, daemon=True)
        t.start()
        got, err = guarded(lambda: read_file(mp / "obj.bin"))
        t.join(GUARD)
    assert err is not None and err.errno == errno.EIO, (err, len(got))
    assert got == old[:len(got)]  # never new bytes after old ones
    assert wait_for(lambda: proxy.count("GET", key_rx(key), status=412) >= 1, timeout=5)
    no_secret(s3, plugin.log_text())


@pytest.mark.parametrize("mode,size", [("writes", 300 * KiB), ("full", 7 * MiB)])
def test_mount_upload_failing_for_a_while_stays_dirty_then_is_uploaded(
        plugin_factory: Callable[..., Plugin], s3: MotoServer, proxy: FaultProxy, mode: str, size: int) -> None:
    plugin = plugin_factory(["--low-level-retries", "2"])
    d = f"mnt-up-{mode}"
    key = f"{d}/up.bin"
    data = content(key, size)
    # every PUT of the object (PutObject, or UploadPart of a multipart upload) fails
    rule = proxy.internal_error(method="PUT", path=key_rx(key), times=None)
    with mounted(plugin, f"up{mode}", vol_opts(s3, proxy, d, **{"vfs-cache-mode": mode,
                                                                   "vfs-write-back": "0.3s"})) as mp:
        guarded(lambda: (mp / "up.bin").write_bytes(data))  # the application sees no error
        assert wait_for(lambda: re.search(r"upload of \S*up\.bin failed", plugin.log_text())), plugin.log_text()
        assert rule.fired >= 2  # --low-level-retries attempts, then the upload failed
        assert server_bytes(s3, key) is None
        assert s3.boto3_client().list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", []) == []
        assert md5(guarded(lambda: (mp / "up.bin").read_bytes())) == md5(data)  # the cache keeps it
        proxy.remove(rule)  # the faults stop: the write-back's retry sends it
        assert wait_for(lambda: server_bytes(s3, key) == data), "never uploaded after the faults stopped"
    log = plugin.log_text()
    assert re.search(r"uploaded \S*up\.bin", log), log
    assert server_bytes(s3, key) == data
    no_secret(s3, log)
