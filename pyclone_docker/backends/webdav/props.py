"""PROPFIND bodies: the request bodies rclone sends, and a streamed parser of the multistatus
answer.

The answer is fed to expat in the pieces it arrives in, and each <response> is handed out as
soon as it ends, so a 10,000-entry listing never holds the whole XML text, nor a tree of it,
in memory. Properties are read as rclone's api.Prop reads them:
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





def _local(name: str) -> str:
    return name.rpartition(" ")[2]


(_RESPONSE, _HREF, _STATUS, _LENGTH, _MODIFIED, _ISCOLLECTION, _CHECKSUM, _PERMISSIONS, _SHA1HEX) = range(1, 10)
_ENDS = {"DAV: response": _RESPONSE, "DAV: href": _HREF, "DAV: status": _STATUS, "DAV: getcontentlength": _LENGTH,
         "DAV: getlastmodified": _MODIFIED, "DAV: iscollection": _ISCOLLECTION}
_LOCAL_ENDS = {"checksum": _CHECKSUM, "permissions": _PERMISSIONS, "sha1hex": _SHA1HEX}


class MultistatusParser:
    """Feed it the body's pieces; each finished <response> comes out of `feed` and `close`.

    expat with callbacks, no element tree: only the response being read is held (its Prop),
    and its text nodes until each ends."""

    def __init__(self) -> None:
        from xml.parsers import expat

        p = expat.ParserCreate(namespace_separator=" ")
        p.buffer_text = True
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._chars
        self._p = p
        self._stack: list[str] = []
        self._text: list[str] = []
        self._cur: Prop | None = None
        self._done: list[Prop] = []

    def _start(self, name: str, _attrs: object) -> None:
        stack = self._stack
        if name == "DAV: response":
            self._cur = Prop()
        elif self._cur is not None and stack and stack[-1] == "DAV: resourcetype":
            if name == "DAV: collection":
                self._cur.collection = True
            elif not self._cur.other_type:
                ns, _, local = name.rpartition(" ")
                self._cur.other_type = f"{{{ns}}}{local}" if ns else local
        stack.append(name)
        self._text.clear()

    def _chars(self, data: str) -> None:
        self._text.append(data)

    def _end(self, name: str) -> None:
        stack = self._stack
        stack.pop()
        p = self._cur
        text_parts = self._text
        kind = _ENDS.get(name)
        if kind is None:
            kind = _LOCAL_ENDS.get(name.rpartition(" ")[2], 0)
        if p is None or not kind:
            text_parts.clear()
            return
        text = "".join(text_parts)
        text_parts.clear()
        parent = stack[-1] if stack else ""
        if kind == _RESPONSE:
            self._done.append(p)
            self._cur = None
        elif kind == _HREF:
            if parent == "DAV: response":
                p.href = text.strip()
        elif kind == _STATUS:
            if parent == "DAV: propstat":
                p.statuses.append(text.strip())
        elif kind == _CHECKSUM:
            if parent.endswith(" checksums"):
                p.checksums.append(text)
        elif parent != "DAV: prop":
            return
        elif kind == _LENGTH:
            try:
                p.size = int(text.strip() or 0)
            except ValueError:
                p.size = 0
        elif kind == _MODIFIED:
            p.mtime_ns = parse_time(text)
        elif kind == _ISCOLLECTION:
            p.is_collection = text
        elif kind == _PERMISSIONS:
            p.permissions = text
        elif kind == _SHA1HEX:
            p.me_sha1 = text.strip()

    def _take(self) -> list[Prop]:
        done, self._done = self._done, []
        return done

    def _parse(self, data: bytes, final: bool) -> None:
        from xml.parsers import expat

        try:
            self._p.Parse(data, final)
        except expat.ExpatError as e:  # a server's broken answer: an I/O error, never a crash
            raise OSError(errno.EIO, f"bad multistatus XML from the server: {e}") from None

    def feed(self, data: bytes | memoryview) -> Iterator[Prop]:
        self._parse(bytes(data), False)
        yield from self._take()

    def close(self) -> Iterator[Prop]:
        self._parse(b"", True)
        yield from self._take()


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
