"""Connection strings: rclone_formats.md section 3.1 and 3.3, plus real rclone."""

from __future__ import annotations

import re

import pytest

from pyclone_docker import fspath
from pyclone_docker.fspath import ParsedPath, config_string, make_fs_string, override_suffix, parse

HORSE = "Kcy8PRrIkU0OUS6dZrFivL8E0SSA8KhMu02_8vaMBK-VelzRTQw6cjj7_FA"

EXAMPLES = [
    (":backend,param1=value1,param2,param3=value3:/path/to/file",
     ParsedPath(":backend", {"param1": "value1", "param2": "true", "param3": "value3"},
                "/path/to/file")),
    (":backend,param1=value1,param2=\"value2\",param3='value3':/p",
     ParsedPath(":backend", {"param1": "value1", "param2": "value2", "param3": "value3"}, "/p")),
    (':backend,param="with""quote":path', ParsedPath(":backend", {"param": 'with"quote'}, "path")),
    (":backend,param='''''':", ParsedPath(":backend", {"param": "''"}, "")),
    (":backend,param=:path", ParsedPath(":backend", {"param": ""}, "path")),
    (":local,nounc='we,ird:d''ir':/x", ParsedPath(":local", {"nounc": "we,ird:d'ir"}, "/x")),
    (f':crypt,remote="/srv/demo/enc",password=\'{HORSE}\':dir1',
     ParsedPath(":crypt", {"remote": "/srv/demo/enc", "password": HORSE}, "dir1")),
    ("/path:/to/file", ParsedPath("", {}, "/path:/to/file", True)),
    ("./:colon.txt", ParsedPath("", {}, "./:colon.txt", True)),
    ("relative/dir", ParsedPath("", {}, "relative/dir", True)),
    ("a,b=c", ParsedPath("", {}, "a,b=c", True)),  # no colon at all: local
    (".:", ParsedPath(".", {}, "")),
    ("..:", ParsedPath("..", {}, "")),
    ("myremote,opt=val:path", ParsedPath("myremote", {"opt": "val"}, "path")),
    ("foo,type=alias,remote=/srv/demo/plain:",
     ParsedPath("foo", {"type": "alias", "remote": "/srv/demo/plain"}, "")),
    ("remote:", ParsedPath("remote", {}, "")),
    ("remote:/abs/path", ParsedPath("remote", {}, "/abs/path")),
    ("remote:a:b", ParsedPath("remote", {}, "a:b")),
    ("C:\\x", ParsedPath("C", {}, "\\x")),  # no drive letters on Linux
    ("my remote-1.x:p", ParsedPath("my remote-1.x", {}, "p")),
    ("a,b=c\"d:", ParsedPath("a", {"b": 'c"d'}, "")),  # a quote that isn't first is literal
    ("a,b=x'y',c:", ParsedPath("a", {"b": "x'y'", "c": "true"}, "")),
    ("a,b,c=,d=\"\":", ParsedPath("a", {"b": "true", "c": "", "d": ""}, "")),
    ("a,b=1,b=2:", ParsedPath("a", {"b": "2"}, "")),
    (":local,global.timeout=1s,override.x.y=2:p",
     ParsedPath(":local", {"global.timeout": "1s", "override.x.y": "2"}, "p")),
    ("a,.=x:", ParsedPath("a", {".": "x"}, "")),
    # rclone >= 1.61 names
    ("größe:x", ParsedPath("größe", {}, "x")),
    ("a+b@c:", ParsedPath("a+b@c", {}, "")),
    ("a-:", ParsedPath("a-", {}, "")),
]

ERRORS = [
    ("", fspath.ERR_EMPTY_PATH),
    (":", fspath.ERR_NAME_NO_COLON),
    (":abc", fspath.ERR_NAME_NO_COLON),
    ("::", fspath.ERR_EMPTY_NAME),
    (":,", fspath.ERR_EMPTY_NAME),
    (",:", fspath.ERR_EMPTY_NAME),
    ("a,:", fspath.ERR_EMPTY_PARAM),
    ("a,=x:", fspath.ERR_EMPTY_PARAM),
    ("a,,b:", fspath.ERR_EMPTY_PARAM),
    ("a,b/c:d", fspath.ERR_BAD_PARAM),
    ("a,b c:", fspath.ERR_BAD_PARAM),
    (":ab/c:", fspath.ERR_INVALID_NAME),
    ("a!b:", fspath.ERR_INVALID_NAME),
    (":a!b:", fspath.ERR_INVALID_NAME),
    (" ab:", fspath.ERR_INVALID_NAME),
    ("ab :", fspath.ERR_INVALID_NAME),
    ("-ab:", fspath.ERR_INVALID_NAME),
    ('a,b="c"d:', fspath.ERR_AFTER_QUOTE),
    ("a,b='x'y:", fspath.ERR_AFTER_QUOTE),
    ('a,b="c:', fspath.ERR_UNTERMINATED),
    ("a,b='c'':", fspath.ERR_UNTERMINATED),
    ("a,b=':", fspath.ERR_UNTERMINATED),
    ("a,b=" + "'" * 3 + ":", fspath.ERR_UNTERMINATED),
    # accepted
    ("a,b.c=1:", None),  # rclone 1.75.2 takes a `.` in a parameter name (1.60: ERR_BAD_PARAM)
    ("a,.:", None),
    (":local,global.timeout=1s:/x", None),
    ("a:,b", None),
    ("x:a,b=c", None),
    ("a,b=c:", None),
    ("a,b='c':", None),
    ("a,b:", None),
    ('x:a,b="c"', None),
]

# these stop in the middle of a parameter but have no colon: rclone takes them as local paths
COLONLESS = ["a,b", "a,b=c,d=e", 'a,b="c"', "a,b='c", "plain"]


@pytest.mark.parametrize(("text", "expected"), EXAMPLES)
def test_parse_examples(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "message"), [e for e in ERRORS if e[1]])
def test_parse_errors(text, message):
    with pytest.raises(ValueError) as err:
        parse(text)
    assert str(err.value) == message


@pytest.mark.parametrize("text", [e[0] for e in ERRORS if e[1] is None])
def test_parse_accepts(text):
    assert not parse(text).is_local


@pytest.mark.parametrize("text", COLONLESS)
def test_colonless_is_local(text):
    assert parse(text) == ParsedPath("", {}, text, True)


@pytest.mark.parametrize(("text", "message"), [
    ("a,b", fspath.ERR_PARAM_END), ("a,b=c", fspath.ERR_VALUE_END),
    ("a,b='c'", fspath.ERR_AFTER_QUOTE), ("a,b='c", fspath.ERR_UNTERMINATED),
])
def test_parameter_errors_at_the_end(text, message):
    # parse() never gets here without a colon, but the scanner must still stop cleanly
    with pytest.raises(ValueError) as err:
        fspath._scan_params(text, 2, {})
    assert str(err.value) == message


def test_config_string():
    assert config_string({}) == ""
    assert config_string({"b": "2", "a": "1"}) == "a='1',b='2'"
    assert config_string({"k": "it's"}) == "k='it''s'"
    assert config_string({"k": "a,b:c\"d"}) == "k='a,b:c\"d'"


@pytest.mark.parametrize(("name", "params", "path"), [
    (":local", {"case_sensitive": "true"}, "/srv/docker"),
    ("remote", {}, "dir/sub"),
    (":crypt", {"remote": "/a,b:c", "password": "x'y''z"}, ""),
    ("", {}, "/local/path"),
    ("remote", {"opt": "'", "b": '"'}, "p:q"),
])
def test_make_fs_string_round_trips(name, params, path):
    text = make_fs_string(name, params, path)
    assert parse(text) == ParsedPath(name, params, path, name == "")


def test_make_fs_string_literal():
    assert (make_fs_string(":local", {"case_sensitive": "true"}, "/srv/docker")
            == ":local,case_sensitive='true':/srv/docker")
    with pytest.raises(ValueError):
        make_fs_string("", {"a": "b"}, "/x")


def test_override_suffix():
    # the doc's {ugf09} was computed with remote=/tmp/research/enc; rclone 1.60 logs
    # ":crypt{2d9JH}:" for /srv/demo/enc
    assert override_suffix({"password": HORSE, "remote": "/tmp/research/enc"}) == "{ugf09}"
    assert override_suffix({"remote": "/srv/demo/enc", "password": HORSE}) == "{2d9JH}"
    assert override_suffix({}) == ""
    assert re.fullmatch(r"\{[A-Za-z0-9_-]{5}\}", override_suffix({"a": "b"}))


def test_name_rules():
    good = ["a", "A_b", "a.b", "a b", "a-b", "a--b", "x+y", "u@h", "ñ", "数据", "a1", "_x", ".x", "x-"]
    bad = ["", "-a", " a", "a ", "a/b", "a!b", "a:b", "a,b", "a\tb", "a\u0301"]
    assert [n for n in good if not fspath.valid_config_name(n)] == []
    assert [n for n in bad if fspath.valid_config_name(n)] == []


# --- against real rclone -------------------------------------------------------------

def _rclone_parse_error(run_rclone, text: str) -> str | None:
    """The fspath error rclone reports for text, or None if it got past parsing."""
    res = run_rclone("lsf", "--config", "/dev/null", "--max-depth", "1", "--", text)
    match = re.search(r'Failed to create file system for ".*": (.*)', res.stderr)
    if match is None:
        return None
    message = match.group(1)
    known = {v for k, v in vars(fspath).items() if k.startswith("ERR_")}
    known.add("config name contains invalid characters")
    return message if any(message.startswith(m[:30]) for m in known) else None


# name rules changed in 1.61 (this module follows 1.61+): 1.60's parser still takes
# names with a leading "-" or leading/trailing spaces
_SAME_IN_160 = [e for e in ERRORS if e[0] not in (" ab:", "ab :", "-ab:")]


@pytest.mark.rclone
@pytest.mark.parametrize(("text", "message"), _SAME_IN_160)
def test_errors_match_rclone(run_rclone, text, message):
    theirs = _rclone_parse_error(run_rclone, text)
    try:
        parse(text)
        ours = None
    except ValueError as e:
        ours = str(e)
    if ours == fspath.ERR_INVALID_NAME:
        assert theirs is not None and theirs.startswith("config name contains invalid characters")
    else:
        assert ours == theirs


@pytest.mark.rclone
@pytest.mark.parametrize("params", [
    {"nounc": "we,ird:d'ir"},
    {"nounc": "true", "case_sensitive": "true"},
    {"copy_links": "true", "skip_links": "false", "no_check_updated": "true"},
    {"encoding": "Slash,InvalidUtf8"},
])
def test_override_suffix_matches_rclone(run_rclone, tmp_path, params):
    res = run_rclone("lsf", "-vv", "--config", "/dev/null", make_fs_string(":local", params, str(tmp_path)))
    match = re.search(r'adding "(\{.{5}\})" suffix to name', res.stderr)
    assert match, res.stderr
    assert match.group(1) == override_suffix(params)


@pytest.mark.rclone
def test_parsed_params_reach_rclone(run_rclone, tmp_path):
    # a value with , : and ' survives our quoting into rclone (alias remote=<dir>)
    odd = tmp_path / "we,ird:d'ir"
    odd.mkdir()
    (odd / "marker.txt").write_text("x")
    text = make_fs_string(":alias", {"remote": str(odd)}, "")
    assert parse(text).config["remote"] == str(odd)
    res = run_rclone("lsf", "--config", "/dev/null", text)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["marker.txt"]
