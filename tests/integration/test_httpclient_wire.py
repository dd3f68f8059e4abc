"""HttpClient against real loopback servers: keep-alive, retries, broken bodies, headers."""

from __future__ import annotations

import errno
import socket
import threading

import pytest

from pyclone_docker.lib.httpclient import BodyReader, HttpClient, HttpError
from tests.integration.test_httpclient_support import ctx, reply, reset, serve


def _ok(h, seen, n):
    reply(h, 200, b"hello " + str(n).encode())


def test_sequential_requests_reuse_one_connection():
    with serve(_ok) as srv:
        client = HttpClient(ctx(), "test")
        for i in (1, 2, 3):
            resp = client.request("GET", srv.url + f"/a?i={i}")
            assert resp.status == 200 and resp.data == b"hello %d" % i
        stream = client.request("GET", srv.url + "/s", stream=True)
        body = BodyReader(client, stream)
        buf = bytearray(64)
        n = body.readinto(memoryview(buf))
        assert buf[:n] == b"hello 4"
        assert body.readinto(memoryview(buf)) == 0
        body.close()
        body.close()  # idempotent
        assert client.request("GET", srv.url + "/b").status == 200
        assert srv.stats.connections == 1


def test_half_read_stream_is_not_returned_to_the_pool():
    big = b"x" * 200_000

    def handler(h, seen, n):
        reply(h, 200, big)

    with serve(handler) as srv:
        client = HttpClient(ctx(), "test")
        body = BodyReader(client, client.request("GET", srv.url + "/big", stream=True))
        assert body.readinto(memoryview(bytearray(10))) == 10
        body.close()
        resp = client.request("GET", srv.url + "/again")
        assert resp.data == big  # not the rest of the first body
        assert srv.stats.connections == 2


def test_503_with_retry_after_then_200_is_retried():
    def handler(h, seen, n):
        if n == 1:
            reply(h, 503, b"slow down", {"Retry-After": "1"})
        else:
            reply(h, 200, b"done")

    with serve(handler) as srv:
        client = HttpClient(ctx(), "test")
        resp = client.request("PUT", srv.url + "/k", body=b"payload")
        assert resp.status == 200 and resp.data == b"done"
        assert [r.body for r in srv.stats.requests] == [b"payload", b"payload"]
        assert srv.stats.connections == 1  # the 503's connection was drained and kept


def test_500_beyond_low_level_retries_is_returned():
    def handler(h, seen, n):
        reply(h, 500, b"<Error/>")

    with serve(handler) as srv:
        client = HttpClient(ctx(low_level_retries=4), "test")
        resp = client.request("GET", srv.url + "/k")
        assert resp.status == 500 and resp.data == b"<Error/>"
        assert len(srv.stats.requests) == 4
        # ok= statuses come back at once, and retry=False means one attempt
        assert client.request("GET", srv.url + "/k", ok=(500,)).status == 500
        assert client.request("GET", srv.url + "/k", retry=False).status == 500
        assert len(srv.stats.requests) == 6


def test_retry_statuses_is_a_constructor_keyword():
    def handler(h, seen, n):
        reply(h, 423 if n == 1 else 200)

    with serve(handler) as srv:
        assert HttpClient(ctx(), "plain").request("GET", srv.url).status == 423
        assert HttpClient(ctx(), "webdav", retry_statuses={423, 500}).request("GET", srv.url).status == 200


def test_reset_mid_body_on_a_preloaded_request_is_retried():
    def handler(h, seen, n):
        if n == 1:
            h.send_response(200)
            h.send_header("Content-Length", "100000")
            h.end_headers()
            h.wfile.write(b"y" * 1000)
            reset(h)
        else:
            reply(h, 200, b"z" * 100000)

    with serve(handler) as srv:
        resp = HttpClient(ctx(), "test").request("GET", srv.url + "/k")
        assert resp.data == b"z" * 100000
        assert len(srv.stats.requests) == 2


def test_short_preloaded_body_is_retried_never_returned():
    def handler(h, seen, n):
        h.send_response(200)
        h.send_header("Content-Length", "50")
        h.end_headers()
        h.wfile.write(b"short")
        h.wfile.flush()
        h.close_connection = True  # a clean FIN after 5 of 50 bytes

    with serve(handler) as srv:
        with pytest.raises(HttpError) as err:
            HttpClient(ctx(low_level_retries=2), "s3 'b'").request("GET", srv.url + "/k?sig=1")
        assert err.value.errno == errno.EIO
        assert "Content-Length" in str(err.value)
        assert len(srv.stats.requests) == 2


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_streamed_body_cut_short_raises_from_body_reader(how):
    def handler(h, seen, n):
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        h.wfile.write(b"q" * 30000)
        if how == "reset":
            reset(h)
        else:
            h.wfile.flush()
            h.close_connection = True

    with serve(handler) as srv:
        client = HttpClient(ctx(), "s3 'b'")
        body = BodyReader(client, client.request("GET", srv.url + "/obj?X-Amz-Signature=s3cret", stream=True))
        buf = memoryview(bytearray(8192))
        with pytest.raises(HttpError) as err:
            while body.readinto(buf):
                pass
        assert err.value.errno == errno.EIO
        assert body.read_bytes <= 30000
        assert "s3cret" not in str(err.value) and "/obj" in str(err.value)
        body.close()


def test_streamed_chunked_body_cut_short_raises():
    def handler(h, seen, n):
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.write(b"1000\r\n" + b"c" * 100)
        reset(h)

    with serve(handler) as srv:
        client = HttpClient(ctx(), "test")
        body = BodyReader(client, client.request("GET", srv.url + "/c", stream=True))
        with pytest.raises(HttpError):
            while body.readinto(memoryview(bytearray(4096))):
                pass
        body.close()


def test_read_timeout_on_a_stream_raises():
    gate = threading.Event()

    def handler(h, seen, n):
        h.send_response(200)
        h.send_header("Content-Length", "10")
        h.end_headers()
        h.wfile.write(b"12345")
        h.wfile.flush()
        gate.wait(10)

    with serve(handler) as srv:
        client = HttpClient(ctx(timeout=0.5), "test")
        body = BodyReader(client, client.request("GET", srv.url + "/t", stream=True))
        buf = memoryview(bytearray(10))
        assert body.readinto(buf[:5]) == 5
        with pytest.raises(HttpError) as err:
            body.readinto(buf)  # 5 more never come
        assert "timed out" in str(err.value)
        body.close()
        gate.set()


def test_connection_refused_names_the_url_without_query():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    client = HttpClient(ctx(low_level_retries=2), "s3 'bucket' at http://127.0.0.1")
    with pytest.raises(HttpError) as err:
        client.request("GET", f"http://127.0.0.1:{port}/bucket/key?X-Amz-Signature=deadbeef&x=1",
                       headers={"Authorization": "AWS4 secretvalue"})
    msg = str(err.value)
    assert err.value.errno == errno.EIO
    assert f"GET http://127.0.0.1:{port}/bucket/key:" in msg
    assert "s3 'bucket' at http://127.0.0.1" in msg
    assert "deadbeef" not in msg and "secretvalue" not in msg and "?" not in msg
    assert "refused" in msg.lower()


def test_prepare_is_called_before_every_attempt_with_a_fresh_copy():
    calls = []

    def prepare(method, url, headers):
        calls.append(dict(headers))
        headers["X-Attempt"] = str(len(calls))
        headers["Authorization"] = f"sig-{len(calls)}"

    def handler(h, seen, n):
        reply(h, 503 if n < 3 else 200)

    with serve(handler) as srv:
        client = HttpClient(ctx(), "test")
        resp = client.request("POST", srv.url + "/p", headers={"X-Caller": "1"}, prepare=prepare)
        assert resp.status == 200
        assert len(calls) == 3
        assert all("X-Attempt" not in c and c["X-Caller"] == "1" for c in calls)  # no leftovers
        assert [r.headers["Authorization"] for r in srv.stats.requests] == ["sig-1", "sig-2", "sig-3"]


def test_headers_flags_and_user_agent():
    with serve(_ok) as srv:
        c = ctx(header=(("X-All", "a, b"), ("X-Over", "flag")), header_upload=(("X-Up", "u"),),
                header_download=(("X-Down", "d"),), user_agent="agent/1")
        client = HttpClient(c, "test")
        client.request("PUT", srv.url + "/u", body=b"1", direction="upload", headers={"X-Over": "caller"})
        client.request("GET", srv.url + "/d", direction="download", headers={"user-agent": "mine"})
        client.request("GET", srv.url + "/n")
        up, down, neither = (r.headers for r in srv.stats.requests)
        assert up["X-All"] == "a, b" and up["X-Up"] == "u" and "X-Down" not in up
        assert up["X-Over"] == "caller" and up["User-Agent"] == "agent/1"
        assert down["X-Down"] == "d" and "X-Up" not in down and down["User-Agent"] == "mine"
        assert "X-Up" not in neither and "X-Down" not in neither and neither["X-All"] == "a, b"


def test_memoryview_body_is_sent_whole_each_try():
    data = bytearray(b"0123456789" * 1000)

    def handler(h, seen, n):
        reply(h, 500 if n == 1 else 200)

    with serve(handler) as srv:
        resp = HttpClient(ctx(), "test").request("PUT", srv.url + "/m", body=memoryview(data)[10:])
        assert resp.status == 200
        assert [len(r.body) for r in srv.stats.requests] == [9990, 9990]
        assert srv.stats.requests[1].body == bytes(data[10:])
