"""rclone value syntax: the tables of rclone_formats.md section 5, plus real rclone."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from pyclone_docker import parsers
from pyclone_docker.parsers import (
    format_duration,
    format_size,
    parse_bool,
    parse_duration,
    parse_filemode,
    parse_int,
    parse_scan_bool,
    parse_size,
    parse_tristate,
    parse_uint32,
)

MIN_INT64 = -(1 << 63)

# --- sizes ---------------------------------------------------------------------------

SIZES = [
    ("0", 0), ("1", 1024), ("100", 102400), ("1b", 1), ("1B", 1),
    ("128k", 131072), ("128K", 131072), ("128M", 134217728), ("128Mi", 134217728),
    ("128MiB", 134217728), ("128mib", 134217728), ("1.5G", 1610612736), ("1.5Gi", 1610612736),
    ("0.5", 512), ("1e3", 1024000), ("1T", 1 << 40), ("1P", 1 << 50), ("1E", 1 << 60),
    ("off", -1), ("OFF", -1), ("Off", -1), ("1giB", 1 << 30), ("1KI", 1024), ("+1", 1024),
    ("-0", 0), ("1_000", 1024000), ("0x1p4", 16384), (".5k", 512), ("5.", 5120),
    # a flag is read, printed and read again (rclone 1.75.2): an overflow (MinInt64 on amd64,
    # Go's float->int64) prints as "off", which reads as -1; 1.60 kept MinInt64
    ("9E", -1), ("infk", -1), ("nank", -1),
    # ... and what String() shows is what a flag holds: 1.177Mi (1.60: 1234567)
    ("1234567B", 1234173), ("1.1k", 1126),
]

SIZE_ERRORS = [
    ("128MB", 'strconv.ParseFloat: parsing "128M": invalid syntax'),
    ("1KB", 'strconv.ParseFloat: parsing "1K": invalid syntax'),
    ("12kb", 'strconv.ParseFloat: parsing "12k": invalid syntax'),
    ("3iB", "bad suffix '3'"),
    ("1i", "bad suffix '1'"),
    ("i", "bad suffix 'i'"),
    ("-1", "size can't be negative \"-1\""),
    ("-1M", "size can't be negative \"-1\""),
    ("", "empty string"),
    ("1x", "bad suffix 'x'"),
    ("inf", "bad suffix 'f'"),
    ("0x10", 'strconv.ParseFloat: parsing "0x10": invalid syntax'),
    (" 1M", 'strconv.ParseFloat: parsing " 1": invalid syntax'),
    ("1 ", "bad suffix ' '"),
    ("1KIB", 'strconv.ParseFloat: parsing "1KI": invalid syntax'),
    ("iB", 'strconv.ParseFloat: parsing "i": invalid syntax'),
    ("B", 'strconv.ParseFloat: parsing "": invalid syntax'),
    ("1e400k", 'strconv.ParseFloat: parsing "1e400": value out of range'),
    ("1__0", 'strconv.ParseFloat: parsing "1__0": invalid syntax'),
    ("1gIB", 'strconv.ParseFloat: parsing "1gI": invalid syntax'),  # the i must be lower case
    ("1kIB", 'strconv.ParseFloat: parsing "1kI": invalid syntax'),
    ("1_", "bad suffix '_'"),
    ("١k", 'strconv.ParseFloat: parsing "١": invalid syntax'),  # ASCII digits only
]


@pytest.mark.parametrize(("text", "expected"), SIZES)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(("text", "message"), SIZE_ERRORS)
def test_parse_size_errors(text, message):
    with pytest.raises(ValueError) as err:
        parsers.set_size(text)
    assert str(err.value) == message
    # rclone 1.75.2 (its Option type) names the value and the type; 1.60 gave the reason alone
    for as_flag in (True, False):
        with pytest.raises(ValueError) as err:
            parse_size(text, as_flag=as_flag)
        assert str(err.value) == f"parsing {parsers.go_quote(text)} as fs.SizeSuffix failed: {message}"


def test_config_items_are_read_once():
    """A volume option, connection string or rclone.conf value is parsed once, as it is."""
    assert parse_size("1234567B", as_flag=False) == 1234567
    assert parse_size("9E", as_flag=False) == MIN_INT64
    assert parse_size("128M", as_flag=False) == parse_size("128M") == 128 << 20
    assert parsers.parse_duration_ns("100000h", as_flag=False) == 100000 * 3600 * 10**9


@pytest.mark.parametrize(("text", "reason"), [
    # Go looks at bytes: a non-ASCII suffix is its last UTF-8 byte, quoted as a rune
    ("1é", "bad suffix '©'"), ("éi", "bad suffix '©'"), ("1\t", "bad suffix '\\t'"),
    ("1'", "bad suffix '\\''"), ("1\\", "bad suffix '\\\\'"), ("1\udcff", "bad suffix 'ÿ'"),
])
def test_size_suffix_bytes(text, reason):
    with pytest.raises(ValueError) as err:
        parsers.set_size(text)
    assert str(err.value) == reason


def test_go_quote():
    assert parsers.go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert parsers.go_quote("\a\b\f\n\r\t\v\x00\x7f") == '"\\a\\b\\f\\n\\r\\t\\v\\x00\\x7f"'
    assert parsers.go_quote("é\u00a0\u200b\U0001d400\U000e0001") == '"é\\u00a0\\u200b\U0001d400\\U000e0001"'
    assert parsers.go_quote("x\udcff") == '"x\\xff"'  # a byte that was no UTF-8
    assert parsers.go_quote_rune("'") == "'\\''" and parsers.go_quote_rune('"') == "'\"'"


@pytest.mark.parametrize(("n", "text"), [
    (-1, "off"), (-5, "off"), (0, "0"), (1, "1"), (1023, "1023"), (1024, "1Ki"),
    (1536, "1.500Ki"), (134217728, "128Mi"), (10 * 2**30 + 2**30 // 10, "10.100Gi"),
    (1 << 60, "1Ei"), ((1 << 63) - 1, "8Ei"), (1 << 40, "1Ti"),
])
def test_format_size(n, text):
    assert format_size(n) == text


def test_format_size_round_trips():
    # not below 1024: "1" means 1 KiB when parsed, as in rclone
    for n in (1024, 3 << 20, 5 << 30, 7 << 40):
        assert parse_size(format_size(n)) == n


# --- durations -----------------------------------------------------------------------

DURATIONS = [
    ("10", 10), ("1.5", 1.5), ("1h30m", 5400), ("90m", 5400), ("300ms", 0.3),
    ("1us", 1e-6), ("1µs", 1e-6), ("1μs", 1e-6), ("2h45m30.5s", 9930.5),
    ("-1h", -3600), ("+5m", 300), (".5h", 1800), ("5d", 432000), ("1.5d", 129600),
    ("2w", 1209600), ("1M", 2592000), ("1y", 31536000), ("1e2", 100), ("0", 0),
    ("-0", 0), ("+0", 0), ("5.", 5), ("1.h", 3600), ("1h0.5m", 3630), ("1_0d", 864000),
    ("0x1p4", 16), ("-1d", -86400), ("1ns", 1e-9),
]

# Go >= 1.20 (rclone 1.75.2) names the text where the failing element began; Go 1.19
# (rclone 1.60) named what was left after it: "1d12h" gave cannot parse "h" as "2006"
DURATION_ERRORS = [
    ("1d12h", 'parsing time "1d12h" as "2006-01-02": cannot parse "1d12h" as "2006"'),
    ("1h30", 'parsing time "1h30" as "2006-01-02": cannot parse "1h30" as "2006"'),
    ("1D", 'parsing time "1D" as "2006-01-02": cannot parse "1D" as "2006"'),
    ("1h-30m", 'parsing time "1h-30m" as "2006-01-02": cannot parse "1h-30m" as "2006"'),
    ("", 'parsing time "" as "2006-01-02": cannot parse "" as "2006"'),
    ("OFF", 'parsing time "OFF" as "2006-01-02": cannot parse "OFF" as "2006"'),
    ("1W", 'parsing time "1W" as "2006-01-02": cannot parse "1W" as "2006"'),
    ("1Y", 'parsing time "1Y" as "2006-01-02": cannot parse "1Y" as "2006"'),
    ("9999999999h", 'parsing time "9999999999h" as "2006-01-02": cannot parse "999999h" as "-"'),
    ("2023-13-01", 'parsing time "2023-13-01": month out of range'),
    ("2023-02-30", 'parsing time "2023-02-30": day out of range'),
    ("2023-01-02X", 'parsing time "2023-01-02X": extra text: "X"'),
    ("20a3-01-01", 'parsing time "20a3-01-01" as "2006-01-02": cannot parse "20a3-01-01" as "2006"'),
    ("2023x01-01", 'parsing time "2023x01-01" as "2006-01-02": cannot parse "x01-01" as "-"'),
    ("2023-1-01", 'parsing time "2023-1-01" as "2006-01-02": cannot parse "1-01" as "01"'),
    ("2023-01-1", 'parsing time "2023-01-1" as "2006-01-02": cannot parse "1" as "02"'),
    ("2023-01-02T25:00:00", 'parsing time "2023-01-02T25:00:00": extra text: "T25:00:00"'),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-12)


def test_parse_duration_off_and_exact_ns():
    assert parse_duration("off") == math.inf
    assert parsers.parse_duration_ns("off") == (1 << 63) - 1
    assert parsers.parse_duration_ns("2h45m30.5s") == 9_930_500_000_000
    assert parsers.parse_duration_ns("1.5") == 1_500_000_000
    assert parsers.parse_duration_ns("infd") == MIN_INT64


@pytest.mark.parametrize(("text", "message"), DURATION_ERRORS)
def test_parse_duration_errors(text, message):
    assert parsers.go_parse_duration(text) is None
    with pytest.raises(ValueError) as err:
        parsers.fs_parse_duration(text)
    assert str(err.value) == message
    # rclone 1.75.2 names the value and the type; 1.60 gave the reason alone
    for as_flag in (True, False):
        with pytest.raises(ValueError) as err:
            parse_duration(text, as_flag=as_flag)
        assert str(err.value) == f"parsing {parsers.go_quote(text)} as fs.Duration failed: {message}"


def test_duration_flags_are_read_twice():
    """Parsed, printed (Duration.String()) and parsed again: from a day on, String() is a float."""
    assert parsers.parse_duration_ns("123456789.123456789s", as_flag=False) == 123456789123456789
    assert parsers.format_duration_ns(123456789123456789) == "3.9147891020883048y"
    assert parsers.parse_duration_ns("123456789.123456789s") == 123456789123456784
    assert parsers.parse_duration_ns("1.000000001d") == 86400 * 10**9 + 86400  # exact: both ways
    assert parsers.parse_duration_ns("infd") == parsers.parse_duration_ns("infd", as_flag=False) == MIN_INT64


def test_go_parse_duration_rejects():
    for text in ("", "+", ".", ".s", "1", "1x", "1h30", "9223372036854775808ns", "3000000h"):
        assert parsers.go_parse_duration(text) is None, text
    assert parsers.go_parse_duration("-9223372036854775808ns") == MIN_INT64


def test_absolute_times_are_ages():
    now = dt.datetime(2024, 1, 2, 12, 0, 0, tzinfo=dt.timezone.utc)
    age = parsers.parse_duration_ns("2024-01-01T12:00:00Z", now)
    assert age == 86400 * 10**9
    assert parsers.parse_duration_ns("2024-01-02T13:00:00+01:00", now) == 0
    assert parsers.parse_duration_ns("2024-01-02T11:59:59.5Z", now) == 500_000_000
    # without a zone the time is local
    local = dt.datetime(2024, 1, 1, 0, 0, 0).astimezone()
    for text in ("2024-01-01", "2024-01-01 00:00:00", "2024-01-01T00:00:00", "2024-01-01T0:00:00"):
        assert parsers.parse_duration_ns(text, local + dt.timedelta(hours=1)) == 3600 * 10**9


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (5400, "1h30m0s"), (300, "5m0s"), (1, "1s"), (0.02, "20ms"), (1.5, "1.5s"),
    (60.5, "1m0.5s"), (9930.5, "2h45m30.5s"), (-3600, "-1h0m0s"), (1.5e-6, "1.5µs"),
    (1e-9, "1ns"), (math.inf, "off"), (86400, "1d"), (129600, "1.5d"), (1209600, "2w"),
    (2592000, "1M"), (31536000, "1y"), (3 * 86400, "3d"), (-86400, "-1d"),
    (3600 * 1000, "1.3888888888888888M"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


# --- booleans ------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_parse_bool_true(text):
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_parse_bool_false(text):
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["yes", "no", "tRuE", "", " true", "y", "on", "off", "2"])
def test_parse_bool_rejects(text):
    with pytest.raises(ValueError) as err:
        parse_bool(text)
    assert str(err.value) == f'strconv.ParseBool: parsing "{text}": invalid syntax'


@pytest.mark.parametrize(("text", "value"), [
    ("", None), ("unset", None), ("UNSET", None), ("null", None), ("Nil", None),
    ("true", True), ("TRUE", True), ("tRuE", True), ("T", True), ("0", False), ("False", False),
])
def test_parse_tristate(text, value):
    assert parse_tristate(text) is value


def test_parse_tristate_rejects():
    with pytest.raises(ValueError):
        parse_tristate("maybe")


# rclone 1.60 config/connection-string/env bools (fmt.Sscanln), section 5.3
SCAN_BOOLS = [
    ("0", False), ("1", True), ("t", True), ("T", True), ("true", True), ("tRuE", True),
    ("TRUE", True), ("f", False), ("F", False), ("fAlSe", False), ("y", False), ("n", False),
    ("x", False), ("2", False), (" true", True), ("true ", True), ("", False),
]
SCAN_BOOL_ERRORS = [
    ("yes", "expected newline"), ("no", "expected newline"), ("on", "expected newline"),
    ("off", "expected newline"), ("10", "expected newline"), ("truex", "expected newline"),
    ("tr", "syntax error scanning boolean"), ("TR", "syntax error scanning boolean"),
    ("fa", "syntax error scanning boolean"), ("  ", "EOF"), ("x y", "expected newline"),
]


@pytest.mark.parametrize(("text", "value"), SCAN_BOOLS)
def test_parse_scan_bool(text, value):
    assert parse_scan_bool(text) is value


@pytest.mark.parametrize(("text", "message"), SCAN_BOOL_ERRORS)
def test_parse_scan_bool_errors(text, message):
    with pytest.raises(ValueError) as err:
        parse_scan_bool(text)
    assert str(err.value) == message


# --- integers and modes --------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("0777", 0o777), ("777", 0o777), ("022", 0o22), ("0o22", 0o22), ("0O755", 0o755),
    ("0", 0), ("+755", 0o755), ("7777", 0o7777),
])
def test_parse_filemode(text, value):
    assert parse_filemode(text) == value


@pytest.mark.parametrize("text", ["", "8", "0x1ff", "rwx", "-1", "0o", "7 7", "0o8"])
def test_parse_filemode_rejects(text):
    with pytest.raises(ValueError) as err:
        parse_filemode(text)
    assert str(err.value).startswith("bad FileMode - must be octal digits: ")


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("18", 18), ("022", 18), ("0o22", 18), ("0x12", 18), ("0b10010", 18),
    ("1_8", 18), ("-5", -5), ("+5", 5), ("9223372036854775807", (1 << 63) - 1),
    ("-9223372036854775808", MIN_INT64),
])
def test_parse_int(text, value):
    assert parse_int(text) == value


@pytest.mark.parametrize(("text", "why"), [
    ("", "invalid syntax"), ("x", "invalid syntax"), ("08", "invalid syntax"), (" 1", "invalid syntax"),
    ("1_", "invalid syntax"), ("0x", "invalid syntax"), ("9223372036854775808", "value out of range"),
    ("1.5", "invalid syntax"),
])
def test_parse_int_errors(text, why):
    with pytest.raises(ValueError) as err:
        parse_int(text)
    assert str(err.value) == f'strconv.ParseInt: parsing "{text}": {why}'


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("1000", 1000), ("0x10", 16), ("010", 8), ("1_000", 1000), ("4294967295", 2**32 - 1),
])
def test_parse_uint32(text, value):
    assert parse_uint32(text) == value


@pytest.mark.parametrize(("text", "why"), [
    ("-1", "invalid syntax"), ("+5", "invalid syntax"), ("08", "invalid syntax"),
    ("", "invalid syntax"), ("4294967296", "value out of range"),
])
def test_parse_uint32_errors(text, why):
    with pytest.raises(ValueError) as err:
        parse_uint32(text)
    assert str(err.value) == f'strconv.ParseUint: parsing "{text}": {why}'


# --- against real rclone -------------------------------------------------------------

def _rc_option(run_rclone, flag: str, value: str, field: str):
    """(value rclone stored, None) or (None, rclone's error text) for `--flag value`."""
    res = run_rclone("rc", "--loopback", "options/get", "--config", "/dev/null", flag, value)
    if res.returncode == 0:
        return json.loads(res.stdout)["filter"][field], None
    marker = f'for "{flag}" flag: '
    line = next(ln for ln in res.stderr.splitlines() if marker in ln)
    return None, line.split(marker, 1)[1]


@pytest.mark.rclone
@pytest.mark.parametrize("text", [t for t, _ in SIZES] + [t for t, _ in SIZE_ERRORS]
                         + ["1.25Mi", "999", "2pib", "3ei", "1e18", "1é", "éi", "1\t", "1'", "1\\",
                            "8191P", "1023B", "7.9999Ei"])
def test_sizes_match_rclone(run_rclone, text):
    stored, error = _rc_option(run_rclone, "--max-size", text, "MaxSize")
    try:
        ours, our_error = parse_size(text), None
    except ValueError as e:
        ours, our_error = None, str(e)
    assert our_error == error
    if error is None:
        assert float(ours) == float(stored)  # rc prints int64 through float64


@pytest.mark.rclone
@pytest.mark.parametrize("text", [t for t, _ in DURATIONS] + [t for t, _ in DURATION_ERRORS]
                         + ["off", "1.000000001s", "0.1234567891h", "100000h", "1y2", "1.000000001d",
                            "-1.5w", "3y", "1e300d", "2023-01-02T3:04", "2023-01-02 25:00:00"])
def test_durations_match_rclone(run_rclone, text):
    stored, error = _rc_option(run_rclone, "--max-age", text, "MaxAge")
    try:
        ours, our_error = parsers.parse_duration_ns(text), None
    except ValueError as e:
        ours, our_error = None, str(e)
    assert our_error == error
    if error is None:
        assert float(ours) == float(stored)


@pytest.mark.rclone
def test_dates_match_rclone(run_rclone):
    for text in ("2023-01-02", "2023-01-02T03:04:05", "2023-01-02 03:04:05", "2023-01-02T03:04:05Z",
                 "2023-01-02T03:04:05+01:00", "2023-01-02T3:04:05.5"):
        stored, error = _rc_option(run_rclone, "--max-age", text, "MaxAge")
        assert error is None
        # both measure from "now"; they run a moment apart
        assert abs(parsers.parse_duration_ns(text) - stored) < 30 * 10**9, text


@pytest.mark.rclone
@pytest.mark.parametrize("text", [t for t, _ in SCAN_BOOLS] + [t for t, _ in SCAN_BOOL_ERRORS])
def test_connection_string_bools_match_rclone(run_rclone, tmp_path, text):
    """rclone 1.75.2 reads a backend's bool options with strconv.ParseBool, as its flags (1.60
    used fmt.Sscanln, parse_scan_bool); every backend option here is read with the flag parsers."""
    from pyclone_docker import fs as fsmod

    quoted = text.replace("'", "''")
    fs = f":local,case_sensitive='{quoted}':{tmp_path}"
    res = run_rclone("lsf", "--config", "/dev/null", fs)
    try:
        fsmod.resolve(fs, fsmod.FsContext(env={}))
        ours = None
    except ValueError as e:
        ours = str(e).removeprefix("local: ")
    if ours is None:
        assert res.returncode == 0, res.stderr
    else:
        assert "Failed to create file system" in res.stderr and f": {ours}\n" in res.stderr, (ours, res.stderr)


# --- where each reading applies ----------------------------------------------------

def test_flags_are_read_twice_volume_and_backend_options_once():
    """rclone 1.75.2: `--vfs-cache-max-size 1234567B` holds 1.177Mi; a volume option holds 1234567."""
    from pyclone_docker import cli
    from pyclone_docker.backends.base import BackendOption
    from pyclone_docker.docker.options import parse_volume_options
    from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues

    pf = cli.parse_flags(["--vfs-cache-max-size", "1234567B", "--vfs-read-chunk-size", "9E"], {})
    assert pf.values.vfs_cache_max_size == 1234173 and pf.values.vfs_read_chunk_size == -1
    env = cli.parse_flags([], {"RCLONE_VFS_CACHE_MAX_SIZE": "1234567B"})
    assert env.values.vfs_cache_max_size == 1234173
    spec = parse_volume_options({"type": "local", "vfs-cache-max-size": "1234567B", "vfs_read_chunk_size": "9E"},
                                OptionValues.defaults(VOLUME_OPTIONS))
    assert spec.values.vfs_cache_max_size == 1234567 and spec.values.vfs_read_chunk_size == MIN_INT64
    assert BackendOption("chunk_size", "size").parse("1234567B") == 1234567
    with pytest.raises(ValueError) as err:
        BackendOption("chunk_size", "size").parse("1x")
    assert str(err.value) == ('couldn\'t parse config item "chunk_size" = "1x" as fs.SizeSuffix: '
                              'parsing "1x" as fs.SizeSuffix failed: bad suffix \'x\'')
    with pytest.raises(cli.UsageError) as uerr:
        cli.parse_flags(["--max-read-ahead", "1x"], {})
    assert str(uerr.value) == ('invalid argument "1x" for "--max-read-ahead" flag: '
                               'parsing "1x" as fs.SizeSuffix failed: bad suffix \'x\'')


@pytest.mark.rclone
@pytest.mark.parametrize("arg", ["--allow-other=maybe", "--read-only=maybe", "--transfers=x", "--transfers=1.5",
                                 "--low-level-retries=x", "--uid=zz", "--gid=zz", "--vfs-cache-mode=zz",
                                 "--dir-perms=zz", "--umask=zz", "--socket-gid=zz", "--forget-state=maybe",
                                 "--no-spec=maybe", "--buffer-size=zz", "--attr-timeout=zz", "--rc=maybe"])
def test_bad_flag_values_are_worded_as_rclone_words_them(run_rclone, arg):
    """`Error: invalid argument "v" for "--flag" flag: <why>`, the why as rclone 1.75.2's."""
    from pyclone_docker import cli

    res = run_rclone("serve", "docker", arg, "--config", "/dev/null")
    assert res.returncode != 0
    theirs = res.stderr.splitlines()[0]
    with pytest.raises(cli.UsageError) as err:
        cli.parse_flags([arg], {})
    assert f"Error: {err.value}" == theirs
