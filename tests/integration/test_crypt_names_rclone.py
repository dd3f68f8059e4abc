"""crypt file names both ways with the real rclone 1.75.2 (pyclone_docker/crypt/names.py).

For every filename_encryption x filename_encoding x directory_name_encryption combination, with
and without password2, and for the off-mode suffixes: `rclone cryptdecode --reverse` (rclone's
EncryptFileName) gives what we encrypt, and `rclone cryptdecode` (DecryptFileName) decodes what
we produce; names that do not decrypt fail on both sides. The names are random: ASCII, Latin-1,
CJK, emoji, combining marks, "!", bytes that are not UTF-8, version suffixes, several
segments.

The crypt remote is a section of a private rclone.conf (mode 0600): no password is put in a
child's argv or environment.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from pyclone_docker.crypt.keys import Keys, derive_keys
from pyclone_docker.crypt.names import NameCipher, UndecryptableName
from pyclone_docker.obscure import obscure
from tests import rclone_ref

GUARD = 120.0
PASSWORD = "names interop pässword"
PASSWORD2 = "a sälted pepper"
BATCH = 10  # cryptdecode takes at most 10 names a call
FAILED = "Failed to decrypt"


class Rclone:
    def __init__(self, binary: str, home: Path, options: dict[str, str]) -> None:
        self.binary = binary
        conf = home / "rclone.conf"
        lines = ["[c]", "type = crypt", f"remote = {home / 'enc'}"] + [f"{k} = {v}" for k, v in options.items()]
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "RCLONE_CONFIG": str(conf)}

    def cryptdecode(self, names: list[str], reverse: bool) -> list[str]:
        """rclone's answer for each name ("Failed to decrypt" for a failure)."""
        out: list[str] = []
        for i in range(0, len(names), BATCH):
            batch = names[i:i + BATCH]
            args = [self.binary, "cryptdecode", *(["--reverse"] if reverse else []), "c:", *batch]
            p = subprocess.run(args, env=self.env, capture_output=True, timeout=GUARD, check=False,
                               stdin=subprocess.DEVNULL)
            assert p.returncode == 0, p.stderr.decode(errors="replace")
            lines = p.stdout.decode("utf-8", "surrogateescape").split("\n")
            assert lines[-1] == "" and len(lines) == len(batch) + 1, p.stdout
            for name, line in zip(batch, lines, strict=False):
                # fmt.Sprintln(name, "\t", result): "name \t result"
                prefix = name + " \t "
                assert line.startswith(prefix), (name, line)
                out.append(line[len(prefix):])
        return out


POOLS = ["abcxyzABCXYZ0123456789", " !#$%&'()+,-.;=@[]^_`{}~", "äöüßÿ¡éÀ×÷", "€‐ファイル名中文한국어Ωπ",
         "😀🎉𝄞", "\u0301\u200b\ufeff"]


def random_segment(rng: random.Random) -> str:
    chars = [rng.choice(rng.choice(POOLS)) for _ in range(rng.randint(1, 30))]
    if rng.random() < 0.1:  # a byte that is not UTF-8, as a surrogate escape
        chars.insert(rng.randrange(len(chars) + 1), bytes([rng.randint(0x80, 0xFF)]).decode("utf-8", "surrogateescape"))
    name = "".join(chars).strip()
    # a leading "-" would be an rclone flag; a name of dots is no file name
    return name.lstrip("-").strip(".") or "x"


def random_names(rng: random.Random, count: int) -> list[str]:
    names = ["hello.txt", "a", "!bang", "x" * 143, "Ünïcödé ファイル.txt", "report-v2023-01-02-150405-000.txt",
             "dir1/sub/big.bin", "d-v2023-01-02-150405-000/f-v2001-02-03-040506-123", "bad-v2023-13-02-150405-000"]
    while len(names) < count:
        segments = [random_segment(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        if rng.random() < 0.15:
            segments[-1] += "-v2021-12-31-235959-999" + rng.choice(["", ".txt"])
        names.append("/".join(segments))
    return names


CONFIGS = [(mode, enc, dirs) for mode in ("standard", "obfuscate", "off") for enc in ("base32", "base64", "base32768")
           for dirs in (True, False) if mode == "standard" or enc == "base32"]


def _options(mode: str, encoding: str, dir_names: bool, password2: bool, suffix: str | None) -> dict[str, str]:
    options = {"password": obscure(PASSWORD), "filename_encryption": mode, "filename_encoding": encoding,
               "directory_name_encryption": str(dir_names).lower()}
    if password2:
        options["password2"] = obscure(PASSWORD2)
    if suffix is not None:
        options["suffix"] = suffix
    return options


@pytest.fixture(scope="module")
def keys() -> dict[bool, Keys]:
    return {False: derive_keys(PASSWORD), True: derive_keys(PASSWORD, PASSWORD2)}


def _check_both_ways(rc: Rclone, cipher: NameCipher, names: list[str]) -> None:
    ours = [cipher.encrypt_path(n) for n in names]
    assert rc.cryptdecode(names, reverse=True) == ours
    assert rc.cryptdecode(ours, reverse=False) == names
    assert [cipher.decrypt_path(e) for e in ours] == names


@pytest.mark.parametrize("password2", [False, True], ids=["password", "password2"])
@pytest.mark.parametrize(("mode", "encoding", "dir_names"), CONFIGS,
                         ids=[f"{m}-{e}-{'dirs' if d else 'nodirs'}" for m, e, d in CONFIGS])
def test_names_both_ways(tmp_path: Path, keys: dict[bool, Keys], mode: str, encoding: str, dir_names: bool,
                         password2: bool) -> None:
    rc = Rclone(rclone_ref.require(), tmp_path, _options(mode, encoding, dir_names, password2, None))
    cipher = NameCipher(keys[password2], mode=mode, encoding=encoding, dir_names=dir_names)
    rng = random.Random(f"{mode}/{encoding}/{dir_names}/{password2}")
    _check_both_ways(rc, cipher, random_names(rng, 40))


@pytest.mark.parametrize("suffix", ["none", ".jpg", "crypted"])
def test_off_mode_suffixes(tmp_path: Path, keys: dict[bool, Keys], suffix: str) -> None:
    rc = Rclone(rclone_ref.require(), tmp_path, _options("off", "base32", True, False, suffix))
    cipher = NameCipher(keys[False], mode="off", suffix=suffix)
    _check_both_ways(rc, cipher, random_names(random.Random(suffix), 20))


def _dotless(keys: Keys, count: int) -> str:
    """A standard/base32 name with `count` of its i and s written as the dotless i and the long
    s. Go's ToUpper makes I and S of them, but rclone pads for the length in bytes (2 each):
    whether the name still decodes depends on where that padding falls. Both sides must agree."""
    cipher = NameCipher(keys, encoding="base32")
    for n in range(100000):
        enc = cipher.encrypt_name(f"a name long enough for two blocks {n}")
        if sum(enc.count(c) for c in "is") >= count:
            out = list(enc)
            todo = count
            for i, c in enumerate(out):
                if c in "is" and todo:
                    out[i] = {"i": "\u0131", "s": "\u017f"}[c]
                    todo -= 1
            return "".join(out)
    raise AssertionError("no name found")


@pytest.mark.parametrize(("mode", "encoding"), [("standard", "base32"), ("standard", "base64"),
                                                ("standard", "base32768"), ("obfuscate", "base32"),
                                                ("off", "base32")])
def test_undecryptable_names_fail_on_both_sides(tmp_path: Path, keys: dict[bool, Keys], mode: str,
                                                encoding: str) -> None:
    rc = Rclone(rclone_ref.require(), tmp_path, _options(mode, encoding, True, False, None))
    cipher = NameCipher(keys[False], mode=mode, encoding=encoding)
    good = cipher.encrypt_name("hello.txt")
    rng = random.Random(mode + encoding)
    candidates = ["hello", "64=", "!", "a" * 3328, good[:-1], good + good[-1], good.upper(), good.swapcase(),
                  "x.abc", "+162.CzGGJ.OSO", "-5.abc", "!.plain", ".bin", "a.bin", "a/b", good + "/" + good,
                  "0123456789abcdef", "MTIzNDU2Nzg5MDEyMzQ1Ng", "㻙ⲍ⍆觓栩朤諆媕䆿", "ab==cdef", "hello=hello",
                  "\u0131" * 26] + [_dotless(keys[False], n) for n in (1, 3, 7, 8)]
    candidates += ["".join(rng.choice("0123456789abcdefghijklmnopqrstuv") for _ in range(26)) for _ in range(6)]
    candidates = [c for c in candidates if not c.startswith("-")] + ["x" + "-5.abc"]
    theirs = rc.cryptdecode(candidates, reverse=False)
    for name, answer in zip(candidates, theirs, strict=True):
        try:
            mine = cipher.decrypt_path(name)
        except UndecryptableName:
            mine = FAILED
        assert mine == answer, name
