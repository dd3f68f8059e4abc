"""Helpers below every layer: HTTP/1.1 messages (http1) and server, listeners, atomic write, time formats, libc."""
