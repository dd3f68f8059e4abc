"""rclone's value syntax: sizes, durations, booleans, file modes and integers.

Each parser mirrors the Go function rclone 1.75.2 uses (fs.SizeSuffix, fs.Duration,
strconv.ParseBool, strconv.ParseInt ...), including its error texts, so a value that
rclone accepts is accepted here and means the same thing. strconv.py holds Go's number,
bool and quoting rules, sizes.py and durations.py rclone's two suffixed types.
"""

from __future__ import annotations

from .durations import (
    format_duration,
    format_duration_ns,
    fs_parse_duration,
    go_duration_string,
    go_parse_duration,
    parse_duration,
    parse_duration_ns,
)
from .sizes import format_size, option_size_string, parse_size, set_size
from .strconv import (
    INT64_MAX,
    INT64_MIN,
    float_to_int64,
    format_go_float,
    go_quote,
    go_quote_rune,
    parse_bool,
    parse_filemode,
    parse_go_float,
    parse_int,
    parse_scan_bool,
    parse_tristate,
    parse_uint32,
)

__all__ = [
    "INT64_MAX", "INT64_MIN", "float_to_int64", "format_duration", "format_duration_ns", "format_go_float",
    "format_size", "fs_parse_duration", "go_duration_string", "go_parse_duration", "go_quote", "go_quote_rune",
    "option_size_string", "parse_bool", "parse_duration", "parse_duration_ns", "parse_filemode", "parse_go_float",
    "parse_int", "parse_scan_bool", "parse_size", "parse_tristate", "parse_uint32", "set_size",
]
