"""Server-side copies (rclone's Copy for rename and SetModTime): CopyObject, or a multipart
copy with UploadPartCopy above copy_cutoff. `b` is the S3Backend."""

from __future__ import annotations

import errno
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .api import mtime_header
from .transfer import copy_source
from .xmlparse import clean_etag, complete_body, find_text, parse_error


def copy_object(b: Any, src: tuple[str, str], dst: tuple[str, str], meta: Any,
                replace: Mapping[str, str] | None = None) -> None:
    """Server-side copy (CopyObject, or UploadPartCopy above copy_cutoff); `replace`: the
    new metadata headers (REPLACE), else the source's are kept (COPY)."""
    cfg = b.cfg
    headers = dict(cfg.put_headers)
    headers.update(cfg.sse_headers)
    headers.update(cfg.sse_copy_source_headers)
    if replace is not None:
        headers.update(replace)
    source = copy_source(*src)
    b.ensure_bucket(dst[0])
    if meta.size <= cfg.copy_cutoff:
        headers["x-amz-copy-source"] = source
        headers["x-amz-metadata-directive"] = "REPLACE" if replace is not None else "COPY"
        resp = b.api.call("PUT", dst[0], dst[1], headers=headers, what="CopyObject")
        code, message = parse_error(resp.data)
        if code:  # a copy may answer 200 and fail in the body
            raise OSError(errno.EIO, f"{b.api.label}: CopyObject {src[0]}/{src[1]}: {code}: {message}")
        return
    multipart_copy(b, source, dst, meta, headers, replace)

def multipart_copy(b: Any, source: str, dst: tuple[str, str], meta: Any, headers: dict[str, str],
                    replace: Mapping[str, str] | None) -> None:
    create = {k: v for k, v in headers.items() if not k.startswith("x-amz-copy-source")}
    if replace is None:  # a multipart copy takes no metadata from its source
        create["x-amz-meta-mtime"] = mtime_header(meta.mtime_ns)
        create.update((f"x-amz-meta-{k}", v) for k, v in meta.user_meta)
        if meta.content_type:
            create["Content-Type"] = meta.content_type
    resp = b.api.call("POST", dst[0], dst[1], "uploads=", headers=create, what="CreateMultipartUpload")
    upload_id = find_text(resp.data, "UploadId")
    q_id = quote(upload_id, safe="")
    parts = []
    try:
        step = max(b.cfg.chunk_size, b.cfg.copy_cutoff)
        for n, start in enumerate(range(0, meta.size, step), 1):
            end = min(meta.size, start + step) - 1
            part_headers = {k: v for k, v in headers.items() if k.startswith("x-amz-copy-source")}
            part_headers.update(b.cfg.sse_headers)
            part_headers["x-amz-copy-source"] = source
            part_headers["x-amz-copy-source-range"] = f"bytes={start}-{end}"
            r = b.api.call("PUT", dst[0], dst[1], f"partNumber={n}&uploadId={q_id}", headers=part_headers,
                              what=f"UploadPartCopy {n}")
            parts.append((n, clean_etag(find_text(r.data, "ETag"))))
        r = b.api.call("POST", dst[0], dst[1], f"uploadId={q_id}", body=complete_body(parts),
                          what="CompleteMultipartUpload")
        code, message = parse_error(r.data)
        if code:
            raise OSError(errno.EIO, f"{b.api.label}: multipart copy to {dst[0]}/{dst[1]}: {code}: {message}")
    except BaseException:
        try:
            b.api.call("DELETE", dst[0], dst[1], f"uploadId={q_id}", what="AbortMultipartUpload").release_conn()
        except OSError:
            pass
        raise
