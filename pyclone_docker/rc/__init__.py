"""rclone's remote control (`--rc`): flush the directory cache of ONE volume, and the client.

    pyclone-docker serve docker --rc --rc-no-auth ...
    pyclone-docker rc vfs/forget fs=myvolume dir=path/to/dir     (or: rclone rc vfs/forget ...)

The server speaks rclone's rc protocol (fs/rc/rcserver): `POST /<method>`; parameters from the URL
query, a form body or a JSON body (JSON wins); replies are tab-indented JSON; errors are
{"error", "input", "path", "status"} with rclone's texts and status codes. Methods: rc/noop,
rc/list, core/version (registry.py), vfs/list, vfs/forget, vfs/refresh (vfs/rc.py, registered
when the plugin serves rc); anything else is a 404.

Authentication is rclone's (>= 1.74): with --rc-user every request needs HTTP Basic auth; without
it, only the read-only methods (rc/noop, rc/list, core/version, vfs/list) answer, the others are
403 unless --rc-no-auth is given.

params.py parses requests, registry.py holds the methods, server.py serves them over
lib/httpserver.py on its own thread, client.py is `pyclone-docker rc`.
"""

import importlib
from typing import Any

# what each name is imported from, on first use: `serve docker` starts the rc server only with
# --rc, and http.client (for the client) costs start-up time a plugin without --rc never needs
_EXPORTS = {
    "DEFAULT_ADDR": "client", "DEFAULT_URL": "client", "client_call": "client",
    "Params": "params", "RcError": "params", "clean_path": "params", "request_params": "params",
    "CALLS": "registry", "Call": "registry", "register": "registry",
    "RcHandler": "server", "RcServer": "server", "check_basic_auth": "server",
    "parse_rc_addr": "server", "to_json": "server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
