"""PROPFIND bodies: the request bodies rclone sends, and a streamed parser of the multistatus
answer.

The answer is fed to an XMLPullParser in the pieces it arrives in, and each <response> is
handed out and dropped as soon as it ends, so a 10,000-entry listing never holds the whole
XML text, nor its whole tree, in memory. Properties are read as rclone's api.Prop reads them:
every <propstat> of a response adds to one set of properties, and the response is good when
any of its statuses is 2xx.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# what rclone asks for: every vendor with ownCloud checksums, and vendor "other" (the rest send
# an empty body, which RFC 4918 reads as allprop)
OWNCLOUD_PROPS = b"""<?xml version="1.0"?>
<d:propfind  xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">
 <d:prop>
  <d:displayname />
  <d:getlastmodified />
  <d:getcontentlength />
  <d:resourcetype />
  <oc:checksums />
  <oc:permissions />
 </d:prop>
</d:propfind>
"""
STANDARD_PROPS = b"""<?xml version="1.0"?>
<d:propfind xmlns:d="DAV:">
 <d:prop>
  <d:displayname/>
  <d:getlastmodified/>
  <d:getcontentlength/>
  <d:resourcetype/>
 </d:prop>
</d:propfind>
"""

_DAV = "{DAV:}"
_STATUS_2XX = re.compile(r"^HTTP/[\d.]+\s+2\d\d")
_STATUS_CODE = re.compile(r"^HTTP/[0-9.]+\s+(\d+)")


@dataclass(slots=True)
class Prop:
    """One <response>: its href and the properties rclone reads."""

    href: str = ""
    statuses: list[str] = field(default_factory=list)
    collection: bool = False
    other_type: str = ""  # a resourcetype rclone does not know (logged, taken as a file)
    is_collection: str = ""  # Microsoft's <iscollection>
    size: int = 0
    mtime_ns: int = 0
    checksums: list[str] = field(default_factory=list)
    permissions: str = ""
    me_sha1: str = ""  # Fastmail's <ME:sha1hex>

    @property
    def ok(self) -> bool:
        return any(_STATUS_2XX.match(s) for s in self.statuses)

    @property
    def code(self) -> int:
        if not self.statuses:
            return 0
        m = _STATUS_CODE.match(self.statuses[0])
        return int(m.group(1)) if m else 0

    @property
    def is_dir(self) -> bool:
        """rclone's itemIsDir: a DAV: collection, or Microsoft's iscollection 1/true."""
        if self.collection:
            return True
        return self.is_collection.strip().lower() in ("1", "true")

    def hashes(self) -> dict[str, str]:
        """{"md5": hex, "sha1": hex} from oc:checksums ("SHA1:.. MD5:.. ADLER32:..") and ME:sha1hex."""
        out: dict[str, str] = {}
        for text in self.checksums:
            for part in text.split():
                kind, _, value = part.partition(":")
                kind = kind.lower()
                if kind in ("md5", "sha1") and value:
                    out[kind] = value.lower()
        if self.me_sha1:
            out["sha1"] = self.me_sha1.lower()
        return out


def parse_time(text: str) -> int:
    """getlastmodified in ns: RFC 1123 (as the RFC says), RFC 1123 with a numeric zone, Unix
    date and RFC 3339, as rclone tries them; the epoch when none fits (as rclone)."""
    text = text.strip()
    if not text:
        return 0
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None:
        try:
            when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _prop_into(p: Prop, prop: ET.Element) -> None:
    for child in prop:
        name, text = _local(child.tag), (child.text or "")
        if name == "resourcetype":
            for kind in child:
                if kind.tag == _DAV + "collection":
                    p.collection = True
                elif not p.other_type:
                    p.other_type = kind.tag
        elif name == "iscollection" and child.tag.startswith(_DAV):
            p.is_collection = text
        elif name == "getcontentlength" and child.tag.startswith(_DAV):
            try:
                p.size = int(text.strip() or 0)
            except ValueError:
                p.size = 0
        elif name == "getlastmodified" and child.tag.startswith(_DAV):
            p.mtime_ns = parse_time(text)
        elif name == "checksums":
            p.checksums.extend((c.text or "") for c in child if _local(c.tag) == "checksum")
        elif name == "permissions":
            p.permissions = text
        elif name == "sha1hex":
            p.me_sha1 = text.strip()


def _response(elem: ET.Element) -> Prop:
    p = Prop()
    for child in elem:
        if child.tag == _DAV + "href":
            p.href = (child.text or "").strip()
        elif child.tag == _DAV + "propstat":
            for part in child:
                if part.tag == _DAV + "status":
                    p.statuses.append((part.text or "").strip())
                elif part.tag == _DAV + "prop":
                    _prop_into(p, part)
    return p


class MultistatusParser:
    """Feed it the body's pieces; each finished <response> comes out of `feed` and `close`."""

    def __init__(self) -> None:
        self._parser = ET.XMLPullParser(events=("start", "end"))
        self._stack: list[ET.Element] = []

    def feed(self, data: bytes | memoryview) -> Iterator[Prop]:
        self._parser.feed(bytes(data))
        yield from self._events()

    def close(self) -> Iterator[Prop]:
        self._parser.close()
        yield from self._events()

    def _events(self) -> Iterator[Prop]:
        for event, elem in self._parser.read_events():
            if event == "start":
                self._stack.append(elem)
                continue
            self._stack.pop()
            if elem.tag == _DAV + "response":
                yield _response(elem)
                if self._stack:  # drop it from its parent: nothing of a handed-out entry is kept
                    self._stack[-1].remove(elem)
                elem.clear()


def parse_stream(read: Callable[[memoryview], int], piece: int = 64 * 1024) -> Iterator[Prop]:
    """The responses of a multistatus body read with `read(view) -> n` (0 at the end)."""
    parser = MultistatusParser()
    buf = bytearray(piece)
    view = memoryview(buf)
    while n := read(view):
        yield from parser.feed(view[:n])
    yield from parser.close()


def parse_bytes(body: bytes) -> list[Prop]:
    parser = MultistatusParser()
    return [*parser.feed(body), *parser.close()]
