"""The XML bodies of the S3 API that the backend reads: listings, bucket lists, errors and
the multipart and copy results. Namespaces are ignored (providers differ in them)."""

from __future__ import annotations

import datetime as _dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import unquote_plus


@dataclass(slots=True)
class ListedObject:
    key: str
    size: int
    mtime_ns: int  # LastModified
    etag: str  # without its quotes, lower case


@dataclass
class ListPage:
    objects: list[ListedObject] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_token: str = ""  # V2: NextContinuationToken; V1: NextMarker (or the last key)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(elem: ET.Element) -> dict[str, ET.Element]:
    return {_local(c.tag): c for c in elem}


def _text(elem: ET.Element | None) -> str:
    return (elem.text or "") if elem is not None else ""


def parse_time(text: str) -> int:
    """An ISO 8601 time as S3 writes it (2021-03-04T05:06:07.123Z) in ns since the epoch."""
    text = text.strip()
    if not text:
        return 0
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


def clean_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def parse_list(body: bytes, url_encoded: bool) -> ListPage:
    """ListObjects (V1) or ListObjectsV2 result; keys decoded when `encoding-type=url` was asked."""
    root = ET.fromstring(body)
    page = ListPage()
    decode = unquote_plus if url_encoded else (lambda s: s)
    last_key = ""
    for child in root:
        tag = _local(child.tag)
        if tag == "Contents":
            c = _children(child)
            key = decode(_text(c.get("Key")))
            last_key = key
            try:
                size = int(_text(c.get("Size")) or 0)
            except ValueError:
                size = 0
            page.objects.append(ListedObject(key, size, parse_time(_text(c.get("LastModified"))),
                                             clean_etag(_text(c.get("ETag")))))
        elif tag == "CommonPrefixes":
            for p in child:
                if _local(p.tag) == "Prefix":
                    page.prefixes.append(decode(p.text or ""))
                    last_key = page.prefixes[-1]
        elif tag == "IsTruncated":
            page.truncated = (child.text or "").strip().lower() == "true"
        elif tag == "NextContinuationToken":
            page.next_token = child.text or ""
        elif tag == "NextMarker":
            page.next_token = decode(child.text or "")
    if page.truncated and not page.next_token:
        page.next_token = last_key  # V1 without a delimiter: the last key is the marker
    return page


def parse_buckets(body: bytes) -> list[tuple[str, int]]:
    """ListBuckets: (name, creation time in ns)."""
    root = ET.fromstring(body)
    out = []
    for elem in root.iter():
        if _local(elem.tag) == "Bucket":
            c = _children(elem)
            out.append((_text(c.get("Name")), parse_time(_text(c.get("CreationDate")))))
    return out


def parse_error(body: bytes) -> tuple[str, str]:
    """(Code, Message) of an S3 error body; ("", "") if it is not one."""
    if not body or b"<" not in body[:200]:
        return "", ""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return "", ""
    c = _children(root)
    return _text(c.get("Code")).strip(), _text(c.get("Message")).strip()


def find_text(body: bytes, name: str) -> str:
    """The text of the first element called `name` (UploadId, ETag of a copy result...)."""
    root = ET.fromstring(body)
    for elem in root.iter():
        if _local(elem.tag) == name:
            return elem.text or ""
    return ""


def complete_body(parts: list[tuple[int, str]]) -> bytes:
    """CompleteMultipartUpload's request body for (part number, ETag) pairs."""
    out = ['<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">']
    for number, etag in parts:
        out.append(f'<Part><PartNumber>{number}</PartNumber><ETag>"{etag}"</ETag></Part>')
    out.append("</CompleteMultipartUpload>")
    return "".join(out).encode()


def escape(text: str) -> str:
    """XML text escaping (xml.sax.saxutils imports urllib.request, http.client and email)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def create_bucket_body(location: str) -> bytes:
    if not location:
        return b""
    return ('<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<LocationConstraint>{escape(location)}</LocationConstraint></CreateBucketConfiguration>").encode()
