"""crypt volumes end to end (issue 13): dockerd, the plugin, FUSE, and a crypt remote over a host
directory, checked on the host with the real rclone 1.75.2 (tests/rclone_ref.py).

    docker volume create NAME -d <driver> -o type=crypt -o crypt-remote=<host dir> \
        -o crypt-password=<obscured> -o allow-other=true

The password is random and obscured by the plugin's own `obscure -` (stdin, never argv:
test_sftp_e2e.obscure_cli). One container writes 200 small files (1-4 KiB) and one 100 MiB file of
/dev/urandom (md5s taken in the container with busybox md5sum), a second container reads them
back, the volume is removed; then on the host:
- the directory holds only rclone's ciphertext: no plaintext name as any path component, every
  file starts with rclone's magic `RCLONE\\x00\\x00` and has rclone's EncryptedSize of the plaintext;
- rclone 1.75.2, given the same obscured password in a 0600 rclone.conf named by RCLONE_CONFIG
  (never in argv), lists the same names (`lsf -R`) and `md5sum --download` (decrypting every file)
  gives the container's md5s.
This runs in cache modes off and full, set per volume, whatever PYCLONE_E2E_PLUGIN_ARGS gives the
plugin.

Then: crypt over an rclone.conf section (a crypt section wrapping a local section of the same
file, the plugin's RCLONE_CONFIG), and a wrong password over a directory written with the right
one: with encrypted names the volume lists nothing, each skipped name is logged as a NOTICE
("Skipping undecryptable file name", rclone's words) and a known name reads as missing; with
`crypt-filename-encryption=off` the names show but every read fails with an I/O error and an
ERROR naming the file, and no byte of the file (right or wrong) reaches the container.

Volume names and directories get a random suffix (dockerd's volume names are global).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_s3_e2e import (
    READ_SCRIPT,
    RUN_TIMEOUT,
    create_volume,
    ctr_run,
    fields,
    listed,
    log_from,
    md5_lines,
    remove_volume,
    small_size,
    tag,
    write_script,
)
from test_sftp_e2e import obscure_cli

from tests import rclone_ref

if TYPE_CHECKING:  # helpers come in through the fixtures, never by importing conftest
    from conftest import PluginProcess, Resources

pytestmark = pytest.mark.docker

SMALL_FILES = 200
BIG_MIB = 100
MAGIC = b"RCLONE\x00\x00"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def encrypted_size(plain: int) -> int:
    """rclone's Cipher.EncryptedSize: a 32-byte header, a 16-byte tag per 64 KiB block."""
    blocks, rest = divmod(plain, 65536)
    return 32 + blocks * 65552 + (16 + rest if rest else 0)


class Rclone:
    """rclone 1.75.2 on a crypt section `sec` (and any other sections given), the config in a 0600
    file named by RCLONE_CONFIG: the password never reaches an argv."""

    def __init__(self, home: Path, config: str) -> None:
        self.binary = rclone_ref.require()
        home.mkdir(parents=True, exist_ok=True)
        conf = home / "rclone.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(config)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "RCLONE_CONFIG": str(conf)}

    def run(self, *args: str) -> str:
        p = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, timeout=600,
                           stdin=subprocess.DEVNULL, check=False)
        assert p.returncode == 0, f"rclone {args[0]} failed ({p.returncode}): {p.stderr[-2000:]}"
        return p.stdout

    def md5s(self, remote: str) -> dict[str, str]:
        """{path: md5} of every file, each decrypted by rclone (`md5sum --download`)."""
        out = {}
        for line in self.run("md5sum", "--download", remote).splitlines():
            md5, _, path = line.partition("  ")
            out[path] = md5
        return out


def crypt_section(name: str, remote: str, obscured: str, *extra: str) -> str:
    return "\n".join([f"[{name}]", "type = crypt", f"remote = {remote}", f"password = {obscured}", *extra, ""])


def crypt_opts(remote_dir: Path, obscured: str, *extra: str) -> list[str]:
    return ["type=crypt", f"crypt-remote={remote_dir}", f"crypt-password={obscured}", "allow-other=true", *extra]


def plain_names(n_small: int) -> set[str]:
    return {"small", "big.bin", *(f"f{i}" for i in range(n_small))}


def check_ciphertext_only(remote_dir: Path, n_small: int, big_mib: int) -> None:
    """Only rclone's ciphertext on the host: no plaintext name, the magic and rclone's sizes."""
    files = [p for p in remote_dir.rglob("*") if p.is_file()]
    dirs = [p for p in remote_dir.rglob("*") if p.is_dir()]
    assert len(files) == n_small + 1 and len(dirs) == 1, \
        f"{len(files)} files and {len(dirs)} directories under {remote_dir}, expected {n_small + 1} and 1"
    names = plain_names(n_small)
    shown = [str(p.relative_to(remote_dir)) for p in remote_dir.rglob("*")
             if names & set(p.relative_to(remote_dir).parts)]
    assert not shown, f"plaintext names on the host: {shown[:5]}"
    want = sorted([encrypted_size(small_size(i)) for i in range(n_small)] + [encrypted_size(big_mib << 20)])
    assert sorted(p.stat().st_size for p in files) == want, "the sizes on the host are not rclone's EncryptedSize"
    for p in files:
        with open(p, "rb") as f:
            assert f.read(8) == MAGIC, f"{p.name} does not start with rclone's magic"


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def roundtrip(res: Resources, name: str, n_small: int, big_mib: int) -> dict[str, str]:
    """Write in one container, read back in a second one; {path: md5} as the container wrote them."""
    out = ctr_run(res, name, write_script(n_small, big_mib)).stdout
    written = md5_lines(out)
    assert fields(out).get("count") == str(n_small), out[-500:]
    assert len(written) == n_small + 1, f"{len(written)} md5 lines: {out[-500:]}"
    back_out = ctr_run(res, name, READ_SCRIPT).stdout
    back = md5_lines(back_out)
    assert fields(back_out).get("count") == str(n_small), back_out[-500:]
    assert fields(back_out).get("size", "").strip() == str(big_mib << 20), back_out[-500:]
    differ = sorted(k for k in written if back.get(k) != written[k])
    assert not differ, f"a second container read other bytes: {differ[:5]}"
    return written


@pytest.fixture
def remote_dir(plugin: PluginProcess) -> Path:
    d = plugin.data_dir / f"crypt-{tag()}"
    d.mkdir()
    return d


# --------------------------------------------------------------------------
# 1. the round trip, in cache modes off and full, checked with rclone 1.75.2
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["off", "full"])
def test_crypt_volume_roundtrip(plugin: PluginProcess, res: Resources, remote_dir: Path, tmp_path: Path,
                                mode: str) -> None:
    password = "e2e-" + secrets.token_urlsafe(16)
    obscured = obscure_cli(password)
    log_start = plugin.log_size()
    name = f"cryptvol{tag()}"
    create_volume(res, name, *crypt_opts(remote_dir, obscured, f"vfs-cache-mode={mode}"))
    assert listed(res, name)
    written = roundtrip(res, name, SMALL_FILES, BIG_MIB)
    remove_volume(res, name)  # waits for any write-back still going from the cache

    check_ciphertext_only(remote_dir, SMALL_FILES, BIG_MIB)
    rc = Rclone(tmp_path / "rclone", crypt_section("sec", str(remote_dir), obscured))
    listed_by_rclone = set(rc.run("lsf", "-R", "--files-only", "sec:").splitlines())
    assert listed_by_rclone == set(written), \
        f"rclone lists other names: extra {sorted(listed_by_rclone - set(written))[:5]}, " \
        f"missing {sorted(set(written) - listed_by_rclone)[:5]}"
    assert rc.md5s("sec:") == written, "rclone 1.75.2 decrypts other bytes than the containers wrote"
    text = log_from(plugin.log_path, log_start)
    assert password not in text and obscured not in text, "the plugin log holds the password"


# --------------------------------------------------------------------------
# 2. crypt over an rclone.conf section (crypt wrapping a local section)
# --------------------------------------------------------------------------


@pytest.fixture
def config_section(plugin: PluginProcess) -> Iterator[Path]:
    """plugin.config_path (the plugin's RCLONE_CONFIG) restored to what it held afterwards."""
    before = plugin.config_path.read_bytes()
    try:
        yield plugin.config_path
    finally:
        plugin.config_path.write_bytes(before)


def test_crypt_over_rclone_conf_section(plugin: PluginProcess, res: Resources, remote_dir: Path,
                                        tmp_path: Path, config_section: Path) -> None:
    obscured = obscure_cli("e2e-" + secrets.token_urlsafe(16))
    t = tag()
    config = (f"[disk{t}]\ntype = local\n\n"
              + crypt_section(f"vault{t}", f"disk{t}:{remote_dir}", obscured, "filename_encoding = base64"))
    config_section.write_text(config)
    os.chmod(config_section, 0o600)
    name = f"cryptconf{t}"
    create_volume(res, name, f"remote=vault{t}:", "allow-other=true")
    written = roundtrip(res, name, 20, 8)
    remove_volume(res, name)

    check_ciphertext_only(remote_dir, 20, 8)
    rc = Rclone(tmp_path / "rclone", config)
    assert rc.md5s(f"vault{t}:") == written, "rclone 1.75.2 decrypts other bytes than the containers wrote"
    # base64 names from the section (rclone's alphabet has '-' and '_', base32's has neither case)
    enc = [p.name for p in remote_dir.rglob("*")]
    assert any(c.isupper() for n in enc for c in n), f"not base64 names: {enc[:3]}"


# --------------------------------------------------------------------------
# 3. a wrong password
# --------------------------------------------------------------------------


def written_by_rclone(tmp_path: Path, remote_dir: Path, obscured: str, *extra: str) -> dict[str, str]:
    """hello.txt and data.bin (1 MiB of random bytes) written by rclone 1.75.2; {name: md5}."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.txt").write_text("hello, crypt\n")
    (src / "data.bin").write_bytes(os.urandom(1 << 20))
    rc = Rclone(tmp_path / "rclone", crypt_section("sec", str(remote_dir), obscured, *extra))
    rc.run("copy", str(src), "sec:")
    assert len(list(remote_dir.iterdir())) == 2
    return {p.name: md5_file(p) for p in src.iterdir()}


def test_wrong_password_lists_nothing(plugin: PluginProcess, res: Resources, remote_dir: Path,
                                      tmp_path: Path) -> None:
    """Encrypted names under another key do not decrypt: skipped with a NOTICE each (rclone's
    "Skipping undecryptable file name"), so the volume lists nothing; a known name is encrypted
    with the wrong key too, so it reads as missing."""
    written_by_rclone(tmp_path, remote_dir, obscure_cli("right-" + secrets.token_urlsafe(12)))
    log_start = plugin.log_size()
    name = f"cryptwrong{tag()}"
    create_volume(res, name, *crypt_opts(remote_dir, obscure_cli("wrong-" + secrets.token_urlsafe(12))))
    out = ctr_run(res, name, 'echo "ls=$(ls -A | wc -l)"; cat hello.txt; echo "cat=$?"', check=False)
    got = fields(out.stdout)
    assert got.get("ls") == "0", f"a wrong password lists entries: {out.stdout}"
    assert got.get("cat") not in (None, "0"), f"hello.txt read with a wrong password: {out.stdout}"
    assert "hello, crypt" not in out.stdout
    assert "No such file" in out.stderr, out.stderr
    text = res.wait_for(lambda: (t := log_from(plugin.log_path, log_start)).count("Skipping undecryptable") >= 2
                        and t, 10, "two NOTICE lines for the skipped names")
    notices = [line for line in text.splitlines() if "Skipping undecryptable file name" in line]
    assert len(notices) >= 2 and all("NOTICE" in line for line in notices), notices
    remove_volume(res, name)
    assert len(list(remote_dir.iterdir())) == 2, "the wrong-password volume changed the directory"


# Mode off used to read a file whose only block fails authentication as EMPTY: the first read's
# EIO consumed the block, and the kernel's retry at offset 0 got EOF (fixed: CryptReader's error
# now sticks, as rclone 1.75.2 gives EIO on every read).
@pytest.mark.parametrize("mode", ["off", "full"])
def test_wrong_password_never_shows_wrong_bytes(plugin: PluginProcess, res: Resources, remote_dir: Path,
                                                tmp_path: Path, mode: str) -> None:
    """With filename_encryption off the names show, but no block authenticates under another key:
    every read fails with EIO (an ERROR in the log naming the file), and the container gets no
    byte of the file."""
    extra = ("filename_encryption = off",)
    md5s = written_by_rclone(tmp_path, remote_dir, obscure_cli("right-" + secrets.token_urlsafe(12)), *extra)
    log_start = plugin.log_size()
    name = f"cryptbad{tag()}"
    create_volume(res, name, *crypt_opts(remote_dir, obscure_cli("wrong-" + secrets.token_urlsafe(12)),
                                         "crypt-filename-encryption=off", f"vfs-cache-mode={mode}"))
    script = ('echo "ls=$(ls | sort | tr "\\n" " ")"\n'
              'cat hello.txt; echo "hello_rc=$?"\n'
              'n=$(cat data.bin | wc -c); echo "data_bytes=$n"\n'
              'dd if=data.bin of=/dev/null bs=64k 2>&1; echo "dd_rc=$?"\n')
    out = ctr_run(res, name, script, check=False, timeout=RUN_TIMEOUT)
    got = fields(out.stdout)
    assert got.get("ls", "").split() == ["data.bin", "hello.txt"], out.stdout
    assert got.get("hello_rc") not in (None, "0") and "hello, crypt" not in out.stdout, out.stdout
    assert got.get("data_bytes") == "0", f"bytes of a file that does not authenticate reached the container: {got}"
    assert got.get("dd_rc") not in (None, "0"), out.stdout
    assert "Input/output error" in out.stdout + out.stderr, out.stdout + out.stderr
    text = log_from(plugin.log_path, log_start)
    errors = [line for line in text.splitlines() if "ERROR" in line and "hello.txt" in line]
    assert errors, "no ERROR naming hello.txt in the plugin log"
    remove_volume(res, name)
    assert sorted(p.name for p in remote_dir.iterdir()) == ["data.bin.bin", "hello.txt.bin"]
    for p in remote_dir.iterdir():  # rclone's ciphertext, untouched by the wrong-password volume
        assert p.read_bytes()[:8] == MAGIC and md5_file(p) != md5s[p.name[:-4]]
