"""Read rclone.conf the way rclone does (1.60 to 1.75.2 alike; read-only).

The INI dialect is that of Unknwon/goconfig v1.0.0, which rclone uses: no inline
comments, `=` or `:` separators, backtick and triple-quote values, `%(name)s`
interpolation and `a.b` sections inheriting from `a`. Encrypted files
(`RCLONE_ENCRYPT_V0:`) are decrypted with the password from RCLONE_CONFIG_PASS or a
password command. Option lookup follows rclone's order of sources.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping

from . import secretbox

DEFAULT_SECTION = "DEFAULT"
ENCRYPT_V0 = "RCLONE_ENCRYPT_V0:"
PASSWORD_ENV = "RCLONE_CONFIG_PASS"

ERR_WRONG_PASSWORD = "Couldn't decrypt configuration, most likely wrong password."
ERR_NO_PASSWORD = ("unable to decrypt configuration and not allowed to ask for password - "
                   "set RCLONE_CONFIG_PASS to your configuration password")
ERR_UNSUPPORTED = "unsupported configuration encryption - update rclone for support"

# Go's unicode.IsSpace, which strings.TrimSpace uses (Python's strip() differs slightly)
_GO_SPACE = ("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
             "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_VAR = re.compile(r"%\(([^)]+)\)s")
_MAX_PASSES = 200  # goconfig's limit on interpolation passes
_MAX_DEPTH = 64  # nested DEFAULT lookups; goconfig would overflow its stack instead


def _trim(s: str) -> str:
    return s.strip(_GO_SPACE)


def _blen(s: str) -> int:
    """Length in bytes, as Go measures strings."""
    return len(s.encode("utf-8", "surrogateescape"))


def _go_upper(s: str) -> str:
    """strings.ToUpper: per character, never growing ("ß" stays as it is)."""
    return "".join(u if len(u := c.upper()) == 1 else c for c in s)


# ---------------------------------------------------------------------------
# where the file is

def is_in_memory_path(path: str) -> bool:
    """rclone keeps the config in memory only for "", /dev/null and */notfound."""
    return path in ("", os.devnull) or os.path.basename(path) == "notfound"


def default_config_path(env: Mapping[str, str] | None = None) -> str:
    """RCLONE_CONFIG, else the first existing standard file, else the default place."""
    env = os.environ if env is None else env
    if "RCLONE_CONFIG" in env:
        return env["RCLONE_CONFIG"]
    home = env.get("HOME") or os.path.expanduser("~")
    xdg = env.get("XDG_CONFIG_HOME", "")
    xdg_path = os.path.join(xdg, "rclone", "rclone.conf") if xdg else ""
    home_path = os.path.join(home, ".config", "rclone", "rclone.conf") if home else ""
    hidden = os.path.join(home, ".rclone.conf") if home else ""
    for candidate in (xdg_path, home_path, hidden):
        if candidate and os.path.exists(candidate):
            return candidate
    return xdg_path or home_path or ".rclone.conf"


# ---------------------------------------------------------------------------
# encrypted files

def _config_key(password: str) -> bytes:
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("password contains invalid utf8 characters") from None
    if _trim(password) == "":
        raise ValueError("no characters in password")
    import hashlib  # lazily: OpenSSL and the Unicode tables are costly in RSS
    import unicodedata

    password = unicodedata.normalize("NFKC", password)
    return hashlib.sha256(f"[{password}][rclone-config]".encode()).digest()


def _password(env: Mapping[str, str], password_command: Callable[[], str] | None) -> str:
    if password_command is not None:
        return password_command().strip("\r\n")
    password = env.get(PASSWORD_ENV, "")
    if not password:
        raise ValueError(ERR_NO_PASSWORD)
    return password


def _encrypted_payload(data: bytes) -> bytes | None:
    """The base64 text after `RCLONE_ENCRYPT_V0:`, or None for a plain file."""
    lines = data.split(b"\n")
    for index, raw in enumerate(lines):
        line = _trim(raw.decode("utf-8", "surrogateescape"))
        if line == "" or line[0] in "#;":
            continue
        if line == ENCRYPT_V0:
            return b"\n".join(lines[index + 1:])
        if line.startswith("RCLONE_ENCRYPT_V"):
            raise ValueError(ERR_UNSUPPORTED)
        return None
    return None


def decrypt_config(data: bytes, env: Mapping[str, str] | None = None,
                   password_command: Callable[[], str] | None = None) -> tuple[bytes, bool]:
    """(plain INI bytes, was it encrypted). Plain files are returned unchanged."""
    payload = _encrypted_payload(data)
    if payload is None:
        return data, False
    try:
        box = base64.b64decode(payload.replace(b"\r", b"").replace(b"\n", b""), validate=True)
    except binascii.Error as e:
        raise ValueError(f"failed to load base64 encoded data: {e}") from None
    if len(box) < secretbox.NONCE_SIZE + secretbox.OVERHEAD:
        raise ValueError("configuration data too short")
    key = _config_key(_password(os.environ if env is None else env, password_command))
    nonce, sealed = box[:secretbox.NONCE_SIZE], box[secretbox.NONCE_SIZE:]
    try:
        return secretbox.open_(sealed, nonce, key), True
    except ValueError:
        raise ValueError(ERR_WRONG_PASSWORD) from None


def encrypt_config(plain: bytes, password: str, nonce: bytes | None = None) -> bytes:
    """An encrypted rclone.conf holding plain, in rclone's layout (nonce is for tests)."""
    nonce = os.urandom(secretbox.NONCE_SIZE) if nonce is None else nonce
    box = nonce + secretbox.seal(plain, nonce, _config_key(password))
    header = f"# Encrypted rclone configuration File\n\n{ENCRYPT_V0}\n".encode()
    return header + base64.b64encode(box)


# ---------------------------------------------------------------------------
# the INI dialect

def _quoted_key(line: str) -> tuple[str, int]:
    """(key, index of the separator) for a key written in quotes."""
    quote = '"""' if line.startswith('"""') and _blen(line) >= 6 else line[0]
    close = line.find(quote, len(quote))
    if close < 0:
        raise ValueError(f"could not parse line: {line}")
    sep = _find_any(line, "=:", close)
    if sep < 0:
        raise ValueError(f"could not parse line: {line}")
    return line[len(quote):close], sep


def _find_any(s: str, chars: str, start: int = 0) -> int:
    hits = [i for i in (s.find(c, start) for c in chars) if i >= 0]
    return min(hits) if hits else -1


def _split_key(line: str) -> tuple[str, int]:
    if line[0] in '"`':
        return _quoted_key(line)
    sep = _find_any(line, "=:")
    if sep <= 0:
        raise ValueError(f"could not parse line: {line}")
    return _trim(line[:sep]), sep


def _unwrap_value(raw: str, line: str) -> str:
    """Strip `...` or \"\"\"...\"\"\" (first to last quote); other quotes stay."""
    value = _trim(raw)
    quote = ""
    if _blen(value) >= 2 and value[0] == "`":
        quote = "`"
    elif _blen(value) >= 6 and value.startswith('"""'):
        quote = '"""'
    if not quote:
        return value
    close = value.rfind(quote, len(quote))
    if close < 0:
        raise ValueError(f"could not parse line: {line}")
    return value[len(quote):close]


class RcloneConfig:
    """A parsed rclone.conf. get() answers as rclone's config file getter does."""

    def __init__(self, path: str = "", encrypted: bool = False) -> None:
        self.path = path
        self.encrypted = encrypted
        self._data: dict[str, dict[str, str]] = {}

    @classmethod
    def load(cls, path: str, *, env: Mapping[str, str] | None = None,
             password_command: Callable[[], str] | None = None) -> RcloneConfig:
        """Read path; a missing file or an in-memory path gives an empty config."""
        if is_in_memory_path(path):
            return cls(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return cls(path)
        return cls.from_bytes(data, path=path, env=env, password_command=password_command)

    @classmethod
    def from_bytes(cls, data: bytes, *, path: str = "", env: Mapping[str, str] | None = None,
                   password_command: Callable[[], str] | None = None) -> RcloneConfig:
        plain, encrypted = decrypt_config(data, env, password_command)
        config = cls(path, encrypted)
        config._parse(plain)
        return config

    @classmethod
    def from_text(cls, text: str) -> RcloneConfig:
        return cls.from_bytes(text.encode("utf-8", "surrogateescape"))

    # -- parsing ----------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        data = data.removeprefix(b"\xef\xbb\xbf")
        section, count = DEFAULT_SECTION, 1
        for raw in data.decode("utf-8", "surrogateescape").split("\n"):
            line = _trim(raw)
            if line == "" or line[0] in "#;":
                continue
            if line[0] == "[" and line[-1] == "]":
                section, count = _trim(line[1:-1]), 1
                self._data.setdefault(section or DEFAULT_SECTION, {})
                continue
            if section == "":
                raise ValueError("empty section name not allowed")
            key, sep = _split_key(line)
            if key == "-":  # goconfig numbers list items
                key, count = f"#{count}", count + 1
            self._set(section, key, _unwrap_value(line[sep + 1:], line))

    def _set(self, section: str, key: str, value: str) -> None:
        if key:
            self._data.setdefault(section, {})[key] = value

    # -- queries ----------------------------------------------------------

    def sections(self) -> list[str]:
        return list(self._data)

    def has_section(self, name: str) -> bool:
        return name in self._data

    def keys(self, section: str) -> list[str]:
        """The section's own keys in file order (no sub-section fallback)."""
        return list(self._data.get(section, {}))

    def get(self, section: str, key: str) -> str | None:
        """The value as rclone sees it (interpolated, with `a.b` -> `a` fallback), or None.

        An empty string is returned as such; rclone's option lookup treats it as unset.
        """
        return self._get(section or DEFAULT_SECTION, key, 0)

    def dump(self) -> dict[str, dict[str, str]]:
        """What `rclone config dump` prints: every section's own keys, interpolated."""
        return {s: {k: self._get(s, k, 0) or "" for k in keys} for s, keys in self._data.items()}

    def _get(self, section: str, key: str, depth: int) -> str | None:
        keys = self._data.get(section)
        if keys is None or depth > _MAX_DEPTH:
            return None
        if key not in keys:
            dot = section.rfind(".")
            return self._get(section[:dot], key, depth) if dot >= 0 else None
        return self._interpolate(section, keys[key], depth)

    def _interpolate(self, section: str, value: str, depth: int) -> str:
        for _ in range(_MAX_PASSES):
            match = _VAR.search(value)
            if not match:
                break
            token = match.group(0)
            # goconfig trims character sets, so "%(hosts)s" looks up "host"
            name = token.lstrip("%(").rstrip(")s")
            found = self._get(DEFAULT_SECTION, name, depth + 1)
            if found is None:
                found = ""
                if section != DEFAULT_SECTION:
                    found = self._data[section].get(name, "")
            value = value.replace(token, found)
        return value


class ReloadingConfig(RcloneConfig):
    """rclone.conf as rclone's config file storage keeps it: read again when its size,
    modification time or inode changed, so a section written after start-up is found (the order
    the docs give for a managed plugin: install it, then save rclone.conf). A file that fails to
    parse keeps the last good contents, with an error logged; at start-up it is an error."""

    def __init__(self, path: str, *, env: Mapping[str, str] | None = None,
                 password_command: Callable[[], str] | None = None) -> None:
        super().__init__(path)
        self._env = env
        self._password_command = password_command
        self._signature: tuple[int, int, int] | None = (-1, -1, -1)
        self._reload_lock = threading.Lock()
        self._refresh(first=True)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _refresh(self, first: bool = False) -> None:
        if is_in_memory_path(self.path):
            return
        sig = self._stat()
        if sig == self._signature:
            return
        with self._reload_lock:
            if sig == self._signature:
                return
            try:
                fresh = RcloneConfig.load(self.path, env=self._env, password_command=self._password_command)
            except ValueError as e:
                if first:
                    raise
                logging.getLogger("pyclone").error("config file %s changed but cannot be read (%s): "
                                                   "keeping what was read before", self.path, e)
                self._signature = sig
                return
            self._data, self.encrypted, self._signature = fresh._data, fresh.encrypted, sig

    def sections(self) -> list[str]:
        self._refresh()
        return super().sections()

    def has_section(self, name: str) -> bool:
        self._refresh()
        return super().has_section(name)

    def keys(self, section: str) -> list[str]:
        self._refresh()
        return super().keys(section)

    def get(self, section: str, key: str) -> str | None:
        self._refresh()
        return super().get(section, key)

    def dump(self) -> dict[str, dict[str, str]]:
        self._refresh()
        return super().dump()


# ---------------------------------------------------------------------------
# option lookup

def remote_env(remote: str, key: str) -> str:
    """RCLONE_CONFIG_<REMOTE>_<KEY>; dashes in the remote name are kept."""
    return "RCLONE_CONFIG_" + _go_upper(remote + "_" + key.replace("-", "_"))


def backend_env(backend: str, key: str) -> str:
    """RCLONE_<BACKEND>_<KEY>."""
    return "RCLONE_" + _go_upper(f"{backend}-{key}".replace("-", "_"))


def backend_flag(backend: str, key: str) -> str:
    """The backend flag without dashes in front, e.g. `sftp-key-use-agent`."""
    return f"{backend}-{key.replace('_', '-')}"


def _from_config(config: RcloneConfig | None, remote: str, key: str) -> str | None:
    if config is None or not remote:
        return None
    return config.get(remote, key) or None  # an empty value in the file means unset


def lookup_option(remote: str, backend: str, key: str, *, conn_params: Mapping[str, str],
                  cli_flags: Mapping[str, str], env: Mapping[str, str],
                  config: RcloneConfig | None,
                  is_default: Callable[[str], bool] | None = None) -> str | None:
    """An option's value from the first source that has it, or None (use the default).

    Order (rclone 1.75.2): connection string, `--backend-key` flag, RCLONE_<BACKEND>_<KEY>
    unless it means the option's default, RCLONE_CONFIG_<REMOTE>_<KEY>, RCLONE_<BACKEND>_<KEY>,
    config file section. rclone reads RCLONE_<BACKEND>_<KEY> into the flag's value, which
    outranks the remote's variable when it differs from the default (1.60 put the remote's
    variable first). `is_default(value)` tells (default: value == ""). remote '' skips the
    remote's own sources (env and file).
    """
    if key in conn_params:
        return conn_params[key]
    flag = backend_flag(backend, key)
    if flag in cli_flags:
        return cli_flags[flag]
    from_backend_env = env.get(backend_env(backend, key)) if backend else None
    if from_backend_env is not None and not (is_default or _is_empty)(from_backend_env):
        return from_backend_env
    if remote and remote_env(remote, key) in env:
        return env[remote_env(remote, key)]
    if from_backend_env is not None:
        return from_backend_env
    return _from_config(config, remote, key)


def _is_empty(value: str) -> bool:
    return value == ""


def remote_type(remote: str, *, conn_params: Mapping[str, str], env: Mapping[str, str],
                config: RcloneConfig | None) -> str | None:
    """A named remote's backend type: connection string, then env, then config file."""
    if "type" in conn_params:
        return conn_params["type"]
    if remote and remote_env(remote, "type") in env:
        return env[remote_env(remote, "type")]
    return _from_config(config, remote, "type")
