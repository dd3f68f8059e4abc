"""Logging in rclone's shape: `2006/01/02 15:04:05 LEVEL : message`, NOTICE by default.

-v gives INFO, -vv DEBUG, --log-level picks one by name, --log-file writes to a file.
"""

from __future__ import annotations

import logging
import sys
import time

NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "NOTICE": NOTICE, "ERROR": logging.ERROR}


class RcloneFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(record.created))
        level = record.levelname if record.levelno != logging.WARNING else "NOTICE"
        text = f"{stamp} {level:<6}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup(verbose: int, level_name: str = "", log_file: str = "") -> None:
    if level_name:
        try:
            level = LEVELS[level_name.upper()]
        except KeyError:
            raise ValueError(f"unknown log level {level_name!r}: use DEBUG, INFO, NOTICE or ERROR") from None
    else:
        level = {0: NOTICE, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler: logging.Handler
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(RcloneFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # libfuse's Python binding logs every ENOENT at DEBUG: only show it with --debug-fuse
    logging.getLogger("fuse").setLevel(max(level, logging.INFO))
