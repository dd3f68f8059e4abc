"""rc request parameters: rclone's handlePost (URL query, form and JSON bodies), and the
checks every method applies to its values."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from ..parsers import go_quote

MAX_PATH = 4096
# rclone's job parameters: accepted and ignored (there are no jobs here)
JOB_PARAMS = ("_group", "_config", "_filter")

Params = dict[str, Any]


class RcError(Exception):
    """An error reply: `message` goes to the client as "error" with this HTTP status."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


# --- parameters -----------------------------------------------------------------------------


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """Content-Type -> (media type in lower case, parameters), as Go's mime.ParseMediaType."""
    head, *rest = value.split(";")
    media = head.strip().lower()
    if not media or "/" not in media:
        raise ValueError("mime: no media type" if not media else "mime: expected slash after first token")
    params = {}
    for part in rest:
        key, eq, val = part.strip().partition("=")
        if not part.strip():
            continue
        if not eq or not key.strip():
            raise ValueError("mime: invalid media parameter")
        params[key.strip().lower()] = val.strip().strip('"')
    return media, params


def request_params(query: str, content_type: str, body: bytes) -> Params:
    """rclone's handlePost: URL query (or form body and query), then a JSON body on top.

    A body without a Content-Type that looks like a JSON object is read as JSON too
    (rclone ignores it; curl and Python clients often leave the header out).
    """
    media, ctparams = "", {}
    if content_type:
        try:
            media, ctparams = parse_media_type(content_type)
        except ValueError as e:
            raise RcError(f"failed to parse Content-Type: {e}", 400) from None
    pairs = []
    if media == "application/x-www-form-urlencoded":
        try:
            pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError) as e:
            raise RcError(f"failed to parse form/URL parameters: {e}", 400) from None
    pairs += parse_qsl(query, keep_blank_values=True)
    params: Params = {}
    for key, value in pairs:
        params[key] = value  # the last value of a repeated key wins, as in rclone
    is_json = media == "application/json" or (not media and body.lstrip()[:1] == b"{")
    if is_json:
        charset = ctparams.get("charset")
        if charset is not None and charset.lower() != "utf-8":
            raise RcError(f"unsupported charset {go_quote(charset)} for JSON input", 400)
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else None
        except (UnicodeDecodeError, ValueError) as e:
            raise RcError(f"failed to read input JSON: {e}", 400) from None
        if data is not None and not isinstance(data, dict):
            raise RcError(f"failed to read input JSON: json: cannot unmarshal {type(data).__name__} "
                          "into Go value of type rc.Params", 400)
        params.update(data or {})
    return params


def string_value(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise RcError(f"value must be string {go_quote(key)}={json.dumps(value)}")
    return value


def clean_path(key: str, value: Any) -> str:
    """A path parameter as the VFS keys it: relative, '/'-separated, no `.`/`..`/empty parts.

    Leading and trailing slashes are dropped, as rclone's strings.Trim(path, "/"): `/a/b/` is
    `a/b` of the volume, never a host path. `..` is refused rather than resolved.
    """
    raw = string_value(key, value)
    if "\0" in raw or len(raw) > MAX_PATH:
        raise RcError(f"invalid path {go_quote(raw[:64])} for {go_quote(key)}", 400)
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RcError(f'invalid path {go_quote(raw)} for {go_quote(key)}: ".." is not allowed', 400)
    return "/".join(parts)
