"""The crypt Backend: rclone's names and sizes over the wrapped remote.

Every path is encrypted on the way in (a file's with rclone's EncryptFileName, a
directory's with EncryptDirName) and every listed name decrypted on the way out; a name that
does not decrypt is skipped with a NOTICE, or fails the listing with `strict_names`. Sizes
shown are the plaintext sizes, computed from the ciphertext sizes without reading anything.
Crypt objects have no hash (as rclone's), so fingerprints use size and modtime.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ...crypt.contents import decrypted_size, encrypted_size
from ...crypt.keys import derive_keys
from ...crypt.names import NameCipher
from ...log import NOTICE
from ..alias import target
from ..base import FEATURE_RANDOM_READ, FEATURE_RANDOM_WRITE, FEATURE_SLOW_HASH, Backend, BackendContext, Entry
from ..wrapping import WrappingBackend
from . import INFO
from .transfer import CryptReader, CryptWriter

log = logging.getLogger("pyclone")

_MODES = ("standard", "obfuscate", "off")
_ENCODINGS = ("base32", "base64", "base32768")


def open_crypt(name: str, root: str, options: dict[str, str], ctx: BackendContext | None,
               open_inner: Callable[[str], Backend]) -> Backend:
    opt = INFO.parse_options(options)
    if not options.get("password"):
        raise ValueError("password not set in config file")
    mode = opt["filename_encryption"].lower()
    if mode not in _MODES:
        raise ValueError(f"unknown file name encryption mode {opt['filename_encryption']!r}")
    encoding = opt["filename_encoding"].lower()
    if encoding not in _ENCODINGS:
        raise ValueError(f"unknown file name encoding mode {opt['filename_encoding']!r}")
    keys = derive_keys(options["password"], options.get("password2", ""))
    names = NameCipher(keys, mode=mode, encoding=encoding, dir_names=bool(opt["directory_name_encryption"]),
                       suffix=opt["suffix"])
    root = root.strip("/")
    if root.endswith("/.") or root == ".":
        root = root[:-1].rstrip("/")
    inner_root = names.encrypt_dir(root) if root else ""
    inner = open_inner(target(inner_root, {"remote": opt["remote"]}))
    return CryptBackend(name, root, options, inner, ctx, keys=keys, names=names, opt=opt)


class CryptBackend(WrappingBackend):
    type_name = "crypt"

    def __init__(self, name: str, root: str, config: dict[str, str], inner: Backend,
                 ctx: BackendContext | None = None, *, keys: Any, names: NameCipher, opt: dict[str, Any]) -> None:
        super().__init__(name, root, config, inner, ctx)
        self.keys = keys
        self.names = names
        self.raw_data = bool(opt["no_data_encryption"])
        self.pass_bad_blocks = bool(opt["pass_bad_blocks"])
        self.strict_names = bool(opt["strict_names"])
        self.show_mapping = bool(opt["show_mapping"])
        # random reads and in-place changes would need the blocks around them; hashes are the
        # ciphertext's, never the plaintext's (rclone: none)
        self.features = inner.features - {FEATURE_RANDOM_READ, FEATURE_RANDOM_WRITE, FEATURE_SLOW_HASH}
        self.hashes = ()

    def __repr__(self) -> str:
        return f"CryptBackend({self.name}:{self.root} over {self.inner!r})"

    # --- names ------------------------------------------------------------------------------

    @staticmethod
    def _check(path: str) -> None:
        # encrypted, ".." would be just a name: refused as the other backends refuse it
        if path.startswith("/") or ".." in path.split("/"):
            raise OSError(errno.EINVAL, "invalid path", path)

    def _file(self, path: str) -> str:
        self._check(path)
        return self.names.encrypt_path(path) if path else ""

    def _dir(self, path: str) -> str:
        self._check(path)
        return self.names.encrypt_dir(path) if path else ""

    def _plain_size(self, enc: Entry, shown: str) -> int:
        if self.raw_data:
            return enc.size
        try:
            return decrypted_size(enc.size)
        except ValueError as e:
            log.debug("%s: bad size for decrypt: %s", shown, e)
            return 0

    def _entry(self, e: Entry, name: str) -> Entry:
        if e.is_dir:
            return replace(e, name=name)
        return replace(e, name=name, size=self._plain_size(e, name))

    def list(self, path: str) -> list[Entry]:
        out = []
        bad = 0
        first = ""
        for e in self.inner.list(self._dir(path)):
            try:
                name = self.names.decrypt_name(e.name, is_dir=e.is_dir)
            except ValueError as err:
                where = f"{path}/{e.name}" if path else e.name
                if self.strict_names:
                    bad += 1
                    first = first or f"{where}: undecryptable {'dir' if e.is_dir else 'file'} name detected: {err}"
                    continue
                log.log(NOTICE, "%s: Skipping undecryptable %s name: %s", where, "dir" if e.is_dir else "file", err)
                continue
            if self.show_mapping:
                log.debug("%s: Encrypts to %r", f"{path}/{name}" if path else name, e.name)
            out.append(self._entry(e, name))
        if bad:
            raise OSError(errno.EIO, f"there were {bad} undecryptable name errors. first error: {first}")
        return out

    def stat(self, path: str) -> Entry:
        name = path.rpartition("/")[2]
        if not path:
            return self._entry(self.inner.stat(""), "")
        try:
            e = self.inner.stat(self._file(path))
        except FileNotFoundError:
            e = self.inner.stat(self._dir(path))
            if not e.is_dir:
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", path) from None
        return self._entry(e, name)

    def _either(self, path: str) -> str:
        """The inner path of an existing file or directory (they encrypt apart in mode off,
        and with directory_name_encryption false)."""
        enc = self._file(path)
        if enc == self._dir(path):
            return enc
        try:
            self.inner.stat(enc)
            return enc
        except FileNotFoundError:
            return self._dir(path)

    # --- contents ---------------------------------------------------------------------------

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> Any:
        enc = self._file(path)
        if self.raw_data:
            return self.inner.open_read(enc, offset, length)
        return CryptReader(self, enc, path, offset, length)

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None, mode: int | None = None) -> Any:
        enc = self._file(path)
        if self.raw_data:
            return self.inner.open_write(enc, size, mtime_ns, mode)
        inner_size = encrypted_size(size) if size >= 0 else -1
        return CryptWriter(self.keys.data_key, self.inner.open_write(enc, inner_size, mtime_ns, mode))

    def truncate(self, path: str, size: int) -> None:
        raise OSError(errno.ENOTSUP, "crypt cannot truncate in place", path)

    # --- tree -------------------------------------------------------------------------------

    def mkdir(self, path: str) -> None:
        self.inner.mkdir(self._dir(path))

    def rmdir(self, path: str) -> None:
        self.inner.rmdir(self._dir(path))

    def delete(self, path: str) -> None:
        self.inner.delete(self._file(path))

    def move(self, src: str, dst: str) -> None:
        try:
            is_dir = self.inner.stat(self._file(src)).is_dir
        except FileNotFoundError:
            is_dir = True  # not a file by that name: a directory, or nothing (the inner move says)
        if is_dir:
            self.inner.move(self._dir(src), self._dir(dst))
        else:
            self.inner.move(self._file(src), self._file(dst))

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        self.inner.set_modtime(self._either(path), mtime_ns)

    def chmod(self, path: str, mode: int) -> None:
        self.inner.chmod(self._either(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self.inner.chown(self._either(path), uid, gid)

    def hash(self, path: str, kind: str) -> str:
        raise OSError(errno.ENOTSUP, f"crypt objects have no {kind} hash", path)

    def hash_written(self, path: str, kind: str, digest: str) -> None:
        """A plaintext hash says nothing about the stored ciphertext: not passed on."""

    def upload_hashes(self, size: int) -> tuple[str, ...]:
        return ()  # the inner backend would be given the plaintext's
