"""pyclone-docker: a Python re-implementation of ``rclone serve docker``."""

__version__ = "0.1.0"
