"""An s3 remote's options resolved as rclone's NewFs resolves them: credentials, provider
quirks, the endpoint and the addressing style, and the checks that refuse a bad setup.

Everything here runs once per volume, at Create; nothing talks to the network.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ...log import NOTICE
from ..base import BackendContext
from .providers import MAX_INT64, Quirks, quirks
from .sigv4 import Credentials

log = logging.getLogger("pyclone")

MIN_CHUNK_SIZE = 5 * 1024 * 1024  # S3's smallest part but the last (rclone's minChunkSize)
MAX_UPLOAD_CUTOFF = 5 * 1024 ** 3  # 5 GiB: the largest single PutObject
MAX_PARTS = 10000

# options that change what the volume shows or how it is protected: refused until built,
# so nobody believes they hold (rclone's names)
_NOT_BUILT = {
    "versions": "reading old object versions (versions)",
    "version_at": "reading the objects as they were at a time (version_at)",
    "version_deleted": "showing deleted versions (version_deleted)",
    "role_arn": "assuming an IAM role (role_arn)",
    "directory_bucket": "S3 Express directory buckets (directory_bucket)",
    "object_lock_mode": "object lock (object_lock_mode)",
    "object_lock_retain_until_date": "object lock (object_lock_retain_until_date)",
    "object_lock_legal_hold_status": "object lock (object_lock_legal_hold_status)",
    "ibm_api_key": "IBM IAM authentication (ibm_api_key)",
    "decompress": "decompressing gzip-encoded objects (decompress)",
}


def _unset(name: str, value: Any) -> bool:
    return value in ("", False, None, "off", 0) or (name == "version_at" and str(value).lower() == "off")


@dataclass(frozen=True)
class S3Config:
    """Everything a request needs to know about the remote."""

    provider: Quirks
    region: str
    endpoint: str  # scheme://host[:port] (no path), "" for AWS's own
    path_style: bool
    credentials: Credentials | None  # None: anonymous
    v2_auth: bool
    unsigned_payload: bool
    list_version: int
    list_url_encode: bool
    list_chunk: int
    use_multipart_etag: bool
    use_already_exists: bool
    etag_is_not_md5: bool
    upload_cutoff: int
    chunk_size: int
    max_upload_parts: int
    upload_concurrency: int
    copy_cutoff: int
    disable_checksum: bool
    leave_parts_on_error: bool
    no_check_bucket: bool
    no_head: bool
    no_head_object: bool
    directory_markers: bool
    acl: str
    bucket_acl: str
    storage_class: str
    requester_pays: bool
    location_constraint: str
    download_url: str
    use_dual_stack: bool
    use_accelerate_endpoint: bool
    sse_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # on every object read and write
    sse_copy_source_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    put_headers: tuple[tuple[str, str], ...] = ()  # on uploads only (KMS, SSE, ACL, class)

    def base_url(self, bucket: str) -> tuple[str, str]:
        """(scheme://host[:port], path prefix) where `bucket`'s objects are addressed."""
        if self.endpoint:
            parts = urlsplit(self.endpoint)
            scheme, host = parts.scheme, parts.netloc
        elif self.use_accelerate_endpoint:
            scheme, host = "https", ("s3-accelerate.dualstack.amazonaws.com" if self.use_dual_stack
                                     else "s3-accelerate.amazonaws.com")
        else:
            dual = "dualstack." if self.use_dual_stack else ""
            scheme, host = "https", f"s3.{dual}{self.region}.amazonaws.com"
        if not bucket:
            return f"{scheme}://{host}", ""
        if self.path_style:
            return f"{scheme}://{host}", "/" + bucket
        return f"{scheme}://{bucket}.{host}", ""


def _env_credentials(opt: dict[str, Any]) -> Credentials | None:
    """env_auth: the AWS environment variables, then the shared credentials file's profile
    (what the AWS SDK's default chain reads before the instance metadata, which is not built)."""
    key = os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY") or os.environ.get("AWS_SECRET_KEY")
    if key and secret:
        return Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN", ""))
    path = (opt["shared_credentials_file"] or os.environ.get("AWS_SHARED_CREDENTIALS_FILE")
            or os.path.join(os.path.expanduser("~"), ".aws", "credentials"))
    profile = opt["profile"] or os.environ.get("AWS_PROFILE") or "default"
    import configparser

    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        return None
    except (OSError, configparser.Error) as e:
        raise ValueError(f"s3: env_auth: cannot read the shared credentials file {path}: "
                         f"{type(e).__name__}") from None
    if not parser.has_section(profile):
        return None
    section = parser[profile]
    key, secret = section.get("aws_access_key_id", ""), section.get("aws_secret_access_key", "")
    if not key or not secret:
        return None
    return Credentials(key.strip(), secret.strip(), section.get("aws_session_token", "").strip())


def _credentials(opt: dict[str, Any]) -> Credentials | None:
    key, secret = opt["access_key_id"], opt["secret_access_key"]
    if opt["env_auth"] and not key and not secret:
        found = _env_credentials(opt)
        if found is None:
            # the SDK would go on to the instance metadata service, which is not built
            raise ValueError("s3: env_auth = true but no credentials were found in the AWS environment "
                             "variables or the shared credentials file (instance and container "
                             "metadata credentials are not supported yet)")
        return found
    if not key and not secret:
        log.debug("s3: using anonymous credentials - did you mean to set env_auth=true?")
        return None
    if not key:
        raise ValueError("access_key_id not found")
    if not secret:
        raise ValueError("secret_access_key not found")
    return Credentials(key, secret, opt["session_token"])


def _sse(opt: dict[str, Any]) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], bool]:
    """The SSE-C headers (every GET, HEAD, PUT and part), those of a copy's source, and whether
    ETags stop being MD5s (SSE-KMS and SSE-C)."""
    raw_key, b64 = opt["sse_customer_key"], opt["sse_customer_key_base64"]
    if raw_key and b64:
        raise ValueError("s3: can't use sse_customer_key and sse_customer_key_base64 at the same time")
    if b64:
        try:
            key = base64.b64decode(b64, validate=True)
        except ValueError:
            raise ValueError("s3: Could not decode sse_customer_key_base64") from None
    else:
        key = raw_key.encode()
    algorithm = opt["sse_customer_algorithm"]
    if not algorithm and not key:
        return (), (), opt["server_side_encryption"] == "aws:kms"
    md5 = opt["sse_customer_key_md5"] or base64.b64encode(hashlib.md5(key).digest()).decode()
    b64 = base64.b64encode(key).decode()
    sse, source = [], []
    if algorithm:
        sse.append(("x-amz-server-side-encryption-customer-algorithm", algorithm))
        source.append(("x-amz-copy-source-server-side-encryption-customer-algorithm", algorithm))
    if key:
        sse += [("x-amz-server-side-encryption-customer-key", b64),
                ("x-amz-server-side-encryption-customer-key-md5", md5)]
        source += [("x-amz-copy-source-server-side-encryption-customer-key", b64),
                   ("x-amz-copy-source-server-side-encryption-customer-key-md5", md5)]
    return tuple(sse), tuple(source), True


def resolve(opt: dict[str, Any], ctx: BackendContext) -> S3Config:
    """The typed options (BackendInfo.parse_options) as one S3Config; ValueError with rclone's
    words where rclone refuses them."""
    for name, what in _NOT_BUILT.items():
        if not _unset(name, opt.get(name)):
            raise ValueError(f"s3: {what} is not supported by pyclone-docker yet")
    if opt["sts_endpoint"]:
        raise ValueError("--s3-sts-endpoint is no longer supported with the v2 SDK - please make an issue")
    chunk = int(opt["chunk_size"])
    if chunk < MIN_CHUNK_SIZE:
        raise ValueError(f"s3: chunk size: {_size(chunk)} is less than {_size(MIN_CHUNK_SIZE)}")
    cutoff = int(opt["upload_cutoff"])
    provider_name = opt["provider"]
    q = quirks(provider_name)
    if q is None:
        log.log(NOTICE, "s3: s3 provider %r not known - please set correctly", provider_name)
        q = quirks("Other")
        assert q is not None
    if cutoff > MAX_UPLOAD_CUTOFF and q.name != "Rclone":
        raise ValueError(f"s3: upload cutoff: {_size(cutoff)} is greater than {_size(MAX_UPLOAD_CUTOFF)}")
    copy_cutoff = int(opt["copy_cutoff"])
    if copy_cutoff < 1024:
        raise ValueError(f"s3: --s3-copy-cutoff: value is too small ({_size(copy_cutoff)} is less than 1Ki)")
    if copy_cutoff == 4768 * 1024 * 1024 and q.copy_cutoff is not None:
        copy_cutoff = q.copy_cutoff
    max_parts = int(opt["max_upload_parts"])
    if q.max_upload_parts is not None:
        max_parts = min(max_parts, q.max_upload_parts)
    if q.min_chunk_size is not None:
        chunk = max(chunk, q.min_chunk_size)
    if not _tristate(opt["use_multipart_uploads"], q.use_multipart_uploads):
        cutoff = MAX_INT64
    if int(opt["upload_concurrency"]) < 1:
        raise ValueError("s3: upload_concurrency must be at least 1")
    if int(opt["list_chunk"]) < 1:
        raise ValueError("s3: list_chunk must be at least 1")
    region = opt["region"] or "us-east-1"
    endpoint = opt["endpoint"]
    if endpoint:
        if not endpoint.startswith("http"):
            endpoint = "https://" + endpoint
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"s3: endpoint {endpoint!r} is not a valid URL")
        endpoint = f"{parts.scheme}://{parts.netloc}"
    # rclone's setQuirks: a provider without the force_path_style quirk is addressed virtual-host
    # style whatever the option says
    path_style = bool(opt["force_path_style"]) and q.path_style and not opt["use_accelerate_endpoint"]
    list_version = int(opt["list_version"]) or q.list_version
    if list_version not in (1, 2):
        raise ValueError(f"s3: list_version {list_version} is not 1 or 2")
    sse, sse_source, etag_not_md5 = _sse(opt)
    put: list[tuple[str, str]] = []
    if opt["server_side_encryption"]:
        put.append(("x-amz-server-side-encryption", opt["server_side_encryption"]))
    if opt["sse_kms_key_id"]:
        put.append(("x-amz-server-side-encryption-aws-kms-key-id", opt["sse_kms_key_id"]))
    if opt["acl"]:
        put.append(("x-amz-acl", opt["acl"]))
    if opt["storage_class"]:
        put.append(("x-amz-storage-class", opt["storage_class"]))
    return S3Config(
        provider=q, region=region, endpoint=endpoint, path_style=path_style,
        credentials=_credentials(opt), v2_auth=bool(opt["v2_auth"]) or region == "other-v2-signature",
        unsigned_payload=_tristate(opt["use_unsigned_payload"], q.use_unsigned_payload),
        list_version=list_version, list_url_encode=_tristate(opt["list_url_encode"], q.list_url_encode),
        list_chunk=int(opt["list_chunk"]),
        use_multipart_etag=_tristate(opt["use_multipart_etag"], q.use_multipart_etag),
        use_already_exists=_tristate(opt["use_already_exists"], q.use_already_exists),
        etag_is_not_md5=etag_not_md5 or q.etag_is_not_md5,
        upload_cutoff=cutoff, chunk_size=chunk, max_upload_parts=max(1, max_parts),
        upload_concurrency=int(opt["upload_concurrency"]), copy_cutoff=copy_cutoff,
        disable_checksum=bool(opt["disable_checksum"]),
        leave_parts_on_error=bool(opt["leave_parts_on_error"]), no_check_bucket=bool(opt["no_check_bucket"]),
        no_head=bool(opt["no_head"]), no_head_object=bool(opt["no_head_object"]),
        directory_markers=bool(opt["directory_markers"]), acl=opt["acl"], bucket_acl=opt["bucket_acl"] or opt["acl"],
        storage_class=opt["storage_class"], requester_pays=bool(opt["requester_pays"]),
        location_constraint=opt["location_constraint"], download_url=opt["download_url"].rstrip("/"),
        use_dual_stack=bool(opt["use_dual_stack"]), use_accelerate_endpoint=bool(opt["use_accelerate_endpoint"]),
        sse_headers=sse, sse_copy_source_headers=sse_source, put_headers=tuple(put),
    )


def _tristate(value: bool | None, default: bool) -> bool:
    return default if value is None else bool(value)


def _size(n: int) -> str:
    from ...parsers import format_size

    return format_size(n)
