"""HttpClient's TLS flags against a loopback HTTPS server with a test CA made by openssl."""

from __future__ import annotations

import ssl

import pytest

from pyclone_docker.lib.httpclient import HttpClient, HttpError
from tests.integration.test_httpclient_support import Pki, ctx, make_pki, reply, serve


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _ok(h, seen, n):
    reply(h, 200, b"secure")


def _server_tls(pki, *, require_client: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(pki.ca))
    return context


def test_unknown_ca_fails_and_ca_cert_makes_it_work(pki):
    with serve(_ok, tls=_server_tls(pki)) as srv:
        with pytest.raises(HttpError) as err:
            HttpClient(ctx(), "test").request("GET", srv.url + "/x")
        assert "certificate" in str(err.value).lower()
        assert len(srv.stats.requests) == 0
        resp = HttpClient(ctx(ca_cert=(str(pki.ca),)), "test").request("GET", srv.url + "/x")
        assert resp.status == 200 and resp.data == b"secure"
        # the --ca-cert roots replace the others: an unrelated CA alone does not verify it
        with pytest.raises(HttpError):
            HttpClient(ctx(ca_cert=(str(pki.other_ca),)), "test").request("GET", srv.url + "/x")
        both = HttpClient(ctx(ca_cert=(str(pki.other_ca), str(pki.ca))), "test")
        assert both.request("GET", srv.url + "/x").status == 200


def test_certificate_errors_are_not_retried(pki):
    with serve(_ok, tls=_server_tls(pki)) as srv:
        client = HttpClient(ctx(low_level_retries=10), "test")
        with pytest.raises(HttpError) as err:
            client.request("GET", srv.url + "/x")
        assert not err.value.retryable


def test_no_check_certificate(pki):
    with serve(_ok, tls=_server_tls(pki)) as srv:
        resp = HttpClient(ctx(no_check_certificate=True), "test").request("GET", srv.url + "/x")
        assert resp.status == 200
        # the host name is not checked either: "localhost" is not in the certificate
        url = srv.url.replace("127.0.0.1", "localhost")
        assert HttpClient(ctx(no_check_certificate=True), "test").request("GET", url).status == 200
        with pytest.raises(HttpError):
            HttpClient(ctx(ca_cert=(str(pki.ca),)), "test").request("GET", url)


def test_client_certificate(pki):
    with serve(_ok, tls=_server_tls(pki, require_client=True)) as srv:
        with pytest.raises(HttpError):
            HttpClient(ctx(ca_cert=(str(pki.ca),), low_level_retries=1), "test").request("GET", srv.url + "/x")
        c = ctx(ca_cert=(str(pki.ca),), client_cert=str(pki.client_cert), client_key=str(pki.client_key))
        assert HttpClient(c, "test").request("GET", srv.url + "/x").status == 200


def test_bad_tls_settings_fail_at_construction(pki, tmp_path):
    with pytest.raises(ValueError, match="Both --client-cert and --client-key must be set"):
        HttpClient(ctx(client_cert=str(pki.client_cert)), "test")
    with pytest.raises(ValueError, match="Both --client-cert and --client-key must be set"):
        HttpClient(ctx(client_key=str(pki.client_key)), "test")
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ValueError, match=r"Failed to read --ca-cert file '.*nope\.pem'"):
        HttpClient(ctx(ca_cert=(missing,)), "test")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"Failed to add certificates from --ca-cert file '.*junk\.pem'"):
        HttpClient(ctx(ca_cert=(str(junk),)), "test")
    with pytest.raises(ValueError, match=r"Failed to load --client-cert/--client-key pair.*junk\.pem"):
        HttpClient(ctx(client_cert=str(junk), client_key=str(pki.client_key)), "test")
    # a key that does not belong to the certificate
    with pytest.raises(ValueError, match="Failed to load --client-cert/--client-key pair"):
        HttpClient(ctx(client_cert=str(pki.client_cert), client_key=str(pki.server_key)), "test")
