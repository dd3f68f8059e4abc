"""PROPFIND bodies: the request bodies rclone sends, and a streamed parser of the multistatus
answer.

The answer is fed to ElementTree's pull parser in the pieces it arrives in, and each
<response> is handed out (and dropped) as soon as it ends, so a 10,000-entry listing never holds
the whole XML text, nor a tree of it, in memory. Properties are read as rclone's api.Prop reads them:
every <propstat> of a response adds to one set of properties, and the response is good when
any of its statuses is 2xx.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import errno
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

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


_TIMES: dict[str, int] = {}  # a listing's entries share their few distinct modtimes


def parse_time(text: str) -> int:
    """getlastmodified in ns: RFC 1123 (as the RFC says), RFC 1123 with a numeric zone, Unix
    date and RFC 3339, as rclone tries them; the epoch when none fits (as rclone)."""
    got = _TIMES.get(text)
    if got is None:
        if len(_TIMES) > 4096:
            _TIMES.clear()
        got = _TIMES[text] = _parse_time(text)
    return got


def _parse_time(text: str) -> int:
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





_RESPONSE, _HREF, _PROPSTAT, _STATUS, _PROP = ("{DAV:}response", "{DAV:}href", "{DAV:}propstat", "{DAV:}status",
                                             "{DAV:}prop")
_RESOURCETYPE, _COLLECTION, _LENGTH, _MODIFIED, _ISCOLLECTION = (
    "{DAV:}resourcetype", "{DAV:}collection", "{DAV:}getcontentlength", "{DAV:}getlastmodified", "{DAV:}iscollection")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _prop_of(response: Any) -> Prop:
    """A finished <response> element as rclone's api.Prop reads it."""
    p = Prop()
    for child in response:
        tag = child.tag
        if tag == _HREF:
            p.href = (child.text or "").strip()
        elif tag == _PROPSTAT:
            for sub in child:
                if sub.tag == _STATUS:
                    p.statuses.append((sub.text or "").strip())
                elif sub.tag == _PROP:
                    for prop in sub:
                        _read_prop(p, prop)
    return p


def _read_prop(p: Prop, prop: Any) -> None:
    tag = prop.tag
    if tag == _RESOURCETYPE:
        for kind in prop:
            if kind.tag == _COLLECTION:
                p.collection = True
            elif not p.other_type and isinstance(kind.tag, str):
                p.other_type = kind.tag
    elif tag == _LENGTH:
        try:
            p.size = int((prop.text or "").strip() or 0)
        except ValueError:
            p.size = 0
    elif tag == _MODIFIED:
        p.mtime_ns = parse_time(prop.text or "")
    elif tag == _ISCOLLECTION:
        p.is_collection = prop.text or ""
    elif isinstance(tag, str):
        local = _local(tag)
        if local == "permissions":
            p.permissions = prop.text or ""
        elif local == "sha1hex":
            p.me_sha1 = (prop.text or "").strip()
        elif local == "checksums" and tag.startswith("{"):
            p.checksums.extend(c.text or "" for c in prop if _local(c.tag) == "checksum")


class MultistatusParser:
    """Feed it the body's pieces; each finished <response> comes out of `feed` and `close`.

    ElementTree's pull parser (expat and the tree builder in C), asked for one event only: the
    start of the first element, <multistatus>. After each piece its children are the responses
    seen so far, all finished but maybe the last (the tree builder appends an element at its
    start): those are read and dropped from the tree, so only the responses of the piece being
    parsed are held, and no Python runs for the ~25 parse events of each entry."""

    def __init__(self) -> None:
        from xml.etree import ElementTree

        self._et = ElementTree
        self._p = ElementTree.XMLPullParser(events=("start",))
        self._root: Any = None

    def _take(self, closed: bool) -> list[Prop]:
        try:  # the root's start; after it, only a parse error, which feed() queues for here
            for _ev, el in self._p.read_events():
                if self._root is None:
                    self._root = el
                    self._quiet()
        except self._et.ParseError as e:
            raise OSError(errno.EIO, f"bad multistatus XML from the server: {e}") from None
        root = self._root
        if root is None:
            return []
        n = len(root) if closed else len(root) - 1  # the last one may still be open
        if n <= 0:
            return []
        done = [_prop_of(el) for el in root[:n] if el.tag == _RESPONSE]
        del root[:n]
        return done

    def _quiet(self) -> None:
        """No more start events: each would be queued, its tuple made, for nothing (CPython
        3.10-3.13's XMLPullParser; elsewhere they are queued and drained by _take)."""
        try:
            self._p._parser._setevents(self._p._events_queue, ())
        except AttributeError:
            pass

    def _parse(self, data: bytes | None) -> None:
        try:
            if data is None:
                self._p.close()
            else:
                self._p.feed(data)
        except self._et.ParseError as e:  # a server's broken answer: an I/O error, never a crash
            raise OSError(errno.EIO, f"bad multistatus XML from the server: {e}") from None

    def feed(self, data: bytes | memoryview) -> Iterator[Prop]:
        self._parse(bytes(data))
        yield from self._take(closed=False)

    def close(self) -> Iterator[Prop]:
        self._parse(None)
        yield from self._take(closed=True)


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
