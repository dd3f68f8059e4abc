"""The fields fuse_passthrough.py sets in libfuse's replies, on reply buffers built here."""

from __future__ import annotations

import ctypes
import struct
import threading

from pyclone_docker.fuse import passthrough as pt


def _iov(*parts: bytes) -> tuple[ctypes.Array, list[ctypes.Array]]:
    bufs = [ctypes.create_string_buffer(p, len(p)) for p in parts]
    iov = (pt._IoVec * len(bufs))(*[pt._IoVec(ctypes.addressof(b), len(b)) for b in bufs])
    return iov, bufs


def _header(error: int = 0, size: int = 0) -> bytes:
    return struct.pack("<IiQ", 16 + size, error, 7)


def _open_out(flags: int) -> bytes:
    return struct.pack("<QIi", 42, flags, 0)


def test_an_open_reply_gets_the_flag_and_the_backing_id() -> None:
    keep_cache, nonseekable = 1 << 1, 1 << 2
    iov, bufs = _iov(_header(), _open_out(keep_cache | nonseekable | pt.FOPEN_NOFLUSH))
    pt._mark_open_reply(iov, 2, 5)
    fh, flags, backing = struct.unpack("<QIi", bufs[1].raw)
    assert fh == 42 and backing == 5
    # the kernel refuses any flag outside its passthrough set (EIO on open)
    assert flags == pt.FOPEN_PASSTHROUGH | pt.FOPEN_NOFLUSH


def test_a_create_reply_carries_it_after_the_entry() -> None:
    entry = bytes(range(128))
    iov, bufs = _iov(_header(), entry + _open_out(0))
    pt._mark_open_reply(iov, 2, 9)
    assert bufs[1].raw[:128] == entry
    assert struct.unpack("<QIi", bufs[1].raw[128:]) == (42, pt.FOPEN_PASSTHROUGH, 9)


def test_error_replies_and_other_shapes_are_left_alone() -> None:
    for header, body in ((_header(-2), _open_out(0)), (_header(), b"\0" * 24), (_header(), b"\0" * 88)):
        iov, bufs = _iov(header, body)
        pt._mark_open_reply(iov, 2, 3)
        assert bufs[1].raw == body


def _init_out(flags: int, flags2: int = 0, depth: int = 0) -> bytes:
    out = bytearray(64)
    struct.pack_into("<I", out, 12, flags)
    struct.pack_into("<II", out, 32, flags2, depth)
    return bytes(out)


def test_the_init_reply_asks_for_passthrough() -> None:
    iov, bufs = _iov(_header(), _init_out(pt.FUSE_INIT_EXT | 1, flags2=1))
    pt._mark_init_reply(iov, 2)
    flags, = struct.unpack_from("<I", bufs[1].raw, 12)
    flags2, depth = struct.unpack_from("<II", bufs[1].raw, 32)
    assert flags == pt.FUSE_INIT_EXT | 1
    assert flags2 == 1 | 1 << 5  # FUSE_PASSTHROUGH is bit 37
    assert depth == pt.MAX_STACK_DEPTH


def test_an_init_reply_without_the_second_flags_word_is_left_alone() -> None:
    for body in (_init_out(1), b"\0" * 24):  # no FUSE_INIT_EXT; an old protocol's short reply
        iov, bufs = _iov(_header(), body)
        pt._mark_init_reply(iov, 2)
        assert bufs[1].raw == body


def test_a_grant_applies_to_the_next_reply_on_its_thread_only() -> None:
    p = pt.Passthrough.__new__(pt.Passthrough)
    p._init_reply_due, p._io, p._granted, p._lock, p._grants = False, None, 0, threading.Lock(), {}
    sent: list[bytes] = []

    def fake_writev(fd: int, address: int, count: int) -> int:
        iov = (pt._IoVec * count).from_address(address)
        sent.append(ctypes.string_at(iov[1].base, iov[1].len))
        return 0

    p._sys_writev = fake_writev
    p.grant(4)
    iov, _ = _iov(_header(), _open_out(0))
    p._writev(1, ctypes.addressof(iov), 2, None)
    iov2, _ = _iov(_header(), _open_out(0))
    p._writev(1, ctypes.addressof(iov2), 2, None)
    assert struct.unpack("<QIi", sent[0]) == (42, pt.FOPEN_PASSTHROUGH, 4)
    assert struct.unpack("<QIi", sent[1]) == (42, 0, 0)


def test_the_io_pointer_is_found_in_both_session_layouts() -> None:
    word = ctypes.sizeof(ctypes.c_void_p)
    # 3.14-3.17: mountpoint, exited, fd, io; later: mountpoint, fd, io (aligned)
    for fd_offset, io_offset in ((word + 4, word + 8), (word, 2 * word)):
        session = ctypes.create_string_buffer(64)
        struct.pack_into("<i", session, fd_offset, 7)
        field = pt._io_pointer_field(ctypes.addressof(session), 7)
        assert field is not None and ctypes.addressof(field) == ctypes.addressof(session) + io_offset
    session = ctypes.create_string_buffer(64)  # no descriptor where one is expected: unknown
    assert pt._io_pointer_field(ctypes.addressof(session), 7) is None
    struct.pack_into("<i", session, word + 4, 7)
    struct.pack_into("<Q" if word == 8 else "<I", session, 2 * word, 0xDEAD)  # io already set
    assert pt._io_pointer_field(ctypes.addressof(session), 7) is None
