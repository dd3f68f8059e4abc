"""ftp benchmark (issue 14): pyclone-docker vs rclone 1.75.2's `serve docker`, both mounting ftp
volumes on ONE real server (vsftpd by default, one local user, or pyftpdlib) with the SAME
volume options (type=ftp, host, port, user, obscured pass, the cache mode under test; vsftpd:
writing_mdtm), in one run, the plugins interleaved sample by sample. What it measures:
bench/mountbench.py.

    python3 bench/ftp.py [--server vsftpd|pyftpdlib] [--size-mib 1024] [--rev HEAD]
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
from tests.support.pyftpd import PyFtpServer
from tests.support.vsftpd import VsFtpServer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="vsftpd", choices=["vsftpd", "pyftpdlib"])
    add_arguments(ap)
    args = ap.parse_args()

    @contextlib.contextmanager
    def server(d: Path) -> Iterator[Remote]:
        with VsFtpServer() if args.server == "vsftpd" else PyFtpServer() as srv:
            opts = {"type": "ftp", "ftp-host": srv.host, "ftp-port": str(srv.port), "ftp-user": srv.user,
                    "ftp-pass": obscure.obscure(srv.password)}
            if args.server == "vsftpd":
                opts["ftp-writing-mdtm"] = "true"
            yield Remote(opts, Path(srv.root_dir), f"{args.server} ftp://{srv.host}:{srv.port}",
                         owner=f"{srv.user}:{srv.user}" if args.server == "vsftpd" else "")

    return run(args, "ftp", server)


if __name__ == "__main__":
    sys.exit(main())
