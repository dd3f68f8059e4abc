"""What each `vendor` changes, as rclone 1.75.2's setQuirks sets it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quirks:
    can_stream: bool = False  # uploads of an unknown size (chunked PUT)
    precision_s: int = 0  # modtimes kept to the second; 0: the server's own modtimes only
    use_oc_mtime: bool = False  # X-OC-Mtime on PUT, MOVE and COPY
    propset_mtime: bool = False  # PROPPATCH lastmodified sets a modtime (set_modtime)
    oc_md5: bool = False  # oc:checksums carry MD5
    oc_sha1: bool = False  # oc:checksums carry SHA1
    me_sha1: bool = False  # Fastmail's ME:sha1hex
    standard_props: bool = False  # PROPFIND asks for the standard properties (else allprop)
    chunked_uploads: bool = False  # Nextcloud's chunked uploads above nextcloud_chunk_size
    tus_uploads: bool = False  # Infinite Scale's tus uploads (of every file of a known size)


VENDORS: dict[str, Quirks] = {
    "fastmail": Quirks(can_stream=True, precision_s=1, use_oc_mtime=True, me_sha1=True),
    "owncloud": Quirks(can_stream=True, precision_s=1, use_oc_mtime=True, propset_mtime=True, oc_md5=True,
                       oc_sha1=True),
    "infinitescale": Quirks(precision_s=1, use_oc_mtime=True, propset_mtime=True, oc_sha1=True, tus_uploads=True),
    "nextcloud": Quirks(precision_s=1, use_oc_mtime=True, propset_mtime=True, oc_sha1=True, chunked_uploads=True),
    "rclone": Quirks(can_stream=True, precision_s=1, use_oc_mtime=True),
    "other": Quirks(standard_props=True),
}
# rclone logs an unknown vendor at debug level and carries on with no quirks at all
UNKNOWN = Quirks()
UNSUPPORTED = {
    "sharepoint": "SharePoint Online's cookie sign-in (vendor sharepoint) is not supported by pyclone-docker",
    "sharepoint-ntlm": "NTLM authentication (vendor sharepoint-ntlm) is not supported by pyclone-docker",
}


def quirks(vendor: str) -> Quirks:
    """The quirks of `vendor` ('' is rclone's default, other); ValueError for the unsupported ones."""
    vendor = vendor or "other"
    if vendor in UNSUPPORTED:
        raise ValueError(UNSUPPORTED[vendor])
    return VENDORS.get(vendor, UNKNOWN)
