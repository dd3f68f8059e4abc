"""A volume's options resolved in one pass: parsed once, checked at Create, warned about when
they do nothing yet (the driver without FUSE: Create never mounts)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import fspath
from pyclone_docker.cli import parse_flags
from pyclone_docker.docker.driver import Driver, DriverError
from pyclone_docker.docker.options import OptionError, parse_volume_options
from pyclone_docker.docker.state import StateFile
from pyclone_docker.flags import ALL_OPTIONS, VOLUME_OPTIONS, OptionValues
from pyclone_docker.flags import no_effect as flags_no_effect


@pytest.fixture
def defaults() -> OptionValues:
    return OptionValues.defaults(VOLUME_OPTIONS)


def make_driver(tmp_path: Path, defaults: OptionValues | None = None, env: dict[str, str] | None = None) -> Driver:
    return Driver(str(tmp_path / "base"), StateFile(str(tmp_path)), defaults or OptionValues.defaults(VOLUME_OPTIONS),
                  frozenset(), fsmod.FsContext(env=env or {}, cwd=str(tmp_path)))


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every fs string fspath.parse is asked to parse, from here on."""
    seen: list[str] = []
    real = fspath.parse

    def counting(s: str) -> fspath.ParsedPath:
        seen.append(s)
        return real(s)

    monkeypatch.setattr(fspath, "parse", counting)
    return seen


# --- one parse ---------------------------------------------------------------------------------


@pytest.mark.parametrize("opts, want", [
    ({"remote": ":local,case_sensitive,description='x:y':/srv", "local-no-check-updated": "1"}, 1),
    ({"fs": "/srv/a", "path": "/srv/b"}, 1),
    ({"remote": "named:dir"}, 1),
    ({"type": "local", "path": "/srv/c", "local-copy-links": "true"}, 0),  # no fs string at all
])
def test_create_parses_the_fs_string_once(tmp_path: Path, parses: list[str], opts: dict[str, str],
                                          want: int, caplog: pytest.LogCaptureFixture) -> None:
    d = make_driver(tmp_path, env={"RCLONE_CONFIG_NAMED_TYPE": "local"})
    with caplog.at_level(logging.INFO, "pyclone.driver"):
        d.create("v", opts)
    assert len(parses) == want, parses
    spec = d._volumes["v"].spec
    assert spec is not None and spec.resolved is not None and spec.resolved.type_name == "local"
    assert any('create volume "v"' in r.getMessage() for r in caplog.records)  # logged without a parse
    # the state file keeps rclone's fields, as given
    rec = json.loads(Path(d.state.path).read_text())[0]
    assert (rec["fs"], rec["type"], rec["path"]) == (opts.get("remote", opts.get("fs", "")),
                                                     opts.get("type", ""), opts.get("path", ""))


def test_the_resolved_remote_is_what_the_backend_is_built_from(tmp_path: Path, parses: list[str]) -> None:
    d = make_driver(tmp_path)
    d.create("v", {"remote": ":local,copy_links:sub", "local-no-set-modtime": "true"})
    spec = d._volumes["v"].spec
    assert spec is not None and spec.resolved is not None
    r = spec.resolved
    # as the fs string resolved on its own (the way it was done before, parse after parse)
    again = fsmod.resolve(spec.fs_string, d.fs_ctx)
    assert (r.name, r.root, r.options) == (again.name, again.root, again.options)
    assert r.name.startswith(":local{") and r.options == {"copy_links": "true", "no_set_modtime": "true"}
    assert r.display == fsmod.redact(spec.fs_string)  # the device name, from the same parse
    parses.clear()
    backend = fsmod.new_fs(r, d.fs_ctx)
    assert parses == [] and backend.root == str(tmp_path / "sub") and backend.copy_links is True


def test_failed_create_still_logs_its_options_redacted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = make_driver(tmp_path)
    with caplog.at_level(logging.INFO, "pyclone.driver"), pytest.raises(DriverError, match="couldn't decrypt"):
        d.create("v", {"remote": ":sftp,pass=hunter2:/x"})
    text = caplog.text
    assert 'create volume "v"' in text and "hunter2" not in text


def test_a_plain_path_with_local_options_keeps_them(defaults: OptionValues) -> None:
    # rclone builds ":local,copy_links='true':/x"; the options were dropped before
    spec = parse_volume_options({"remote": "/x", "local-copy-links": "true"}, defaults)
    assert spec.fs_string == ":local,copy_links='true':/x"
    assert parse_volume_options({"remote": "/x"}, defaults).fs_string == "/x"


def test_a_path_override_stays_a_local_path(tmp_path: Path, defaults: OptionValues) -> None:
    # was turned back into the string "a:b" and read as the remote "a"
    spec = parse_volume_options({"remote": "/x", "path": "a:b"}, defaults)
    r = fsmod.resolve(spec.remote, fsmod.FsContext(env={}, cwd=str(tmp_path)))
    assert (r.type_name, r.root) == ("local", str(tmp_path / "a:b"))


# --- checked at Create -------------------------------------------------------------------------


@pytest.mark.parametrize("opts, fragment", [
    ({"type": "local", "path": "/srv/a\0b"}, 'option "path" contains a NUL byte'),
    ({"remote": "/srv/a\0b"}, 'option "remote" contains a NUL byte'),
    ({"fs": ":local:/a\0"}, 'option "fs" contains a NUL byte'),
    ({"type": "local", "path": "/x", "devname": "a\0"}, 'option "devname" contains a NUL byte'),
    ({"type": "local", "path": "/" + "a" * 100_000}, 'option "path" is too long (100001 bytes'),
    ({"remote": ":alias,remote=/x:" + "a/" * 50_000}, 'option "remote" is too long'),
    ({"type": "local", "path": "/" + "a/" * 2048}, 'option "path": a local path is at most 4095 bytes long'),
    ({"remote": "/" + "é" * 2048}, 'option "remote": a local path is at most 4095 bytes long'),
    ({"remote": "/srv/" + "n" * 256 + "/x"}, 'option "remote": a local path component is at most 255 bytes'),
    ({"remote": "/srv", "path": "ü" * 128}, 'option "path": a local path component is at most 255 bytes'),
])
def test_impossible_paths_are_refused_at_create(tmp_path: Path, opts: dict[str, str], fragment: str,
                                                defaults: OptionValues) -> None:
    with pytest.raises(OptionError) as ei:
        parse_volume_options(opts, defaults)
    assert fragment in str(ei.value)
    assert "aaaa" not in str(ei.value) and "\0" not in str(ei.value)  # the value is never echoed
    d = make_driver(tmp_path)
    with pytest.raises(DriverError, match="option"):
        d.create("v", opts)
    assert d.list() == []


@pytest.mark.parametrize("opts", [
    {"type": "local", "path": "/" + "a" * 255 + "/" + "b" * 255},
    {"remote": "/" + "a/" * 2047},  # 4095 bytes
    {"type": "local"},
    {"remote": ":alias,remote=/x:" + "n" * 300},  # not a local path: no NAME_MAX
])
def test_long_but_possible_paths_pass(opts: dict[str, str], defaults: OptionValues) -> None:
    parse_volume_options(opts, defaults)


# --- options that do nothing yet ----------------------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_create_warns_once_about_options_without_effect(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = make_driver(tmp_path)
    with caplog.at_level(logging.INFO, "pyclone.driver"):
        d.create("v", {"type": "local", "path": str(tmp_path), "vfs-refresh": "true", "--link-perms": "0600",
                       "local-links": "true", "vfs-cache-mode": "full", "fuse-flag": "x"})
    assert _warnings(caplog) == ['volume "v": --fuse-flag, --vfs-refresh, --link-perms, --local-links have no '
                                 "effect yet in pyclone-docker (accepted as rclone accepts it, ignored)"]


def test_working_or_default_options_do_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = make_driver(tmp_path)
    with caplog.at_level(logging.INFO, "pyclone.driver"):
        d.create("a", {"type": "local", "path": str(tmp_path), "vfs-cache-mode": "full", "read-only": "true",
                       "local-copy-links": "true", "dir-cache-time": "1m", "max-read-ahead": "1Mi"})
        d.create("b", {"type": "local", "path": str(tmp_path), "vfs-refresh": "false", "link-perms": "0666",
                       "local-links": "false", "no-checksum": "false"})  # no-ops at their defaults
    assert _warnings(caplog) == []


def test_plugin_wide_defaults_without_effect_warn_at_each_create(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    pf = parse_flags(["--no-checksum", "--vfs-cache-mode", "writes"], {})
    defaults = OptionValues({k: pf.values.values[k] for k in VOLUME_OPTIONS})
    d = make_driver(tmp_path, defaults)
    with caplog.at_level(logging.INFO, "pyclone.driver"):
        d.create("a", {"type": "local", "path": str(tmp_path)})
        d.create("b", {"type": "local", "path": str(tmp_path), "no-checksum": "false"})
        d.create("a", {"type": "local", "path": str(tmp_path)})  # the same again: nothing is created
    assert _warnings(caplog) == ['volume "a": --no-checksum has no effect yet in pyclone-docker '
                                 "(accepted as rclone accepts it, ignored)"]


def test_startup_names_the_flags_without_effect() -> None:
    pf = parse_flags(["--contimeout", "5s", "--timeout", "5m", "--vfs-links", "--low-level-retries=3",
                      "--vfs-cache-mode", "full", "--local-zero-size-links", "--local-copy-links"],
                     {"RCLONE_USE_SERVER_MODTIME": "true", "RCLONE_VFS_HANDLE_CACHING": "5s"})
    assert fsmod.no_effect_flags(pf.values, pf.backend_flags) == [
        "--vfs-links", "--local-zero-size-links"]
    assert fsmod.no_effect_flags(parse_flags([], {}).values, {}) == []


def test_the_noop_list() -> None:
    """The flags that are accepted but do nothing yet (the README lists them)."""
    assert [o.flag for o in ALL_OPTIONS.values() if o.noop] == [
        "--fuse-flag", "--daemon-timeout", "--allow-idmap", "--write-back-cache",
        "--no-checksum", "--vfs-refresh", "--vfs-links", "--vfs-cache-min-free-space",
        "--vfs-read-chunk-streams", "--link-perms", "--vfs-block-norm-dupes", "--vfs-handle-caching",
        "--vfs-metadata-extension", "--retries"]
    assert not [o.flag for o in ALL_OPTIONS.values() if o.noop and o.ignored]
    assert flags_no_effect(OptionValues.defaults(ALL_OPTIONS), ALL_OPTIONS) == []
