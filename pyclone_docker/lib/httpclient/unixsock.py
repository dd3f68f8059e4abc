"""Connection pools that reach the server over a unix domain socket instead of TCP (rclone's
webdav `unix_socket`): the URL still names the host (the Host header, TLS's server name), the
bytes go to the socket file."""

from __future__ import annotations

import socket
from typing import Any


def pool_classes(path: str) -> dict[str, Any]:
    """urllib3 pool classes by scheme whose connections dial `path`."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import NewConnectionError

    def dial(conn: Any) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        timeout = conn.timeout
        s.settimeout(timeout if isinstance(timeout, (int, float)) else None)
        try:
            s.connect(path)
        except OSError as e:
            s.close()
            raise NewConnectionError(conn, f"Failed to connect to unix socket {path}: {e.strerror or e}") from None
        return s

    class UnixHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return dial(self)

    class UnixHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return dial(self)

    class UnixHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = UnixHTTPConnection

    class UnixHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = UnixHTTPSConnection

    return {"http": UnixHTTPConnectionPool, "https": UnixHTTPSConnectionPool}
