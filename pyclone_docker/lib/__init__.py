"""Helpers below every layer: HTTP/1.1 server, atomic write, time formats, libc helpers."""
