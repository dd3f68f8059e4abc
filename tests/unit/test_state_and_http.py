"""State file round trip and the HTTP request parser (pure logic)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from pyclone_docker.docker.state import StateFile
from pyclone_docker.lib.httpserver import MAX_BODY, ParseError, parse_request
from pyclone_docker.lib.timefmt import format_created, format_rfc3339, parse_created


def test_created_formats_match_go() -> None:
    ns = 1_795_000_000_778_930_403
    assert format_created(ns) == "2026-11-18T11:06:40.778930403Z"
    assert format_created(1_795_000_000_500_000_000) == "2026-11-18T11:06:40.5Z"
    assert format_created(1_795_000_000_000_000_000) == "2026-11-18T11:06:40Z"
    assert format_rfc3339(ns) == "2026-11-18T11:06:40Z"
    assert parse_created("2026-11-18T11:06:40.778930403Z") == ns
    assert parse_created("2026-11-18T12:06:40.778930403+01:00") == ns


def test_state_is_atomic_0600_and_sorted(tmp_path) -> None:
    sf = StateFile(str(tmp_path))
    sf.save([{"name": "b", "mounts": []}, {"name": "a", "mounts": ["x"]}])
    assert stat.S_IMODE(os.stat(sf.path).st_mode) == 0o600
    assert [v["name"] for v in json.loads(open(sf.path).read())] == ["a", "b"]
    assert [v["name"] for v in sf.load()] == ["a", "b"]
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no temp files left


def test_missing_state_is_empty_and_corrupt_state_is_kept_aside(tmp_path) -> None:
    sf = StateFile(str(tmp_path))
    assert sf.load() == []
    with open(sf.path, "w") as f:
        f.write("{broken")
    assert sf.load() == []
    kept = [p for p in os.listdir(tmp_path) if ".corrupt-" in p]
    assert len(kept) == 1 and open(tmp_path / kept[0]).read() == "{broken"


def test_rclone_state_file_is_readable(tmp_path) -> None:
    """A state file as rclone 1.60 writes it (its JSON field names and layout, copied from a real one)."""
    rclone = ('[{"name":"o2","mountpoint":"/srv/rdtest/base/o2","created":"2026-11-23T07:01:01.778930403Z",'
              '"fs":"","type":"local","path":"/srv/rdtest/data2","options":{"local-one-file-system":"true",'
              '"mount-type":"mount","persist":"false"},"mounts":[]},{"name":"v1","mountpoint":'
              '"/srv/rdtest/base/v1","created":"2026-11-23T06:59:38.654669052Z","fs":"/srv/rdtest/data",'
              '"options":{},"mounts":["c1","c2"]}]')
    (tmp_path / "docker-plugin.state").write_text(rclone)
    from pyclone_docker.docker.volume import Volume

    vols = [Volume.from_record(r, "/mp/" + r["name"]) for r in StateFile(str(tmp_path)).load()]
    assert vols[0].path == "/srv/rdtest/data2" and vols[0].options["local-one-file-system"] == "true"
    assert vols[1].fs == "/srv/rdtest/data" and vols[1].mount_ids == ["c1", "c2"]
    assert vols[1].record()["created"] == "2026-11-23T06:59:38.654669052Z"


def req(raw: bytes):
    return parse_request(bytearray(raw))


def test_parse_docker_request() -> None:
    r, used = req(b"POST /VolumeDriver.Get HTTP/1.1\r\nHost: \r\nUser-Agent: Go-http-client/1.1\r\n"
                  b"Content-Length: 19\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n\r\n"
                  b'{"Name":"rsch-v1"}\n')
    assert (r.method, r.path, r.body) == ("POST", "/VolumeDriver.Get", b'{"Name":"rsch-v1"}\n')
    assert used == len(b"POST /VolumeDriver.Get HTTP/1.1\r\nHost: \r\nUser-Agent: Go-http-client/1.1\r\n"
                       b"Content-Length: 19\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n\r\n") + 19


def test_incomplete_requests_wait() -> None:
    assert req(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n") is None
    assert req(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc") is None


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"POST x HTTP/1.1\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nbad header\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), 413),
    (b"POST /x HTTP/1.1\r\nX: " + b"a" * 20000, 431),
])
def test_bad_requests(raw: bytes, status: int) -> None:
    with pytest.raises(ParseError) as ei:
        req(raw)
    assert ei.value.status == status


def test_chunked() -> None:
    r, _ = req(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert r.body == b"abcde"


def test_connection_close_and_http10() -> None:
    r, _ = req(b"POST /x HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert r.keep_alive is False
    r, _ = req(b"POST /x HTTP/1.1\r\n\r\n")
    assert r.keep_alive is True
    r, _ = req(b"POST /x HTTP/1.0\r\n\r\n")
    assert r.keep_alive is False


H = b"POST /x HTTP/1.1\r\nHost: h\r\n"


@pytest.mark.parametrize("raw, status", [
    (H + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc", 400),  # RFC 9112 §6.3: conflicting
    (H + b"Content-Length: 1_1\r\n\r\n" + b"x" * 11, 400),  # int() reads 11
    (H + b"Content-Length: +5\r\n\r\nhello", 400),
    (H + b"Content-Length: \x0b5\r\n\r\nhello", 400),  # whitespace int() skips, not OWS
    (H + b"Content-Length: \xa05\r\n\r\nhello", 400),
    (H + b"Content-Length: \xb9\r\n\r\nx", 400),  # superscript one: isdigit() says yes
    (H + b"Content-Length: 5 5\r\n\r\nhello", 400),
    (H + b"Content-Length: -5\r\n\r\nhello", 400),
    (H + b"Transfer-Encoding: gzip\r\n\r\n", 400),  # chunked not last: length unknown
    (H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    (H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
    (H + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400),
    (H + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
    (H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 400),
    (H + b"X: a\rb\r\n\r\n", 400),
    (b"POST /x HTTP/1.1x\r\n\r\n", 400),
    (b"POST /x HTTP/2.0\r\n\r\n", 505),
])
def test_framing_follows_rfc9112(raw: bytes, status: int) -> None:
    with pytest.raises(ParseError) as ei:
        req(raw)
    assert ei.value.status == status


@pytest.mark.parametrize("raw, body", [
    (b"POST /x HTTP/1.1\nContent-Length: 3\n\nabc", b"abc"),  # bare LF ends lines (RFC 9112 §2.2)
    (b"\r\nPOST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", b"abc"),  # a leading empty line
    (H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", b"abc"),  # repeated, same value
    (H + b"Content-Length:\t003 \r\n\r\nabc", b"abc"),  # OWS around a value, leading zeros
    (H + b"Transfer-Encoding: CHUNKED\r\n\r\n3;x=y\r\nabc\n0\r\nT: v\r\n\r\n", b"abc"),
])
def test_what_rfc9112_allows_is_accepted(raw: bytes, body: bytes) -> None:
    r, used = req(raw)
    assert r.body == body and used == len(raw)


def test_query_is_kept() -> None:
    r, _ = req(b"POST /rc/noop?a=1&b=%20 HTTP/1.1\r\n\r\n")
    assert (r.path, r.query) == ("/rc/noop", "a=1&b=%20")
