"""The mode and owner a VFS shows for an entry: rclone's --dir-perms, --file-perms, --umask,
--uid and --gid, unless the backend stores real ones (local) and the user set none of them."""

from __future__ import annotations

import stat

from ..backends.base import Entry
from ..flags import OptionValues

Caller = tuple[int, int, int]  # (uid, gid, pid) of the process a request is made for
ROOT: Caller = (0, 0, 0)


class Perms:
    __slots__ = ("dir_mode", "file_mode", "use_real_mode", "uid", "gid", "uid_explicit", "gid_explicit",
                 "use_real_uid", "use_real_gid")

    def __init__(self, opts: OptionValues, explicit: frozenset[str], can_chmod: bool, can_chown: bool) -> None:
        umask = int(opts.umask)
        self.dir_mode = stat.S_IFDIR | (int(opts.dir_perms) & ~umask & 0o7777)
        self.file_mode = stat.S_IFREG | (int(opts.file_perms) & ~umask & 0o7777)
        self.use_real_mode = can_chmod and not explicit & {"umask", "dir_perms", "file_perms"}
        self.uid = int(opts.uid)
        self.gid = int(opts.gid)
        self.uid_explicit, self.gid_explicit = "uid" in explicit, "gid" in explicit
        self.use_real_uid = can_chown and not self.uid_explicit
        self.use_real_gid = can_chown and not self.gid_explicit

    def mode(self, e: Entry) -> int:
        """st_mode of a file or directory (special nodes keep their own)."""
        if self.use_real_mode and e.mode is not None:
            return (stat.S_IFDIR if e.is_dir else stat.S_IFREG) | e.mode
        return self.dir_mode if e.is_dir else self.file_mode
