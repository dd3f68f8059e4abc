"""A backend over another backend (crypt, chunker, ...): every call goes to the inner one.

A wrapping backend's factory (BackendInfo.wraps) gets `open_inner(fs_string) -> Backend`, which
opens the remote it wraps through the same resolution as a volume's own (with its loop guard).
A subclass overrides what it changes (names, contents, sizes) and inherits the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import About, Backend, BackendContext, Entry, Reader, Writer


class WrappingBackend(Backend):
    """`inner` as it is: features and hashes are the inner backend's unless a subclass says otherwise."""

    def __init__(self, name: str, root: str, config: dict[str, str], inner: Backend,
                 ctx: BackendContext | None = None) -> None:
        super().__init__(name, root, config, ctx if ctx is not None else inner.ctx)
        self.inner = inner
        self.features = inner.features
        self.hashes = inner.hashes

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}:{self.root} over {self.inner!r})"

    def list(self, path: str) -> list[Entry]:
        return self.inner.list(path)

    def stat(self, path: str) -> Entry:
        return self.inner.stat(path)

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> Reader:
        return self.inner.open_read(path, offset, length)

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None,
                   mode: int | None = None) -> Writer:
        return self.inner.open_write(path, size, mtime_ns, mode)

    def mkdir(self, path: str) -> None:
        self.inner.mkdir(path)

    def rmdir(self, path: str) -> None:
        self.inner.rmdir(path)

    def delete(self, path: str) -> None:
        self.inner.delete(path)

    def move(self, src: str, dst: str) -> None:
        self.inner.move(src, dst)

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        self.inner.set_modtime(path, mtime_ns)

    def chmod(self, path: str, mode: int) -> None:
        self.inner.chmod(path, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self.inner.chown(path, uid, gid)

    def truncate(self, path: str, size: int) -> None:
        self.inner.truncate(path, size)

    def about(self) -> About:
        return self.inner.about()

    def hash(self, path: str, kind: str) -> str:
        return self.inner.hash(path, kind)

    def hash_written(self, path: str, kind: str, digest: str) -> None:
        self.inner.hash_written(path, kind, digest)

    def upload_hashes(self, size: int) -> tuple[str, ...]:
        return self.inner.upload_hashes(size)

    def change_notify(self, callback: Callable[[str], None], interval: float) -> None:
        self.inner.change_notify(callback, interval)

    def shutdown(self) -> None:
        self.inner.shutdown()
