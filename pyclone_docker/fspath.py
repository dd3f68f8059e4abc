"""rclone connection strings: `remote:path`, `:backend,key=value:path`, `/local/path`.

parse() follows rclone's fspath.Parse: same accepted forms, same error texts. Remote
names use the rules of rclone >= 1.61 (Unicode letters and digits, `+`, `@`); parameter
names may hold a `.` as in rclone 1.75.2 (`global.timeout`, `override.contimeout`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

ERR_EMPTY_PATH = "can't use empty string as a path"
ERR_INVALID_NAME = ("config name contains invalid characters - may only contain numbers, letters, "
                    "`_`, `-`, `.`, `+`, `@` and space, while not start with `-` or space, "
                    "and not end with space")
ERR_BAD_PARAM = "config parameters may only contain `0-9`, `A-Z`, `a-z`, `_` and `.`"
ERR_EMPTY_PARAM = "config parameters can't be empty"
ERR_EMPTY_NAME = "config name can't be empty"
ERR_NAME_NO_COLON = "config name needs a trailing `:`"
ERR_PARAM_END = "config parameter must end with `,` or `:`"
ERR_VALUE_END = "unquoted config value must end with `,` or `:`"
ERR_UNTERMINATED = "unterminated quoted config value"
ERR_AFTER_QUOTE = "expecting `:` or `,` or another quote after a quote"

_NAME_PUNCT = "_.+@"


def _category(c: str) -> str:
    import unicodedata

    return unicodedata.category(c)


@dataclass(frozen=True)
class ParsedPath:
    """A parsed fs string. name is '' for local paths, ':s3' for on-the-fly backends."""

    name: str
    config: dict[str, str] = field(default_factory=dict)
    path: str = ""
    is_local: bool = False


def _name_char(c: str, inner: bool) -> bool:
    if c.isascii():
        if c.isalnum() or c in _NAME_PUNCT:
            return True
    elif _category(c)[0] in "LN":
        return True
    return inner and c in " -"


def valid_config_name(name: str) -> bool:
    """rclone >= 1.61 remote names: letters, digits, `_ . + @`, inner `-` and spaces."""
    if not name or name.endswith(" "):
        return False
    return _name_char(name[0], False) and all(_name_char(c, True) for c in name[1:])


def _check_name(name: str) -> None:
    bare = name.removeprefix(":")
    if bare == "":
        raise ValueError(ERR_EMPTY_NAME)
    if not valid_config_name(bare):
        raise ValueError(ERR_INVALID_NAME)


def _is_param_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c in "_.")


def _scan_name(s: str) -> int | None:
    """Index of the `:` or `,` ending the remote name, or None for a local path."""
    for i, c in enumerate(s):
        if i == 0 and c == ":":
            continue
        if c in "/\\":
            # a path separator first means a local path, unless ":" asked for a backend
            if s[0] == ":":
                raise ValueError(ERR_INVALID_NAME)
            return None
        if c in ":,":
            return i
    raise ValueError(ERR_NAME_NO_COLON)


def _scan_quoted(s: str, i: int) -> tuple[str, int]:
    """A quoted value starting at s[i] (the quote): (value, index of the `,`/`:` after it)."""
    quote, j, out = s[i], i + 1, []
    while True:
        end = s.find(quote, j)
        if end < 0:
            raise ValueError(ERR_UNTERMINATED)
        out.append(s[j:end])
        nxt = s[end + 1:end + 2]
        if nxt == quote:  # doubled quote = a literal quote
            out.append(quote)
            j = end + 2
        elif nxt in (",", ":"):
            return "".join(out), end + 1
        else:
            raise ValueError(ERR_AFTER_QUOTE)


def _scan_value(s: str, i: int) -> tuple[str, int]:
    """The value starting at s[i]: (value, index of the `,`/`:` ending it)."""
    if s[i:i + 1] in ("'", '"'):
        return _scan_quoted(s, i)
    ends = [p for p in (s.find(",", i), s.find(":", i)) if p >= 0]
    if not ends:
        raise ValueError(ERR_VALUE_END)
    end = min(ends)
    return s[i:end], end


def _scan_params(s: str, i: int, config: dict[str, str]) -> int:
    """Parse `key[=value]` items from s[i:] into config; returns the index of the final `:`."""
    while True:
        j = i
        while j < len(s) and _is_param_char(s[j]):
            j += 1
        if j == len(s):
            raise ValueError(ERR_PARAM_END)
        if s[j] not in ",:=":
            raise ValueError(ERR_BAD_PARAM)
        key = s[i:j]
        if not key:
            raise ValueError(ERR_EMPTY_PARAM)
        if s[j] == "=":
            config[key], j = _scan_value(s, j + 1)
        else:
            config[key] = "true"  # a bare key means true
        if s[j] == ":":
            return j
        i = j + 1


def parse(s: str) -> ParsedPath:
    """Split an fs string into remote name, inline parameters and path (rclone fspath.Parse)."""
    if s == "":
        raise ValueError(ERR_EMPTY_PATH)
    if ":" not in s:
        return ParsedPath("", {}, s, True)
    end = _scan_name(s)
    if end is None:
        return ParsedPath("", {}, s, True)
    name = s[:end]
    _check_name(name)
    config: dict[str, str] = {}
    if s[end] == ",":
        end = _scan_params(s, end + 1, config)
    return ParsedPath(name, config, s[end + 1:], False)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def config_string(params: Mapping[str, str]) -> str:
    """configmap.Simple.String(): `k='v'` sorted by key, `'` doubled, joined by `,`."""
    return ",".join(f"{k}={_quote(params[k])}" for k in sorted(params))


def make_fs_string(name_or_colon_type: str, params: Mapping[str, str], path: str) -> str:
    """Build e.g. `:local,case_sensitive='true':/srv/docker` (parse() reads it back)."""
    if not name_or_colon_type:
        if params:
            raise ValueError("parameters need a remote name or a :backend")
        return path
    head = name_or_colon_type
    if params:
        head += "," + config_string(params)
    return f"{head}:{path}"


def override_suffix(params: Mapping[str, str]) -> str:
    """The `{xxxxx}` rclone appends to an Fs name whose options were overridden ('' if none)."""
    if not params:
        return ""
    import hashlib  # lazily: loading OpenSSL costs ~4 MB of RSS

    digest = hashlib.md5(config_string(params).encode("utf-8")).digest()
    return "{" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")[:5] + "}"
