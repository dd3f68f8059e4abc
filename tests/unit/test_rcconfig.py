"""rclone.conf: dialect quirks, encryption, location and option precedence (section 3.2, 4)."""

from __future__ import annotations

import itertools
import json
import os
import pty
import select
import signal
import time

import pytest

from pyclone_docker import rcconfig
from pyclone_docker.parsers import parse_bool
from pyclone_docker.rcconfig import (
    RcloneConfig,
    default_config_path,
    encrypt_config,
    lookup_option,
    remote_type,
)

# every quirk of rclone_formats.md 4.2 in one file; EXPECTED_DUMP is what
# `rclone config dump` (1.60) printed for it
QUIRKS = (
    "\ufeffbase = /srv/demo\n"
    "; comment\n"
    "# comment\n"
    "[  spaced name  ]\n"
    "type = local\n"
    "k = v # x\n"
    "remote:/srv/x\n"
    "q1 = `back tick`\n"
    'q2 = """tri"ple"""\n'
    'q3 = "dq"\n'
    "q4 = 'sq'\n"
    "`we=ird:key` = 1\n"
    '"dq:key" = 2\n'
    "- = a\n"
    "- = b\n"
    "empty =\n"
    "dup = 1\n"
    "dup = 2\n"
    "interp = %(base)s/plain\n"
    "hosts = H\n"
    "x = %(hosts)s|%(missing)s\n"
    "[par]\n"
    "type = alias\n"
    "remote = /p\n"
    "[par.child]\n"
    "[sec2]\n"
    "  type   =   local  \n"
    "c = `unterminated ok`x`\n"
)

EXPECTED_DUMP = {
    "DEFAULT": {"base": "/srv/demo"},
    "spaced name": {
        "type": "local", "k": "v # x", "remote": "/srv/x", "q1": "back tick", "q2": 'tri"ple',
        "q3": '"dq"', "q4": "'sq'", "we=ird:key": "1", "dq:key": "2", "#1": "a", "#2": "b",
        "empty": "", "dup": "2", "interp": "/srv/demo/plain", "hosts": "H",
        # goconfig trims ")s" as a character set: %(hosts)s looks up "host"
        "x": "|",
    },
    "par": {"type": "alias", "remote": "/p"},
    "par.child": {},
    "sec2": {"type": "local", "c": "unterminated ok`x"},
}

PLAIN_EXAMPLE = """[mycrypt]
type = crypt
remote = /tmp/research/enc
password = Kcy8PRrIkU0OUS6dZrFivL8E0SSA8KhMu02_8vaMBK-VelzRTQw6cjj7_FA

[my local]
type = local
nounc = true

[sftp1]
type = sftp
host = example.com
user = bob
pass = e5etn4XPTJqcBSiXRbzAwIQA82Ro2OI
port = 2222
"""

# made by Python with a zero nonce and accepted by rclone 1.60 (rclone_formats.md 4.3)
ENCRYPTED_VECTOR = (
    "# Encrypted rclone configuration File\n\nRCLONE_ENCRYPT_V0:\n"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAddYcmtVfYyd/sYuUujBaU/ymFSV+8E3cFlkZmZ5cIwSad53FLbHf1NWWMs9K4Har"
    "1IH1dfnYw2sTuYf20m6l6ZtMaHxeDXs0e00ZDGrKEwqCdHk1o9RuCSYCucMvfqeoH3ckKu/myGEmssA3hKBPqLW60eVpVB"
    "EOtK0PNSOZ9xm/0n6QxifeQ/18LIaeGfmR3J0wQuX2JMIQvdjbqA/4yosM5SAlFCJJw2cTd1CaIA7P89Nj3VRior3GprY8"
    "4WEosktqoNJq2mE7P35R+OkGjT8ohT9dl+p2hmuxmDJvhuvN9IdkiIzSVE7D5LPRoGuszpNwX4zhxCMVmevBzyxfXmGVLr"
    "q8tTmiwCdCasCAUpuTrar2IvY="
)
VECTOR_PASSWORD = "my config pw"
VECTOR_DUMP = {
    "mycrypt": {"type": "crypt", "remote": "/tmp/research/enc",
                "password": "Kcy8PRrIkU0OUS6dZrFivL8E0SSA8KhMu02_8vaMBK-VelzRTQw6cjj7_FA"},
    "my local": {"type": "local", "nounc": "true"},
    "sftp1": {"type": "sftp", "host": "example.com", "user": "bob",
              "pass": "e5etn4XPTJqcBSiXRbzAwIQA82Ro2OI", "port": "2222"},
}


# --- the INI dialect -----------------------------------------------------------------

def test_quirks_dump():
    config = RcloneConfig.from_text(QUIRKS)
    assert config.dump() == EXPECTED_DUMP
    assert config.sections() == ["DEFAULT", "spaced name", "par", "par.child", "sec2"]
    assert config.keys("spaced name")[:3] == ["type", "k", "remote"]


def test_get_semantics():
    config = RcloneConfig.from_text(QUIRKS)
    assert config.get("par.child", "type") == "alias"  # sub-section fallback
    assert config.get("par.child", "remote") == "/p"
    assert config.get("par.child", "nope") is None
    assert config.get("missing", "type") is None
    assert config.get("spaced name", "empty") == ""  # callers treat "" as unset
    assert config.get("spaced name", "missing") is None
    assert config.get("", "base") == "/srv/demo"  # "" is DEFAULT
    assert config.get("sec2", "base") is None  # no fallback to DEFAULT for plain keys
    assert config.has_section("par.child") and not config.has_section("par.child.x")


def test_nested_sub_sections_and_interpolation_order():
    config = RcloneConfig.from_text(
        "v = default\n"
        "[a]\nk = a-value\nv = a\nuse = %(v)s/%(only)s\nonly = mine\n"
        "[a.b]\n[a.b.c]\nown = %(k)s\n")
    assert config.get("a.b.c", "k") == "a-value"
    # DEFAULT wins over the same section; names missing from DEFAULT come from the section
    assert config.get("a", "use") == "default/mine"
    # interpolation in a sub-section only looks at DEFAULT and the section itself
    assert config.get("a.b.c", "own") == ""


def test_interpolation_loops_stop():
    config = RcloneConfig.from_text("[s]\na = x%(a)sy\nb = %(c)s\nc = %(b)s\n")
    assert config.get("s", "a").startswith("x" * 100)
    # 200 passes of b -> c -> b ... end where goconfig ends
    assert config.get("s", "b") == "%(c)s"
    looped = RcloneConfig.from_text("a = %(a)s!\n[s]\nk = %(a)s\n")
    assert looped.get("s", "k").endswith("!")


@pytest.mark.parametrize(("text", "message"), [
    ("[a]\ntype = local\nbroken line\n", "could not parse line: broken line"),
    ("[a]\n= value\n", "could not parse line: = value"),
    ("[a]\n`q` = `v\n", "could not parse line: `q` = `v"),
    ('[a]\n"key = 1\n', 'could not parse line: "key = 1'),
    ("[a]\n`key` 1\n", "could not parse line: `key` 1"),
    ("[]\ntype = local\n", "empty section name not allowed"),
    ("[\n", "could not parse line: ["),
])
def test_parse_errors(text, message):
    with pytest.raises(ValueError) as err:
        RcloneConfig.from_text(text)
    assert str(err.value) == message


def test_more_dialect_details():
    config = RcloneConfig.from_text(
        "[s]\r\n"
        'k1 = """"""\r\n'
        "k2 = ``\r\n"
        "k3 = `\r\n"
        '"""tri key""" = v\n'
        '"" = ignored\n'
        "k4 = a = b : c\n"
        "k5 : x = y\n"
        "\t k6 \t=\t v6 \t\n"
        "k7 = \"\"\"a\"\"\"b\n"
        "[s]\n"
        "k1 = again\n")
    assert config.dump() == {"s": {
        "k1": "again", "k2": "", "k3": "`", "tri key": "v", "k4": "a = b : c", "k5": "x = y",
        "k6": "v6", "k7": "a"}}
    assert config.keys("s")[0] == "k1"  # a repeated key keeps its first position


def test_list_keys_restart_per_section():
    config = RcloneConfig.from_text("[a]\n- = 1\n- = 2\n[b]\n- = 3\n")
    assert config.dump() == {"a": {"#1": "1", "#2": "2"}, "b": {"#1": "3"}}


# --- loading ------------------------------------------------------------------------

def test_load_missing_and_in_memory(tmp_path):
    for path in ("", "/dev/null", str(tmp_path / "notfound"), str(tmp_path / "nope.conf")):
        config = RcloneConfig.load(path)
        assert config.sections() == []
    notfound = tmp_path / "dir" / "notfound"
    notfound.parent.mkdir()
    notfound.write_text("[x]\ntype = local\n")
    assert RcloneConfig.load(str(notfound)).sections() == []


def test_load_file(tmp_path):
    path = tmp_path / "rclone.conf"
    path.write_text(PLAIN_EXAMPLE)
    config = RcloneConfig.load(str(path))
    assert config.dump() == VECTOR_DUMP
    assert config.path == str(path) and not config.encrypted


# --- encrypted files -----------------------------------------------------------------

def test_vector_key():
    assert rcconfig._config_key(VECTOR_PASSWORD).hex() == (
        "1baaa22bfa107fa32cdea8d71650416ad19ec10999afc2f6616bc2f5e46cddad")


def test_decrypt_vector(tmp_path):
    path = tmp_path / "enc.conf"
    path.write_text(ENCRYPTED_VECTOR)
    config = RcloneConfig.load(str(path), env={"RCLONE_CONFIG_PASS": VECTOR_PASSWORD})
    assert config.encrypted
    assert config.dump() == VECTOR_DUMP


def test_encrypt_reproduces_vector():
    plain, _ = rcconfig.decrypt_config(ENCRYPTED_VECTOR.encode(), {"RCLONE_CONFIG_PASS": VECTOR_PASSWORD})
    assert encrypt_config(plain, VECTOR_PASSWORD, nonce=bytes(24)) == ENCRYPTED_VECTOR.encode()


def test_password_command():
    data = ENCRYPTED_VECTOR.encode()
    config = RcloneConfig.from_bytes(data, password_command=lambda: VECTOR_PASSWORD + "\r\n")
    assert config.dump() == VECTOR_DUMP
    # the command wins over the environment
    env = {"RCLONE_CONFIG_PASS": "wrong"}
    assert RcloneConfig.from_bytes(data, env=env, password_command=lambda: VECTOR_PASSWORD).encrypted


@pytest.mark.parametrize(("env", "message"), [
    ({}, rcconfig.ERR_NO_PASSWORD),
    ({"RCLONE_CONFIG_PASS": ""}, rcconfig.ERR_NO_PASSWORD),
    ({"RCLONE_CONFIG_PASS": "wrong"}, rcconfig.ERR_WRONG_PASSWORD),
    ({"RCLONE_CONFIG_PASS": " my config pw"}, rcconfig.ERR_WRONG_PASSWORD),  # not trimmed
    ({"RCLONE_CONFIG_PASS": " \t "}, "no characters in password"),
])
def test_password_errors(env, message):
    with pytest.raises(ValueError) as err:
        RcloneConfig.from_bytes(ENCRYPTED_VECTOR.encode(), env=env)
    assert str(err.value) == message


@pytest.mark.parametrize(("text", "message"), [
    ("RCLONE_ENCRYPT_V1:\nAAAA", rcconfig.ERR_UNSUPPORTED),
    ("# c\n\n  ; c\nRCLONE_ENCRYPT_V9:\n", rcconfig.ERR_UNSUPPORTED),
    ("RCLONE_ENCRYPT_V0:\nAAAA", "configuration data too short"),
    ("RCLONE_ENCRYPT_V0:\n", "configuration data too short"),
    ("RCLONE_ENCRYPT_V0:\nAA!A", "failed to load base64 encoded data"),
])
def test_encryption_format_errors(text, message):
    with pytest.raises(ValueError) as err:
        RcloneConfig.from_text(text)
    assert str(err.value).startswith(message)


def test_encrypted_detection_rules():
    # blank lines and comments may come first; base64 may be wrapped over lines
    box = encrypt_config(b"[x]\ntype = local\n", "pw", nonce=bytes(24)).split(b"\n")[-1]
    wrapped = b"\n".join(box[i:i + 20] for i in range(0, len(box), 20))
    data = b"\n  \n; note\n  RCLONE_ENCRYPT_V0:  \r\n" + wrapped + b"\r\n"
    config = RcloneConfig.from_bytes(data, env={"RCLONE_CONFIG_PASS": "pw"})
    assert config.dump() == {"x": {"type": "local"}}
    # a marker after other content is just an INI key
    assert not RcloneConfig.from_text("[s]\nRCLONE_ENCRYPT_V0: 1\n").encrypted


def test_password_is_nfkc_normalised():
    data = encrypt_config(b"[x]\n", "ﬁ", nonce=bytes(24))  # U+FB01 normalises to "fi"
    assert RcloneConfig.from_bytes(data, env={"RCLONE_CONFIG_PASS": "fi"}).sections() == ["x"]


# --- where the file is ---------------------------------------------------------------

def _home(tmp_path):
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    home.mkdir()
    xdg.mkdir()
    return home, xdg


def test_default_config_path(tmp_path):
    home, xdg = _home(tmp_path)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}
    assert default_config_path(env) == str(xdg / "rclone" / "rclone.conf")
    assert default_config_path({"HOME": str(home)}) == str(home / ".config/rclone/rclone.conf")
    hidden = home / ".rclone.conf"
    hidden.write_text("")
    assert default_config_path(env) == str(hidden)
    dotconfig = home / ".config" / "rclone" / "rclone.conf"
    dotconfig.parent.mkdir(parents=True)
    dotconfig.write_text("")
    assert default_config_path(env) == str(dotconfig)
    xdg_file = xdg / "rclone" / "rclone.conf"
    xdg_file.parent.mkdir()
    xdg_file.write_text("")
    assert default_config_path(env) == str(xdg_file)
    assert default_config_path({**env, "RCLONE_CONFIG": "/etc/x.conf"}) == "/etc/x.conf"
    assert default_config_path({**env, "RCLONE_CONFIG": ""}) == ""


def test_in_memory_paths():
    assert rcconfig.is_in_memory_path("")
    assert rcconfig.is_in_memory_path("/dev/null")
    assert rcconfig.is_in_memory_path("/some/where/notfound")
    assert not rcconfig.is_in_memory_path("/some/where/notfound.conf")


# --- option lookup -------------------------------------------------------------------

CONFIG = RcloneConfig.from_text(
    "[myrem]\ntype = sftp\nhost = file-host\nuser =\nport = 22\n"
    "[my-rem]\ntype = sftp\n")


def _lookup(key, remote="myrem", conn=None, flags=None, env=None, config=CONFIG):
    return lookup_option(remote, "sftp", key, conn_params=conn or {}, cli_flags=flags or {},
                         env=env or {}, config=config)


def test_lookup_precedence():
    conn = {"host": "conn"}
    flags = {"sftp-host": "flag"}
    env = {"RCLONE_CONFIG_MYREM_HOST": "remote-env", "RCLONE_SFTP_HOST": "backend-env"}
    assert _lookup("host", conn=conn, flags=flags, env=env) == "conn"
    assert _lookup("host", flags=flags, env=env) == "flag"
    # rclone 1.75.2: the backend's variable is the flag's value, above the remote's (1.60: below)
    assert _lookup("host", env=env) == "backend-env"
    assert _lookup("host", env={"RCLONE_CONFIG_MYREM_HOST": "remote-env"}) == "remote-env"
    assert _lookup("host", env={"RCLONE_SFTP_HOST": "backend-env"}) == "backend-env"
    assert _lookup("host") == "file-host"
    assert _lookup("host", config=None) is None
    assert _lookup("nothing") is None


def test_a_backend_variable_that_means_the_default_ranks_below_the_remotes():
    env = {"RCLONE_CONFIG_MYREM_PORT": "2222", "RCLONE_SFTP_PORT": "22"}
    assert lookup_option("myrem", "sftp", "port", conn_params={}, cli_flags={}, env=env, config=CONFIG,
                         is_default=lambda v: int(v) == 22) == "2222"
    assert lookup_option("myrem", "sftp", "port", conn_params={}, cli_flags={}, env=env, config=CONFIG) == "22"
    # still above the file, as in 1.60
    assert lookup_option("myrem", "sftp", "host", conn_params={}, cli_flags={}, config=CONFIG,
                         env={"RCLONE_SFTP_HOST": ""}) == ""


def test_backend_variables_rank_as_rclone_175_when_a_remote_is_resolved(tmp_path):
    from pyclone_docker import cli
    from pyclone_docker import fs as fsmod

    def resolved(env):
        pf = cli.parse_flags([], env)
        ctx = fsmod.FsContext(env=env, cli_flags=pf.backend_flags)
        return fsmod.resolve(f"r:{tmp_path}", ctx).options.get("case_sensitive"), pf.backend_flags

    base = {"RCLONE_CONFIG_R_TYPE": "local", "RCLONE_CONFIG_R_CASE_SENSITIVE": "true"}
    # at the default (false), RCLONE_LOCAL_* is no flag: the remote's variable wins
    assert resolved({**base, "RCLONE_LOCAL_CASE_SENSITIVE": "false"}) == ("true", {})
    assert resolved({**base, "RCLONE_CONFIG_R_CASE_SENSITIVE": "false", "RCLONE_LOCAL_CASE_SENSITIVE": "1"}) == (
        "1", {"local-case-sensitive": "1"})


def test_lookup_details():
    assert _lookup("user") is None  # empty in the file = unset
    assert _lookup("user", env={"RCLONE_SFTP_USER": ""}) == ""  # a set env var counts, even empty
    assert _lookup("key_use_agent", flags={"sftp-key-use-agent": "true"}) == "true"
    assert _lookup("key_use_agent", env={"RCLONE_SFTP_KEY_USE_AGENT": "1"}) == "1"
    assert _lookup("port", remote="MyRem") is None  # the file section name is case-sensitive
    assert _lookup("port", remote="MyRem", env={"RCLONE_CONFIG_MYREM_PORT": "2"}) == "2"
    assert _lookup("host", remote="my-rem", env={"RCLONE_CONFIG_MY-REM_HOST": "h"}) == "h"
    assert _lookup("host", remote="my-rem", env={"RCLONE_CONFIG_MY_REM_HOST": "h"}) is None
    # on-the-fly backends (remote "") have no section and no remote env vars
    assert _lookup("host", remote="", env={"RCLONE_CONFIG__HOST": "x"}) is None
    assert _lookup("host", remote="", env={"RCLONE_SFTP_HOST": "y"}) == "y"
    assert rcconfig.remote_env("straße", "host") == "RCLONE_CONFIG_STRAßE_HOST"


def test_remote_type():
    def kind(remote, conn=None, env=None, config=CONFIG):
        return remote_type(remote, conn_params=conn or {}, env=env or {}, config=config)

    assert kind("myrem") == "sftp"
    assert kind("myrem", env={"RCLONE_CONFIG_MYREM_TYPE": "local"}) == "local"
    assert kind("myrem", conn={"type": "alias"}, env={"RCLONE_CONFIG_MYREM_TYPE": "local"}) == "alias"
    assert kind("other") is None
    assert kind("other", env={"RCLONE_CONFIG_OTHER_TYPE": "alias"}) == "alias"
    # backend-wide env vars and flags never give a type
    assert kind("other", env={"RCLONE_SFTP_TYPE": "x", "RCLONE_TYPE": "x"}) is None
    assert kind("blank", config=RcloneConfig.from_text("[blank]\ntype =\n")) is None
    assert kind("par.child", config=RcloneConfig.from_text(QUIRKS)) == "alias"


# --- against real rclone -------------------------------------------------------------

@pytest.mark.rclone
def test_dump_matches_rclone(run_rclone, tmp_path):
    path = tmp_path / "quirks.conf"
    path.write_text(QUIRKS)
    res = run_rclone("config", "dump", "--config", str(path))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == RcloneConfig.load(str(path)).dump()


@pytest.mark.rclone
def test_rclone_reads_our_encrypted_file(run_rclone, tmp_path):
    path = tmp_path / "enc.conf"
    path.write_bytes(encrypt_config(PLAIN_EXAMPLE.encode(), "s3cret pässword"))
    res = run_rclone("config", "dump", "--config", str(path), "--ask-password=false",
                     env={"RCLONE_CONFIG_PASS": "s3cret pässword"})
    assert res.returncode == 0, res.stderr
    ours = RcloneConfig.load(str(path), env={"RCLONE_CONFIG_PASS": "s3cret pässword"})
    assert json.loads(res.stdout) == ours.dump() == VECTOR_DUMP
    wrong = run_rclone("config", "dump", "--config", str(path), "--ask-password=false",
                       env={"RCLONE_CONFIG_PASS": "nope"})
    assert wrong.returncode != 0 and rcconfig.ERR_WRONG_PASSWORD in wrong.stderr


class _Tty:
    """A child process on a pseudo-terminal, driven like `expect` (rclone reads passwords there)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child only execs
            os.execve(argv[0], argv, env)
        self.buffer = b""
        self.deadline = time.monotonic() + 30

    def expect(self, prompt: str) -> None:
        wanted = prompt.encode()
        while wanted not in self.buffer:
            remaining = self.deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for {prompt!r}: {self.buffer!r}"
            if select.select([self.fd], [], [], remaining)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO once the child has gone
                    chunk = b""
                assert chunk, f"child ended before {prompt!r}: {self.buffer!r}"
                self.buffer += chunk
        self.buffer = self.buffer.split(wanted, 1)[1]

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def close(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:
                os.read(self.fd, 4096)  # keep the child from blocking on output
            except OSError:
                time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError("child did not exit")


@pytest.mark.rclone
def test_we_read_rclones_encrypted_file(rclone_bin, tmp_path):
    # through the menu (1.60 had no `config encryption set`), which wants a terminal
    path = tmp_path / "rclone.conf"
    path.write_text(PLAIN_EXAMPLE)
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(tmp_path)}
    tty = _Tty([rclone_bin, "config", "--config", str(path)], env)
    try:
        for prompt, answer in (("e/n/d/r/c/s/q>", "s"), ("a/q>", "a"),
                               ("Enter NEW configuration password:", None),
                               ("password:", "rclone made this"),
                               ("Confirm NEW configuration password:", None),
                               ("password:", "rclone made this"),
                               ("c/u/q>", "q"), ("e/n/d/r/c/s/q>", "q")):
            tty.expect(prompt)
            if answer is not None:
                tty.send(answer)
    finally:
        assert tty.close() == 0
    assert path.read_text().startswith("# Encrypted rclone configuration File")
    config = RcloneConfig.load(str(path), env={"RCLONE_CONFIG_PASS": "rclone made this"})
    assert config.encrypted and config.dump() == VECTOR_DUMP
    with pytest.raises(ValueError, match="wrong password"):
        RcloneConfig.load(str(path), env={"RCLONE_CONFIG_PASS": "rclone made that"})


@pytest.mark.rclone
def test_config_file_location_matches_rclone(run_rclone, tmp_path):
    home, xdg = _home(tmp_path)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}
    hidden = home / ".rclone.conf"
    dotconfig = home / ".config" / "rclone" / "rclone.conf"
    xdg_file = xdg / "rclone" / "rclone.conf"
    for step in (None, hidden, dotconfig, xdg_file):
        if step is not None:
            step.parent.mkdir(parents=True, exist_ok=True)
            step.write_text("")
        res = run_rclone("config", "file", env=env)
        assert res.stdout.strip().splitlines()[-1] == default_config_path(env)


@pytest.mark.rclone
def test_precedence_matches_rclone(run_rclone, tmp_path):
    """Each source points an alias remote at its own directory; rclone's pick must be ours."""
    dirs = {}
    for source in ("conn", "flag", "remote_env", "backend_env", "file"):
        dirs[source] = tmp_path / source
        dirs[source].mkdir()
        (dirs[source] / f"{source}.txt").write_text(source)
    conf = tmp_path / "rclone.conf"
    conf.write_text(f"[r]\ntype = alias\nremote = {dirs['file']}\n")
    config = RcloneConfig.load(str(conf))
    for used in itertools.product((False, True), repeat=4):
        conn = {"remote": str(dirs["conn"])} if used[0] else {}
        flags = {"alias-remote": str(dirs["flag"])} if used[1] else {}
        env = {}
        if used[2]:
            env["RCLONE_CONFIG_R_REMOTE"] = str(dirs["remote_env"])
        if used[3]:
            env["RCLONE_ALIAS_REMOTE"] = str(dirs["backend_env"])
        ours = lookup_option("r", "alias", "remote", conn_params=conn, cli_flags=flags,
                             env=env, config=config)
        fs = "r" + (f",remote='{conn['remote']}'" if conn else "") + ":"
        args = ["lsf", "--config", str(conf), fs]
        if flags:
            args += ["--alias-remote", flags["alias-remote"]]
        res = run_rclone(*args, env=env)
        assert res.returncode == 0, res.stderr
        picked = res.stdout.split()[0].removesuffix(".txt")
        assert str(dirs[picked]) == ours, used


@pytest.mark.rclone
@pytest.mark.parametrize(("remote_value", "backend_value"), [
    ("true", "false"), ("true", "0"), ("false", "true"), ("false", "1"), ("0", "T")])
def test_backend_variable_at_its_default_matches_rclone(run_rclone, tmp_path, remote_value, backend_value):
    """RCLONE_LOCAL_LINKS outranks RCLONE_CONFIG_R_LINKS only when it is not the default (false)."""
    (tmp_path / "target.txt").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "link.txt").symlink_to(tmp_path / "target.txt")
    conf = tmp_path / "rclone.conf"
    conf.write_text("[r]\ntype = local\n")
    env = {"RCLONE_CONFIG_R_LINKS": remote_value, "RCLONE_LOCAL_LINKS": backend_value}
    ours = lookup_option("r", "local", "links", conn_params={}, cli_flags={}, env=env,
                         config=RcloneConfig.load(str(conf)), is_default=lambda v: parse_bool(v) is False)
    res = run_rclone("lsf", "--config", str(conf), f"r:{tmp_path / 'd'}", env=env)
    assert res.returncode == 0, res.stderr
    assert ("link.txt.rclonelink" in res.stdout.split()) == parse_bool(ours), (ours, res.stdout)


@pytest.mark.rclone
def test_env_only_remotes_match_rclone(run_rclone, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "hello.txt").write_text("x")
    for remote, prefix in (("envrem", "RCLONE_CONFIG_ENVREM_"), ("my-rem", "RCLONE_CONFIG_MY-REM_"),
                           ("MixedCase", "RCLONE_CONFIG_MIXEDCASE_")):
        env = {prefix + "TYPE": "alias", prefix + "REMOTE": str(target)}
        assert remote_type(remote, conn_params={}, env=env, config=None) == "alias"
        assert lookup_option(remote, "alias", "remote", conn_params={}, cli_flags={}, env=env,
                             config=None) == str(target)
        res = run_rclone("lsf", "--config", "/dev/null", remote + ":", env=env)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["hello.txt"]


@pytest.mark.rclone
def test_sub_section_fallback_matches_rclone(run_rclone, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "inherited.txt").write_text("x")
    conf = tmp_path / "rclone.conf"
    conf.write_text(f"base = {tmp_path}\n[par]\ntype = alias\nremote = %(base)s/target\n[par.child]\n")
    config = RcloneConfig.load(str(conf))
    assert remote_type("par.child", conn_params={}, env={}, config=config) == "alias"
    assert config.get("par.child", "remote") == str(target)
    res = run_rclone("lsf", "--config", str(conf), "par.child:")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["inherited.txt"]


def test_the_config_file_is_read_again_when_it_changes(tmp_path, caplog) -> None:
    """rclone's config storage re-reads rclone.conf when it changes: a section saved after the
    plugin started is found (the managed plugin's documented order)."""
    from pyclone_docker.rcconfig import ReloadingConfig

    path = tmp_path / "rclone.conf"
    conf = ReloadingConfig(str(path))  # missing: empty, no error
    assert conf.sections() == [] and conf.get("box", "type") is None
    path.write_text("[box]\ntype = sftp\nhost = a\n")
    assert conf.get("box", "host") == "a" and conf.has_section("box")
    path.write_text("[box]\ntype = sftp\nhost = bb\n")  # same second, other size
    assert conf.get("box", "host") == "bb"
    path.write_text("[box\nbroken line\n")
    assert conf.get("box", "host") == "bb"  # a file being edited keeps what was read before
    assert "cannot be read" in caplog.text
    path.unlink()
    assert conf.sections() == []
