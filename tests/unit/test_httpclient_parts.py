"""lib/httpclient's pure parts: Retry-After, backoff, redaction, header merging, token buckets,
NO_PROXY matching."""

from __future__ import annotations

import email.utils

import pytest

from pyclone_docker.backends.base import BackendContext
from pyclone_docker.lib.httpclient import dump, limits, proxy, retry
from pyclone_docker.lib.httpclient.client import HttpClient, merge_headers


def test_backoff_schedule_is_rclones_pacer():
    assert [retry.backoff(n) for n in range(1, 10)] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.0]
    assert retry.backoff(50) == 2.0


@pytest.mark.parametrize(("value", "seconds"), [
    ("0", 0.0), ("5", 5.0), (" 7 ", 7.0), ("3600", 60.0), (None, None), ("", None), ("soon", None),
    ("-1", None), ("1.5", None),
])
def test_retry_after_seconds(value, seconds):
    assert retry.parse_retry_after(value) == seconds


def test_retry_after_http_date():
    now = 1_700_000_000.0
    assert retry.parse_retry_after(email.utils.formatdate(now + 20, usegmt=True), now=now) == pytest.approx(20)
    assert retry.parse_retry_after(email.utils.formatdate(now - 20, usegmt=True), now=now) == 0.0
    assert retry.parse_retry_after(email.utils.formatdate(now + 999, usegmt=True), now=now) == 60.0


def test_retry_after_counts_only_on_429_and_503():
    assert retry.delay_for(1, 503, "3") == 3.0
    assert retry.delay_for(1, 429, "4") == 4.0
    assert retry.delay_for(1, 500, "3") == 0.01
    assert retry.delay_for(3, 503, None) == 0.04
    assert set(retry.RETRY_STATUSES) == {429, 500, 502, 503, 504, 509}


def test_header_redaction():
    got = dict(dump.redact_headers([
        ("Authorization", "AWS4 x"), ("proxy-authorization", "Basic y"), ("Cookie", "c"), ("Set-Cookie", "s"),
        ("X-Auth-Token", "t"), ("X-Amz-Security-Token", "st"), ("X-My-Password", "p"), ("X-Client-Secret", "cs"),
        ("X-Sig-Signature", "sg"), ("Content-Type", "text/plain"), ("X-Amz-Date", "20240101T000000Z"),
    ]))
    shown = {"Content-Type": "text/plain", "X-Amz-Date": "20240101T000000Z"}
    assert {k: v for k, v in got.items() if v != "XXXX"} == shown
    assert len(got) == 11


def test_query_redaction():
    q = "X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F&X-Amz-Signature=ab&Signature=cd&AWSAccessKeyId=AK&" \
        "x-amz-security-token=tt&prefix=a%2Fb&my_token=zz&flag"
    assert dump.redact_query(q) == ("X-Amz-Algorithm=AWS4&X-Amz-Credential=XXXX&X-Amz-Signature=XXXX&Signature=XXXX&"
                                    "AWSAccessKeyId=XXXX&x-amz-security-token=XXXX&prefix=a%2Fb&my_token=XXXX&flag")
    assert dump.url_without_query("https://u:p@h.example:8443/b/k?X-Amz-Signature=1#f") == "https://h.example:8443/b/k"
    assert dump.url_without_query("http://[::1]:9000/x?y") == "http://[::1]:9000/x"


def test_request_dump_layout():
    d = dump.Dumper({"requests"})
    lines = d.request_lines("0x7", "PUT", "http://h:1/k?a=1", {"User-Agent": "ua", "b-header": "2", "A-Header": "1",
                                                              "Authorization": "secret"}, b"body")
    assert lines[0] == ">" * 60 and lines[-1] == ">" * 60 and lines[1] == "HTTP REQUEST (req 0x7)"
    assert lines[2] == "PUT /k?a=1 HTTP/1.1\nHost: h:1\nUser-Agent: ua\nA-Header: 1\nAuthorization: XXXX\n" \
                       "b-header: 2\n\nbody"
    assert dump.Dumper({"auth", "filters"}).enabled is False
    assert dump.Dumper({"errors"}).errors_only and not dump.Dumper({"errors", "headers"}).errors_only


def test_header_merge_order_caller_wins():
    merged = merge_headers([("X-A", "flag"), ("X-B", "flag")], [("x-b", "dir"), ("X-C", "dir")], {"X-c": "caller"})
    assert merged == {"X-A": "flag", "x-b": "dir", "X-c": "caller"}


def test_client_headers_for():
    c = HttpClient(BackendContext(header=(("X-All", "1"),), header_upload=(("X-Up", "2"),), user_agent="ua/1"), "t")
    assert c.headers_for({"X-Mine": "3"}, "upload") == {"X-All": "1", "X-Up": "2", "X-Mine": "3", "User-Agent": "ua/1"}
    assert c.headers_for(None, "download") == {"X-All": "1", "User-Agent": "ua/1"}
    assert c.headers_for({"USER-AGENT": "x"}) == {"X-All": "1", "USER-AGENT": "x"}
    assert BackendContext().user_agent.startswith("pyclone-docker/v")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_tps_bucket_starts_full_then_paces():
    fc = FakeClock()
    b = limits.TokenBucket(5, 2, full=True, clock=fc.clock, sleep=fc.sleep)
    for _ in range(6):
        b.take(1)
    assert fc.slept == pytest.approx([0.2, 0.2, 0.2, 0.2])  # two at once (the burst), then 5 a second


def test_bandwidth_bucket_starts_empty_and_splits_big_takes():
    fc = FakeClock()
    b = limits.TokenBucket(1000, 100, full=False, clock=fc.clock, sleep=fc.sleep)
    b.take(250)
    assert sum(fc.slept) == pytest.approx(0.25)
    assert all(s <= 0.1 + 1e-9 for s in fc.slept)


def test_buckets_are_shared_process_wide():
    assert limits.tps_bucket(0, 1) is None and limits.tps_bucket(float("nan"), 1) is None
    assert limits.tps_bucket(float("inf"), 1) is None and limits.tps_bucket(-1, 1) is None
    assert limits.tps_bucket(7.5, 0) is limits.tps_bucket(7.5, 1)  # burst at least 1
    from pyclone_docker.parsers.bwtimetable import set_bwtimetable

    t = set_bwtimetable("1M")
    assert limits.bandwidth(t) is limits.bandwidth(set_bwtimetable("1M")) is not None
    assert limits.bandwidth(set_bwtimetable("off")) is None and limits.bandwidth(None) is None
    assert limits.bandwidth(set_bwtimetable("1M:off")).rx_bucket() is None


@pytest.mark.parametrize(("url", "env", "expected"), [
    ("http://s3.example.com/b", {"HTTP_PROXY": "proxy:3128"}, "http://proxy:3128"),
    ("http://s3.example.com/b", {"http_proxy": "http://p:1"}, "http://p:1"),
    ("http://s3.example.com/b", {"HTTP_PROXY": "http://up:1", "http_proxy": "http://low:1"}, "http://up:1"),
    ("http://s3.example.com/b", {"HTTP_PROXY": "", "http_proxy": "http://low:1"}, "http://low:1"),
    ("https://s3.example.com/b", {"HTTP_PROXY": "http://p:1"}, None),
    ("https://s3.example.com/b", {"HTTPS_PROXY": "https://p"}, "https://p:443"),
    ("http://s3.example.com/b", {"HTTP_PROXY": "http://p:1", "REQUEST_METHOD": "GET"}, None),
    ("http://localhost:9000/b", {"HTTP_PROXY": "http://p:1"}, None),
    ("http://127.0.0.5:9000/b", {"HTTP_PROXY": "http://p:1"}, None),
    ("http://[::1]:9000/b", {"HTTP_PROXY": "http://p:1"}, None),
    ("http://s3.example.com/b", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"}, None),
    ("http://example.com/b", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"}, None),
    ("http://example.com/b", {"HTTP_PROXY": "http://p:1", "NO_PROXY": ".example.com"}, "http://p:1"),
    ("http://a.example.com/b", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "*.example.com"}, None),
    ("http://notexample.com/b", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "http://p:1"),
    ("http://10.1.2.3/b", {"HTTP_PROXY": "http://p:1", "no_proxy": "10.0.0.0/8"}, None),
    ("http://10.1.2.3/b", {"HTTP_PROXY": "http://p:1", "no_proxy": "10.1.2.4"}, "http://p:1"),
    ("http://h.test:8080/b", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "h.test:8080"}, None),
    ("http://h.test:8081/b", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "h.test:8080"}, "http://p:1"),
    ("http://h.test/b", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "H.TEST"}, None),
    ("http://h.test/b", {"HTTP_PROXY": "http://p:1", "NO_PROXY": " *"}, None),
])
def test_proxy_from_environment(url, env, expected):
    got = proxy.proxy_for(url, env)
    assert (got.url if got else None) == expected


def test_proxy_credentials_become_a_header_never_a_repr():
    p = proxy.proxy_for("http://s3.example.com/", {"HTTP_PROXY": "http://me:s%3Acret@p:8080"})
    assert p.url == "http://p:8080" and "cret" not in repr(p)
    assert p.headers == (("Proxy-Authorization", "Basic bWU6czpjcmV0"),)  # me:s:cret
    assert proxy.redact_proxy("http://me:secret@p:8080") == "http://p:8080"
    with pytest.raises(ValueError, match="SOCKS5") as err:
        proxy.proxy_for("http://s3.example.com/", {"HTTP_PROXY": "socks5://me:secret@p:1080"})
    assert "secret" not in str(err.value)
