"""The webdav backend's pure parts: the streamed multistatus parser, times, checksums, vendors."""

from __future__ import annotations

import errno
import tracemalloc

import pytest

from pyclone_docker.backends.webdav import props, vendors

NEXTCLOUD = b"""<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" xmlns:oc="http://owncloud.org/ns">
 <d:response><d:href>/remote.php/dav/files/u/dir/</d:href>
  <d:propstat><d:prop><d:getlastmodified>Wed, 27 Sep 2017 14:28:34 GMT</d:getlastmodified>
   <d:resourcetype><d:collection/></d:resourcetype><oc:permissions>RGDNVCK</oc:permissions></d:prop>
   <d:status>HTTP/1.1 200 OK</d:status></d:propstat>
  <d:propstat><d:prop><d:getcontentlength/><oc:checksums/></d:prop>
   <d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>
 </d:response>
 <d:response><d:href>/remote.php/dav/files/u/dir/caf%C3%A9%20x.txt</d:href>
  <d:propstat><d:prop><d:getlastmodified>Fri, 05 Jan 2018 14:14:38 +0000</d:getlastmodified>
   <d:getcontentlength>1234</d:getcontentlength><d:resourcetype/>
   <oc:checksums><oc:checksum>SHA1:F572D396FAE9206628714FB2CE00F72E94F2258F
    MD5:b1946ac92492d2347c6235b4d2611184 ADLER32:084b021f</oc:checksum></oc:checksums>
   <oc:permissions>SRGDNVW</oc:permissions></d:prop>
   <d:status>HTTP/1.1 200 OK</d:status></d:propstat>
 </d:response>
</d:multistatus>
"""


def test_responses_and_their_properties() -> None:
    items = props.parse_bytes(NEXTCLOUD)
    assert [i.href for i in items] == ["/remote.php/dav/files/u/dir/", "/remote.php/dav/files/u/dir/caf%C3%A9%20x.txt"]
    d, f = items
    assert d.is_dir and d.ok and d.permissions == "RGDNVCK" and d.mtime_ns == 1506522514 * 10**9
    assert not f.is_dir and f.ok and f.size == 1234 and f.mtime_ns == 1515161678 * 10**9
    assert f.hashes() == {"sha1": "f572d396fae9206628714fb2ce00f72e94f2258f", "md5": "b1946ac92492d2347c6235b4d2611184"}
    assert "S" in f.permissions  # a share: owncloud_exclude_shares drops it


def test_a_response_is_good_when_any_status_is_2xx() -> None:
    bad = props.parse_bytes(b'<d:multistatus xmlns:d="DAV:"><d:response><d:href>/x</d:href><d:propstat>'
                            b"<d:prop/><d:status>HTTP/1.1 403 Forbidden</d:status></d:propstat></d:response>"
                            b"</d:multistatus>")
    assert not bad[0].ok and bad[0].code == 403


@pytest.mark.parametrize("text, want", [
    ("Wed, 27 Sep 2017 14:28:34 GMT", 1506522514),  # RFC 1123, as the RFC says
    ("Fri, 05 Jan 2018 14:14:38 +0000", 1515161678),  # RFC 1123 with a numeric zone
    ("2018-10-31T13:57:11Z", 1540994231),  # RFC 3339
    ("", 0), ("garbage", 0),  # rclone: the epoch
])
def test_modtimes_in_the_formats_rclone_reads(text: str, want: int) -> None:
    assert props.parse_time(text) == want * 10**9


def test_microsoft_iscollection_and_unknown_types() -> None:
    item = props.parse_bytes(b'<d:multistatus xmlns:d="DAV:"><d:response><d:href>/x/</d:href><d:propstat><d:prop>'
                             b"<d:iscollection>1</d:iscollection><d:resourcetype><z:odd xmlns:z='urn:z'/>"
                             b"</d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
                             b"</d:response></d:multistatus>")[0]
    assert item.is_dir and item.other_type == "{urn:z}odd"


def test_a_listing_is_parsed_in_pieces_without_holding_it() -> None:
    entry = (b"<d:response><d:href>/dav/d/file-%05d.txt</d:href><d:propstat><d:prop><d:getcontentlength>7"
             b"</d:getcontentlength><d:resourcetype/><d:getlastmodified>Wed, 27 Sep 2017 14:28:34 GMT"
             b"</d:getlastmodified></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>\n")
    n = 20_000
    chunks = [b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">']
    chunks += [entry % i for i in range(n)]
    chunks.append(b"</d:multistatus>")
    whole = sum(map(len, chunks))
    feed = iter(chunks)

    def read(view: memoryview) -> int:
        part = next(feed, b"")
        view[:len(part)] = part
        return len(part)

    tracemalloc.start()
    count = 0
    for p in props.parse_stream(read, piece=1 << 20):
        count += 1
        assert p.size == 7
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == n
    assert peak < whole / 4, f"peak {peak} bytes for a {whole}-byte listing"  # never the whole text or tree


@pytest.mark.parametrize("vendor", ["sharepoint", "sharepoint-ntlm"])
def test_sharepoint_is_refused_with_why(vendor: str) -> None:
    with pytest.raises(ValueError, match="not supported by pyclone-docker"):
        vendors.quirks(vendor)


def test_vendor_quirks_follow_rclone() -> None:
    assert vendors.quirks("") == vendors.quirks("other") == vendors.VENDORS["other"]
    nc = vendors.quirks("nextcloud")
    assert nc.use_oc_mtime and nc.propset_mtime and nc.oc_sha1 and not nc.oc_md5 and not nc.can_stream
    oc = vendors.quirks("owncloud")
    assert oc.oc_md5 and oc.oc_sha1 and oc.can_stream
    assert vendors.quirks("rclone").use_oc_mtime and not vendors.quirks("rclone").propset_mtime
    assert vendors.quirks("who-knows") == vendors.UNKNOWN  # rclone: a debug line, no quirks


def test_a_broken_answer_is_eio() -> None:
    with pytest.raises(OSError) as e:
        props.parse_bytes(b'<d:multistatus xmlns:d="DAV:"><d:response><d:href>/x</d:hre')
    assert e.value.errno == errno.EIO and "bad multistatus XML" in str(e.value)
