"""The OpenSSH command lines for an sftp remote: rclone's sftp options as `ssh -o` settings.

rclone's own SSH client reads no ssh_config, tries no default identity and validates no host
key unless told to, so the command starts with `-F none` and says everything itself. Secrets
never appear here: passwords and key passphrases go through lib/askpass; an inline key
(`key_pem`) or certificate (`pubkey`) is written 0600 into the private runtime directory.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import logging
import os
import shlex
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

from ...lib.askpass import AskpassServer, helper_command, plugin_command

log = logging.getLogger("pyclone")

NO_VALIDATION_NOTICE = ('No host key validation is being performed. Set known_hosts_file (to "none" to silence '
                        'this notice) or use --sftp-pin-host-key to enable it. See: '
                        'https://rclone.org/sftp/#host-key-validation')
_INSECURE_CIPHERS = "+aes128-cbc,aes192-cbc,aes256-cbc,3des-cbc"
_INSECURE_KEX = "+diffie-hellman-group-exchange-sha1,diffie-hellman-group-exchange-sha256"

_TAG_KEY = os.urandom(32)
_runtime_lock = threading.Lock()
_runtime: dict[str, Any] = {}


def runtime_dir() -> str:
    """A private (0700) directory for control sockets, inline keys and the askpass helper,
    on a file system that allows exec (the helper is a script); removed at exit."""
    with _runtime_lock:
        if "dir" not in _runtime:
            bases = [os.environ.get("PYCLONE_RUNTIME_DIR", ""), "/run" if os.geteuid() == 0 else "",
                     os.environ.get("XDG_RUNTIME_DIR", ""), tempfile.gettempdir(), os.path.expanduser("~")]
            for base in bases:
                if not base or not os.path.isdir(base) or not os.access(base, os.W_OK):
                    continue
                if os.statvfs(base).f_flag & os.ST_NOEXEC:
                    continue
                _runtime["dir"] = tempfile.mkdtemp(prefix="pyclone-ssh-", dir=base)
                break
            else:
                raise OSError("sftp: no directory that allows exec for the askpass helper "
                              "(set PYCLONE_RUNTIME_DIR)")
            atexit.register(shutil.rmtree, _runtime["dir"], True)
        return _runtime["dir"]


def askpass() -> tuple[AskpassServer, str]:
    """The process's askpass server and the helper executable for SSH_ASKPASS."""
    d = runtime_dir()
    with _runtime_lock:
        if "askpass" not in _runtime:
            server = AskpassServer(d)
            _runtime["askpass"] = (server, helper_command(d, server.path))
        return _runtime["askpass"]


# rclone's client (Go x/crypto/ssh) has no sntrup761x25519, OpenSSH's first choice before 9.9,
# which costs ~100 ms of CPU per connect here (far more on a Pi): unless key_exchange says
# otherwise it is taken out of OpenSSH's own list (a '-' list: no query needed; names this ssh
# does not know are ignored), which leaves mlkem768x25519 first where ssh has it, as Go's
_KEX_WITHOUT = "-sntrup761x25519-sha512@openssh.com,sntrup761x25519-sha512"


# and the ciphers in the order rclone's client prefers them: AES-GCM first where the CPU has AES
# instructions, ChaCha20-Poly1305 first where it has not (a Raspberry Pi 4, say)
_AES_FIRST = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
              "aes128-ctr", "aes192-ctr", "aes256-ctr")


def _cpu_has_aes() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("flags", "features")):
                    return "aes" in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False


def _supported(kind: str, preference: tuple[str, ...]) -> str:
    with _runtime_lock:
        if kind not in _runtime:
            try:
                import subprocess

                out = subprocess.run(["ssh", "-Q", kind], capture_output=True, text=True, timeout=10,
                                     check=False).stdout.split()
            except (OSError, subprocess.SubprocessError):
                out = []
            _runtime[kind] = ",".join(k for k in preference if k in out)
        return _runtime[kind]


def _default_ciphers() -> str:
    order = _AES_FIRST if _cpu_has_aes() else (_AES_FIRST[2], *_AES_FIRST[:2], *_AES_FIRST[3:])
    return _supported("cipher", order)


# OpenSSH turns Nagle's algorithm off only for interactive sessions, and an SFTP session is
# not one: its small key-exchange, auth and channel-setup packets then wait on the peer's
# delayed ACKs (~40 ms each, twice per connect). So the TCP connection is made by this helper,
# with TCP_NODELAY (as rclone's Go client has it) and keepalives, and handed to ssh as a file
# descriptor (ProxyUseFdpass). The server's side still holds back small packets (sshd's own
# Nagle: after a pubkey login it sends two DEBUG messages, the second with the channel
# confirmation) until our ACK, which the kernel delays 40 ms: so a child of the helper keeps a
# duplicate of the socket for the 2 s of the handshake and keeps TCP_QUICKACK set on it (the
# kernel drops it again by itself). Connect: ~134 -> ~84 ms here. It must not contain '%' (ssh
# expands those in ProxyCommand).
_CONNECT = ("import socket as S,sys\n"
            "h,p,t=sys.argv[1],int(sys.argv[2]),float(sys.argv[3])\n"
            "try:\n"
            " s=S.create_connection((h,p),t)\n"
            "except OSError as e:\n"
            " sys.exit('ssh: connect to host '+h+' port '+str(p)+': '+(e.strerror or str(e)))\n"
            "s.setsockopt(S.IPPROTO_TCP,S.TCP_NODELAY,1)\n"
            "s.setsockopt(S.SOL_SOCKET,S.SO_KEEPALIVE,1)\n"
            "S.socket(fileno=1).sendmsg([b'x'],[(S.SOL_SOCKET,S.SCM_RIGHTS,s.fileno().to_bytes(4,sys.byteorder))])\n"
            "import os,time\n"
            "if os.fork()==0:\n"
            " os.setsid()\n"
            " for _ in range(1000):\n"
            "  try:\n"
            "   s.setsockopt(S.IPPROTO_TCP,S.TCP_QUICKACK,1)\n"
            "  except OSError:\n"
            "   break\n"
            "  time.sleep(0.002)\n"
            " os._exit(0)\n")


def _proxy_command(contimeout: float) -> str:
    import sys

    return f"{shlex.quote(sys.executable)} -I -S -c {shlex.quote(_CONNECT)} %h %p {max(1.0, contimeout):g}"


def _proxy(opt: dict[str, Any]) -> tuple[str, str, int, str] | None:
    """(kind, host, port, "user:password" or "") from rclone's socks_proxy ([user[:pass]@]host:port)
    or http_proxy (http://[user:pass@]host:port), or None."""
    socks, http = opt["socks_proxy"], opt["http_proxy"]
    if socks and http:
        raise ValueError("sftp: set socks_proxy or http_proxy, not both")
    if not socks and not http:
        return None
    from urllib.parse import unquote, urlsplit

    try:
        u = urlsplit(http if http else "socks5://" + socks)
        port = u.port
    except ValueError as e:
        raise ValueError(f"sftp: bad {'http_proxy' if http else 'socks_proxy'}: {e}") from None
    if http and u.scheme not in ("http", ""):
        raise ValueError(f"sftp: http_proxy must be an http:// URL, not {u.scheme}://")
    if not u.hostname:
        raise ValueError(f"sftp: {'http_proxy' if http else 'socks_proxy'} names no host")
    creds = ""
    if u.username is not None:
        creds = f"{unquote(u.username)}:{unquote(u.password or '')}"
    return ("http" if http else "socks5", u.hostname, port or (8080 if http else 1080), creds)


def _expand(path: str) -> str:
    return os.path.expandvars(os.path.expanduser(path)) if path else ""


def _space_list(value: str) -> list[str]:
    """rclone's SpaceSepList: space separated, with double quotes for items holding spaces."""
    return shlex.split(value) if value else []


@dataclass
class SshConfig:
    """What one connection needs; equal configs share connections (pool.py)."""

    host: str
    port: int
    user: str
    argv: list[str]  # ssh and its options, up to (not including) the destination
    external: bool = False  # the user's own `ssh` command line: no ControlMaster, no askpass
    password: str = field(default="", repr=False)
    passphrase: str = field(default="", repr=False)
    proxy_auth: str = field(default="", repr=False)  # user:password for socks_proxy / http_proxy
    subsystem: str = "sftp"
    server_command: str = ""
    env: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # written into the runtime dir: removed at close
    validates_host_key: bool = False

    @property
    def label(self) -> str:
        """How errors name the server (never a secret)."""
        return f"{self.user}@{self.host}:{self.port}" if not self.external else f"ssh {shlex.join(self.argv[1:3])}..."

    def key(self) -> str:
        h = hashlib.sha256()
        for part in (*self.argv, self.host, str(self.port), self.user, self.password, self.passphrase, self.proxy_auth,
                     self.subsystem, self.server_command, *sorted(self.env.items())):
            h.update(str(part).encode("utf-8", "surrogateescape") + b"\0")
        return h.hexdigest()

    def session_argv(self, control: str | None) -> list[str]:
        """The command that starts the SFTP session (and, with `control`, the ControlMaster)."""
        if self.external:
            return [*self.argv, self.server_command] if self.server_command else [*self.argv, "-s", self.subsystem]
        argv = list(self.argv)
        if control:
            argv += ["-o", "ControlMaster=yes", "-o", f"ControlPath={control}", "-o", "ControlPersist=no"]
        argv += ["-p", str(self.port), "-l", self.user]
        if self.server_command:
            return [*argv, "--", self.host, self.server_command]
        return [*argv, "-s", "--", self.host, self.subsystem]

    def exec_argv(self, control: str | None, command: str) -> list[str]:
        """A remote command: over the ControlMaster's connection where there is one."""
        if self.external:
            return [*self.argv, command]
        argv = list(self.argv)
        if control:
            argv += ["-o", "ControlMaster=no", "-o", f"ControlPath={control}"]
        return [*argv, "-p", str(self.port), "-l", self.user, "--", self.host, command]

    def child_env(self, askpass_helper: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LC_ALL": "C",
               "HOME": os.environ.get("HOME", "/root")}
        env.update(self.env)
        if not self.external and (self.password or self.passphrase):
            env["SSH_ASKPASS"] = askpass_helper
            env["SSH_ASKPASS_REQUIRE"] = "force"
            env["DISPLAY"] = ":0"  # older OpenSSH asks for one before using SSH_ASKPASS
        return env

    def answer(self, prompt: str) -> str | None:
        """askpass: the secret for one of ssh's prompts."""
        low = prompt.lower()
        if low.startswith("proxy credentials"):
            return self.proxy_auth or None
        if "passphrase" in low:
            return self.passphrase or None
        if "password" in low or low.endswith(":"):
            return self.password or None
        return None

    def close(self) -> None:
        for path in self.files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _private_file(name: str, content: str) -> str:
    path = os.path.join(runtime_dir(), name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content if content.endswith("\n") else content + "\n")
    return path


def build(opt: dict[str, Any], ctx_contimeout: float) -> SshConfig:
    """An SshConfig from the sftp backend's parsed options (rclone's names), or ValueError."""
    if opt["ssh"]:
        argv = _space_list(opt["ssh"])
        if opt["set_env"]:
            raise ValueError("ssh external: can't set environment variables")
        if opt["host"] or opt["user"]:
            log.warning("sftp: the ssh option is set, so host, user and port are not used")
        log.log(25, "%s", NO_VALIDATION_NOTICE)
        return SshConfig(opt["host"] or "ssh", int(opt["port"]), opt["user"], argv, external=True,
                         subsystem=opt["subsystem"] or "sftp", server_command=opt["server_command"])
    if shutil.which("ssh") is None:
        from . import NO_SSH

        raise ValueError(NO_SSH)
    if not opt["host"]:
        raise ValueError('sftp: option "host" is required')
    if opt["use_insecure_cipher"] and (opt["ciphers"] or opt["key_exchange"]):
        raise ValueError("use_insecure_cipher must be false if ciphers or key_exchange are set in advanced "
                         "configuration")
    proxy = _proxy(opt)
    if opt["ask_password"]:
        raise ValueError("sftp: ask_password needs a terminal, which the plugin has not; set pass instead")
    # the runtime files of one exact configuration are one set, named without revealing anything
    tag = hmac.new(_TAG_KEY, repr(sorted(opt.items())).encode("utf-8", "surrogateescape"),
                   "sha256").hexdigest()[:16]
    files: list[str] = []
    argv = ["ssh", "-F", "none", "-T", "-x", "-a", "-e", "none", "-o", "BatchMode=no",
            "-o", "LogLevel=ERROR", "-o", f"ConnectTimeout={max(1, int(ctx_contimeout))}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ClearAllForwardings=yes",
            "-o", "NumberOfPasswordPrompts=1", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no", "-o", "HashKnownHosts=no",
            "-o", "ProxyUseFdpass=yes"]
    if proxy is None:
        argv += ["-o", f"ProxyCommand={_proxy_command(ctx_contimeout)}"]
    else:
        kind, phost, pport, creds = proxy
        auth = f" --auth-socket {shlex.quote(askpass()[0].path)}" if creds else ""
        run = plugin_command(f"proxy-connect %h %p {max(1.0, ctx_contimeout):g} {kind} {shlex.quote(phost)} "
                             f"{pport}{auth}")
        argv += ["-o", f"ProxyCommand={run}"]
    password = opt["pass"]
    key_file = _expand(opt["key_file"])
    if opt["key_pem"]:
        key_file = _private_file(f"key-{tag}", opt["key_pem"].replace("\\n", "\n"))
        files.append(key_file)
    cert = _expand(opt["pubkey_file"])
    if opt["pubkey"]:
        cert = _private_file(f"cert-{tag}.pub", opt["pubkey"])
        files.append(cert)
    agent = bool(opt["key_use_agent"]) or not (password or key_file)
    if agent and not os.environ.get("SSH_AUTH_SOCK"):
        raise ValueError("couldn't connect to ssh-agent: SSH agent requested but SSH_AUTH_SOCK not-specified")
    env: dict[str, str] = {}
    if agent:
        env["SSH_AUTH_SOCK"] = os.environ["SSH_AUTH_SOCK"]
    else:
        argv += ["-o", "IdentityAgent=none"]
    if key_file:
        argv += ["-i", key_file, "-o", "IdentitiesOnly=yes"]
        if cert:
            argv += ["-o", f"CertificateFile={cert}"]
    if not key_file and not agent:
        argv += ["-o", "PubkeyAuthentication=no"]
    if password:
        argv += ["-o", "PasswordAuthentication=yes", "-o", "KbdInteractiveAuthentication=yes"]
    else:
        argv += ["-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no"]
    validates = True
    known_hosts = _expand(opt["known_hosts_file"])
    host_keys = [k.strip() for k in opt["host_keys"] if k.strip()]
    if known_hosts and known_hosts != "none":
        argv += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes"]
    elif host_keys and known_hosts != "none":
        host = opt["host"] if int(opt["port"]) == 22 else f"[{opt['host']}]:{opt['port']}"
        algos = []
        lines = []
        for k in host_keys[:16]:
            parts = k.split()
            if len(parts) < 2:
                raise ValueError(f"sftp: host_keys entry {k!r} is not \"algorithm base64-key\"")
            if "-cert-" in parts[0]:
                raise ValueError("sftp: host_keys may not hold certificates")
            algos += ["rsa-sha2-512", "rsa-sha2-256"] if parts[0] == "ssh-rsa" else [parts[0]]
            lines.append(f"{host} {parts[0]} {parts[1]}")
        path = _private_file(f"known-{tag}", "\n".join(lines))
        files.append(path)
        argv += ["-o", f"UserKnownHostsFile={path}", "-o", "StrictHostKeyChecking=yes"]
        if not opt["host_key_algorithms"]:
            argv += ["-o", "HostKeyAlgorithms=" + ",".join(dict.fromkeys(algos))]
    elif opt["pin_host_key"] and known_hosts != "none":
        # trust on first use for as long as the plugin runs (rclone also writes it to rclone.conf)
        path = os.path.join(runtime_dir(), f"pinned-{tag}")
        argv += ["-o", f"UserKnownHostsFile={path}", "-o", "StrictHostKeyChecking=accept-new"]
        log.warning("sftp %s: pin_host_key pins the host key for as long as the plugin runs; pyclone-docker "
                    "does not write it into rclone.conf as host_keys (set host_keys or known_hosts_file to keep it)",
                    opt["host"])
        files.append(path)
    else:
        validates = False
        argv += ["-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"]
        if known_hosts != "none":
            log.log(25, "%s", NO_VALIDATION_NOTICE)
    for name, ssh_name in (("ciphers", "Ciphers"), ("key_exchange", "KexAlgorithms"), ("macs", "MACs"),
                           ("host_key_algorithms", "HostKeyAlgorithms")):
        if opt[name]:
            argv += ["-o", f"{ssh_name}={','.join(_space_list(opt[name]))}"]
    if not opt["key_exchange"] and not opt["use_insecure_cipher"]:
        argv += ["-o", f"KexAlgorithms={_KEX_WITHOUT}"]
    if not opt["ciphers"] and not opt["use_insecure_cipher"] and (ciphers := _default_ciphers()):
        argv += ["-o", f"Ciphers={ciphers}"]
    if opt["use_insecure_cipher"]:
        argv += ["-o", f"Ciphers={_INSECURE_CIPHERS}", "-o", f"KexAlgorithms={_INSECURE_KEX}"]
    for item in _space_list(opt["set_env"]):
        if "=" not in item:
            raise ValueError(f"sftp: set_env item {item!r} is not VAR=value")
        argv += ["-o", f"SetEnv={item}"]
    return SshConfig(opt["host"], int(opt["port"]), opt["user"], argv, password=password,
                     passphrase=opt["key_file_pass"], proxy_auth=proxy[3] if proxy else "",
                     subsystem=opt["subsystem"] or "sftp",
                     server_command=opt["server_command"], env=env, files=files, validates_host_key=validates)
