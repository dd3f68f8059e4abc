"""SigV4 (pyclone_docker/backends/s3/sigv4.py): AWS's published examples as known answers, a
cross-check against botocore's S3SigV4Auth on generated requests, and the secret's keeping."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import os
import random
import re
import socket
import subprocess
import time
import traceback
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from pyclone_docker.backends.s3 import sigv4
from pyclone_docker.backends.s3.sigv4 import (
    EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
    Credentials,
    SigV4Signer,
    canonical_query,
    canonical_uri,
)

UTC = dt.timezone.utc

# AWS S3 API Reference, "Signature Calculations for the Authorization Header: Transferring
# Payload in a Single Chunk (AWS Signature Version 4)", section "Examples".
S3_DOC_CREDS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
S3_DOC_TIME = dt.datetime(2013, 5, 24, 0, 0, 0, tzinfo=UTC)
S3_DOC_CREDENTIAL = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"

# AWS's SigV4 test suite (aws-sig-v4-test-suite): service "service", us-east-1.
SUITE_CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = dt.datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)


def _signature(headers: dict[str, str]) -> str:
    return headers["Authorization"].rpartition("Signature=")[2]


def _signed_headers(headers: dict[str, str]) -> str:
    return headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]


# --- known answers ---------------------------------------------------------------------------


def test_s3_doc_get_object_with_range() -> None:
    headers = {"Range": "bytes=0-9"}
    SigV4Signer(S3_DOC_CREDS, "us-east-1").sign(
        "GET", "https://examplebucket.s3.amazonaws.com/test.txt", headers, EMPTY_SHA256, S3_DOC_TIME)
    assert headers["Authorization"] == (
        f"AWS4-HMAC-SHA256 {S3_DOC_CREDENTIAL}, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    assert headers["x-amz-date"] == "20130524T000000Z"
    assert headers["x-amz-content-sha256"] == EMPTY_SHA256
    assert "x-amz-security-token" not in headers


@pytest.mark.parametrize("path", ["/test%24file.text", "/test$file.text"])
def test_s3_doc_put_object(path: str) -> None:
    # The key is "test$file.text", which the example sends raw and signs as /test%24file.text;
    # the body is "Welcome to Amazon S3.". A Date header is present, so it is signed too.
    body_hash = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    assert body_hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    headers = {"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"}
    SigV4Signer(S3_DOC_CREDS, "us-east-1").sign(
        "PUT", "https://examplebucket.s3.amazonaws.com" + path, headers, body_hash, S3_DOC_TIME)
    assert _signed_headers(headers) == "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"
    assert _signature(headers) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    assert headers["x-amz-content-sha256"] == body_hash


@pytest.mark.parametrize(("url", "expected"), [
    ("https://examplebucket.s3.amazonaws.com/?lifecycle",
     "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
    ("https://examplebucket.s3.amazonaws.com?lifecycle",  # no path at all: "/"
     "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
    ("https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ("https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2",  # order does not matter
     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
])
def test_s3_doc_bucket_requests(url: str, expected: str) -> None:
    headers: dict[str, str] = {}
    SigV4Signer(S3_DOC_CREDS, "us-east-1").sign("GET", url, headers, EMPTY_SHA256, S3_DOC_TIME)
    assert _signed_headers(headers) == "host;x-amz-content-sha256;x-amz-date"
    assert _signature(headers) == expected


@pytest.mark.parametrize(("name", "method", "url", "headers", "body", "expected"), [
    ("get-vanilla", "GET", "https://example.amazonaws.com/", {}, b"",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("get-vanilla-query-order-key-case", "GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1",
     {}, b"", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("get-vanilla-query-order-value", "GET", "https://example.amazonaws.com/?Param1=value2&Param1=value1",
     {}, b"", "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
    ("get-unreserved", "GET",
     "https://example.amazonaws.com/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     {}, b"", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
    ("post-x-www-form-urlencoded", "POST", "https://example.amazonaws.com/",
     {"Content-Type": "application/x-www-form-urlencoded"}, b"Param1=value1",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
])
def test_aws_sigv4_test_suite(name: str, method: str, url: str, headers: dict[str, str], body: bytes,
                              expected: str) -> None:
    headers = dict(headers)
    signer = SigV4Signer(SUITE_CREDS, "us-east-1", "service")
    signer.sign(method, url, headers, hashlib.sha256(body).hexdigest(), SUITE_TIME)
    assert "x-amz-content-sha256" not in headers  # S3's header only
    prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders="
    assert headers["Authorization"].startswith(prefix)
    assert _signature(headers) == expected, name


def test_content_sha256_can_be_turned_on_and_off() -> None:
    on = {}
    SigV4Signer(SUITE_CREDS, "us-east-1", "service", add_content_sha256=True).sign(
        "GET", "https://example.amazonaws.com/", on, EMPTY_SHA256, SUITE_TIME)
    assert on["x-amz-content-sha256"] == EMPTY_SHA256
    assert _signed_headers(on) == "host;x-amz-content-sha256;x-amz-date"
    off = {}
    SigV4Signer(S3_DOC_CREDS, "us-east-1", add_content_sha256=False).sign(
        "GET", "https://examplebucket.s3.amazonaws.com/test.txt", off, EMPTY_SHA256, S3_DOC_TIME)
    assert "x-amz-content-sha256" not in off
    assert _signed_headers(off) == "host;x-amz-date"


# --- canonical parts -------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ("", ""),
    ("lifecycle", "lifecycle="),
    ("b=2&a=x+y&a=%2b&c", "a=%2B&a=x%20y&b=2&c="),  # '+' is a space; %2b is a '+'; hex upper case
    ("k=%7e%41", "k=~A"),  # unreserved characters are never escaped
    ("prefix=a/b:c", "prefix=a%2Fb%3Ac"),  # reserved ones always are
    ("&&a=1&", "a=1"),  # empty pieces dropped
    ("x=%zz", "x=%25zz"),  # a stray '%' is a literal
    ("k=%E2%82%AC&k=%FF", "k=%E2%82%AC&k=%FF"),  # bytes kept as bytes, valid UTF-8 or not
    ("%C3%A9=1&Z=2&a=3", "%C3%A9=1&Z=2&a=3"),  # sorted by the encoded key, byte order
    ("a=1=2", "a=1%3D2"),
])
def test_canonical_query(query: str, expected: str) -> None:
    assert canonical_query(query) == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("", "/"),
    ("/", "/"),
    ("/b/dir/key.txt", "/b/dir/key.txt"),
    ("/b/d%20ir/%C3%A9%2Bx%21.txt", "/b/d%20ir/%C3%A9%2Bx%21.txt"),  # already canonical: not encoded again
    ("/b/%2525", "/b/%2525"),  # an encoded '%' stays encoded once
    ("/b/a+b!c$d:e@f", "/b/a%2Bb%21c%24d%3Ae%40f"),  # raw sub-delimiters: encoded, '+' is a plus
    ("/b/%c3%a9%7e%41", "/b/%C3%A9~A"),  # lower-case hex, escaped unreserved characters
    ("/b/x%2Fy", "/b/x/y"),  # an escaped '/' is a '/' to the server
    ("/b//k/./../", "/b//k/./../"),  # no normalisation
    ("/b/%zz", "/b/%25zz"),
])
def test_canonical_uri(path: str, expected: str) -> None:
    assert canonical_uri(path) == expected
    assert canonical_uri(expected) == expected


@pytest.mark.parametrize(("url", "host"), [
    ("https://Example.COM/k", "example.com"),
    ("https://example.com:443/k", "example.com"),
    ("http://example.com:80/k", "example.com"),
    ("https://example.com:80/k", "example.com:80"),
    ("http://127.0.0.1:9000/b/k", "127.0.0.1:9000"),
    ("http://[::1]:9000/b/k", "[::1]:9000"),
    ("http://user:pw@example.com/k", "example.com"),
])
def test_host_from_url(url: str, host: str) -> None:
    headers: dict[str, str] = {}
    signer = SigV4Signer(S3_DOC_CREDS, "us-east-1")
    signer.sign("GET", url, headers, EMPTY_SHA256, S3_DOC_TIME)
    explicit = {"Host": host}
    signer.sign("GET", url, explicit, EMPTY_SHA256, S3_DOC_TIME)
    assert headers["Authorization"] == explicit["Authorization"]
    other = {"Host": host + ".other"}
    signer.sign("GET", url, other, EMPTY_SHA256, S3_DOC_TIME)
    assert other["Authorization"] != headers["Authorization"]


def test_header_values_are_trimmed_and_collapsed_and_unsigned_headers_ignored() -> None:
    signer = SigV4Signer(S3_DOC_CREDS, "us-east-1")
    plain = {"Content-Type": "text/plain; charset=utf-8", "x-amz-meta-a": "one two"}
    signer.sign("PUT", "https://b.example.com/k", plain, EMPTY_SHA256, S3_DOC_TIME)
    odd = {"content-type": "  text/plain;   charset=utf-8 ", "X-Amz-Meta-A": "\tone  \t two  ",
           "User-Agent": "anything", "Content-Length": "12", "Expect": "100-continue"}
    signer.sign("PUT", "https://b.example.com/k", odd, EMPTY_SHA256, S3_DOC_TIME)
    assert _signed_headers(odd) == "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-a"
    assert odd["Authorization"] == plain["Authorization"]


def test_extra_signed_headers() -> None:
    headers = {"Accept-Encoding": "gzip", "Content-Length": "3"}
    SigV4Signer(S3_DOC_CREDS, "us-east-1", extra_signed_headers=["Accept-Encoding"]).sign(
        "GET", "https://b.example.com/k", headers, EMPTY_SHA256, S3_DOC_TIME)
    assert _signed_headers(headers) == "accept-encoding;host;x-amz-content-sha256;x-amz-date"


def test_resigning_replaces_the_earlier_headers_whatever_their_case() -> None:
    creds = Credentials("AKID", "secret", "token-1")
    signer = SigV4Signer(creds, "eu-west-1")
    fresh = {"Range": "bytes=1-2"}
    signer.sign("GET", "https://b.example.com/k", fresh, UNSIGNED_PAYLOAD, S3_DOC_TIME)
    retried = {"Range": "bytes=1-2", "AUTHORIZATION": "old", "X-Amz-Date": "20000101T000000Z",
               "X-AMZ-CONTENT-SHA256": "old", "X-Amz-Security-Token": "old-token"}
    signer.sign("GET", "https://b.example.com/k", retried, UNSIGNED_PAYLOAD, S3_DOC_TIME)
    assert retried == fresh
    assert fresh["x-amz-security-token"] == "token-1"
    assert "x-amz-security-token" in _signed_headers(fresh).split(";")


def test_naive_and_aware_times_agree() -> None:
    signer = SigV4Signer(S3_DOC_CREDS, "us-east-1")
    a, b, c = {}, {}, {}
    signer.sign("GET", "https://b.example.com/k", a, EMPTY_SHA256, dt.datetime(2013, 5, 24, 1, 2, 3))
    signer.sign("GET", "https://b.example.com/k", b, EMPTY_SHA256, dt.datetime(2013, 5, 24, 1, 2, 3, tzinfo=UTC))
    east = dt.timezone(dt.timedelta(hours=5))
    signer.sign("GET", "https://b.example.com/k", c, EMPTY_SHA256, dt.datetime(2013, 5, 24, 6, 2, 3, tzinfo=east))
    assert a == b == c
    assert a["x-amz-date"] == "20130524T010203Z"


def test_signing_key_is_derived_once_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = sigv4.hmac.digest

    def counting(key, msg, digest):
        calls.append(msg)
        return real(key, msg, digest)

    monkeypatch.setattr(sigv4.hmac, "digest", counting)
    signer = SigV4Signer(S3_DOC_CREDS, "us-east-1")
    day = dt.datetime(2013, 5, 24, 0, 0, 0, tzinfo=UTC)
    signer.sign("GET", "https://b.example.com/a", {}, EMPTY_SHA256, day)
    assert len(calls) == 4
    for minutes in (1, 60, 24 * 60 - 1):
        signer.sign("GET", "https://b.example.com/b", {}, EMPTY_SHA256, day + dt.timedelta(minutes=minutes))
    assert len(calls) == 4
    signer.sign("GET", "https://b.example.com/c", {}, EMPTY_SHA256, day + dt.timedelta(days=1))
    assert len(calls) == 8
    assert calls[4] == b"20130525"


# --- secrets ---------------------------------------------------------------------------------

SECRET = "sEcReT/never-shown+0123456789abcdefghij"
TOKEN = "ToKeN-never-shown-FwoGZXIvYXdzEJr"


def test_credentials_repr_and_str_hide_secret_and_token() -> None:
    creds = Credentials("AKIAVISIBLE", SECRET, TOKEN)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds]), repr(SigV4Signer(creds, "us-east-1"))):
        assert SECRET not in text
        assert TOKEN not in text
    assert "AKIAVISIBLE" in repr(creds)


SSE_KEY = "c3NlLWN1c3RvbWVyLWtleS1uZXZlci1zaG93bi0xMjM0NQ=="


@pytest.mark.parametrize(("url", "headers", "payload_hash"), [
    ("https://b.example.com/k", {}, "not-a-hash\n"),
    ("https://b.example.com/k", {}, SECRET),
    ("https://b.example.com:99999/k", {}, EMPTY_SHA256),
    ("https://b.example.com:port/k", {}, EMPTY_SHA256),
    ("/k-without-host", {}, EMPTY_SHA256),
    ("https://b.example.com/k", {"x-amz-server-side-encryption-customer-key": 12345}, EMPTY_SHA256),
    ("https://b.example.com/k", {"x-amz-meta-bad name": SSE_KEY}, EMPTY_SHA256),
    ("https://b.example.com/k", {"x-amz-meta-a:b": SSE_KEY}, EMPTY_SHA256),
])
def test_errors_from_sign_do_not_carry_secrets(url: str, headers: dict, payload_hash: str) -> None:
    signer = SigV4Signer(Credentials("AKIAVISIBLE", SECRET, TOKEN), "us-east-1")
    with pytest.raises((ValueError, TypeError)) as info:
        signer.sign("GET", url, dict(headers, **{"x-amz-server-side-encryption-customer-key-MD5": SSE_KEY}),
                    payload_hash)
    text = "".join(traceback.format_exception(info.value)) + repr(info.value.args)
    for secret in (SECRET, TOKEN, SSE_KEY):
        assert secret not in text


def test_constructor_rejects_missing_parts_without_showing_them() -> None:
    for creds, region in ((Credentials("", SECRET), "us-east-1"), (Credentials("AK", ""), "us-east-1"),
                          (Credentials("AK", SECRET, TOKEN), "")):
        with pytest.raises(ValueError) as info:
            SigV4Signer(creds, region)
        assert SECRET not in str(info.value) and TOKEN not in str(info.value)


# --- cross-check against botocore ------------------------------------------------------------

_PATH_CHARS = "abcXYZ019-_.~ /+=&?#%!$'()*,;:@[]" + "éñ日本€😀"
_QUERY_KEYS = ["prefix", "delimiter", "list-type", "continuation-token", "marker", "max-keys", "uploads",
               "versionId", "partNumber", "uploadId", "x-id", "acl", "key with space", "ключ", "a+b", "Z", "a", ""]


def _random_text(rng: random.Random, alphabet: str, low: int, high: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def _random_request(rng: random.Random) -> tuple[str, str, dict[str, str], bytes | None, bool]:
    """(method, url, headers, body, unsigned): a URL as S3 clients send it (keys
    percent-encoded with '/' and '~' kept; query keys and values in AWS's encoding)."""
    method = rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
    scheme = rng.choice(["http", "https"])
    host = rng.choice(["s3.amazonaws.com", "Bucket.S3.Example.COM", "127.0.0.1", "[::1]", "minio.local"])
    port = rng.choice(["", ":9000", ":80", ":443", ":8080"])
    segments = [_random_text(rng, _PATH_CHARS, 0, 12) for _ in range(rng.randint(0, 4))]
    path = "/" + "/".join(quote(s, safe="/~") for s in segments)
    if rng.random() < 0.1:
        path += "/"
    pieces = []
    for _ in range(rng.randint(0, 6)):
        key = quote(rng.choice(_QUERY_KEYS), safe="-_.~")
        if not key:
            continue  # an empty piece: botocore and AWS disagree on those
        shape = rng.random()
        if shape < 0.2:
            pieces.append(key)  # no '='
        elif shape < 0.35:
            pieces.append(key + "=")
        else:
            pieces.append(key + "=" + quote(_random_text(rng, _PATH_CHARS, 1, 10), safe="-_.~"))
    if rng.random() < 0.3 and pieces:
        pieces.append(pieces[0])  # a repeated key and value
    url = f"{scheme}://{host}{port}{path}" + ("?" + "&".join(pieces) if pieces else "")

    def spaced(value: str) -> str:
        return rng.choice(["", " ", "  ", "\t"]) + value.replace(" ", rng.choice([" ", "  ", " \t "])) + \
            rng.choice(["", " ", "   "])

    headers: dict[str, str] = {}
    if rng.random() < 0.5:
        headers[rng.choice(["Content-Type", "content-type"])] = spaced("text/plain; charset=utf-8")
    if rng.random() < 0.3:
        headers["Content-MD5"] = spaced("1B2M2Y8AsgTpgAmY7PhCfg==")
    if rng.random() < 0.3:
        headers["Range"] = spaced(f"bytes={rng.randint(0, 99)}-{rng.randint(100, 999)}")
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(["x-amz-meta-mtime", "X-Amz-Meta-Md5chksum", "x-amz-storage-class", "X-Amz-Acl",
                           "x-amz-copy-source", "X-Amz-Meta-Caps", "x-amz-tagging"])
        headers[name] = spaced(_random_text(rng, "abc XYZ 019/+=.:é", 0, 20).strip() or "v")
    if rng.random() < 0.2:
        headers["X-AMZ-META-MTIME"] = spaced("1700000000.5")  # differs from x-amz-meta-mtime only in case
    if rng.random() < 0.3:
        headers["User-Agent"] = "pyclone-docker/test"  # never signed (botocore blacklists it too)
    if rng.random() < 0.2:
        headers["Expect"] = "100-continue"
    if rng.random() < 0.15:
        headers["Host"] = host.lower() + port  # an explicit Host header is used as it is
    body = None if method in ("GET", "HEAD", "DELETE") else rng.randbytes(rng.randint(0, 300))
    unsigned = scheme == "https" and rng.random() < 0.3
    return method, url, headers, body, unsigned


def test_matches_botocore_s3sigv4auth(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = pytest.importorskip("botocore.auth", reason="botocore (test-only) is not installed")
    awsrequest = pytest.importorskip("botocore.awsrequest")
    credentials = pytest.importorskip("botocore.credentials")
    rng = random.Random(20130524)
    for case in range(200):
        method, url, headers, body, unsigned = _random_request(rng)
        region = rng.choice(["us-east-1", "eu-west-3", "auto", "other-v2-signature"])
        token = rng.choice(["", "", "FwoGZXIvYXdzEJr//////////token+/="])
        now = dt.datetime(2013, 5, 24, tzinfo=UTC) + dt.timedelta(seconds=rng.randint(0, 10 ** 9))
        # botocore's clock is its module's get_current_datetime (a naive UTC datetime).
        monkeypatch.setattr(auth, "get_current_datetime", lambda now=now: now.replace(tzinfo=None))
        theirs = awsrequest.AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        if unsigned:
            theirs.context["client_config"] = SimpleNamespace(s3={"payload_signing_enabled": False})
        auth.S3SigV4Auth(credentials.Credentials("AKIACROSSCHECK", "cross/check+secret", token or None),
                         "s3", region).add_auth(theirs)

        ours = dict(headers)
        payload_hash = UNSIGNED_PAYLOAD if unsigned else hashlib.sha256(body or b"").hexdigest()
        SigV4Signer(Credentials("AKIACROSSCHECK", "cross/check+secret", token), region).sign(
            method, url, ours, payload_hash, now)
        context = f"case {case}: {method} {url} {headers!r}"
        assert ours["Authorization"] == theirs.headers["Authorization"], context
        assert ours["x-amz-date"] == theirs.headers["X-Amz-Date"], context
        assert ours["x-amz-content-sha256"] == theirs.headers["X-Amz-Content-SHA256"], context
        assert ours.get("x-amz-security-token") == theirs.headers.get("X-Amz-Security-Token"), context


# --- a real verifier: rclone serve s3 ---------------------------------------------------------

# rclone's S3 server checks SigV4 signatures (as MinIO does: canonical URI from the decoded
# path). The key pair is AWS's published example pair, not a secret.
_SERVE_CREDS = S3_DOC_CREDS


@pytest.fixture
def rclone_s3(tmp_path, rclone_bin: str):
    """`rclone serve s3` on a free loopback port over tmp_path/root, with bucket "bkt"."""
    (tmp_path / "root" / "bkt").mkdir(parents=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    auth_key = f"{_SERVE_CREDS.access_key_id},{_SERVE_CREDS.secret_access_key}"
    with open(tmp_path / "serve.log", "wb") as log:
        child = subprocess.Popen(
            [rclone_bin, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--auth-key", auth_key,
             str(tmp_path / "root")], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if child.poll() is not None:
                    pytest.fail("rclone serve s3 exited: " + (tmp_path / "serve.log").read_text())
                time.sleep(0.05)
        else:
            pytest.fail("rclone serve s3 did not listen: " + (tmp_path / "serve.log").read_text())
        yield port
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _send(port: int, signer: SigV4Signer, method: str, target: str, body: bytes = b"",
          unsigned: bool = False) -> tuple[int, bytes]:
    headers: dict[str, str] = {"Content-Type": "application/octet-stream"} if method == "PUT" else {}
    payload_hash = UNSIGNED_PAYLOAD if unsigned else hashlib.sha256(body).hexdigest()
    signer.sign(method, f"http://127.0.0.1:{port}{target}", headers, payload_hash)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, target, body=body if method == "PUT" else None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


_KEY_CHARS = "abcXYZ019-_.~ +=&!$'()*,;:@éñ日€"


@pytest.mark.rclone
def test_rclone_serve_s3_accepts_our_signatures(rclone_s3: int) -> None:
    port = rclone_s3
    signer = SigV4Signer(_SERVE_CREDS, "us-east-1")
    rng = random.Random(9)
    keys = []
    for n in range(40):
        segments = []
        for _ in range(rng.randint(1, 3)):
            segment = "".join(rng.choice(_KEY_CHARS) for _ in range(rng.randint(1, 8))).strip()
            segments.append(segment if segment.strip(".") else f"s{n}")
        key = f"k{n}/" + "/".join(segments)  # its own directory: no key is another's parent
        # Three ways to put the key on the wire: AWS's encoding, Go's (sub-delimiters raw),
        # and lower-case hex.
        style = n % 3
        if style == 0:
            wire = quote(key, safe="/~")
        elif style == 1:
            wire = quote(key, safe="/~!$&'()*+,;=:@")
        else:
            wire = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(key, safe="/~"))
        body = key.encode() * 3
        status, reply = _send(port, signer, "PUT", "/bkt/" + wire, body, unsigned=n % 4 == 0)
        assert status == 200, (key, wire, reply)
        keys.append((key, wire, body))
    for key, wire, body in keys:
        status, reply = _send(port, signer, "GET", "/bkt/" + wire)
        assert (status, reply) == (200, body), (key, wire)
    prefix = keys[1][0].rpartition("/")[0] + "/"
    query = f"?list-type=2&prefix={quote(prefix, safe='-_.~')}&max-keys=1000&delimiter=%2F&encoding-type=url"
    status, reply = _send(port, signer, "GET", "/bkt" + query)
    assert status == 200, reply

    wrong = SigV4Signer(Credentials(_SERVE_CREDS.access_key_id, "not-the-secret"), "us-east-1")
    status, reply = _send(port, wrong, "GET", "/bkt/" + keys[0][1])
    assert status == 403 and b"SignatureDoesNotMatch" in reply
