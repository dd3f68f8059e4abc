"""The `s3` backend (Amazon S3 compliant storage providers), with rclone 1.75.2's options.

The modules: providers (the quirks by provider), config (options resolved as rclone's
NewFs), sigv4/sigv2 (request signing), xmlparse (the API's XML), api (one request, its
errors), transfer (reads, single and multipart uploads), backend (the Backend). Only this
module is imported until a volume uses s3.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..base import Backend, BackendInfo
from ..base import BackendOption as _O


def _warm_up() -> None:
    from ...lib.httpclient.client import preload

    preload()


def _new(name: str, root: str, config: dict[str, str], ctx: Any = None) -> Backend:
    from .backend import S3Backend

    return S3Backend(name, root, config, ctx)


INFO = BackendInfo("s3", _new, (
    _O("provider"), _O("env_auth", "bool"), _O("access_key_id"), _O("secret_access_key"), _O("region"),
    _O("endpoint"), _O("location_constraint"), _O("acl"), _O("bucket_acl"), _O("requester_pays", "bool"),
    _O("server_side_encryption"), _O("sse_customer_algorithm"), _O("sse_kms_key_id"), _O("sse_customer_key"),
    _O("sse_customer_key_base64"), _O("sse_customer_key_md5"), _O("storage_class"),
    _O("upload_cutoff", "size", "200Mi"), _O("chunk_size", "size", "5Mi"),
    _O("max_upload_parts", "int", "10000"), _O("copy_cutoff", "size", "4768Mi"),
    _O("disable_checksum", "bool"), _O("shared_credentials_file"), _O("profile"), _O("session_token"),
    _O("role_arn"), _O("role_session_name"), _O("role_session_duration"), _O("role_external_id"),
    _O("upload_concurrency", "int", "4"), _O("force_path_style", "bool", "true"), _O("v2_auth", "bool"),
    _O("use_dual_stack", "bool"), _O("use_accelerate_endpoint", "bool"), _O("use_arn_region", "bool"),
    _O("leave_parts_on_error", "bool"), _O("list_chunk", "int", "1000"), _O("list_version", "int", "0"),
    _O("list_url_encode", "tristate"), _O("no_check_bucket", "bool"), _O("no_head", "bool"),
    _O("no_head_object", "bool"), _O("encoding", default="Slash,InvalidUtf8,Dot"),
    _O("memory_pool_flush_time", "duration", "1m"), _O("memory_pool_use_mmap", "bool"),
    _O("disable_http2", "bool"), _O("download_url"), _O("directory_markers", "bool"),
    _O("use_multipart_etag", "tristate"), _O("use_unsigned_payload", "tristate"),
    _O("use_presigned_request", "bool"), _O("use_data_integrity_protections", "tristate"),
    _O("versions", "bool"), _O("version_at", default="off"), _O("version_deleted", "bool"),
    _O("decompress", "bool"), _O("might_gzip", "tristate"), _O("use_accept_encoding_gzip", "tristate"),
    _O("no_system_metadata", "bool"), _O("sts_endpoint"), _O("use_already_exists", "tristate"),
    _O("use_multipart_uploads", "tristate"), _O("list_versions_oldest_first", "tristate"),
    _O("use_x_id", "tristate"), _O("sign_accept_encoding", "tristate"), _O("directory_bucket", "bool"),
    _O("sdk_log_mode", default="Off"), _O("ibm_api_key"), _O("ibm_resource_instance_id"),
    _O("ibm_iam_endpoint"), _O("object_lock_mode"), _O("object_lock_retain_until_date"),
    _O("object_lock_legal_hold_status"), _O("bypass_governance_retention", "bool"),
    _O("bucket_object_lock_enabled", "bool"), _O("object_lock_set_after_upload", "bool"),
    _O("object_lock_supported", "tristate"), _O("description"),
), "Amazon S3 Compliant Storage Providers", warm_up=_warm_up)

# accepted as rclone accepts them, without an effect yet: a value other than the default is
# warned about (config.py refuses those whose absence would change what a volume shows)
_NO_EFFECT = {"memory_pool_flush_time", "memory_pool_use_mmap", "use_presigned_request",
              "use_data_integrity_protections", "might_gzip", "use_accept_encoding_gzip", "no_system_metadata",
              "use_x_id", "sign_accept_encoding", "sdk_log_mode", "use_arn_region", "role_session_name",
              "role_session_duration", "role_external_id", "bypass_governance_retention",
              "bucket_object_lock_enabled", "object_lock_set_after_upload", "object_lock_supported",
              "list_versions_oldest_first", "ibm_resource_instance_id", "ibm_iam_endpoint"}
INFO.options = tuple(replace(o, noop=True) if o.name in _NO_EFFECT else o for o in INFO.options)
