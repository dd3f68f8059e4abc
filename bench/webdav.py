"""webdav benchmark (issue 14): pyclone-docker vs rclone 1.75.2's `serve docker`, both mounting
webdav volumes on ONE real server (Apache mod_dav by default, basic auth) with the SAME volume
options (type=webdav, url, vendor, user, obscured pass, the cache mode under test), in one run,
the plugins interleaved sample by sample. What it measures: bench/mountbench.py.

    python3 bench/webdav.py [--server apache|wsgidav|rclone] [--size-mib 1024] [--rev HEAD]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from common import REPO
from mountbench import Remote, add_arguments, run

sys.path.insert(0, str(REPO))
from pyclone_docker import obscure
from tests.support.davservers import dav_server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="apache", choices=["apache", "wsgidav", "rclone"])
    add_arguments(ap)
    args = ap.parse_args()

    @contextlib.contextmanager
    def server(d: Path) -> Iterator[Remote]:
        with dav_server(args.server, d) as srv:
            opts = {"type": "webdav", "webdav-url": srv.url, "webdav-vendor": srv.vendor, "webdav-user": srv.user,
                    "webdav-pass": obscure.obscure(srv.password)}
            yield Remote(opts, srv.root, f"{srv.url} (vendor {srv.vendor})",
                         owner="www-data:www-data" if srv.kind == "apache" else "")

    return run(args, "webdav", server)


if __name__ == "__main__":
    sys.exit(main())
