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

from .client import DEFAULT_ADDR, DEFAULT_URL, client_call
from .params import Params, RcError, clean_path, request_params
from .registry import CALLS, Call, register
from .server import RcHandler, RcResponse, RcServer, check_basic_auth, parse_rc_addr, to_json

__all__ = ["CALLS", "DEFAULT_ADDR", "DEFAULT_URL", "Call", "Params", "RcError", "RcHandler", "RcResponse", "RcServer",
           "check_basic_auth", "clean_path", "client_call", "parse_rc_addr", "register", "request_params",
           "to_json"]
