"""The `chunker` backend (Transparently chunk/split large files), rclone 1.75.2's options and format.

It wraps any remote that can move files server-side: a file larger than `chunk_size` is kept
as data chunks named by `name_format` (`*.rclone_chunk.###`, numbered from `start_from`) and,
with `meta_format` simplejson, a small JSON metadata object under the file's own name; a file
that fits one chunk is kept under its own name as it is (hash_type none, md5, sha1, *quick), or
as one chunk plus metadata (md5all/sha1all where the wrapped remote lacks that hash or hashes
slowly, and meta_format none, which never writes metadata). Chunks are uploaded under
temporary names (`_<transaction ID>` suffixes) and renamed when all have landed
(transactions rename), or left so with the ID in the metadata (norename). The modules: names
(chunk names), meta (the metadata), objects (one file: its main object and chunks), backend
(listing, names and sizes), transfer (the reader
over the chunks a read covers, the streaming splitting writer). Only this module is imported
until a volume uses chunker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..base import Backend, BackendInfo
from ..base import BackendOption as _O


def _new(name: str, root: str, options: dict[str, str], ctx: Any, open_inner: Callable[[str], Backend]) -> Backend:
    from .backend import open_chunker

    return open_chunker(name, root, options, ctx, open_inner)


INFO = BackendInfo("chunker", _new, (
    _O("remote", required=True), _O("chunk_size", "size", "2Gi"), _O("name_format", default="*.rclone_chunk.###"),
    _O("start_from", "int", "1"), _O("meta_format", default="simplejson"), _O("hash_type", default="md5"),
    _O("fail_hard", "bool"), _O("transactions", default="rename"), _O("description"),
), "Transparently chunk/split large files", wraps=True)
