"""One chunker file as a listing or lookup assembles it: its main object and active data chunks."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from ..base import Entry
from . import meta as metafmt


def eio(message: str) -> OSError:
    return OSError(errno.EIO, message)


@dataclass
class ChunkedObject:
    """One composite or plain file: its main object (metadata, or the plain file; None for a
    composite without metadata) and active data chunks (inner path, entry)."""

    path: str
    main: Entry | None
    chunks: list[tuple[str, Entry] | None] = field(default_factory=list)
    unsure: bool = False  # temporary/control chunks lie beside it: read the main to be sure
    full: bool = False  # metadata read (or none to read)
    md5: str = ""
    sha1: str = ""
    txn: str = ""

    @property
    def composite(self) -> bool:
        return bool(self.chunks)

    @property
    def size(self) -> int:
        if not self.composite:
            return self.main.size if self.main is not None else 0
        return sum(c[1].size for c in self.chunks if c is not None)

    def main_chunk(self) -> tuple[str, Entry]:
        if self.main is not None:
            return self.path, self.main
        first = self.chunks[0]
        assert first is not None
        return first

    def add_chunk(self, item: tuple[str, Entry], chunk_no: int, start_from: int) -> None:
        if chunk_no == len(self.chunks):
            self.chunks.append(item)
            return
        if chunk_no > metafmt.MAX_SAFE_CHUNK_NUMBER:
            raise eio(metafmt.ERR_CHUNK_OVERFLOW)
        if chunk_no > len(self.chunks):
            self.chunks.extend([None] * (chunk_no + 1 - len(self.chunks)))
        if self.chunks[chunk_no] is not None:
            raise eio(f"duplicate chunk number {chunk_no + start_from}")
        self.chunks[chunk_no] = item

    def validate(self) -> None:
        if not self.composite:
            return
        if self.main is not None and self.main.size > metafmt.MAX_METADATA_SIZE:
            raise eio(f'"{self.path}" metadata is too large')
        if any(c is None for c in self.chunks):
            raise eio(f'"{self.path}" has missing chunks')
