"""rclone's `simplejson` chunker metadata: the small object named after a composite file.

Written as Go's json.Marshal writes rclone's struct, with no spaces and no newline:
`{"ver":1,"size":N,"nchunks":K}` then `"md5"`, `"sha1"` and `"txn"` when set; "ver" is 2 only
with a norename transaction ID. Read as strictly as rclone reads it, so that a small file of
one's own is not taken for metadata: at most 255 bytes, braces at both ends, the three core
fields present, hashes of the right length in hex, 1 <= nchunks, a version rclone knows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_METADATA_SIZE = 1023  # a larger object is never metadata (rclone's maxMetadataSize)
MAX_METADATA_SIZE_WRITTEN = 255
METADATA_VERSION = 2
MAX_SAFE_CHUNK_NUMBER = 10_000_000


class MetaError(ValueError):
    """Metadata that does not parse (`made_by_chunker`: written by a chunker all the same)."""

    def __init__(self, message: str, made_by_chunker: bool = False) -> None:
        super().__init__(message)
        self.made_by_chunker = made_by_chunker


ERR_META_TOO_BIG = "metadata is too big"
ERR_META_UNKNOWN = "unknown metadata, please upgrade rclone"
ERR_CHUNK_OVERFLOW = "chunk number overflow"


@dataclass(frozen=True)
class Metadata:
    size: int
    nchunks: int
    md5: str = ""
    sha1: str = ""
    txn: str = ""
    version: int = 1


def marshal(size: int, nchunks: int, md5: str = "", sha1: str = "", txn: str = "") -> bytes:
    """The metadata object's bytes, exactly as rclone 1.75.2 writes them."""
    version = METADATA_VERSION if txn else 1
    out = f'{{"ver":{version},"size":{size},"nchunks":{nchunks}'
    for key, value in (("md5", md5), ("sha1", sha1), ("txn", txn)):
        if value:
            out += f",{json.dumps(key)}:{json.dumps(value)}"
    data = (out + "}").encode()
    if len(data) >= MAX_METADATA_SIZE_WRITTEN:
        raise MetaError("metadata can't be this big, please report to rclone developers")
    return data


def _field(obj: dict, name: str) -> object:
    """Go's encoding/json: an exact key, else one equal under case folding (the last one wins)."""
    if name in obj:
        return obj[name]
    found = None
    for key, value in obj.items():
        if key.casefold() == name.casefold():
            found = (value,)
    return found[0] if found else None


def _int(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MetaError(f"json: cannot unmarshal {type(value).__name__} into Go struct field {what}")
    return value


def _str(value: object, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MetaError(f"json: cannot unmarshal {type(value).__name__} into Go struct field {what} of type string")
    return value


def _is_hex(s: str) -> bool:
    try:
        bytes.fromhex(s)
    except ValueError:
        return False
    return True


def unmarshal(data: bytes) -> Metadata:
    """Parse metadata as rclone's unmarshalSimpleJSON; MetaError says why not (and whether a
    chunker wrote it, as a future version's metadata)."""
    if len(data) > MAX_METADATA_SIZE_WRITTEN:
        raise MetaError(ERR_META_TOO_BIG)
    if len(data) < 2 or data[:1] != b"{" or data[-1:] != b"}":
        raise MetaError("invalid json")
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise MetaError(str(e)) from None
    if not isinstance(obj, dict):
        raise MetaError("invalid json")
    version = _int(_field(obj, "ver"), "ver")
    size = _int(_field(obj, "size"), "size")
    nchunks = _int(_field(obj, "nchunks"), "nchunks")
    md5 = _str(_field(obj, "md5"), "md5")
    sha1 = _str(_field(obj, "sha1"), "sha1")
    txn = _str(_field(obj, "txn"), "txn")
    if version is None or size is None or nchunks is None:
        raise MetaError("missing required field")
    if version < 1:
        raise MetaError("wrong version")
    if size < 0:
        raise MetaError("negative file size")
    if nchunks < 0:
        raise MetaError("negative number of chunks")
    if nchunks > MAX_SAFE_CHUNK_NUMBER:
        raise MetaError(ERR_CHUNK_OVERFLOW, made_by_chunker=True)
    if md5 and (len(md5) != 32 or not _is_hex(md5)):
        raise MetaError("wrong md5 hash")
    if sha1 and (len(sha1) != 40 or not _is_hex(sha1)):
        raise MetaError("wrong sha1 hash")
    if nchunks < 1 and version <= METADATA_VERSION:
        raise MetaError("wrong number of chunks")
    if version > METADATA_VERSION:
        raise MetaError(ERR_META_UNKNOWN, made_by_chunker=True)
    return Metadata(size, nchunks, md5, sha1, txn, version)


def made_by_chunker(data: bytes) -> bool:
    """Whether `data` reads as chunker metadata (a small upload that does gets a metadata
    object of its own, so it is never mistaken for one)."""
    try:
        unmarshal(data)
    except MetaError as e:
        return e.made_by_chunker
    return True


def read_txn(data: bytes) -> str:
    """rclone's readXactID: the "txn" of what may be metadata, "" for anything else."""
    if len(data) > MAX_METADATA_SIZE_WRITTEN:
        return ""
    try:
        obj = json.loads(data)
        if not isinstance(obj, dict):
            return ""
        for name in ("ver", "size", "nchunks"):  # a field of the wrong type fails Go's Unmarshal
            _int(_field(obj, name), name)
        for name in ("md5", "sha1"):
            _str(_field(obj, name), name)
        return _str(_field(obj, "txn"), "txn")
    except (ValueError, UnicodeDecodeError):  # MetaError is a ValueError
        return ""
