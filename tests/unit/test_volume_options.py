"""Option triage as rclone's serve docker does it (pure logic, no backend, no FUSE)."""

from __future__ import annotations

import pytest

from pyclone_docker.docker.options import (
    OptionError,
    parse_volume_options,
    redact_options,
    saved_options,
)
from pyclone_docker.docker.volume import check_mount_id, check_name
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues


@pytest.fixture
def defaults() -> OptionValues:
    return OptionValues.defaults(VOLUME_OPTIONS)


def test_type_and_path_make_an_on_the_fly_fs_string(defaults: OptionValues) -> None:
    spec = parse_volume_options({"type": "local", "path": "/srv/docker", "local-case-sensitive": "true",
                                 "local_no_check_updated": "1"}, defaults)
    assert spec.fs_string == ":local,case_sensitive='true',no_check_updated='1':/srv/docker"
    assert spec.fs == "" and spec.fs_type == "local" and spec.path == "/srv/docker"
    assert spec.options == {"local-case-sensitive": "true", "local_no_check_updated": "1"}


def test_remote_connection_string_with_explicit_path_override(defaults: OptionValues) -> None:
    spec = parse_volume_options({"remote": ":local,copy_links:/a", "path": "/b"}, defaults)
    assert spec.fs_string == ":local,copy_links='true':/b"
    assert spec.fs == ":local,copy_links:/a"


def test_fs_is_an_alias_of_remote(defaults: OptionValues) -> None:
    assert parse_volume_options({"fs": "/tmp/x"}, defaults).fs_string == "/tmp/x"


def test_mount_and_vfs_options_in_every_spelling(defaults: OptionValues) -> None:
    spec = parse_volume_options({"type": "local", "--attr-timeout": "3s", "vfs_cache_mode": "off",
                                 "ALLOW-OTHER": "true", "dir-perms": "0750", "max_read_ahead": "1Mi",
                                 "mount_type": "mount", "persist": "FALSE"}, defaults)
    v = spec.values
    assert v.attr_timeout == 3.0 and v.vfs_cache_mode == "off" and v.allow_other is True
    assert v.dir_perms == 0o750 and v.max_read_ahead == 1 << 20
    assert {"attr_timeout", "vfs_cache_mode", "allow_other", "dir_perms", "max_read_ahead"} <= spec.explicit
    # the plugin-wide defaults are untouched
    assert defaults.vfs_cache_mode == "off" and defaults.allow_other is False


def test_empty_value_means_unset(defaults: OptionValues) -> None:
    spec = parse_volume_options({"type": "local", "attr-timeout": ""}, defaults)
    assert spec.values.attr_timeout == 1.0


@pytest.mark.parametrize("opts, fragment", [
    ({}, "either remote or backend type"),
    ({"type": "local", "remote": "/x"}, "either remote or backend type"),
    ({"remote": "/a", "fs": "/b"}, "not both"),
    ({"type": "local", "Remote": "/x"}, 'unsupported backend option "Remote"'),  # special keys are exact
    ({"type": "local", "local-bogus": "1"}, 'unsupported backend option "local-bogus"'),
    ({"type": "local", "case_sensitive": "1"}, 'unsupported backend option "case_sensitive"'),
    ({"type": "local", "buffer-size": "1M"}, 'unsupported backend option "buffer-size"'),
    ({"type": "local", "read_only": "yes"}, 'cannot parse vfs options: couldn\'t parse config item "read_only"'),
    ({"type": "local", "attr_timeout": "x"}, "cannot parse mount options"),
    ({"type": "local", "persist": "true"}, "using backend type to persist remotes is prohibited"),
    ({"remote": "/x", "persist": "true"}, "backend type is required to persist remotes"),
    ({"type": "nope"}, 'didn\'t find backend called "nope"'),
    ({"remote": "named:path"}, "didn't find section in config file"),
    ({"type": "local", "daemon": "true"}, "daemon"),
    ({"type": "local", "mount-type": "fancy"}, 'unsupported mount type "fancy"'),
])
def test_refused(defaults: OptionValues, opts: dict[str, str], fragment: str) -> None:
    with pytest.raises(OptionError) as ei:
        parse_volume_options(opts, defaults)
    assert fragment in str(ei.value)


def test_named_remote_options_use_its_type(defaults: OptionValues) -> None:
    spec = parse_volume_options({"remote": "box:dir", "sftp-host": "h"}, defaults,
                                type_of_remote=lambda name, conn: "sftp" if name == "box" else None)
    assert spec.fs_string == "box,host='h':dir"


def test_saved_options_reinject_path() -> None:
    assert saved_options("", "local", "/p", {"a": "1"}) == {"a": "1", "type": "local", "path": "/p"}
    assert saved_options(":local:/x", "", "/y", {}) == {"fs": ":local:/x", "path": "/y"}


def test_redaction_hides_secrets_keeps_the_rest() -> None:
    red = redact_options({"type": "sftp", "sftp-pass": "hunter2", "sftp-host": "h",
                          "s3-secret-access-key": "k", "remote": ":sftp,pass=hunter2:/x",
                          "vfs-cache-mode": "full"})
    assert "hunter2" not in repr(red) and red["s3-secret-access-key"] == "***"
    assert red["sftp-host"] == "h" and red["vfs-cache-mode"] == "full"


@pytest.mark.parametrize("name", ["a", "vol-1", "A.b_c", "0", "x" * 255])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".x", "_x", "-x", "a b", "x" * 256, "a\nb", None, 5])
def test_bad_names(name: object) -> None:
    with pytest.raises(ValueError):
        check_name(name)


def test_mount_ids() -> None:
    assert check_mount_id("b87d7442") == "b87d7442"
    for bad in ("", None, "x" * 300, "a\nb"):
        with pytest.raises(ValueError):
            check_mount_id(bad)

