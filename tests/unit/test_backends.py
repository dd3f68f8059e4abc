"""The backend registry, its lazy imports, the declarations, the wrapping base and the context."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyclone_docker import backends
from pyclone_docker import fs as fsmod
from pyclone_docker.backends import alias
from pyclone_docker.backends.base import Backend, BackendContext, BackendOption
from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.backends.wrapping import WrappingBackend
from pyclone_docker.flags import ALL_OPTIONS, OptionValues

REPO = Path(__file__).resolve().parents[2]
PLANNED: tuple[str, ...] = ()  # declared, refused until built (none left)
BUILT_LAZY = ("sftp", "s3", "webdav", "http", "ftp", "crypt", "chunker")  # built, imported only when a volume uses them


def _modules_after(code: str) -> list[str]:
    """The backend modules a fresh interpreter has imported after running `code`."""
    probe = code + "\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith('pyclone_docker.backends')))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    return json.loads(out.stdout.strip().replace("'", '"'))


def test_no_backend_module_is_imported_until_its_type_is_used() -> None:
    started = _modules_after("import pyclone_docker.cli, pyclone_docker.docker.driver, pyclone_docker.docker.serve")
    assert not set(started) & {f"pyclone_docker.backends.{n}" for n in ("local", "alias", *PLANNED, *BUILT_LAZY)}
    used = _modules_after("from pyclone_docker import backends\nbackends.find('local')")
    assert "pyclone_docker.backends.local" in used
    assert not set(used) & {f"pyclone_docker.backends.{n}" for n in ("alias", *PLANNED, *BUILT_LAZY)}
    # finding s3 imports its option table, not the backend (nor urllib3)
    s3 = _modules_after("from pyclone_docker import backends\nbackends.find('s3')\nimport sys\n"
                        "assert 'urllib3' not in sys.modules")
    assert "pyclone_docker.backends.s3" in s3 and "pyclone_docker.backends.s3.backend" not in s3
    # a flag imports only the backend its prefix names; a global flag none
    flag = _modules_after("from pyclone_docker import backends\n"
                          "assert backends.backend_option('sftp-key-use-agent')[1].kind == 'bool'\n"
                          "assert backends.backend_option('base-dir') is None")
    assert "pyclone_docker.backends.sftp" in flag
    assert not set(flag) & {f"pyclone_docker.backends.{n}" for n in ("local", "alias", "s3", "crypt")}


def test_cli_reads_backend_flags_without_importing_every_backend() -> None:
    mods = _modules_after("from pyclone_docker import cli\n"
                          "pf = cli.parse_flags(['--local-copy-links', '--vfs-cache-mode', 'full'],"
                          " {'RCLONE_BASE_DIR': '/x', 'RCLONE_SFTP_HOST': 'h'})\n"
                          "assert pf.backend_flags == {'local-copy-links': 'true', 'sftp-host': 'h'}, pf")
    assert {"pyclone_docker.backends.local", "pyclone_docker.backends.sftp"} <= set(mods)
    assert not set(mods) & {f"pyclone_docker.backends.{n}" for n in ("alias", "s3", "webdav", "http", "ftp")}


def test_warm_up_imports_the_backends_configured_remotes_use(tmp_path: Path) -> None:
    conf = tmp_path / "rclone.conf"
    conf.write_text("[store]\ntype = s3\nprovider = Other\n\n[secret]\ntype = crypt\nremote = store:x\n\n"
                    "[broken]\nprovider = nothing\n")
    mods = _modules_after("from pyclone_docker import backends, fs, rcconfig\n"
                          f"ctx = fs.FsContext(config=rcconfig.ReloadingConfig({str(conf)!r}, env={{}}),"
                          " env={'RCLONE_CONFIG_BOX_TYPE': 'sftp', 'RCLONE_CONFIG_TYPE': 'x'})\n"
                          "types = ctx.named_types()\n"
                          "assert types == {'s3', 'crypt', 'sftp'}, types\n"
                          "import sys\nassert 'urllib3' not in sys.modules\n"
                          "assert backends.warm_up(types | {'nope', ''}) == ['crypt', 's3', 'sftp']\n"
                          "assert 'urllib3' in sys.modules and 'http.client' in sys.modules")
    assert {"pyclone_docker.backends.s3.backend", "pyclone_docker.backends.crypt.backend",
            "pyclone_docker.backends.sftp.backend"} <= set(mods)
    assert not set(mods) & {f"pyclone_docker.backends.{n}" for n in ("chunker", *PLANNED)}


def test_registry_mapping_and_unknown_type() -> None:
    assert list(backends.REGISTRY) == list(backends.NAMES)
    assert backends.REGISTRY["local"].factory is LocalBackend
    with pytest.raises(KeyError):
        backends.REGISTRY["nope"]
    with pytest.raises(ValueError, match='didn\'t find backend called "nope"'):
        backends.find("nope")


@pytest.mark.parametrize("type_name", backends.NAMES)
def test_every_declaration_is_sound(type_name: str) -> None:
    info = backends.find(type_name)
    assert info.type_name == type_name
    names = [o.name for o in info.options]
    assert len(names) == len(set(names)), "an option declared twice"
    for opt in info.options:
        assert opt.name == opt.name.lower() and "-" not in opt.name
        opt.parse("")  # every default parses as its own kind
    assert (info.factory is None) == (type_name in PLANNED)
    assert info.wraps == (type_name in ("alias", "crypt", "chunker"))


@pytest.mark.parametrize("type_name", PLANNED)
def test_planned_backends_are_checked_then_refused(type_name: str) -> None:
    with pytest.raises(ValueError, match="not available in this pyclone-docker version yet"):
        fsmod.resolve(f":{type_name}:x", fsmod.FsContext(env={}))
    with pytest.raises(ValueError, match=f'unknown option "bogus" for backend "{type_name}"'):
        fsmod.resolve(f":{type_name},bogus=1:x", fsmod.FsContext(env={}))


_KINDS = {"bool": "bool", "int": "int", "SizeSuffix": "size", "Duration": "duration", "CommaSepList": "csv",
          "Tristate": "tristate"}


@pytest.mark.rclone
def test_declarations_match_rclone(run_rclone) -> None:
    """Names, password flags and value kinds as the reference rclone registers them."""
    res = run_rclone("config", "providers")
    assert res.returncode == 0, res.stderr
    theirs = {b["Name"]: b for b in json.loads(res.stdout)}
    for type_name in backends.NAMES:
        ours = {o.name: o for o in backends.find(type_name).options}
        options = {o["Name"]: o for o in theirs[type_name]["Options"]}
        assert sorted(ours) == sorted(options), type_name
        for name, o in options.items():
            assert ours[name].is_password == bool(o.get("IsPassword")), (type_name, name)
            assert ours[name].kind == _KINDS.get(o["Type"], "string"), (type_name, name, o["Type"])
            kind, default = ours[name].kind, ours[name].parse("")
            if kind in ("bool", "int", "size"):
                assert default == o["Default"], (type_name, name)
            elif kind == "duration":
                assert default == o["Default"] / 1e9, (type_name, name)  # rclone: nanoseconds
            elif kind == "string":
                assert ours[name].default == o["DefaultStr"], (type_name, name)


def test_option_values_use_the_flag_parsers() -> None:
    opt = BackendOption("chunk_size", "size", "32Ki")
    assert opt.parse("") == 32 << 10 and opt.parse("1Mi") == 1 << 20
    assert BackendOption("idle_timeout", "duration", "1m").parse("") == 60.0
    with pytest.raises(ValueError) as ei:
        BackendOption("copy_links", "bool", "false").parse("yes")
    assert str(ei.value) == ('couldn\'t parse config item "copy_links" = "yes" as bool: parsing "yes" as bool '
                             'failed: strconv.ParseBool: parsing "yes": invalid syntax')
    with pytest.raises(ValueError, match=r"as fs\.SizeSuffix"):
        BackendOption("chunk_size", "size").parse("lots")


def test_a_bad_backend_value_is_refused_when_resolved(tmp_path: Path) -> None:
    ctx = fsmod.FsContext(env={})
    with pytest.raises(ValueError, match=r'^local: couldn\'t parse config item "copy_links" = "yes" as bool'):
        fsmod.resolve(f":local,copy_links=yes:{tmp_path}", ctx)
    with pytest.raises(ValueError, match="copy_links"):  # from the environment as well
        fsmod.resolve(str(tmp_path), fsmod.FsContext(env={"RCLONE_LOCAL_COPY_LINKS": "maybe"}))
    assert fsmod.resolve(f":local,copy_links=T:{tmp_path}", ctx).options == {"copy_links": "T"}


def test_no_effect_lists_noop_options_away_from_their_default() -> None:
    info = backends.find("local")
    assert info.no_effect({"links": "true", "copy_links": "true", "encoding": "Slash,Dot"}) == ["links"]
    assert info.no_effect({"links": "false", "time_type": "mtime"}) == []
    r = fsmod.resolve(":local,links,unicode_normalization=1:/x", fsmod.FsContext(env={}))
    assert fsmod.no_effect(r) == ["--local-links", "--local-unicode-normalization"]


# --- the wrapping base ------------------------------------------------------------------------


class Passing(WrappingBackend):
    type_name = "passing"


def test_wrapping_backend_overrides_every_backend_method() -> None:
    public = {n for n, v in inspect.getmembers(Backend, inspect.isfunction) if not n.startswith("_")}
    missing = {n for n in public if n not in WrappingBackend.__dict__}
    assert not missing, f"WrappingBackend does not pass these on: {sorted(missing)}"


def test_wrapping_backend_passes_everything_on(tmp_path: Path) -> None:
    inner = LocalBackend("local", str(tmp_path), {})
    b = Passing("passing", "", {}, inner)
    assert b.features == inner.features and b.hashes == inner.hashes and b.ctx is inner.ctx
    b.mkdir("d")
    w = b.open_write("d/f", mtime_ns=10**18)
    w.write(memoryview(b"hello world"))
    w.close()
    assert [e.name for e in b.list("d")] == ["f"] and b.stat("d/f").size == 11
    r = b.open_read("d/f", 6)
    buf = bytearray(5)
    assert r.readinto(memoryview(buf)) == 5 and bytes(buf) == b"world"
    r.close()
    b.set_modtime("d/f", 2 * 10**18)
    assert b.stat("d/f").mtime_ns == 2 * 10**18
    b.chmod("d/f", 0o600)
    assert b.stat("d/f").mode == 0o600
    b.truncate("d/f", 5)
    assert b.hash("d/f", "md5") == "5d41402abc4b2a76b9719d911017c592"  # md5("hello")
    b.hash_written("d/f", "sha1", "x")
    b.move("d/f", "d/g")
    assert b.about().total > 0
    b.delete("d/g")
    b.rmdir("d")
    assert b.list("") == []
    b.change_notify(lambda path: None, 1.0)
    b.shutdown()


# --- alias through the callback ----------------------------------------------------------------


def test_alias_factory_opens_its_target_with_the_root_joined() -> None:
    seen: list[str] = []

    def open_inner(target: str) -> Backend:
        seen.append(target)
        return LocalBackend("local", "/", {})

    for remote, root, want in (("/srv", "sub", "/srv/sub"), ("r:", "sub", "r:sub"), ("r:dir/", "/a", "r:dir/a"),
                               ("r:dir", "", "r:dir")):
        alias.open_alias("a", root, {"remote": remote}, None, open_inner)
        assert seen[-1] == want
    with pytest.raises(ValueError, match='alias: option "remote" is required'):
        alias.open_alias("a", "x", {}, None, open_inner)


def test_alias_is_its_target_and_loops_are_caught(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    b = fsmod.new_fs(f":alias,remote='{tmp_path}':sub", fsmod.FsContext(env={}))
    assert isinstance(b, LocalBackend) and b.root == str(tmp_path / "sub")
    env = {"RCLONE_CONFIG_LOOP_TYPE": "alias", "RCLONE_CONFIG_LOOP_REMOTE": "loop:"}
    with pytest.raises(ValueError, match="nest too deeply"):
        fsmod.new_fs("loop:x", fsmod.FsContext(env=env))


# --- the backend context -------------------------------------------------------------------------


def test_backend_context_comes_from_the_flag_table() -> None:
    defaults = BackendContext.from_values(OptionValues.defaults(ALL_OPTIONS))
    assert defaults == BackendContext()
    for name in ("timeout", "contimeout", "low_level_retries", "retries", "no_checksum", "use_server_modtime"):
        assert getattr(defaults, name) == ALL_OPTIONS[name].default, name
    values = OptionValues.defaults(ALL_OPTIONS)
    for name, raw in (("contimeout", "5s"), ("low_level_retries", "2"), ("retries", "7"),
                      ("use_server_modtime", "true"), ("timeout", "1m")):
        values.set(name, raw)
    ctx = BackendContext.from_values(values)
    assert (ctx.contimeout, ctx.low_level_retries, ctx.retries, ctx.use_server_modtime, ctx.timeout) == \
        (5.0, 2, 7, True, 60.0)
    vol = OptionValues.defaults(ALL_OPTIONS)
    vol.set("no_checksum", "true")
    assert ctx.for_volume(vol).no_checksum is True and ctx.for_volume(vol).contimeout == 5.0
    assert ctx.for_volume(object()) is ctx


def test_factories_get_the_context(tmp_path: Path) -> None:
    ctx = BackendContext(contimeout=5.0)
    fctx = fsmod.FsContext(env={}, backend=ctx)
    assert fsmod.new_fs(str(tmp_path), fctx).ctx is ctx
    # through an alias to its target, and per volume
    assert fsmod.new_fs(f":alias,remote='{tmp_path}':", fctx).ctx is ctx
    vol = OptionValues.defaults(ALL_OPTIONS)
    vol.set("no_checksum", "true")
    r = fsmod.resolve(str(tmp_path), fctx, vol)
    assert fsmod.new_fs(r, fctx).ctx == BackendContext(contimeout=5.0, no_checksum=True)
    r = fsmod.resolve(f":alias,remote='{tmp_path}':", fctx, vol)
    assert fsmod.new_fs(r, fctx).ctx == BackendContext(contimeout=5.0, no_checksum=True)
