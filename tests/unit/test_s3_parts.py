"""The s3 backend's pure parts: options resolved as rclone's NewFs, addressing, modtime
metadata, part sizes and the API's XML. No server needed."""

from __future__ import annotations

import pytest

from pyclone_docker.backends import s3 as s3mod
from pyclone_docker.backends.base import BackendContext
from pyclone_docker.backends.s3.api import mtime_header, parse_mtime, quote_key
from pyclone_docker.backends.s3.config import resolve
from pyclone_docker.backends.s3.providers import PROVIDERS, quirks
from pyclone_docker.backends.s3.transfer import part_size
from pyclone_docker.backends.s3.xmlparse import complete_body, parse_error, parse_list, parse_time


def cfg(**raw: str):
    base = {"access_key_id": "AK", "secret_access_key": "SK"}
    base.update(raw)
    return resolve(s3mod.INFO.parse_options(base), BackendContext())


def test_mtime_metadata_is_rclones_text() -> None:
    # what rclone 1.75.2 wrote for a file touched to 2021-03-04 05:06:07.123456789 UTC
    assert mtime_header(1614834367_123456789) == "1614834367.123456789"
    # trailing zeros cut, and before 1970 a sign, as rclone 1.75.2 wrote them (checked on moto)
    assert [mtime_header(t) for t in (1577836800 * 10**9, 1577836800_500000000, 1577836800_000000005,
                                      1577836800_120000000, -500_000_000)] == [
        "1577836800", "1577836800.5", "1577836800.000000005", "1577836800.12", "-0.5"]
    assert parse_mtime("-0.5") == -500_000_000 and parse_mtime("-1.25") == -1_250_000_000
    assert parse_mtime("1614834367.123456789") == 1614834367_123456789
    assert mtime_header(5) == "0.000000005" and parse_mtime("0") == 0
    assert parse_mtime("1614834367") == 1614834367 * 10**9
    assert parse_mtime("1614834367.5") == 1614834367_500000000
    assert parse_mtime("1614834367.1234567891") == 1614834367_123456789  # beyond ns: cut
    assert parse_mtime("") is None and parse_mtime("yesterday") is None and parse_mtime("1.2e3") is None


def test_provider_quirks_as_rclone() -> None:
    assert len(PROVIDERS) >= 50 and quirks("Nope") is None
    other, aws = quirks("Other"), quirks("AWS")
    assert other is not None and aws is not None
    assert other.path_style and other.list_version == 1 and not other.list_url_encode
    assert not aws.path_style and aws.list_version == 2 and not aws.use_unsigned_payload


def test_path_style_follows_the_provider() -> None:
    # rclone's setQuirks: only a provider with the force_path_style quirk may be path style
    assert cfg(provider="Other", endpoint="http://h:9000").path_style
    assert not cfg(provider="Other", endpoint="http://h:9000", force_path_style="false").path_style
    assert not cfg(provider="AWS").path_style  # force_path_style=true (the default) is overridden
    assert not cfg(provider="Wasabi", endpoint="s3.wasabisys.com").path_style
    assert not cfg(provider="Minio", endpoint="http://h", use_accelerate_endpoint="true").path_style


def test_urls_for_both_styles() -> None:
    path = cfg(provider="Minio", endpoint="http://127.0.0.1:9000")
    assert path.base_url("bkt") == ("http://127.0.0.1:9000", "/bkt")
    vhost = cfg(provider="Minio", endpoint="http://localhost:9000", force_path_style="false")
    assert vhost.base_url("bkt") == ("http://bkt.localhost:9000", "")
    aws = cfg(provider="AWS", region="eu-west-1")
    assert aws.base_url("bkt") == ("https://bkt.s3.eu-west-1.amazonaws.com", "")
    assert cfg(provider="AWS").region == "us-east-1"
    assert cfg(provider="AWS", use_dual_stack="true").base_url("b")[0] == "https://b.s3.dualstack.us-east-1.amazonaws.com"
    assert cfg(provider="Ceph", endpoint="ceph.example:7480").endpoint == "https://ceph.example:7480"


def test_bad_options_are_refused_with_rclones_words() -> None:
    with pytest.raises(ValueError, match="chunk size: 1Mi is less than 5Mi"):
        cfg(chunk_size="1M")
    with pytest.raises(ValueError, match="upload cutoff: 6Gi is greater than 5Gi"):
        cfg(upload_cutoff="6G")
    with pytest.raises(ValueError, match="access_key_id not found"):
        resolve(s3mod.INFO.parse_options({"secret_access_key": "x"}), BackendContext())
    with pytest.raises(ValueError, match="secret_access_key not found"):
        resolve(s3mod.INFO.parse_options({"access_key_id": "x"}), BackendContext())
    with pytest.raises(ValueError, match="not supported by pyclone-docker yet"):
        cfg(versions="true")
    with pytest.raises(ValueError, match="sse_customer_key and sse_customer_key_base64"):
        cfg(sse_customer_key="k" * 32, sse_customer_key_base64="aw==")


def test_anonymous_and_env_auth(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_SHARED_CREDENTIALS_FILE", "AWS_ACCESS_KEY", "AWS_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert resolve(s3mod.INFO.parse_options({}), BackendContext()).credentials is None
    creds_file = tmp_path / "credentials"
    creds_file.write_text("[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = S1\n"
                          "[other]\naws_access_key_id = OTHER\naws_secret_access_key = S2\naws_session_token = T\n")
    opts = {"env_auth": "true", "shared_credentials_file": str(creds_file)}
    got = resolve(s3mod.INFO.parse_options(opts), BackendContext()).credentials
    assert got is not None and got.access_key_id == "FROMFILE"
    got = resolve(s3mod.INFO.parse_options({**opts, "profile": "other"}), BackendContext()).credentials
    assert got is not None and (got.access_key_id, got.session_token) == ("OTHER", "T")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "FROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "S3")
    got = resolve(s3mod.INFO.parse_options(opts), BackendContext()).credentials
    assert got is not None and got.access_key_id == "FROMENV"
    assert "S3" not in repr(got)


def test_sse_customer_key_headers() -> None:
    c = cfg(sse_customer_algorithm="AES256", sse_customer_key="k" * 32)
    headers = dict(c.sse_headers)
    assert headers["x-amz-server-side-encryption-customer-algorithm"] == "AES256"
    assert headers["x-amz-server-side-encryption-customer-key"] == "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="
    assert c.etag_is_not_md5 and "customer-key" not in repr(c)


def test_part_size_grows_past_max_parts() -> None:
    mib = 1 << 20
    assert part_size(-1, 5 * mib, 10000) == 5 * mib
    assert part_size(1 << 30, 5 * mib, 10000) == 5 * mib
    big = 100 * (1 << 30)  # 100 GiB in at most 10,000 parts
    size = part_size(big, 5 * mib, 10000)
    assert size % mib == 0 and size * 10000 >= big and (size - mib) * 10000 < big


def test_keys_are_quoted_for_the_path() -> None:
    assert quote_key("a b/c+d/é~") == "a%20b/c%2Bd/%C3%A9~"


def test_list_v2_url_encoded() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>d%2F</Prefix>
<KeyCount>3</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<NextContinuationToken>tok=</NextContinuationToken>
<Contents><Key>d/a+b%C3%A9</Key><LastModified>2021-03-04T05:06:07.123Z</LastModified>
<ETag>&quot;5D41402ABC4B2A76B9719D911017C592&quot;</ETag><Size>5</Size></Contents>
<CommonPrefixes><Prefix>d/sub%2F</Prefix></CommonPrefixes></ListBucketResult>"""
    page = parse_list(body, url_encoded=True)
    assert page.truncated and page.next_token == "tok="
    assert [(o.key, o.size, o.etag) for o in page.objects] == [("d/a bé", 5, "5d41402abc4b2a76b9719d911017c592")]
    assert page.objects[0].mtime_ns == 1614834367_123000000
    assert page.prefixes == ["d/sub/"]


def test_list_v1_marker_is_the_last_key_without_next_marker() -> None:
    body = (b"<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a+b</Key><Size>1</Size>"
            b"</Contents><Contents><Key>c</Key><Size>2</Size></Contents></ListBucketResult>")
    page = parse_list(body, url_encoded=False)
    assert [o.key for o in page.objects] == ["a+b", "c"] and page.next_token == "c"


def test_errors_and_bodies() -> None:
    assert parse_error(b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>") == ("NoSuchKey", "gone")
    assert parse_error(b"") == ("", "") and parse_error(b"not xml") == ("", "")
    assert parse_time("2009-10-12T17:50:30.000Z") == 1255369830 * 10**9
    assert complete_body([(1, "aa"), (2, "bb")]).count(b"<Part>") == 2
