"""Command line: `serve docker`, `obscure`, `reveal`, `version`, with rclone's flag syntax.

Flags are rclone's (`--vfs-cache-mode full`, `--allow-other`, `--allow-other=false`, `-vv`,
`-o opt`, backend flags such as `--sftp-host h`), and every flag can also come from the
environment as `RCLONE_<FLAG>` (the managed plugin sets RCLONE_BASE_DIR, RCLONE_VERBOSE...).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import __version__, backends, parsers
from .flags import ALL_OPTIONS, VOLUME_OPTIONS, Option, OptionValues, parse_env_list

if TYPE_CHECKING:
    from .docker.driver import Driver
    from .rc import RcServer

USAGE = """\
Usage:
  pyclone-docker serve docker [flags]   serve the Docker volume plugin API
  pyclone-docker obscure PASSWORD        obscure a password for rclone.conf or volume options
  pyclone-docker reveal OBSCURED         reveal an obscured password
  pyclone-docker version                 print the version
  pyclone-docker selftest                known-answer tests of the native crypto
  pyclone-docker rc METHOD [key=value]   call the remote control of a running plugin (--rc)

Run 'pyclone-docker serve docker --help' for the flags.
"""


class UsageError(Exception):
    pass


@dataclass
class ParsedFlags:
    values: OptionValues
    explicit: set[str] = field(default_factory=set)
    backend_flags: dict[str, str] = field(default_factory=dict)
    verbose: int = 0
    quiet: bool = False
    help: bool = False
    positional: list[str] = field(default_factory=list)


def _backend_flag(name: str) -> tuple[str, str] | None:
    """'sftp-host' -> ('sftp-host', kind) when it names a registered backend option."""
    found = backends.backend_option(name)  # imports only the backend the prefix names
    return None if found is None else (name, found[1].kind)


def parse_flags(argv: Sequence[str], env: Mapping[str, str]) -> ParsedFlags:
    pf = ParsedFlags(OptionValues.defaults(ALL_OPTIONS))
    _apply_env(pf, env)
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in ("-h", "--help"):
            pf.help = True
        elif arg in ("-q", "--quiet"):
            pf.quiet = True
        elif arg.startswith("-v") and set(arg[1:]) == {"v"}:
            pf.verbose += len(arg) - 1
        elif arg.startswith("--verbose"):
            _, eq, val = arg.partition("=")
            pf.verbose = int(val) if eq else pf.verbose + 1
        elif arg == "-o" or (arg.startswith("-o") and not arg.startswith("--")):
            val = arg[2:] if len(arg) > 2 else _need(args, i, arg)
            i += 0 if len(arg) > 2 else 1
            pf.values.values["option"] = [*list(pf.values.option), val]
            pf.explicit.add("option")
        elif arg.startswith("--"):
            name, eq, val = arg[2:].partition("=")
            key = name.replace("-", "_")
            opt = ALL_OPTIONS.get(key)
            if opt is not None:
                if not eq and opt.kind != "bool":
                    val, i = _need(args, i, arg), i + 1
                elif not eq:
                    val = "true"
                _set(pf, opt, val, arg)
                continue
            backend = _backend_flag(name)
            if backend is None:
                raise UsageError(f"unknown flag: --{name}")
            if not eq:
                if backend[1] == "bool":
                    val = "true"
                else:
                    val, i = _need(args, i, arg), i + 1
            pf.backend_flags[name] = val
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown shorthand flag: {arg}")
        else:
            pf.positional.append(arg)
    return pf


def _need(args: list[str], i: int, flag: str) -> str:
    if i >= len(args):
        raise UsageError(f"flag needs an argument: {flag}")
    return args[i]


# rclone 1.75.2 parses the flags of its option groups (mount, vfs, main, rc) through its config
# system, which words a failure as `parsing "X" as <Go type> failed: <why>`; serve docker's own
# flags (--socket-gid, --forget-state, ...) are plain pflag ones and give <why> alone
_GO_TYPES = {"bool": "bool", "int": "int", "uint32": "uint32", "filemode": "vfscommon.FileMode",
             "cachemode": "fs.Enum[github.com/rclone/rclone/vfs/vfscommon.cacheModeChoices]"}


def _flag_error(opt: Option, raw: str, why: str) -> str:
    if opt.group == "serve" or opt.kind not in _GO_TYPES:
        return why  # durations and sizes already say it rclone's way
    if opt.kind in ("int", "uint32") and "out of range" not in why:
        digits = raw.lstrip("+-")
        why = "expected newline" if digits[:1].isdigit() else "expected integer"  # Go's fmt.Sscan
    elif opt.kind == "cachemode":
        why = f'invalid choice "{raw}" from: off, minimal, writes, full'
    return f'parsing "{raw}" as {_GO_TYPES[opt.kind]} failed: {why}'


def _set(pf: ParsedFlags, opt: Option, raw: str, source: str) -> None:
    try:
        if opt.kind == "csv":
            pf.values.values[opt.name] = list(pf.values.values.get(opt.name) or []) + opt.parse(raw)
        elif opt.kind == "strings" and not source.startswith("-"):  # RCLONE_CA_CERT=a.pem,b.pem
            for item in parse_env_list(raw):
                pf.values.set(opt.name, item)
        else:
            pf.values.set(opt.name, raw)
    except ValueError as e:
        if source.startswith("--"):  # as pflag names it: the flag, not the `--flag=value` argument
            source = opt.flag
        raise UsageError(f'invalid argument "{raw}" for "{source}" flag: {_flag_error(opt, raw, str(e))}') from None
    pf.explicit.add(opt.name)


def _apply_env(pf: ParsedFlags, env: Mapping[str, str]) -> None:
    for name, opt in ALL_OPTIONS.items():
        raw = env.get("RCLONE_" + name.upper())
        if raw is not None and raw != "":
            _set(pf, opt, raw, "RCLONE_" + name.upper())
    for var in ("RCLONE_VERBOSE", "PYCLONE_VERBOSE"):  # the managed plugin's setting is PYCLONE_VERBOSE
        verbose = env.get(var, "")
        if verbose.strip():
            try:
                pf.verbose = int(verbose)
            except ValueError:
                raise UsageError(f"{var} must be a number, not {verbose!r}") from None
    for key, value in env.items():
        if key.startswith("RCLONE_") and not key.startswith("RCLONE_CONFIG"):
            flag = key[len("RCLONE_"):].lower().replace("_", "-")
            found = backends.backend_option(flag)
            # rclone 1.75.2: the variable is the flag's value unless it reads as the default;
            # then it ranks below RCLONE_CONFIG_<REMOTE>_<KEY> (rcconfig.lookup_option reads it)
            if found is not None and not found[1].means_default(value):
                pf.backend_flags.setdefault(flag, value)


def default_cache_dir(env: Mapping[str, str]) -> str:
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rclone")


def serve_help() -> str:
    lines = ["Usage:\n  pyclone-docker serve docker [flags]\n", "Flags:"]
    for opt in ALL_OPTIONS.values():
        kind = "" if opt.kind == "bool" else f" {opt.kind}"
        note = " (ignored on Linux)" if opt.ignored else " (no effect yet)" if opt.noop else ""
        lines.append(f"  {opt.flag}{kind:<12} {opt.help}{note}")
    lines.append("  -o, --option stringArray  Option for libfuse (repeat if required)")
    lines.append("  -v, --verbose count       Print lots more stuff (repeat for more)")
    return "\n".join(lines) + "\n"


def lock_cache_dir(cache_dir: str) -> int:
    """One plugin per cache dir: a second one would corrupt the state and caches."""
    fd = os.open(os.path.join(cache_dir, "docker-plugin.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(f"another pyclone-docker is already using cache dir {cache_dir} "
                         "(use --cache-dir to run a second one)") from None
    return fd


def serve_docker(argv: Sequence[str]) -> int:
    import logging

    from . import fs as fsmod
    from . import log as logmod
    from . import rcconfig
    from .backends.base import BackendContext
    from .docker.driver import Driver
    from .docker.serve import PluginServer, open_listener
    from .docker.state import StateFile

    env = dict(os.environ)
    pf = parse_flags(argv, env)
    if pf.help:
        sys.stdout.write(serve_help())
        return 0
    if pf.positional:
        raise UsageError(f"unexpected arguments: {' '.join(pf.positional)}")
    v = pf.values
    if v.dump:  # rclone: --dump sets -vv, whatever -q, -v or --log-level say
        logmod.setup(2, "", v.log_file)
        logging.getLogger("pyclone").log(logmod.NOTICE, "Automatically setting -vv as --dump is enabled")
    else:
        logmod.setup(0 if pf.quiet else pf.verbose, v.log_level, v.log_file)
    if noop := fsmod.no_effect_flags(v, pf.backend_flags):
        logging.getLogger("pyclone").warning("%s %s no effect yet in pyclone-docker (accepted as rclone accepts it, "
                                             "ignored)", ", ".join(noop), "has" if len(noop) == 1 else "have")
    cwd = os.getcwd()  # libfuse3 chdirs to / on the first mount: resolve paths now
    cache_dir = os.path.abspath(v.cache_dir or default_cache_dir(env))
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    lock_fd = lock_cache_dir(cache_dir)
    base_dir = os.path.abspath(v.base_dir)
    config_path = v.config or rcconfig.default_config_path(env)
    try:
        config = rcconfig.ReloadingConfig(config_path, env=env)  # read again when it changes, as rclone
    except ValueError as e:
        raise UsageError(f"cannot read config file {config_path}: {e}") from None
    fs_ctx = fsmod.FsContext(config=config, env=env, cli_flags=pf.backend_flags, cwd=cwd,
                             backend=BackendContext.from_values(v))
    vol_defaults = OptionValues({k: v.values[k] for k in VOLUME_OPTIONS})
    driver = Driver(base_dir, StateFile(cache_dir), vol_defaults, frozenset(pf.explicit), fs_ctx,
                    cache_dir=cache_dir, transfers=max(1, int(v.transfers)),
                    buffer_size=max(0, int(v.buffer_size)))
    rc_server = None
    try:
        rc_server = _rc_server(pf, driver)  # first: a taken --rc-addr fails before anything exists
        listener = open_listener(v.socket_addr, int(v.socket_gid), bool(v.no_spec))
        return PluginServer(driver, listener, bool(v.forget_state), rc=rc_server).run()
    finally:
        if rc_server is not None:
            rc_server.close()
        os.close(lock_fd)


def _rc_server(pf: ParsedFlags, driver: Driver) -> RcServer | None:
    """--rc: rclone's remote control server (rc vfs/forget...), or None without --rc."""
    import logging

    v = pf.values
    log = logging.getLogger("pyclone.rc")
    if not v.rc:
        if pf.explicit & {"rc_addr", "rc_user", "rc_pass", "rc_no_auth"}:
            log.warning("--rc-addr, --rc-user, --rc-pass and --rc-no-auth do nothing without --rc")
        return None
    from .rc.server import RcServer, open_listener
    from .vfs import rc as _vfs_rc  # noqa: F401  (registers the vfs/* methods)

    if v.rc_pass and not v.rc_user:
        log.warning("--rc-pass without --rc-user: the rc server does no authentication (as rclone)")
    return RcServer(driver, open_listener(str(v.rc_addr)), user=str(v.rc_user), password=str(v.rc_pass),
                    no_auth=bool(v.rc_no_auth))


def _exit_if_fuse_still_serving(code: int) -> None:
    """A mount that would not go (busy, detached lazily) still has libfuse workers: end the
    process here rather than let the interpreter's teardown run under them."""
    from .fuse import mount

    if mount.still_serving():
        import logging

        logging.getLogger("pyclone").warning("a FUSE mount is still being served at exit; ending the process now")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if not args or args[0] in ("-h", "--help", "help"):
            sys.stdout.write(USAGE)
            return 0 if args else 1
        cmd = args[0]
        if cmd == "version" or cmd == "--version":
            print(f"pyclone-docker v{__version__} (python {sys.version.split()[0]})")
            return 0
        if cmd == "serve":
            if len(args) < 2 or args[1] != "docker":
                raise UsageError("only 'serve docker' is available")
            code = serve_docker(args[2:])
            _exit_if_fuse_still_serving(code)
            return code
        if cmd == "selftest":
            from . import selftest

            return selftest.main()
        if cmd in ("obscure", "reveal"):
            return _obscure_cmd(cmd, args[1:])
        if cmd == "rc":
            return rc_cmd(args[1:], dict(os.environ))
        if cmd == "askpass":  # ssh's SSH_ASKPASS helper (lib/askpass.py), also via the console script
            from .lib.askpass import client_main

            return client_main(args[1:])
        if cmd == "proxy-connect":  # ssh's ProxyCommand through a proxy (lib/proxyconnect.py)
            from .lib.proxyconnect import main as proxy_main

            return proxy_main(args[1:])
        raise UsageError(f"unknown command {cmd!r}")
    except UsageError as e:
        sys.stderr.write(f"Error: {e}\n")
        return 2
    except (OSError, RuntimeError) as e:
        sys.stderr.write(f"Error: {e}\n")
        return 1


def _obscure_cmd(cmd: str, args: list[str]) -> int:
    from . import obscure

    if len(args) != 1:
        raise UsageError(f"usage: pyclone-docker {cmd} {'PASSWORD' if cmd == 'obscure' else 'OBSCURED'} "
                         "(use - to read it from standard input)")
    value = sys.stdin.readline().rstrip("\r\n") if args[0] == "-" else args[0]
    try:
        print(obscure.obscure(value) if cmd == "obscure" else obscure.reveal(value))
    except ValueError as e:
        raise UsageError(str(e)) from None
    return 0


RC_USAGE = """\
Usage:
  pyclone-docker rc METHOD [key=value ...] [flags]

Run a remote control command against a plugin started with --rc, as `rclone rc` does: the
parameters go as a JSON object in a POST to <url>METHOD and the JSON reply is printed. The
exit status is non-zero when the call fails. Without METHOD, the available methods are listed.

  pyclone-docker rc vfs/list
  pyclone-docker rc vfs/forget fs=myvolume dir=path/to/dir file=path/to/file

Flags:
  --url string          URL of the remote control (default "http://localhost:5572/");
                        unix:///path or /path for a unix socket
  --unix-socket string  Path to a unix socket to connect to instead of TCP
  --user string         User name for the remote control ($RCLONE_RC_USER)
  --pass string         Password for the remote control ($RCLONE_RC_PASS)
  --json string         Input JSON - use instead of key=value args
  -o, --opt stringArray Option in the form name=value or name placed in the "opt" object
  -a, --arg stringArray Argument placed in the "arg" array
  --no-output           Don't print the JSON result
  --rc-addr, --rc-user, --rc-pass  read as --url, --user, --pass (as rclone does)
"""

_RC_VALUE_FLAGS = {"url", "unix-socket", "user", "pass", "json", "opt", "arg", "rc-addr", "rc-user", "rc-pass"}


def parse_rc_args(args: Sequence[str], env: Mapping[str, str]) -> tuple[str, dict[str, object], dict[str, str]]:
    """`rc` command line -> (method, parameters, connection settings), rclone rc's rules."""
    flags: dict[str, str] = {}
    opts: dict[str, str] = {}
    arg_list: list[str] = []
    positional: list[str] = []
    no_output = False
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            positional += args[i:]
            break
        if a in ("-h", "--help"):
            flags["help"] = "true"
            continue
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            if name == "no-output":
                try:
                    no_output = parsers.parse_bool(val) if eq else True
                except ValueError as e:
                    raise UsageError(f'invalid argument "{val}" for "--no-output" flag: {e}') from None
                continue
            if name not in _RC_VALUE_FLAGS:
                raise UsageError(f"unknown flag: --{name}")
            if not eq:
                val, i = _need(list(args), i, a), i + 1
        elif a[:2] in ("-o", "-a"):
            name = "opt" if a[1] == "o" else "arg"
            val = a[2:].removeprefix("=") if len(a) > 2 else _need(list(args), i, a)
            i += 0 if len(a) > 2 else 1
        elif a.startswith("-") and a != "-":
            raise UsageError(f"unknown shorthand flag: {a}")
        else:
            positional.append(a)
            continue
        if name == "opt":
            key, _, value = val.partition("=")
            opts[key] = value
        elif name == "arg":
            arg_list.append(val)
        else:
            flags[name] = val
    # rclone: --rc-addr/--rc-user/--rc-pass (also from the environment) stand in for --url/--user/--pass
    conn = {"url": flags.get("url", ""), "unix_socket": flags.get("unix-socket", ""),
            "user": flags.get("user", ""), "pass": flags.get("pass", ""),
            "no_output": "true" if no_output else "", "help": flags.get("help", "")}
    for alt, key in (("rc-addr", "url"), ("rc-user", "user"), ("rc-pass", "pass")):
        if alt in flags:
            conn[key] = flags[alt]
        elif not conn[key] and env.get("RCLONE_" + alt.upper().replace("-", "_")):
            conn[key] = env["RCLONE_" + alt.upper().replace("-", "_")]
    method = positional[0].strip("/") if positional else ""
    params: dict[str, object] = {}
    if "json" in flags:
        if len(positional) > 1:
            raise UsageError("can't use --json and parameters together")
        try:
            data = json.loads(flags["json"])
        except ValueError as e:
            raise UsageError(f"bad --json input: {e}") from None
        if not isinstance(data, dict):
            raise UsageError("bad --json input: want a JSON object")
        params.update(data)
    for param in positional[1:]:
        key, eq, value = param.partition("=")
        if not eq:
            raise UsageError(f"no '=' found in parameter {param!r}")
        params[key] = value
    if opts:
        params["opt"] = opts
    if arg_list:
        params["arg"] = arg_list
    return method, params, conn


def rc_cmd(args: Sequence[str], env: Mapping[str, str]) -> int:
    from . import rc

    method, params, conn = parse_rc_args(args, env)
    if conn["help"]:
        sys.stdout.write(RC_USAGE)
        return 0
    url = conn["url"] or rc.DEFAULT_URL
    out, err = rc.client_call(method or "rc/list", params, url=url, unix_socket=conn["unix_socket"],
                              user=conn["user"] or None, password=conn["pass"] or None)
    if not method and err is None:
        for command in out.get("commands", []):
            auth = "" if command.get("NoAuth") else "  (needs auth)"
            print(f"{command.get('Path')}: {command.get('Title')}{auth}")
        return 0
    if not conn["no_output"]:
        sys.stdout.write(rc.to_json(out).decode())
    if err is not None:
        sys.stderr.write(f"Error: {err}\n")
        return 1
    return 0
