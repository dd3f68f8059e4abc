"""rclone 1.75.2's s3 providers and the quirks by which they differ (backend/s3/provider/*.yaml).

A quirk string lists the provider's departures from the defaults: a bare word turns a quirk
on, `!word` turns it off, `word=N` sets a number ("max": no limit). The words:
path (force_path_style: a provider without it is always addressed virtual-host style),
urlenc (list_url_encode), mpetag (use_multipart_etag), exists (use_already_exists),
unsigned (use_unsigned_payload), multipart (use_multipart_uploads), etag_not_md5, v (the
listing version), copy_cutoff, max_parts (max_upload_parts), min_chunk (the smallest chunk_size).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_INT64 = (1 << 63) - 1

PROVIDERS: dict[str, str] = {
    "AWS": "!unsigned",
    "Alibaba": "!mpetag",
    "ArvanCloud": "v=1 path !urlenc !exists",
    "BizflyCloud": "path !urlenc !mpetag !exists",
    "Ceph": "v=1 path !urlenc !exists",
    "ChinaMobile": "v=1 path !urlenc !exists",
    "Cloudflare": "path !mpetag",
    "Cubbit": "!mpetag",
    "DigitalOcean": "!urlenc !exists",
    "Dreamhost": "!urlenc !exists",
    "Exaba": "path",
    "Fastly": "path !exists !mpetag !multipart etag_not_md5",
    "FileLu": "v=2 path !urlenc !mpetag",
    "FlashBlade": "path",
    "GCS": "exists copy_cutoff=max",
    "HCP": "path urlenc !mpetag",
    "Hetzner": "!exists",
    "HuaweiOBS": "!urlenc v=1 !exists",
    "IBMCOS": "v=1 path !urlenc !mpetag !exists",
    "IDrive": "path !exists",
    "IONOS": "path !urlenc !exists",
    "ImpossibleCloud": "",
    "Intercolo": "!unsigned",
    "Leviia": "!exists",
    "Liara": "path !urlenc !mpetag !exists",
    "Linode": "",
    "LyveCloud": "!mpetag !exists",
    "Magalu": "v=1 path !urlenc !mpetag !exists",
    "Mega": "v=2 path urlenc !mpetag !exists copy_cutoff=max",
    "Minio": "path",
    "Netease": "v=1 !urlenc !mpetag !exists",
    "OVHcloud": "",
    "Other": "v=1 path !urlenc !mpetag !exists",
    "Outscale": "path",
    "Petabox": "!exists",
    "Qiniu": "!mpetag !urlenc path !exists",
    "Rabata": "",
    "RackCorp": "!mpetag !exists",
    "Rclone": "path !mpetag !exists copy_cutoff=max",
    "Scaleway": "max_parts=1000",
    "Scality": "path",
    "SeaweedFS": "v=1 path !urlenc !mpetag !exists",
    "Selectel": "!urlenc",
    "Servercore": "!urlenc",
    "SpectraLogic": "path",
    "Storj": "!exists copy_cutoff=max min_chunk=67108864",
    "Synology": "!mpetag !exists",
    "TencentCOS": "v=1 !mpetag !exists",
    "Wasabi": "",
    "Zadara": "path",
    "Zata": "!mpetag !unsigned !exists",
    "ZeroServices": "path !urlenc !exists",
    "US3": "v=1 !mpetag !exists urlenc",
}


@dataclass(frozen=True)
class Quirks:
    """What a provider's s3 API does differently; None: the user's option decides."""

    name: str
    path_style: bool = False  # the provider may be addressed path style (force_path_style quirk)
    list_version: int = 2
    list_url_encode: bool = True
    use_multipart_etag: bool = True
    use_already_exists: bool = True
    use_unsigned_payload: bool = True
    use_multipart_uploads: bool = True
    etag_is_not_md5: bool = False
    copy_cutoff: int | None = None
    max_upload_parts: int | None = None
    min_chunk_size: int | None = None


_WORDS = {"path": "path_style", "urlenc": "list_url_encode", "mpetag": "use_multipart_etag",
          "exists": "use_already_exists", "unsigned": "use_unsigned_payload",
          "multipart": "use_multipart_uploads", "etag_not_md5": "etag_is_not_md5", "v": "list_version",
          "copy_cutoff": "copy_cutoff", "max_parts": "max_upload_parts", "min_chunk": "min_chunk_size"}


def quirks(provider: str) -> Quirks | None:
    """The provider's quirks, or None for a name rclone does not know."""
    spec = PROVIDERS.get(provider)
    if spec is None:
        return None
    values: dict[str, object] = {}
    for word in spec.split():
        if "=" in word:
            key, _, raw = word.partition("=")
            values[_WORDS[key]] = MAX_INT64 if raw == "max" else int(raw)
        elif word.startswith("!"):
            values[_WORDS[word[1:]]] = False
        else:
            values[_WORDS[word]] = True
    return Quirks(provider, **values)  # type: ignore[arg-type]
