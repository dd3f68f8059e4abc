"""tests/support/faultproxy.py's FaultProxy between a real urllib3/http.client/boto3 client and a
real moto S3 server (and a stdlib server for the response framings moto never sends): every
fault kind as the client sees it, rule matching, counting, keep-alive, Expect: 100-continue."""

from __future__ import annotations

import http.client
import http.server
import os
import socket
import threading
from collections.abc import Iterator

import pytest
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from tests.support.faultproxy import FaultProxy, s3_error_xml
from tests.support.moto import MotoServer, moto_server, virtual_hosts_unavailable

BUCKET = "faultproxy"
BIG = os.urandom(256 * 1024)


@pytest.fixture(scope="session", autouse=True)
def _require_fuse() -> None:
    """Overrides the integration conftest's FUSE check: nothing here mounts."""


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoServer]:
    for srv in moto_server():
        srv.make_bucket(BUCKET)
        srv.boto3_client().put_object(Bucket=BUCKET, Key="big", Body=BIG, ACL="public-read")
        yield srv


@pytest.fixture()
def proxy(s3: MotoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", s3.port, seed=1) as p:
        yield p


def pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=30, read=60))


def stream_until_error(resp: urllib3.BaseHTTPResponse) -> tuple[bytes, BaseException | None]:
    got = bytearray()
    try:
        for chunk in resp.stream(4096):
            got += chunk
    except Exception as e:
        return bytes(got), e
    return bytes(got), None


def exists(s3: MotoServer, key: str) -> bool:
    try:
        s3.boto3_client().head_object(Bucket=BUCKET, Key=key)
    except Exception as e:
        assert "404" in str(e) or "Not Found" in str(e), e
        return False
    return True


def test_passthrough_and_keep_alive(proxy: FaultProxy) -> None:
    p = pool()
    for _ in range(3):
        r = p.request("GET", f"{proxy.endpoint}/{BUCKET}/big")
        assert r.status == 200 and r.data == BIG
    r = p.request("PUT", f"{proxy.endpoint}/{BUCKET}/small", body=b"abc")
    assert r.status == 200
    # moto closes after every answer; the client's connection stays
    assert proxy.connections_accepted == 1
    assert proxy.count("GET", rf"^/{BUCKET}/big$") == 3 and proxy.count("PUT") == 1 and proxy.count() == 4
    assert proxy.count(status=200) == 4 and proxy.faults_fired == []


def test_reset_after(proxy: FaultProxy) -> None:
    rule = proxy.reset_after(10_000, method="GET", path=r"/big$")
    r = pool().request("GET", f"{proxy.endpoint}/{BUCKET}/big", preload_content=False)
    assert r.status == 200 and r.headers["Content-Length"] == str(len(BIG))
    got, err = stream_until_error(r)
    assert isinstance(err, ProtocolError) and isinstance(err.args[1], ConnectionResetError), err
    assert len(got) <= 10_000 and BIG.startswith(got)
    assert rule.fired == 1 and rule.remaining == 0
    assert proxy.faults_fired == [("reset_after", "GET", f"/{BUCKET}/big")]
    r = pool().request("GET", f"{proxy.endpoint}/{BUCKET}/big")  # once only
    assert r.status == 200 and r.data == BIG


def test_truncate_after(proxy: FaultProxy) -> None:
    proxy.truncate_after(12_345, method="GET")
    r = pool().request("GET", f"{proxy.endpoint}/{BUCKET}/big", preload_content=False)
    got, err = stream_until_error(r)
    # a clean close: every byte sent arrives (urllib3 keeps back the last partial chunk it read)
    assert isinstance(err, ProtocolError) and "IncompleteRead(12345 bytes read" in str(err), err
    assert BIG.startswith(got)


def test_status_slowdown_then_retried(s3: MotoServer, proxy: FaultProxy) -> None:
    rule = proxy.slowdown(method="PUT", path=r"/throttled$")
    r = pool().request("PUT", f"{proxy.endpoint}/{BUCKET}/throttled", body=b"data")
    assert r.status == 503 and r.headers["Retry-After"] == "1"
    assert r.headers["Content-Type"] == "application/xml" and b"<Code>SlowDown</Code>" in r.data
    assert not exists(s3, "throttled")  # not passed on
    assert rule.remaining == 0

    # a retrying client: the 503 is answered, the request is sent again and goes through
    import boto3
    from botocore.config import Config

    proxy.slowdown(method="PUT", path=r"/throttled$")
    proxy.forget()
    client = boto3.session.Session().client(
        "s3", endpoint_url=proxy.endpoint, region_name=s3.region, aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}))
    client.put_object(Bucket=BUCKET, Key="throttled", Body=b"data")
    assert proxy.count("PUT", r"/throttled$") == 2
    assert proxy.count("PUT", r"/throttled$", status=503) == 1 and proxy.count(status=200) == 1
    assert s3.boto3_client().get_object(Bucket=BUCKET, Key="throttled")["Body"].read() == b"data"


def test_status_forwarded_and_custom(s3: MotoServer, proxy: FaultProxy) -> None:
    proxy.internal_error(method="PUT", forward=True)  # the write happens, the answer is a 500
    r = pool().request("PUT", f"{proxy.endpoint}/{BUCKET}/done-anyway", body=b"x")
    assert r.status == 500 and b"<Code>InternalError</Code>" in r.data
    assert exists(s3, "done-anyway")
    proxy.status(418, b"teapot", {"X-Test": "yes"}, method="HEAD")
    r = pool().request("HEAD", f"{proxy.endpoint}/{BUCKET}/big")
    assert r.status == 418 and r.headers["X-Test"] == "yes" and r.headers["Content-Length"] == "6"
    assert r.data == b""  # HEAD: no body
    assert s3_error_xml("A&B", "<m>").count(b"&amp;") == 1


def test_delay(s3: MotoServer, proxy: FaultProxy) -> None:
    """The response is held: a client that waits less gives up; the request itself went on."""
    proxy.delay(3.0, method="PUT")
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    conn.request("PUT", f"/{BUCKET}/slow", body=b"late", headers={"x-amz-acl": "public-read"})
    assert conn.sock is not None
    conn.sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        conn.getresponse()
    conn.close()
    assert exists(s3, "slow")
    # a client that waits long enough gets the answer
    proxy.delay(1.0, method="GET")
    r = pool().request("GET", f"{proxy.endpoint}/{BUCKET}/slow")
    assert r.status == 200 and r.data == b"late"
    assert proxy.count(fault="delay") == 2


def test_stall_body(proxy: FaultProxy) -> None:
    proxy.stall_body(3.0, after=1000, method="GET")
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    try:
        conn.request("GET", f"/{BUCKET}/big")
        resp = conn.getresponse()  # the head is not held back
        assert resp.status == 200
        assert resp.read(1000) == BIG[:1000]
        assert conn.sock is not None
        conn.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            resp.read(1)
    finally:
        conn.close()
    proxy.stall_body(0.5, after=100, method="GET")
    r = pool().request("GET", f"{proxy.endpoint}/{BUCKET}/big")  # then the rest comes
    assert r.status == 200 and r.data == BIG


def test_drop_request(s3: MotoServer, proxy: FaultProxy) -> None:
    proxy.drop_request(method="PUT", path="/dropped$")
    with pytest.raises(ProtocolError, match="without response"):
        pool().request("PUT", f"{proxy.endpoint}/{BUCKET}/dropped", body=b"x")
    assert not exists(s3, "dropped")
    proxy.drop_request(method="PUT", path="/lost-answer$", forward=True)
    with pytest.raises(ProtocolError):
        pool().request("PUT", f"{proxy.endpoint}/{BUCKET}/lost-answer", body=b"x")
    assert exists(s3, "lost-answer")
    proxy.drop_request(method="GET", reset=True)
    with pytest.raises(ProtocolError) as info:
        pool().request("GET", f"{proxy.endpoint}/{BUCKET}/big")
    assert isinstance(info.value.args[1], ConnectionResetError)
    assert [f[0] for f in proxy.faults_fired] == ["drop_request"] * 3
    assert proxy.count(status=None) == 3  # none of them was answered


def test_rules_times_probability_matching(proxy: FaultProxy) -> None:
    p = pool()
    url = f"{proxy.endpoint}/{BUCKET}/big"
    never = proxy.slowdown(method="PUT", times=None)  # another method: never matches a GET
    by_query = proxy.status(500, query=r"(^|&)versionId=", times=None)
    three = proxy.status(503, method="GET", path=r"/big$", times=3)
    assert [p.request("GET", url).status for _ in range(5)] == [503, 503, 503, 200, 200]
    assert three.fired == 3 and three.remaining == 0 and never.matched == 0
    assert p.request("GET", url + "?versionId=1").status == 500 and by_query.fired == 1
    proxy.clear()
    some = proxy.status(503, method="GET", times=None, probability=0.5)
    statuses = [p.request("GET", url).status for _ in range(40)]
    assert some.matched == 40 and 0 < some.fired < 40
    assert statuses.count(503) == some.fired and statuses.count(200) == 40 - some.fired
    proxy.remove(some)
    assert p.request("GET", url).status == 200


def test_expect_continue(s3: MotoServer, proxy: FaultProxy) -> None:
    """The proxy answers 100-continue itself; an injected answer comes before the body."""
    body = b"z" * 5000

    def head(path: str) -> bytes:
        return (f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\nContent-Length: {len(body)}\r\n"
                "Expect: 100-continue\r\n\r\n").encode()

    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        f = sock.makefile("rb")
        sock.sendall(head(f"/{BUCKET}/expect"))
        assert f.readline().startswith(b"HTTP/1.1 100 ")
        assert f.readline() == b"\r\n"
        sock.sendall(body)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        assert resp.status == 200
        resp.read()
    assert s3.boto3_client().head_object(Bucket=BUCKET, Key="expect")["ContentLength"] == len(body)
    proxy.slowdown(method="PUT")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        sock.sendall(head(f"/{BUCKET}/expect-refused"))
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        assert resp.status == 503 and resp.getheader("Connection") == "close"
    assert not exists(s3, "expect-refused")


def test_chunked_request_body(s3: MotoServer, proxy: FaultProxy) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    try:
        conn.request("PUT", f"/{BUCKET}/chunked", body=iter([b"a" * 3000, b"b" * 7000]), encode_chunked=True)
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    data = s3.boto3_client().get_object(Bucket=BUCKET, Key="chunked")["Body"].read()
    assert data == b"a" * 3000 + b"b" * 7000


def test_virtual_host_through_proxy(s3: MotoServer, proxy: FaultProxy) -> None:
    reason = virtual_hosts_unavailable()
    if reason:
        pytest.skip(reason)
    url = s3.virtual_host_endpoint(BUCKET, port=proxy.port) + "/big"
    r = pool().request("GET", url)
    assert r.status == 200 and r.data == BIG  # the Host header went through unchanged


class _Framings(http.server.BaseHTTPRequestHandler):
    """Responses moto does not send: chunked, and read-to-close."""
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the close")
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the proxy resets its side of a truncated response


def test_response_framings() -> None:
    server = _QuietServer(("127.0.0.1", 0), _Framings)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        with FaultProxy("127.0.0.1", server.server_address[1]) as px:
            p = pool()
            r = p.request("GET", f"{px.endpoint}/chunked")
            assert r.status == 200 and r.data == b"hello chunked world"
            r = p.request("GET", f"{px.endpoint}/close")
            assert r.status == 200 and r.data == b"until the close"
            px.truncate_after(9, path="^/chunked$")  # "6\r\nhello " is 9 bytes on the wire
            conn = http.client.HTTPConnection("127.0.0.1", px.port, timeout=30)
            try:
                conn.request("GET", "/chunked")
                resp = conn.getresponse()
                with pytest.raises(http.client.IncompleteRead) as info:
                    resp.read()
                assert info.value.partial == b"hello "
            finally:
                conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_close_stops_everything(s3: MotoServer) -> None:
    px = FaultProxy("127.0.0.1", s3.port)
    px.stall_body(60, method="GET")
    conn = http.client.HTTPConnection("127.0.0.1", px.port, timeout=30)
    conn.request("GET", f"/{BUCKET}/big")
    resp = conn.getresponse()
    px.close()  # a stalled connection does not hold it up
    with pytest.raises((ProtocolError, ConnectionError, http.client.IncompleteRead, ReadTimeoutError)):
        resp.read()
    conn.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", px.port), timeout=5)
