"""rclone's flag names and value types: one registry for the command line and volume options.

The same table drives `serve docker --vfs-cache-mode full`, `RCLONE_VFS_CACHE_MODE=full` and
`docker volume create -o vfs_cache_mode=full`, so the three can never disagree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from . import __version__, parsers
from .parsers.bwtimetable import BwTimetable, parse_bwtimetable

CACHE_MODES = ("off", "minimal", "writes", "full")


def _parse_cache_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in CACHE_MODES:
        raise ValueError(f'unknown cache mode level "{value}"')
    return mode


def _parse_csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


# rclone's --dump choices (fs.DumpFlags), in its order
DUMP_CHOICES = ("headers", "bodies", "requests", "responses", "auth", "filters", "goroutines", "openfiles",
                "mapper", "curl", "errors", "trace")
_DUMP_TYPE = "fs.Bits[github.com/rclone/rclone/fs.dumpChoices]"


def _parse_dump(value: str) -> frozenset[str]:
    """fs.Bits.Set: a comma list of DUMP_CHOICES, any case, blanks skipped."""
    out = set()
    for part in value.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in DUMP_CHOICES:
            raise ValueError(f"parsing {parsers.go_quote(value)} as {_DUMP_TYPE} failed: invalid choice "
                             f"{parsers.go_quote(part.strip())} from: {', '.join(DUMP_CHOICES)}")
        out.add(name)
    return frozenset(out)


_FLOAT_DIGITS = "0123456789_"


def _scan_float_token(s: str) -> tuple[str, str]:
    """Go's fmt float token (fmt.Sscan's floatToken): the token and what follows it."""
    i = 0

    def accept(chars: str) -> bool:
        nonlocal i
        if i < len(s) and s[i] in chars:
            i += 1
            return True
        return False

    accept("+-")
    if accept("nN") and accept("aA") and accept("nN"):
        return s[:i], s[i:]
    digits, exp = _FLOAT_DIGITS, "eEpP"
    if accept("0") and accept("xX"):
        digits, exp = "0123456789abcdefABCDEF_", "pP"
    while accept(digits):
        pass
    if accept("."):
        while accept(digits):
            pass
    if accept(exp):
        accept("+-")
        while accept(_FLOAT_DIGITS):
            pass
    if accept("iI") and accept("nN") and accept("fF"):
        pass
    return s[:i], s[i:]


def _parse_float(value: str) -> float:
    """A float64 option as rclone 1.75.2 reads it (fmt.Sscanln, then strconv.ParseFloat)."""
    head = value.lstrip(" \t\r")
    why = ""
    if head in ("", "\n") or head.startswith("\n"):
        why = "EOF" if head == "" else "unexpected newline"
    else:
        token, rest = _scan_float_token(head)
        try:
            number = parsers.parse_go_float(token)
        except ValueError as e:
            why = str(e)
        else:
            if rest.strip(" \t\r") not in ("", "\n"):
                why = "expected newline"
    if why:
        raise ValueError(f"parsing {parsers.go_quote(value)} as float64 failed: {why}")
    return number


def parse_header(value: str) -> tuple[str, str]:
    """`Key: Value` (rclone's fs.ParseHeaders): split at the first ':', both sides trimmed."""
    key, colon, val = value.partition(":")
    if not colon:
        raise ValueError(f"failed to parse {parsers.go_quote(value)} as an HTTP header. "
                         "Expecting a string like: 'Cache-Control: no-store'")
    return key.strip(), val.strip()


def _parse_header_flag(value: str) -> list[str]:
    parse_header(value)
    return [value]


def parse_env_list(value: str) -> list[str]:
    """A stringArray option from its RCLONE_ variable: one CSV record (rclone's CommaSepList)."""
    if value == "":
        return []
    import csv  # not at import: ~7 ms of every start, for a variable rarely set

    try:
        return next(csv.reader([value], skipinitialspace=False, strict=True))
    except (csv.Error, StopIteration) as e:
        raise ValueError(f"invalid CSV value: {e}") from None


PARSERS: dict[str, Callable[[str], Any]] = {
    "bool": parsers.parse_bool,
    "duration": parsers.parse_duration,
    "size": parsers.parse_size,
    "string": str,
    "int": parsers.parse_int,
    "uint32": parsers.parse_uint32,
    "filemode": parsers.parse_filemode,
    "csv": _parse_csv,
    "cachemode": _parse_cache_mode,
    "tristate": parsers.parse_tristate,
    # stringArray: each flag is one whole value, appended; from RCLONE_X a CSV list (parse_env_list)
    "strings": lambda value: [value],
    # --header, --header-upload, --header-download: stringArray of `Key: Value` (checked here);
    # RCLONE_HEADER is one whole value, as pflag's stringArray reads it
    "headers": _parse_header_flag,
    "float": _parse_float,
    "bwtimetable": parse_bwtimetable,
    "dump": _parse_dump,
}
# kinds whose values add up over repeated flags (and the environment)
APPENDING_KINDS = ("strings", "headers")
# rclone 1.75.2 reads a flag (or its RCLONE_ variable) twice: parsed, printed and parsed again,
# which rounds a size to what rclone prints; a config item (a volume or backend option) once
ITEM_PARSERS: dict[str, Callable[[str], Any]] = {
    **PARSERS,
    "duration": partial(parsers.parse_duration, as_flag=False),
    "size": partial(parsers.parse_size, as_flag=False),
    "bwtimetable": partial(parse_bwtimetable, as_flag=False),
}


@dataclass(frozen=True)
class Option:
    """One rclone flag. `name` uses underscores, as rclone's option tables do."""

    name: str
    kind: str
    default: Any
    help: str = ""
    # where the option lives: "mount", "vfs", "serve", "global" or "rc"
    group: str = "global"
    # meaningful only on Windows/macOS: accepted and ignored
    ignored: bool = False
    short: str = ""
    # accepted (rclone has it) but without any effect in pyclone-docker yet: a value other than
    # the default is warned about at start-up and at volume create (no_effect)
    noop: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: str, *, as_flag: bool = True) -> Any:
        return (PARSERS if as_flag else ITEM_PARSERS)[self.kind](value)


def _umask_default() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# read once at import, before any thread: os.umask() can only be read by setting it
PROCESS_UMASK = _umask_default()


def _opts(group: str, rows: Iterable[tuple]) -> list[Option]:
    out = []
    for row in rows:
        name, kind, default, help_text, *extra = row
        out.append(Option(name, kind, default, help_text, group=group, ignored="ignored" in extra,
                          noop="noop" in extra))
    return out


MOUNT_OPTIONS = _opts("mount", [
    ("debug_fuse", "bool", False, "Debug the FUSE internals - needs -v"),
    ("attr_timeout", "duration", 1.0, "Time for which file/directory attributes are cached"),
    ("option", "csv", [], "Option for libfuse (repeat if required)"),
    ("fuse_flag", "csv", [], "Flags or arguments to be passed direct to libfuse (repeat if required)", "noop"),
    ("daemon", "bool", False, "Run mount in background (refused: the plugin serves every mount)"),
    ("daemon_timeout", "duration", 0.0, "Time limit for rclone to respond to kernel", "noop"),
    ("daemon_wait", "duration", 60.0, "Time to wait for ready mount from daemon"),
    ("default_permissions", "bool", False, "Makes kernel enforce access control based on the file mode"),
    ("allow_non_empty", "bool", False, "Allow mounting over a non-empty directory"),
    ("allow_root", "bool", False, "Allow access to root user"),
    ("allow_other", "bool", False, "Allow access to other users"),
    ("allow_idmap", "bool", False, "Allow idmapped mounts", "noop"),
    ("async_read", "bool", True, "Use asynchronous reads"),
    ("max_read_ahead", "size", 128 * 1024, "The number of bytes that can be prefetched for sequential reads"),
    ("write_back_cache", "bool", False, "Makes kernel buffer writes before sending them to rclone", "noop"),
    ("devname", "string", "", "Set the device name - default is remote:path"),
    ("mount_case_insensitive", "tristate", None, "Tell the OS the mount is case insensitive", "ignored"),
    ("direct_io", "bool", False, "Use Direct IO, disables caching of data"),
    ("volname", "string", "", "Set the volume name (Windows and OSX only)", "ignored"),
    ("noappledouble", "bool", True, "Ignore Apple Double (._) and .DS_Store files (OSX only)", "ignored"),
    ("noapplexattr", "bool", False, "Ignore all com.apple.* extended attributes (OSX only)", "ignored"),
    ("network_mode", "bool", False, "Mount as remote network drive (Windows only)", "ignored"),
])

VFS_OPTIONS = _opts("vfs", [
    ("no_modtime", "bool", False, "Don't read/write the modification time (can speed things up)"),
    ("no_checksum", "bool", False, "Don't compare checksums on up/download", "noop"),
    ("no_seek", "bool", False, "Don't allow seeking in files"),
    ("dir_cache_time", "duration", 300.0, "Time to cache directory entries for"),
    ("vfs_refresh", "bool", False, "Refreshes the directory cache recursively in the background on start", "noop"),
    ("poll_interval", "duration", 60.0, "Time to wait between polling for changes"),
    ("read_only", "bool", False, "Only allow read-only access"),
    ("vfs_links", "bool", False, "Translate symlinks to/from regular files with a '.rclonelink' extension", "noop"),
    ("vfs_cache_mode", "cachemode", "off", "Cache mode off|minimal|writes|full"),
    ("vfs_cache_poll_interval", "duration", 60.0, "Interval to poll the cache for stale objects"),
    ("vfs_cache_max_age", "duration", 3600.0, "Max time since last access of objects in the cache"),
    ("vfs_cache_max_size", "size", -1, "Max total size of objects in the cache"),
    ("vfs_cache_min_free_space", "size", -1, "Target minimum free space on the disk containing the cache", "noop"),
    ("vfs_read_chunk_size", "size", 128 * 1024 * 1024, "Read the source objects in chunks"),
    ("vfs_read_chunk_size_limit", "size", -1, "Max chunk doubling size ('off' is unlimited)"),
    ("vfs_read_chunk_streams", "int", 0, "The number of parallel streams to read at once", "noop"),
    ("dir_perms", "filemode", 0o777, "Directory permissions"),
    ("file_perms", "filemode", 0o666, "File permissions"),
    ("link_perms", "filemode", 0o666, "Link permissions", "noop"),
    ("vfs_case_insensitive", "bool", False, "If a file name not found, find a case insensitive match"),
    ("vfs_block_norm_dupes", "bool", False, "If duplicate filenames exist in the same directory, hide all but one",
     "noop"),
    ("vfs_write_wait", "duration", 1.0, "Time to wait for in-sequence write before giving error"),
    ("vfs_read_wait", "duration", 0.02, "Time to wait for in-sequence read before seeking"),
    ("vfs_write_back", "duration", 5.0, "Time to writeback files after last use when using cache"),
    ("vfs_read_ahead", "size", 0, "Extra read ahead over --buffer-size when using cache-mode full"),
    ("vfs_used_is_size", "bool", False, "Use the rclone size algorithm for Used size"),
    ("vfs_fast_fingerprint", "bool", False, "Use fast (less accurate) fingerprints for change detection"),
    ("vfs_disk_space_total_size", "size", -1, "Specify the total space of disk"),
    ("vfs_handle_caching", "duration", 5.0, "Time to cache open file handles", "noop"),
    ("vfs_metadata_extension", "string", "", "Set the extension to read metadata from", "noop"),
    ("umask", "filemode", PROCESS_UMASK, "Override the permission bits set by the filesystem"),
    ("uid", "uint32", os.getuid(), "Override the uid field set by the filesystem"),
    ("gid", "uint32", os.getgid(), "Override the gid field set by the filesystem"),
])

SERVE_OPTIONS = _opts("serve", [
    ("base_dir", "string", "/var/lib/docker-volumes/rclone", "Base directory for volumes"),
    ("socket_addr", "string", "", "Address <host:port> or absolute path (default: /run/docker/plugins/pyclone.sock)"),
    ("socket_gid", "int", os.getgid(), "GID for unix socket (default: current process GID)"),
    ("forget_state", "bool", False, "Skip restoring previous state"),
    ("no_spec", "bool", False, "Do not write spec file"),
])

GLOBAL_OPTIONS = _opts("global", [
    ("config", "string", "", "Config file (default $RCLONE_CONFIG or ~/.config/rclone/rclone.conf)"),
    ("cache_dir", "string", "", "Directory rclone will use for caching"),
    ("log_file", "string", "", "Log everything to this file"),
    ("log_level", "string", "", "Log level DEBUG|INFO|NOTICE|ERROR"),
    ("buffer_size", "size", 16 * 1024 * 1024, "In memory buffer size when reading files for each --transfer"),
    ("transfers", "int", 4, "Number of file transfers to run in parallel"),
    ("low_level_retries", "int", 10, "Number of low level retries to do"),
    ("contimeout", "duration", 60.0, "Connect timeout"),
    ("timeout", "duration", 300.0, "IO idle timeout"),
    ("inplace", "bool", False, "Download directly to destination file instead of atomic download to temp/rename"),
    ("partial_suffix", "string", ".partial", "Add partial-suffix to temporary file name when --inplace is not used"),
    ("retries", "int", 3, "Retry operations this many times if they fail", "noop"),
    ("use_server_modtime", "bool", False, "Use server modified time instead of object metadata"),
    # the HTTP client of the web backends (lib/httpclient)
    ("ca_cert", "strings", [], "CA certificate used to verify servers"),
    ("client_cert", "string", "", "Client SSL certificate (PEM) for mutual TLS auth"),
    ("client_key", "string", "", "Client SSL private key (PEM) for mutual TLS auth"),
    ("no_check_certificate", "bool", False, "Do not verify the server SSL certificate (insecure)"),
    ("user_agent", "string", f"pyclone-docker/v{__version__}", "Set the user-agent to a specified string"),
    ("header", "headers", [], "Set HTTP header for all transactions"),
    ("header_download", "headers", [], "Set HTTP header for download transactions"),
    ("header_upload", "headers", [], "Set HTTP header for upload transactions"),
    ("dump", "dump", frozenset(), "List of items to dump from: " + ", ".join(DUMP_CHOICES)),
    ("tpslimit", "float", 0.0, "Limit HTTP transactions per second to this"),
    ("tpslimit_burst", "int", 1, "Max burst of transactions for --tpslimit"),
    ("bwlimit", "bwtimetable", BwTimetable(),
     "Bandwidth limit in KiB/s, or use suffix B|K|M|G|T|P or a full timetable"),
])

# rclone's remote control server (fs/rc, lib/http): only the flags pyclone-docker implements.
RC_OPTIONS = _opts("rc", [
    ("rc", "bool", False, "Enable the remote control server"),
    ("rc_addr", "string", "localhost:5572", "IPaddress:Port, :Port or [unix://]/path/to/socket to bind server to"),
    ("rc_user", "string", "", "User name for authentication"),
    ("rc_pass", "string", "", "Password for authentication (better: $RCLONE_RC_PASS)"),
    ("rc_no_auth", "bool", False, "Don't require auth for certain methods"),
])

# Per-volume options: rclone accepts exactly the mount and VFS tables there.
VOLUME_OPTIONS: dict[str, Option] = {o.name: o for o in MOUNT_OPTIONS + VFS_OPTIONS}
ALL_OPTIONS: dict[str, Option] = {
    o.name: o for o in MOUNT_OPTIONS + VFS_OPTIONS + SERVE_OPTIONS + GLOBAL_OPTIONS + RC_OPTIONS
}


def no_effect(values: OptionValues, table: Mapping[str, Option]) -> list[str]:
    """The flags of `table` (as `--name`) that have no effect yet and are not at their default."""
    return [opt.flag for name, opt in table.items()
            if opt.noop and name in values.values and values.values[name] != opt.default]


def normal_key(key: str) -> str:
    """rclone's option-key normalisation: lower case, no leading dashes, '_' for '-'."""
    return key.strip().lower().lstrip("-").replace("-", "_")


@dataclass
class OptionValues:
    """Parsed values for a set of options, with their defaults filled in."""

    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def defaults(cls, table: Mapping[str, Option]) -> OptionValues:
        return cls({name: _copy(opt.default) for name, opt in table.items()})

    def copy(self) -> OptionValues:
        return OptionValues({k: _copy(v) for k, v in self.values.items()})

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def set(self, name: str, raw: str, *, as_flag: bool = True) -> None:
        """Parse and store (as a flag, or as a config item); an empty value means unset, as in
        rclone's configstruct."""
        opt = ALL_OPTIONS[name]
        if raw == "" and opt.kind != "string":
            self.values[name] = _copy(opt.default)
            return
        value = opt.parse(raw, as_flag=as_flag)
        if opt.kind in APPENDING_KINDS:
            value = list(self.values.get(name) or []) + value
        elif opt.kind == "csv":
            value = list(self.values.get(name) or []) + value if name in ("option", "fuse_flag") else value
        self.values[name] = value


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
