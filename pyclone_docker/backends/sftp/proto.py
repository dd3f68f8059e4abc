"""SFTP version 3 (draft-ietf-secsh-filexfer-02) as OpenSSH speaks it: packet types, attributes
and the status codes, turned into OSError with an errno as the backend interface wants.

Only encoding and decoding lives here; channel.py moves the packets."""

from __future__ import annotations

import errno
import stat as stat_mod
import struct
from dataclasses import dataclass

VERSION = 3

# packet types
INIT, VERSION_REPLY, OPEN, CLOSE, READ, WRITE, LSTAT, FSTAT, SETSTAT, FSETSTAT = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
OPENDIR, READDIR, REMOVE, MKDIR, RMDIR, REALPATH, STAT, RENAME, READLINK, SYMLINK = (
    11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
STATUS, HANDLE, DATA, NAME, ATTRS = 101, 102, 103, 104, 105
EXTENDED, EXTENDED_REPLY = 200, 201

# attribute flags
ATTR_SIZE, ATTR_UIDGID, ATTR_PERMISSIONS, ATTR_ACMODTIME = 0x1, 0x2, 0x4, 0x8
ATTR_EXTENDED = 0x80000000

# open flags
FXF_READ, FXF_WRITE, FXF_APPEND, FXF_CREAT, FXF_TRUNC, FXF_EXCL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20

# status codes
FX_OK, FX_EOF, FX_NO_SUCH_FILE, FX_PERMISSION_DENIED, FX_FAILURE = 0, 1, 2, 3, 4
FX_BAD_MESSAGE, FX_NO_CONNECTION, FX_CONNECTION_LOST, FX_OP_UNSUPPORTED = 5, 6, 7, 8

_STATUS_ERRNO = {
    FX_EOF: errno.ENODATA,
    FX_NO_SUCH_FILE: errno.ENOENT,
    FX_PERMISSION_DENIED: errno.EACCES,
    FX_FAILURE: errno.EIO,  # OpenSSH folds every other errno into this one; callers refine it
    FX_BAD_MESSAGE: errno.EPROTO,
    FX_NO_CONNECTION: errno.ENOTCONN,
    FX_CONNECTION_LOST: errno.ECONNRESET,
    FX_OP_UNSUPPORTED: errno.ENOTSUP,
}
_STATUS_NAMES = {FX_OK: "ok", FX_EOF: "end of file", FX_NO_SUCH_FILE: "no such file",
                 FX_PERMISSION_DENIED: "permission denied", FX_FAILURE: "failure", FX_BAD_MESSAGE: "bad message",
                 FX_NO_CONNECTION: "no connection", FX_CONNECTION_LOST: "connection lost",
                 FX_OP_UNSUPPORTED: "operation unsupported"}

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HDR = struct.Struct(">IBI")  # length, type, request id


class SftpStatus(OSError):
    """A STATUS reply other than OK, as an OSError; `code` is the SFTP status code."""

    def __init__(self, code: int, message: str, path: str = "") -> None:
        self.code = code
        why = message or _STATUS_NAMES.get(code, f"status {code}")
        super().__init__(_STATUS_ERRNO.get(code, errno.EIO), why, path or None)


def header(length: int, kind: int, req_id: int) -> bytes:
    """The first 9 bytes of a packet: `length` counts the type, the id and the payload."""
    return _HDR.pack(length, kind, req_id)


def u32(n: int) -> bytes:
    return _U32.pack(n)


def u64(n: int) -> bytes:
    return _U64.pack(n)


def string(b: bytes | str) -> bytes:
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    return _U32.pack(len(b)) + b


@dataclass(slots=True)
class Attrs:
    """File attributes; None where the server did not send (or we do not set) a field."""

    size: int | None = None
    uid: int | None = None
    gid: int | None = None
    mode: int | None = None  # st_mode: type and permission bits
    atime: int | None = None  # seconds
    mtime: int | None = None  # seconds

    def pack(self) -> bytes:
        flags = 0
        parts: list[bytes] = []
        if self.size is not None:
            flags |= ATTR_SIZE
            parts.append(_U64.pack(self.size))
        if self.uid is not None and self.gid is not None:
            flags |= ATTR_UIDGID
            parts.append(_U32.pack(self.uid) + _U32.pack(self.gid))
        if self.mode is not None:
            flags |= ATTR_PERMISSIONS
            parts.append(_U32.pack(self.mode))
        if self.mtime is not None:
            flags |= ATTR_ACMODTIME
            atime = self.mtime if self.atime is None else self.atime
            parts.append(_U32.pack(atime & 0xFFFFFFFF) + _U32.pack(self.mtime & 0xFFFFFFFF))
        return _U32.pack(flags) + b"".join(parts)

    @property
    def is_dir(self) -> bool:
        return self.mode is not None and stat_mod.S_ISDIR(self.mode)

    @property
    def is_link(self) -> bool:
        return self.mode is not None and stat_mod.S_ISLNK(self.mode)

    @property
    def is_regular(self) -> bool:
        return self.mode is None or stat_mod.S_ISREG(self.mode)


class Decoder:
    """Reads fields out of one packet body, front to back."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes | memoryview, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def u32(self) -> int:
        pos = self.pos
        self.pos = pos + 4
        if self.pos > len(self.buf):
            raise ValueError("short SFTP packet")
        return _U32.unpack_from(self.buf, pos)[0]

    def u64(self) -> int:
        pos = self.pos
        self.pos = pos + 8
        if self.pos > len(self.buf):
            raise ValueError("short SFTP packet")
        return _U64.unpack_from(self.buf, pos)[0]

    def raw(self) -> bytes:
        n = self.u32()
        pos = self.pos
        self.pos = pos + n
        if self.pos > len(self.buf):
            raise ValueError("short SFTP packet")
        return bytes(self.buf[pos:pos + n])

    def text(self) -> str:
        return self.raw().decode("utf-8", "surrogateescape")

    def attrs(self) -> Attrs:
        flags = self.u32()
        a = Attrs()
        if flags & ATTR_SIZE:
            a.size = self.u64()
        if flags & ATTR_UIDGID:
            a.uid = self.u32()
            a.gid = self.u32()
        if flags & ATTR_PERMISSIONS:
            a.mode = self.u32()
        if flags & ATTR_ACMODTIME:
            a.atime = self.u32()
            a.mtime = self.u32()
        if flags & ATTR_EXTENDED:
            for _ in range(self.u32()):
                self.raw()
                self.raw()
        return a

    def status(self, path: str = "") -> SftpStatus:
        code = self.u32()
        message = ""
        if self.pos < len(self.buf):
            try:
                message = self.text()
            except ValueError:
                pass
        return SftpStatus(code, message, path)

    def names(self) -> list[tuple[str, Attrs]]:
        out = []
        for _ in range(self.u32()):
            name = self.text()
            self.raw()  # the ls -l style long name: not used
            out.append((name, self.attrs()))
        return out
