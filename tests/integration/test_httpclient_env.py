"""HttpClient with its environment: proxies, --dump in the log, --tpslimit and --bwlimit."""

from __future__ import annotations

import base64
import logging
import time

import pytest

from pyclone_docker.flags import ALL_OPTIONS
from pyclone_docker.lib.httpclient import BodyReader, HttpClient, HttpError
from tests.integration.test_httpclient_support import ForwardProxy, ctx, reply, serve


def _ok(h, seen, n):
    reply(h, 200, b"origin says hi", {"Set-Cookie": "session=abc123", "X-Plain": "visible"})


# a name only the proxy can reach: it sends everything to the origin server
FAKE_HOST = "origin.pyclone.invalid"


def test_http_proxy_is_used_and_no_proxy_bypasses_it():
    with serve(_ok) as srv:
        fwd = ForwardProxy(("127.0.0.1", srv.port))
        try:
            url = f"http://{FAKE_HOST}:{srv.port}/bucket/key?a=1"
            env = {"HTTP_PROXY": f"http://user:p%40ss@127.0.0.1:{fwd.port}"}
            resp = HttpClient(ctx(), "test", env=env).request("GET", url)
            assert resp.status == 200 and resp.data == b"origin says hi"
            assert fwd.forwarded == [url]
            assert fwd.proxy_auth == ["Basic " + base64.b64encode(b"user:p@ss").decode()]
            # lower case works too; HTTPS_PROXY is not for http:// URLs
            HttpClient(ctx(), "test", env={"http_proxy": f"127.0.0.1:{fwd.port}"}).request("GET", url)
            assert len(fwd.forwarded) == 2
            with pytest.raises(HttpError):
                HttpClient(ctx(low_level_retries=1), "test", env={"HTTPS_PROXY": fwd.url}).request("GET", url)
            # NO_PROXY: straight to the name, which does not resolve
            for no_proxy in (FAKE_HOST, "pyclone.invalid", ".pyclone.invalid", "*", f"x.test, {FAKE_HOST}:{srv.port}"):
                with pytest.raises(HttpError) as err:
                    HttpClient(ctx(low_level_retries=1), "test",
                               env={**env, "NO_PROXY": no_proxy}).request("GET", url)
                assert "p%40ss" not in str(err.value) and "p@ss" not in str(err.value)
            assert len(fwd.forwarded) == 2
            # a NO_PROXY entry for another port does not bypass
            HttpClient(ctx(), "test", env={**env, "no_proxy": f"{FAKE_HOST}:1"}).request("GET", url)
            assert len(fwd.forwarded) == 3
            # loopback is never proxied
            HttpClient(ctx(), "test", env=env).request("GET", srv.url + "/direct")
            assert len(fwd.forwarded) == 3
        finally:
            fwd.close()


def test_proxy_credentials_are_not_logged(caplog):
    with serve(_ok) as srv:
        fwd = ForwardProxy(("127.0.0.1", srv.port))
        try:
            caplog.set_level(logging.DEBUG, logger="pyclone")
            env = {"HTTP_PROXY": f"http://agent:hunter2@127.0.0.1:{fwd.port}"}
            client = HttpClient(ctx(dump=frozenset({"headers"})), "test", env=env)
            client.request("GET", f"http://{FAKE_HOST}:{srv.port}/")
            assert "hunter2" not in caplog.text and "agent:" not in caplog.text
            assert repr(client._managers) and "hunter2" not in repr(client._managers)
        finally:
            fwd.close()


def test_dump_headers_redacts_auth(caplog):
    caplog.set_level(logging.DEBUG, logger="pyclone.http")
    with serve(_ok) as srv:
        client = HttpClient(ctx(dump=frozenset({"headers", "auth"})), "test")
        client.request("GET", srv.url + "/bucket/key?X-Amz-Signature=abcdef&X-Amz-Credential=AKIA1&list-type=2",
                       headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=f00d",
                                "X-Amz-Security-Token": "tok3n", "X-Custom-Secret-Key": "hidden", "X-Fine": "shown"})
    text = caplog.text
    assert ">" * 60 in text and "<" * 60 in text
    assert "HTTP REQUEST (req " in text and "HTTP RESPONSE (req " in text
    assert "GET /bucket/key?X-Amz-Signature=XXXX&X-Amz-Credential=XXXX&list-type=2 HTTP/1.1" in text
    assert "Authorization: XXXX" in text and "X-Amz-Security-Token: XXXX" in text
    assert "X-Custom-Secret-Key: XXXX" in text and "Set-Cookie: XXXX" in text
    assert "X-Fine: shown" in text and "X-Plain: visible" in text and "HTTP/1.1 200 OK" in text
    for secret in ("f00d", "AKIA", "abcdef", "tok3n", "hidden", "abc123"):
        assert secret not in text, secret
    assert "origin says hi" not in text  # headers only


def test_dump_bodies_of_a_stream_is_capped(caplog):
    caplog.set_level(logging.DEBUG, logger="pyclone.http")
    big = b"A" * 70000 + b"TAIL-MARK" + b"B" * 200_000

    def handler(h, seen, n):
        reply(h, 200, big)

    with serve(handler) as srv:
        client = HttpClient(ctx(dump=frozenset({"bodies"})), "test")
        client.request("PUT", srv.url + "/up", body=b"request-body-here")
        body = BodyReader(client, client.request("GET", srv.url + "/big", stream=True))
        buf = memoryview(bytearray(1 << 20))
        got = 0
        while n := body.readinto(buf):
            got += n
        body.close()
    assert got == len(big)
    assert "request-body-here" in caplog.text
    assert "HTTP RESPONSE BODY (req " in caplog.text and "TAIL-MARK" not in caplog.text
    assert max(len(r.getMessage()) for r in caplog.records) < 70000


def test_dump_errors_only_logs_failed_transactions(caplog):
    caplog.set_level(logging.DEBUG, logger="pyclone.http")

    def handler(h, seen, n):
        reply(h, 503 if seen.path == "/bad" else 200)

    with serve(handler) as srv:
        client = HttpClient(ctx(dump=frozenset({"errors"}), low_level_retries=1), "test")
        client.request("GET", srv.url + "/good")
        client.request("GET", srv.url + "/bad")
    assert "GET /bad HTTP/1.1" in caplog.text and "GET /good" not in caplog.text


def test_tpslimit_spaces_the_transactions():
    with serve(_ok) as srv:
        client = HttpClient(ctx(tpslimit=5.0, tpslimit_burst=1), "tps")
        start = time.monotonic()
        for _ in range(11):
            assert client.request("GET", srv.url + "/t").status == 200
        elapsed = time.monotonic() - start
    # 1 at once, then 10 at 5 a second: 2 s; loosely, as the limit is the property under test
    assert elapsed >= 1.6


def test_bwlimit_slows_a_download_and_an_upload():
    data = b"d" * (400 * 1024)

    def handler(h, seen, n):
        reply(h, 200, data)

    bw = ALL_OPTIONS["bwlimit"].parse("200k")
    with serve(handler) as srv:
        client = HttpClient(ctx(bwlimit=bw), "bw")
        start = time.monotonic()
        body = BodyReader(client, client.request("GET", srv.url + "/big", stream=True))
        buf = memoryview(bytearray(64 * 1024))
        got = 0
        while n := body.readinto(buf):
            got += n
        body.close()
        down = time.monotonic() - start
        assert got == len(data) and down >= 1.5
        start = time.monotonic()
        HttpClient(ctx(bwlimit=ALL_OPTIONS["bwlimit"].parse("200k:off")), "bw").request(  # up 200k, down off
            "PUT", srv.url + "/u2", body=memoryview(data)[: 300 * 1024])
        assert time.monotonic() - start >= 1.1
        assert len(srv.stats.requests[-1].body) == 300 * 1024
        assert srv.stats.requests[-1].headers["Content-Length"] == str(300 * 1024)
