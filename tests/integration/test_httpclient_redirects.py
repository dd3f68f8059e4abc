"""HttpClient's redirects (the webdav and http backends follow them, as rclone's Go client) and
its pacer (webdav's pacer_min_sleep), against loopback servers."""

from __future__ import annotations

import errno
import ssl
import time

import pytest

from pyclone_docker.lib.httpclient import HttpClient, HttpError
from tests.integration.test_httpclient_support import Pki, ctx, make_pki, reply, serve

SECRET = {"Authorization": "Basic c2VjcmV0", "Cookie": "session=1"}


def _to(url: str, status: int = 307):
    """A handler that sends every request on to `url` + its path."""
    def handler(h, seen, n):
        reply(h, status, b"moved", {"Location": url + seen.path})
    return handler


def _echo(h, seen, n):
    reply(h, 200, f"{seen.method} {seen.path} {len(seen.body)}".encode())


@pytest.mark.parametrize("status", [307, 308])
def test_307_and_308_keep_the_method_the_body_and_same_host_credentials(status):
    with serve(_echo) as target, serve(_to(target.url, status)) as hop:
        client = HttpClient(ctx(), "test", follow_redirects=True)
        resp = client.request("PUT", hop.url + "/f", headers={**SECRET, "Content-Type": "text/plain"}, body=b"12345")
        assert resp.status == 200 and resp.data == b"PUT /f 5"
        assert resp.url == target.url + "/f"
        seen = target.stats.requests[0]
        assert seen.headers["Authorization"] == SECRET["Authorization"]  # same host name, other port
        assert seen.headers["Cookie"] == SECRET["Cookie"]


def test_301_turns_a_put_into_a_get_without_its_body_but_keeps_propfind():
    with serve(_echo) as target, serve(_to(target.url, 301)) as hop:
        client = HttpClient(ctx(), "test", follow_redirects=True)
        put = client.request("PUT", hop.url + "/f", headers={"Content-Type": "text/plain"}, body=b"12345")
        assert put.data == b"GET /f 0"
        assert "Content-Type" not in target.stats.requests[0].headers
        find = client.request("PROPFIND", hop.url + "/d/", headers={"Depth": "1"}, body=b"<propfind/>")
        assert find.data == b"PROPFIND /d/ 11"


def test_another_host_gets_no_credentials_unless_auth_is_asked_for():
    with serve(_echo) as target:
        other = target.url.replace("127.0.0.1", "localhost")
        with serve(_to(other)) as hop:
            client = HttpClient(ctx(), "test", follow_redirects=True)
            assert client.request("GET", hop.url + "/a", headers=SECRET).status == 200
            plain = target.stats.requests[-1].headers
            assert "Authorization" not in plain and "Cookie" not in plain
            assert client.request("GET", hop.url + "/b", headers=SECRET, redirect="auth").status == 200
            kept = target.stats.requests[-1].headers
            assert kept["Authorization"] == SECRET["Authorization"] and "Cookie" not in kept


def test_ten_redirects_are_followed_and_the_eleventh_is_an_error():
    def chain(h, seen, n):
        hops = int(seen.path.strip("/") or 0)
        if hops < limit:
            reply(h, 302, b"", {"Location": f"/{hops + 1}"})
        else:
            reply(h, 200, b"arrived")

    client = HttpClient(ctx(), "test", follow_redirects=True)
    with serve(chain) as srv:
        limit = 10
        assert client.request("GET", srv.url + "/0").data == b"arrived"
        limit = 11
        with pytest.raises(HttpError) as err:
            client.request("GET", srv.url + "/0")
        assert err.value.errno == errno.EIO and "stopped after 10 redirects" in str(err.value)


def test_no_redirect_is_followed_by_default_nor_for_none_nor_with_a_streamed_body():
    with serve(_echo) as target, serve(_to(target.url)) as hop:
        assert HttpClient(ctx(), "test").request("GET", hop.url + "/x").status == 307
        client = HttpClient(ctx(), "test", follow_redirects=True)
        assert client.request("GET", hop.url + "/x", redirect="none").status == 307
        streamed = client.request("PUT", hop.url + "/x", headers={"Content-Length": "3"}, body=iter([b"abc"]))
        assert streamed.status == 307  # the body went once; Go's client answers with the redirect too
        assert target.stats.requests == []


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_https_to_http_is_refused_unless_auth_redirect(pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    with serve(_echo) as target, serve(_to(target.url), tls=context) as hop:
        client = HttpClient(ctx(ca_cert=(str(pki.ca),)), "test", follow_redirects=True)
        with pytest.raises(HttpError) as err:
            client.request("GET", hop.url + "/x", headers=SECRET)
        assert err.value.errno == errno.EACCES and "cleartext" in str(err.value)
        assert "c2VjcmV0" not in str(err.value)
        assert target.stats.requests == []
        assert client.request("GET", hop.url + "/x", headers=SECRET, redirect="auth").status == 200


def test_the_pacer_spaces_request_starts_by_min_sleep():
    with serve(_echo) as srv:
        client = HttpClient(ctx(), "test", min_sleep=0.1)
        t0 = time.monotonic()
        for i in range(6):
            client.request("GET", srv.url + f"/{i}")
        assert time.monotonic() - t0 >= 0.5  # five waits of 0.1 s at least (a lower bound: never flaky)
