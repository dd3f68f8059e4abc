"""The HTTP client's global flags: values from the command line and RCLONE_* variables, what
BackendContext gets, and errors worded as rclone 1.75.2 words them."""

from __future__ import annotations

import pytest

from pyclone_docker import cli
from pyclone_docker.backends.base import BackendContext
from pyclone_docker.flags import ALL_OPTIONS, OptionValues
from pyclone_docker.parsers.bwtimetable import BwPair


def _ctx(argv, env=None) -> BackendContext:
    return BackendContext.from_values(cli.parse_flags(argv, env or {}).values)


def test_defaults():
    c = _ctx([])
    assert c == BackendContext()
    assert (c.ca_cert, c.header, c.dump, c.tpslimit, c.tpslimit_burst, c.bwlimit.slots) == ((), (), frozenset(), 0.0,
                                                                                              1, ())
    assert c.user_agent == ALL_OPTIONS["user_agent"].default
    hash(c)


def test_string_arrays_append_and_keep_commas():
    c = _ctx(["--header", "X-A: 1, 2", "--header=X-B:3", "--header-upload", "Cache-Control: no-store",
              "--header-download", "X-D: d", "--ca-cert", "a.pem", "--ca-cert", "b,c.pem"])
    assert c.header == (("X-A", "1, 2"), ("X-B", "3"))
    assert c.header_upload == (("Cache-Control", "no-store"),) and c.header_download == (("X-D", "d"),)
    assert c.ca_cert == ("a.pem", "b,c.pem")


def test_environment_forms():
    env = {"RCLONE_HEADER": "X-Env: a,b", "RCLONE_CA_CERT": 'x.pem,"y,z.pem"', "RCLONE_DUMP": "headers,auth",
           "RCLONE_TPSLIMIT": "2.5", "RCLONE_TPSLIMIT_BURST": "3", "RCLONE_BWLIMIT": "10M:1M",
           "RCLONE_NO_CHECK_CERTIFICATE": "true", "RCLONE_USER_AGENT": "me/1", "RCLONE_CLIENT_CERT": "c.pem",
           "RCLONE_CLIENT_KEY": "k.pem", "RCLONE_HEADER_UPLOAD": "X-U: u"}
    c = _ctx(["--header", "X-Cmd: c", "--ca-cert", "cmd.pem"], env)
    assert c.header == (("X-Env", "a,b"), ("X-Cmd", "c"))  # the variable is one whole header, as rclone's
    assert c.ca_cert == ("x.pem", "y,z.pem", "cmd.pem")  # the variable is a CSV list, as rclone's
    assert c.dump == {"headers", "auth"} and c.tpslimit == 2.5 and c.tpslimit_burst == 3
    assert c.bwlimit.slots[0].bandwidth == BwPair(10 << 20, 1 << 20)
    assert c.no_check_certificate and c.user_agent == "me/1"
    assert (c.client_cert, c.client_key, c.header_upload) == ("c.pem", "k.pem", (("X-U", "u"),))


def test_option_values_copy_keeps_lists_apart():
    v = OptionValues.defaults(ALL_OPTIONS)
    v.set("header", "A: 1")
    w = v.copy()
    w.set("header", "B: 2")
    assert v.header == ["A: 1"] and w.header == ["A: 1", "B: 2"]
    assert OptionValues.defaults(ALL_OPTIONS).header == []


def test_dump_choices():
    assert _ctx(["--dump", "HEADERS, bodies,,"]).dump == {"headers", "bodies"}
    assert _ctx(["--dump", "curl,errors,trace,mapper"]).dump == {"curl", "errors", "trace", "mapper"}


@pytest.mark.parametrize(("arg", "message"), [
    ("--dump=foo", 'invalid argument "foo" for "--dump" flag: parsing "foo" as '
     'fs.Bits[github.com/rclone/rclone/fs.dumpChoices] failed: invalid choice "foo" from: headers, bodies, requests, '
     'responses, auth, filters, goroutines, openfiles, mapper, curl, errors, trace'),
    ("--tpslimit=abc", 'invalid argument "abc" for "--tpslimit" flag: parsing "abc" as float64 failed: '
     'strconv.ParseFloat: parsing "": invalid syntax'),
    ("--tpslimit=1.5x", 'invalid argument "1.5x" for "--tpslimit" flag: parsing "1.5x" as float64 failed: '
     'expected newline'),
    ("--header=noColon", 'invalid argument "noColon" for "--header" flag: failed to parse "noColon" as an HTTP '
     "header. Expecting a string like: 'Cache-Control: no-store'"),
])
def test_errors(arg, message):
    with pytest.raises(cli.UsageError) as err:
        cli.parse_flags([arg], {})
    assert str(err.value) == message


@pytest.mark.rclone
@pytest.mark.parametrize("arg", ["--dump=foo", "--dump=headers,foo", "--dump=0x3", "--tpslimit=abc",
                                 "--tpslimit=1.5x", "--tpslimit=1e", "--tpslimit=0x10", "--tpslimit=1 2",
                                 "--tpslimit=1e400", "--tpslimit=infinity", "--tpslimit-burst=x",
                                 "--tpslimit-burst=1.5", "--no-check-certificate=maybe", "--bwlimit=bad",
                                 "--bwlimit=25:00,1M"])
def test_errors_match_the_reference_rclone(run_rclone, arg):
    res = run_rclone("serve", "docker", arg, "--config", "/dev/null")
    assert res.returncode != 0
    with pytest.raises(cli.UsageError) as err:
        cli.parse_flags([arg], {})
    assert f"Error: {err.value}" == res.stderr.splitlines()[0]


@pytest.mark.rclone
@pytest.mark.parametrize("arg", ["--tpslimit=inf", "--tpslimit= 1", "--tpslimit=-1", "--tpslimit=nan",
                                 "--tpslimit=1_0", "--tpslimit=0x1p4", "--tpslimit=.5", "--dump=HEADERS",
                                 "--dump=,", "--bwlimit=08:00,512k;12:00,off",
                                 "--bwlimit=Mon-10:00,2M Sunday-23:00,off", "--tpslimit-burst=0x10"])
def test_values_rclone_accepts_are_accepted(run_rclone, arg):
    res = run_rclone("lsf", "/nonexistent-pyclone-dir", arg, "--config", "/dev/null")
    assert "invalid argument" not in res.stderr
    cli.parse_flags([arg], {})
