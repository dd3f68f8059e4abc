"""SigV2 (pyclone_docker/backends/s3/sigv2.py, rclone's v2_auth): AWS's "Signing and
Authenticating REST Requests" examples as known answers, and a cross-check against botocore's
HmacV1Auth on generated requests."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import traceback
from urllib.parse import quote

import pytest

from pyclone_docker.backends.s3.sigv2 import canonical_resource, sign_v2, string_to_sign
from pyclone_docker.backends.s3.sigv4 import Credentials

UTC = dt.timezone.utc
DOC_CREDS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
HOST = "https://awsexamplebucket1.us-west-1.s3.amazonaws.com"


def _signed(method: str, url: str, headers: dict[str, str], bucket: str = "") -> dict[str, str]:
    headers = dict(headers)
    sign_v2(DOC_CREDS, method, url, headers, bucket=bucket)
    return headers


# AWS S3 API Reference, "Signing and authenticating REST requests (AWS signature version 2)",
# section "Authentication examples" (bucket awsexamplebucket1, virtual-host style).
def test_doc_object_get() -> None:
    headers = _signed("GET", HOST + "/photos/puppy.jpg", {"Date": "Tue, 27 Mar 2007 19:36:42 +0000"},
                      "awsexamplebucket1")
    assert headers["Authorization"] == "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="
    assert headers["Date"] == "Tue, 27 Mar 2007 19:36:42 +0000"  # the caller's Date is kept
    assert string_to_sign("GET", HOST + "/photos/puppy.jpg", headers, "awsexamplebucket1") == (
        "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg")


def test_doc_path_style_gives_the_same_resource() -> None:
    headers = _signed("GET", "https://s3.us-west-1.amazonaws.com/awsexamplebucket1/photos/puppy.jpg",
                      {"Date": "Tue, 27 Mar 2007 19:36:42 +0000"})
    assert headers["Authorization"] == "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="


@pytest.mark.parametrize(("method", "url", "headers", "bucket", "signature"), [
    ("PUT", HOST + "/photos/puppy.jpg",
     {"Content-Type": "image/jpeg", "Content-Length": "94328", "Date": "Tue, 27 Mar 2007 21:15:45 +0000"},
     "awsexamplebucket1", "iqRzw+ileNPu1fhspnRs8nOjjIA="),
    ("GET", HOST + "/?prefix=photos&max-keys=50&marker=puppy",  # listing parameters are not signed
     {"User-Agent": "Mozilla/5.0", "Date": "Tue, 27 Mar 2007 19:42:41 +0000"},
     "awsexamplebucket1", "m0WP8eCtspQl5Ahe6L1SozdX9YA="),
    ("GET", HOST + "/?acl", {"Date": "Tue, 27 Mar 2007 19:44:46 +0000"},
     "awsexamplebucket1", "82ZHiFIjc+WbcwFKGUVEQspPn+0="),
    ("PUT", "http://static.example.com/db-backup.dat.gz",  # a CNAME: the bucket is the host name
     {"User-Agent": "curl/7.15.5", "Date": "Tue, 27 Mar 2007 21:06:08 +0000", "x-amz-acl": "public-read",
      "content-type": "application/x-download", "Content-MD5": "4gJE4saaMU4BqNR0kLY+lw==",
      "X-Amz-Meta-ReviewedBy": "joe@example.com,jane@example.com", "X-Amz-Meta-FileChecksum": "0x02661779",
      "X-Amz-Meta-ChecksumAlgorithm": "crc32", "Content-Disposition": "attachment; filename=database.dat",
      "Content-Encoding": "gzip", "Content-Length": "5913339"},
     "static.example.com", "jtBQa0Aq+DkULFI8qrpwIjGEx0E="),
    ("GET", "https://s3.us-west-1.amazonaws.com/", {"Date": "Wed, 28 Mar 2007 01:29:59 +0000"},
     "", "qGdzdERIC03wnaRNKh6OqZehG9s="),
    # The unicode-keys example, with its path in upper-case %XX (as it is sent by clients that
    # produce upper case only: the path is signed exactly as sent).
    ("GET", "https://s3.us-west-1.amazonaws.com/dictionary/fran%C3%A7ais/pr%C3%A9f%C3%A8re",
     {"Date": "Wed, 28 Mar 2007 01:49:49 +0000"}, "", "81VEw/Bc3GDt/k65Xrrk3AdfI4c="),
])
def test_doc_examples(method: str, url: str, headers: dict[str, str], bucket: str, signature: str) -> None:
    assert _signed(method, url, headers, bucket)["Authorization"] == f"AWS AKIAIOSFODNN7EXAMPLE:{signature}"


def test_path_is_signed_as_sent() -> None:
    upper = _signed("GET", "https://s3.amazonaws.com/d/pr%C3%A9f", {"Date": "Wed, 28 Mar 2007 01:49:49 +0000"})
    lower = _signed("GET", "https://s3.amazonaws.com/d/pr%c3%a9f", {"Date": "Wed, 28 Mar 2007 01:49:49 +0000"})
    assert upper["Authorization"] != lower["Authorization"]


@pytest.mark.parametrize(("path", "query", "bucket", "expected"), [
    ("", "", "", "/"),
    ("", "", "b", "/b/"),
    ("/k", "", "b", "/b/k"),
    ("/k", "uploads", "", "/k?uploads"),
    ("/k", "uploadId=abc%2Bdef&partNumber=3", "", "/k?partNumber=3&uploadId=abc+def"),  # decoded, sorted
    ("/", "delete=", "", "/?delete"),
    ("/", "list-type=2&prefix=a%2F&continuation-token=x", "", "/"),
    ("/k", "response-content-type=text%2Fplain&x-id=GetObject&versionId=v1", "",
     "/k?response-content-type=text/plain&versionId=v1"),
    ("/", "lifecycle&website&cors&restore&tagging&location&logging&notification&policy&requestPayment"
          "&torrent&versioning&versions&acl", "",
     "/?acl&cors&lifecycle&location&logging&notification&policy&requestPayment&restore&tagging&torrent"
     "&versioning&versions&website"),
])
def test_canonical_resource(path: str, query: str, bucket: str, expected: str) -> None:
    assert canonical_resource(path, query, bucket) == expected


def test_date_added_when_missing_and_x_amz_date_blanks_it() -> None:
    now = dt.datetime(2007, 3, 27, 19, 36, 42, tzinfo=UTC)
    headers: dict[str, str] = {}
    sign_v2(DOC_CREDS, "GET", HOST + "/photos/puppy.jpg", headers, now, bucket="awsexamplebucket1")
    assert headers["Date"] == "Tue, 27 Mar 2007 19:36:42 GMT"
    assert string_to_sign("GET", HOST + "/p", headers).split("\n")[3] == "Tue, 27 Mar 2007 19:36:42 GMT"
    with_amz = {"Date": "Tue, 27 Mar 2007 19:36:42 GMT", "X-Amz-Date": "Tue, 27 Mar 2007 19:36:43 GMT"}
    assert string_to_sign("GET", HOST + "/p", with_amz) == (
        "GET\n\n\n\nx-amz-date:Tue, 27 Mar 2007 19:36:43 GMT\n/p")


def test_session_token_is_sent_and_signed_and_resigning_replaces_old_headers() -> None:
    creds = Credentials("AKID", "secret", "the-token")
    fresh = {"Date": "Tue, 27 Mar 2007 19:36:42 GMT"}
    sign_v2(creds, "GET", "http://h/b/k", fresh)
    assert fresh["x-amz-security-token"] == "the-token"
    assert "x-amz-security-token:the-token\n" in string_to_sign("GET", "http://h/b/k", fresh)
    retried = {"Date": "Tue, 27 Mar 2007 19:36:42 GMT", "AUTHORIZATION": "AWS old:old", "X-Amz-Security-Token": "x"}
    sign_v2(creds, "GET", "http://h/b/k", retried)
    assert retried == fresh
    no_token = {"Date": "Tue, 27 Mar 2007 19:36:42 GMT"}
    sign_v2(Credentials("AKID", "secret"), "GET", "http://h/b/k", no_token)
    assert "x-amz-security-token" not in no_token
    assert no_token["Authorization"] != fresh["Authorization"]


SECRET = "sEcReT/never-shown+0123456789abcdefghij"
TOKEN = "ToKeN-never-shown-FwoGZXIvYXdzEJr"


@pytest.mark.parametrize("headers", [{"x-amz-meta-a": 5}, {"Content-Type": None}])
def test_errors_do_not_carry_secrets(headers: dict) -> None:
    with pytest.raises((TypeError, AttributeError)) as info:
        sign_v2(Credentials("AKIAVISIBLE", SECRET, TOKEN), "GET", "http://h/b/k", dict(headers))
    text = "".join(traceback.format_exception(info.value)) + repr(info.value.args)
    assert SECRET not in text and TOKEN not in text


def test_missing_keys_rejected_without_showing_them() -> None:
    for creds in (Credentials("", SECRET, TOKEN), Credentials("AK", "", TOKEN)):
        with pytest.raises(ValueError) as info:
            sign_v2(creds, "GET", "http://h/b/k", {})
        assert SECRET not in str(info.value) and TOKEN not in str(info.value)


# --- cross-check against botocore ------------------------------------------------------------

# Query keys S3 V2 signs (those botocore's HmacV1Auth signs too) and some it does not.
_SIGNED_KEYS = ["acl", "cors", "delete", "lifecycle", "location", "logging", "notification", "partNumber",
                "policy", "requestPayment", "restore", "tagging", "torrent", "uploadId", "uploads", "versionId",
                "versioning", "versions", "website", "response-cache-control", "response-content-disposition",
                "response-content-encoding", "response-content-language", "response-content-type",
                "response-expires"]
_OTHER_KEYS = ["prefix", "delimiter", "marker", "max-keys", "list-type", "continuation-token", "x-id", "ключ"]
_TEXT = "abcXYZ019-_.~ /=&?#%!$'()*,;:@" + "éñ日本€"


def test_matches_botocore_hmacv1auth(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = pytest.importorskip("botocore.auth", reason="botocore (test-only) is not installed")
    awsrequest = pytest.importorskip("botocore.awsrequest")
    credentials = pytest.importorskip("botocore.credentials")
    rng = random.Random(2007)

    def text(low: int, high: int) -> str:
        return "".join(rng.choice(_TEXT) for _ in range(rng.randint(low, high)))

    for case in range(200):
        method = rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
        bucket = rng.choice(["", "", "bkt", "my.bucket"])
        host = f"{bucket}.s3.example.com" if bucket else rng.choice(["127.0.0.1:9000", "s3.example.com"])
        path = "/" + "/".join(quote(text(0, 10), safe="/~") for _ in range(rng.randint(0, 3)))
        pieces = []
        # Each signed key at most once: botocore sorts by key only, rclone by "key=value".
        for key in rng.sample(_SIGNED_KEYS, rng.randint(0, 3)):
            pieces.append(key if rng.random() < 0.4 else f"{key}={quote(text(1, 8), safe='-_.~')}")
        for key in rng.sample(_OTHER_KEYS, rng.randint(0, 3)):
            pieces.append(f"{quote(key, safe='-_.~')}={quote(text(0, 8), safe='-_.~')}")
        rng.shuffle(pieces)
        url = f"http://{host}{path}" + ("?" + "&".join(pieces) if pieces else "")
        headers: dict[str, str] = {}
        if rng.random() < 0.5:
            headers["Content-Type"] = rng.choice(["", " ", "  "]) + "application/octet-stream "
        if rng.random() < 0.4:
            headers["content-md5"] = " 1B2M2Y8AsgTpgAmY7PhCfg=="
        for _ in range(rng.randint(0, 4)):
            name = rng.choice(["x-amz-meta-mtime", "X-Amz-Meta-Md5chksum", "x-amz-storage-class", "X-Amz-Acl",
                               "x-amz-copy-source", "x-amz-server-side-encryption"])
            headers[name] = rng.choice(["", " "]) + text(1, 12).strip() + rng.choice(["", "  "]) + "v"
        if rng.random() < 0.2:
            headers["X-AMZ-META-MTIME"] = "1700000000.5"  # same name as x-amz-meta-mtime, another case
        if rng.random() < 0.3:
            headers["User-Agent"] = "pyclone-docker/test"
        token = rng.choice(["", "", "FwoGZXIvYXdzEJr//////////token+/="])
        now = dt.datetime(2007, 3, 27, tzinfo=UTC) + dt.timedelta(seconds=rng.randint(0, 10 ** 9))

        signer = auth.HmacV1Auth(credentials.Credentials("AKIACROSSCHECK", "cross/check+secret", token or None))
        stamp = now.timestamp()
        monkeypatch.setattr(signer, "_get_date", lambda stamp=stamp: email.utils.formatdate(stamp, usegmt=True))
        theirs = awsrequest.AWSRequest(method=method, url=url, headers=dict(headers))
        if bucket:
            theirs.auth_path = f"/{bucket}{path}"
        signer.add_auth(theirs)

        ours = dict(headers)
        sign_v2(Credentials("AKIACROSSCHECK", "cross/check+secret", token), method, url, ours, now, bucket=bucket)
        context = f"case {case}: {method} {url} {headers!r}"
        assert ours["Authorization"] == theirs.headers["Authorization"], context
        assert ours["Date"] == theirs.headers["Date"], context
        assert ours.get("x-amz-security-token") == theirs.headers.get("x-amz-security-token"), context
