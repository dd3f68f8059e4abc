"""The chunker Backend: composite files assembled from the wrapped remote's chunk names.

A listing groups the wrapped directory's names as rclone's processEntries does: a name that is
not a chunk is a plain file or a metadata object; active data chunks join the object named
after them (orphans without metadata are skipped); temporary and control chunks are hidden. A
composite's size is the sum of its chunks' sizes (no metadata is read to list); its metadata
is read and checked (size, chunk count) when it is opened, hashed, moved or changed, as
rclone does lazily. A lookup lists the parent directory (rclone: every NewObject scans it).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..alias import target
from ..base import (
    FEATURE_CHMOD,
    FEATURE_CHOWN,
    FEATURE_MOVE,
    FEATURE_RANDOM_READ,
    FEATURE_RANDOM_WRITE,
    Backend,
    BackendContext,
    Entry,
)
from ..wrapping import WrappingBackend
from . import INFO
from . import meta as metafmt
from .names import ChunkNames, new_xact_id
from .objects import ChunkedObject, eio
from .transfer import ChunkedReader, ChunkWriter

log = logging.getLogger("pyclone")

_HASH_TYPES = ("none", "md5", "sha1", "md5quick", "sha1quick", "md5all", "sha1all")
_MAX_TRANSACTION_PROBES = 100
# rclone's s3 (and http) have no server-side Move (copy and delete instead): `transactions auto`
# picks norename over them, as rclone's CanQuickRename says
_NO_QUICK_RENAME = ("s3", "http")


def _inner_types(b: Backend) -> list[str]:
    out = []
    while b is not None:
        out.append(b.type_name)
        b = getattr(b, "inner", None)
    return out


def open_chunker(name: str, root: str, options: dict[str, str], ctx: BackendContext | None,
                 open_inner: Callable[[str], Backend]) -> Backend:
    opt = INFO.parse_options(options)
    remote = opt["remote"]
    if not remote:
        raise ValueError('chunker: option "remote" is required')
    if name and not name.startswith(":") and remote.startswith(name + ":"):
        raise ValueError("can't point remote at itself - check the value of the remote setting")
    if opt["chunk_size"] <= 0:  # rclone would split forever; refused here
        raise ValueError("chunker: chunk_size must be positive")
    names = ChunkNames(opt["name_format"], opt["start_from"])
    if opt["meta_format"] not in ("none", "simplejson"):
        raise ValueError(f"unsupported meta format '{opt['meta_format']}'")
    if opt["hash_type"] not in _HASH_TYPES:
        raise ValueError(f"unsupported hash type '{opt['hash_type']}'")
    if opt["hash_type"] != "none" and opt["meta_format"] == "none":
        raise ValueError(f"hash type '{opt['hash_type']}' requires compatible meta format")
    if opt["transactions"] not in ("rename", "norename", "auto"):
        raise ValueError(f"unsupported transaction mode '{opt['transactions']}'")
    if opt["transactions"] == "norename" and opt["meta_format"] == "none":
        raise ValueError("incompatible transaction options")
    inner = open_inner(target(root.strip("/"), {"remote": remote}))
    try:
        return ChunkerBackend(name, root, options, inner, ctx, names=names, opt=opt)
    except BaseException:
        inner.shutdown()
        raise


class ChunkerBackend(WrappingBackend):
    type_name = "chunker"

    def __init__(self, name: str, root: str, config: dict[str, str], inner: Backend,
                 ctx: BackendContext | None = None, *, names: ChunkNames, opt: dict[str, Any]) -> None:
        super().__init__(name, root, config, inner, ctx)
        if FEATURE_MOVE not in inner.features and type(inner).move is Backend.move:
            raise ValueError("can't use chunker on a backend which doesn't support server-side move or copy")
        self.names = names
        self.chunk_size = int(opt["chunk_size"])
        self.fail_hard = bool(opt["fail_hard"])
        self.use_meta = opt["meta_format"] == "simplejson"
        hash_type = opt["hash_type"]
        self.hash_kind = "md5" if hash_type.startswith("md5") else "sha1" if hash_type.startswith("sha1") else ""
        self.hash_fallback = hash_type.endswith("quick")
        slow = "slow_hash" in inner.features
        self.hash_all = hash_type.endswith("all") and (self.hash_kind not in inner.hashes or slow)
        mode = opt["transactions"]
        if mode == "auto":
            mode = "norename" if set(_inner_types(inner)) & set(_NO_QUICK_RENAME) else "rename"
            if mode == "norename" and not self.use_meta:
                raise ValueError("using norename transactions requires metadata")
        self.no_rename = mode == "norename"
        # a composite's bytes are in several objects: no in-place changes, no pread; a file appears
        # only when its upload commits (and may change from a plain file to chunks + metadata),
        # so it keeps no permissions or owner (rclone's chunker has none either)
        self.features = inner.features - {FEATURE_RANDOM_READ, FEATURE_RANDOM_WRITE, FEATURE_CHMOD, FEATURE_CHOWN}
        # rclone's Hashes(): a hash only where it is known for files of every size
        kind = self.hash_kind
        self.hashes = (kind,) if kind and not self.hash_fallback and (self.hash_all or kind in inner.hashes) else ()
        self._plain_written = ""  # the last upload kept as a plain file (its hash is the inner's)

    def __repr__(self) -> str:
        return f"ChunkerBackend({self.name}:{self.root} over {self.inner!r})"

    # --- names and objects ------------------------------------------------------------------

    def _forbid_chunk(self, path: str, what: str, quiet: bool = False) -> None:
        """A name that is a chunk's: refused with fail_hard, else logged (lookups are quiet, as rclone's)."""
        parsed = self.names.parse(path)
        if parsed is None:
            return
        if self.fail_hard:
            raise OSError(errno.EINVAL, f'{what}: chunk overlap with "{parsed.parent}"', path)
        if not quiet:
            log.error('%s: chunk overlap with "%s"', path, parsed.parent)

    def _read_small(self, path: str, size: int) -> bytes:
        r = self.inner.open_read(path, 0, size)
        try:
            buf = bytearray(size + 1)
            view = memoryview(buf)
            got = 0
            while got < len(buf) and (n := r.readinto(view[got:])):
                got += n
            return bytes(buf[:got])
        finally:
            r.close()

    def _txn_of(self, path: str, main: Entry) -> str:
        """norename: the transaction ID in what may be a metadata object (rclone's readXactID)."""
        if main.size > metafmt.MAX_METADATA_SIZE:
            return ""
        return metafmt.read_txn(self._read_small(path, main.size))

    def list(self, path: str) -> list[Entry]:
        entries = sorted(self.inner.list(path), key=lambda e: e.name)
        prefix = f"{path}/" if path else ""
        objs: dict[str, ChunkedObject] = {}
        order: list[str | Entry] = []
        bad: set[str] = set()
        subdirs: set[str] = set()
        txns: dict[str, str] = {}
        for e in entries:
            if e.is_dir:
                subdirs.add(e.name)
                order.append(e)
                continue
            parsed = self.names.parse(e.name)
            if parsed is None:  # a metadata object or a plain file
                objs[e.name] = ChunkedObject(prefix + e.name, e)
                order.append(e.name)
                if self.no_rename:
                    txns[e.name] = self._txn_of(prefix + e.name, e)
                continue
            main = objs.get(parsed.parent)
            special = parsed.xact_id != txns.get(parsed.parent, "") or bool(parsed.ctrl_type)
            if main is None and self.use_meta and not special:
                log.debug("%s: skip orphan data chunk %r", self, prefix + e.name)
                continue
            if main is None and not self.use_meta:
                main = objs[parsed.parent] = ChunkedObject(prefix + parsed.parent, None)
                if parsed.parent not in bad:
                    order.append(parsed.parent)
            if special:
                if self.use_meta and main is not None and main.main is not None \
                        and main.main.size <= metafmt.MAX_METADATA_SIZE:
                    main.unsure = True
                continue
            try:
                main.add_chunk((prefix + e.name, e), parsed.chunk_no, self.names.start_from)
            except OSError:
                if self.fail_hard:
                    raise
                bad.add(parsed.parent)
        out = []
        for item in order:
            if isinstance(item, Entry):
                out.append(item)
                continue
            o = objs[item]
            if item in subdirs:
                if self.fail_hard:
                    raise eio(f'"{o.path}" is both meta object and directory')
                bad.add(item)
            if item in bad:
                log.debug("%s: invalid directory entry %r", self, o.path)
                continue
            try:
                o.validate()
            except OSError:
                if self.fail_hard:
                    raise
                log.debug("%s: invalid chunks in object %r", self, o.path)
                continue
            out.append(self._entry(o, item))
        return out

    def _entry(self, o: ChunkedObject, name: str) -> Entry:
        return replace(o.main_chunk()[1], name=name, size=o.size)

    def _lookup(self, path: str, quick: bool = False) -> ChunkedObject | Entry:
        """The object at `path` (rclone's scanObject), or the directory's Entry there."""
        self._forbid_chunk(path, "can't access", quiet=True)
        main: Entry | None = None
        if self.use_meta:
            main = self.inner.stat(path)
            if main.is_dir:
                return main
        o = ChunkedObject(path, main)
        if main is not None and main.size > metafmt.MAX_METADATA_SIZE:
            o.full = True
            return o
        parent, _, name = path.rpartition("/")
        try:
            entries = self.inner.list(parent)
        except FileNotFoundError:
            entries = []
        current = self._txn_of(path, main) if self.no_rename and main is not None else ""
        prefix = f"{parent}/" if parent else ""
        for e in entries:
            if e.is_dir or not e.name.startswith(name):
                continue
            parsed = self.names.parse(e.name)
            if parsed is None or parsed.parent != name:
                continue
            if parsed.ctrl_type or parsed.xact_id != current:
                if self.use_meta:
                    o.unsure = True
                continue
            o.add_chunk((prefix + e.name, e), parsed.chunk_no, self.names.start_from)
        if o.main is None and not o.chunks:
            if self.use_meta or quick:
                raise FileNotFoundError(errno.ENOENT, "object not found", path)
            plain = self.inner.stat(path)
            if plain.is_dir:
                return plain
            o.chunks.append((path, plain))
        if not quick:
            o.validate()
        return o

    def _object(self, path: str, quick: bool = False) -> ChunkedObject:
        o = self._lookup(path, quick)
        if isinstance(o, Entry):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        return o

    def _read_metadata(self, o: ChunkedObject) -> None:
        """Read and check a composite's metadata (rclone's readMetadata); EIO if it is bad."""
        if not self.use_meta or o.full:
            o.full = True
            return
        if not o.composite and not o.unsure:
            o.full = True
            return
        assert o.main is not None
        if o.main.size > metafmt.MAX_METADATA_SIZE:
            if o.unsure:  # not metadata: a file of its own
                o.unsure, o.chunks, o.full = False, [], True
                return
            raise eio(f"{o.path}: {metafmt.ERR_META_TOO_BIG}")
        data = self._read_small(o.path, o.main.size)
        try:
            info = metafmt.unmarshal(data)
        except metafmt.MetaError as e:
            if o.unsure and not e.made_by_chunker:
                o.unsure, o.chunks, o.full = False, [], True
                return
            raise eio(f"{o.path}: invalid metadata: {e}") from None
        o.unsure = False
        if o.size != info.size or len(o.chunks) != info.nchunks:
            raise eio(f"{o.path}: metadata doesn't match file size")
        o.md5, o.sha1, o.txn, o.full = info.md5, info.sha1, info.txn, True

    def stat(self, path: str) -> Entry:
        if not path:
            return replace(self.inner.stat(""), name="")
        o = self._lookup(path)
        name = path.rpartition("/")[2]
        if isinstance(o, Entry):
            return replace(o, name=name)
        return self._entry(o, name)

    # --- contents ---------------------------------------------------------------------------

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> Any:
        o = self._object(path)
        try:
            self._read_metadata(o)
        except OSError as e:
            raise OSError(e.errno, f"can't open: {e.strerror}", path) from None
        if not o.composite:
            return self.inner.open_read(path, offset, length)
        chunks = [(c[0], c[1].size) for c in o.chunks if c is not None]
        return ChunkedReader(self.inner, chunks, offset, length, path)

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None, mode: int | None = None) -> Any:
        self._forbid_chunk(path, "put refused")
        return ChunkWriter(self, path, size, mtime_ns, mode)

    def truncate(self, path: str, size: int) -> None:
        raise OSError(errno.ENOTSUP, "chunker cannot truncate in place", path)

    def new_xact_id(self, path: str) -> str:
        """A transaction ID no temporary chunk of `path` has yet (rclone probes its first chunk)."""
        for _ in range(_MAX_TRANSACTION_PROBES):
            xact = new_xact_id()
            try:
                self.inner.stat(self.names.make(path, 0, "", xact))
            except OSError:  # rclone: any error probing means the ID is free
                return xact
        raise eio(f"can't setup transaction for {path}")

    def remove_old_chunks(self, path: str) -> None:
        """Before a new version lands: the old version's active data chunks go."""
        try:
            old = self._lookup(path)
        except OSError:
            return
        if isinstance(old, Entry):
            return
        for chunk in old.chunks:
            if chunk is not None:  # without metadata, a plain file is its own one chunk
                try:
                    self.inner.delete(chunk[0])
                except OSError as e:
                    log.error("%s: Failed to remove old chunk: %s", chunk[0], e)

    def move_over(self, src: str, dst: str) -> None:
        """Rename in the wrapped remote, replacing `dst` (rclone's baseMove)."""
        try:
            self.inner.move(src, dst)
        except FileExistsError:
            self.inner.delete(dst)
            self.inner.move(src, dst)

    # --- tree -------------------------------------------------------------------------------

    def mkdir(self, path: str) -> None:
        self._forbid_chunk(path, "can't mkdir")
        self.inner.mkdir(path)

    def _delete_obj(self, o: ChunkedObject) -> None:
        try:
            self._read_metadata(o)
        except OSError as e:
            log.error("%s: Removing a file with unsupported metadata: %s", o.path, e)
        err: OSError | None = None
        if o.main is not None:
            self.inner.delete(o.path)
        for chunk in o.chunks:  # active chunks only: temporary ones may be another upload's
            if chunk is None or (o.main is not None and chunk[0] == o.path):
                continue
            try:
                self.inner.delete(chunk[0])
            except OSError as e:
                err = err or e
        if err is not None:
            raise err

    def delete(self, path: str) -> None:
        o = self._lookup(path)
        if isinstance(o, Entry):
            self.inner.delete(path)  # the wrapped remote's error for a directory
            return
        if self.fail_hard and self.names.parse(path) is not None:
            raise OSError(errno.EINVAL, "refuse to corrupt: chunk overlap", path)
        self._delete_obj(o)

    def move(self, src: str, dst: str) -> None:
        o = self._lookup(src)
        if isinstance(o, Entry):
            self.inner.move(src, dst)
            return
        self._forbid_chunk(dst, "can't move")
        try:
            self._read_metadata(o)
        except OSError as e:
            raise OSError(e.errno, f"can't move this file: {e.strerror}", src) from None
        if src == dst:
            return
        try:
            old = self._lookup(dst)
        except FileNotFoundError:
            old = None
        if isinstance(old, ChunkedObject):  # rclone's operations.Move deletes the destination first
            self._delete_obj(old)
        moved: list[tuple[str, str]] = []
        try:
            for chunk in o.chunks:
                assert chunk is not None
                if not chunk[0].startswith(src):
                    raise eio(f'invalid chunk name "{chunk[0]}"')
                if o.main is not None and chunk[0] == src:
                    continue
                self.inner.move(chunk[0], dst + chunk[0][len(src):])
                moved.append((chunk[0], dst + chunk[0][len(src):]))
            if o.main is not None:
                self.inner.move(src, dst)
        except OSError:
            for back, now in reversed(moved):  # put the chunks moved so far back (rclone deletes them)
                try:
                    self.inner.move(now, back)
                except OSError as e:
                    log.error("%s: cannot move chunk back to %s: %s", now, back, e)
            raise

    def _main_path(self, path: str) -> str:
        o = self._lookup(path)
        if isinstance(o, Entry):
            return path
        self._read_metadata(o)
        return o.main_chunk()[0]

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        self.inner.set_modtime(self._main_path(path), mtime_ns)

    def chmod(self, path: str, mode: int) -> None:
        raise OSError(errno.ENOTSUP, "chunker cannot store permissions", path)

    def chown(self, path: str, uid: int, gid: int) -> None:
        raise OSError(errno.ENOTSUP, "chunker cannot store owners", path)

    def hash(self, path: str, kind: str) -> str:
        if kind not in ("md5", "sha1"):
            raise OSError(errno.ENOTSUP, f"chunker has no {kind} hash", path)
        o = self._object(path)
        self._read_metadata(o)
        if not o.composite:
            try:
                if digest := self.inner.hash(path, kind):
                    return digest
            except OSError:
                pass
        digest = o.md5 if kind == "md5" else o.sha1
        if not digest:
            raise OSError(errno.ENODATA, f"no {kind} hash known for this object", path)
        return digest

    def hash_written(self, path: str, kind: str, digest: str) -> None:
        if path == self._plain_written:  # kept as a plain file: the inner object has these bytes
            self.inner.hash_written(path, kind, digest)

    def upload_hashes(self, size: int) -> tuple[str, ...]:
        return ()  # hashed on the way up; a chunk's hash is not the file's

    def change_notify(self, callback: Callable[[str], None], interval: float) -> None:
        def on_change(path: str) -> None:
            parsed = self.names.parse(path)
            if parsed is not None and not parsed.ctrl_type and (self.no_rename or not parsed.xact_id):
                path = parsed.parent
            callback(path)

        self.inner.change_notify(on_change, interval)
