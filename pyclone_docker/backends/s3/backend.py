"""The s3 Backend: rclone's object-store semantics over S3Api.

A directory is a key prefix: it exists while an object lies below it (or, with
`directory_markers`, a zero-byte `dir/` object stands for it), so this backend lacks
FEATURE_EMPTY_DIRS and the VFS keeps the directories made through the mount. With no bucket
in the root, the top level lists the buckets, and mkdir/rmdir there create and delete them.

Modtimes live in X-Amz-Meta-Mtime, which only a HEAD returns: a listing HEADs its objects
(in parallel) unless --use-server-modtime, and remembers what it learnt by ETag, so a
listing read again costs one LIST. Names are the VFS's in rclone's Standard encoding,
stored in the remote's `encoding`.
"""

from __future__ import annotations

import errno
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ...encoder import STANDARD, parse_encoding
from ..base import (
    FEATURE_DIR_MOVE,
    FEATURE_EMPTY_DIRS,
    FEATURE_MODTIME,
    FEATURE_MOVE,
    FEATURE_SLOW_MODTIME,
    Backend,
    BackendContext,
    Entry,
)
from . import INFO
from .api import S3Api, http_date_ns, mtime_header, now_ns, parse_mtime
from .config import resolve
from .copying import copy_object
from .transfer import S3Reader, S3Writer
from .xmlparse import clean_etag, create_bucket_body, parse_buckets, parse_list

log = logging.getLogger("pyclone")

MAX_KEY_BYTES = 1024
META_CACHE = 65536  # objects whose metadata is remembered
HEAD_WORKERS = 16  # parallel HEADs of a listing


@dataclass(slots=True)
class Meta:
    size: int
    etag: str
    mtime_ns: int
    md5: str = ""  # from X-Amz-Meta-Md5chksum (hex), where the ETag is not an MD5
    content_type: str = ""
    user_meta: tuple[tuple[str, str], ...] = ()  # x-amz-meta-* but mtime


class S3Backend(Backend):
    type_name = "s3"
    hashes = ("md5",)

    def __init__(self, name: str, root: str, config: dict[str, str], ctx: BackendContext | None = None) -> None:
        super().__init__(name, root, config, ctx)
        opt = INFO.parse_options(config)
        self.cfg = resolve(opt, self.ctx)
        self.enc = parse_encoding(opt["encoding"])
        self._standard = self.enc == STANDARD
        root = root.strip("/")
        self.bucket, _, prefix = root.partition("/")
        self.prefix = self._to_remote(prefix.strip("/")) if prefix else ""
        where = self.cfg.endpoint or f"AWS {self.cfg.region}"
        label = f"s3 ({self.cfg.provider.name}) at {where}"
        self.api = S3Api(self.cfg, self.ctx, label, max_connections=max(HEAD_WORKERS, 2 * self.cfg.upload_concurrency))
        feats = {FEATURE_MOVE, FEATURE_DIR_MOVE, FEATURE_MODTIME, FEATURE_SLOW_MODTIME}
        if self.cfg.directory_markers:
            feats.add(FEATURE_EMPTY_DIRS)
        self.features = frozenset(feats)
        self._meta: dict[str, Meta] = {}
        self._fresh: dict[str, Meta] = {}  # uploads whose next stat needs no HEAD (uploaded())
        self._meta_lock = threading.Lock()
        self._buckets_ok: set[str] = set()
        self._bucket_lock = threading.Lock()
        self._heads: ThreadPoolExecutor | None = None
        self._mimetypes: Any = None

    # --- names --------------------------------------------------------------------------

    def _to_remote(self, path: str) -> str:
        if self._standard:
            return path
        return self.enc.encode_path(STANDARD.decode_path(path))

    def _shown(self, raw: str) -> str:
        return raw if self._standard else STANDARD.encode(self.enc.decode(raw))

    def split(self, path: str) -> tuple[str, str]:
        """(bucket, key) of a volume path."""
        if path.startswith("/") or ".." in path.split("/"):
            raise OSError(errno.EINVAL, "invalid path", path)
        if not self.bucket:
            bucket, _, rest = path.partition("/")
            key = self._to_remote(rest) if rest else ""
        else:
            bucket = self.bucket
            key = self._to_remote(path) if path else ""
            if self.prefix:
                key = f"{self.prefix}/{key}" if key else self.prefix
        if len(key.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
            raise OSError(errno.ENAMETOOLONG, "object key longer than 1024 bytes", path)
        return bucket, key

    # --- metadata ----------------------------------------------------------------------

    def _remember(self, bucket: str, key: str, meta: Meta | None) -> None:
        with self._meta_lock:
            k = f"{bucket}/{key}"
            self._meta.pop(k, None)
            self._fresh.pop(k, None)  # changed since its upload: the next stat asks the server
            if meta is not None:
                self._meta[k] = meta
                if len(self._meta) > META_CACHE:
                    for old in list(self._meta)[:META_CACHE // 8]:
                        del self._meta[old]

    def _known(self, bucket: str, key: str) -> Meta | None:
        return self._meta.get(f"{bucket}/{key}")

    def head(self, bucket: str, key: str) -> Meta:
        resp = self.api.call("HEAD", bucket, key, headers=dict(self.cfg.sse_headers), what="HeadObject")
        resp.release_conn()
        h = resp.headers
        user = []
        mtime = None
        md5 = ""
        for name, value in h.items():
            low = name.lower()
            if not low.startswith("x-amz-meta-"):
                continue
            meta_key = low[len("x-amz-meta-"):]
            if meta_key == "mtime":
                mtime = parse_mtime(value)
                if mtime is None:
                    log.debug("%s/%s: failed to parse modtime %r", bucket, key, value)
                continue
            if meta_key == "md5chksum":
                import base64
                import binascii

                try:
                    md5 = base64.b64decode(value, validate=True).hex()
                except (ValueError, binascii.Error):
                    md5 = ""
            user.append((meta_key, value))
        if mtime is None:
            mtime = http_date_ns(h.get("Last-Modified", ""))
        meta = Meta(int(h.get("Content-Length", "0") or 0), clean_etag(h.get("ETag", "")), mtime, md5,
                    h.get("Content-Type", ""), tuple(user))
        self._remember(bucket, key, meta)
        return meta

    def _md5_of(self, meta: Meta) -> str:
        etag = meta.etag
        if not self.cfg.etag_is_not_md5 and len(etag) == 32 and "-" not in etag:
            return etag
        return meta.md5

    # --- listing ---------------------------------------------------------------------------

    def _pages(self, bucket: str, prefix: str, delimiter: bool, max_keys: int = 0):
        """The ListObjects pages below `prefix`."""
        cfg = self.cfg
        token = ""
        url_encode = cfg.list_url_encode
        while True:
            q = []
            if delimiter:
                q.append(("delimiter", "/"))
            if url_encode:
                q.append(("encoding-type", "url"))
            q.append(("max-keys", str(max_keys or cfg.list_chunk)))
            if cfg.list_version == 2:
                q.append(("list-type", "2"))
                if token:
                    q.append(("continuation-token", token))
            elif token:
                q.append(("marker", token))
            q.append(("prefix", prefix))
            query = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(q))
            resp = self.api.call("GET", bucket, "", query, what="ListObjects")
            page = parse_list(resp.data, url_encode)
            self._buckets_ok.add(bucket)  # it exists: no CreateBucket before a write (as rclone)
            yield page
            if not page.truncated or not page.next_token or max_keys:
                return
            token = page.next_token

    def list(self, path: str) -> list[Entry]:
        bucket, key = self.split(path)
        if not bucket:
            resp = self.api.call("GET", "", "", what="ListBuckets")
            return [Entry(name, True, 0, created) for name, created in parse_buckets(resp.data)]
        prefix = key + "/" if key else ""
        dirs: list[Entry] = []
        files: list[tuple[str, Any]] = []
        found = False
        try:
            pages = list(self._pages(bucket, prefix, True)) if not path else self._pages(bucket, prefix, True)
        except FileNotFoundError:
            if path:
                raise
            # the root of a bucket not made yet lists as empty, as rclone's (the first write
            # makes it, unless no_check_bucket: then that write fails)
            log.debug("%s: %s: bucket not found: listed as empty", self.api.label, bucket)
            return []
        for page in pages:
            for p in page.prefixes:
                found = True
                name = p[len(prefix):].rstrip("/")
                if name and "/" not in name:
                    dirs.append(Entry(self._shown(name), True))
            for obj in page.objects:
                found = True
                rest = obj.key[len(prefix):]
                if not rest or not obj.key.startswith(prefix):
                    continue  # the directory's own marker
                if rest.endswith("/") and obj.size == 0:
                    if "/" not in rest[:-1]:
                        dirs.append(Entry(self._shown(rest[:-1]), True, 0, obj.mtime_ns))
                    continue
                files.append((rest, obj))
        if not found and path:  # the root always exists, as in rclone
            raise FileNotFoundError(errno.ENOENT, "directory not found", path)
        seen: set[str] = set()
        entries = []
        for d in dirs:  # a prefix and its marker name one directory
            if d.name not in seen:
                seen.add(d.name)
                entries.append(d)
        entries += self._file_entries(bucket, prefix, files)
        return entries

    def _file_entries(self, bucket: str, prefix: str, files: list[tuple[str, Any]]) -> list[Entry]:
        out: list[Entry] = []
        need: list[tuple[str, Any]] = []
        server_times = self.ctx.use_server_modtime
        for rest, obj in files:
            known = self._known(bucket, obj.key)
            if server_times:
                out.append(Entry(self._shown(rest), False, obj.size, obj.mtime_ns))
            elif known is not None and known.etag == obj.etag and known.size == obj.size:
                out.append(Entry(self._shown(rest), False, obj.size, known.mtime_ns))
            else:
                need.append((rest, obj))
        if not need:
            return out

        def one(item: tuple[str, Any]) -> Entry | None:
            rest, obj = item
            try:
                meta = self.head(bucket, obj.key)
            except FileNotFoundError:
                return None  # deleted since it was listed
            except OSError as e:
                log.error("%s: %s/%s: failed to read metadata: %s", self.api.label, bucket, obj.key, e)
                return Entry(self._shown(rest), False, obj.size, obj.mtime_ns)
            return Entry(self._shown(rest), False, meta.size, meta.mtime_ns)

        if len(need) == 1:
            results = [one(need[0])]
        else:
            if self._heads is None:
                self._heads = ThreadPoolExecutor(HEAD_WORKERS, thread_name_prefix="s3-head")
            results = list(self._heads.map(one, need))
        out += [e for e in results if e is not None]
        return out

    def _has_below(self, bucket: str, key: str, limit: int = 1) -> list[str]:
        """Up to `limit` keys below `key/` (its own marker included)."""
        for page in self._pages(bucket, key + "/" if key else "", False, max_keys=limit):
            return [o.key for o in page.objects]
        return []

    def stat(self, path: str) -> Entry:
        bucket, key = self.split(path)
        name = path.rpartition("/")[2]
        if not key or not path:  # the root always exists, as in rclone
            return Entry(name, True)
        fresh = self._fresh.pop(f"{bucket}/{key}", None)
        if fresh is None and self.cfg.no_head:  # no_head: what an upload told us stands for a HEAD
            fresh = self._known(bucket, key)
        if fresh is not None:
            return Entry(name, False, fresh.size, fresh.mtime_ns)
        try:
            meta = self.head(bucket, key)
            return Entry(name, False, meta.size, meta.mtime_ns)
        except FileNotFoundError:
            if self._has_below(bucket, key):
                return Entry(name, True)
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", path) from None

    # --- reads and writes --------------------------------------------------------------------

    def get_object(self, bucket: str, key: str, headers: dict[str, str]) -> Any:
        if self.cfg.download_url:
            url = f"{self.cfg.download_url}/{quote(key, safe='/~')}"
            resp = self.api.http.request("GET", url, headers=headers, stream=True, direction="download")
            if resp.status not in (200, 206, 416):
                raise self.api.error(resp, "GET", bucket, key, "GetObject")
            return resp
        return self.api.call("GET", bucket, key, headers=headers, stream=True, direction="download",
                             ok=(200, 206, 416), what="GetObject")

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> S3Reader:
        bucket, key = self.split(path)
        if not key:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        return S3Reader(self, bucket, key, offset, length)

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None,
                   mode: int | None = None) -> S3Writer:
        bucket, key = self.split(path)
        if not key:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        return S3Writer(self, bucket, key, size, now_ns() if mtime_ns is None else mtime_ns)

    def uploaded(self, bucket: str, key: str, size: int, mtime_ns: int, etag: str, md5: str) -> None:
        """A writer committed: what is known of the object now. The stat that follows an upload
        (the VFS's, for the fingerprint) is answered from it: the server said what it stored
        (the ETag checked against the MD5 sent), so a HEAD would only repeat it."""
        meta = Meta(size, etag, mtime_ns, md5) if etag else None
        self._remember(bucket, key, meta)
        if meta is not None:
            self._fresh[f"{bucket}/{key}"] = meta

    def upload_hashes(self, size: int) -> tuple[str, ...]:
        """A multipart upload stores the object's MD5 at its start (X-Amz-Meta-Md5chksum)."""
        if self.cfg.disable_checksum or (0 <= size < self.cfg.upload_cutoff):
            return ()
        return ("md5",)

    def mime_type(self, key: str) -> str:
        if self._mimetypes is None:
            import mimetypes

            self._mimetypes = mimetypes
        return self._mimetypes.guess_type(key, strict=False)[0] or "application/octet-stream"

    def ensure_bucket(self, bucket: str) -> None:
        """Create the bucket once per backend before the first write (unless no_check_bucket)."""
        if self.cfg.no_check_bucket or bucket in self._buckets_ok:
            return
        with self._bucket_lock:
            if bucket not in self._buckets_ok:
                self._create_bucket(bucket, exist_ok=True)
                self._buckets_ok.add(bucket)

    def _create_bucket(self, bucket: str, exist_ok: bool) -> None:
        headers = {}
        if self.cfg.bucket_acl:
            headers["x-amz-acl"] = self.cfg.bucket_acl
        body = create_bucket_body(self.cfg.location_constraint)
        resp = self.api.call("PUT", bucket, "", headers=headers, body=body or None, ok=(200, 409), what="CreateBucket")
        if resp.status == 200:
            resp.release_conn()
            return
        err = self.api.error(resp, "PUT", bucket, "", "CreateBucket")
        if err.code == "BucketAlreadyOwnedByYou" or (err.code == "BucketAlreadyExists"
                                                     and not self.cfg.use_already_exists):
            if exist_ok:
                return
            raise FileExistsError(errno.EEXIST, "bucket exists", bucket)
        raise err

    def log_error(self, fmt: str, *args: Any) -> None:
        log.error(fmt, *args)

    # --- directories -----------------------------------------------------------------------

    def mkdir(self, path: str) -> None:
        bucket, key = self.split(path)
        if not key:
            self._create_bucket(bucket, exist_ok=False)
            self._buckets_ok.add(bucket)
            return
        try:
            self.head(bucket, key)
            raise FileExistsError(errno.EEXIST, "file exists", path)
        except FileNotFoundError:
            pass
        if self._has_below(bucket, key):
            return  # a directory already: nothing to do, as rclone's Mkdir
        self.ensure_bucket(bucket)
        if self.cfg.directory_markers:
            S3Writer(self, bucket, key + "/", 0, now_ns()).close()

    def rmdir(self, path: str) -> None:
        bucket, key = self.split(path)
        if not key:
            resp = self.api.call("DELETE", bucket, "", ok=(204, 200), what="DeleteBucket")
            resp.release_conn()
            self._buckets_ok.discard(bucket)
            return
        below = self._has_below(bucket, key, 2)
        marker = key + "/"
        if any(k != marker for k in below):
            raise OSError(errno.ENOTEMPTY, "directory not empty", path)
        if marker in below:  # else nothing is stored for it: nothing to do, as rclone's Rmdir
            self.api.call("DELETE", bucket, marker, what="DeleteObject").release_conn()

    # --- objects ------------------------------------------------------------------------------

    def delete(self, path: str) -> None:
        bucket, key = self.split(path)
        if not key:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if self._known(bucket, key) is None:
            self.head(bucket, key)  # S3 deletes a missing key "successfully": ENOENT comes from here
        self.api.call("DELETE", bucket, key, what="DeleteObject").release_conn()
        self._remember(bucket, key, None)

    def move(self, src: str, dst: str) -> None:
        s, d = self.split(src), self.split(dst)
        if not s[1] or not d[1]:
            raise OSError(errno.EXDEV, "cannot move a bucket", src)
        try:
            meta = self.head(*s)
        except FileNotFoundError:
            self._move_dir(src, dst, s, d)
            return
        if self._has_below(*d):
            raise IsADirectoryError(errno.EISDIR, "is a directory", dst)
        copy_object(self, s, d, meta)
        self._remember(*d, None)
        self.api.call("DELETE", s[0], s[1], what="DeleteObject").release_conn()
        self._remember(*s, None)

    def _move_dir(self, src: str, dst: str, s: tuple[str, str], d: tuple[str, str]) -> None:
        """Each object copied then deleted, as rclone without DirMove: one interrupted leaves
        every object readable under one of the two names."""
        if d[1].startswith(s[1] + "/") and s[0] == d[0]:
            raise OSError(errno.EINVAL, "cannot move a directory into itself", dst)
        keys = [o for page in self._pages(s[0], s[1] + "/", False) for o in page.objects]
        if not keys:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", src)
        try:
            self.head(*d)
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", dst)
        except FileNotFoundError:
            pass
        if any(k != d[1] + "/" for k in self._has_below(d[0], d[1], 2)):
            raise OSError(errno.ENOTEMPTY, "directory not empty", dst)
        for obj in keys:
            target = (d[0], d[1] + obj.key[len(s[1]):])
            meta = self._known(s[0], obj.key)
            if meta is None or meta.etag != obj.etag:
                meta = Meta(obj.size, obj.etag, obj.mtime_ns)
            copy_object(self, (s[0], obj.key), target, meta)
            self._remember(*target, None)
            self.api.call("DELETE", s[0], obj.key, what="DeleteObject").release_conn()
            self._remember(s[0], obj.key, None)

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        bucket, key = self.split(path)
        if not key:
            raise OSError(errno.ENOTSUP, "a bucket has no modification time", path)
        try:
            self.set_modtime_of(bucket, key, mtime_ns)
        except FileNotFoundError:
            if self._has_below(bucket, key):
                raise OSError(errno.ENOTSUP, "directories on s3 have no modification time", path) from None
            raise

    def set_modtime_of(self, bucket: str, key: str, mtime_ns: int) -> None:
        """rclone's SetModTime: the object copied onto itself with its metadata replaced."""
        meta = self.head(bucket, key)
        replace = {f"x-amz-meta-{k}": v for k, v in meta.user_meta}
        replace["x-amz-meta-mtime"] = mtime_header(mtime_ns)
        replace["Content-Type"] = meta.content_type or self.mime_type(key)
        copy_object(self, (bucket, key), (bucket, key), meta, replace)
        self._remember(bucket, key, None)

    def hash(self, path: str, kind: str) -> str:
        if kind != "md5":
            return super().hash(path, kind)
        bucket, key = self.split(path)
        if not key:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        meta = self._known(bucket, key) or self.head(bucket, key)
        md5 = self._md5_of(meta)
        if not md5:
            raise OSError(errno.ENODATA, "no MD5 known for this object (a multipart upload without md5chksum)", path)
        return md5

    def shutdown(self) -> None:
        if self._heads is not None:
            self._heads.shutdown(wait=False)
            self._heads = None
        self.api.close()
